/**
 * A stand-in for Authentik's embedded outpost, for the live tests: the parts of
 * goauthentik/authentik internal/outpost/proxyv2 that decide what a forward-auth request
 * gets, reproduced from its source.
 *
 * - Which application answers (handlers.go `lookupApp`, utils/web/host.go `GetHost`):
 *   the host is X-Forwarded-Host when set, else Host; an exact, case-sensitive match
 *   with a provider's external host (refresh.go keys providers by `url.Parse(external
 *   host).Host`) wins; else the forward_domain provider whose cookie domain ends the
 *   host (longest); else, with a single provider, that one; else 400 "no app for
 *   hostname".
 * - `/outpost.goauthentik.io/auth/caddy` (application/mode_forward.go
 *   `forwardHandleCaddy`): the forwarded URL is Go's `url.Parse(proto + "://" + host +
 *   uri)` of X-Forwarded-Proto/-Host/-Uri (application/utils.go `getTraefikForwardUrl`),
 *   500 when it does not parse; a session gets 200 with the identity headers
 *   (`addHeaders`); otherwise a path on the provider's skip_path_regex gets 200 with no
 *   identity (`IsAllowlisted`: the decoded path in forward_single mode, the whole URL in
 *   forward_domain); anything else is redirected to the authorize endpoint.
 * - Its other endpoints (`/outpost.goauthentik.io/start`, `/callback`, `/sign_out`)
 *   answer `outpost <target>`, so a test sees which requests reached Authentik.
 *
 * - Header authentication (application/auth.go `checkAuth`, tried after the session,
 *   whatever the provider's intercept_header_auth says): `Authorization: Bearer <token>`
 *   (the scheme in any case, auth_bearer.go `checkAuthHeaderBearer`) is introspected at
 *   the provider and accepted when active; failing that, HTTP Basic (Go's
 *   `Request.BasicAuth`) with the user `goauthentik.io/token` takes the password as a
 *   bearer token, any other user is a client_credentials grant with that user's app
 *   password (auth_basic.go `attemptBasicAuth`). Accepted credentials give their
 *   service account's identity; anything else falls through to the allow-list and the
 *   redirect, exactly like a request without a session (the Caddy endpoint never answers
 *   401 itself: mode_forward.go `forwardHandleCaddy` → `handleAuthStart`).
 *
 * Sessions are a cookie whose value the test chooses, tokens and app passwords are
 * strings the test chooses; no OAuth happens.
 */
import type http from "node:http";

export interface StandInProvider {
  readonly name: string;
  readonly mode: "forward_single" | "forward_domain";
  /** `https://host` as in the blueprint's external_host. */
  readonly externalHost: string;
  /** forward_domain only: the domain its cookie covers. */
  readonly cookieDomain?: string;
  /** One RE2-compatible regex per line, as Authentik splits skip_path_regex. */
  skipPathRegex: string;
  /** `name=value` that stands for a signed-in user's session cookie. */
  readonly session: string;
  /** What `addHeaders` sets for that user. */
  readonly identity: Readonly<Record<string, string>>;
  /** More signed-in users of this provider, each with its own session cookie and identity. */
  readonly otherUsers?: readonly { readonly session: string; readonly identity: Readonly<Record<string, string>> }[];
  /** Tokens introspection finds active for this provider, each with its client's identity headers. */
  readonly activeTokens?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** `user:app-password` pairs a client_credentials grant accepts, each with its identity headers. */
  readonly appPasswords?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** The user name that makes a Basic password a JWT (auth_basic.go `JWTUsername`). */
export const JWT_BASIC_USER = "goauthentik.io/token";

/** Go's `Request.BasicAuth`: the `Basic ` prefix in any case, standard base64, split at the first `:`. */
function goBasicAuth(header: string): [string, string] | undefined {
  if (header.length < 6 || header.slice(0, 6).toLowerCase() !== "basic ") return undefined;
  const encoded = header.slice(6);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return undefined;
  const decoded = Buffer.from(encoded, "base64").toString("latin1");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

/** The identity `checkAuth` finds in the Authorization header, if any. */
function headerClaims(p: StandInProvider, authorization: string): Readonly<Record<string, string>> | undefined {
  if (authorization === "") return undefined;
  const bearer = "Bearer ";
  if (authorization.length >= bearer.length && authorization.slice(0, bearer.length).toLowerCase() === bearer.toLowerCase()) {
    const claims = p.activeTokens?.[authorization.slice(bearer.length)];
    if (claims) return claims;
  }
  const basic = goBasicAuth(authorization);
  if (!basic) return undefined;
  const [user, password] = basic;
  if (user === JWT_BASIC_USER) {
    const claims = p.activeTokens?.[password];
    if (claims) return claims;
  }
  return p.appPasswords?.[`${user}:${password}`];
}

export interface OutpostCall {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The TLS server name the outpost was reached by. */
  readonly servername: string | false;
  /** The provider that judged the request, if any. */
  readonly provider?: string;
}

export const AUTHORIZE_URL = "https://auth.example.org/application/o/authorize/";
const CADDY_ENDPOINT = "/outpost.goauthentik.io/auth/caddy";
const OWN_PAGES = /^\/outpost\.goauthentik\.io\/(start|callback|sign_out)(\?|$)/;

/** Characters Go's net/url accepts unescaped in a host (url.go `shouldEscape`, encodeHost). */
const GO_HOST = /^([A-Za-z0-9\-._~!$&'()*+,;=:[\]<>"]|%[0-9A-Fa-f]{2})*$/;

/** Go's url.Parse for `scheme://host/path?query#fragment`, or undefined where it errors. */
export function goParseUrl(raw: string): { host: string; path: string; rawQuery: string } | undefined {
  if (/[\x00-\x1f\x7f]/.test(raw)) return undefined; // "invalid control character in URL"
  const noFragment = raw.split("#")[0]!;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(noFragment);
  if (!scheme) return undefined; // "missing protocol scheme"
  let rest = noFragment.slice(scheme[0].length);
  const q = rest.indexOf("?");
  const rawQuery = q >= 0 ? rest.slice(q + 1) : "";
  if (q >= 0) rest = rest.slice(0, q);
  if (!rest.startsWith("//")) return undefined;
  rest = rest.slice(2);
  const slash = rest.indexOf("/");
  const host = slash >= 0 ? rest.slice(0, slash) : rest;
  const rawPath = slash >= 0 ? rest.slice(slash) : "";
  if (!GO_HOST.test(host)) return undefined; // "invalid character in host name"
  // url.unescape(encodePath): every %XX decoded to its byte, %2F included, with no UTF-8
  // check; a % not followed by two hex digits is an error.
  if (/%(?![0-9A-Fa-f]{2})/.test(rawPath)) return undefined;
  const bytes = Buffer.from(
    rawPath.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
    "latin1",
  );
  return { host, path: bytes.toString("latin1"), rawQuery };
}

function lookupApp(providers: readonly StandInProvider[], host: string): StandInProvider | undefined {
  const exact = providers.find((p) => new URL(p.externalHost).host === host);
  if (exact) return exact;
  let longest: StandInProvider | undefined;
  for (const p of providers) {
    if (p.mode !== "forward_domain") continue;
    const cd = (p.cookieDomain ?? "").replace(/^\./, "");
    if (!host.endsWith(cd) || (longest && cd.length < (longest.cookieDomain ?? "").replace(/^\./, "").length)) continue;
    longest = p;
    if (p.externalHost === host) return p;
  }
  if (longest && (longest.cookieDomain ?? "").replace(/^\./, "").length > 0) return longest;
  return providers.length === 1 ? providers[0] : undefined;
}

function forwardHandleCaddy(p: StandInProvider, req: http.IncomingMessage, res: http.ServerResponse): void {
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? (v[0] ?? "") : (v ?? "");
  };
  const raw = `${header("x-forwarded-proto")}://${header("x-forwarded-host")}${header("x-forwarded-uri")}`;
  const fwd = goParseUrl(raw);
  if (!fwd) {
    res.writeHead(500).end("configuration error");
    return;
  }
  const cookies = (req.headers.cookie ?? "").split(/;\s*/);
  const user = [{ session: p.session, identity: p.identity }, ...(p.otherUsers ?? [])].find((u) => cookies.includes(u.session));
  const claims = user ? user.identity : headerClaims(p, header("authorization"));
  if (claims) {
    res.writeHead(200, {
      ...claims,
      "X-authentik-meta-provider": p.name,
    });
    res.end();
    return;
  }
  const allowList = p.skipPathRegex === "" ? [] : p.skipPathRegex.split("\n").map((re) => new RegExp(re));
  const tested = p.mode === "forward_single" ? fwd.path : raw.split("#")[0]!;
  if (allowList.some((re) => re.test(tested))) {
    res.writeHead(200).end();
    return;
  }
  const callback = `${p.externalHost}/outpost.goauthentik.io/callback?X-authentik-auth-callback=true`;
  const location = `${AUTHORIZE_URL}?client_id=${encodeURIComponent(p.name)}&redirect_uri=${encodeURIComponent(callback)}`;
  res.writeHead(302, { Location: location }).end();
}

/**
 * The request handler of the stand-in outpost, recording every call in `calls`. The
 * providers are read on every request, so a test may change one's skip_path_regex.
 */
export function standInOutpost(providers: readonly StandInProvider[], calls: OutpostCall[]) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? "";
    const forwardedHost = req.headers["x-forwarded-host"];
    const host = typeof forwardedHost === "string" && forwardedHost !== "" ? forwardedHost : (req.headers.host ?? "");
    const app = lookupApp(providers, host);
    const socket = req.socket as typeof req.socket & { servername?: string | false };
    calls.push({ url, headers: req.headers, servername: socket.servername ?? false, ...(app ? { provider: app.name } : {}) });
    if (!app) {
      res
        .writeHead(400, { "content-type": "application/json" })
        .end(JSON.stringify({ Message: "no app for hostname", Host: host }));
    } else if (url.split("?")[0] === CADDY_ENDPOINT) {
      forwardHandleCaddy(app, req, res);
    } else if (OWN_PAGES.test(url)) {
      res.writeHead(200, { "content-type": "text/plain" }).end(`outpost ${url}`);
    } else {
      res.writeHead(404).end("404 page not found");
    }
  };
}
