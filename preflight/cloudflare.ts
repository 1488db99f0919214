/**
 * Can the Cloudflare credential `pulumi up` will use do what the stack needs? Minting a
 * scoped token fails (API code 1001) unless the creating token itself holds every
 * permission it grants (cloudflare/terraform-provider-cloudflare#7241, LESSONS.md 3), so
 * the checks read the token's own policies:
 *
 * - the token is valid and active             GET /user/tokens/verify
 * - it may create tokens ("API Tokens Write") GET /user/tokens/{id}
 * - it holds DNS Write and Zone Read on each zone pod tokens will get
 * - each zone the stack writes records in is readable   GET /zones/{id}
 *
 * The token is sent only in the Authorization header and never printed; API errors are
 * reported by their code and message.
 */

export const DEFAULT_API = "https://api.cloudflare.com/client/v4";

export interface ZoneNeed {
  /** The config key that names the zone, for messages. */
  readonly key: string;
  readonly id: string;
  /** Pod tokens are minted on this zone: the creator needs DNS Write and Zone Read on it. */
  readonly podTokens: boolean;
}

export interface Check {
  readonly ok: boolean;
  readonly what: string;
  /** What to do about a failure. */
  readonly hint?: string;
}

interface ApiResult<T> {
  readonly success: boolean;
  readonly result?: T;
  readonly errors?: { code: number; message: string }[];
}

interface TokenPolicy {
  readonly effect: "allow" | "deny";
  readonly permission_groups: { id: string; name?: string }[];
  readonly resources: Record<string, unknown>;
}

export const API_TOKENS_WRITE = "API Tokens Write";
export const DNS_WRITE = { id: "4755a26eedb94da69e1066d98aa820be", name: "DNS Write" };
export const ZONE_READ = { id: "c8fed203ed3043cba015a93ad1616f1f", name: "Zone Read" };

async function get<T>(api: string, token: string, path: string): Promise<ApiResult<T> & { status: number }> {
  const res = await fetch(`${api}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  let body: ApiResult<T>;
  try {
    body = (await res.json()) as ApiResult<T>;
  } catch {
    body = { success: false, errors: [{ code: res.status, message: `HTTP ${res.status} without a JSON body` }] };
  }
  return { ...body, status: res.status };
}

function apiError(r: { status: number; errors?: { code: number; message: string }[] }): string {
  const e = r.errors?.map((x) => `${x.code}: ${x.message}`).join("; ");
  return e ? `Cloudflare says ${e}` : `HTTP ${r.status}`;
}

/** Does a policy's resource map cover this zone (directly, by wildcard, or through an account)? */
export function coversZone(resources: Record<string, unknown>, zoneId: string): boolean {
  return Object.entries(resources).some(([key, value]) => {
    if (key === `com.cloudflare.api.account.zone.${zoneId}` || key === "com.cloudflare.api.account.zone.*") return value === "*";
    if (key.startsWith("com.cloudflare.api.account.") && typeof value === "object" && value !== null)
      return coversZone(value as Record<string, unknown>, zoneId);
    return false;
  });
}

/** Whether allow-policies grant the permission group on the zone, and no deny-policy takes it away. */
function grants(policies: readonly TokenPolicy[], group: { id: string; name: string }, zoneId: string): boolean {
  const has = (p: TokenPolicy) => p.permission_groups.some((g) => g.id === group.id || g.name === group.name);
  const on = (effect: string) => policies.some((p) => p.effect === effect && has(p) && coversZone(p.resources, zoneId));
  return on("allow") && !on("deny");
}

export async function checkCloudflare(token: string, zones: readonly ZoneNeed[], api = DEFAULT_API): Promise<Check[]> {
  const checks: Check[] = [];
  const verify = await get<{ id: string; status: string }>(api, token, "/user/tokens/verify");
  if (!verify.success || !verify.result) {
    return [
      {
        ok: false,
        what: `the Cloudflare token is not valid (${apiError(verify)})`,
        hint: "set CLOUDFLARE_API_TOKEN to a user API token (My Profile → API Tokens)",
      },
    ];
  }
  if (verify.result.status !== "active") {
    return [
      {
        ok: false,
        what: `the Cloudflare token is ${verify.result.status}, not active`,
        hint: "re-enable it or create a new one",
      },
    ];
  }
  checks.push({ ok: true, what: "the Cloudflare token is valid and active" });

  const details = await get<{ policies: TokenPolicy[] }>(api, token, `/user/tokens/${verify.result.id}`);
  const policies = details.success ? (details.result?.policies ?? []) : null;
  if (!policies) {
    checks.push({
      ok: false,
      what: `cannot read the token's own permissions (${apiError(details)}), so it cannot create API tokens either`,
      hint: `give it "${API_TOKENS_WRITE}" (which includes reading tokens)`,
    });
  } else {
    const canCreate = policies.some((p) => p.effect === "allow" && p.permission_groups.some((g) => g.name === API_TOKENS_WRITE));
    checks.push(
      canCreate
        ? { ok: true, what: `the token may create API tokens (${API_TOKENS_WRITE})` }
        : {
            ok: false,
            what: `the token cannot create API tokens: it lacks "${API_TOKENS_WRITE}"`,
            hint: `add the "${API_TOKENS_WRITE}" permission (User → API Tokens → Edit); every pod gets its own token`,
          },
    );
  }

  for (const zone of zones) {
    const read = await get<{ name: string }>(api, token, `/zones/${zone.id}`);
    if (!read.success) {
      checks.push({
        ok: false,
        what: `zone ${zone.id} (${zone.key}) is not readable with this token (${apiError(read)})`,
        hint: "check the zone ID, and give the token Zone Read on it",
      });
      continue;
    }
    checks.push({ ok: true, what: `zone ${read.result?.name ?? zone.id} (${zone.key}) is readable` });
    if (!policies) continue;
    const missing = [DNS_WRITE, ...(zone.podTokens ? [ZONE_READ] : [])].filter((g) => !grants(policies, g, zone.id));
    checks.push(
      missing.length === 0
        ? { ok: true, what: `the token holds DNS Write${zone.podTokens ? " and Zone Read" : ""} on ${zone.key}` }
        : {
            ok: false,
            what: `the token lacks ${missing.map((g) => g.name).join(" and ")} on zone ${zone.id} (${zone.key})`,
            hint: zone.podTokens
              ? "a token can only grant what it holds: pod tokens get DNS Write and Zone Read on this zone"
              : "records are written in this zone",
          },
    );
  }
  return checks;
}
