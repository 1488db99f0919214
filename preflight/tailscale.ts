/**
 * Can the Tailscale credential read the tailnet policy file? The stack that owns the
 * policy replaces it whole (tailscale/terraform-provider-tailscale tailscale/resource_acl.go), so a credential that cannot even read it
 * fails `up` after everything else was created.
 *
 * - API key: `Authorization: Bearer <key>` (tailscale.com/api);
 * - OAuth client: client credentials at POST /api/v2/oauth/token, then the access token
 *   as a bearer (tailscale.com/kb/1215/oauth-clients);
 * - the policy file: GET /api/v2/tailnet/{tailnet}/acl, tailnet `-` meaning the
 *   credential's own.
 */
import { fail, ok, redact, type Check } from "./check";

export const DEFAULT_TAILSCALE_API = "https://api.tailscale.com";

export type TailscaleCredential =
  | { readonly kind: "apiKey"; readonly apiKey: string; readonly source: string }
  | { readonly kind: "oauth"; readonly clientId: string; readonly clientSecret: string; readonly source: string };

/** `TAILSCALE_API_KEY`, `the OAuth client from TAILSCALE_OAUTH_CLIENT_ID`: where the credential came from. */
function named(credential: TailscaleCredential): string {
  return credential.kind === "apiKey" ? credential.source : `the OAuth client from ${credential.source}`;
}

export interface TailscaleTarget {
  readonly base: string;
  /** `-` is the credential's own tailnet. */
  readonly tailnet: string;
  readonly credential: TailscaleCredential;
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly error?: string;
}

async function call(url: string, init: RequestInit, secrets: readonly string[]): Promise<Answer> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string } }).cause;
    return { status: 0, body: undefined, error: redact(cause?.code ?? (err as Error).message ?? String(err), secrets) };
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // HuJSON or an error page: kept as text
  }
  return { status: res.status, body };
}

/** Tailscale answers errors as `{"message": "..."}`. */
function describe(answer: Answer, base: string, secrets: readonly string[]): string {
  if (answer.status === 0) return `cannot reach ${base}: ${answer.error ?? "no answer"}`;
  const message =
    typeof answer.body === "object" && answer.body !== null && "message" in answer.body
      ? String((answer.body as { message: unknown }).message)
      : "";
  return redact(message ? `HTTP ${answer.status}: ${message}` : `HTTP ${answer.status}`, secrets);
}

export async function checkTailscale(target: TailscaleTarget): Promise<Check[]> {
  const base = target.base.replace(/\/+$/, "");
  const { credential } = target;
  const secrets = credential.kind === "apiKey" ? [credential.apiKey] : [credential.clientSecret];
  let bearer: string;
  if (credential.kind === "oauth") {
    const answer = await call(
      `${base}/api/v2/oauth/token`,
      {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body: new URLSearchParams({
          grant_type: "client_credentials",
          client_id: credential.clientId,
          client_secret: credential.clientSecret,
        }).toString(),
      },
      secrets,
    );
    const token = (answer.body as { access_token?: unknown } | undefined)?.access_token;
    if (answer.status !== 200 || typeof token !== "string") {
      return [
        fail(
          `${named(credential)} was refused (${describe(answer, base, secrets)})`,
          "check the client ID and secret under Settings → OAuth clients (Trust credentials) in the Tailscale admin console",
        ),
      ];
    }
    bearer = token;
    secrets.push(token);
  } else {
    bearer = credential.apiKey;
  }

  const tailnet = target.tailnet === "-" ? "the credential's tailnet" : `tailnet ${target.tailnet}`;
  const answer = await call(
    `${base}/api/v2/tailnet/${encodeURIComponent(target.tailnet)}/acl`,
    { headers: { Authorization: `Bearer ${bearer}`, Accept: "application/json" } },
    secrets,
  );
  if (answer.status === 200) return [ok(`the Tailscale policy file of ${tailnet} is readable with ${named(credential)}`)];
  const what = `the Tailscale policy file of ${tailnet} is not readable with ${named(credential)} (${describe(answer, base, secrets)})`;
  switch (answer.status) {
    case 0:
      return [fail(what, "check the network; the address comes from --tailscale-api, TAILSCALE_BASE_URL or tailscale:baseUrl")];
    case 401:
      return [
        fail(
          what,
          credential.kind === "apiKey"
            ? "the API key is wrong or expired (keys last at most 90 days): create a new one, or use an OAuth client"
            : "the OAuth client's token was refused: check the client in the admin console",
        ),
      ];
    case 403:
      return [
        fail(
          what,
          credential.kind === "apiKey"
            ? "the key's user may not manage the policy file: use a key of an Owner, Admin or Network admin"
            : "give the OAuth client the policy_file scope",
        ),
      ];
    case 404:
      return [fail(what, "check TAILSCALE_TAILNET / tailscale:tailnet, or leave both unset to use the credential's own tailnet")];
    default:
      return [fail(what, "try again later; Tailscale's status page may say more")];
  }
}
