/**
 * `npm run preflight` as an operator runs it, against a local server playing
 * Cloudflare's API: which credentials pass, what each failure says, and that the
 * token never appears in the output.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";

const root = path.join(__dirname, "..");
const ZONE = "0123456789abcdef0123456789abcdef"; // Pulumi.prod.yaml
const CHALLENGE = "89abcdef0123456789abcdef01234567";
const OTHER = "ffffffffffffffffffffffffffffffff";
const DNS_WRITE = { id: "4755a26eedb94da69e1066d98aa820be", name: "DNS Write" };
const ZONE_READ = { id: "c8fed203ed3043cba015a93ad1616f1f", name: "Zone Read" };
const TOKENS_WRITE = { id: "686d18d5ac6c441c867cbf6771e58a0a", name: "API Tokens Write" };

interface Fake {
  status: string;
  policies: unknown[] | null;
}
/** Tokens the fake API knows, by value. Values look like real tokens (40 characters). */
const tokens: Record<string, Fake> = {
  good0000000000000000000000000000000000000: {
    status: "active",
    policies: [
      { effect: "allow", permission_groups: [TOKENS_WRITE], resources: { "com.cloudflare.api.user.u1": "*" } },
      {
        effect: "allow",
        permission_groups: [DNS_WRITE, ZONE_READ],
        resources: { "com.cloudflare.api.account.a1": { "com.cloudflare.api.account.zone.*": "*" } },
      },
    ],
  },
  disabled00000000000000000000000000000000: { status: "disabled", policies: [] },
  notokens00000000000000000000000000000000: {
    status: "active",
    policies: [
      {
        effect: "allow",
        permission_groups: [DNS_WRITE, ZONE_READ],
        resources: { [`com.cloudflare.api.account.zone.${ZONE}`]: "*", [`com.cloudflare.api.account.zone.${CHALLENGE}`]: "*" },
      },
    ],
  },
  otherzone0000000000000000000000000000000: {
    status: "active",
    policies: [
      { effect: "allow", permission_groups: [TOKENS_WRITE], resources: { "com.cloudflare.api.user.u1": "*" } },
      {
        effect: "allow",
        permission_groups: [DNS_WRITE, ZONE_READ],
        resources: { [`com.cloudflare.api.account.zone.${OTHER}`]: "*" },
      },
    ],
  },
};

let server: http.Server;
let api = "";
let calls = 0;
before(async () => {
  server = http.createServer((req, res) => {
    calls++;
    const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    const fake = tokens[token];
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (!fake) return send(401, { success: false, errors: [{ code: 1000, message: "Invalid API Token" }] });
    const url = req.url ?? "";
    if (url === "/client/v4/user/tokens/verify")
      return send(200, { success: true, result: { id: `id-${token.slice(0, 4)}`, status: fake.status } });
    if (url.startsWith("/client/v4/user/tokens/")) {
      const canRead = fake.policies?.some((p: any) => p.permission_groups.some((g: any) => g.name === "API Tokens Write"));
      return canRead
        ? send(200, { success: true, result: { policies: fake.policies } })
        : send(403, { success: false, errors: [{ code: 9109, message: "Unauthorized to access requested resource" }] });
    }
    const zone = /^\/client\/v4\/zones\/([0-9a-f]{32})$/.exec(url)?.[1];
    if (zone) {
      const readable = JSON.stringify(fake.policies).includes(zone) || JSON.stringify(fake.policies).includes("zone.*");
      return readable
        ? send(200, { success: true, result: { name: zone === ZONE ? "example.org" : "acme-example.net" } })
        : send(403, { success: false, errors: [{ code: 9109, message: "Unauthorized" }] });
    }
    send(404, { success: false, errors: [{ code: 7003, message: "No route" }] });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`;
});
after(() => server.close());

function preflight(token: string | undefined, args = ["--stack", "prod"]): Promise<{ code: number | null; out: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, CLOUDFLARE_API_BASE_URL: api };
  delete env.CLOUDFLARE_API_TOKEN;
  if (token !== undefined) env.CLOUDFLARE_API_TOKEN = token;
  return new Promise((resolve) => {
    const child = spawn(path.join(root, "node_modules", ".bin", "tsx"), [path.join(root, "scripts", "preflight.ts"), ...args], {
      env,
      cwd: root,
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => resolve({ code, out }));
  });
}

describe("npm run preflight", () => {
  it("passes a token that may create tokens and holds DNS on every zone of the stack", async () => {
    const r = await preflight("good0000000000000000000000000000000000000");
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /FAIL/);
    assert.match(r.out, /ok    the token may create API tokens/);
    assert.match(r.out, /ok    the token holds DNS Write and Zone Read on edgeplane:cloudflare\.challengeZone\.id/);
  });

  it("fails an unknown or disabled token, naming why", async () => {
    const bad = await preflight("nope0000000000000000000000000000000000000");
    assert.equal(bad.code, 1);
    assert.match(bad.out, /FAIL  the Cloudflare token is not valid \(Cloudflare says 1000: Invalid API Token\)/);
    const disabled = await preflight("disabled00000000000000000000000000000000");
    assert.match(disabled.out, /FAIL  the Cloudflare token is disabled, not active/);
  });

  it("fails a token that cannot create tokens, with the permission to add", async () => {
    const r = await preflight("notokens00000000000000000000000000000000");
    assert.equal(r.code, 1);
    assert.match(r.out, /FAIL  cannot read the token's own permissions .*\n      → give it "API Tokens Write"/);
  });

  it("fails a token scoped to another zone, naming the zone and its config key", async () => {
    const r = await preflight("otherzone0000000000000000000000000000000");
    assert.equal(r.code, 1);
    assert.match(r.out, new RegExp(`FAIL  zone ${ZONE} \\(edgeplane:cloudflare\\.zoneId\\) is not readable`));
  });

  it("fails clearly without a token, and never prints one", async () => {
    const none = await preflight(undefined);
    assert.equal(none.code, 1);
    assert.match(none.out, /FAIL  CLOUDFLARE_API_TOKEN is not set/);
    for (const token of Object.keys(tokens)) {
      const r = await preflight(token);
      assert.ok(!r.out.includes(token) && !r.out.includes(token.slice(0, 12)), `the output shows ${token}`);
    }
  });

  it("stops on an invalid stack config with the model's error, before calling the API", async () => {
    const doc = YAML.parse(fs.readFileSync(path.join(root, "Pulumi.prod.yaml"), "utf8"));
    doc.config["edgeplane:cloudflare"].zoneId = "not-a-zone";
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-preflight-")), "Pulumi.bad.yaml");
    fs.writeFileSync(file, YAML.stringify(doc));
    const before = calls;
    const r = await preflight("good0000000000000000000000000000000000000", ["--stack", "bad", "--stack-file", file]);
    assert.equal(r.code, 1);
    assert.match(r.out, /edgeplane:cloudflare\.zoneId: must be a 32-character lowercase hex Cloudflare zone ID/);
    assert.equal(calls, before, "no API call on an invalid config");
  });
});
