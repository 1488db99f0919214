/**
 * The request path with real Caddy: the pod's rendered Caddyfile (tls internal) in
 * front of an echo app on loopback, and a client that sends exactly what Envoy's
 * cluster sends (PROXY v2, then the client's TLS). Envoy itself cannot run here; its
 * side of the contract is checked by envoy-validate and the Envoy renderer tests.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { renderCaddyfile } from "../../components/pod/render";
import type { Model } from "../../model/types";
import { single } from "../fixtures/models";
import { haveTool, toolPath } from "../support/tools";
import {
  eventually,
  freePort,
  proxyV2Header,
  rawExchange,
  request,
  startCaddy,
  startEcho,
  type EchoedRequest,
  type RunningCaddy,
} from "../support/live";

const enabled = haveTool("caddy");

describe(
  "live request path through the rendered Caddyfile",
  { skip: !enabled && "caddy is not built (bash scripts/build-tools.sh)" },
  () => {
    let caddy: RunningCaddy;
    let echo: { close(): Promise<void> };
    const fqdn = "whoami.example.org";

    before(async () => {
      const appPort = await freePort();
      const model: Model = {
        ...single,
        tls: { issuer: "internal" },
        services: single.services.map((s) => ({ ...s, port: appPort })),
      };
      echo = await startEcho(appPort);
      caddy = await startCaddy(toolPath("caddy")!, renderCaddyfile(model, model.services[0]!));
      await eventually(() => request({ port: caddy.port, servername: fqdn, ca: caddy.rootCA() }));
    });
    after(async () => {
      await caddy?.stop();
      await echo?.close();
    });

    const envoy = (claimed: string) => proxyV2Header({ ip: claimed, port: 51234 }, { ip: "203.0.113.10", port: 443 });
    const echoed = (body: string) => JSON.parse(body) as EchoedRequest;

    it("serves the service's name with a certificate for that name, and reaches the app", async () => {
      const res = await request({ port: caddy.port, servername: fqdn, ca: caddy.rootCA(), proxyHeader: envoy("198.51.100.23") });
      assert.equal(res.status, 200, caddy.log());
      assert.equal(echoed(res.body).headers.host, fqdn);
    });

    it("refuses a TLS handshake for any other name", async () => {
      await assert.rejects(
        request({ port: caddy.port, servername: "other.example.org", ca: caddy.rootCA(), proxyHeader: envoy("198.51.100.23") }),
        /alert|certificate|ECONNRESET|socket/i,
      );
    });

    it("does not serve plain HTTP on its port", async () => {
      const reply = await rawExchange(
        caddy.port,
        Buffer.concat([envoy("198.51.100.23"), Buffer.from(`GET / HTTP/1.1\r\nHost: ${fqdn}\r\n\r\n`)]),
      );
      assert.doesNotMatch(reply, /"url"/, "the app answered a plaintext request");
      assert.doesNotMatch(reply, /^HTTP\/1\.1 200/);
    });

    it("believes the client address in Envoy's PROXY v2 header", async () => {
      const res = await request({ port: caddy.port, servername: fqdn, ca: caddy.rootCA(), proxyHeader: envoy("198.51.100.23") });
      assert.equal(echoed(res.body).headers["x-forwarded-for"], "198.51.100.23");
    });

    it("without a PROXY header, sees only the real peer and no claimed address", async () => {
      const res = await request({
        port: caddy.port,
        servername: fqdn,
        ca: caddy.rootCA(),
        headers: [["X-Forwarded-For", "198.51.100.99"]],
      });
      assert.equal(res.status, 200);
      assert.equal(echoed(res.body).headers["x-forwarded-for"], "127.0.0.1");
    });

    it("never believes a PROXY header from an address that is not Envoy's", async () => {
      const attempt = request({
        port: caddy.port,
        servername: fqdn,
        ca: caddy.rootCA(),
        from: "127.0.0.2",
        proxyHeader: envoy("198.51.100.66"),
      });
      const outcome = await attempt.then(
        (res) => echoed(res.body).headers["x-forwarded-for"],
        (err: Error) => `refused: ${err.message}`,
      );
      assert.notEqual(outcome, "198.51.100.66");
      assert.match(String(outcome), /^refused/);
    });

    it("strips identity headers a client sends, in any letter case", async () => {
      const res = await request({
        port: caddy.port,
        servername: fqdn,
        ca: caddy.rootCA(),
        proxyHeader: envoy("198.51.100.23"),
        headers: [
          ["X-Authentik-Username", "admin"],
          ["x-authentik-groups", "admins"],
          ["X-AUTHENTIK-EMAIL", "root@example.org"],
          ["Forwarded", "for=10.0.0.1"],
          ["X-Other", "kept"],
        ],
      });
      const headers = echoed(res.body).headers;
      assert.deepEqual(
        Object.keys(headers).filter((h) => h.startsWith("x-authentik-") || h === "forwarded"),
        [],
      );
      assert.equal(headers["x-other"], "kept");
    });

    it("writes structured JSON access logs", async () => {
      await request({
        port: caddy.port,
        servername: fqdn,
        ca: caddy.rootCA(),
        proxyHeader: envoy("198.51.100.23"),
        path: "/logged",
      });
      await new Promise((r) => setTimeout(r, 200));
      const entry = caddy
        .log()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l))
        .find((e) => e.request?.uri === "/logged");
      assert.ok(entry, caddy.log());
      assert.equal(entry.request.remote_ip, "198.51.100.23");
      assert.equal(entry.request.host, fqdn);
    });

    it("serves Prometheus metrics of the site's requests, per host name, in plain HTTP on the metrics port only", async () => {
      await request({ port: caddy.port, servername: fqdn, ca: caddy.rootCA(), proxyHeader: envoy("198.51.100.23") });
      const scrape = () =>
        new Promise<string>((resolve, reject) => {
          http
            .get({ host: "127.0.0.1", port: caddy.metricsPort, path: "/metrics" }, (res) => {
              let body = "";
              res.setEncoding("utf8").on("data", (d: string) => (body += d));
              res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`))));
            })
            .on("error", reject);
        });
      const body = await eventually(async () => {
        const text = await scrape();
        if (!text.includes(`host="${fqdn}"`)) throw new Error("no per-host series yet");
        return text;
      });
      assert.match(body, new RegExp(`^caddy_http_requests_total\\{[^}]*host="${fqdn.replace(/\./g, "\\.")}"[^}]*\\} [1-9]`, "m"));
      // The metrics server takes no PROXY header and no TLS: those belong to :443 alone.
      const viaProxy = await rawExchange(
        caddy.metricsPort,
        Buffer.concat([envoy("198.51.100.23"), Buffer.from("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")]),
      );
      assert.match(viaProxy, /^HTTP\/1\.1 400/);
    });
  },
);
