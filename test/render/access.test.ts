/**
 * What the renderers make of `auth.apiClients`, `auth.passAuthorization` and
 * `auth.rules`, and the audit decisions of a protected route: the properties the golden
 * files cannot show by themselves. The live test (test/live/access.test.ts) runs the
 * same Caddyfiles with the real Caddy.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseBlueprint } from "../../components/authentik/blueprint";
import { renderAppBlueprint } from "../../components/authentik/render";
import { AUDIT_DECISIONS, renderCaddyfile } from "../../components/pod/render/caddyfile";
import type { Model, Service, ServiceAuth } from "../../model/types";
import { fleet } from "../fixtures/models";

function withAuth(auth: ServiceAuth): { model: Model; service: Service } {
  const model: Model = { ...fleet, services: fleet.services.map((s) => (s.name === "grafana" ? { ...s, auth } : s)) };
  return { model, service: model.services.find((s) => s.name === "grafana")! };
}

/** The directive lines of the site's `route`, trimmed, without comments. */
function routeLines(auth: ServiceAuth): string[] {
  const { model, service } = withAuth(auth);
  const lines = renderCaddyfile(model, service).split("\n");
  const start = lines.findIndex((l) => l.trim() === "route {");
  return lines
    .slice(start + 1)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

const at = (lines: string[], prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
const appProxy = "reverse_proxy localhost:3000 {";

describe("API clients at the edge", () => {
  it("without apiClients the outpost never sees Authorization, and the app keeps it", () => {
    const lines = routeLines({ groups: ["admins"] });
    const auths = lines.filter((l) => l.startsWith("forward_auth "));
    assert.deepEqual(auths, ["forward_auth https://auth.example.org {"]);
    assert.ok(lines.includes("header_up -Authorization"));
    assert.ok(!lines.includes("request_header -Authorization"));
    assert.ok(!lines.some((l) => l.startsWith("handle_response")));
  });

  it("with apiClients a request with a credential is judged with it and refused with 401, never redirected", () => {
    const lines = routeLines({ groups: ["admins"], apiClients: true });
    const credential = at(lines, "forward_auth @credential ");
    const browser = at(lines, "forward_auth @no_credential ");
    assert.ok(credential >= 0 && browser > credential);
    assert.ok(!lines.includes("header_up -Authorization"), "the outpost gets the credential");
    const block = lines.slice(credential, browser);
    assert.ok(block.includes("@login status 3xx"));
    assert.ok(block.includes("respond 401"));
    assert.ok(block.includes('header WWW-Authenticate "Bearer realm=\\"grafana.example.org\\", error=\\"invalid_token\\""'));
    const drop = lines.indexOf("request_header -Authorization");
    assert.ok(
      drop > at(lines, "respond @anonymous 403") && drop < lines.indexOf(appProxy),
      "dropped after the checks, before the app",
    );
  });

  it("passAuthorization keeps the credential for the app", () => {
    assert.ok(
      !routeLines({ groups: ["admins"], apiClients: true, passAuthorization: true }).includes("request_header -Authorization"),
    );
  });

  it("the provider intercepts header authentication exactly when the service admits API clients", () => {
    for (const apiClients of [false, true]) {
      const { model, service } = withAuth({ groups: ["admins"], apiClients });
      const blueprint = parseBlueprint(renderAppBlueprint(model, service)) as { entries: { model: string; attrs: any }[] };
      const provider = blueprint.entries.find((e) => e.model === "authentik_providers_proxy.proxyprovider")!;
      assert.equal(provider.attrs.intercept_header_auth, apiClients);
    }
  });
});

describe("per-path rules at the edge", () => {
  const auth: ServiceAuth = {
    groups: ["admins", "ops"],
    rules: [
      { path: "/admin/*", groups: ["admins"] },
      { path: "/api/orders/*", groups: ["billing", "orders"] },
    ],
  };

  it("each rule refuses with 403 after the user is known and before the app", () => {
    const lines = routeLines(auth);
    const anonymous = at(lines, "respond @anonymous 403");
    const refusals = [at(lines, "respond @rule_0 403"), at(lines, "respond @rule_1 403")];
    for (const r of refusals) assert.ok(r > anonymous && r < lines.indexOf(appProxy));
  });

  it("a rule's matcher names exactly its groups and its own path", () => {
    const { model, service } = withAuth(auth);
    const text = renderCaddyfile(model, service);
    const matcher = (name: string) => text.split("\n").find((l) => l.trim().startsWith(`${name} expression `))!;
    assert.match(matcher("@rule_0"), /g in \['admins'\]\)\)"$/);
    assert.match(matcher("@rule_0"), /'\^\/admin\(\/\[\^\?\]\*\)\?\(\[\?\]\.\*\)\?\$'/);
    assert.match(matcher("@rule_1"), /g in \['billing', 'orders'\]\)\)"$/);
    assert.match(matcher("@rule_1"), /contains\('orders'\)/);
  });

  it("no rule, no rule matcher", () => {
    assert.ok(!routeLines({ groups: ["admins"] }).some((l) => l.includes("@rule_")));
  });
});

describe("audit decisions", () => {
  it("every step that can end a request is preceded by the decision that stands if it does", () => {
    const lines = routeLines({ groups: ["admins"], apiClients: true, rules: [{ path: "/admin/*", groups: ["admins"] }] });
    // `vars [matcher] edgeplane_decision X`, or `edgeplane_decision X` inside a `vars @rule_N { … }` block.
    const decisionBefore = (index: number) =>
      lines
        .slice(0, index)
        .reverse()
        .map((l) => /(^vars (\S+ )?|^)edgeplane_decision (\S+)$/.exec(l)?.[3])
        .find((d) => d !== undefined);
    const expectations: [string, string][] = [
      ["reverse_proxy /outpost.goauthentik.io/*", "outpost"],
      ["reverse_proxy @public", "public-path"],
      ["forward_auth @credential", "unauthenticated"],
      ["respond @anonymous 403", "refused-anonymous"],
      ["respond @rule_0 403", "denied-by-rule"],
      [appProxy, "allowed"],
    ];
    for (const [step, decision] of expectations) {
      const index = at(lines, step);
      assert.ok(index >= 0, step);
      assert.equal(decisionBefore(index), decision, step);
      assert.ok((AUDIT_DECISIONS as readonly string[]).includes(decision));
    }
    for (const field of ["user", "groups", "decision", "rule"])
      assert.ok(
        lines.some((l) => l.startsWith(`log_append ${field} {`)),
        field,
      );
  });
});
