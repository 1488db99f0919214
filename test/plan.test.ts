/**
 * The offline plan as a user runs it (`npm run plan -- --stack <name>`), in a child
 * process per run: the files it writes, its manifest, and what it must never write.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";

const root = path.join(__dirname, "..");
const tsx = path.join(root, "node_modules", ".bin", "tsx");

function plan(args: string[]) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-plan-"));
  const r = spawnSync(tsx, [path.join(root, "scripts", "plan.ts"), "--out", out, ...args], { cwd: root, encoding: "utf8" });
  return { out, code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

describe("npm run plan -- --stack prod", () => {
  const run = plan(["--stack", "prod"]);
  const dir = path.join(run.out, "prod");

  it("succeeds and writes plan.json and the hosts tree", () => {
    assert.equal(run.code, 0, run.stderr);
    assert.ok(fs.existsSync(path.join(dir, "plan.json")));
    assert.deepEqual(fs.readdirSync(path.join(dir, "hosts")).sort(), ["edge", "gpu"]);
  });

  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "plan.json"), "utf8"));

  it("lists every file under hosts/ exactly once, with a matching sha256", () => {
    const onDisk = walk(path.join(dir, "hosts")).map((f) => path.relative(path.join(dir, "hosts"), f));
    const listed = manifest.files.map((f: { host: string; path: string }) => path.join(f.host, f.path));
    assert.deepEqual(listed.slice().sort(), onDisk);
    for (const f of manifest.files) {
      const bytes = fs.readFileSync(path.join(dir, "hosts", f.host, f.path));
      assert.equal(createHash("sha256").update(bytes).digest("hex"), f.sha256, f.path);
      assert.match(f.mode, /^0[0-7]{3}$/);
    }
  });

  it("has the contract's top-level shape", () => {
    assert.deepEqual(Object.keys(manifest), ["project", "stack", "resources", "files"]);
    assert.equal(manifest.project, "edgeplane");
    assert.equal(manifest.stack, "prod");
    const dns = manifest.resources.find((r: { name: string }) => r.name === "grafana-dns");
    assert.deepEqual(
      {
        type: dns.type,
        parent: dns.parent,
        name: dns.inputs.name,
        content: dns.inputs.content,
        proxied: dns.inputs.proxied,
        ttl: dns.inputs.ttl,
      },
      {
        type: "cloudflare:index/dnsRecord:DnsRecord",
        parent: "grafana",
        name: "grafana.example.org",
        content: "203.0.113.10",
        proxied: false,
        ttl: 1,
      },
    );
  });

  it("marks host-wide files with service null and pod files with their service", () => {
    const envoy = manifest.files.find((f: { path: string }) => f.path === "/etc/envoy/lds.yaml");
    assert.deepEqual([envoy.host, envoy.owner, envoy.service], ["edge", "root", null]);
    const caddyfile = manifest.files.find((f: { path: string }) => f.path === "/var/lib/edgeplane/vllm/caddy/Caddyfile");
    assert.deepEqual([caddyfile.host, caddyfile.owner, caddyfile.service], ["gpu", "ep-vllm", "vllm"]);
  });

  it("gives every service of the stack its pod files, on its own host only", () => {
    const stack = YAML.parse(fs.readFileSync(path.join(root, "Pulumi.prod.yaml"), "utf8")).config["edgeplane:services"];
    for (const [name, svc] of Object.entries<{ host: string }>(stack)) {
      const files = manifest.files.filter(
        (f: { service: string; path: string }) => f.service === name && !f.path.includes("/blueprints/"),
      );
      assert.ok(files.length >= 5, `${name} has ${files.length} files`);
      assert.deepEqual([...new Set(files.map((f: { host: string }) => f.host))], [svc.host], name);
    }
  });

  it("is byte-for-byte the same when run again", () => {
    const again = plan(["--stack", "prod"]);
    assert.equal(again.code, 0, again.stderr);
    const a = walk(dir).map((f) => [path.relative(dir, f), fs.readFileSync(f, "utf8")]);
    const b = walk(path.join(again.out, "prod")).map((f) => [
      path.relative(path.join(again.out, "prod"), f),
      fs.readFileSync(f, "utf8"),
    ]);
    assert.deepEqual(a, b);
  });
});

describe("secrets and the plan", () => {
  it("never writes a secret value under the output folder, even one given in clear text", () => {
    const sentinel = "SENTINEL-PRIVATE-KEY-7f3a9c";
    const stackFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-stack-")), "Pulumi.leak.yaml");
    const doc = YAML.parse(fs.readFileSync(path.join(__dirname, "stacks", "contract.yaml"), "utf8"));
    doc.config["edgeplane:sshPrivateKey"] =
      `-----BEGIN OPENSSH PRIVATE KEY-----\n${sentinel}\n-----END OPENSSH PRIVATE KEY-----\n`;
    fs.writeFileSync(stackFile, YAML.stringify(doc));
    const run = plan(["--stack", "leak", "--stack-file", stackFile]);
    assert.equal(run.code, 0, run.stderr);
    const files = walk(run.out);
    assert.ok(files.length > 10);
    for (const f of files) assert.ok(!fs.readFileSync(f, "utf8").includes(sentinel), `${f} contains the private key`);
    assert.ok(!run.stdout.includes(sentinel) && !run.stderr.includes(sentinel));
  });
});

describe("many hosts", () => {
  it("gives a host with no services nothing, and every other host only its own services' files", () => {
    const stackFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-stack-")), "Pulumi.spare.yaml");
    const doc = YAML.parse(fs.readFileSync(path.join(__dirname, "stacks", "contract.yaml"), "utf8"));
    doc.config["edgeplane:hosts"].spare = {
      tailnetIP: "100.100.1.9",
      ssh: { host: "100.100.1.9", user: "ops", insecureSkipHostKeyCheck: true },
    };
    fs.writeFileSync(stackFile, YAML.stringify(doc));
    const run = plan(["--stack", "spare", "--stack-file", stackFile]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(fs.readdirSync(path.join(run.out, "spare", "hosts")).sort(), ["edge", "gpu"]);
    const manifest = JSON.parse(fs.readFileSync(path.join(run.out, "spare", "plan.json"), "utf8"));
    const services = doc.config["edgeplane:services"] as Record<string, { host: string }>;
    for (const f of manifest.files) {
      if (f.service === null) assert.equal(f.host, "edge", f.path);
      else assert.equal(f.host, services[f.service]!.host, f.path);
    }
    // Nothing is installed on or run against it: every file and every install names another host.
    for (const r of manifest.resources) {
      if (r.type === "edgeplane:index:RemoteFile") assert.notEqual(r.inputs.host, "spare", r.name);
      if (r.type === "command:remote:Command") assert.doesNotMatch(String(r.inputs.create), / on spare\b/, r.name);
    }
  });

  it("refuses to drop a host that still runs services, naming them", () => {
    const stackFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-stack-")), "Pulumi.gone.yaml");
    const doc = YAML.parse(fs.readFileSync(path.join(__dirname, "stacks", "contract.yaml"), "utf8"));
    delete doc.config["edgeplane:hosts"].gpu;
    fs.writeFileSync(stackFile, YAML.stringify(doc));
    const run = plan(["--stack", "gone", "--stack-file", stackFile]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /edgeplane:services\.adminer\.host: unknown host "gpu" \(hosts: "edge"\)/);
    assert.match(run.stderr, /edgeplane:services\.vllm\.host: unknown host "gpu"/);
    assert.match(run.stderr, /edgeplane:services\.vllm\.l7\.backends\[0\]\.host: unknown host "gpu"/);
  });
});

describe("an invalid config", () => {
  it("exits non-zero with every problem and writes nothing", () => {
    const stackFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-stack-")), "Pulumi.bad.yaml");
    const doc = YAML.parse(fs.readFileSync(path.join(__dirname, "stacks", "contract.yaml"), "utf8"));
    doc.config["edgeplane:services"].grafana.host = "edg";
    doc.config["edgeplane:services"].vllm.caddyPort = 443;
    fs.writeFileSync(stackFile, YAML.stringify(doc));
    const run = plan(["--stack", "bad", "--stack-file", stackFile]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /edgeplane:services\.grafana\.host: unknown host "edg"/);
    assert.match(run.stderr, /edgeplane:services\.vllm\.caddyPort: port 443 is reserved for Envoy's HTTPS listener/);
    assert.deepEqual(fs.readdirSync(run.out), []);
  });

  it("stops on a tailnet policy Tailscale would reject, before anything is planned", () => {
    const stackFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-stack-")), "Pulumi.bad.yaml");
    const doc = YAML.parse(fs.readFileSync(path.join(root, "Pulumi.prod.yaml"), "utf8"));
    delete doc.config["edgeplane:tailscale"].testUsers.nonMember;
    doc.config["edgeplane:tailscale"].policy.hosts = { "edgeplane-edge": "100.64.0.99" };
    fs.writeFileSync(stackFile, YAML.stringify(doc));
    const run = plan(["--stack", "bad", "--stack-file", stackFile]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /edgeplane:tailscale\.testUsers\.nonMember: is required when a service has exposure: tailnet/);
    assert.match(run.stderr, /edgeplane:tailscale\.policy\.hosts\.edgeplane-edge: is generated by edgeplane/);
    assert.deepEqual(fs.readdirSync(run.out), []);
  });

  it("rejects a misspelt top-level key, naming the key it probably meant, and writes nothing", () => {
    // Before, index.ts read only the keys it knew: a misspelt edgeplane:tailscale planned
    // fine, with no tailnet policy in it.
    const stackFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-stack-")), "Pulumi.bad.yaml");
    const doc = YAML.parse(fs.readFileSync(path.join(root, "Pulumi.prod.yaml"), "utf8"));
    doc.config["edgeplane:tailscal"] = doc.config["edgeplane:tailscale"];
    delete doc.config["edgeplane:tailscale"];
    fs.writeFileSync(stackFile, YAML.stringify(doc));
    const run = plan(["--stack", "bad", "--stack-file", stackFile]);
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr,
      "invalid stack config (1 problem):\n  - edgeplane:tailscal: unknown key; did you mean edgeplane:tailscale?\n",
    );
    assert.deepEqual(fs.readdirSync(run.out), []);
  });

  it("reports a YAML syntax error as file:line:column with the line, not a stack trace", () => {
    const stackFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-stack-")), "Pulumi.bad.yaml");
    fs.writeFileSync(
      stackFile,
      "config:\n  edgeplane:domain: example.org\n  edgeplane:hosts:\n    edge: [1, 2\n  edgeplane:services: {}\n",
    );
    const run = plan(["--stack", "bad", "--stack-file", stackFile]);
    assert.equal(run.code, 1);
    const [first, ...rest] = run.stderr.split("\n");
    assert.match(first!, new RegExp(`^${stackFile.replace(/[.]/g, "\\.")}:5:3: \\S`));
    assert.ok(rest.includes("    edge: [1, 2"), run.stderr);
    assert.doesNotMatch(run.stderr, /^\s+at /m);
    assert.deepEqual(fs.readdirSync(run.out), []);
  });

  it("names a missing stack file", () => {
    const run = plan(["--stack", "nope"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Pulumi\.nope\.yaml does not exist/);
  });
});
