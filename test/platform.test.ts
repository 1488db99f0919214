/**
 * The platform-wide pieces of the example stack (Pulumi.prod.yaml), from the real
 * program under the mock runtime: Authentik applications and the outpost, the tailnet
 * policy, and the ingress host's /etc/hosts block.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import YAML from "yaml";
import { parseTailnetPolicy } from "../components/tailnet/render";
import { loadStackConfig } from "../plan/config";
import { runProgram, type RecordedResource } from "../plan/run";

const root = path.join(__dirname, "..");
let records: RecordedResource[] = [];
const ofType = (type: string) => records.filter((r) => r.type === type);
const fileContent = (name: string) => {
  const install = records.find((r) => r.type === "command:remote:Command" && r.name === `${name}-install`);
  assert.ok(install, `no file ${name}`);
  return String(install.inputs.stdin);
};
const prodServices = YAML.parse(fs.readFileSync(path.join(__dirname, "..", "Pulumi.prod.yaml"), "utf8")).config[
  "edgeplane:services"
] as Record<string, { auth?: unknown }>;
const protectedServices = Object.keys(prodServices)
  .filter((s) => prodServices[s]!.auth)
  .sort();

before(async () => {
  records = await runProgram(loadStackConfig(root, "prod"));
});

describe("Authentik in the example stack", () => {
  it("gives every service with auth one application, and none to the others", () => {
    assert.deepEqual(
      ofType("edgeplane:index:AuthentikApp")
        .map((r) => r.name)
        .sort(),
      protectedServices.map((s) => `${s}-auth`),
    );
  });

  it("installs each blueprint on the Authentik host, after the Authentik pod", () => {
    for (const app of ofType("edgeplane:index:AuthentikApp")) {
      // A dependency on a component is a dependency on each of its resources.
      assert.ok(app.dependsOn.includes("authentik-deploy"), `${app.name} waits for the Authentik pod`);
    }
    const blueprints = ofType("edgeplane:index:RemoteFile").filter((f) => String(f.inputs.path).includes("/blueprints/"));
    assert.deepEqual([...new Set(blueprints.map((f) => f.inputs.host))], ["edge"]);
  });

  it("lists every protected service's provider on the embedded outpost, in one blueprint", () => {
    const outpost = YAML.parse(fileContent("authentik-outpost-blueprint"), {
      customTags: [
        { tag: "!KeyOf", resolve: (v: string) => `KeyOf ${v}` },
        { tag: "!Find", collection: "seq", resolve: (v: unknown) => v },
      ],
    });
    const text = JSON.stringify(outpost);
    for (const s of protectedServices) assert.ok(text.includes(`edgeplane-${s}`), `outpost names ${s}`);
    assert.equal(ofType("edgeplane:index:AuthentikOutpost").length, 1);
  });
});

describe("the tailnet policy in the example stack", () => {
  it("is one whole-file policy that never overwrites a policy it did not create", () => {
    const [acl, ...more] = ofType("tailscale:index/acl:Acl");
    assert.ok(acl);
    assert.deepEqual(more, []);
    assert.equal(acl.inputs.overwriteExistingContent, false);
    assert.equal(acl.importId, null, "adopt is off in the example");
  });

  it("keeps the operator's groups and adds tests that a non-member cannot reach tailnet services", () => {
    const acl = ofType("tailscale:index/acl:Acl")[0]!;
    const policy = parseTailnetPolicy(String(acl.inputs.acl)) as {
      groups: Record<string, string[]>;
      tests: { src: string; accept?: string[]; deny?: string[] }[];
    };
    assert.deepEqual(policy.groups["group:admins"], ["alice@example.org"]);
    const denied = policy.tests.filter((t) => t.src === "sam@example.org").flatMap((t) => t.deny ?? []);
    assert.ok(
      denied.some((d) => d.endsWith(":443")),
      JSON.stringify(policy.tests),
    );
    const allowed = policy.tests.filter((t) => t.src === "alice@example.org").flatMap((t) => t.accept ?? []);
    assert.ok(allowed.some((d) => d.endsWith(":443")));
  });
});

describe("the ingress host's /etc/hosts block", () => {
  it("resolves the Authentik name (and every other served name) to the ingress's tailnet address", () => {
    const block = fileContent("edge-hosts-block");
    assert.match(block, /^100\.64\.0\.1\tauth\.example\.org$/m);
    const splice = records.find((r) => r.name === "edge-hosts");
    assert.ok(splice?.dependsOn.includes("edge-hosts-block-install"));
  });
});
