/**
 * Least privilege for each pod's Cloudflare token, on the contract stack with the
 * optional settings turned on: ACME challenge delegation, egress restriction, a token
 * rotation label and adoption of existing records. Runs the real program
 * under the mock runtime (one run per file: the runtime is process-global).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, it } from "node:test";
import YAML from "yaml";
import { loadStackConfig, SECRET_PLACEHOLDER } from "../plan/config";
import { runProgram, type RecordedResource } from "../plan/run";

const root = path.join(__dirname, "..");
const PROD_ZONE = "fedcba9876543210fedcba9876543210";
const CHALLENGE_ZONE = "0000aaaa1111bbbb2222cccc3333dddd";
const GRAFANA_A = "11111111111111111111111111111111";

let records: RecordedResource[] = [];
const byName = (type: string, name: string) => {
  const r = records.find((x) => x.type === type && x.name === name);
  assert.ok(r, `no ${type} named ${name}`);
  return r;
};
const TOKEN = "cloudflare:index/apiToken:ApiToken";
const DNS = "cloudflare:index/dnsRecord:DnsRecord";
const COMMAND = "command:remote:Command";

before(async () => {
  const doc = YAML.parse(fs.readFileSync(path.join(__dirname, "stacks", "contract.yaml"), "utf8"));
  const c = doc.config;
  c["edgeplane:cloudflare"].challengeZone = { id: CHALLENGE_ZONE, name: "acme.example.com" };
  c["edgeplane:hosts"].edge.egressIPs = ["198.51.100.7", "2001:db8:1::/64"];
  c["edgeplane:services"].grafana.tokenRotation = "2026-11";
  c["edgeplane:adopt"] = { records: { grafana: { A: GRAFANA_A } } };
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-tokens-")), "Pulumi.contract.yaml");
  fs.writeFileSync(file, YAML.stringify(doc));
  records = await runProgram(loadStackConfig(root, "contract", file));
});

describe("pod tokens with challenge delegation", () => {
  it("lets each pod's token edit only the challenge zone, never the zone of its records", () => {
    for (const token of records.filter((r) => r.type === TOKEN)) {
      const policies = token.inputs.policies as { resources: string }[];
      assert.deepEqual(
        policies.map((p) => JSON.parse(p.resources)),
        [{ [`com.cloudflare.api.account.zone.${CHALLENGE_ZONE}`]: "*" }],
        token.name,
      );
    }
  });

  it("points each service's _acme-challenge name into the challenge zone, and Caddy there", () => {
    const cname = byName(DNS, "grafana-acme-challenge").inputs;
    assert.deepEqual(
      [cname.zoneId, cname.type, cname.name, cname.content, cname.proxied],
      [PROD_ZONE, "CNAME", "_acme-challenge.grafana.example.net", "grafana.example.net.acme.example.com", false],
    );
    const files = byName("edgeplane:index:SidecarPod", "grafana").inputs.files as { path: string; content: string }[];
    const caddyfile = files.find((f) => f.path.endsWith("/caddy/Caddyfile"))!.content;
    assert.match(caddyfile, /^\t\tdns_challenge_override_domain grafana\.example\.net\.acme\.example\.com$/m);
    // Every pod gets one, tailnet services included: their certificates are public too.
    const names = records.filter((r) => r.type === DNS && r.inputs.type === "CNAME").map((r) => r.name);
    assert.deepEqual(
      names.sort(),
      ["adminer", "grafana", "sso", "vllm"].map((s) => `${s}-acme-challenge`),
    );
  });
});

describe("pod tokens limited to the host's egress addresses", () => {
  it("makes tokens of pods on a host with egressIPs usable only from them, as CIDRs", () => {
    const condition = byName(TOKEN, "grafana-token").inputs.condition as { requestIp: { ins: string[] } };
    assert.deepEqual(condition.requestIp.ins, ["198.51.100.7/32", "2001:db8:1::/64"]);
  });

  it("leaves tokens of pods on other hosts unrestricted", () => {
    assert.equal(byName(TOKEN, "vllm-token").inputs.condition, undefined);
  });
});

describe("token rotation", () => {
  it("names the token after the rotation label and replaces it when the name changes", () => {
    const token = byName(TOKEN, "grafana-token");
    assert.equal(token.inputs.name, "edgeplane-contract-grafana-2026-11");
    assert.deepEqual(token.replaceOnChanges, ["name"]);
    assert.equal(byName(TOKEN, "vllm-token").inputs.name, "edgeplane-contract-vllm");
  });

  it("hands the new token to the pod's deploy on stdin, which reloads Caddy with it (see test/pod-deploy.test.ts)", () => {
    const deploy = byName(COMMAND, "grafana-deploy");
    assert.equal(deploy.inputs.stdin, SECRET_PLACEHOLDER);
    // The new token's value on stdin re-runs the deploy; its text does not depend on it.
    assert.doesNotMatch(String(deploy.inputs.create), /grafana-token|2026-11/);
    assert.match(
      String(deploy.inputs.create),
      /^# secret grafana-cf-api-token \(value on stdin only; a change reloads Caddy\)$/m,
    );
  });
});

describe("adoption", () => {
  it("imports the listed record instead of creating it", () => {
    assert.equal(byName(DNS, "grafana-dns").importId, `${PROD_ZONE}/${GRAFANA_A}`);
  });

  it("creates everything not listed, and every token: a token's value cannot be imported", () => {
    assert.equal(byName(DNS, "grafana-dns-v6").importId, null);
    for (const token of records.filter((r) => r.type === TOKEN)) assert.equal(token.importId, null, token.name);
  });
});
