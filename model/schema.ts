/**
 * The shape of the `edgeplane:*` stack config keys, and the one source of their
 * documentation: every `.describe()` text here becomes the key's description in
 * Pulumi.yaml and in docs/config-reference.md (`npm run docs:config`; a test fails when
 * those files drift from this schema). Objects are strict so a misspelt key is an error
 * rather than a silently ignored setting. Cross-field rules (unknown hosts, port
 * collisions, …) live in model/index.ts, because they need the whole config at once.
 */
import { z } from "zod";
import { DEFAULT_CADDY_IMAGE } from "./caddy-version";
import { parseHostKey } from "./hostKey";

/** Config keys that name hosts and services: they become unit, user and DNS labels. */
export const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HEX32 = /^[0-9a-f]{32}$/;
/** `name:/path[:opts]` (named volume) or `/host/path:/path[:opts]` (bind mount). */
const VOLUME = /^([A-Za-z0-9][A-Za-z0-9_.-]*|\/[^:\s]*):\/[^:\s]*(:[A-Za-z,]+)?$/;
const IMAGE = /^[a-z0-9][a-z0-9._\-/:@]*$/i;

/** Names of the value types the reference shows instead of "string" or "integer". */
const typeNames = new Map<unknown, string>();
/**
 * `.describe()` returns a copy of a schema, so a type is known by what its copies share:
 * its checks (strings, numbers), its refinement (effects) or its input (pipelines).
 */
const typeIdentity = (schema: z.ZodTypeAny): unknown => schema._def.checks ?? schema._def.effect ?? schema._def.in ?? schema;
function named<T extends z.ZodTypeAny>(typeName: string, schema: T): T {
  typeNames.set(typeIdentity(schema), typeName);
  return schema;
}
/** The reference's name for a value type (`duration`, `port`), if it has one. */
export const typeNameOf = (schema: z.ZodTypeAny): string | undefined => typeNames.get(typeIdentity(schema));

const ipv4 = named("IPv4 address", z.string().ip({ version: "v4", message: "must be an IPv4 address" }));
const ipv6 = named("IPv6 address", z.string().ip({ version: "v6", message: "must be an IPv6 address" }));
/** An address or a CIDR range, as Cloudflare's token IP conditions take them. */
const cidr = named(
  "address or CIDR range",
  z.string().refine(isAddressOrRange, "must be an IP address or CIDR range such as 203.0.113.10 or 2001:db8::/64"),
);
const port = named(
  "port",
  z
    .number({ invalid_type_error: "must be a port number" })
    .int("must be a whole number")
    .min(1, "must be between 1 and 65535")
    .max(65535, "must be between 1 and 65535"),
);
const dnsName = named(
  "DNS name",
  z
    .string()
    .transform((s) => s.toLowerCase())
    .pipe(z.string().regex(DNS_NAME, "must be a DNS name such as app.example.org")),
);
const image = named(
  "image reference",
  z.string().regex(IMAGE, "must be a container image reference such as docker.io/library/nginx:1.27"),
);
/** A protobuf JSON duration, the form Envoy reads: "30s", "0.5s". */
const duration = named(
  "duration",
  z.string().regex(/^\d+(\.\d{1,9})?s$/, 'must be a duration in seconds such as "30s" or "0.5s"'),
);
const count = (min: number, max: number) =>
  z
    .number({ invalid_type_error: "must be a number" })
    .int("must be a whole number")
    .min(min, `must be between ${min} and ${max}`)
    .max(max, `must be between ${min} and ${max}`);
const slug = named(
  "flow slug",
  z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "must be a flow slug such as default-provider-invalidation-flow"),
);
/** C0 controls (newline and NUL included) and DEL: no unit file line can hold one. */
const CONTROL = /[\u0000-\u001f\u007f]/;
const NO_CONTROL = "must not contain a newline, tab or other control character (a systemd unit line cannot hold one)";
const envValue = z
  .union([z.string(), z.number(), z.boolean()])
  .transform((v) => String(v))
  .refine((v) => !CONTROL.test(v), NO_CONTROL);
/**
 * One argument of a container's command (Quadlet `Exec=`). Quadlet copies the words
 * into the service's ExecStart=, writing a word bare unless it has whitespace, a quote
 * or a backslash; a bare lone `;` there separates two commands, which systemd refuses
 * for the Type=notify service Quadlet generates, so the unit would never start. Every
 * other character is quoted or escaped by the unit renderer (components/render/unit.ts).
 */
const commandWord = z
  .string()
  .refine((w) => !CONTROL.test(w), NO_CONTROL)
  .refine((w) => w !== ";", 'must not be a lone ";": systemd reads it as a command separator in ExecStart= and refuses the unit');
const command = z.array(commandWord).min(1, "must list at least one argument, or be omitted").optional();

function isAddressOrRange(value: string): boolean {
  const [address, bits, ...rest] = value.split("/");
  if (rest.length > 0 || !address) return false;
  const v4 = z.string().ip({ version: "v4" }).safeParse(address).success;
  const v6 = z.string().ip({ version: "v6" }).safeParse(address).success;
  if (!v4 && !v6) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n <= (v4 ? 32 : 128);
}

export const sshSchema = z
  .object({
    host: z
      .string()
      .min(1, "must not be empty")
      .describe("Address or name `pulumi up` connects to (normally the tailnet address)."),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*$/, "must be a Linux user name")
      .describe("Login user; it must be allowed to use sudo for the rootful parts (Envoy, service users, /etc/hosts)."),
    port: port.default(22).describe("SSH port."),
    hostKey: z
      .string()
      .transform((line, ctx) => {
        const parsed = parseHostKey(line);
        if (parsed.ok) return parsed.key;
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.problem });
        return z.NEVER;
      })
      .optional()
      .describe(
        "The host's SSH public key, `ssh-ed25519 AAAA…` or `ecdsa-sha2-nistp256/384/521 …` (a trailing comment is dropped; `npm run preflight` prints it): every connection accepts only a server that holds it, so secrets go only to this host. Required unless insecureSkipHostKeyCheck.",
      ),
    insecureSkipHostKeyCheck: z
      .boolean()
      .default(false)
      .describe(
        "Connect without checking the host key, for a first bootstrap only: whoever answers on the address gets every secret sent to the host. Not allowed together with hostKey.",
      ),
  })
  .strict()
  .superRefine((ssh, ctx) => {
    if (ssh.hostKey === undefined && !ssh.insecureSkipHostKeyCheck)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["hostKey"],
        message:
          "is required: the host's SSH public key (ssh-ed25519 AAAA…; `npm run preflight` prints it), so that secrets are sent only to this host; to connect unchecked for a first bootstrap, set insecureSkipHostKeyCheck: true instead",
      });
    if (ssh.hostKey !== undefined && ssh.insecureSkipHostKeyCheck)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["insecureSkipHostKeyCheck"],
        message: "contradicts hostKey: the key is pinned, so remove insecureSkipHostKeyCheck",
      });
  })
  .describe("How `pulumi up` reaches the host over SSH, with `edgeplane:sshPrivateKey`.");

export const hostSchema = z
  .object({
    ingress: z.boolean().default(false).describe("Runs Envoy. Exactly one host per stack."),
    publicIPv4: ipv4.optional().describe("Target of the public A records. Required on the ingress host."),
    publicIPv6: ipv6.optional().describe("Adds AAAA records for public services."),
    tailnetIP: ipv4.describe("The host's Tailscale address (100.64.0.0/10). Envoy reaches pods on other hosts here."),
    egressIPs: z
      .array(cidr)
      .min(1, "must list at least one address, or be omitted")
      .optional()
      .describe(
        "Addresses or CIDRs this host's outbound traffic comes from; its pods' Cloudflare tokens then work only from them.",
      ),
    ssh: sshSchema,
  })
  .strict()
  .describe("One machine; its name is [a-z0-9-], at most 63 characters.");

/** `ENV` (the service's generated secret of that name) or `ENV=NAME` (secret NAME, as env ENV). */
const SECRET_REF = /^[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z_][A-Za-z0-9_]*)?$/;

export const containerSchema = z
  .object({
    image: image.describe("The container's image."),
    command: command.describe("Arguments after the image's entrypoint (Quadlet Exec=)."),
    env: z
      .record(z.string().regex(ENV_NAME, "must be an environment variable name"), envValue)
      .default({})
      .describe("Plain environment."),
    secrets: z
      .array(z.string().regex(SECRET_REF, "must be a secret of the service (NAME), or ENV=NAME to expose it under another name"))
      .default([])
      .describe("Secrets of the service given to this container: `NAME`, or `ENV=NAME` for secret NAME as variable ENV."),
    volumes: z
      .array(z.string().regex(VOLUME, "must be name:/path or /host/path:/path, with optional :opts"))
      .default([])
      .describe("Podman volumes: `name:/path[:opts]` or `/host/path:/path[:opts]`."),
  })
  .strict()
  .describe(
    "A further container in the pod, `<service>-<name>` (a worker, a database): same network as the app (localhost), never published. Names `app` and `caddy` are taken.",
  );

/** A Caddy duration for a rate-limit window: "30s", "1m", "1h" (caddy.ParseDuration). */
const window = z.string().regex(/^[1-9][0-9]{0,5}(ms|s|m|h)$/, 'must be a duration such as "500ms", "10s", "1m" or "1h"');

/** `auth.rateLimit`: a sliding window per user (github.com/mholt/caddy-ratelimit, ringbuffer.go). */
export const rateLimitSchema = z
  .object({
    events: count(1, 1_000_000).describe("Requests allowed in any `window`."),
    window: window.describe('The sliding window the events are counted in: `"10s"`, `"1m"`, `"1h"`.'),
    burst: count(1, 1_000_000)
      .optional()
      .describe("At most this many requests in any window × burst / events (at most `events`). Default: all `events` at once."),
  })
  .strict()
  .superRefine((limit, ctx) => {
    if (limit.burst !== undefined && limit.burst > limit.events)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["burst"],
        message: `must be at most events (${limit.events}): a burst caps how many of a window's requests may come back to back`,
      });
  });

/**
 * A user or group name that goes into the access policy's Python as a string literal:
 * no quote, backslash or control character, so no name can end the literal early.
 */
const policyName = z
  .string()
  .min(1, "must not be empty")
  .refine(
    (n) => !/["'\\\u0000-\u001f\u007f]/.test(n),
    "must not contain a quote, a backslash or a control character (it is written into Authentik's policy as a Python string)",
  );

/**
 * An instant with its offset, RFC 3339: 2026-12-31T18:00:00Z or 2026-12-31T19:00:00+01:00.
 * Normalized to UTC with whole seconds; a date alone, or a time without Z or an offset,
 * is refused rather than read in some server's local time.
 */
const instant = z.string().transform((given, ctx) => {
  const text = fromGoTime(given);
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})$/.exec(text);
  const problem = "must be a date and time with a timezone, such as 2026-12-31T18:00:00Z or 2026-12-31T19:00:00+01:00";
  if (!m) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${problem} (got ${JSON.stringify(given)})` });
    return z.NEVER;
  }
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  const local = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
  const valid =
    local.getUTCFullYear() === y &&
    local.getUTCMonth() === mo! - 1 &&
    local.getUTCDate() === d &&
    local.getUTCHours() === h &&
    local.getUTCMinutes() === mi &&
    local.getUTCSeconds() === s &&
    Math.abs(Number(m[7]!.slice(1, 3))) <= 23;
  const when = Date.parse(text);
  if (!valid || Number.isNaN(when)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `is not a real date and time (${problem})` });
    return z.NEVER;
  }
  return new Date(when).toISOString().replace(/\.000Z$/, "Z");
});

/**
 * Pulumi's YAML reader (Go) parses an unquoted `until: 2027-03-31T18:00:00Z` as a date and
 * hands it to the program in Go's time format, `2027-03-31 18:00:00 +0000 UTC`; back to
 * RFC 3339 here. A whole second only (Go adds a fraction only when there is one). An
 * unquoted time without a zone reaches this as UTC: docs/security.md ("Access that expires") says to quote the value.
 */
function fromGoTime(text: string): string {
  const go = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2}) \S+$/.exec(text);
  return go ? `${go[1]}T${go[2]}${go[3]}:${go[4]}` : text;
}

/** One entry of `auth.grants`: `users` or `group`, and the instant the access ends. */
export const grantSchema = z
  .object({
    users: z
      .array(policyName)
      .min(1, "must name at least one user")
      .optional()
      .describe("Authentik usernames let in until `until`."),
    group: policyName.optional().describe("An Authentik group whose members are let in until `until`."),
    until: instant.describe(
      "The instant access ends (refused from it on): RFC 3339 with `Z` or an offset, such as `2026-12-31T18:00:00Z`.",
    ),
  })
  .strict()
  .superRefine((grant, ctx) => {
    if ((grant.users === undefined) === (grant.group === undefined))
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: "must name either users or a group (one of them, not both)" });
  });

/** `/exact` or `/prefix*`, without `//` or a `.`/`..` segment (edge matching is described in caddyfile.ts). */
const RULE_PATH = /^\/[A-Za-z0-9._~\-/]*\*?$/;
const DOT_OR_EMPTY_SEGMENT = /\/\/|\/\.\.?(\/|\*?$)/;
/**
 * A group name the pod's Caddy can look for in X-Authentik-Groups, which the outpost
 * joins with `|` (internal/outpost/proxyv2/application/claims.go): no `|`, no quote,
 * backslash or brace (the name is written into a CEL string in the Caddyfile), no
 * control character.
 */
const edgeGroup = z
  .string()
  .min(1, "must not be empty")
  .refine(
    (g) => !/[|'"\\{}\u0000-\u001f\u007f]/.test(g),
    "cannot be matched at the edge: a group name in a rule must not contain | (the outpost's separator), a quote, a backslash, a brace or a control character",
  );

/** Who may enter a service behind Authentik, and how (docs/security.md, "Forward auth"). */
export const authSchema = z
  .object({
    groups: z
      .array(z.string().min(1, "must not be empty"))
      .min(1, "must name at least one group")
      .describe(
        "Authentik groups whose members may enter (the groups must exist in Authentik, unless `authentik.createGroups`).",
      ),
    /**
     * Machine clients: `Authorization: Bearer <token>` (or HTTP Basic with an app password)
     * is validated by the outpost (the provider's `intercept_header_auth`); an invalid one
     * is answered 401 without a redirect, and the app never receives the header.
     */
    apiClients: z
      .boolean()
      .default(false)
      .describe(
        "Machine clients may send `Authorization: Bearer <token>` (or HTTP Basic with an app password), checked once by Authentik's outpost; a refused one gets 401, never a login redirect, and the app never receives the header.",
      ),
    /** With apiClients: hand the app the client's Authorization header too (weakens the edge-only check). */
    passAuthorization: z
      .boolean()
      .default(false)
      .describe(
        "Only with `apiClients`: the app also receives the checked `Authorization` header. Weakens the pattern: the app then holds a credential it could replay.",
      ),
    /**
     * Paths only some groups may reach, checked by Caddy against X-Authentik-Groups
     * after forward_auth; every rule that covers a request must admit the user.
     */
    rules: z
      .array(
        z
          .object({
            path: z
              .string()
              .regex(RULE_PATH, "must be a path such as /admin/* or /metrics")
              .refine((p) => !DOT_OR_EMPTY_SEGMENT.test(p), "must not contain // or a . or .. segment")
              .describe(
                "`/exact` (also covers `/exact/`) or `/prefix*` (`/p/*` also covers `/p`), without `//` or a `.`/`..` segment.",
              ),
            groups: z
              .array(edgeGroup)
              .min(1, "must name at least one group")
              .describe(
                "Groups whose members may reach the path, as the outpost names them in X-Authentik-Groups; no `|`, quote, backslash or brace.",
              ),
          })
          .strict(),
      )
      .default([])
      .describe(
        "`[{path, groups}]`: paths (`/exact` or `/prefix*`) only these groups may reach, checked by Caddy after auth (403 otherwise); every rule covering a request must admit the user. Matched without case; a target that is not plain is held to every rule it could reach. Must not overlap `publicPaths`.",
      ),
    rateLimit: rateLimitSchema
      .optional()
      .describe(
        "Requests per user (per client address on public paths) in a sliding window; past it, 429 with Retry-After. Needs an `images.caddy` with the rate_limit module (docs/security.md, Rate limits per user).",
      ),
    grants: z
      .array(grantSchema)
      .default([])
      .describe(
        "Access for named users or a group until an instant, checked by Authentik's policy at each authorization: no deploy ends it (docs/security.md, Access that expires).",
      ),
  })
  .strict();

export const serviceSchema = z
  .object({
    host: z.string().describe("The host (a key of `edgeplane:hosts`) the pod runs on."),
    image: image.describe("The app's container image."),
    port: port.describe(
      "The app's port inside the pod. Never published: anyone reaching it directly could forge identity headers.",
    ),
    caddyPort: port.describe(
      "Host port of the pod's Caddy: at least 1024, unique per host, not 80, 443 or the Envoy admin port. Bound to 127.0.0.1 on the ingress host, to the host's tailnet address elsewhere.",
    ),
    fqdn: dnsName.optional().describe("The service's name, unique across the stack. Default: `<service>.<domain>`."),
    exposure: z
      .enum(["public", "tailnet"])
      .default("public")
      .describe(
        "`public`: an SNI route on the ingress host's public addresses and public DNS. `tailnet`: no public route; its record points at the ingress host's tailnet address and Envoy serves it only to tailnet clients.",
      ),
    auth: authSchema
      .optional()
      .describe("Puts the service behind Authentik forward auth. Omitted: no authentication at the edge."),
    publicPaths: z
      .array(z.string().regex(/^\/[A-Za-z0-9._~\-/]*\*?$/, "must be a path such as /api/health or /hooks/*"))
      .default([])
      .describe(
        "Paths that bypass auth: exact (`/api/health`) or a prefix (`/hooks/*`), matched on the request target as sent, case-sensitively; a target with `%`, `//` or a `.`/`..` segment always goes through auth. Only with `auth`.",
      ),
    env: z
      .record(z.string().regex(ENV_NAME, "must be an environment variable name"), envValue)
      .default({})
      .describe("Plain environment of the app container."),
    secrets: z
      .array(z.string().regex(ENV_NAME, "must be an environment variable name"))
      .default([])
      .describe(
        "Names of secrets generated once (48 random characters), kept as Pulumi secrets and given to the app as environment variables through podman secrets.",
      ),
    volumes: z
      .array(z.string().regex(VOLUME, "must be name:/path or /host/path:/path, with optional :opts"))
      .default([])
      .describe("Podman volumes of the app: `name:/path[:opts]` or `/host/path:/path[:opts]`."),
    command: command.describe(
      "Arguments of the app container (Quadlet Exec=), after the image's entrypoint, e.g. `[server]`. Any character is quoted for systemd, but a lone `;` (systemd's command separator) and control characters are refused. Default: the image's.",
    ),
    containers: z
      .record(z.string(), containerSchema)
      .default({})
      .describe("More containers in the pod (a worker, a database), by name; they share its network and secrets."),
    metricsPort: port
      .optional()
      .describe(
        "Host port of this pod's Caddy metrics (Prometheus, /metrics), on the pod host's tailnet address only; the tailnet policy lets only admins reach it. Default: caddyPort + 20000.",
      ),
    tokenRotation: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,40}$/, "must be a short label such as 2026-11 ([A-Za-z0-9._-], at most 40)")
      .optional()
      .describe(
        "Any label; setting or changing it mints a new Cloudflare token for the pod, reloads Caddy with it, then deletes the old one. Only with `tls.issuer: cloudflare-dns`.",
      ),
    limits: z
      .object({
        maxConnections: count(1, 1_000_000)
          .default(1024)
          .describe(
            "Connections open at once to this service, over all its routes together (the circuit breaker of its one Envoy cluster); more are closed at once. Any value works, above Envoy's default of 1024 too.",
          ),
        connectionsPerSecond: count(1, 1_000_000)
          .default(50)
          .describe(
            "New connections per second to this service, over all its routes together (one token bucket shared by its chains); beyond it, connections are closed at once.",
          ),
        burst: count(1, 1_000_000).default(200).describe("How many new connections may arrive at once (token-bucket size)."),
        idleTimeout: duration
          .default("3600s")
          .describe("A connection with no bytes either way for this long is closed (websockets and streams are long-lived)."),
      })
      .strict()
      .default({})
      .describe(
        "Limits at the edge, enforced once per service whatever the number of routes, so one hammered service cannot starve the others.",
      ),
    l7: z
      .object({
        backends: z
          .array(
            z
              .object({
                host: z.string().describe("A key of `edgeplane:hosts`."),
                port: port.describe("The backend's port on that host's tailnet address."),
              })
              .strict(),
          )
          .min(1, "must list at least one backend")
          .describe("Backends (run by you on those hosts) that Envoy load-balances over."),
        healthPath: z
          .string()
          .regex(/^\/\S*$/, "must be a path such as /health")
          .default("/health")
          .describe("Path of the backends' active HTTP health check."),
        listenPort: port
          .optional()
          .describe(
            "Port of Envoy's L7 listener for this service, on the ingress host's tailnet address (never public; only the Caddy's host may connect, and only with the service's L7 credential). Default: caddyPort + 10000.",
          ),
        streamIdleTimeout: duration
          .default("300s")
          .describe(
            "A stream with no bytes either way for this long is closed. There is no request timeout: Envoy's 15 s default would cut long completions.",
          ),
        retries: count(0, 5)
          .default(2)
          .describe(
            "Retries when no connection to a backend could be made, and only then: a started generation is never replayed.",
          ),
        healthCheck: z
          .object({
            interval: duration.default("10s").describe("Time between checks of a backend."),
            timeout: duration.default("5s").describe("How long one check may take."),
            unhealthyThreshold: count(1, 100).default(3).describe("Failed checks in a row before a backend is taken out."),
            healthyThreshold: count(1, 100).default(2).describe("Passed checks in a row before it is put back."),
          })
          .strict()
          .default({})
          .describe("Active HTTP health check of each backend."),
        circuitBreakers: z
          .object({
            maxConnections: count(1, 1_000_000).default(1024).describe("Connections to the backends at once."),
            maxPendingRequests: count(1, 1_000_000).default(1024).describe("Requests waiting for a connection."),
            maxRequests: count(1, 1_000_000).default(1024).describe("Requests in flight at once."),
          })
          .strict()
          .default({})
          .describe("Envoy's circuit breakers for the backends."),
        outlierDetection: z
          .object({
            consecutive5xx: count(1, 1000).default(5).describe("5xx responses in a row that eject a backend."),
            interval: duration.default("10s").describe("Time between ejection sweeps."),
            baseEjectionTime: duration.default("30s").describe("How long a first ejection lasts (longer for repeat offenders)."),
            maxEjectionPercent: count(0, 100).default(50).describe("At most this share of the backends is ejected at once."),
          })
          .strict()
          .default({})
          .describe("Ejects a backend after consecutive 5xx only; never for latency, so a slow first token is not an error."),
      })
      .strict()
      .optional()
      .describe(
        "HTTP load balancing by Envoy (inference servers): the service's Caddy still terminates TLS and does auth, then proxies to Envoy's L7 listener, which spreads requests over the backends.",
      ),
  })
  .strict()
  .describe(
    "One service: a rootless pod (the app and its Caddy) run by its own Linux user `ep-<name>`; its name is [a-z0-9-], at most 29 characters.",
  );

const hex32 = (message: string) => named("32-hex ID", z.string().regex(HEX32, message));

export const stackSchema = z
  .object({
    domain: dnsName.describe("Parent name of service names (`<service>.<domain>`)."),
    cloudflare: z
      .object({
        zoneId: hex32("must be a 32-character lowercase hex Cloudflare zone ID").describe(
          "The zone of every record, and the only zone each pod's token may edit.",
        ),
        permissionGroups: z
          .object({
            dnsWrite: hex32("must be a 32-character hex permission-group ID").describe(
              "Permission group granted to pod tokens for DNS edits.",
            ),
            zoneRead: hex32("must be a 32-character hex permission-group ID").describe(
              "Permission group granted to pod tokens for zone lookup.",
            ),
          })
          .strict()
          // Cloudflare's IDs of "DNS Write" and "Zone Read":
          // https://developers.cloudflare.com/fundamentals/api/reference/permissions/
          .default({ dnsWrite: "4755a26eedb94da69e1066d98aa820be", zoneRead: "c8fed203ed3043cba015a93ad1616f1f" })
          .describe("Permission-group IDs granted to pod tokens (defaults: Cloudflare's DNS Write and Zone Read)."),
        challengeZone: z
          .object({
            id: hex32("must be a 32-character lowercase hex Cloudflare zone ID").describe("The challenge zone's ID."),
            name: dnsName.describe("The challenge zone's name."),
          })
          .strict()
          .optional()
          .describe(
            "A zone only for ACME challenges: each service's `_acme-challenge` name becomes a CNAME into it, and pod tokens can edit only this zone, never the service records.",
          ),
      })
      .strict()
      .describe("Cloudflare: the zone of the records, and what each pod's DNS-01 token may do."),
    tls: z
      .object({
        issuer: z
          .enum(["cloudflare-dns", "internal"])
          .default("cloudflare-dns")
          .describe(
            "`cloudflare-dns`: publicly trusted certificates by ACME DNS-01 through each pod's token. `internal`: Caddy's local CA, no token minted (offline or test stacks).",
          ),
        email: z.string().email("must be an email address").optional().describe("ACME account email."),
      })
      .strict()
      .default({})
      .describe("Where the pods' certificates come from."),
    images: z
      .object({
        envoy: image.default("docker.io/envoyproxy/envoy:v1.36.2").describe("Envoy's image on the ingress host."),
        caddy: image
          .default(DEFAULT_CADDY_IMAGE)
          .describe(
            "Every pod's sidecar: Caddy 2.11.2 to 2.11.7 with the caddy-dns/cloudflare module, and mholt/caddy-ratelimit when a service has `auth.rateLimit` (images/caddy/Containerfile; docs/security.md, Sidecar image); the default is the release the tests run (docs/security.md, Security: why not a later one).",
          ),
      })
      .strict()
      .default({})
      .describe("Container images of the platform's own parts."),
    envoy: z
      .object({
        adminPort: port.default(9901).describe("Envoy's admin interface, bound to 127.0.0.1 only."),
        tlsHandshakeTimeout: duration
          .default("5s")
          .describe("A client must send its TLS ClientHello within this on :443, or the connection is dropped."),
        metricsPort: port
          .default(9902)
          .describe(
            "Port of Envoy's Prometheus endpoint (/stats/prometheus, nothing else of the admin interface) on the ingress host's tailnet address; the tailnet policy lets only admins reach it.",
          ),
        maxDownstreamConnections: count(1, 10_000_000)
          .default(50_000)
          .describe("Connections on all listeners together; Envoy refuses more instead of exhausting the host."),
      })
      .strict()
      .default({})
      .describe("The ingress host's Envoy."),
    // Entries are parsed one by one (model/index.ts) so that a mistake in one service
    // does not hide the cross-checks of the others; configSchema below has their shape.
    hosts: z.record(z.string(), z.unknown()).describe("The machines, by name."),
    services: z.record(z.string(), z.unknown()).describe("The services, by name."),
    authentik: z
      .object({
        service: z.string().describe("The service that runs Authentik. It cannot itself have `auth`."),
        flows: z
          .object({
            authorization: slug.default("default-provider-authorization-implicit-consent").describe("Authorization flow slug."),
            invalidation: slug.default("default-provider-invalidation-flow").describe("Invalidation (logout) flow slug."),
          })
          .strict()
          .default({})
          .describe("Flows of every proxy provider; the defaults are Authentik's own."),
        extraProviders: z
          .array(z.string().min(1, "must not be empty"))
          .default([])
          .describe(
            "Proxy providers managed outside edgeplane that must stay on the embedded outpost (its provider list is replaced as a whole).",
          ),
        createGroups: z
          .boolean()
          .default(false)
          .describe(
            "Each protected service's blueprint creates the Authentik groups its `auth` names (`groups`, `rules[].groups`, `grants[].group`) when they are missing, and never changes an existing one. Off: a missing group fails `pulumi up`. On, a misspelt group silently becomes a new empty group that lets nobody in (docs/first-deploy.md, The groups).",
          ),
      })
      .strict()
      .optional()
      .describe("Authentik, the identity provider of services with `auth`. Required when any service has `auth`."),
    tailscale: z
      .object({
        policy: z
          .record(z.string(), z.unknown())
          .default({})
          .describe("The operator-owned part of the tailnet policy file: groups, own grants, ssh, tests, …"),
        testUsers: z
          .object({
            members: z
              .record(z.string(), z.string().min(1, "must be a login"))
              .default({})
              .describe(
                "One login per group in a tailnet service's `auth.groups` (`{admins: alice@example.org}`): the generated accept tests; `autogroup:admin` for a tailnet service without auth.",
              ),
            nonMember: z
              .string()
              .min(1, "must be a login")
              .optional()
              .describe(
                "A login in none of those groups, and not a tailnet admin: the generated tests prove it cannot reach them, nor any metrics endpoint.",
              ),
          })
          .strict()
          .default({})
          .describe("Identities of the generated Tailscale policy tests."),
        adopt: z
          .boolean()
          .default(false)
          .describe("Import the tailnet's existing policy on the next `up` instead of failing with 412."),
      })
      .strict()
      .optional()
      .describe("Makes this stack the owner of the tailnet policy file (one stack per tailnet)."),
    adopt: z
      .object({
        records: z
          .record(z.string(), z.record(z.enum(["A", "AAAA", "CNAME"]), hex32("must be a 32-character hex Cloudflare record ID")))
          .default({})
          .describe("Per service: record type (A, AAAA, CNAME) → ID of the existing Cloudflare record."),
      })
      .strict()
      .optional()
      .describe(
        "Existing Cloudflare DNS records to take over (Pulumi import) instead of creating; remove an entry once `pulumi up` adopted it. Tokens cannot be adopted (Cloudflare never returns an existing token's value): edgeplane creates new ones.",
      ),
  })
  .strict();

/** Keys the program reads itself, outside the model (index.ts). */
const programKeys = {
  sshPrivateKey: z
    .string()
    .min(1, "must not be empty")
    .describe(
      "Private key (PEM/OpenSSH text) used to reach every host. Set it with `pulumi config set --secret edgeplane:sshPrivateKey < ~/.ssh/edgeplane`.",
    ),
};
/** Keys outside the model, which buildModel leaves unread. */
export const PROGRAM_KEYS: ReadonlySet<string> = new Set(Object.keys(programKeys));
/** Keys whose value must be a Pulumi secret. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(["sshPrivateKey"]);

/**
 * Every `edgeplane:*` key, with hosts and services in full: what is documented and what
 * a stack may set. buildModel validates the model's keys with stackSchema (entries one
 * by one); this one is for the reference, Pulumi.yaml and "did you mean" suggestions.
 */
export const configSchema = stackSchema.extend({
  ...programKeys,
  hosts: z.record(z.string(), hostSchema).describe(stackSchema.shape.hosts.description!),
  services: z.record(z.string(), serviceSchema).describe(stackSchema.shape.services.description!),
});

export type ParsedHost = z.output<typeof hostSchema>;
export type ParsedService = z.output<typeof serviceSchema>;
export type ParsedStack = Omit<z.output<typeof stackSchema>, "hosts" | "services"> & {
  hosts: Record<string, ParsedHost>;
  services: Record<string, ParsedService>;
};
