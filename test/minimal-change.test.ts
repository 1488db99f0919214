/**
 * "A change touches only what it must": plan a stack, change one thing, plan again,
 * and compare resource by resource. Each case states which components may change;
 * anything else changing fails the test.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, it } from "node:test";
import YAML from "yaml";
import { comparePlans, owners, type PlanChanges } from "../plan/compare";
import type { Plan } from "../plan/manifest";

const root = path.join(__dirname, "..");
const base = () => YAML.parse(fs.readFileSync(path.join(__dirname, "stacks", "contract.yaml"), "utf8"));

/** Plans `doc` as stack "contract" (every variant is the same stack, changed). */
function plan(doc: unknown): Promise<Plan> {
  const name = "contract";
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-minimal-"));
  const stackFile = path.join(dir, `Pulumi.${name}.yaml`);
  fs.writeFileSync(stackFile, YAML.stringify(doc));
  return new Promise((resolve, reject) => {
    const child = spawn(
      path.join(root, "node_modules", ".bin", "tsx"),
      [path.join(root, "scripts", "plan.ts"), "--stack", name, "--stack-file", stackFile, "--out", dir],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) =>
      code === 0 ? resolve(JSON.parse(fs.readFileSync(path.join(dir, name, "plan.json"), "utf8"))) : reject(new Error(stderr)),
    );
  });
}

type Edit = (config: Record<string, any>) => void;
const services = (c: Record<string, any>) => c.config["edgeplane:services"];

const cases: Record<string, Edit> = {
  image: (c) => (services(c).grafana.image = "docker.io/grafana/grafana:11.3.0"),
  appPort: (c) => (services(c).grafana.port = 3001),
  auth: (c) => (services(c).grafana.auth.groups = ["admins", "viewers"]),
  env: (c) => (services(c).grafana.env.GF_LOG_LEVEL = "debug"),
  caddyPort: (c) => (services(c).grafana.caddyPort = 10444),
  add: (c) => (services(c).whoami = { host: "edge", image: "docker.io/traefik/whoami:v1.10.3", port: 80, caddyPort: 10447 }),
  remove: (c) => delete services(c).grafana,
  tokenRotation: (c) => (services(c).grafana.tokenRotation = "2026-11"),
};

const plans = new Map<string, Plan>();
before(async () => {
  const entries = await Promise.all([
    plan(base()).then((p) => ["base", p] as const),
    plan(base()).then((p) => ["again", p] as const),
    ...Object.entries(cases).map(([name, edit]) => {
      const doc = base();
      edit(doc);
      return plan(doc).then((p) => [name, p] as const);
    }),
  ]);
  for (const [name, p] of entries) plans.set(name, p);
});

/** Which components own the changed, added and removed resources. */
function touched(name: string): { changes: PlanChanges; components: string[] } {
  const before = plans.get("base")!;
  const after = plans.get(name)!;
  const changes = comparePlans(before, after);
  const own = new Map([...owners(before), ...owners(after)]);
  // A service's Authentik application (`grafana-auth`) is that service's too.
  const components = new Set(
    [...changes.added, ...changes.removed, ...changes.changed].map((k) => own.get(k)!.replace(/-auth$/, "")),
  );
  return { changes, components: [...components].sort() };
}

const envoyFiles = (changes: PlanChanges) =>
  [...changes.changed, ...changes.added, ...changes.removed].filter((k) => /::edge-(cds|lds|check|bootstrap)/.test(k)).sort();

describe("a change touches only what it must", () => {
  it("planning twice with no change gives identical plans", () => {
    assert.deepEqual(plans.get("again"), plans.get("base"));
  });

  for (const change of ["image", "appPort", "auth", "env"]) {
    it(`changing one service's ${change} touches only that service, and not Envoy`, () => {
      const { changes, components } = touched(change);
      assert.deepEqual(components, change === "auth" && changes.changed.length === 0 ? [] : ["grafana"]);
      assert.deepEqual(envoyFiles(changes), []);
      assert.deepEqual([changes.added, changes.removed], [[], []], "nothing is created or destroyed");
    });
  }

  it("changing a service's caddyPort touches that service and Envoy's clusters, nothing else", () => {
    const { changes, components } = touched("caddyPort");
    assert.deepEqual(components, ["edge", "grafana"]);
    assert.ok(envoyFiles(changes).some((k) => k.includes("edge-cds")));
    assert.ok(!envoyFiles(changes).some((k) => k.includes("edge-bootstrap")), "no Envoy restart for a routing change");
    assert.ok(!changes.changed.includes("command:remote:Command::edge-activate"));
  });

  it("adding a service creates its resources and changes only Envoy's routing, not another service", () => {
    const { changes, components } = touched("add");
    assert.deepEqual(components, ["edge", "whoami"]);
    assert.deepEqual(changes.removed, []);
    const own = owners(plans.get("add")!);
    assert.ok(
      changes.changed.every((k) => own.get(k) === "edge"),
      changes.changed.join(", "),
    );
    assert.ok(!changes.changed.includes("command:remote:Command::edge-activate"), "Envoy is not restarted");
  });

  it("removing a service destroys exactly its resources (units, files, token, secrets, records) and reroutes Envoy", () => {
    const { changes, components } = touched("remove");
    // Besides its own: Envoy's routing, the outpost's provider list (one list for the
    // platform) which must stop naming the removed provider, and, since grafana was the
    // only service behind Authentik on its host, Authentik's Caddyfile, which stops
    // trusting that host's X-Forwarded-* (a reload of that file only).
    assert.deepEqual(components, ["authentik-outpost", "edge", "grafana", "sso"]);
    const ownerOf = owners(plans.get("base")!);
    assert.deepEqual(
      changes.changed.filter((k) => ownerOf.get(k) === "sso"),
      ["command:remote:Command::sso-deploy", "edgeplane:index:SidecarPod::sso"],
    );
    assert.deepEqual(changes.added, []);
    const removedTypes = new Set(changes.removed.map((k) => k.split("::")[0]));
    for (const t of [
      "cloudflare:index/apiToken:ApiToken",
      "cloudflare:index/dnsRecord:DnsRecord",
      "edgeplane:index:SidecarPod",
      "random:index/randomPassword:RandomPassword",
      "command:remote:Command",
    ]) {
      assert.ok(removedTypes.has(t), `removes the service's ${t}`);
    }
    const own = owners(plans.get("base")!);
    const strays = changes.removed.filter((k) => !["grafana", "grafana-auth"].includes(own.get(k)!));
    assert.deepEqual(strays, []);
    const outpost = changes.changed.filter((k) => own.get(k) === "authentik-outpost");
    assert.deepEqual(
      outpost,
      [
        "command:remote:Command::authentik-outpost-blueprint-apply",
        "command:remote:Command::authentik-outpost-blueprint-install",
        "edgeplane:index:RemoteFile::authentik-outpost-blueprint",
      ],
      "only the provider list changes, and is applied again",
    );
  });

  it("rotating a service's token replaces only that token; the swap is a reload, not a restart", () => {
    const { changes, components } = touched("tokenRotation");
    assert.deepEqual(components, ["grafana"]);
    assert.deepEqual(changes.changed, ["cloudflare:index/apiToken:ApiToken::grafana-token"]);
    assert.deepEqual([changes.added, changes.removed], [[], []]);
  });

  it("never renames another resource: names present before are present after an add", () => {
    const before = new Set(plans.get("base")!.resources.map((r) => `${r.type}::${r.name}`));
    const after = new Set(plans.get("add")!.resources.map((r) => `${r.type}::${r.name}`));
    for (const k of before) assert.ok(after.has(k), `${k} disappeared when a service was added`);
  });
});
