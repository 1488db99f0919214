/**
 * Per-user rate limits (`auth.rateLimit`) with the real Caddy at the production release,
 * built with github.com/mholt/caddy-ratelimit (tools/cmd/caddy), the stand-in outpost
 * (test/support/outpost.ts) and a recording app. Requests arrive as from Envoy: a PROXY
 * v2 header carrying the client's address, then TLS.
 *
 * What a user would notice: the request after `events` in a window is answered 429 with
 * Retry-After and never reaches the app; another user, or another client address on a
 * public path, is not affected; with a `burst`, back-to-back requests are capped sooner
 * and the window lets them through again after window × burst / events; the access log
 * says `rate-limited` for each 429.
 */
import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import { after, before, describe, it } from "node:test";
import { parseBlueprint } from "../../components/authentik/blueprint";
import { renderAppBlueprint } from "../../components/authentik/render";
import { renderCaddyfile } from "../../components/pod/render/caddyfile";
import type { Model, RateLimit, Service } from "../../model/types";
import { fleet } from "../fixtures/models";
import {
  eventually,
  freePort,
  proxyV2Header,
  request,
  selfSignedCertificate,
  startCaddy,
  type Response,
  type RunningCaddy,
} from "../support/live";
import { standInOutpost, type StandInProvider } from "../support/outpost";
import { haveTool, toolPath } from "../support/tools";

const enabled = haveTool("caddy");
const ALICE = "authentik_proxy_grafana=alice-session";
const CAROL = "authentik_proxy_grafana=carol-session";

interface Pod {
  readonly caddy: RunningCaddy;
  readonly service: Service;
  /** Paths the app received, in order, with the user it was told. */
  readonly appSaw: { path: string; user: string | undefined }[];
  get(path: string, options?: { cookie?: string; clientIp?: string }): Promise<Response>;
  /** The access log's entries (Caddy's JSON lines from the `http.log.access` logger). */
  accessLog(): Record<string, any>[];
  close(): Promise<void>;
}

/** fleet's grafana (public path /api/health) behind the stand-in outpost, with `limit`. */
async function startPod(limit: RateLimit): Promise<Pod> {
  const appPort = await freePort();
  const outpostPort = await freePort();
  const base = fleet.services.find((s) => s.name === "grafana")!;
  const service: Service = { ...base, port: appPort, auth: { ...base.auth!, rateLimit: limit } };
  const model: Model = {
    ...fleet,
    tls: { issuer: "internal" },
    services: fleet.services.map((s) => (s.name === "grafana" ? service : s)),
  };
  const blueprint = parseBlueprint(renderAppBlueprint(model, service)) as { entries: { model: string; attrs: any }[] };
  const provider = blueprint.entries.find((e) => e.model === "authentik_providers_proxy.proxyprovider")!.attrs;
  const grafana: StandInProvider = {
    name: "grafana",
    mode: provider.mode,
    externalHost: provider.external_host,
    skipPathRegex: provider.skip_path_regex,
    session: ALICE,
    identity: { "X-authentik-username": "alice", "X-authentik-groups": "admins" },
    otherUsers: [{ session: CAROL, identity: { "X-authentik-username": "carol", "X-authentik-groups": "ops" } }],
  };
  const certificate = selfSignedCertificate("auth.example.org");
  const outpost = https.createServer({ cert: certificate.cert, key: certificate.key }, standInOutpost([grafana], []));
  await new Promise<void>((resolve) => outpost.listen(outpostPort, "127.0.0.1", resolve));
  const appSaw: Pod["appSaw"] = [];
  const app = http.createServer((req, res) => {
    const user = req.headers["x-authentik-username"];
    appSaw.push({ path: req.url ?? "", user: typeof user === "string" ? user : undefined });
    res.end("app");
  });
  await new Promise<void>((resolve) => app.listen(appPort, "127.0.0.1", resolve));
  const caddy = await startCaddy(
    toolPath("caddy")!,
    renderCaddyfile(model, service, { authentikDial: `127.0.0.1:${outpostPort}` }),
    { SSL_CERT_FILE: certificate.certFile },
  );
  const get: Pod["get"] = (path, options = {}) =>
    request({
      port: caddy.port,
      servername: service.fqdn,
      ca: caddy.rootCA(),
      proxyHeader: proxyV2Header({ ip: options.clientIp ?? "198.51.100.23", port: 51234 }, { ip: "203.0.113.10", port: 443 }),
      path,
      headers: options.cookie ? [["Cookie", options.cookie]] : [],
    });
  // Caddy is up once it answers; the probe goes through the outpost, not a counted path.
  await eventually(() => get("/probe"));
  appSaw.length = 0;
  return {
    caddy,
    service,
    appSaw,
    get,
    accessLog: () =>
      caddy
        .log()
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, any>)
        .filter((entry) => String(entry.logger).startsWith("http.log.access")),
    close: async () => {
      await caddy.stop();
      app.close();
      outpost.close();
    },
  };
}

/** Retry-After as a number of seconds, asserting it is one. */
function retryAfter(res: Response): number {
  const value = res.headers["retry-after"];
  assert.match(value ?? "", /^[1-9][0-9]*$/, `Retry-After is a whole number of seconds, got ${value}`);
  return Number(value);
}

describe("live per-user rate limits", { skip: !enabled && "caddy is not built (bash scripts/build-tools.sh)" }, () => {
  describe("3 requests a minute", () => {
    let pod: Pod;
    before(async () => {
      pod = await startPod({ events: 3, window: "1m" });
    });
    after(() => pod?.close());

    it("answers alice's 4th request 429 with Retry-After, while carol still gets through", async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await pod.get(`/dashboard?n=${i}`, { cookie: ALICE })).status);
      const fourth = await pod.get("/dashboard?n=3", { cookie: ALICE });
      assert.deepEqual([...statuses, fourth.status], [200, 200, 200, 429]);
      const wait = retryAfter(fourth);
      assert.ok(wait > 50 && wait <= 61, `Retry-After is what is left of the minute, got ${wait}`);
      assert.deepEqual(
        pod.appSaw.map((r) => r.user),
        ["alice", "alice", "alice"],
        "the app never saw the refused request",
      );

      // Same client address, another user: a count of its own.
      const carol: number[] = [];
      for (let i = 0; i < 3; i++) carol.push((await pod.get("/dashboard", { cookie: CAROL })).status);
      assert.deepEqual(carol, [200, 200, 200]);
      assert.equal((await pod.get("/dashboard", { cookie: CAROL })).status, 429);
      assert.equal((await pod.get("/dashboard", { cookie: ALICE })).status, 429, "alice is still limited");
    });

    it("limits a public path per client address, not per user", async () => {
      const from = (clientIp: string) => pod.get("/api/health", { clientIp });
      const first: number[] = [];
      for (let i = 0; i < 3; i++) first.push((await from("192.0.2.1")).status);
      const refused = await from("192.0.2.1");
      assert.deepEqual([...first, refused.status], [200, 200, 200, 429]);
      retryAfter(refused);
      assert.equal((await from("192.0.2.2")).status, 200, "another client address has its own count");
      assert.equal(
        (await pod.get("/api/health", { clientIp: "192.0.2.1", cookie: CAROL })).status,
        429,
        "a session does not reset the count of its address on a public path",
      );
    });

    it("writes decision rate-limited, with the user, in the access log line of each 429", async () => {
      await eventually(async () => {
        const limited = pod.accessLog().filter((e) => e.status === 429);
        assert.ok(limited.length >= 5, `expected the 429s in the log, got ${limited.length}`);
        return limited;
      });
      const entries = pod.accessLog();
      for (const e of entries.filter((x) => x.status === 429)) assert.equal(e.decision, "rate-limited", JSON.stringify(e));
      const alice429 = entries.find((e) => e.status === 429 && e.user === "alice");
      assert.ok(alice429, "alice's 429 names her");
      assert.ok(
        entries.some((e) => e.status === 200 && e.user === "alice" && e.decision === "allowed"),
        "a passing request is logged as allowed",
      );
      assert.ok(
        entries.some((e) => e.status === 200 && e.request?.uri === "/api/health" && e.decision === "public-path"),
        "a passing public-path request is logged as public",
      );
    });
  });

  describe("3 requests in 2 s, at most 2 back to back", () => {
    let pod: Pod;
    before(async () => {
      pod = await startPod({ events: 3, window: "2s", burst: 2 });
    });
    after(() => pod?.close());

    it("caps a burst at 2, lets one more through after the burst window, and holds the window's 3", async () => {
      const burst: number[] = [];
      for (const path of ["/a", "/b", "/c"]) burst.push((await pod.get(path, { cookie: ALICE })).status);
      assert.deepEqual(burst, [200, 200, 429]);
      // The burst window is 2 s × 2 / 3, rounded up, less 1 ms: 1333 ms; the refused /c used up nothing.
      await new Promise((r) => setTimeout(r, 1400));
      assert.equal((await pod.get("/d", { cookie: ALICE })).status, 200, "the burst window has passed");
      const over = await pod.get("/e", { cookie: ALICE });
      assert.equal(over.status, 429, "3 requests in the last 2 s: the window is full");
      assert.ok(retryAfter(over) <= 2);
      assert.deepEqual(
        pod.appSaw.map((r) => r.path),
        ["/a", "/b", "/d"],
      );
    });
  });
});
