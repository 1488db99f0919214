import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, it } from "node:test";
import YAML from "yaml";
import {
  blueprintEntry,
  Find,
  KeyOf,
  parseBlueprint,
  serializeBlueprint,
  type Blueprint,
} from "../../components/authentik/blueprint";
import { RESULT_PREFIX } from "../../components/authentik/apply";
import {
  appBlueprintName,
  appIdentity,
  appBlueprintPath,
  authentikContainer,
  blueprintDir,
  blueprintInstancePath,
  BLUEPRINTS_IN_CONTAINER,
  DEFAULT_FLOWS,
  EMBEDDED_OUTPOST,
  outpostBlueprintPath,
  renderAppBlueprint,
  renderAppRemovalBlueprint,
  renderBlueprintFiles,
  renderOutpostBlueprint,
} from "../../components/authentik/render";
import { renderAppContainerUnit } from "../../components/pod/render/units";
import type { Model, Service } from "../../model/types";
import { runProgram, type RecordedResource } from "../../plan/run";
import { fixtures, fleet, single } from "../fixtures/models";
import { assertGolden, pruneGolden } from "../golden";

type Obj = Record<string, any>;

const service = (m: Model, name: string): Service => {
  const s = m.services.find((x) => x.name === name);
  assert.ok(s, `no service ${name}`);
  return s;
};
const entries = (text: string): Obj[] => (parseBlueprint(text) as Obj).entries;

describe("Authentik blueprints: golden files", () => {
  const written: string[] = [];
  for (const [fixture, model] of Object.entries(fixtures)) {
    for (const file of renderBlueprintFiles(model)) {
      const rel = `authentik/${fixture}/${path.basename(file.path)}`;
      written.push(rel);
      it(rel, () => assertGolden(rel, file.content));
    }
  }
  it("has no stale golden files", () => pruneGolden("authentik", written));
});

describe("Authentik blueprints: what matters", () => {
  const files = renderBlueprintFiles(fleet);
  const outpost = files.find((f) => f.path === outpostBlueprintPath(fleet))!;

  it("gives a blueprint to every protected service and to no other", () => {
    assert.deepEqual(
      files.map((f) => [f.path, f.service]),
      [
        ["/var/lib/edgeplane/authentik/blueprints/edgeplane/edgeplane-grafana.yaml", "grafana"],
        ["/var/lib/edgeplane/authentik/blueprints/edgeplane/edgeplane-pgadmin.yaml", "pgadmin"],
        ["/var/lib/edgeplane/authentik/blueprints/edgeplane/embedded-outpost.yaml", "authentik"],
      ],
    );
    assert.deepEqual(renderBlueprintFiles(single), [], "a stack without auth writes no blueprint at all");
    for (const name of ["authentik", "vllm"]) {
      assert.throws(() => renderAppBlueprint(fleet, service(fleet, name)), /gets no Authentik application/);
    }
  });

  it("puts the blueprints in the folder the Authentik containers mount at /blueprints/edgeplane", () => {
    assert.equal(blueprintDir(fleet), "/var/lib/edgeplane/authentik/blueprints/edgeplane");
    assert.equal(BLUEPRINTS_IN_CONTAINER, "/blueprints/edgeplane");
    for (const f of files) assert.equal(path.dirname(f.path), blueprintDir(fleet));
    // Authentik names an instance by its path relative to /blueprints.
    assert.equal(blueprintInstancePath(files[0]!.path), "edgeplane/edgeplane-grafana.yaml");
  });

  it("checks blueprints in the container the Authentik pod actually runs", () => {
    const unit = renderAppContainerUnit(fleet, service(fleet, "authentik"));
    assert.match(unit, new RegExp(`^ContainerName=${authentikContainer(fleet)}$`, "m"));
    assert.equal(authentikContainer(fleet), "authentik-app");
  });

  it("emits !Find and !KeyOf as real YAML tags, and reads back to the same bytes", () => {
    const text = renderAppBlueprint(fleet, service(fleet, "grafana"));
    assert.match(
      text,
      /^ {6}authorization_flow: !Find \[ authentik_flows\.flow, \[ slug, default-provider-authorization-implicit-consent \] \]$/m,
    );
    assert.match(text, /^ {6}provider: !KeyOf provider$/m);
    assert.match(text, /^ {6}policy: !KeyOf access$/m);
    assert.doesNotMatch(text, /["']!(Find|KeyOf)/, "a quoted tag would be a plain string to Authentik");
    for (const file of files) {
      const parsed = parseBlueprint(file.content) as Blueprint;
      const header = file.content.split("\n")[0]!.slice(2);
      assert.equal(serializeBlueprint(header, parsed), file.content, `${file.path} does not round-trip`);
    }
    const [provider] = entries(text);
    assert.ok(provider!.attrs.authorization_flow instanceof Find);
    assert.deepEqual(
      { ...provider!.attrs.authorization_flow },
      {
        model: "authentik_flows.flow",
        field: "slug",
        value: DEFAULT_FLOWS.authorization,
      },
    );
    // Without the tags, a parser sees tagged nodes, not strings that happen to start with "!".
    const plain = YAML.parseDocument(text);
    assert.equal(plain.warnings.length + plain.errors.length > 0, true, "yaml without the custom tags should not know them");
  });

  it("protects each service with a forward_single provider for its URL and one access policy for its groups", () => {
    const [provider, policy, application, ...bindings] = entries(renderAppBlueprint(fleet, service(fleet, "grafana")));
    assert.deepEqual(provider!.identifiers, { name: "edgeplane-grafana" });
    assert.equal(provider!.attrs.mode, "forward_single");
    assert.equal(provider!.attrs.external_host, "https://grafana.example.org");
    assert.deepEqual(
      { ...provider!.attrs.invalidation_flow },
      {
        model: "authentik_flows.flow",
        field: "slug",
        value: "default-provider-invalidation-flow",
      },
    );
    assert.deepEqual(application!.identifiers, { slug: "grafana" });
    assert.deepEqual(application!.attrs.provider, new KeyOf(provider!.id));
    assert.equal(application!.attrs.meta_launch_url, "https://grafana.example.org");
    // Every binding must pass: one edgeplane did not write can only narrow access.
    assert.equal(application!.attrs.policy_engine_mode, "all");
    assert.deepEqual(policy!.identifiers, { name: "edgeplane-grafana-access" });
    assert.equal(
      policy!.attrs.expression,
      '# managed by edgeplane: members of any of these groups may enter, nobody else\nreturn ak_is_group_member(request.user, name__in=["admins", "ops"])\n',
    );
    // Exactly one binding, of that policy: a group taken out of auth.groups changes the
    // policy's expression, never leaves a binding behind.
    assert.deepEqual(
      bindings.map((b) => [b.model, b.identifiers.target.id, b.identifiers.policy.id, b.attrs]),
      [["authentik_policies.policybinding", application!.id, policy!.id, { order: 0, enabled: true, negate: false }]],
    );
    assert.ok(entries(renderAppBlueprint(fleet, service(fleet, "grafana"))).every((e) => e.state === undefined));
  });

  it("with authentik.createGroups, creates each group the service names, before the policy, and never updates one", () => {
    const creating: Model = { ...fleet, authentik: { ...fleet.authentik!, createGroups: true } };
    const pgadmin = {
      ...service(fleet, "pgadmin"),
      auth: { ...service(fleet, "pgadmin").auth!, grants: [{ group: "contractors", until: "2026-12-31T18:00:00Z" }] },
    };
    const [provider, ...rest] = entries(renderAppBlueprint(creating, pgadmin));
    const groups = rest.filter((e) => e.model === "authentik_core.group");
    // auth.groups, rules[].groups and grants[].group, once each, sorted: all before the access policy.
    assert.deepEqual(
      groups.map((g) => [g.state, g.identifiers, g.attrs]),
      [
        ["created", { name: "admins" }, undefined],
        ["created", { name: "contractors" }, undefined],
        ["created", { name: "dba" }, undefined],
      ],
    );
    assert.deepEqual(
      rest.slice(groups.length).map((e) => e.model),
      ["authentik_policies_expression.expressionpolicy", "authentik_core.application", "authentik_policies.policybinding"],
    );
    // Everything else is what the stack without the key renders.
    assert.deepEqual([provider, ...rest.slice(groups.length)], entries(renderAppBlueprint(fleet, pgadmin)));
    assert.equal(appIdentity(pgadmin, true).createsGroups, true);
    assert.equal(appIdentity(pgadmin).createsGroups, undefined);
  });

  it("writes group names into the expression as string literals, whatever they contain", () => {
    const odd = { ...service(fleet, "grafana"), auth: { groups: ['a"b', "c\\d", "é\nx"] } };
    const [, policy] = entries(renderAppBlueprint(fleet, odd));
    assert.ok(String(policy!.attrs.expression).includes('name__in=["a\\"b", "c\\\\d", "é\\nx"]'));
  });

  it("removes with the same identifiers and state absent, keeping an application that is not edgeplane's", () => {
    const grafana = service(fleet, "grafana");
    const all = entries(renderAppRemovalBlueprint(grafana));
    assert.deepEqual(
      all.map((e) => [e.model, e.state, e.identifiers]),
      [
        ["authentik_core.application", "absent", { slug: "grafana" }],
        ["authentik_policies_expression.expressionpolicy", "absent", { name: "edgeplane-grafana-access" }],
        ["authentik_providers_proxy.proxyprovider", "absent", { name: "edgeplane-grafana" }],
      ],
    );
    assert.deepEqual(
      entries(renderAppRemovalBlueprint(grafana, { keepApplication: true })).map((e) => e.model),
      ["authentik_policies_expression.expressionpolicy", "authentik_providers_proxy.proxyprovider"],
    );
  });

  it("uses the configured flows", () => {
    const [provider] = entries(
      renderAppBlueprint(fleet, service(fleet, "grafana"), { authorization: "my-consent", invalidation: "my-logout" }),
    );
    assert.equal(provider!.attrs.authorization_flow.value, "my-consent");
    assert.equal(provider!.attrs.invalidation_flow.value, "my-logout");
  });

  it("gives the outpost no allow-list of its own, and clears one left by an earlier version", () => {
    // Public paths are Caddy's decision (@public before forward_auth); the outpost would
    // take a second one on its own parse of the path (test/live/forward-auth.test.ts).
    for (const name of ["grafana", "pgadmin"]) {
      const svc = service(fleet, name);
      const [provider] = entries(renderAppBlueprint(fleet, svc));
      assert.ok("skip_path_regex" in provider!.attrs, `${name}: rendered, so an old value is overwritten`);
      assert.equal(provider!.attrs.skip_path_regex, "", name);
    }
    assert.ok(service(fleet, "grafana").publicPaths.length > 0, "even for a service with public paths");
  });

  it("lists every protected service's provider on the embedded outpost exactly once, sorted", () => {
    const all = entries(outpost.content);
    const outposts = all.filter((e) => e.model === "authentik_outposts.outpost");
    assert.equal(outposts.length, 1);
    assert.deepEqual(outposts[0]!.identifiers, { managed: EMBEDDED_OUTPOST });
    assert.deepEqual(Object.keys(outposts[0]!.attrs), ["providers"], "name, type and config stay Authentik's");
    const providers: Find[] = outposts[0]!.attrs.providers;
    assert.ok(providers.every((p) => p instanceof Find && p.model === "authentik_providers_proxy.proxyprovider"));
    const protectedNames = fleet.services.filter((s) => s.auth).map(appBlueprintName);
    for (const name of protectedNames) {
      assert.equal(providers.filter((p) => p.value === name).length, 1, `${name} on the outpost`);
    }
    assert.deepEqual(
      providers.map((p) => p.value),
      [...protectedNames].sort(),
    );
  });

  it("sets only the outpost's providers: no entry makes its dry run apply other blueprints", () => {
    // metaapplyblueprint would dispatch the app blueprints to Authentik's worker from
    // inside the validation's rolled-back transaction; the components order the applies instead.
    assert.deepEqual(
      entries(outpost.content).map((e) => e.model),
      ["authentik_outposts.outpost"],
    );
  });

  it("keeps the operator's own providers on the outpost when told, once each", () => {
    const providers = (text: string): string[] =>
      entries(text)
        .find((e) => e.model === "authentik_outposts.outpost")!
        .attrs.providers.map((p: Find) => p.value);
    assert.deepEqual(providers(renderOutpostBlueprint(fleet, ["zz-legacy", "a-legacy", "zz-legacy", "edgeplane-grafana"])), [
      "a-legacy",
      "edgeplane-grafana",
      "edgeplane-pgadmin",
      "zz-legacy",
    ]);
  });

  it("renders the same bytes for the same input", () => {
    const copy = JSON.parse(JSON.stringify(fleet)) as Model;
    assert.deepEqual(
      renderBlueprintFiles(copy).map((f) => f.content),
      files.map((f) => f.content),
    );
  });

  it("uses only attribute names the pinned Authentik API knows", () => {
    // The OpenAPI schema shipped with @goauthentik/api: the same serializers the
    // blueprint importer feeds `identifiers` and `attrs` to, with wire names.
    const schemaFile = require.resolve("@goauthentik/api/schema.yml");
    const schemas = YAML.parse(fs.readFileSync(schemaFile, "utf8")).components.schemas as Obj;
    const requestOf: Record<string, string> = {
      "authentik_providers_proxy.proxyprovider": "ProxyProviderRequest",
      "authentik_core.application": "ApplicationRequest",
      "authentik_policies.policybinding": "PolicyBindingRequest",
      "authentik_policies_expression.expressionpolicy": "ExpressionPolicyRequest",
      "authentik_outposts.outpost": "OutpostRequest",
      "authentik_core.group": "GroupRequest",
    };
    let checked = 0;
    const creating: Model = { ...fleet, authentik: { ...fleet.authentik!, createGroups: true } };
    for (const file of [...files, ...renderBlueprintFiles(creating)]) {
      for (const entry of entries(file.content)) {
        const request = requestOf[entry.model];
        assert.ok(request, `no API type known for ${entry.model}`);
        for (const key of [...Object.keys(entry.identifiers ?? {}), ...Object.keys(entry.attrs ?? {})]) {
          assert.ok(key in schemas[request].properties, `${entry.model}: ${request} has no ${key}`);
          checked++;
        }
      }
    }
    assert.ok(checked > 10);
  });
});

/**
 * Never run: `npx tsc --noEmit` is the test. Each line below must stay a type error,
 * or the attribute check against @goauthentik/api has stopped working.
 */
export function misspeltAttributesDoNotCompile(): void {
  // @ts-expect-error: extrnal_host is not an attribute of a proxy provider
  blueprintEntry("authentik_providers_proxy.proxyprovider", { attrs: { extrnal_host: "https://x" } });
  // @ts-expect-error: the mode is one of proxy, forward_single, forward_domain
  blueprintEntry("authentik_providers_proxy.proxyprovider", { attrs: { mode: "forward-single" } });
  // @ts-expect-error: blueprints use the wire (snake_case) names
  blueprintEntry("authentik_core.application", { attrs: { metaLaunchUrl: "https://x" } });
  // @ts-expect-error: order is a number
  blueprintEntry("authentik_policies.policybinding", { attrs: { order: "0" } });
  // @ts-expect-error: meta_icon is not writable in Authentik 2025.10
  blueprintEntry("authentik_core.application", { attrs: { meta_icon: "x" } });
}

describe("AuthentikApp and AuthentikOutpost components", () => {
  let records: RecordedResource[] = [];
  const byName = (type: string, name: string) => {
    const r = records.find((x) => x.type === type && x.name === name);
    assert.ok(r, `no ${type} named ${name}`);
    return r;
  };

  before(async () => {
    // A throwaway program over the fixture: index.ts does not wire these components yet.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-authentik-"));
    const program = path.join(dir, "program.ts");
    const root = path.join(__dirname, "..", "..");
    fs.writeFileSync(
      program,
      [
        `const { AuthentikApp, AuthentikOutpost } = require(${JSON.stringify(path.join(root, "components/authentik"))});`,
        `const { fleet } = require(${JSON.stringify(path.join(root, "test/fixtures/models"))});`,
        `const connection = { host: "100.64.0.1", port: 22, user: "deploy", privateKey: "k" };`,
        `const apps = fleet.services.filter((s) => s.auth).map((service) =>`,
        `  new AuthentikApp(service.name + "-authentik", { platform: fleet, service, connection }));`,
        `new AuthentikOutpost("authentik-outpost", { platform: fleet, connection, apps, extraProviders: ["legacy"] });`,
        `const creating = { ...fleet, authentik: { ...fleet.authentik, createGroups: true } };`,
        `new AuthentikApp("creating-authentik", { platform: creating, service: fleet.services.find((s) => s.name === "grafana"), connection });`,
      ].join("\n"),
    );
    records = await runProgram({ project: "edgeplane", stack: "test", values: {}, secretKeys: [] }, program);
  });

  const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

  it("installs each app blueprint as the Authentik user, for the protected service", () => {
    const file = byName("edgeplane:index:RemoteFile", "grafana-authentik-blueprint");
    assert.equal(file.parent, "grafana-authentik");
    assert.deepEqual(
      { ...file.inputs, sha256: undefined },
      {
        host: "edge",
        path: appBlueprintPath(fleet, service(fleet, "grafana")),
        owner: "ep-authentik",
        mode: "0644",
        service: "grafana",
        sha256: undefined,
      },
    );
    assert.equal(byName("edgeplane:index:AuthentikApp", "grafana-authentik").parent, null);
    assert.ok(!records.some((r) => r.name.startsWith("vllm") || r.name.startsWith("authentik-authentik")));
  });

  it("validates each blueprint with Authentik before it replaces the installed one", () => {
    for (const name of ["grafana-authentik-blueprint", "authentik-outpost-blueprint"]) {
      const install = byName("command:remote:Command", `${name}-install`);
      const create = String(install.inputs.create);
      const file = String(byName("edgeplane:index:RemoteFile", name).inputs.path);
      // The validator sits between writing the candidate and moving it into place.
      const validation = create.indexOf("if ! validation=$(");
      assert.ok(validation > create.indexOf(`sudo -n tee "$candidate"`), create);
      assert.ok(validation < create.indexOf(`sudo -n mv -f "$candidate" "$target"`), create);
      assert.ok(create.includes(`podman exec -i '\\''authentik-app'\\'' ak shell -c`), create);
      assert.ok(create.includes("Importer.from_string(content).validate()"), create);
      assert.ok(create.includes(`FILE = "${file}"`), create);
      assert.ok(create.includes(`${RESULT_PREFIX} valid`), create);
    }
  });

  it("applies each blueprint after its install and checks what Authentik recorded", () => {
    const cases = [
      ["grafana-authentik", appBlueprintPath(fleet, service(fleet, "grafana")), "edgeplane-grafana"],
      ["authentik-outpost", outpostBlueprintPath(fleet), "edgeplane embedded outpost"],
    ] as const;
    for (const [component, file, name] of cases) {
      const applied = byName("command:remote:Command", `${component}-blueprint-apply`);
      assert.equal(applied.parent, component);
      assert.deepEqual(applied.dependsOn, [`${component}-blueprint-install`]);
      const content = String(byName("command:remote:Command", `${component}-blueprint-install`).inputs.stdin);
      const create = String(applied.inputs.create);
      assert.ok(create.startsWith(`# edgeplane: apply Authentik blueprint ${file} (sha256 ${sha256(content)})\n`), create);
      assert.ok(create.includes(`PATH = "${blueprintInstancePath(file)}"`), create);
      assert.ok(create.includes(`NAME = "${name}"`), create);
      assert.ok(create.includes("instance.refresh_from_db()"), create);
      assert.equal(applied.inputs.triggers, undefined, "a trigger would replace, not update (pulumi/pulumi-command#189)");
    }
  });

  it("with authentik.createGroups, the blueprint creates the groups and the checks stop requiring them", () => {
    for (const [component, creates] of [
      ["grafana-authentik", false],
      ["creating-authentik", true],
    ] as const) {
      const install = byName("command:remote:Command", `${component}-blueprint-install`);
      const groups = entries(String(install.inputs.stdin)).filter((e) => e.model === "authentik_core.group");
      assert.deepEqual(
        groups.map((g) => g.identifiers.name),
        creates ? ["admins", "ops"] : [],
      );
      const mustExist = creates ? "GROUPS_MUST_EXIST = []" : 'GROUPS_MUST_EXIST = ["admins", "ops"]';
      assert.ok(String(install.inputs.create).includes(mustExist), "the dry run's check");
      assert.ok(String(byName("command:remote:Command", `${component}-blueprint-apply`).inputs.create).includes(mustExist));
    }
  });

  it("installs the outpost blueprint only after every app blueprint was applied", () => {
    const file = byName("edgeplane:index:RemoteFile", "authentik-outpost-blueprint");
    assert.equal(file.inputs.service, "authentik");
    assert.equal(file.inputs.path, outpostBlueprintPath(fleet));
    // Registered only once both applications exist in Authentik; its install command is its child.
    assert.deepEqual(file.dependsOn, ["grafana-authentik-blueprint-apply", "pgadmin-authentik-blueprint-apply"]);
    const install = byName("command:remote:Command", "authentik-outpost-blueprint-install");
    assert.equal(install.parent, "authentik-outpost-blueprint");
    assert.match(String(install.inputs.stdin), /name, legacy \]/);
  });
});
