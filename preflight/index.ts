/**
 * `npm run preflight -- --stack <s>`: the checks to run before a stack's first
 * `pulumi up` (and in CI), with the stack's own config and the credential the Pulumi
 * Cloudflare provider will use. Nothing is created.
 */
import { buildModel, CONFIG_KEYS } from "../model";
import type { Model } from "../model/types";
import type { StackConfig } from "../plan/config";
import { checkCloudflare, DEFAULT_API, type Check, type ZoneNeed } from "./cloudflare";

/** The stack's model from its config, exactly as the program builds it (throws ConfigError). */
export function modelOf(config: StackConfig): Model {
  const raw: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const value = config.values[`${config.project}:${key}`];
    if (value === undefined) continue;
    try {
      raw[key] = JSON.parse(value);
    } catch {
      raw[key] = value;
    }
  }
  return buildModel(raw);
}

/** The zones the stack writes in, and the one pod tokens are minted on. */
export function zonesOf(model: Model): ZoneNeed[] {
  const challenge = model.cloudflare.challengeZone;
  const podTokens = model.tls.issuer === "cloudflare-dns";
  return [
    { key: "edgeplane:cloudflare.zoneId", id: model.cloudflare.zoneId, podTokens: podTokens && !challenge },
    ...(challenge ? [{ key: "edgeplane:cloudflare.challengeZone.id", id: challenge.id, podTokens }] : []),
  ];
}

export async function preflight(config: StackConfig, env: NodeJS.ProcessEnv): Promise<Check[]> {
  const model = modelOf(config);
  const token = env.CLOUDFLARE_API_TOKEN;
  if (!token) {
    return [
      {
        ok: false,
        what: "CLOUDFLARE_API_TOKEN is not set",
        hint: "export the token the Pulumi Cloudflare provider uses (the value of cloudflare:apiToken)",
      },
    ];
  }
  return checkCloudflare(token, zonesOf(model), env.CLOUDFLARE_API_BASE_URL ?? DEFAULT_API);
}

export function formatChecks(checks: readonly Check[]): string {
  return checks.map((c) => (c.ok ? `ok    ${c.what}` : `FAIL  ${c.what}${c.hint ? `\n      → ${c.hint}` : ""}`)).join("\n");
}
