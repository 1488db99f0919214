/**
 * One Caddy release for production and tests (model/caddy-version.ts): the default
 * sidecar image, the module tools/go.mod builds into the tests' caddy, and the binary
 * the live tests actually run must all be CADDY_VERSION.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { buildModel } from "../model";
import { CADDY_VERSION } from "../model/caddy-version";
import { rawStackConfig } from "./fixtures/models";
import { requireTool } from "./support/tools";

const repo = path.join(__dirname, "..");

/** The version of `module` in a go.mod `require`. */
function required(goMod: string, module: string): string | undefined {
  const escaped = module.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  return new RegExp(`^\\s*${escaped} v(\\S+)`, "m").exec(goMod)?.[1];
}

describe("the Caddy release", () => {
  it("is the same in the default sidecar image and in the tools build", () => {
    const image = buildModel(
      rawStackConfig({ web: { host: "edge", image: "docker.io/library/nginx:1.27", port: 8080, caddyPort: 10443 } }),
    ).images.caddy;
    assert.equal(image, `ghcr.io/caddybuilds/caddy-cloudflare:${CADDY_VERSION}`);
    const goMod = fs.readFileSync(path.join(repo, "tools", "go.mod"), "utf8");
    assert.equal(
      required(goMod, "github.com/caddyserver/caddy/v2"),
      CADDY_VERSION,
      "tools/go.mod builds another Caddy than production runs",
    );
    const goSum = fs.readFileSync(path.join(repo, "tools", "go.sum"), "utf8");
    assert.match(goSum, new RegExp(`^github\\.com/caddyserver/caddy/v2 v${CADDY_VERSION.replace(/\./g, "\\.")} h1:`, "m"));
  });

  it("is the one the built caddy reports", (t) => {
    const caddy = requireTool(t, "caddy");
    if (!caddy) return;
    const r = spawnSync(caddy, ["version"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout.split(" ")[0],
      `v${CADDY_VERSION}`,
      "the tools folder holds a caddy built from another pin: rebuild it",
    );
  });
});
