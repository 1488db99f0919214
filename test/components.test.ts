/**
 * Runs the real program (index.ts) with the real provider SDKs under Pulumi's mock
 * runtime, on a stack written to the documented config contract, and checks what it would
 * create. Pulumi's runtime is process-global: one program run per test file.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { before, describe, it } from "node:test";
import { loadStackConfig, SECRET_PLACEHOLDER } from "../plan/config";
import { runProgram, type RecordedResource } from "../plan/run";

const root = path.join(__dirname, "..");
let records: RecordedResource[] = [];
const byName = (type: string, name: string) => {
  const r = records.find((x) => x.type === type && x.name === name);
  assert.ok(r, `no ${type} named ${name}`);
  return r;
};
const ofType = (type: string) => records.filter((r) => r.type === type);
const DNS = "cloudflare:index/dnsRecord:DnsRecord";
const TOKEN = "cloudflare:index/apiToken:ApiToken";
const COMMAND = "command:remote:Command";

before(async () => {
  records = await runProgram(loadStackConfig(root, "contract", path.join(__dirname, "stacks", "contract.yaml")));
});

describe("SidecarPod", () => {
  it("registers one component per service and one IngressHost", () => {
    assert.deepEqual(
      ofType("edgeplane:index:SidecarPod")
        .map((r) => r.name)
        .sort(),
      ["adminer", "grafana", "sso", "vllm"],
    );
    assert.deepEqual(
      ofType("edgeplane:index:IngressHost").map((r) => r.name),
      ["edge"],
    );
  });

  it("points a public service's A and AAAA records at the ingress host, unproxied, ttl auto, marked as managed", () => {
    const a = byName(DNS, "grafana-dns").inputs;
    assert.deepEqual(
      { name: a.name, type: a.type, content: a.content, proxied: a.proxied, ttl: a.ttl, zoneId: a.zoneId },
      {
        name: "grafana.example.net",
        type: "A",
        content: "198.51.100.7",
        proxied: false,
        ttl: 1,
        zoneId: "fedcba9876543210fedcba9876543210",
      },
    );
    assert.match(String(a.comment), /managed by edgeplane/);
    const aaaa = byName(DNS, "grafana-dns-v6").inputs;
    assert.deepEqual([aaaa.type, aaaa.content, aaaa.proxied], ["AAAA", "2001:db8:1::7", false]);
    // A service on another host is still published at the ingress host: Envoy routes it.
    assert.equal(byName(DNS, "vllm-dns").inputs.content, "198.51.100.7");
  });

  it("gives a tailnet service only a record to the ingress host's tailnet address", () => {
    const records = ofType(DNS).filter((r) => r.parent === "adminer");
    assert.deepEqual(
      records.map((r) => [r.inputs.type, r.inputs.content]),
      [["A", "100.100.1.1"]],
    );
  });

  it("mints one token per pod, allowed DNS Write and Zone Read on exactly the stack's zone", () => {
    const tokens = ofType(TOKEN);
    assert.deepEqual(tokens.map((t) => t.parent).sort(), ["adminer", "grafana", "sso", "vllm"]);
    for (const token of tokens) {
      const policies = token.inputs.policies as { effect: string; permissionGroups: { id: string }[]; resources: string }[];
      assert.equal(policies.length, 1);
      const [policy] = policies;
      assert.equal(policy!.effect, "allow");
      assert.deepEqual(policy!.permissionGroups.map((g) => g.id).sort(), [
        "4755a26eedb94da69e1066d98aa820be",
        "c8fed203ed3043cba015a93ad1616f1f",
      ]);
      assert.deepEqual(JSON.parse(policy!.resources), {
        "com.cloudflare.api.account.zone.fedcba9876543210fedcba9876543210": "*",
      });
      assert.equal(token.inputs.name, `edgeplane-contract-${token.parent}`);
    }
  });

  it("hands the token and each generated app secret to the pod on stdin only, from one command per pod", () => {
    const deploy = byName(COMMAND, "grafana-deploy").inputs;
    assert.equal(deploy.stdin, SECRET_PLACEHOLDER);
    const text = String(deploy.create);
    assert.match(text, /^# secret grafana-cf-api-token \(value on stdin only; a change reloads Caddy\)$/m);
    assert.match(text, /^# secret grafana-gf-security-secret-key \(value on stdin only; a change restarts the pod\)$/m);
    assert.match(text, /podman secret create \$replace "\$1" - >\/dev\/null/);
    const password = byName("random:index/randomPassword:RandomPassword", "grafana-secret-gf-security-secret-key");
    assert.equal(password.parent, "grafana");
    assert.equal(password.inputs.length, 48);
    // Nothing else of the pod talks to its host: one SSH session per changed pod.
    assert.deepEqual(
      ofType(COMMAND)
        .filter((c) => c.parent === "grafana")
        .map((c) => c.name),
      ["grafana-deploy"],
    );
  });

  it("never puts a secret in a command's create, update or delete text", () => {
    for (const cmd of ofType(COMMAND)) {
      for (const key of ["create", "update", "delete"] as const) {
        const text = cmd.inputs[key];
        if (text === undefined) continue;
        // A secret flowing into the text would make the whole text secret (redacted to
        // the placeholder) or, if its secretness were lost, show the placeholder value.
        assert.equal(typeof text, "string", `${cmd.name}.${key}`);
        assert.doesNotMatch(String(text), /\[secret\]/, `${cmd.name}.${key} carries a secret`);
      }
      // It carries the private key; @pulumi/command keeps the whole connection secret.
      assert.equal(cmd.inputs.connection, SECRET_PLACEHOLDER, `${cmd.name}: the connection must be secret`);
    }
  });

  it("connects every command only to a server holding the host's pinned key", () => {
    const hosts = YAML.parse(fs.readFileSync(path.join(__dirname, "stacks", "contract.yaml"), "utf8")).config["edgeplane:hosts"];
    const expected = Object.values<{ ssh: { host: string; port?: number; user: string; hostKey: string } }>(hosts).map(
      ({ ssh }) => ({ host: ssh.host, port: ssh.port ?? 22, user: ssh.user, hostKey: ssh.hostKey }),
    );
    const commands = records.filter((r) => r.type.startsWith("command:remote:"));
    assert.ok(commands.length > 0);
    const seen = new Set<string>();
    for (const cmd of commands) {
      assert.ok(
        expected.some((e) => JSON.stringify(e) === JSON.stringify(cmd.sshTarget)),
        `${cmd.name} connects to ${JSON.stringify(cmd.sshTarget)}, which pins no configured host key`,
      );
      seen.add(String(cmd.sshTarget?.host));
    }
    assert.deepEqual([...seen].sort(), expected.map((e) => e.host).sort());
  });

  it("gives an l7 service's Caddy its L7 key as a podman secret on stdin, and Envoy only the key's digest", () => {
    const key = byName("random:index/randomPassword:RandomPassword", "vllm-l7-key");
    assert.equal(key.parent, "edge");
    assert.equal(key.inputs.length, 48);
    const deploy = byName(COMMAND, "vllm-deploy").inputs;
    assert.equal(deploy.stdin, SECRET_PLACEHOLDER);
    assert.match(String(deploy.create), /^# secret vllm\.l7-credential \(value on stdin only; a change restarts the pod\)$/m);
    // Envoy gets the digest in a file of its own, on stdin only; the command's text
    // is the same whatever the key, so the preview shows it and the policy reads it.
    const digestFile = byName(COMMAND, "edge-l7-credential-vllm");
    assert.equal(digestFile.parent, "edge");
    assert.equal(digestFile.inputs.stdin, SECRET_PLACEHOLDER);
    assert.match(String(digestFile.inputs.create), /^target='\/etc\/envoy\/l7-credentials\/vllm\.htpasswd'$/m);
    assert.doesNotMatch(String(digestFile.inputs.create), /sha256|\{SHA\}/);
    // Installed before the check, whose real Envoy reads it, and so before the listeners.
    const check = byName(COMMAND, "edge-check-install");
    assert.ok(check.dependsOn.includes("edge-l7-credential-vllm"), check.dependsOn.join(", "));
    assert.match(String(check.inputs.create), /-v \/etc\/envoy\/l7-credentials:\/etc\/envoy\/l7-credentials:ro /);
    // The listener file is plain text known at preview: it names the file, holds no digest.
    const lds = byName(COMMAND, "edge-lds-install").inputs;
    assert.equal(typeof lds.stdin, "string");
    assert.match(String(lds.stdin), /filename: \/etc\/envoy\/l7-credentials\/vllm\.htpasswd/);
    assert.doesNotMatch(String(lds.stdin), /\{SHA\}/);
    assert.ok(
      !ofType("random:index/randomPassword:RandomPassword").some((r) => r.name.includes("l7") && r.name !== "vllm-l7-key"),
    );
  });

  it("names each file of a pod with its hash in the deploy command's text, so a preview shows what changed", () => {
    for (const pod of ofType("edgeplane:index:SidecarPod")) {
      const text = String(byName(COMMAND, `${pod.name}-deploy`).inputs.create);
      const files = pod.inputs.files as { path: string; mode: string; sha256: string; content: string }[];
      assert.ok(files.length >= 5, pod.name);
      for (const f of files) {
        assert.equal(f.sha256, createHash("sha256").update(f.content).digest("hex"), f.path);
        assert.ok(text.includes(`# file ${f.path} ${f.mode} sha256 ${f.sha256}\n`), `${pod.name}: ${f.path}`);
      }
    }
  });

  it("validates a pod's files together with their real tools before any of them replaces an installed one", () => {
    const text = String(byName(COMMAND, "grafana-deploy").inputs.create);
    const at = (re: RegExp) => {
      const m = re.exec(text);
      assert.ok(m, String(re));
      return m.index;
    };
    const quadlet = at(/quadlet'\\'' -dryrun -user/);
    const caddy = at(/caddy validate --adapter caddyfile/);
    const firstSwap = at(/^swap /m);
    assert.ok(quadlet < firstSwap && caddy < firstSwap);
    assert.ok(at(/systemctl --user restart 'grafana-pod.service'/) > firstSwap);
    assert.match(
      text,
      /podman exec --env CF_API_TOKEN '\\''grafana-caddy'\\'' caddy reload --config \/etc\/caddy\/Caddyfile --adapter caddyfile --address '\\''unix\/\/run\/caddy-admin.sock'\\''/,
    );
    // Envoy's static check is validated by Envoy before the live files change.
    assert.match(String(byName(COMMAND, "edge-check-install").inputs.create), /envoy --mode validate/);
  });

  it("keeps Caddy's certificates through pod replacement and service re-creation", () => {
    // The data is a named volume owned by the service user; nothing removes either.
    const deploy = byName(COMMAND, "grafana-deploy").inputs;
    assert.doesNotMatch(String(deploy.delete), /userdel|rm -r/);
    for (const cmd of ofType(COMMAND)) {
      for (const text of [cmd.inputs.create, cmd.inputs.delete])
        assert.doesNotMatch(String(text ?? ""), /podman volume rm|volume prune/, cmd.name);
    }
    const grafana = byName("edgeplane:index:SidecarPod", "grafana").inputs.files as { path: string }[];
    assert.ok(
      grafana.some((f) => f.path.endsWith("/grafana-caddy-data.volume")),
      "Caddy's /data is a Quadlet-managed named volume",
    );
  });

  it("parents every resource to a component, and components to nothing but the stack", () => {
    const components = new Set(records.filter((r) => !r.custom).map((r) => r.name));
    for (const r of records) {
      if (r.type.startsWith("pulumi:providers:")) continue;
      const topLevel = ["SidecarPod", "IngressHost", "AuthentikApp", "AuthentikOutpost", "TailnetPolicy"];
      if (topLevel.map((t) => `edgeplane:index:${t}`).includes(r.type)) assert.equal(r.parent, null, r.name);
      else assert.ok(r.parent && components.has(r.parent), `${r.type} ${r.name} has parent ${r.parent}`);
    }
  });

  it("installs a pod's files as its service user, and Envoy's as root on the ingress host", () => {
    const files = [
      ...ofType("edgeplane:index:RemoteFile"),
      ...ofType("edgeplane:index:SidecarPod").flatMap((pod) =>
        (pod.inputs.files as Record<string, unknown>[]).map((inputs) => ({ inputs })),
      ),
    ];
    for (const f of files.filter((x) => x.inputs.service !== null)) {
      // A protected service's Authentik blueprint is its own, but lives in the Authentik
      // service's blueprint folder ("sso" in this stack), owned by that service's user.
      const home = String(f.inputs.path).includes("/blueprints/edgeplane/") ? "sso" : f.inputs.service;
      assert.equal(f.inputs.owner, `ep-${home}`, String(f.inputs.path));
      assert.ok(String(f.inputs.path).startsWith(`/var/lib/edgeplane/${home}/`), String(f.inputs.path));
    }
    const hostWide = files.filter((x) => x.inputs.service === null);
    assert.ok(hostWide.length > 0);
    for (const f of hostWide) assert.deepEqual([f.inputs.host, f.inputs.owner], ["edge", "root"]);
    assert.deepEqual([...new Set(files.filter((f) => f.inputs.service === "vllm").map((f) => f.inputs.host))], ["gpu"]);
  });
});
