/**
 * Every file every stack in the repository renders, checked by the real program that
 * will read it: Caddy (built with the Cloudflare DNS module, as in the sidecar image),
 * envoy-validate (Envoy's own v3 API types and validation rules), and podman's Quadlet
 * generator followed by systemd-analyze. Then one deliberately broken file of each
 * kind, to show each check can fail.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { haveTool, toolPath } from "../support/tools";
import { caddyProblems, envoyProblems, unitProblems } from "../support/validators";

const root = path.join(__dirname, "..", "..");
const tools = ["caddy", "envoy-validate", "quadlet"] as const;
const enabled = tools.every((t) => haveTool(t));
const tool = (name: (typeof tools)[number]) => toolPath(name)!;

/** Every stack in the repository: Pulumi.<name>.yaml at the root, and the test stacks. */
const stacks: [string, string][] = [
  ...fs
    .readdirSync(root)
    .filter((f) => /^Pulumi\.[a-z0-9-]+\.yaml$/.test(f))
    .map((f): [string, string] => [f.slice("Pulumi.".length, -".yaml".length), path.join(root, f)]),
  ...fs
    .readdirSync(path.join(root, "test", "stacks"))
    .map((f): [string, string] => [`test-${f.replace(/\.yaml$/, "")}`, path.join(root, "test", "stacks", f)]),
];

function planStack(name: string, file: string): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-validate-"));
  const r = spawnSync(
    path.join(root, "node_modules", ".bin", "tsx"),
    [path.join(root, "scripts", "plan.ts"), "--stack", name, "--stack-file", file, "--out", out],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr);
  return path.join(out, name, "hosts");
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** Folders holding Quadlet units: the rootful one and each service user's. */
function unitDirs(hosts: string): { dir: string; user: boolean }[] {
  const dirs = new Set(
    filesUnder(hosts)
      .filter((f) => /\.(pod|container|volume)$/.test(f))
      .map((f) => path.dirname(f)),
  );
  return [...dirs].sort().map((dir) => ({ dir, user: !dir.includes(`${path.sep}etc${path.sep}containers${path.sep}systemd`) }));
}

describe(
  "every rendered file passes the real tool",
  { skip: !enabled && "tools not built (bash scripts/build-tools.sh)" },
  () => {
    for (const [name, file] of stacks) {
      describe(`stack ${name}`, () => {
        const hosts = enabled ? planStack(name, file) : "";

        it("every Caddyfile: caddy adapt --validate", () => {
          const caddyfiles = filesUnder(hosts).filter((f) => f.endsWith("/Caddyfile"));
          assert.ok(caddyfiles.length > 0);
          for (const f of caddyfiles) assert.equal(caddyProblems(tool("caddy"), f), "", path.relative(hosts, f));
        });

        it("the Envoy bootstrap with its listeners and clusters, and the validation copy: envoy-validate", () => {
          const ingress = fs.readdirSync(hosts).filter((h) => fs.existsSync(path.join(hosts, h, "etc", "envoy")));
          assert.equal(ingress.length, 1);
          const hostRoot = path.join(hosts, ingress[0]!);
          assert.equal(envoyProblems(tool("envoy-validate"), hostRoot, "/etc/envoy/envoy.yaml"), "");
          assert.equal(envoyProblems(tool("envoy-validate"), hostRoot, "/etc/envoy/check/static.yaml"), "");
        });

        it("every unit folder: quadlet, then systemd-analyze verify", () => {
          const dirs = unitDirs(hosts);
          assert.ok(dirs.length > 1);
          for (const { dir, user } of dirs) assert.equal(unitProblems(tool("quadlet"), dir, user), "", path.relative(hosts, dir));
        });
      });
    }
  },
);

describe("each check rejects a broken file", { skip: !enabled && "tools not built (bash scripts/build-tools.sh)" }, () => {
  const hosts = enabled ? planStack("prod", path.join(root, "Pulumi.prod.yaml")) : "";
  const scratch = () => fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-broken-"));

  it("a Caddyfile with a misspelt directive", () => {
    const f = path.join(scratch(), "Caddyfile");
    const good = fs.readFileSync(path.join(hosts, "edge/var/lib/edgeplane/grafana/caddy/Caddyfile"), "utf8");
    fs.writeFileSync(f, good.replace("reverse_proxy localhost:3000", "reverse_proxi localhost:3000"));
    assert.match(caddyProblems(tool("caddy"), f), /unrecognized directive: reverse_proxi/);
  });

  it("an Envoy listener with an unknown field, and one naming a cluster that does not exist", () => {
    const copy = scratch();
    fs.cpSync(path.join(hosts, "edge"), copy, { recursive: true });
    const lds = path.join(copy, "etc/envoy/lds.yaml");
    const good = fs.readFileSync(lds, "utf8");
    fs.writeFileSync(lds, good.replace("listener_filters_timeout:", "listener_filter_timeout:"));
    assert.match(envoyProblems(tool("envoy-validate"), copy, "/etc/envoy/envoy.yaml"), /listener_filter_timeout/);
    fs.writeFileSync(lds, good.replace("cluster: caddy_grafana", "cluster: caddy_grafanna"));
    assert.match(envoyProblems(tool("envoy-validate"), copy, "/etc/envoy/envoy.yaml"), /caddy_grafanna/);
  });

  it("a pod unit with a key Quadlet does not know, and a service with a bad restart value", () => {
    const copy = scratch();
    const units = path.join(hosts, "edge/var/lib/edgeplane/grafana/.config/containers/systemd");
    fs.cpSync(units, copy, { recursive: true });
    const app = path.join(copy, "grafana-app.container");
    const good = fs.readFileSync(app, "utf8");
    fs.writeFileSync(app, good.replace("Restart=always", "Restart=always\n[Container]\nPublishPorts=3000:3000"));
    assert.match(unitProblems(tool("quadlet"), copy, true), /unsupported key 'PublishPorts'/);
    fs.writeFileSync(app, good.replace("Restart=always", "Restart=sometimes"));
    assert.match(unitProblems(tool("quadlet"), copy, true), /restart specifier.*sometimes/);
  });
});
