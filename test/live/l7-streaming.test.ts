/**
 * A long streamed completion through an `l7` service's rendered Caddyfile: Caddy
 * terminates TLS and proxies to Envoy's L7 port, played here by a local HTTP listener
 * (Envoy cannot run here) that streams a token every second for longer than Envoy's
 * default 15 s route timeout. The client must receive every token, each as it is sent.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import net from "node:net";
import { L7_CREDENTIAL_HEADER, l7Credential } from "../../components/ingress/render";
import { renderCaddyfile } from "../../components/pod/render";
import type { Model } from "../../model/types";
import { fleet } from "../fixtures/models";
import { eventually, freePort, proxyV2Header, request, startCaddy, startEcho, type RunningCaddy } from "../support/live";
import { haveTool, toolPath } from "../support/tools";

const TOKENS = 17;

describe(
  "l7 service: a stream longer than 15 s",
  { skip: !haveTool("caddy") && "caddy is not built (bash scripts/build-tools.sh)" },
  () => {
    let caddy: RunningCaddy;
    let envoyL7: { close(): Promise<void> };
    const fqdn = "llm.example.org";
    const vllm = fleet.services.find((s) => s.name === "vllm")!;
    // What the podman secret gives the Caddy container (components/pod: l7CredentialSecretName).
    const credential = l7Credential(vllm, "a-key-only-this-caddy-has-0123456789abcdefghijk");

    before(async () => {
      const l7Port = await freePort();
      // One host, whose tailnet address is loopback here, so the rendered upstream
      // (ingress tailnet address : L7 port) is this machine.
      const model: Model = {
        ...fleet,
        tls: { issuer: "internal" },
        hosts: [{ ...fleet.hosts[0]!, tailnetIP: "127.0.0.1" }],
        services: [{ ...vllm, host: "edge", l7: { ...vllm.l7!, listenPort: l7Port } }],
      };
      envoyL7 = await startEcho(l7Port, (req, res) => {
        if (req.url === "/l7-credential") {
          // What Envoy's basic_auth filter would be handed.
          res.writeHead(200, { "content-type": "text/plain" });
          res.end(JSON.stringify(req.headersDistinct[L7_CREDENTIAL_HEADER] ?? []));
          return true;
        }
        if (req.url !== "/v1/completions") return false;
        res.writeHead(200, { "content-type": "text/event-stream" });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`data: token-${n}\n\n`);
          if (++n === TOKENS) {
            clearInterval(timer);
            res.end("data: [DONE]\n\n");
          }
        }, 1000);
        return true;
      });
      caddy = await startCaddy(toolPath("caddy")!, renderCaddyfile(model, model.services[0]!), {
        EDGEPLANE_L7_CREDENTIAL: credential,
      });
      await eventually(() => request({ port: caddy.port, servername: fqdn, ca: caddy.rootCA(), path: "/ready" }));
    });
    after(async () => {
      await caddy?.stop();
      await envoyL7?.close();
    });

    it("presents the pod's own L7 credential to Envoy, whatever the client sent", async () => {
      for (const headers of [[], [[L7_CREDENTIAL_HEADER, "Basic Zm9yZ2VkOmZvcmdlZA=="]]] as [string, string][][]) {
        const r = await request({ port: caddy.port, servername: fqdn, ca: caddy.rootCA(), path: "/l7-credential", headers });
        assert.equal(r.status, 200);
        assert.deepEqual(JSON.parse(r.body), [credential]);
      }
    });

    it("delivers every token, as it is produced, past the 15 s mark", async () => {
      const started = Date.now();
      const arrivals: number[] = [];
      const body = await new Promise<string>((resolve, reject) => {
        const raw = net.connect({ host: "127.0.0.1", port: caddy.port }, () => {
          raw.write(proxyV2Header({ ip: "198.51.100.23", port: 50000 }, { ip: "203.0.113.10", port: 443 }));
          const s = tls.connect({ socket: raw, servername: fqdn, ca: caddy.rootCA(), ALPNProtocols: ["http/1.1"] }, () =>
            s.write(`POST /v1/completions HTTP/1.1\r\nHost: ${fqdn}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`),
          );
          let text = "";
          s.on("data", (d: Buffer) => {
            text += d.toString("utf8");
            arrivals.push(Date.now() - started);
          });
          s.on("end", () => resolve(text));
          s.on("error", reject);
        });
        raw.on("error", reject);
      });
      for (let i = 0; i < TOKENS; i++) assert.ok(body.includes(`data: token-${i}\n`), `token ${i} missing`);
      assert.ok(body.includes("data: [DONE]"));
      assert.ok(Date.now() - started > 15_000, "the stream should outlast Envoy's default route timeout");
      // Streamed, not buffered: data arrived in many pieces spread over the whole response.
      assert.ok(arrivals.length >= TOKENS / 2, `only ${arrivals.length} reads`);
      assert.ok(arrivals[0]! < 5_000, `first bytes after ${arrivals[0]} ms`);
    });
  },
);
