/**
 * The real Pulumi engine for tests: the CLI, the Node.js language host and the four
 * resource plugins that scripts/build-pulumi.sh builds into
 * $EDGEPLANE_TOOLS_DIR/pulumi, run so that nothing is ever downloaded (plugin
 * acquisition off, ambient plugins ignored, no update check), with a `file://`
 * backend and the passphrase secrets provider in a scratch project per test
 * (plan/engine.ts).
 *
 * Outside CI a missing toolchain skips the engine tests with a message saying how to
 * build it; in CI (CI=true) it fails them.
 */
import fs from "node:fs";
import path from "node:path";
import type { TestContext } from "node:test";
import { findToolchain, ScratchProject, splitSecureConfig, type Toolchain } from "../../plan/engine";
import type { ApiStandIn, Zone } from "./api-stand-in";
import { toolsDir } from "./tools";

export const repoRoot = path.join(__dirname, "..", "..");
export const pulumiTools = path.join(toolsDir, "pulumi");

/** The plugins the program needs, at the versions package-lock.json pins (the engine asks for exactly those). */
export function pinnedPlugins(): { name: string; version: string }[] {
  const lock = JSON.parse(fs.readFileSync(path.join(repoRoot, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version: string }>;
  };
  return ["command", "random", "cloudflare", "tailscale"].map((name) => ({
    name,
    version: lock.packages[`node_modules/@pulumi/${name}`]!.version,
  }));
}

/** What is missing from the cached toolchain, or [] when it is complete. */
export function missingTools(): string[] {
  const bin = path.join(pulumiTools, "bin");
  const missing = ["pulumi", "pulumi-language-nodejs"].filter((b) => !fs.existsSync(path.join(bin, b)));
  for (const { name, version } of pinnedPlugins()) {
    const plugin = path.join(pulumiTools, "home", "plugins", `resource-${name}-v${version}`, `pulumi-resource-${name}`);
    if (!fs.existsSync(plugin)) missing.push(`pulumi-resource-${name} ${version}`);
  }
  return missing;
}

function missingMessage(missing: string[]): string {
  return (
    `the real Pulumi toolchain is not built (missing: ${missing.join(", ")}; looked in ${pulumiTools}): ` +
    `run bash scripts/build-pulumi.sh, or set EDGEPLANE_TOOLS_DIR`
  );
}

/**
 * For describe-level guards: true when the cached toolchain is complete; false outside
 * CI when it is not (the caller skips, saying why); throws in CI.
 */
export function havePulumi(): boolean {
  const missing = missingTools();
  if (missing.length === 0) return true;
  if (process.env.CI) throw new Error(missingMessage(missing));
  return false;
}

/** The reason engine tests are skipped, for `describe(..., { skip })`; undefined when they can run. */
export function skipWithoutPulumi(): string | undefined {
  return havePulumi() ? undefined : missingMessage(missingTools());
}

/** The cached toolchain (never `pulumi` on PATH: tests must run the pinned one). */
export function testToolchain(): Toolchain {
  return findToolchain(toolsDir);
}

/** A scratch project running the repository's program (or `program`) with the cached toolchain. */
export function scratchProject(options: { program?: string; env?: Record<string, string> } = {}): ScratchProject {
  return new ScratchProject(testToolchain(), { root: repoRoot, ...options });
}

/** Skips the test (or fails it in CI) when the toolchain is missing. */
export function requirePulumi(t: TestContext): boolean {
  const reason = skipWithoutPulumi();
  if (reason) t.skip(reason);
  return !reason;
}

/** The example stacks and the stack written fresh to the documented config contract. */
export const STACKS = [
  { name: "prod", file: path.join(repoRoot, "Pulumi.prod.yaml") },
  { name: "staging", file: path.join(repoRoot, "Pulumi.staging.yaml") },
  { name: "contract", file: path.join(repoRoot, "test", "stacks", "contract.yaml") },
] as const;

/** Where the providers reach the API stand-in, and the credentials it accepts. */
export function standInProviderConfig(standIn: ApiStandIn): { config: Record<string, unknown>; secrets: Record<string, string> } {
  return {
    config: {
      "cloudflare:baseUrl": standIn.cloudflareBaseUrl,
      "tailscale:baseUrl": standIn.tailscaleBaseUrl,
      "tailscale:tailnet": standIn.tailnet,
    },
    secrets: { "cloudflare:apiToken": standIn.token, "tailscale:apiKey": standIn.tailscaleApiKey },
  };
}

/** The zones a stack file's records and tokens live in, for seeding the stand-in. */
export function stackZones(stackFile: string): Zone[] {
  const { config } = splitSecureConfig(stackFile);
  const cf = config["edgeplane:cloudflare"] as { zoneId: string; challengeZone?: { id: string; name: string } };
  const domain = String(config["edgeplane:domain"]);
  return [
    { id: cf.zoneId, name: domain },
    ...(cf.challengeZone ? [{ id: cf.challengeZone.id, name: cf.challengeZone.name }] : []),
  ];
}

/**
 * Creates `stack` in `project` from a stack file: its plain config as written (with
 * `edit` applied), its `secure:` keys set to `secrets` (or a placeholder), the
 * providers pointed at the stand-in with its credentials.
 */
export async function createStackFrom(
  project: ScratchProject,
  stack: string,
  stackFile: string,
  standIn: ApiStandIn,
  options: { secrets?: Record<string, string>; edit?: (config: Record<string, unknown>) => void } = {},
): Promise<void> {
  const { config, secretKeys } = splitSecureConfig(stackFile);
  options.edit?.(config);
  const providers = standInProviderConfig(standIn);
  const secrets = Object.fromEntries(secretKeys.map((k) => [k, options.secrets?.[k] ?? "placeholder, not a key"]));
  await project.createStack(stack, { ...providers.config, ...config }, { ...providers.secrets, ...secrets, ...options.secrets });
}
