/**
 * The Caddyfile of one pod's Caddy sidecar. One function per concern, assembled in
 * `renderCaddyfile`; the block tree and its quoting live in components/render/caddyfile.ts.
 *
 * Request path inside the site's `route` (order is the order written):
 *   1. strip what only a proxy may claim (always, auth or not): hop-by-hop names in
 *      Connection, identity, client-address and URL headers and, on every site but
 *      Authentik's own, the client's X-Forwarded-*;
 *   2. for services behind Authentik: the audit fields of the access log, proxy the
 *      outpost paths, let the public paths through (rate-limited per client address with
 *      `auth.rateLimit`), forward_auth (API clients' credentials judged there, refused
 *      with 401), refuse whatever the outpost let through without naming a user, refuse
 *      what a per-path rule does not admit, count the user's rate limit, drop an API
 *      client's checked credential; each step that may end the request first names its
 *      audit decision (`setDecision`);
 *   3. reverse_proxy to the app on localhost (never published outside the pod).
 */
import {
  caddyBindAddress,
  colocatedWithIngress,
  envoySourceAddress,
  l7Upstream,
  metricsBindAddress,
} from "../../../model/topology";
import { L7_CREDENTIAL_HEADER } from "../../ingress/render";
import { L7_CREDENTIAL_ENV } from "./names";
import type { Model, Service } from "../../../model/types";
import {
  comment,
  directive,
  globalBlock,
  marshalCaddyfile,
  placeholder,
  adaptTimeEnv,
  type CaddyNode,
  type CaddyToken,
  type Directive,
} from "../../render/caddyfile";
import { CADDY_CONTAINER_PORT } from "./names";

/**
 * Headers the Authentik outpost returns and forward_auth copies onto the request
 * (authentik docs, `_caddy_standalone.mdx`; the capitalization matters).
 */
export const AUTHENTIK_HEADERS = [
  "X-Authentik-Username",
  "X-Authentik-Groups",
  "X-Authentik-Entitlements",
  "X-Authentik-Email",
  "X-Authentik-Name",
  "X-Authentik-Uid",
  "X-Authentik-Jwt",
  "X-Authentik-Meta-Jwks",
  "X-Authentik-Meta-Outpost",
  "X-Authentik-Meta-Provider",
  "X-Authentik-Meta-App",
  "X-Authentik-Meta-Version",
] as const;

const OUTPOST_PREFIX = "/outpost.goauthentik.io";
const PUBLIC_MATCHER = "@public";
const ANONYMOUS_MATCHER = "@anonymous";

/** What the caller may change about how the file is rendered; production passes nothing. */
export interface CaddyfileOptions {
  /**
   * The `host[:port]` Caddy dials for Authentik's outpost. Default: the Authentik FQDN
   * on 443, which the pod's added host resolves to Envoy on the ingress host. The live
   * tests point it at a stand-in outpost on loopback; the TLS server name, the
   * certificate check and the Host header stay the Authentik FQDN either way.
   */
  readonly authentikDial?: string;
}

/** Where and as whom this pod's Caddy reaches Authentik. */
interface AuthentikTarget {
  /** The name in SNI (Envoy routes on it), in the certificate check and in Host. */
  readonly fqdn: string;
  /** The address dialled: the FQDN itself unless a test points it elsewhere. */
  readonly dial: string;
  /**
   * Whether Authentik's certificate can be verified. Not with `tls.issuer: internal`:
   * every pod's Caddy then has its own local CA, which no other pod knows, and forward
   * auth would fail with "x509: certificate signed by unknown authority". Those stacks
   * (offline, test) skip the check on this one hop, which goes only to Envoy on the
   * ingress's tailnet address (the pod's added host). Publicly trusted certificates are
   * always verified.
   */
  readonly verify: boolean;
}

/** The service that runs Authentik, when the stack has one. */
function authentikService(model: Model): Service | undefined {
  const name = model.authentik?.service;
  if (name === undefined) return undefined;
  const svc = model.services.find((s) => s.name === name);
  if (!svc) throw new Error(`internal: authentik service ${JSON.stringify(name)} is not in a validated model`);
  return svc;
}

/** How to reach Authentik when this service sits behind it; throws rather than render an unprotected site. */
function authentikTargetFor(model: Model, service: Service, options: CaddyfileOptions): AuthentikTarget | undefined {
  if (!service.auth) return undefined;
  const authentik = authentikService(model);
  if (!authentik) throw new Error(`internal: service ${service.name} has auth but the model has no authentik service`);
  return { fqdn: authentik.fqdn, dial: options.authentikDial ?? authentik.fqdn, verify: model.tls.issuer !== "internal" };
}

/**
 * PROXY protocol is believed only from Envoy's address as seen inside this pod. Caddy
 * trusts the header from `allow` sources (policy USE) and applies `fallback_policy` to
 * every other source; REJECT refuses a connection from anyone else that sends a header,
 * so a forged client address is never taken (caddy modules/caddyhttp/proxyprotocol:
 * listenerwrapper.go, policy.go; `fallback_policy` is in Caddy 2.11).
 */
function proxyProtocol(model: Model, service: Service): Directive {
  const source = envoySourceAddress(model, service);
  const why = colocatedWithIngress(model, service)
    ? `Envoy runs on this host and connects to its tailnet address; pasta keeps that source address, ${source}.`
    : `Envoy runs on another host and reaches the pod over the tailnet; pasta keeps its source address, ${source}.`;
  return directive("listener_wrappers", [
    ...comment(
      "PROXY v2 headers are believed only from Envoy, as seen inside the pod:",
      why,
      "A header from any other source is refused (fallback_policy reject), never believed.",
    ),
    directive("proxy_protocol", [
      directive(["timeout", "5s"]),
      directive(["allow", `${source}/32`]),
      directive(["fallback_policy", "reject"]),
    ]),
    directive("tls"),
  ]);
}

/** The Caddy admin socket, in the Caddy container's own /run. */
export const CADDY_ADMIN_SOCKET = "/run/caddy-admin.sock";

function globalOptions(model: Model, service: Service): Directive {
  return globalBlock([
    ...comment(
      "Admin API on a unix socket inside this container only, for `caddy reload`. Never on",
      "TCP: the app shares the pod's network namespace and could rewrite the config (drop",
      "the auth, read the token) through it; it does not share this container's /run.",
    ),
    directive(["admin", `unix/${CADDY_ADMIN_SOCKET}`]),
    ...comment("Never write the loaded config (which holds the DNS token) to autosave.json."),
    directive(["persist_config", "off"]),
    ...(model.tls.email ? [directive(["email", model.tls.email])] : []),
    ...comment("Envoy owns :80 and redirects; Caddy serves its site only on 443 inside the pod."),
    directive(["auto_https", "disable_redirects"]),
    directive(["grace_period", "10s"]),
    ...comment("Prometheus metrics of every request, per host name, served by the metrics site below."),
    directive("metrics", [directive("per_host")]),
    ...comment("Only the :443 server takes PROXY headers and TLS; the metrics server is plain HTTP."),
    directive(
      ["servers", `:${CADDY_CONTAINER_PORT}`],
      [
        proxyProtocol(model, service),
        ...comment("Envoy forwards TCP only, so never advertise HTTP/3 (UDP)."),
        directive(["protocols", "h1", "h2"]),
      ],
    ),
  ]);
}

/** Certificate for the site: ACME DNS-01 through Cloudflare, or Caddy's local CA. */
export function tlsDirective(model: Model, service: Service): Directive {
  const issuer = model.tls.issuer;
  switch (issuer) {
    case "cloudflare-dns":
      // {$CF_API_TOKEN} is substituted by the process that adapts this file inside the
      // container: at start from the podman secret, on reload from the reload command's
      // stdin, so a rotated token reaches a running Caddy without a restart. The token
      // never appears in this file.
      return directive("tls", [
        directive(["dns", "cloudflare", adaptTimeEnv("CF_API_TOKEN")]),
        ...(model.cloudflare.challengeZone
          ? [
              ...comment("_acme-challenge.<name> is a CNAME into the challenge zone, the only zone the token can edit."),
              directive(["dns_challenge_override_domain", `${service.fqdn}.${model.cloudflare.challengeZone.name}`]),
            ]
          : []),
      ]);
    case "internal":
      return directive(["tls", "internal"]);
    default: {
      const _exhaustive: never = issuer;
      throw new Error(`unknown TLS issuer ${String(_exhaustive)}`);
    }
  }
}

/**
 * Query parameters whose value the access log never shows: any name (before `=`, in the
 * query or in a `;` path parameter, any letter case) containing one of these, or a `%`
 * (an encoded name cannot be judged). Matched on the raw text, not decoded, so
 * `?Access_Token=`, `?API-KEY=` and `;jsessionid=` are all caught.
 */
export const SECRET_PARAMETER_STEMS = [
  "token",
  "key",
  "pass",
  "pwd",
  "secret",
  "sig",
  "code",
  "auth",
  "sess",
  "jwt",
  "credential",
  "otp",
  "ticket",
  "%",
] as const;

/**
 * Request headers that carry a credential, logged as REDACTED the way Caddy already logs
 * Cookie, Authorization and Proxy-Authorization (modules/caddyhttp/marshalers.go,
 * `LoggableHTTPHeader`). The access log keys headers by Go's canonical spelling, so
 * `x-gitea-token` from a client is logged, and redacted, as X-Gitea-Token.
 */
export const SECRET_HEADERS = [
  "Api-Key",
  "Apikey",
  "Authentication",
  "Deploy-Token",
  "Job-Token",
  "Private-Token",
  "Stripe-Signature",
  "X-Access-Token",
  "X-Amz-Security-Token",
  "X-Api-Key",
  "X-Apikey",
  "X-Auth-Token",
  "X-Authorization",
  "X-Csrf-Token",
  "X-Emby-Authorization",
  "X-Emby-Token",
  "X-Forgejo-Signature",
  "X-Gitea-Signature",
  "X-Gitea-Token",
  "X-Gitlab-Token",
  "X-Gogs-Signature",
  "X-Goog-Api-Key",
  "X-Hub-Signature",
  "X-Hub-Signature-256",
  "X-Mediabrowser-Token",
  "X-N8n-Api-Key",
  "X-Plex-Token",
  "X-Registry-Auth",
  "X-Session-Token",
  "X-Slack-Signature",
  "X-Token",
  "X-Vault-Token",
  "X-Webhook-Secret",
  "X-Webhook-Token",
  "X-Xsrf-Token",
] as const;

/**
 * A Go regexp (RE2) matching `name=value` for a secret parameter, with the name
 * captured so the replacement `$1=REDACTED` keeps it. The value ends at `&`, `;`, `#` or
 * `?` (a `;jsessionid=…` path parameter ends where the query starts). Without braces or
 * backslashes, so the Caddyfile needs no escaping; `=` ends Go's `$1` expansion.
 */
export function secretParameterRegexp(): string {
  const stems = SECRET_PARAMETER_STEMS.join("|");
  return `(?i)([?&;][^=&;#?]*(${stems})[^=&;#?]*)=[^&;#?]*`;
}

/**
 * Structured JSON access log on stdout (journald through conmon), with credentials
 * redacted: Caddy's `filter` encoder (modules/logging/filterencoder.go) rewrites the
 * request target, the Referer and a redirect's Location, and each value of a credential
 * header becomes REDACTED, with `regexp` filters (modules/logging/filters.go: `regexp`
 * rewrites every value of a header and keeps the list, where `replace` would turn the
 * list into one string).
 */
export function accessLog(): Directive {
  const query = (field: string) => directive([field, "regexp", secretParameterRegexp(), "$1=REDACTED"]);
  return directive("log", [
    directive(["output", "stdout"]),
    directive(
      ["format", "filter"],
      [
        directive(["wrap", "json"]),
        directive("fields", [
          query("request>uri"),
          query("request>headers>Referer"),
          query("resp_headers>Location"),
          ...SECRET_HEADERS.map((h) => directive([`request>headers>${h}`, "regexp", "^.*$", "REDACTED"])),
        ]),
      ],
    ),
  ]);
}

/**
 * Request headers an app may take as its proxy's word about who the user is, where
 * they connect from, or which URL they asked for. None of them may come from the
 * client: every copy is deleted before anything else runs, on every site. Caddy deletes
 * a wildcard case-insensitively, every value of a repeated header
 * (modules/caddyhttp/headers/headers.go, `ApplyTo`). Identity: Authentik's headers in
 * any spelling (`*authentik*`) and the auth-proxy headers of other apps (Remote-User,
 * Grafana's X-WEBAUTH-USER, oauth2-proxy's X-Auth-Request-*, Tailscale, Cloudflare
 * Access, IAP, ALB, Azure). Client address: the de-facto X-Real-IP family and RFC 7239
 * Forwarded. URL: IIS/Symfony X-Original-URL/X-Rewrite-URL, nginx X-Original-URI,
 * WSGI X-Script-Name. Names with `_` or `.`: CGI, WSGI and PHP read X_Real_IP and
 * X.Real.IP as X-Real-IP (GHSA-f59h-q822-g45g, GHSA-49wc-4hcv-v58q); Caddy 2.11.7
 * drops them itself, these lines keep that true on an older image.
 */
export const CLIENT_CLAIM_HEADERS = [
  "*authentik*",
  "Remote-*",
  "X-Remote-*",
  "X-Webauth-*",
  "X-Auth-Request-*",
  "X-Authenticated-*",
  "X-User",
  "X-User-*",
  "X-Username",
  "X-Email",
  "X-Proxy-User",
  "Tailscale-User-*",
  "Cf-Access-*",
  "X-Goog-Authenticated-User-*",
  "X-Amzn-Oidc-*",
  "X-Ms-Client-Principal*",
  "X-Pomerium-*",
  "X-Vouch-*",
  "Forwarded",
  "X-Real-Ip",
  "X-Client-Ip",
  "Client-Ip",
  "True-Client-Ip",
  "Cf-Connecting-Ip*",
  "X-Cluster-Client-Ip",
  "Fastly-Client-Ip",
  "X-Original-Forwarded-For",
  "X-Originating-Ip",
  "X-Proxyuser-Ip",
  "X-Envoy-*",
  "X-Host",
  "X-Original-Host",
  "X-Original-Url",
  "X-Original-Uri",
  "X-Rewrite-Url",
  "X-Script-Name",
  "X-Scheme",
  "X-Url-Scheme",
  "Front-End-Https",
  "*_*",
  "*.*",
] as const;

/**
 * The one hop-by-hop name a client may keep in `Connection` is `Upgrade` (websockets).
 * Caddy's reverse_proxy deletes every header the client's Connection names
 * (modules/caddyhttp/reverseproxy/reverseproxy.go, `removeConnectionHeaders`) after
 * forward_auth copied the outpost's answer onto the request, so `Connection:
 * X-Authentik-Username` would drop the real identity on its way to the app. The value
 * is rewritten to `Upgrade` when it names it, to nothing otherwise; without braces or
 * backslashes, so the Caddyfile needs no escaping.
 */
export const CONNECTION_UPGRADE_ONLY = ["(?i)^(?:(?:.*[ ,])?(upgrade)(?:[ ,].*)?|.*)$", "$1"] as const;

/**
 * Client claims are removed before anything else runs, for every service, with or
 * without auth. On every site but Authentik's own, the client's
 * X-Forwarded-* go too: Caddy writes X-Forwarded-For/-Proto/-Host itself (no
 * trusted_proxies, so it ignores the client's), forward_auth writes
 * X-Forwarded-Method/-Uri, and the rest of that family (-Prefix, -User, -Email, -Port…)
 * is a claim nobody here vouches for. Authentik's site keeps the X-Forwarded-* its
 * callers' forward_auth wrote; its trusted_proxies decides whom to believe.
 */
export function stripClientClaims(keepForwarded: boolean): CaddyNode[] {
  return [
    ...comment("Hop-by-hop: the client's Connection header may name Upgrade, nothing else."),
    directive(["request_header", "Connection", ...CONNECTION_UPGRADE_ONLY]),
    ...comment(
      "Identity, client-address and URL headers come only from this Caddy and the outpost:",
      "drop every client-sent copy first, in any letter case, and any name with _ or .",
    ),
    ...CLIENT_CLAIM_HEADERS.map((h) => directive(["request_header", `-${h}`])),
    ...(keepForwarded ? [] : [directive(["request_header", "-X-Forwarded-*"])]),
  ];
}

/**
 * What happened to a request to a protected service, one word in its access log line
 * (`decision`). Each step of the route that may end a request is preceded by
 * `setDecision` naming what stands if it does; a later step overrides it when the request
 * gets that far. A step added to the route (a rate limit) does the same: `vars
 * edgeplane_decision rate-limited` right before it, and the request it lets through is
 * marked `allowed` further down.
 */
export const AUDIT_DECISIONS = [
  "outpost",
  "public-path",
  "unauthenticated",
  "refused-anonymous",
  "denied-by-rule",
  "rate-limited",
  "allowed",
] as const;
export type AuditDecision = (typeof AUDIT_DECISIONS)[number];

const DECISION_VAR = "edgeplane_decision";
const RULE_VAR = "edgeplane_rule";

/** Marks the decision that stands if the next step ends the request (for requests `matcher` selects). */
export function setDecision(decision: AuditDecision, matcher?: string, rule?: string): Directive {
  const target = matcher ? [matcher] : [];
  if (rule === undefined) return directive(["vars", ...target, DECISION_VAR, decision]);
  return directive(["vars", ...target], [directive([DECISION_VAR, decision]), directive([RULE_VAR, rule])]);
}

/**
 * The audit fields of the access log line (Caddy's `log_append`, ≥ 2.10): the user the
 * outpost named (or the API client's service account), the groups it returned, the
 * decision and the rule that denied. log_append evaluates its placeholder after the rest
 * of the route ran, so the values are those the request ended with; the client's own
 * copies of these headers were deleted first. The client address is the access log's
 * own `request.client_ip`: the address in Envoy's PROXY header.
 */
export function auditFields(): Directive[] {
  return [
    directive(["log_append", "user", placeholder("http.request.header.X-Authentik-Username")]),
    directive(["log_append", "groups", placeholder("http.request.header.X-Authentik-Groups")]),
    directive(["log_append", "decision", placeholder(`http.vars.${DECISION_VAR}`)]),
    directive(["log_append", "rule", placeholder(`http.vars.${RULE_VAR}`)]),
  ];
}

/**
 * X-Forwarded-Host is this service's own name, never the client's spelling of it. Caddy
 * would send the Host as the client wrote it (`GRAFANA.example.org`, or with `:443`);
 * Authentik's outpost picks the application by an exact, case-sensitive match of
 * X-Forwarded-Host with each provider's external host and otherwise falls back to the
 * forward_domain providers whose cookie domain ends the name
 * (internal/outpost/proxyv2/handlers.go `lookupApp`, internal/utils/web/host.go
 * `GetHost`), i.e. another provider, with other rules, would judge the request. header_up
 * runs after Caddy wrote its X-Forwarded-* (reverseproxy.go), so this value wins.
 */
function forwardedHost(service: Service): Directive {
  return directive(["header_up", "X-Forwarded-Host", service.fqdn]);
}

/**
 * The upstream settings shared by both ways to the outpost: SNI and Host are the
 * Authentik FQDN (Envoy picks the Authentik pod by SNI, and its Caddy serves only that
 * name), the certificate is checked for it, whatever address is dialled, and the
 * outpost is told which application asks.
 */
function toAuthentik(service: Service, target: AuthentikTarget): Directive[] {
  return [
    directive(["header_up", "Host", target.fqdn]),
    forwardedHost(service),
    directive(
      ["transport", "http"],
      [
        directive(["tls_server_name", target.fqdn]),
        ...(target.verify
          ? []
          : [
              ...comment("tls.issuer internal: Authentik's certificate comes from its own pod's local CA, unknown here."),
              directive("tls_insecure_skip_verify"),
            ]),
      ],
    ),
  ];
}

/**
 * The outpost's own endpoints (sign-in callback, sign-out) on this site's name, straight
 * to Authentik, by Caddy's `path` rules (case-insensitive, %XX decoded, dot segments and
 * // resolved). Whatever this sends to Authentik never reaches the app; whatever it
 * does not (`/outpost.goauthentik.io/../admin` is /admin to Caddy) goes through
 * forward_auth like any other path.
 */
function outpostProxy(service: Service, target: AuthentikTarget): Directive {
  return directive(["reverse_proxy", `${OUTPOST_PREFIX}/*`, `https://${target.dial}`], toAuthentik(service, target));
}

/** Paths that bypass auth (health checks, webhooks): a named matcher on the site. */
function publicPathsMatcher(service: Service): CaddyNode[] {
  if (!service.auth || service.publicPaths.length === 0) return [];
  return [
    ...comment(
      "Public paths are matched on the request target exactly as the client sent it, case-sensitively:",
      "Caddy's `path` matcher ignores case, decodes %XX and merges //, so /API/health or /api/%68ealth",
      "would match /api/health and reach the app unauthenticated. Any %, // or dot segment goes through auth.",
    ),
    directive([PUBLIC_MATCHER, "expression", publicPathsExpression(service.publicPaths)]),
  ];
}

/**
 * A CEL expression true only for a request target that is one of the public paths (a
 * trailing `*` = that prefix, then only unreserved characters and `/`), with an
 * optional query. Written without backslashes or braces (`[.]`, `[?]`,
 * `ph(req, ...)`, Caddy's own spelling of a placeholder in CEL), so it needs no Caddyfile escaping.
 */
export function publicPathsExpression(publicPaths: readonly string[]): string {
  const uri = "ph(req, 'http.request.uri')";
  const literal = (text: string) => text.replace(/[.+()|^$]/g, (c) => `[${c}]`);
  const alternatives = publicPaths.map((p) => (p.endsWith("*") ? `${literal(p.slice(0, -1))}[A-Za-z0-9._~/-]*` : literal(p)));
  return `${uri}.matches('^(${alternatives.join("|")})([?][^#]*)?$') && ` + `!${uri}.matches('^[^?]*(//|/[.][.]?(/|[?]|$)|%)')`;
}

/** Characters a request target may hold and still be read one way only by every app. */
const PLAIN_SEGMENT = "[A-Za-z0-9._~!$&()*+,=:@-]";

/** The rule's path as a regex on the lowercased target path (`/p/*` covers `/p` too; `/p` covers `/p/`). */
function rulePathRegex(path: string): string {
  const literal = (text: string) => text.toLowerCase().replace(/[.+()|^$*]/g, (c) => `[${c}]`);
  if (!path.endsWith("*")) return `${literal(path.replace(/\/$/, ""))}/?`;
  const prefix = path.slice(0, -1);
  return prefix.endsWith("/") ? `${literal(prefix.slice(0, -1))}(/[^?]*)?` : `${literal(prefix)}[^?]*`;
}

/**
 * A CEL expression true when `path` (a rule's `/exact` or `/prefix*`) covers the request.
 * Written without backslashes or braces, so it needs no Caddyfile escaping.
 *
 * A plain target (only unreserved and sub-delim characters, no `%`, `\`, `;`, `//` or
 * `.`/`..` segment) reads the same to every app: it is covered when its path, in lower
 * case, matches the rule, so `/ADMIN/x` is under `/admin/*`.
 *
 * Any other target could mean another path to the app than it looks (`/x/../admin`,
 * `/%61dmin`, `/admin;x/`, `/x\admin`): it is held to the rule when its once-decoded
 * path, in lower case, contains the rule's last literal segment anywhere, and to every
 * rule when that decoded path still holds a `%` (double encoding), a control character,
 * or the raw target an overlong UTF-8 lead (`%c0`, `%c1`, `%e0%8x`, `%e0%9x`, `%f0%8x`).
 * Erring this way costs a user outside the rule's groups a 403 on an odd spelling;
 * the other way would let one through.
 */
export function ruleCoversExpression(path: string): string {
  const uri = "ph(req, 'http.request.uri')";
  const decoded = "ph(req, 'http.request.uri.path').lowerAscii()";
  const lastSegment =
    path
      .replace(/\*$/, "")
      .split("/")
      .filter((s) => s !== "")
      .pop() ?? "";
  const plain = `${uri}.matches('^(/${PLAIN_SEGMENT}*)*([?].*)?$') && !${uri}.matches('^[^?]*(//|/[.][.]?(/|[?]|$))')`;
  const plainCovered = `${uri}.lowerAscii().matches('^${rulePathRegex(path)}([?].*)?$')`;
  const unreadable = `${decoded}.contains('%') || ${decoded}.matches('[[:cntrl:]]') || ${uri}.lowerAscii().matches('%(c0|c1|e0%[89]|f0%8)')`;
  return `((${plain}) && ${plainCovered}) || (!(${plain}) && (${decoded}.contains('${lastSegment.toLowerCase()}') || ${unreadable}))`;
}

/** A CEL expression true when the outpost's X-Authentik-Groups (`|`-joined) names one of `groups`. */
export function memberOfExpression(groups: readonly string[]): string {
  const list = groups.map((g) => `'${g}'`).join(", ");
  return `ph(req, 'http.request.header.X-Authentik-Groups').split('|').exists(g, g in [${list}])`;
}

const ruleMatcher = (index: number) => `@rule_${index}`;

/** One named matcher per rule: the request is covered by the rule and the user is in none of its groups. */
function ruleMatchers(service: Service): Directive[] {
  return (service.auth?.rules ?? []).map((rule, i) =>
    directive([ruleMatcher(i), "expression", `(${ruleCoversExpression(rule.path)}) && !(${memberOfExpression(rule.groups)})`]),
  );
}

/**
 * `auth.rules`, after forward_auth named the user: each rule refuses (403) a request it
 * covers whose user is in none of its groups. A request no rule covers is left to the
 * service's groups, which Authentik's policy already checked.
 */
function ruleSteps(service: Service): CaddyNode[] {
  const rules = service.auth?.rules ?? [];
  if (rules.length === 0) return [];
  return [
    ...comment("Per-path rules: a covered request needs one of the rule's groups, or it is refused."),
    ...rules.flatMap((rule, i) => [
      setDecision("denied-by-rule", ruleMatcher(i), rule.path),
      directive(["respond", ruleMatcher(i), "403"]),
    ]),
  ];
}

/**
 * forward_auth to the Authentik outpost, as Authentik documents it for Caddy
 * (website/docs/add-secure-apps/providers/proxy/_caddy_standalone.mdx). No
 * trusted_proxies: the client is on the internet, so the outpost gets
 * X-Forwarded-Host/-Proto/-For from this Caddy (the site's own name, https, the address
 * from Envoy's PROXY header) and X-Forwarded-Method/-Uri from forward_auth. The outpost
 * judges the request and builds the post-login redirect from them
 * (internal/outpost/proxyv2/application/mode_forward.go): a client-chosen value would
 * be the client's word.
 */
function forwardAuth(service: Service, target: AuthentikTarget, matcher?: string, extra: readonly CaddyNode[] = []): Directive {
  return directive(
    ["forward_auth", ...(matcher ? [matcher] : []), `https://${target.dial}`],
    [
      directive(["uri", `${OUTPOST_PREFIX}/auth/caddy`]),
      directive(["copy_headers", ...AUTHENTIK_HEADERS]),
      ...toAuthentik(service, target),
      ...extra,
    ],
  );
}

const CREDENTIAL_MATCHER = "@credential";
const NO_CREDENTIAL_MATCHER = "@no_credential";

/** Requests that carry an `Authorization` header (any scheme), and those that do not. */
function credentialMatchers(service: Service): Directive[] {
  if (!service.auth?.apiClients) return [];
  return [
    directive([CREDENTIAL_MATCHER, "header", "Authorization", "*"]),
    directive([NO_CREDENTIAL_MATCHER, "header", "!Authorization"]),
  ];
}

/**
 * The forward_auth step. Authentik's outpost tries the `Authorization` header on every
 * request it judges, whatever the provider's intercept_header_auth says: a bearer token
 * by introspection at the provider, HTTP Basic as a client_credentials grant with an app
 * password, or as `goauthentik.io/token` + a JWT (internal/outpost/proxyv2/application/
 * auth.go `checkAuth`, auth_bearer.go, auth_basic.go). Without `apiClients` the header
 * is the app's own business: it is not sent to the outpost (`header_up -Authorization`),
 * so only a browser session gets in. With `apiClients` it is sent, and a request that
 * carried it and is not accepted gets 401 with a Bearer challenge instead of the
 * outpost's redirect to the login page (its Caddy endpoint redirects whatever the
 * provider's setting, mode_forward.go `forwardHandleCaddy` → `handleAuthStart`); an API
 * client cannot follow a login page (RFC 6750 §3: `error="invalid_token"`).
 */
function forwardAuthSteps(service: Service, target: AuthentikTarget): Directive[] {
  if (!service.auth?.apiClients) return [forwardAuth(service, target, undefined, [directive(["header_up", "-Authorization"])])];
  const challenge = `Bearer realm="${service.fqdn}", error="invalid_token"`;
  return [
    forwardAuth(service, target, CREDENTIAL_MATCHER, [
      directive(["@login", "status", "3xx"]),
      directive(
        ["handle_response", "@login"],
        [directive(["header", "WWW-Authenticate", challenge]), directive(["respond", "401"])],
      ),
    ]),
    forwardAuth(service, target, NO_CREDENTIAL_MATCHER),
  ];
}

/**
 * The client's Authorization, once the outpost accepted it, stays at the edge: the
 * outpost deletes it only from its own copy of the request (auth.go
 * `saveAndCacheClaims`), so Caddy deletes it before the app. `passAuthorization` keeps it.
 */
function dropAcceptedCredential(service: Service): CaddyNode[] {
  if (!service.auth?.apiClients || service.auth.passAuthorization) return [];
  return [
    ...comment("The credential was checked at the edge; the app gets the identity headers, never the credential."),
    directive(["request_header", "-Authorization"]),
  ];
}

/**
 * A request that got past forward_auth without a user. Which paths are public is
 * decided once, here in Caddy (`@public`, above forward_auth); the provider's own
 * allow-list (skip_path_regex) is always empty (components/authentik/render.ts). Should
 * the outpost still answer 200 without naming a user (a skip_path_regex set by hand in
 * Authentik, a domain-level provider judging the request), the request is refused: the
 * app only ever sees a public path or a user. The user is X-Authentik-Username, which
 * the outpost sets for every session (internal/outpost/proxyv2/application/claims.go);
 * forward_auth deletes the header before copying the outpost's, so it exists only when
 * the outpost sent it (modules/caddyhttp/reverseproxy/forwardauth/caddyfile.go).
 */
function anonymousMatcher(): CaddyNode[] {
  return [directive([ANONYMOUS_MATCHER, "header", "!X-Authentik-Username"])];
}

/**
 * Addresses whose X-Forwarded-* the Authentik site passes to Authentik: the hosts that
 * run a service behind Authentik (forward_auth and outpost requests arrive through
 * Envoy with the calling host's tailnet address as client address). Without this,
 * Caddy would overwrite X-Forwarded-Host with auth.<domain> and the outpost would not
 * know which application is asking (goauthentik/authentik#4555). Only those hosts:
 * every pod on a host shares its address, so each host trusted is every pod on it
 * trusted; a host with no protected service has no reason to be.
 */
function authentikCallerRanges(model: Model): string[] {
  const callers = new Set(model.services.filter((s) => s.auth).map((s) => s.host));
  return [...new Set(model.hosts.filter((h) => callers.has(h.name)).map((h) => h.tailnetIP))].sort().map((ip) => `${ip}/32`);
}

/**
 * The app, on the pod's loopback; for an `l7` service, Envoy's L7 listener that
 * balances over its backends, with responses flushed as they stream. The matcher (if
 * any) limits which requests go there.
 */
function appProxy(model: Model, service: Service, matcher?: string): Directive {
  const isAuthentik = model.authentik?.service === service.name;
  const trusted = isAuthentik ? authentikCallerRanges(model) : [];
  const upstream = service.l7
    ? `${l7Upstream(model, service).address}:${l7Upstream(model, service).port}`
    : `localhost:${service.port}`;
  return directive(
    ["reverse_proxy", ...(matcher ? [matcher] : []), upstream],
    [
      ...(trusted.length > 0 ? [directive(["trusted_proxies", ...trusted])] : []),
      ...(isAuthentik ? [] : [forwardedHost(service)]),
      ...(service.l7 ? [directive(["flush_interval", "-1"])] : []),
      // Envoy's L7 listener lets in only this pod's Caddy (components/ingress/render.ts, l7Listener).
      ...(service.l7 ? [directive(["header_up", L7_CREDENTIAL_HEADER, placeholder(`env.${L7_CREDENTIAL_ENV}`)])] : []),
      // Keeps websockets open across a config reload (caddyserver/caddy#5471).
      directive(["stream_close_delay", "5m"]),
    ],
  );
}

/** The Caddy module the rate_limit directive needs (github.com/mholt/caddy-ratelimit, handler.go `CaddyModule`). */
export const RATE_LIMIT_MODULE = "http.handlers.rate_limit";

/** Caddy modules a service's Caddyfile needs beyond those of the default image; the host refuses an image without them. */
export function requiredCaddyModules(service: Service): string[] {
  return service.auth?.rateLimit ? [RATE_LIMIT_MODULE] : [];
}

/** Whom a rate-limit zone counts: the user the outpost named, or the client address PROXY v2 carried. */
type RateLimitKey = "user" | "client";

const RATE_LIMIT_KEYS: Record<RateLimitKey, CaddyToken> = {
  // Set by forward_auth's copy_headers from the outpost's answer only: the client's
  // copies were deleted first (stripClientClaims) and forward_auth deletes them again.
  user: placeholder("http.request.header.X-Authentik-Username"),
  // The address from Envoy's PROXY v2 header (proxyProtocol above), not client_ip:
  // no trusted_proxies, so nothing a client sends changes it.
  client: placeholder("http.request.remote.host"),
};

/** Milliseconds of a window such as "10s" or "1m" (the forms the schema accepts). */
function windowMilliseconds(window: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(window);
  if (!m) throw new Error(`internal: rate-limit window ${JSON.stringify(window)} is not validated`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * unit;
}

/**
 * `auth.rateLimit` as caddy-ratelimit zones (github.com/mholt/caddy-ratelimit,
 * caddyfile.go): a sliding window of `events` per `window` for each key and, with a
 * `burst`, a second, shorter window that lets at most `burst` of them come back to back
 * (window × burst / events, the time the sustained rate takes to earn them, less 1 ms). A request
 * over either is answered 429 with Retry-After, the seconds until the window admits it
 * again (handler.go `rateLimitExceeded`). Zone names are global in one Caddy process; one
 * pod's Caddy serves one service. No `distributed` block: the counts stay in this Caddy's
 * memory and start over when it restarts (a reload keeps them).
 */
export function rateLimit(service: Service, key: RateLimitKey, matcher?: string): Directive {
  const limit = service.auth?.rateLimit;
  if (!limit) throw new Error(`internal: service ${service.name} has no auth.rateLimit`);
  const zone = (name: string, events: number, window: string) =>
    directive(
      ["zone", name],
      [directive(["key", RATE_LIMIT_KEYS[key]]), directive(["events", String(events)]), directive(["window", window])],
    );
  // The handler checks zones from the most permissive (events / window) down, and a zone
  // that lets a request through has counted it even when a later zone refuses it
  // (handler.go `Provision` sorts them, `ServeHTTP`). 1 ms less than the exact share
  // makes the burst zone the more permissive one, checked first: a request it refuses
  // never uses up the window's count.
  const burstWindow =
    limit.burst !== undefined && limit.burst < limit.events
      ? Math.max(1, Math.ceil((windowMilliseconds(limit.window) * limit.burst) / limit.events) - 1)
      : undefined;
  return directive(
    ["rate_limit", ...(matcher ? [matcher] : [])],
    [
      zone(`${service.name}_${key}`, limit.events, limit.window),
      ...(burstWindow !== undefined ? [zone(`${service.name}_${key}_burst`, limit.burst!, `${burstWindow}ms`)] : []),
    ],
  );
}

/**
 * The rate limit of one kind of request, after `setDecision("rate-limited")`: a 429 is
 * an error the handler returns, so no later step runs and that decision stands.
 */
function rateLimited(service: Service, key: RateLimitKey, matcher?: string): Directive[] {
  return [setDecision("rate-limited", matcher), rateLimit(service, key, matcher)];
}

function siteRoute(model: Model, service: Service, options: CaddyfileOptions): Directive {
  const authentik = authentikTargetFor(model, service, options);
  const isAuthentik = model.authentik?.service === service.name;
  const bypass = publicPathsMatcher(service).length > 0;
  const limited = service.auth?.rateLimit !== undefined;
  const auth: CaddyNode[] = authentik
    ? [
        ...auditFields(),
        setDecision("outpost", `${OUTPOST_PREFIX}/*`),
        outpostProxy(service, authentik),
        ...(bypass
          ? [
              ...comment("Public paths skip auth."),
              ...(limited ? [...comment("Limited per client address."), ...rateLimited(service, "client", PUBLIC_MATCHER)] : []),
              setDecision("public-path", PUBLIC_MATCHER),
              appProxy(model, service, PUBLIC_MATCHER),
            ]
          : []),
        setDecision("unauthenticated"),
        ...forwardAuthSteps(service, authentik),
        ...comment("Past forward_auth without a user: refused, never the app."),
        setDecision("refused-anonymous", ANONYMOUS_MATCHER),
        directive(["respond", ANONYMOUS_MATCHER, "403"]),
        ...ruleSteps(service),
        ...(limited ? [...comment("Limited per user, now that the outpost named one."), ...rateLimited(service, "user")] : []),
        setDecision("allowed"),
        ...dropAcceptedCredential(service),
      ]
    : [];
  return directive("route", [...stripClientClaims(isAuthentik), ...auth, appProxy(model, service)]);
}

/**
 * Caddy's Prometheus metrics, on a port of their own inside the pod, published only on
 * the pod host's tailnet address (the tailnet policy lets only admins reach it). Read
 * only: the admin API stays on its unix socket.
 */
function metricsSite(service: Service): Directive {
  return directive(`http://:${service.metricsPort}`, [directive(["metrics", CADDY_METRICS_PATH])]);
}
export const CADDY_METRICS_PATH = "/metrics";

function siteBlock(model: Model, service: Service, options: CaddyfileOptions): Directive {
  return directive(service.fqdn, [
    tlsDirective(model, service),
    accessLog(),
    ...publicPathsMatcher(service),
    ...(service.auth ? anonymousMatcher() : []),
    ...credentialMatchers(service),
    ...ruleMatchers(service),
    siteRoute(model, service, options),
  ]);
}

/**
 * The Caddyfile of `service`'s pod. Caddy listens on 443 inside the pod; the pod
 * publishes it on `caddyBindAddress:caddyPort` only.
 */
export function renderCaddyfile(model: Model, service: Service, options: CaddyfileOptions = {}): string {
  return marshalCaddyfile({
    origin: `service ${service.name}`,
    nodes: [
      ...comment(
        `Served to Envoy on ${caddyBindAddress(model, service)}:${service.caddyPort}, published to port 443 of the pod.`,
      ),
      globalOptions(model, service),
      siteBlock(model, service, options),
      ...comment(`Metrics for Prometheus, published on ${metricsBindAddress(model, service)}:${service.metricsPort}.`),
      metricsSite(service),
    ],
  });
}
