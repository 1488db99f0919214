/**
 * The validated, normalized model of one stack: what every renderer and component
 * consumes. Nothing here knows about Pulumi; `buildModel` (model/index.ts) is the only
 * way to get one, so every value below has already been checked and defaulted.
 *
 * Collections are sorted by name so rendered output is deterministic.
 */

export type TlsIssuer = "cloudflare-dns" | "internal";
export type Exposure = "public" | "tailnet";

export interface SshTarget {
  readonly host: string;
  readonly user: string;
  readonly port: number;
  /**
   * The host's SSH public key, `<type> <base64>`, checked by every connection. Absent
   * only when the operator set `insecureSkipHostKeyCheck` (a first bootstrap).
   */
  readonly hostKey?: string;
}

export interface Host {
  /** Config key of the host, [a-z0-9-]. */
  readonly name: string;
  /** Runs Envoy. Exactly one host per stack does. */
  readonly ingress: boolean;
  readonly publicIPv4?: string;
  readonly publicIPv6?: string;
  /** The host's address on the tailnet (100.64.0.0/10). */
  readonly tailnetIP: string;
  /** Addresses (or CIDR ranges) the host's outbound traffic comes from; pods' tokens then work only from them. */
  readonly egressIPs?: readonly string[];
  readonly ssh: SshTarget;
}

export interface L7Backend {
  /** A key of `hosts`: resolved to that host's tailnet address. */
  readonly host: string;
  readonly port: number;
}

export interface L7Settings {
  readonly backends: readonly L7Backend[];
  readonly healthPath: string;
  /** Port of Envoy's L7 listener on the ingress host's tailnet address (default caddyPort + 10000). */
  readonly listenPort: number;
  /** Durations are protobuf JSON durations ("30s"), the form Envoy reads. */
  readonly streamIdleTimeout: string;
  /** Retries on connect failure only. */
  readonly retries: number;
  readonly healthCheck: {
    readonly interval: string;
    readonly timeout: string;
    readonly unhealthyThreshold: number;
    readonly healthyThreshold: number;
  };
  readonly circuitBreakers: {
    readonly maxConnections: number;
    readonly maxPendingRequests: number;
    readonly maxRequests: number;
  };
  readonly outlierDetection: {
    readonly consecutive5xx: number;
    readonly interval: string;
    readonly baseEjectionTime: string;
    readonly maxEjectionPercent: number;
  };
}

export interface ServiceAuth {
  /** Authentik groups allowed in, sorted. */
  readonly groups: readonly string[];
  /** Requests per user (per client address on public paths) in a sliding window; absent: no limit. */
  readonly rateLimit?: RateLimit;
  /** Access that ends at an instant, in config order; Authentik checks the clock at each request. Absent: none. */
  readonly grants?: readonly AccessGrant[];
  /** Machine clients may authenticate with `Authorization` (bearer token, or Basic with an app password). Absent = false. */
  readonly apiClients?: boolean;
  /** With apiClients: the app still receives the client's Authorization header. Absent = false. */
  readonly passAuthorization?: boolean;
  /** Paths only some groups may reach, in config order. Absent = none. */
  readonly rules?: readonly AccessRule[];
}

/** One `auth.rules` entry: requests the path covers need one of the groups. */
export interface AccessRule {
  /** `/exact` or `/prefix*`, as configured. */
  readonly path: string;
  /** Sorted, without duplicates. */
  readonly groups: readonly string[];
}

export interface RateLimit {
  /** Requests allowed in any `window`. */
  readonly events: number;
  /** A Caddy duration: "10s", "1m". */
  readonly window: string;
  /** At most this many requests in any window × burst / events; absent: no tighter cap. */
  readonly burst?: number;
}

/** Either named users or one group, admitted until `until`. */
export type AccessGrant =
  | { readonly users: readonly string[]; readonly until: string }
  | { readonly group: string; readonly until: string };

export interface Service {
  /** Config key of the service, [a-z0-9-]. */
  readonly name: string;
  /** Name of the host the pod runs on. */
  readonly host: string;
  readonly image: string;
  /** The app's port inside the pod; never published. */
  readonly port: number;
  /** Host port of this pod's Caddy, bound only to the address Envoy reaches. */
  readonly caddyPort: number;
  /** Host port of this pod's Caddy metrics, on the pod host's tailnet address. */
  readonly metricsPort: number;
  readonly fqdn: string;
  readonly exposure: Exposure;
  readonly auth?: ServiceAuth;
  /** Paths that bypass auth (exact paths or prefixes ending in `*`). */
  readonly publicPaths: readonly string[];
  /** Plain environment of the app container, as [name, value] pairs sorted by name. */
  readonly env: readonly (readonly [string, string])[];
  /** Names of generated secrets handed to the app as environment variables, sorted. */
  readonly secrets: readonly string[];
  /** Podman volume specs for the app container (`name:/path[:opts]`), in config order. */
  readonly volumes: readonly string[];
  readonly l7?: L7Settings;
  readonly limits: EdgeLimits;
  /** Arguments of the app container, after the image's entrypoint. */
  readonly command?: readonly string[];
  /** Further containers in the pod, sorted by name. */
  readonly containers?: readonly ExtraContainer[];
  /** Changing this label mints a new Cloudflare token for the pod (see SidecarPod). */
  readonly tokenRotation?: string;
}

/** A further container in a service's pod (a worker, a database): same network, never published. */
export interface ExtraContainer {
  /** Key under `containers`, [a-z0-9-]; the container is `<service>-<name>`. */
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly env: readonly (readonly [string, string])[];
  /** [env name, name of the service's generated secret], sorted by env name. */
  readonly secrets: readonly (readonly [string, string])[];
  readonly volumes: readonly string[];
}

/** Per-service limits on its SNI chain at the ingress. */
export interface EdgeLimits {
  /** Open connections at once; more are closed at accept. */
  readonly maxConnections: number;
  /** New connections per second (token bucket refill) ... */
  readonly connectionsPerSecond: number;
  /** ... and the bucket's size: how many may arrive at once. */
  readonly burst: number;
  /** A connection with no bytes either way for this long is closed. */
  readonly idleTimeout: string;
}

export interface Images {
  readonly envoy: string;
  readonly caddy: string;
}

export interface CloudflareSettings {
  readonly zoneId: string;
  /** Permission-group IDs granted to each pod's token. */
  readonly permissionGroups: { readonly dnsWrite: string; readonly zoneRead: string };
  /** ACME challenge delegation: `_acme-challenge.<fqdn>` is a CNAME into this zone, the only one pod tokens can edit. */
  readonly challengeZone?: { readonly id: string; readonly name: string };
}

export interface AuthentikSettings {
  /** The service that runs Authentik. */
  readonly service: string;
  /** Flow slugs of every proxy provider (Authentik's defaults when omitted). */
  readonly flows?: { readonly authorization: string; readonly invalidation: string };
  /** Providers managed outside edgeplane that stay on the embedded outpost. */
  readonly extraProviders?: readonly string[];
  /** Each app blueprint creates the groups its service names when they are missing (never updates them). */
  readonly createGroups?: boolean;
}

export interface TailscaleSettings {
  /** The operator-owned part of the policy file. */
  readonly policy: Readonly<Record<string, unknown>>;
  readonly testUsers: { readonly members: Readonly<Record<string, string>>; readonly nonMember?: string };
  /** Import the tailnet's existing policy instead of creating one. */
  readonly adopt: boolean;
}

/** Existing Cloudflare objects to import instead of create, by service name. */
export interface Adoption {
  readonly records: Readonly<Record<string, Readonly<Partial<Record<"A" | "AAAA" | "CNAME", string>>>>>;
}

export interface EnvoySettings {
  /** Admin interface port, bound to 127.0.0.1 only. */
  readonly adminPort: number;
  /** Time allowed for a client's TLS ClientHello on :443. */
  readonly tlsHandshakeTimeout: string;
  /** Open downstream connections on all listeners together. */
  readonly maxDownstreamConnections: number;
  /** Port of Envoy's Prometheus endpoint on the ingress host's tailnet address. */
  readonly metricsPort: number;
}

export interface Model {
  readonly domain: string;
  readonly cloudflare: CloudflareSettings;
  readonly tls: { readonly issuer: TlsIssuer; readonly email?: string };
  readonly images: Images;
  readonly envoy: EnvoySettings;
  /** Sorted by name. */
  readonly hosts: readonly Host[];
  /** Sorted by name. */
  readonly services: readonly Service[];
  /** The Authentik service, when the stack configures one. */
  readonly authentik?: AuthentikSettings;
  /** The tailnet policy, when this stack owns it. */
  readonly tailscale?: TailscaleSettings;
  readonly adopt?: Adoption;
}
