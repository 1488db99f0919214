/**
 * Can the Cloudflare credential `pulumi up` will use do what the stack needs?
 *
 * Minting a token scoped to one zone fails with API error 1001 ("Failed common
 * permission check against resources") unless the creating token itself holds every
 * permission group it grants, on that zone (cloudflare/terraform-provider-cloudflare#7241,
 * cloudflare/terraform-provider-cloudflare#7241). That surfaces halfway through an `up`, after the records were
 * created; so these checks read the token's own policies instead:
 *
 * | check                                                   | endpoint                                  |
 * | ------------------------------------------------------- | ----------------------------------------- |
 * | the token is valid and active                           | GET /user/tokens/verify                   |
 * | (it is not an account-owned token, which cannot mint)   | GET /accounts/{account_id}/tokens/verify  |
 * | it may create tokens ("API Tokens Write")               | GET /user/tokens/{token_id}               |
 * | each zone the stack uses is readable                    | GET /zones/{zone_id}                      |
 * | DNS Write (+ Zone Read where pod tokens are minted)     | the policies read above                   |
 *
 * GET /user/tokens/{token_id} accepts "API Tokens Read" or "API Tokens Write"
 * (developers.cloudflare.com/api/resources/user/subresources/tokens/methods/get), so a
 * token refused there holds neither, and certainly not the Write it needs to mint.
 *
 * The token goes out only in the Authorization header. API errors are reported by
 * status, code and message, never with the request.
 */
import { fail, ok, redact, skip, warn, type Check } from "./check";

export const DEFAULT_CLOUDFLARE_API = "https://api.cloudflare.com/client/v4";

/** A permission group as a token policy lists it: the ID is authoritative, the name is for people. */
export interface PermissionGroup {
  readonly id: string;
  readonly name: string;
}

/** Cloudflare's user-scoped group that lets a token create other tokens (scope com.cloudflare.api.user). */
export const API_TOKENS_WRITE: PermissionGroup = { id: "686d18d5ac6c441c867cbf6771e58a0a", name: "API Tokens Write" };

export interface ZoneNeed {
  /** The config key that names the zone, for messages: `edgeplane:cloudflare.zoneId`. */
  readonly key: string;
  readonly id: string;
  /** Pod tokens are minted on this zone: their creator must hold DNS Write and Zone Read on it. */
  readonly podTokens: boolean;
}

/** What the stack will ask of the credential (preflight/index.ts derives it from the model). */
export interface CloudflareNeeds {
  /** Every zone the stack writes in or mints tokens on. DNS Write is needed on each. */
  readonly zones: readonly ZoneNeed[];
  /** The stack creates API tokens (one per pod) and so needs API Tokens Write. */
  readonly mintsTokens: boolean;
  /** Why it does not, for the skip line. */
  readonly noTokensBecause?: string;
  /** The groups pod tokens are granted, with the config keys that set them. */
  readonly groups: {
    readonly dnsWrite: PermissionGroup & { readonly key: string };
    readonly zoneRead: PermissionGroup & { readonly key: string };
  };
}

interface ApiMessage {
  readonly code: number;
  readonly message: string;
}

interface ApiResponse<T> {
  /** 0 when the API could not be reached at all. */
  readonly status: number;
  readonly success: boolean;
  readonly result?: T;
  readonly errors: readonly ApiMessage[];
}

export interface TokenPolicy {
  readonly effect: "allow" | "deny";
  readonly permission_groups: readonly { readonly id: string; readonly name?: string }[];
  readonly resources: Readonly<Record<string, unknown>>;
}

/** A read-only client for the few endpoints preflight needs. */
export class CloudflareApi {
  constructor(
    readonly base: string,
    private readonly token: string,
    private readonly timeoutMs = 15_000,
  ) {}

  async get<T>(path: string): Promise<ApiResponse<T>> {
    let res: Response;
    try {
      res = await fetch(`${this.base.replace(/\/+$/, "")}${path}`, {
        headers: { Authorization: `Bearer ${this.token}`, Accept: "application/json" },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      return { status: 0, success: false, errors: [{ code: 0, message: this.scrub(networkError(err)) }] };
    }
    let body: Partial<ApiResponse<T>>;
    try {
      body = (await res.json()) as Partial<ApiResponse<T>>;
    } catch {
      body = { success: false };
    }
    const errors = (Array.isArray(body.errors) ? body.errors : []).map((e) => ({
      code: Number(e?.code ?? 0),
      message: this.scrub(String(e?.message ?? "")),
    }));
    return {
      status: res.status,
      success: res.ok && body.success === true,
      ...(body.result !== undefined && body.result !== null ? { result: body.result } : {}),
      errors,
    };
  }

  /** An API that echoes the credential in an error message must not make us print it. */
  private scrub(text: string): string {
    return redact(text, [this.token]);
  }
}

function networkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError") return "no answer in time";
  const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? err.message;
}

/** `HTTP 403, Cloudflare error 9109: Unauthorized to access requested resource`. */
export function describeError(r: Pick<ApiResponse<unknown>, "status" | "errors">, base?: string): string {
  if (r.status === 0) return `cannot reach ${base ?? "the Cloudflare API"}: ${r.errors[0]?.message ?? "no answer"}`;
  const codes = r.errors.map((e) => `Cloudflare error ${e.code}: ${e.message}`).join("; ");
  return codes ? `HTTP ${r.status}, ${codes}` : `HTTP ${r.status}`;
}

const ZONE_PREFIX = "com.cloudflare.api.account.zone.";
const ACCOUNT_PREFIX = "com.cloudflare.api.account.";

/**
 * Does a policy's resource map cover this zone? The forms Cloudflare writes
 * (developers.cloudflare.com/fundamentals/api/how-to/create-via-api/):
 * - one zone: `{"com.cloudflare.api.account.zone.<ZONE_ID>": "*"}`;
 * - every zone: `{"com.cloudflare.api.account.zone.*": "*"}`;
 * - every zone of an account: `{"com.cloudflare.api.account.<ACCOUNT_ID>": {"com.cloudflare.api.account.zone.*": "*"}}`.
 * With the zone's account unknown (the zone was not readable), an account-wide grant
 * counts for any account.
 */
export function coversZone(resources: Readonly<Record<string, unknown>>, zoneId: string, accountId?: string): boolean {
  return Object.entries(resources).some(([key, value]) => {
    if (value === "*") return key === `${ZONE_PREFIX}${zoneId}` || key === `${ZONE_PREFIX}*`;
    if (typeof value !== "object" || value === null || key.startsWith(ZONE_PREFIX) || !key.startsWith(ACCOUNT_PREFIX))
      return false;
    const account = key.slice(ACCOUNT_PREFIX.length);
    return (
      (account === "*" || accountId === undefined || account === accountId) &&
      coversZone(value as Record<string, unknown>, zoneId)
    );
  });
}

/** The zones a group is granted on, in words, for a hint: `zone ffff…, every zone of account a1`. */
export function describeCoverage(policies: readonly TokenPolicy[], group: PermissionGroup): string {
  const parts = new Set<string>();
  const walk = (resources: Readonly<Record<string, unknown>>, account?: string) => {
    for (const [key, value] of Object.entries(resources)) {
      if (value === "*" && key === `${ZONE_PREFIX}*`) parts.add(account ? `every zone of account ${account}` : "every zone");
      else if (value === "*" && key.startsWith(ZONE_PREFIX)) parts.add(`zone ${key.slice(ZONE_PREFIX.length)}`);
      else if (typeof value === "object" && value !== null && key.startsWith(ACCOUNT_PREFIX))
        walk(value as Record<string, unknown>, key.slice(ACCOUNT_PREFIX.length));
    }
  };
  for (const p of policies) if (p.effect === "allow" && holdsGroup(p, group)) walk(p.resources);
  return parts.size ? [...parts].sort().join(", ") : "no zone";
}

function holdsGroup(policy: TokenPolicy, group: PermissionGroup): boolean {
  return policy.permission_groups.some((g) => g.id === group.id || g.name === group.name);
}

/** An allow policy grants the group on the zone, and no deny policy takes it back. */
export function grantsOnZone(
  policies: readonly TokenPolicy[],
  group: PermissionGroup,
  zoneId: string,
  accountId?: string,
): boolean {
  const on = (effect: TokenPolicy["effect"]) =>
    policies.some((p) => p.effect === effect && holdsGroup(p, group) && coversZone(p.resources, zoneId, accountId));
  return on("allow") && !on("deny");
}

/** A user-scoped group (API Tokens Write) can only apply to the token's own user. */
export function grantsOnUser(policies: readonly TokenPolicy[], group: PermissionGroup): boolean {
  const on = (effect: TokenPolicy["effect"]) => policies.some((p) => p.effect === effect && holdsGroup(p, group));
  return on("allow") && !on("deny");
}

interface Verified {
  readonly id: string;
  readonly status: "active" | "disabled" | "expired" | string;
  readonly expires_on?: string;
}

interface Zone {
  readonly name?: string;
  readonly account?: { readonly id?: string; readonly name?: string };
}

/** What the token's own policies say, or why they could not be read. */
type Policies =
  | { readonly known: true; readonly list: readonly TokenPolicy[] }
  | { readonly known: false; readonly why: string; readonly refused: boolean };

const USER_TOKEN_HINT =
  "use a user API token (My Profile → API Tokens → Create Token), with User · API Tokens · Edit, and Zone · DNS · Edit plus Zone · Zone · Read on the stack's zones";

/**
 * Who owns the token: a user (what edgeplane needs to mint pod tokens), or an account.
 * The paths differ: /user/tokens/… against /accounts/{account_id}/tokens/….
 */
type Owner = { readonly kind: "user" } | { readonly kind: "account"; readonly account: string };

const tokensPath = (owner: Owner) =>
  owner.kind === "user" ? "/user/tokens" : `/accounts/${encodeURIComponent(owner.account)}/tokens`;

export async function checkCloudflare(api: CloudflareApi, needs: CloudflareNeeds): Promise<Check[]> {
  let owner: Owner = { kind: "user" };
  let verify = await api.get<Verified>("/user/tokens/verify");
  if (verify.status === 0) {
    return [
      fail(
        `the Cloudflare API does not answer (${describeError(verify, api.base)})`,
        "check the network; the address comes from --cloudflare-api, CLOUDFLARE_API_BASE_URL or cloudflare:baseUrl, default https://api.cloudflare.com/client/v4",
      ),
    ];
  }
  if (!verify.success || !verify.result) {
    const account = await accountOwner(api, needs);
    if (!account) {
      return [fail(`the Cloudflare token is not valid (${describeError(verify)})`, `check the value; ${USER_TOKEN_HINT}`)];
    }
    if (needs.mintsTokens) {
      return [
        fail(
          `the Cloudflare token is an account-owned token (of account ${account.id}): it cannot create the pods' user API tokens`,
          `edgeplane creates each pod's token with cloudflare.ApiToken (POST /user/tokens), which an account-owned token may not call; ${USER_TOKEN_HINT}`,
        ),
      ];
    }
    // Without pod tokens, an account-owned token that may edit the records will do.
    owner = { kind: "account", account: account.id };
    verify = account.verify;
  }
  const result = verify.result!;
  if (result.status !== "active") {
    return [
      fail(
        `the Cloudflare token is ${result.status}, not active`,
        result.status === "expired"
          ? "create a new token, or extend this one's TTL"
          : "re-enable it under API Tokens in the Cloudflare dashboard, or create a new one",
      ),
    ];
  }
  const kind = owner.kind === "account" ? ` (account-owned, of account ${owner.account})` : "";
  const checks: Check[] = [
    ok(`the Cloudflare token${kind} is valid and active${result.expires_on ? ` (expires ${result.expires_on})` : ""}`),
  ];

  const details = await api.get<{ policies?: TokenPolicy[] }>(`${tokensPath(owner)}/${encodeURIComponent(result.id)}`);
  const policies: Policies =
    details.success && Array.isArray(details.result?.policies)
      ? { known: true, list: details.result.policies }
      : { known: false, why: describeError(details, api.base), refused: details.status === 403 };

  checks.push(...tokenCreation(policies, needs));
  for (const zone of needs.zones) checks.push(...(await zoneChecks(api, zone, policies, needs, owner)));
  return checks;
}

/** The token failed /user/tokens/verify but reads a zone: is it a token of the zone's account? */
async function accountOwner(
  api: CloudflareApi,
  needs: CloudflareNeeds,
): Promise<{ id: string; verify: ApiResponse<Verified> } | undefined> {
  const first = needs.zones[0];
  if (!first) return undefined;
  const zone = await api.get<Zone>(`/zones/${encodeURIComponent(first.id)}`);
  const id = zone.success ? zone.result?.account?.id : undefined;
  if (!id) return undefined;
  const verify = await api.get<Verified>(`/accounts/${encodeURIComponent(id)}/tokens/verify`);
  return verify.success && verify.result ? { id, verify } : undefined;
}

function tokenCreation(policies: Policies, needs: CloudflareNeeds): Check[] {
  if (!needs.mintsTokens)
    return [skip(`API Tokens Write is not needed: ${needs.noTokensBecause ?? "the stack creates no API tokens"}`)];
  const addIt = `give the token User · API Tokens · Edit ("${API_TOKENS_WRITE.name}"): every pod gets its own DNS-01 token, created by this one`;
  if (!policies.known) {
    return [
      policies.refused
        ? fail(
            `the token cannot create API tokens: it may not even read its own permissions (GET /user/tokens/{id}: ${policies.why}), which "${API_TOKENS_WRITE.name}" would allow`,
            addIt,
          )
        : fail(
            `cannot tell whether the token may create API tokens: reading its own permissions failed (${policies.why})`,
            "run preflight again; if it keeps failing, check the token under My Profile → API Tokens",
          ),
    ];
  }
  const checks = [
    grantsOnUser(policies.list, API_TOKENS_WRITE)
      ? ok(`the token may create API tokens (${API_TOKENS_WRITE.name})`)
      : fail(`the token cannot create API tokens: its policies do not grant "${API_TOKENS_WRITE.name}"`, addIt),
  ];
  // A pod token asks for the configured group IDs; the token's own policies show the real ones.
  for (const group of [needs.groups.dnsWrite, needs.groups.zoneRead]) {
    const seen = policies.list.flatMap((p) => p.permission_groups).find((g) => g.name === group.name && g.id !== group.id);
    if (seen) {
      checks.push(
        fail(
          `${group.key} is ${group.id}, but Cloudflare's "${group.name}" permission group is ${seen.id}`,
          `set ${group.key} to ${seen.id}, or remove it to use the default`,
        ),
      );
    }
  }
  return checks;
}

async function zoneChecks(
  api: CloudflareApi,
  zone: ZoneNeed,
  policies: Policies,
  needs: CloudflareNeeds,
  owner: Owner,
): Promise<Check[]> {
  const { dnsWrite, zoneRead } = needs.groups;
  const required = zone.podTokens ? [dnsWrite, zoneRead] : [dnsWrite];
  const why = zone.podTokens
    ? "pod tokens get DNS Write and Zone Read on this zone, and Cloudflare refuses (API error 1001) to create a token with a permission on a zone that its creator lacks there"
    : "edgeplane writes the services' DNS records in this zone";
  const addThem = `give the token ${required.map((g) => g.name).join(" and ")} on this zone (Zone Resources → Include → Specific zone)`;

  const read = await api.get<Zone>(`/zones/${encodeURIComponent(zone.id)}`);
  if (!read.success) {
    const covered = policies.known ? `; the token's ${dnsWrite.name} covers ${describeCoverage(policies.list, dnsWrite)}` : "";
    return [
      fail(
        `zone ${zone.id} (${zone.key}) is not readable with this token (${describeError(read, api.base)})`,
        `check the zone ID in ${zone.key}, and ${addThem}${covered}`,
      ),
    ];
  }
  const label = `zone ${read.result?.name ?? zone.id} (${zone.key})`;
  const checks = [ok(`${label} is readable`)];
  if (!policies.known) {
    // The token-creation check has already failed when pod tokens need these policies.
    checks.push(
      warn(
        `cannot tell whether the token holds ${required.map((g) => g.name).join(" and ")} on ${label}: its own permissions are not readable (${policies.why})`,
        `give the token ${owner.kind === "user" ? "User · API Tokens · Read" : "Account · Account API Tokens · Read"} so preflight can check`,
      ),
    );
    return checks;
  }
  const account = read.result?.account?.id;
  const missing = required.filter((g) => !grantsOnZone(policies.list, g, zone.id, account));
  checks.push(
    missing.length === 0
      ? ok(`the token holds ${required.map((g) => g.name).join(" and ")} on ${label}`)
      : fail(`the token lacks ${missing.map((g) => g.name).join(" and ")} on ${label}`, `${why}: ${addThem}`),
  );
  return checks;
}
