/**
 * Forward auth with the real Caddy: the Caddyfile rendered for a protected service
 * (fleet's grafana: groups admins/ops, public paths /api/health and /hooks/*), in front of an echo
 * app, with a stub playing Authentik's outpost endpoint. The only change to the
 * rendered file is the outpost's address (https://<authentik fqdn> → the stub on
 * loopback): pods reach the real one through Envoy.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { renderCaddyfile } from "../../components/pod/render";
import type { Model } from "../../model/types";
import { fleet } from "../fixtures/models";
import { haveTool, toolPath } from "../support/tools";
import {
  eventually,
  freePort,
  proxyV2Header,
  request,
  startCaddy,
  startEcho,
  type EchoedRequest,
  type RunningCaddy,
} from "../support/live";

const enabled = haveTool("caddy");
const SESSION = "authentik_proxy_test=valid-session";
const LOGIN = "https://auth.example.org/application/o/authorize/?client_id=grafana";

describe(
  "live forward auth through the rendered Caddyfile",
  { skip: !enabled && "caddy is not built (bash scripts/build-tools.sh)" },
  () => {
    let caddy: RunningCaddy;
    let echo: { close(): Promise<void> };
    let stub: http.Server;
    const outpostCalls: http.IncomingHttpHeaders[] = [];
    const service = fleet.services.find((s) => s.name === "grafana")!;
    const fqdn = service.fqdn;

    before(async () => {
      const appPort = await freePort();
      const stubPort = await freePort();
      // The outpost: a session cookie gets 200 with the identity, anything else a redirect to login.
      stub = http.createServer((req, res) => {
        outpostCalls.push(req.headers);
        if (req.url?.startsWith("/outpost.goauthentik.io/auth/caddy") && (req.headers.cookie ?? "").includes(SESSION)) {
          res.writeHead(200, {
            "X-Authentik-Username": "alice",
            "X-Authentik-Groups": "admins|ops",
            "X-Authentik-Email": "alice@example.org",
          });
          res.end();
        } else if (req.url?.startsWith("/outpost.goauthentik.io/auth/caddy")) {
          res.writeHead(302, { Location: LOGIN });
          res.end();
        } else {
          res.writeHead(200, { "content-type": "text/plain" });
          res.end(`outpost ${req.url}`);
        }
      });
      await new Promise<void>((resolve) => stub.listen(stubPort, "127.0.0.1", resolve));
      const model: Model = {
        ...fleet,
        tls: { issuer: "internal" },
        services: fleet.services.map((s) =>
          s.name === "grafana" ? { ...s, port: appPort, publicPaths: [...s.publicPaths, "/hooks/*"] } : s,
        ),
      };
      const rendered = renderCaddyfile(model, model.services.find((s) => s.name === "grafana")!);
      const authentikFqdn = fleet.services.find((s) => s.name === fleet.authentik!.service)!.fqdn;
      assert.ok(rendered.includes(`https://${authentikFqdn}`));
      const caddyfile = rendered.replaceAll(`https://${authentikFqdn}`, `http://127.0.0.1:${stubPort}`);
      echo = await startEcho(appPort);
      caddy = await startCaddy(toolPath("caddy")!, caddyfile);
      await eventually(() => get("/api/health"));
    });
    after(async () => {
      await caddy?.stop();
      await echo?.close();
      stub?.close();
    });

    const envoy = proxyV2Header({ ip: "198.51.100.23", port: 51234 }, { ip: "203.0.113.10", port: 443 });
    function get(path: string, headers: [string, string][] = []) {
      return request({ port: caddy.port, servername: fqdn, ca: caddy.rootCA(), proxyHeader: envoy, path, headers });
    }
    const appSaw = (body: string) => JSON.parse(body) as EchoedRequest;
    const identityHeaders = (body: string) =>
      Object.fromEntries(Object.entries(appSaw(body).headers).filter(([k]) => k.startsWith("x-authentik-")));
    const FORGED: [string, string][] = [
      ["X-Authentik-Username", "mallory"],
      ["x-authentik-username", "mallory2"],
      ["X-AUTHENTIK-GROUPS", "admins"],
      ["X-Authentik-Groups", "root"],
      ["X-Authentik-Entitlements", "everything"],
      ["x-AuThEnTiK-uid", "0"],
    ];

    it("redirects a request without a session to the login page; the app never sees it", async () => {
      const res = await get("/dashboard");
      assert.equal(res.status, 302, res.body);
      assert.equal(res.headers.location, LOGIN);
      assert.doesNotMatch(res.body, /"url"/);
    });

    it("lets a session in, with exactly the identity the outpost returned", async () => {
      const res = await get("/dashboard", [["Cookie", SESSION]]);
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(identityHeaders(res.body), {
        "x-authentik-username": "alice",
        "x-authentik-groups": "admins|ops",
        "x-authentik-email": "alice@example.org",
      });
    });

    it("never passes forged identity headers to the app, with a session, in any case or repeated", async () => {
      const res = await get("/dashboard", [["Cookie", SESSION], ...FORGED]);
      assert.equal(res.status, 200);
      assert.deepEqual(identityHeaders(res.body), {
        "x-authentik-username": "alice",
        "x-authentik-groups": "admins|ops",
        "x-authentik-email": "alice@example.org",
      });
    });

    it("never lets forged identity headers stand in for a session, nor reach the outpost", async () => {
      outpostCalls.length = 0;
      const res = await get("/dashboard", FORGED);
      assert.equal(res.status, 302);
      assert.ok(outpostCalls.length > 0);
      for (const call of outpostCalls)
        assert.deepEqual(
          Object.keys(call).filter((k) => k.startsWith("x-authentik-")),
          [],
        );
    });

    it("passes a public path without a session, and strips forged identity from it too", async () => {
      const res = await get("/api/health", FORGED);
      assert.equal(res.status, 200, res.body);
      assert.equal(appSaw(res.body).url, "/api/health");
      assert.deepEqual(identityHeaders(res.body), {});
    });

    it("passes anything under a public prefix, as sent", async () => {
      const res = await get("/hooks/github/push?x=1");
      assert.equal(res.status, 200, res.body);
      assert.equal(appSaw(res.body).url, "/hooks/github/push?x=1");
    });

    for (const escape of ["/hooks/../admin", "/hooks/%2e%2e/admin", "/HOOKS/github", "/hooks//../admin", "/hooks/./../admin"]) {
      it(`does not let ${escape} out of the public prefix without a session`, async () => {
        const res = await get(escape);
        assert.notEqual(res.status, 200, `${escape} reached the app`);
        assert.doesNotMatch(res.body, /"url"/);
      });
    }

    for (const lookAlike of [
      "/api/health/../admin",
      "/api/health/%2e%2e/admin",
      "/API/health",
      "/api/HEALTH",
      "/api/health%2F..%2Fadmin",
      "/api/%68ealth",
      "/api/healthz",
      "/api/health/x",
      "//api/health",
      "/api/health;/admin",
      "/api/health.",
    ]) {
      it(`does not let ${lookAlike} past auth without a session`, async () => {
        const res = await get(lookAlike);
        if (res.status === 200) {
          // Only if Caddy resolved it to the public path itself, and the app got exactly that.
          assert.equal(appSaw(res.body).url, "/api/health", `${lookAlike} reached the app as ${appSaw(res.body).url}`);
        } else {
          assert.ok([302, 400, 404].includes(res.status), `${lookAlike}: ${res.status}`);
          assert.doesNotMatch(res.body, /"url"/, `${lookAlike} reached the app`);
        }
      });
    }

    it("routes the outpost's own paths to Authentik, without a session", async () => {
      const res = await get("/outpost.goauthentik.io/callback?code=1");
      assert.equal(res.status, 200);
      assert.match(res.body, /^outpost \/outpost\.goauthentik\.io\/callback/);
    });

    it("logs the authenticated user in the JSON access log", async () => {
      await get("/logged-in", [
        ["Cookie", SESSION],
        ["X-Authentik-Username", "mallory"],
      ]);
      await new Promise((r) => setTimeout(r, 300));
      const entries = caddy
        .log()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l))
        .filter((e) => e.request?.uri === "/logged-in");
      assert.equal(entries.length, 1, caddy.log());
      assert.equal(entries[0].user, "alice");
    });
  },
);
