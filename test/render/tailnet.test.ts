import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, it } from "node:test";
import {
  hostAlias,
  parseTailnetPolicy,
  renderTailnetPolicy,
  tailnetPolicyProblems,
  type PolicyDocument,
  type TailnetTestUsers,
} from "../../components/tailnet/render";
import type { Model, Service } from "../../model/types";
import { runProgram, type RecordedResource } from "../../plan/run";
import { fixtures, fleet, single } from "../fixtures/models";
import { assertGolden, pruneGolden } from "../golden";

type Obj = Record<string, any>;

/** An operator's policy: their groups, an ACL and grant of their own, ssh and a test. */
const base: PolicyDocument = {
  groups: { "group:admins": ["alice@example.org"], "group:ops": ["olga@example.org"] },
  acls: [{ action: "accept", src: ["group:admins"], dst: ["edgeplane-edge:22", "edgeplane-gpu:22"] }],
  grants: [{ src: ["group:ops"], dst: ["tag:monitoring"], ip: ["tcp:9100"] }],
  ssh: [{ action: "check", src: ["group:admins"], dst: ["tag:edgeplane-host"], users: ["deploy"] }],
  tests: [{ src: "alice@example.org", accept: ["100.64.0.1:22"] }],
  tagOwners: { "tag:monitoring": ["group:ops"] },
};
const users: TailnetTestUsers = { members: { admins: "alice@example.org" }, nonMember: "mallory@example.org" };

/** A stack whose tailnet service has no auth: only the tailnet's admins may reach it. */
const adminOnly: Model = {
  ...fleet,
  services: fleet.services.map((s): Service => {
    if (s.name !== "pgadmin") return s;
    const { auth, ...rest } = s;
    return rest;
  }),
};

const policy = (m: Model, b: PolicyDocument = base, u: TailnetTestUsers = users): Obj =>
  parseTailnetPolicy(renderTailnetPolicy(m, b, u));
const tailnetServices = (m: Model) => m.services.filter((s) => s.exposure === "tailnet");

describe("Tailnet policy: golden files", () => {
  const written: string[] = [];
  const cases: Record<string, [Model, PolicyDocument, TailnetTestUsers]> = {
    ...Object.fromEntries(Object.entries(fixtures).map(([name, model]) => [name, [model, base, users]])),
    "fleet-empty-base": [fleet, {}, { nonMember: "mallory@example.org" }],
    "admin-only": [adminOnly, base, { members: { "autogroup:admin": "root@example.org" }, nonMember: "mallory@example.org" }],
  };
  for (const [name, [model, b, u]] of Object.entries(cases)) {
    const rel = `tailnet/${name}.hujson`;
    written.push(rel);
    it(rel, () => assertGolden(rel, renderTailnetPolicy(model, b, u)));
  }
  it("has no stale golden files", () => pruneGolden("tailnet", written));
});

describe("Tailnet policy: what matters", () => {
  it("has an accept test for each allowed group and a deny test for a non-member, for each tailnet service", () => {
    const p = policy(fleet);
    const ingress = "100.64.0.1:443";
    for (const service of tailnetServices(fleet)) {
      for (const group of service.auth!.groups) {
        const src = users.members?.[group] ?? `group:${group}`;
        assert.ok(
          p.tests.some((t: Obj) => t.src === src && t.accept?.includes(ingress)),
          `${service.name}: no accept test for ${src}`,
        );
      }
      assert.ok(
        p.tests.some((t: Obj) => t.src === users.nonMember && t.deny?.includes(ingress)),
        `${service.name}: no deny test for a non-member`,
      );
    }
  });

  it("tests a group without a named member as the group, and an admin-only service as the named admin", () => {
    const p = policy(fleet, base, { nonMember: "mallory@example.org" });
    assert.ok(p.tests.some((t: Obj) => t.src === "group:admins" && t.accept?.includes("100.64.0.1:443")));
    const admin = policy(adminOnly, base, { members: { "autogroup:admin": "root@example.org" }, nonMember: "m@example.org" });
    assert.ok(admin.tests.some((t: Obj) => t.src === "root@example.org" && t.accept?.includes("100.64.0.1:443")));
    assert.ok(!admin.tests.some((t: Obj) => String(t.src).startsWith("autogroup:")), "Tailscale rejects autogroups in tests");
    const grant = admin.grants.find((g: Obj) => g.dst.includes("edgeplane-edge") && g.ip.includes("tcp:443"));
    assert.deepEqual(grant.src, ["autogroup:admin"]);
  });

  it("refuses to render what Tailscale's tests could not check, naming the key", () => {
    assert.deepEqual(tailnetPolicyProblems(fleet, base, { members: { admins: "alice@example.org" } }), [
      "edgeplane:tailscale.testUsers.nonMember: is required when a service has exposure: tailnet (pgadmin); name a login in none of their groups, so Tailscale's own tests prove it cannot reach them",
    ]);
    assert.deepEqual(tailnetPolicyProblems(adminOnly, base, { nonMember: "m@example.org" }), [
      'edgeplane:tailscale.testUsers.members: service "pgadmin" is tailnet-only without auth, so only tailnet admins may reach it; Tailscale tests cannot run as an autogroup, so set "autogroup:admin" to one admin\'s login',
    ]);
    assert.deepEqual(tailnetPolicyProblems(fleet, base, { nonMember: "alice@example.org" }), [
      'edgeplane:tailscale.testUsers.nonMember: alice@example.org is in group:admins in the base policy, which may reach service "pgadmin"',
    ]);
    assert.throws(() => renderTailnetPolicy(fleet, base, {}), /edgeplane:tailscale\.testUsers\.nonMember: is required/);
    // A stack without tailnet services needs no test users.
    assert.deepEqual(tailnetPolicyProblems(single, {}, {}), []);
  });

  it("lets only Envoy reach the pods of other hosts, and those pods only what they call on the ingress", () => {
    const p = policy(fleet);
    const generated = p.grants.slice(base.grants ? (base.grants as unknown[]).length : 0);
    assert.deepEqual(generated, [
      { src: ["group:admins"], dst: ["edgeplane-edge"], ip: ["tcp:443"] },
      // vllm's Caddy and its two l7 backends on gpu, from Envoy only
      { src: ["edgeplane-edge"], dst: ["edgeplane-gpu"], ip: ["tcp:8001", "tcp:8002", "tcp:10450"] },
      // vllm's Caddy proxies to Envoy's L7 listener; no pod on gpu has auth, so no :443
      { src: ["edgeplane-gpu"], dst: ["edgeplane-edge"], ip: ["tcp:20450"] },
      // the metrics endpoints, for admins only: Envoy's and the pods' on edge, vllm's on gpu
      { src: ["autogroup:admin"], dst: ["edgeplane-edge"], ip: ["tcp:9902", "tcp:30400", "tcp:30443", "tcp:30460"] },
      { src: ["autogroup:admin"], dst: ["edgeplane-gpu"], ip: ["tcp:30450"] },
    ]);
    const deny = p.tests.find((t: Obj) => t.src === users.nonMember).deny;
    assert.ok(deny.includes("100.64.0.2:10450"), "a non-member must not reach a remote pod's Caddy directly");
  });

  it("tests that a non-member reaches no hop behind Envoy: Caddy ports, L7 listeners, L7 backends", () => {
    const deny: string[] = policy(fleet).tests.find((t: Obj) => t.src === users.nonMember).deny;
    assert.deepEqual(deny, [
      "100.64.0.1:443",
      "100.64.0.2:10450", // vllm's Caddy on gpu
      "100.64.0.1:20450", // Envoy's L7 listener for vllm
      "100.64.0.2:8001", // vllm's backends on gpu
      "100.64.0.2:8002",
      // the metrics endpoints (admins only)
      "100.64.0.1:9902",
      "100.64.0.1:30400",
      "100.64.0.1:30443",
      "100.64.0.1:30460",
      "100.64.0.2:30450",
    ]);
    // Every port a generated grant opens between the fleet's hosts is one a non-member is tested against.
    const opened = policy(fleet)
      .grants.filter((g: Obj) => g.src.every((s: string) => s.startsWith("edgeplane-")))
      .flatMap((g: Obj) => g.ip.map((ip: string) => ip.slice("tcp:".length)));
    for (const port of opened)
      assert.ok(
        deny.some((d) => d.endsWith(`:${port}`)),
        `port ${port} has no deny test`,
      );
  });

  it("lets only admins reach the metrics endpoints, and has Tailscale test both sides", () => {
    const endpoints = ["100.64.0.1:9902", "100.64.0.1:30400", "100.64.0.1:30443", "100.64.0.1:30460", "100.64.0.2:30450"];
    const grants = (p: Obj) => p.grants.filter((g: Obj) => g.ip.some((port: string) => /^tcp:(9902|30\d{3})$/.test(port)));
    assert.ok(grants(policy(fleet)).every((g: Obj) => g.src.length === 1 && g.src[0] === "autogroup:admin"));
    const deny = policy(fleet).tests.find((t: Obj) => t.src === users.nonMember).deny;
    for (const e of endpoints) assert.ok(deny.includes(e), `non-member denied ${e}`);
    // With an admin's login to test as, Tailscale also proves an admin gets in.
    const withAdmin = { ...users, members: { ...users.members, "autogroup:admin": "root@example.org" } };
    const p = parseTailnetPolicy(renderTailnetPolicy(fleet, base, withAdmin)) as Obj;
    assert.deepEqual(p.tests.find((t: Obj) => t.src === "root@example.org")?.accept, endpoints);
  });

  it("lets a remote pod with auth reach Authentik through the ingress", () => {
    const gpuAuth: Model = {
      ...fleet,
      services: fleet.services.map((s) => (s.name === "vllm" ? { ...s, auth: { groups: ["ml"] } } : s)),
    };
    const p = policy(gpuAuth);
    assert.deepEqual(
      p.grants.find((g: Obj) => g.src[0] === "edgeplane-gpu"),
      { src: ["edgeplane-gpu"], dst: ["edgeplane-edge"], ip: ["tcp:443", "tcp:20450"] },
    );
  });

  it("keeps every base entry, appends generated ones after them, and does not repeat one the base has", () => {
    const p = policy(fleet);
    for (const key of ["acls", "grants", "tests", "ssh"] as const) {
      const original = base[key] as unknown[];
      assert.deepEqual(p[key].slice(0, original.length), original, `base ${key} kept first`);
    }
    assert.deepEqual(p.groups, base.groups);
    assert.deepEqual(p.tagOwners["tag:monitoring"], ["group:ops"]);
    assert.deepEqual(p.tagOwners["tag:edgeplane-ingress"], ["autogroup:admin"]);
    assert.deepEqual(p.tagOwners["tag:edgeplane-host"], ["autogroup:admin"]);
    assert.deepEqual(p.hosts, { "edgeplane-edge": "100.64.0.1", "edgeplane-gpu": "100.64.0.2" });
    // Feeding the rendered policy back in as the base (what an adopted policy looks
    // like) changes nothing.
    const again = renderTailnetPolicy(fleet, p, users);
    assert.equal(again, renderTailnetPolicy(fleet, base, users));
  });

  it("names the key when the base defines a generated host or tag differently", () => {
    assert.deepEqual(
      tailnetPolicyProblems(fleet, { ...base, hosts: { "edgeplane-gpu": "100.64.9.9", other: "100.64.0.9" } }, users),
      [
        'edgeplane:tailscale.policy.hosts.edgeplane-gpu: is generated by edgeplane as "100.64.0.2" (the tailnet address of host "gpu"); remove it from the base policy',
      ],
    );
    assert.deepEqual(tailnetPolicyProblems(fleet, { ...base, tagOwners: { "tag:edgeplane-host": ["group:ops"] } }, users), [
      'edgeplane:tailscale.policy.tagOwners.tag:edgeplane-host: is generated by edgeplane as ["autogroup:admin"] (a tag edgeplane owns); remove it from the base policy',
    ]);
    assert.deepEqual(tailnetPolicyProblems(fleet, { grants: {} }, users), ["edgeplane:tailscale.policy.grants: must be a list"]);
    assert.deepEqual(tailnetPolicyProblems(fleet, [], users), [
      "edgeplane:tailscale.policy: must be an object (a tailnet policy file as JSON)",
    ]);
    // The same value is not a conflict: an adopted policy already has them.
    assert.deepEqual(tailnetPolicyProblems(fleet, { hosts: { "edgeplane-gpu": "100.64.0.2" } }, users), []);
  });

  it("renders the same bytes for the same content, whatever the key order", () => {
    const reordered = Object.fromEntries(
      Object.entries(JSON.parse(JSON.stringify(base)) as Obj)
        .reverse()
        .map(([k, v]) => [
          k,
          v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v,
        ]),
    );
    assert.equal(renderTailnetPolicy(fleet, reordered, users), renderTailnetPolicy(fleet, base, users));
    assert.match(renderTailnetPolicy(fleet, base, users), /^\/\/ managed by edgeplane — tailnet policy/);
  });

  it("gives every host an alias", () => {
    assert.deepEqual(Object.keys(policy(single, {}, {}).hosts), single.hosts.map(hostAlias));
  });
});

describe("TailnetPolicy component", () => {
  let records: RecordedResource[] = [];
  const acls = () => records.filter((r) => r.type === "tailscale:index/acl:Acl");

  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-tailnet-"));
    const program = path.join(dir, "program.ts");
    const root = path.join(__dirname, "..", "..");
    fs.writeFileSync(
      program,
      [
        `const { TailnetPolicy } = require(${JSON.stringify(path.join(root, "components/tailnet"))});`,
        `const { fleet } = require(${JSON.stringify(path.join(root, "test/fixtures/models"))});`,
        `const users = ${JSON.stringify(users)};`,
        `new TailnetPolicy("tailnet", { platform: fleet, base: ${JSON.stringify(base)}, testUsers: users });`,
        `new TailnetPolicy("adopted", { platform: fleet, base: {}, testUsers: users, adopt: true });`,
      ].join("\n"),
    );
    records = await runProgram({ project: "edgeplane", stack: "test", values: {}, secretKeys: [] }, program);
  });

  it("owns the whole policy with one Acl that never overwrites or resets a policy it did not create", () => {
    const acl = acls().find((r) => r.name === "tailnet-acl")!;
    assert.equal(acl.parent, "tailnet");
    assert.deepEqual(
      { ...acl.inputs, acl: undefined },
      { acl: undefined, overwriteExistingContent: false, resetAclOnDestroy: false },
    );
    assert.equal(acl.inputs.acl, renderTailnetPolicy(fleet, base, users));
    assert.equal(acl.importId, null);
  });

  it("adopts the existing policy when told to", () => {
    const acl = acls().find((r) => r.name === "adopted-acl")!;
    assert.equal(acl.importId, "acl");
  });
});
