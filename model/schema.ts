/**
 * The shape of the `edgeplane:*` stack config keys (DESIGN.md, "Contract: stack
 * config"). Objects are strict so a misspelt key is an error rather than a silently
 * ignored setting. Cross-field rules (unknown hosts, port collisions, …) live in
 * validate.ts, because they need the whole config at once.
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

const ipv4 = z.string().ip({ version: "v4", message: "must be an IPv4 address" });
const ipv6 = z.string().ip({ version: "v6", message: "must be an IPv6 address" });
/** An address or a CIDR range, as Cloudflare's token IP conditions take them. */
const cidr = z.string().refine(isAddressOrRange, "must be an IP address or CIDR range such as 203.0.113.10 or 2001:db8::/64");
const port = z
  .number({ invalid_type_error: "must be a port number" })
  .int("must be a whole number")
  .min(1, "must be between 1 and 65535")
  .max(65535, "must be between 1 and 65535");
const dnsName = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.string().regex(DNS_NAME, "must be a DNS name such as app.example.org"));
const image = z.string().regex(IMAGE, "must be a container image reference such as docker.io/library/nginx:1.27");
/** A protobuf JSON duration, the form Envoy reads: "30s", "0.5s". */
const duration = z.string().regex(/^\d+(\.\d{1,9})?s$/, 'must be a duration in seconds such as "30s" or "0.5s"');
const count = (min: number, max: number) =>
  z
    .number({ invalid_type_error: "must be a number" })
    .int("must be a whole number")
    .min(min, `must be between ${min} and ${max}`)
    .max(max, `must be between ${min} and ${max}`);
const slug = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "must be a flow slug such as default-provider-invalidation-flow");
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
    host: z.string().min(1, "must not be empty"),
    user: z.string().regex(/^[a-z_][a-z0-9_-]*$/, "must be a Linux user name"),
    port: port.default(22),
    /** The host's SSH public key (`ssh-ed25519 AAAA…`); every connection accepts only a server that holds it. */
    hostKey: z
      .string()
      .transform((line, ctx) => {
        const parsed = parseHostKey(line);
        if (parsed.ok) return parsed.key;
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.problem });
        return z.NEVER;
      })
      .optional(),
    /** Connect without checking the host key (a first bootstrap only): whoever answers gets the secrets. */
    insecureSkipHostKeyCheck: z.boolean().default(false),
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
  });

export const hostSchema = z
  .object({
    ingress: z.boolean().default(false),
    publicIPv4: ipv4.optional(),
    publicIPv6: ipv6.optional(),
    tailnetIP: ipv4,
    /** Addresses this host's outbound traffic comes from; when set, its pods' Cloudflare tokens work only from them. */
    egressIPs: z.array(cidr).min(1, "must list at least one address, or be omitted").optional(),
    ssh: sshSchema,
  })
  .strict();

/** `ENV` (the service's generated secret of that name) or `ENV=NAME` (secret NAME, as env ENV). */
const SECRET_REF = /^[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z_][A-Za-z0-9_]*)?$/;

export const containerSchema = z
  .object({
    image,
    command,
    env: z.record(z.string().regex(ENV_NAME, "must be an environment variable name"), envValue).default({}),
    secrets: z
      .array(z.string().regex(SECRET_REF, "must be a secret of the service (NAME), or ENV=NAME to expose it under another name"))
      .default([]),
    volumes: z.array(z.string().regex(VOLUME, "must be name:/path or /host/path:/path, with optional :opts")).default([]),
  })
  .strict();

export const serviceSchema = z
  .object({
    host: z.string(),
    image,
    port,
    caddyPort: port,
    fqdn: dnsName.optional(),
    exposure: z.enum(["public", "tailnet"]).default("public"),
    auth: z
      .object({ groups: z.array(z.string().min(1, "must not be empty")).min(1, "must name at least one group") })
      .strict()
      .optional(),
    publicPaths: z
      .array(z.string().regex(/^\/[A-Za-z0-9._~\-/]*\*?$/, "must be a path such as /api/health or /hooks/*"))
      .default([]),
    env: z.record(z.string().regex(ENV_NAME, "must be an environment variable name"), envValue).default({}),
    secrets: z.array(z.string().regex(ENV_NAME, "must be an environment variable name")).default([]),
    volumes: z.array(z.string().regex(VOLUME, "must be name:/path or /host/path:/path, with optional :opts")).default([]),
    /** Arguments of the app container (Quadlet Exec=), after the image's entrypoint. */
    command,
    /** More containers in the pod (a worker, a database), sharing its network and secrets; never published. */
    containers: z.record(z.string(), containerSchema).default({}),
    /** Any label; changing it mints a new Cloudflare token for this pod, swaps it in, then deletes the old one. */
    tokenRotation: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,40}$/, "must be a short label such as 2026-11 ([A-Za-z0-9._-], at most 40)")
      .optional(),
    /** Limits on this service's SNI chain at the edge, so one hammered service cannot starve the others. */
    limits: z
      .object({
        maxConnections: count(1, 1_000_000).default(1024),
        connectionsPerSecond: count(1, 1_000_000).default(50),
        burst: count(1, 1_000_000).default(200),
        idleTimeout: duration.default("3600s"),
      })
      .strict()
      .default({}),
    l7: z
      .object({
        backends: z.array(z.object({ host: z.string(), port }).strict()).min(1, "must list at least one backend"),
        healthPath: z
          .string()
          .regex(/^\/\S*$/, "must be a path such as /health")
          .default("/health"),
        /** Port of Envoy's L7 listener for this service on the ingress host's tailnet address. */
        listenPort: port.optional(),
        /** A stream with no bytes either way for this long is closed; tokens keep a stream busy. */
        streamIdleTimeout: duration.default("300s"),
        /** Retries, on connect failure only: a request an LLM has started is never replayed. */
        retries: count(0, 5).default(2),
        healthCheck: z
          .object({
            interval: duration.default("10s"),
            timeout: duration.default("5s"),
            unhealthyThreshold: count(1, 100).default(3),
            healthyThreshold: count(1, 100).default(2),
          })
          .strict()
          .default({}),
        circuitBreakers: z
          .object({
            maxConnections: count(1, 1_000_000).default(1024),
            maxPendingRequests: count(1, 1_000_000).default(1024),
            maxRequests: count(1, 1_000_000).default(1024),
          })
          .strict()
          .default({}),
        outlierDetection: z
          .object({
            consecutive5xx: count(1, 1000).default(5),
            interval: duration.default("10s"),
            baseEjectionTime: duration.default("30s"),
            maxEjectionPercent: count(0, 100).default(50),
          })
          .strict()
          .default({}),
      })
      .strict()
      .optional(),
  })
  .strict();

export const stackSchema = z
  .object({
    domain: dnsName,
    cloudflare: z
      .object({
        zoneId: z.string().regex(HEX32, "must be a 32-character lowercase hex Cloudflare zone ID"),
        permissionGroups: z
          .object({
            dnsWrite: z.string().regex(HEX32, "must be a 32-character hex permission-group ID"),
            zoneRead: z.string().regex(HEX32, "must be a 32-character hex permission-group ID"),
          })
          .strict()
          // Cloudflare's IDs for "DNS Write" and "Zone Read" (REFERENCE.md §1).
          .default({ dnsWrite: "4755a26eedb94da69e1066d98aa820be", zoneRead: "c8fed203ed3043cba015a93ad1616f1f" }),
        /**
         * A zone only for ACME challenges: each service's `_acme-challenge` name becomes a
         * CNAME into it, and pod tokens can edit only this zone, never the service records.
         */
        challengeZone: z
          .object({
            id: z.string().regex(HEX32, "must be a 32-character lowercase hex Cloudflare zone ID"),
            name: dnsName,
          })
          .strict()
          .optional(),
      })
      .strict(),
    tls: z
      .object({
        issuer: z.enum(["cloudflare-dns", "internal"]).default("cloudflare-dns"),
        email: z.string().email("must be an email address").optional(),
      })
      .strict()
      .default({}),
    images: z
      .object({
        envoy: image.default("docker.io/envoyproxy/envoy:v1.36.2"),
        caddy: image.default(DEFAULT_CADDY_IMAGE),
      })
      .strict()
      .default({}),
    envoy: z
      .object({
        adminPort: port.default(9901),
        /** A client must finish its TLS ClientHello within this, or the connection is dropped. */
        tlsHandshakeTimeout: duration.default("5s"),
        /** Connections on all listeners together; Envoy refuses more instead of exhausting the host. */
        maxDownstreamConnections: count(1, 10_000_000).default(50_000),
      })
      .strict()
      .default({}),
    // Entries are parsed one by one (model/index.ts) so that a mistake in one service
    // does not hide the cross-checks of the others.
    hosts: z.record(z.string(), z.unknown()),
    services: z.record(z.string(), z.unknown()),
    authentik: z
      .object({
        service: z.string(),
        /** Flow slugs of every proxy provider; Authentik's defaults from its own blueprints. */
        flows: z
          .object({
            authorization: slug.default("default-provider-authorization-implicit-consent"),
            invalidation: slug.default("default-provider-invalidation-flow"),
          })
          .strict()
          .default({}),
        /** Proxy providers managed outside edgeplane that must stay on the embedded outpost. */
        extraProviders: z.array(z.string().min(1, "must not be empty")).default([]),
      })
      .strict()
      .optional(),
    tailscale: z
      .object({
        /** The operator-owned part of the tailnet policy file (groups, their own grants, ssh, tests, …). */
        policy: z.record(z.string(), z.unknown()).default({}),
        testUsers: z
          .object({
            members: z.record(z.string(), z.string().min(1, "must be a login")).default({}),
            nonMember: z.string().min(1, "must be a login").optional(),
          })
          .strict()
          .default({}),
        /** Take over the tailnet's existing policy (import) instead of failing on it. */
        adopt: z.boolean().default(false),
      })
      .strict()
      .optional(),
    /** Existing Cloudflare objects to take over (Pulumi import) instead of creating them. */
    adopt: z
      .object({
        /** Per service: record type (A, AAAA, CNAME) → Cloudflare record ID. */
        records: z
          .record(
            z.string(),
            z.record(z.enum(["A", "AAAA", "CNAME"]), z.string().regex(HEX32, "must be a 32-character hex Cloudflare record ID")),
          )
          .default({}),
        /** Per service: the ID of its existing DNS-01 API token. */
        tokens: z.record(z.string(), z.string().regex(HEX32, "must be a 32-character hex Cloudflare token ID")).default({}),
      })
      .strict()
      .optional(),
  })
  .strict();

export type ParsedHost = z.output<typeof hostSchema>;
export type ParsedService = z.output<typeof serviceSchema>;
export type ParsedStack = Omit<z.output<typeof stackSchema>, "hosts" | "services"> & {
  hosts: Record<string, ParsedHost>;
  services: Record<string, ParsedService>;
};
