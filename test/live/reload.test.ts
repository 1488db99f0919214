/**
 * "Reload, don't restart": the pod's reload command runs `caddy reload` through the
 * admin socket. With the real Caddy, a new Caddyfile takes effect for new requests
 * while a request already in flight on the old config completes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { renderCaddyfile } from "../../components/pod/render";
import type { Model } from "../../model/types";
import { single } from "../fixtures/models";
import { eventually, freePort, request, startCaddy, startEcho, type EchoedRequest, type RunningCaddy } from "../support/live";
import { haveTool, toolPath } from "../support/tools";

describe(
  "Caddy config change: reload in place",
  { skip: !haveTool("caddy") && "caddy is not built (bash scripts/build-tools.sh)" },
  () => {
    let caddy: RunningCaddy;
    const backends: { close(): Promise<void> }[] = [];
    const fqdn = "whoami.example.org";
    let before_: Model;
    let after_: Model;

    before(async () => {
      const [oldPort, newPort] = [await freePort(), await freePort()];
      const withPort = (port: number): Model => ({
        ...single,
        tls: { issuer: "internal" },
        services: single.services.map((s) => ({ ...s, port })),
      });
      before_ = withPort(oldPort);
      after_ = withPort(newPort);
      const slow = (tag: string) => (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
        res.setHeader("x-backend", tag);
        if (req.url !== "/slow") {
          res.end(JSON.stringify({ method: req.method ?? "", url: req.url ?? "", headers: req.headers } satisfies EchoedRequest));
          return true;
        }
        setTimeout(() => res.end("finished on the old config"), 3000);
        return true;
      };
      backends.push(await startEcho(oldPort, slow("old")), await startEcho(newPort, slow("new")));
      caddy = await startCaddy(toolPath("caddy")!, renderCaddyfile(before_, before_.services[0]!));
      await eventually(() => request({ port: caddy.port, servername: fqdn, ca: caddy.rootCA() }));
    });
    after(async () => {
      await caddy?.stop();
      for (const b of backends) await b.close();
    });

    it("serves new requests from the new config and lets the request in flight finish", async () => {
      const ask = (path = "/") => request({ port: caddy.port, servername: fqdn, ca: caddy.rootCA(), path });
      assert.equal((await ask()).headers["x-backend"], "old");
      const inFlight = ask("/slow");
      await new Promise((r) => setTimeout(r, 500));
      caddy.reload(renderCaddyfile(after_, after_.services[0]!));
      assert.equal((await ask()).headers["x-backend"], "new");
      const slow = await inFlight;
      assert.equal(slow.status, 200);
      assert.equal(slow.body, "finished on the old config");
    });
  },
);
