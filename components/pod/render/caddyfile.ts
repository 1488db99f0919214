/**
 * The Caddyfile of one pod's Caddy sidecar. One function per concern, assembled in
 * `renderCaddyfile`; the block tree and its quoting live in components/render/caddyfile.ts.
 *
 * Request path inside the site's `route` (order is the order written):
 *   1. strip client-supplied identity headers (always, auth or not);
 *   2. for services behind Authentik: log the user, proxy the outpost paths, let the
 *      public paths through, then forward_auth;
 *   3. reverse_proxy to the app on localhost (never published outside the pod).
 */
import { caddyBindAddress, envoySourceAddress, l7Upstream } from "../../../model/topology";
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
  type Directive,
} from "../../render/caddyfile";

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

/** The service that runs Authentik, when the stack has one. */
function authentikService(model: Model): Service | undefined {
  const name = model.authentik?.service;
  if (name === undefined) return undefined;
  const svc = model.services.find((s) => s.name === name);
  if (!svc) throw new Error(`internal: authentik service ${JSON.stringify(name)} is not in a validated model`);
  return svc;
}

/** Authentik's FQDN when this service sits behind it; throws rather than render an unprotected site. */
function authentikFqdnFor(model: Model, service: Service): string | undefined {
  if (!service.auth) return undefined;
  const authentik = authentikService(model);
  if (!authentik) throw new Error(`internal: service ${service.name} has auth but the model has no authentik service`);
  return authentik.fqdn;
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
  const why =
    source === "127.0.0.1"
      ? "Envoy runs on this host and reaches the pod on loopback, which pasta splices in as 127.0.0.1."
      : `Envoy runs on another host and reaches the pod over the tailnet; pasta keeps its source address, ${source}.`;
  return directive("listener_wrappers", [
    ...comment(
      "PROXY v2 headers are believed only from Envoy, as seen inside the pod (REFERENCE.md §8):",
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
    ...comment("Envoy owns :80 and redirects; Caddy listens only on 443 inside the pod."),
    directive(["auto_https", "disable_redirects"]),
    directive(["grace_period", "10s"]),
    directive("servers", [
      proxyProtocol(model, service),
      ...comment("Envoy forwards TCP only, so never advertise HTTP/3 (UDP)."),
      directive(["protocols", "h1", "h2"]),
    ]),
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

/** Structured JSON access log on stdout (journald through conmon). */
export function accessLog(): Directive {
  return directive("log", [directive(["output", "stdout"]), directive(["format", "json"])]);
}

/**
 * Client-supplied identity headers are removed before anything else runs, for every
 * service, with or without auth (LESSONS.md 1): nothing downstream may mistake a
 * client's `X-Authentik-*` or RFC 7239 `Forwarded` for the outpost's word.
 */
export function stripIdentityHeaders(): CaddyNode[] {
  return [
    ...comment("Identity headers come only from the outpost: drop every client-sent copy first."),
    directive(["request_header", "-X-Authentik-*"]),
    directive(["request_header", "-Forwarded"]),
  ];
}

/**
 * Adds the authenticated user to the access log. log_append (Caddy ≥ 2.10) evaluates
 * its placeholder after the rest of the route ran, i.e. after forward_auth copied the
 * outpost's X-Authentik-Username onto the request.
 */
export function logAuthenticatedUser(): Directive {
  return directive(["log_append", "user", placeholder("http.request.header.X-Authentik-Username")]);
}

/** The outpost's own endpoints (sign-in callback, sign-out) on this site's name. */
function outpostProxy(authentikFqdn: string): Directive {
  return directive(
    ["reverse_proxy", `${OUTPOST_PREFIX}/*`, `https://${authentikFqdn}`],
    [directive(["header_up", "Host", authentikFqdn])],
  );
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

/**
 * forward_auth to the Authentik outpost (REFERENCE.md §6). No trusted_proxies: the
 * client is on the internet, so its X-Forwarded-* are replaced, not passed on.
 */
function forwardAuth(authentikFqdn: string): Directive {
  return directive(
    ["forward_auth", `https://${authentikFqdn}`],
    [
      directive(["uri", `${OUTPOST_PREFIX}/auth/caddy`]),
      directive(["copy_headers", ...AUTHENTIK_HEADERS]),
      directive(["header_up", "Host", authentikFqdn]),
    ],
  );
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
      ...(service.l7 ? [directive(["flush_interval", "-1"])] : []),
      // Envoy's L7 listener lets in only this pod's Caddy (components/ingress/render.ts, l7Listener).
      ...(service.l7 ? [directive(["header_up", L7_CREDENTIAL_HEADER, placeholder(`env.${L7_CREDENTIAL_ENV}`)])] : []),
      // Keeps websockets open across a config reload (LESSONS.md 5).
      directive(["stream_close_delay", "5m"]),
    ],
  );
}

function siteRoute(model: Model, service: Service): Directive {
  const authentikFqdn = authentikFqdnFor(model, service);
  const bypass = publicPathsMatcher(service).length > 0;
  const auth: CaddyNode[] = authentikFqdn
    ? [
        logAuthenticatedUser(),
        outpostProxy(authentikFqdn),
        ...(bypass ? [...comment("Public paths skip auth."), appProxy(model, service, PUBLIC_MATCHER)] : []),
        forwardAuth(authentikFqdn),
      ]
    : [];
  return directive("route", [...stripIdentityHeaders(), ...auth, appProxy(model, service)]);
}

function siteBlock(model: Model, service: Service): Directive {
  return directive(service.fqdn, [
    tlsDirective(model, service),
    accessLog(),
    ...publicPathsMatcher(service),
    siteRoute(model, service),
  ]);
}

/**
 * The Caddyfile of `service`'s pod. Caddy listens on 443 inside the pod; the pod
 * publishes it on `caddyBindAddress:caddyPort` only.
 */
export function renderCaddyfile(model: Model, service: Service): string {
  return marshalCaddyfile({
    origin: `service ${service.name}`,
    nodes: [
      ...comment(
        `Served to Envoy on ${caddyBindAddress(model, service)}:${service.caddyPort}, published to port 443 of the pod.`,
      ),
      globalOptions(model, service),
      siteBlock(model, service),
    ],
  });
}
