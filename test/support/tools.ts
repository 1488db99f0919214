/**
 * The real tools some tests run (built by scripts/build-tools.sh into
 * $EDGEPLANE_TOOLS_DIR/bin). Outside CI a missing tool skips those tests with a
 * message saying how to build it; in CI (CI=true) it fails them: a green CI run never
 * hides an unvalidated file.
 */
import fs from "node:fs";
import path from "node:path";
import type { TestContext } from "node:test";

export const toolsDir = process.env.EDGEPLANE_TOOLS_DIR ?? path.join(__dirname, "..", "..", ".cache", "tools");

/** Every tool scripts/build-tools.sh builds, with the module it is built from. */
export const TOOLS = {
  caddy: "tools/cmd/caddy: Caddy with the caddy-dns/cloudflare and caddy-ratelimit modules",
  "caddy-cloudflare": "tools/cmd/caddy-cloudflare: Caddy with the default sidecar image's modules (caddy-dns/cloudflare only)",
  "envoy-validate": "tools/cmd/envoy-validate: Envoy's v3 API types and validation rules",
  quadlet: "tools/quadlet: podman's Quadlet generator",
  actionlint: "tools/actionlint: the GitHub Actions workflow linter",
  "caddy-plain": "Caddy's own cmd/caddy, without the caddy-dns/cloudflare module",
  "test-standin": "tools/cmd/test-standin: the end-to-end tests' echo app, outpost and Envoy stand-ins",
  "test-registry": "tools/cmd/test-registry: the end-to-end tests' image registry",
} as const;
export type ToolName = keyof typeof TOOLS;

/** Absolute path of a built tool, or undefined when it has not been built. */
export function toolPath(name: ToolName): string | undefined {
  const file = path.join(toolsDir, "bin", name);
  return fs.existsSync(file) ? file : undefined;
}

/** The tool's path; skips the test (or fails it in CI) when the tool is missing. */
export function requireTool(t: TestContext, name: ToolName): string | undefined {
  const file = toolPath(name);
  if (file) return file;
  const message = `${name} (${TOOLS[name]}) is not built: run bash scripts/build-tools.sh (looked in ${path.join(toolsDir, "bin")})`;
  if (process.env.CI) throw new Error(message);
  t.skip(message);
  return undefined;
}

/** Resolves true when the named tool exists, for describe-level guards. */
export function haveTool(name: ToolName): boolean {
  if (toolPath(name)) return true;
  if (process.env.CI) throw new Error(`${name} (${TOOLS[name]}) is not built in CI: scripts/build-tools.sh must run first`);
  return false;
}
