/**
 * API clients, per-path rules and the audit trail with the real Caddy, at the release
 * production runs (model/caddy-version.ts), in front of a recording app and the stand-in
 * outpost, which reproduces Authentik's session, bearer-token and HTTP Basic checks
 * (test/support/outpost.ts). The service is fleet's grafana (groups admins/ops, public
 * path /api/health) with `apiClients` and two rules: `/admin/*` for admins,
 * `/api/orders/*` for orders. The provider is configured from the rendered blueprint.
 *
 * Who asks:
 * - alice, a session, in admins and ops;
 * - carol, a session, in ops only;
 * - root, a session, in admins, ops and orders (every rule's group);
 * - the orders-bot service account, by bearer token, in ops and orders;
 * - the deploy-bot service account, by HTTP Basic with an app password, in ops.
 */
import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import { after, before, describe, it } from "node:test";
import { parseBlueprint } from "../../components/authentik/blueprint";
import { renderAppBlueprint } from "../../components/authentik/render";
import { renderCaddyfile } from "../../components/pod/render/caddyfile";
import type { Model, Service, ServiceAuth } from "../../model/types";
import { fleet } from "../fixtures/models";
import {
  eventually,
  freePort,
  h2Request,
  proxyV2Header,
  rawRequest,
  request,
  selfSignedCertificate,
  startCaddy,
  type ClientOptions,
  type Response,
  type RunningCaddy,
} from "../support/live";
import { AUTHORIZE_URL, JWT_BASIC_USER, standInOutpost, type OutpostCall, type StandInProvider } from "../support/outpost";
import { haveTool, toolPath } from "../support/tools";

const enabled = haveTool("caddy");
const CLIENT_IP = "198.51.100.77";
const SESSIONS = {
  alice: "authentik_proxy_grafana=alice-session",
  carol: "authentik_proxy_grafana=carol-session",
  root: "authentik_proxy_grafana=root-session",
} as const;
const ORDERS_TOKEN = "orders-bot-token-0f3c";
const DEPLOY_PASSWORD = "deploy-bot-app-password-77aa";
const identity = (user: string, groups: string) => ({ "X-authentik-username": user, "X-authentik-groups": groups });
const RULES: ServiceAuth["rules"] = [
  { path: "/admin/*", groups: ["admins"] },
  { path: "/api/orders/*", groups: ["orders"] },
];

interface AppRequest {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

describe(
  "live API clients, per-path rules and audit log",
  { skip: !enabled && "caddy is not built (bash scripts/build-tools.sh)" },
  () => {
    let caddy: RunningCaddy;
    let app: http.Server;
    let outpost: https.Server;
    let model: Model;
    let provider: StandInProvider;
    const outpostCalls: OutpostCall[] = [];
    const appRequests: AppRequest[] = [];
    let appPort = 0;
    let outpostPort = 0;

    /** The model with grafana's auth replaced by `auth`. */
    function withAuth(auth: ServiceAuth): Model {
      return {
        ...fleet,
        tls: { issuer: "internal" },
        services: fleet.services.map((s) => (s.name === "grafana" ? { ...s, port: appPort, auth } : s)),
      };
    }
    const grafana = (m: Model): Service => m.services.find((s) => s.name === "grafana")!;
    const render = (m: Model) => renderCaddyfile(m, grafana(m), { authentikDial: `127.0.0.1:${outpostPort}` });

    before(async () => {
      appPort = await freePort();
      outpostPort = await freePort();
      model = withAuth({ groups: ["admins", "ops"], apiClients: true, rules: RULES });
      const blueprint = parseBlueprint(renderAppBlueprint(model, grafana(model))) as { entries: { model: string; attrs: any }[] };
      const attrs = blueprint.entries.find((e) => e.model === "authentik_providers_proxy.proxyprovider")!.attrs;
      assert.equal(attrs.intercept_header_auth, true, "the rendered provider intercepts header authentication");
      provider = {
        name: "grafana",
        mode: attrs.mode,
        externalHost: attrs.external_host,
        skipPathRegex: attrs.skip_path_regex,
        session: SESSIONS.alice,
        identity: identity("alice", "admins|ops"),
        activeTokens: { [ORDERS_TOKEN]: identity("orders-bot", "ops|orders") },
        appPasswords: { [`deploy-bot:${DEPLOY_PASSWORD}`]: identity("deploy-bot", "ops") },
      };
      // carol and root: two more sessions of the same provider.
      const others: StandInProvider[] = [
        { ...provider, session: SESSIONS.carol, identity: identity("carol", "ops") },
        { ...provider, session: SESSIONS.root, identity: identity("root", "admins|ops|orders") },
      ];
      const judge = standInOutpost([provider], outpostCalls);
      const judgeFor = Object.fromEntries(others.map((p) => [p.session, standInOutpost([p], outpostCalls)]));
      const certificate = selfSignedCertificate("auth.example.org");
      outpost = https.createServer({ cert: certificate.cert, key: certificate.key }, (req, res) => {
        const session = (req.headers.cookie ?? "").split(/;\s*/).find((c) => judgeFor[c]);
        (session ? judgeFor[session]! : judge)(req, res);
      });
      await new Promise<void>((resolve) => outpost.listen(outpostPort, "127.0.0.1", resolve));
      app = http.createServer((req, res) => {
        appRequests.push({ url: req.url ?? "", headers: req.headers });
        res.end("app");
      });
      await new Promise<void>((resolve) => app.listen(appPort, "127.0.0.1", resolve));
      caddy = await startCaddy(toolPath("caddy")!, render(model), { SSL_CERT_FILE: certificate.certFile });
      await eventually(() => get("/api/health"));
    });
    after(async () => {
      await caddy?.stop();
      app?.close();
      outpost?.close();
    });

    const envoy = proxyV2Header({ ip: CLIENT_IP, port: 40000 }, { ip: "203.0.113.10", port: 443 });
    const client = (): ClientOptions => ({
      port: caddy.port,
      servername: "grafana.example.org",
      ca: caddy.rootCA(),
      proxyHeader: envoy,
    });
    const get = (path: string, headers: [string, string][] = []) => request({ ...client(), path, headers });
    /** A raw target, written exactly as given. */
    const getRaw = (target: string, headers: string[] = []) =>
      rawRequest(
        client(),
        [`GET ${target} HTTP/1.1`, "Host: grafana.example.org", ...headers, "Connection: close"].join("\r\n") + "\r\n\r\n",
      );
    async function exchange(send: () => Promise<Response>) {
      const [calls, seen] = [outpostCalls.length, appRequests.length];
      const res = await send();
      await new Promise((r) => setTimeout(r, 20));
      return { res, outpost: outpostCalls.slice(calls), app: appRequests.slice(seen) };
    }
    const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    const who = (r: AppRequest) => [r.headers["x-authentik-username"], r.headers["x-authentik-groups"]];

    describe("API clients", () => {
      for (const [label, authorization, user] of [
        ["a bearer token", `Bearer ${ORDERS_TOKEN}`, "orders-bot"],
        ["a bearer token with the scheme in lower case", `bearer ${ORDERS_TOKEN}`, "orders-bot"],
        ["HTTP Basic with an app password", basic("deploy-bot", DEPLOY_PASSWORD), "deploy-bot"],
        ["HTTP Basic with the token as goauthentik.io/token's password", basic(JWT_BASIC_USER, ORDERS_TOKEN), "orders-bot"],
      ] as const) {
        it(`${label}: validated once by the outpost, the app gets the identity and never Authorization`, async () => {
          const {
            res,
            outpost: calls,
            app: got,
          } = await exchange(() => get("/api/v1/status", [["Authorization", authorization]]));
          assert.equal(res.status, 200, res.body);
          assert.equal(calls.length, 1);
          assert.equal(calls[0]!.headers.authorization, authorization, "the outpost judged the credential");
          assert.equal(got.length, 1);
          assert.equal(got[0]!.headers["x-authentik-username"], user);
          assert.equal(got[0]!.headers.authorization, undefined, "the credential stayed at the edge");
        });
      }

      for (const [label, authorization] of [
        ["an unknown bearer token", "Bearer expired-or-revoked"],
        ["an empty bearer token", "Bearer "],
        ["HTTP Basic with a wrong app password", basic("deploy-bot", "guess")],
        ["HTTP Basic that is not base64", "Basic !!!"],
        ["another scheme", `Token ${ORDERS_TOKEN}`],
      ] as const) {
        it(`${label}: 401 with a Bearer challenge, no login redirect, never the app`, async () => {
          const { res, app: got } = await exchange(() => get("/api/v1/status", [["Authorization", authorization]]));
          assert.equal(res.status, 401, res.body);
          assert.equal(res.headers.location, undefined);
          assert.equal(res.headers["www-authenticate"], 'Bearer realm="grafana.example.org", error="invalid_token"');
          assert.equal(res.headers["set-cookie"], undefined, "no login state handed to an API client");
          assert.deepEqual(got, []);
        });
      }

      it("a browser without a session still gets the login redirect", async () => {
        const { res, app: got } = await exchange(() => get("/dashboard"));
        assert.equal(res.status, 302);
        assert.ok(res.headers.location?.startsWith(`${AUTHORIZE_URL}?`), res.headers.location);
        assert.deepEqual(got, []);
      });

      it("a session wins over a bad credential, and the app still never sees the credential", async () => {
        const { res, app: got } = await exchange(() =>
          get("/dashboard", [
            ["Cookie", SESSIONS.alice],
            ["Authorization", "Bearer nonsense"],
          ]),
        );
        assert.equal(res.status, 200, res.body);
        assert.deepEqual(who(got[0]!), ["alice", "admins|ops"]);
        assert.equal(got[0]!.headers.authorization, undefined);
      });

      it("a public path is not judged: its Authorization is the app's business", async () => {
        const { res, outpost: calls, app: got } = await exchange(() => get("/api/health", [["Authorization", "Bearer webhook"]]));
        assert.equal(res.status, 200);
        assert.deepEqual(calls, []);
        assert.equal(got[0]!.headers.authorization, "Bearer webhook");
      });

      describe("with passAuthorization", () => {
        before(() => caddy.reload(render(withAuth({ groups: ["admins", "ops"], apiClients: true, passAuthorization: true }))));
        after(() => caddy.reload(render(model)));
        it("the app receives the checked credential too", async () => {
          const { res, app: got } = await exchange(() => get("/api/v1/status", [["Authorization", `Bearer ${ORDERS_TOKEN}`]]));
          assert.equal(res.status, 200, res.body);
          assert.equal(got[0]!.headers["x-authentik-username"], "orders-bot");
          assert.equal(got[0]!.headers.authorization, `Bearer ${ORDERS_TOKEN}`);
        });
      });

      describe("without apiClients", () => {
        before(() => caddy.reload(render(withAuth({ groups: ["admins", "ops"] }))));
        after(() => caddy.reload(render(model)));
        it("a valid token is never shown to the outpost: the request goes to the login page", async () => {
          const {
            res,
            outpost: calls,
            app: got,
          } = await exchange(() => get("/api/v1/status", [["Authorization", `Bearer ${ORDERS_TOKEN}`]]));
          assert.equal(res.status, 302, res.body);
          assert.equal(calls[0]!.headers.authorization, undefined);
          assert.deepEqual(got, []);
        });
        it("a session's own Authorization (the app's API key) reaches the app untouched", async () => {
          const { res, app: got } = await exchange(() =>
            get("/api/v1/status", [
              ["Cookie", SESSIONS.alice],
              ["Authorization", "Bearer grafana-api-key"],
            ]),
          );
          assert.equal(res.status, 200, res.body);
          assert.equal(got[0]!.headers.authorization, "Bearer grafana-api-key");
        });
      });
    });

    describe("per-path rules", () => {
      const as = (user: keyof typeof SESSIONS) => `Cookie: ${SESSIONS[user]}`;

      it("a rule admits its group and refuses others with 403, before the app", async () => {
        const cases: [string, string, number][] = [
          ["/admin/users", as("alice"), 200],
          ["/admin/users", as("carol"), 403],
          ["/admin", as("carol"), 403],
          ["/admin/", as("carol"), 403],
          ["/api/orders/17", as("alice"), 403],
          ["/api/orders/17", as("root"), 200],
          ["/api/orders/17", `Authorization: Bearer ${ORDERS_TOKEN}`, 200],
          ["/admin/users", `Authorization: Bearer ${ORDERS_TOKEN}`, 403],
          ["/dashboard", as("carol"), 200],
          ["/administrator", as("carol"), 200],
          ["/api/orders", as("alice"), 403],
          ["/api/ordersx", as("alice"), 200],
        ];
        for (const [target, credential, status] of cases) {
          const { res, app: got } = await exchange(() => getRaw(target, [credential]));
          assert.equal(res.status, status, `${target} with ${credential}: ${res.status} ${res.body}`);
          assert.equal(got.length, status === 200 ? 1 : 0, `${target} with ${credential} reached the app: ${got.length}`);
        }
      });

      it("a forged X-Authentik-Groups does not put carol in admins", async () => {
        const { res, app: got } = await exchange(() => getRaw("/admin/users", [as("carol"), "X-Authentik-Groups: admins|ops"]));
        assert.equal(res.status, 403);
        assert.deepEqual(got, []);
      });

      /**
       * Spellings an app may take for a path under a rule: case, %-encoding (single,
       * double, overlong UTF-8), dot segments (plain and encoded), duplicate slashes, `;`
       * parameters, backslashes, absolute form. Carol (ops) is refused on every one, before
       * the app; root (in every rule's groups) is not refused by a rule on any.
       */
      const LOOK_ALIKES = [
        "/ADMIN/users",
        "/Admin/users",
        "/aDmIn",
        "/%61dmin/users",
        "/%41DMIN/users",
        "/adm%69n/users",
        "/%2561dmin/users",
        "/%252561dmin/users",
        "/%c1%a1dmin/users",
        "/%e0%81%a1dmin/users",
        "//admin/users",
        "///admin",
        "/./admin/users",
        "/x/../admin/users",
        "/x/%2e%2e/admin/users",
        "/x/%2E./admin/users",
        "/x/..%2fadmin/users",
        "/x%2f..%2fadmin",
        "/admin;jsessionid=1/users",
        "/admin;/users",
        "/x;/../admin",
        "/x/..;/admin/users",
        "/x%5cadmin",
        "/x/..%5cadmin/users",
        "/x\\..\\admin",
        "/admin%00/users",
        "/admin%20/users",
        "/admin/users?x=/../",
        "/x#/../admin/users",
        "/x/..%23/admin",
        "/api/%6frders/1",
        "/api//orders/1",
        "/API/Orders/1",
        "/api/x/../orders/1",
        "https://grafana.example.org/admin/users",
      ];
      for (const target of LOOK_ALIKES) {
        it(`${target}: carol is refused (403) and the app never sees it; root is let through`, async () => {
          const refused = await exchange(() => getRaw(target, [as("carol")]));
          assert.equal(refused.res.status, 403, `${target}: ${refused.res.status} ${refused.res.body}`);
          assert.deepEqual(refused.app, [], `${target} reached the app as carol`);
          const admitted = await exchange(() => getRaw(target, [as("root")]));
          assert.notEqual(admitted.res.status, 403, `${target}: root refused`);
          if (admitted.res.status === 200) assert.equal(admitted.app[0]!.headers["x-authentik-username"], "root");
        });
      }

      it("over HTTP/2 too: carol is refused on look-alikes, root is not", async () => {
        for (const path of ["/ADMIN/users", "/%61dmin", "/x/../admin", "/admin;x/y", "//admin"]) {
          const refused = await exchange(() => h2Request(client(), { path, headers: { cookie: SESSIONS.carol } }));
          assert.equal(refused.res.status, 403, `${path}: ${refused.res.status}`);
          assert.deepEqual(refused.app, []);
          const admitted = await exchange(() => h2Request(client(), { path, headers: { cookie: SESSIONS.root } }));
          assert.notEqual(admitted.res.status, 403, path);
        }
      });

      it("a target nobody can read one way is held to every rule: alice (not in orders) is refused a double-encoded one", async () => {
        const { res } = await exchange(() => getRaw("/%2564ashboard", [as("alice")]));
        assert.equal(res.status, 403);
        const plain = await exchange(() => getRaw("/d%61shboard", [as("alice")]));
        assert.equal(plain.res.status, 200, "a once-encoded target that names no rule is not");
      });
    });

    describe("audit log", () => {
      it("one line per request names the user, groups, decision, rule and client address", async () => {
        // The outpost waves one path through without a user: refused-anonymous.
        provider.skipPathRegex = "^/audit/waved$";
        const sent: [string, string[], number][] = [
          ["/api/health?audit=public", [], 200],
          ["/audit/allowed", [`Cookie: ${SESSIONS.alice}`], 200],
          ["/audit/bearer", [`Authorization: Bearer ${ORDERS_TOKEN}`], 200],
          ["/admin/audit", [`Cookie: ${SESSIONS.carol}`], 403],
          ["/audit/login", [], 302],
          ["/audit/badtoken", ["Authorization: Bearer nope"], 401],
          ["/audit/waved", [], 403],
          ["/outpost.goauthentik.io/start?audit=1", [], 200],
        ];
        try {
          for (const [target, headers, status] of sent) {
            const res = await getRaw(target, headers);
            assert.equal(res.status, status, `${target}: ${res.status} ${res.body}`);
          }
        } finally {
          provider.skipPathRegex = "";
        }
        await new Promise((r) => setTimeout(r, 300));
        const entries = caddy
          .log()
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l))
          .filter((e) => e.logger?.startsWith("http.log.access"));
        const line = (uri: string) => {
          const found = entries.filter((e) => e.request?.uri === uri);
          assert.equal(found.length, 1, `one access log line for ${uri}`);
          const e = found[0];
          assert.equal(e.request.client_ip, CLIENT_IP, "the client address from the PROXY header");
          return { user: e.user, groups: e.groups, decision: e.decision, rule: e.rule, status: e.status };
        };
        assert.deepEqual(line("/api/health?audit=public"), {
          user: "",
          groups: "",
          decision: "public-path",
          rule: null,
          status: 200,
        });
        assert.deepEqual(line("/audit/allowed"), {
          user: "alice",
          groups: "admins|ops",
          decision: "allowed",
          rule: null,
          status: 200,
        });
        assert.deepEqual(line("/audit/bearer"), {
          user: "orders-bot",
          groups: "ops|orders",
          decision: "allowed",
          rule: null,
          status: 200,
        });
        assert.deepEqual(line("/admin/audit"), {
          user: "carol",
          groups: "ops",
          decision: "denied-by-rule",
          rule: "/admin/*",
          status: 403,
        });
        assert.deepEqual(line("/audit/login"), { user: "", groups: "", decision: "unauthenticated", rule: null, status: 302 });
        assert.deepEqual(line("/audit/badtoken"), { user: "", groups: "", decision: "unauthenticated", rule: null, status: 401 });
        assert.deepEqual(line("/audit/waved"), { user: "", groups: "", decision: "refused-anonymous", rule: null, status: 403 });
        assert.deepEqual(line("/outpost.goauthentik.io/start?audit=1"), {
          user: "",
          groups: "",
          decision: "outpost",
          rule: null,
          status: 200,
        });
        assert.doesNotMatch(caddy.log(), new RegExp(`${ORDERS_TOKEN}|${DEPLOY_PASSWORD}`), "no credential in the log");
      });
    });
  },
);
