/**
 * Runs the Cloudflare/Tailscale stand-in (./api-stand-in.ts) as its own process, for
 * tests that start `pulumi` or a remote host that must reach it:
 *
 *   tsx test/support/api-stand-in-cli.ts [--port N] [--seed seed.json]
 *
 * `seed.json` holds the same fields as `startApiStandIn`'s options (zones, tokens,
 * records, tailnet, tailscaleKeys, oauthClients, policy). Once listening it prints one
 * JSON line: `{cloudflareBaseUrl, tailscaleBaseUrl, port, account, tailnet, token,
 * tailscaleApiKey, controlUrl}` (`token` and `tailscaleApiKey` are the stand-in's own
 * credentials, good only against it). Seed more and read the state over HTTP:
 * `POST <controlUrl>/seed` with the same JSON, `GET <controlUrl>/state`,
 * `POST <controlUrl>/clear-requests`. It stops on SIGTERM or SIGINT.
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { startApiStandIn, type ApiStandInOptions } from "./api-stand-in";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: "string" }, seed: { type: "string" } } });
  const seed: ApiStandInOptions = values.seed ? JSON.parse(fs.readFileSync(values.seed, "utf8")) : {};
  const port = values.port === undefined ? (seed.port ?? 0) : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: not a port number: ${values.port}`);
  const standIn = await startApiStandIn({ ...seed, port });
  process.stdout.write(
    `${JSON.stringify({
      cloudflareBaseUrl: standIn.cloudflareBaseUrl,
      tailscaleBaseUrl: standIn.tailscaleBaseUrl,
      port: standIn.port,
      account: standIn.account,
      tailnet: standIn.tailnet,
      token: standIn.token,
      tailscaleApiKey: standIn.tailscaleApiKey,
      controlUrl: `http://127.0.0.1:${standIn.port}/_stand-in`,
    })}\n`,
  );
  const stop = () => void standIn.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err: Error) => {
  process.stderr.write(`api-stand-in: ${err.message}\n`);
  process.exit(1);
});
