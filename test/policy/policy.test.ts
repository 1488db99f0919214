/**
 * The policy pack against the resources of the real example stack (so the program and
 * the pack agree), and against broken copies of them, run through the pack's own
 * policies the way Pulumi's analyzer calls them: a component shows the outputs its
 * registerOutputs set (what the engine records for it), a custom resource its inputs.
 * test/engine/preview.test.ts runs the same pack under the real engine.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, it } from "node:test";
import type { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { loadStackConfig } from "../../plan/config";
import { runProgram } from "../../plan/run";
import { policies } from "../../policy/policies";
import { API_TOKEN, DNS_RECORD, type Resource } from "../../policy/rules";

const root = path.join(__dirname, "..", "..");
let good: Resource[] = [];

before(async () => {
  const records = await runProgram(loadStackConfig(root, "prod"));
  good = records.map((r) => ({ type: r.type, name: r.name, props: structuredClone(r.custom ? r.inputs : (r.outputs ?? {})) }));
});

/** Every violation the pack reports for these resources, as Pulumi would collect them. */
async function violations(resources: Resource[]): Promise<string[]> {
  const found: string[] = [];
  const asPolicy = (r: Resource) =>
    ({ ...r, urn: `urn:pulumi:prod::edgeplane::${r.type}::${r.name}`, opts: {}, stackTags: new Map() }) as any;
  for (const policy of policies) {
    const report = (message: string) => found.push(`${policy.name}: ${message}`);
    if ("validateStack" in policy) {
      await (policy as StackValidationPolicy).validateStack({ resources: resources.map(asPolicy) } as any, report);
    }
    const validate = (policy as Partial<ResourceValidationPolicy>).validateResource;
    if (validate) {
      for (const r of resources) for (const v of [validate].flat()) await v!(asPolicy(r), report);
    }
  }
  return found;
}

function edited(match: (r: Resource) => boolean, edit: (props: Record<string, any>) => void): Resource[] {
  let hit = false;
  const out = good.map((r) => {
    if (hit || !match(r)) return r;
    hit = true;
    const copy = { ...r, props: structuredClone(r.props) };
    edit(copy.props);
    return copy;
  });
  assert.ok(hit, "the edit matched no resource");
  return out;
}
const named = (type: string, name: string) => (r: Resource) => r.type === type && r.name === name;

describe("the policy pack", () => {
  it("passes every resource of the example stack", async () => {
    assert.deepEqual(await violations(good), []);
  });

  it("rejects a proxied record, and one pointing away from the ingress", async () => {
    const proxied = edited(named(DNS_RECORD, "grafana-dns"), (p) => (p.proxied = true));
    assert.deepEqual(await violations(proxied), [
      "records-point-at-the-ingress: DNS record grafana-dns (A grafana.example.org): is proxied; Envoy must receive the client's TLS directly (proxied: false)",
    ]);
    const elsewhere = edited(named(DNS_RECORD, "grafana-dns"), (p) => (p.content = "192.0.2.66"));
    assert.deepEqual(await violations(elsewhere), [
      "records-point-at-the-ingress: DNS record grafana-dns (A grafana.example.org): points at 192.0.2.66, not at the ingress host (203.0.113.10 or 100.64.0.1)",
    ]);
  });

  it("rejects a token with another permission, a second zone, or an account-wide resource", async () => {
    const extra = edited(named(API_TOKEN, "grafana-token"), (p) =>
      p.policies[0].permissionGroups.push({ id: "e6d2666161e84845a636613608cee8d5" }),
    );
    assert.deepEqual(await violations(extra), [
      "tokens-dns-on-one-zone: API token grafana-token: grants permission groups beyond DNS Write and Zone Read: e6d2666161e84845a636613608cee8d5",
    ]);
    const twoZones = edited(named(API_TOKEN, "grafana-token"), (p) => {
      const zones = JSON.parse(p.policies[0].resources);
      zones["com.cloudflare.api.account.zone.0123456789abcdef0123456789abcdef"] = "*";
      p.policies[0].resources = JSON.stringify(zones);
    });
    assert.match((await violations(twoZones)).join("\n"), /grafana-token: must be limited to one zone/);
    const account = edited(named(API_TOKEN, "grafana-token"), (p) => {
      p.policies[0].resources = JSON.stringify({
        "com.cloudflare.api.account.abc": { "com.cloudflare.api.account.zone.*": "*" },
      });
    });
    assert.match((await violations(account)).join("\n"), /grafana-token: must be limited to one zone/);
  });

  it("rejects a command whose text carries a private key or an inline token", async () => {
    const pem = edited(named("command:remote:Command", "grafana-deploy"), (p) => {
      p.create += "\necho '-----BEGIN OPENSSH PRIVATE KEY-----' > /tmp/k\n";
    });
    assert.deepEqual(await violations(pem), [
      "no-secret-in-command-text: command grafana-deploy: its create text contains a private key; pass secrets on stdin",
    ]);
    const token = edited(named("command:remote:Command", "grafana-deploy"), (p) => {
      p.create = p.create.replace("CF_API_TOKEN=$(cat)", "CF_API_TOKEN=Zx9Kq2Lm8Np4Rs6Tv0Wy3Bc5Df7Gh1Jk");
    });
    assert.match((await violations(token)).join("\n"), /grafana-deploy: its create text contains a secret assigned inline/);
  });

  it("rejects a pod that publishes its app port, and an app on the host network", async () => {
    // A pod lists its files, content included; the edits change one file's content.
    const grafana = named("edgeplane:index:SidecarPod", "grafana");
    const inFile = (suffix: string, edit: (content: string) => string) => (p: Record<string, any>) => {
      const file = p.files.find((f: { path: string }) => f.path.endsWith(suffix));
      file.content = edit(file.content);
    };
    const published = edited(
      grafana,
      inFile("/grafana-app.container", (c) => c.replace("[Container]\n", "[Container]\nPublishPort=3000:3000\n")),
    );
    assert.match(
      (await violations(published)).join("\n"),
      /grafana-app\.container \(pod grafana on edge\): publishes 3000:3000 from a \[Container\]/,
    );
    const podPublishesApp = edited(
      grafana,
      inFile("/grafana.pod", (c) => c.replace("[Pod]\n", "[Pod]\nPublishPort=0.0.0.0:3000:3000\n")),
    );
    assert.match(
      (await violations(podPublishesApp)).join("\n"),
      /the pod publishes 0\.0\.0\.0:3000:3000; only Caddy's port 443 may be published/,
    );
    // A tailnet address does not make the app port publishable: only a port where the
    // pod's own Caddyfile serves metrics, and nothing else, is.
    const appOnTailnet = edited(
      grafana,
      inFile("/grafana.pod", (c) => c.replace("[Pod]\n", "[Pod]\nPublishPort=100.64.0.1:3000:3000\n")),
    );
    assert.match((await violations(appOnTailnet)).join("\n"), /the pod publishes 100\.64\.0\.1:3000:3000/);
    const metricsInPublic = edited(
      grafana,
      // The metrics site's line (host port = pod port), not Caddy's (…:443), also on the tailnet address.
      inFile("/grafana.pod", (c) => c.replace(/^PublishPort=100\.64\.0\.1:(\d+):\1$/m, "PublishPort=0.0.0.0:$1:$1")),
    );
    assert.match((await violations(metricsInPublic)).join("\n"), /the pod publishes 0\.0\.0\.0:30443:30443/);
    const metricsSiteProxies = edited(
      grafana,
      inFile("/caddy/Caddyfile", (c) =>
        c.replace("\tmetrics /metrics\n", "\tmetrics /metrics\n\treverse_proxy localhost:3000\n"),
      ),
    );
    assert.match((await violations(metricsSiteProxies)).join("\n"), /the pod publishes 100\.64\.0\.1:30443:30443/);
    const hostNet = edited(
      grafana,
      inFile("/grafana-app.container", (c) => c.replace("[Container]\n", "[Container]\nNetwork=host\n")),
    );
    assert.match((await violations(hostNet)).join("\n"), /a container on the host network/);
  });
});
