/**
 * Envoy's configuration for the ingress host, as pure functions of the model: one
 * builder per Envoy object (contour's internal/envoy style), serialized once.
 *
 * Envoy reads listeners and clusters from files it watches (filesystem xDS), so a
 * routing change is a file swap, not a restart (a listener update drains its
 * connections: envoyproxy/envoy#35109). The same objects are also assembled into a
 * static bootstrap that `envoy --mode validate` can check, because validate mode does
 * not load the files that file-based LDS/CDS point at.
 */
import { createHash } from "node:crypto";
import YAML from "yaml";
import { envoyUpstream, hostByName, ingressHost, l7Upstream } from "../../model/topology";
import type { L7Settings, Model, Service } from "../../model/types";

type Obj = Record<string, unknown>;

export const ENVOY_DIR = "/etc/envoy";
export const LISTENERS_PATH = `${ENVOY_DIR}/lds.yaml`;
export const CLUSTERS_PATH = `${ENVOY_DIR}/cds.yaml`;

const LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener";
const CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

/** Tailscale's address ranges: connections from anywhere else never match a tailnet-only chain. */
const TAILNET_SOURCES = [
  { address_prefix: "100.64.0.0", prefix_len: 10 },
  { address_prefix: "fd7a:115c:a1e0::", prefix_len: 48 },
];

const label = (s: string) => s.replace(/[^A-Za-z0-9]/g, "_");

/** Name of the cluster that reaches a service's Caddy. */
export function clusterName(service: Service): string {
  return `caddy_${label(service.name)}`;
}

/** Name of the :443 filter chain that matches a service's SNI. */
export function sniChainName(service: Service): string {
  return `sni_${label(service.fqdn)}`;
}

/**
 * One JSON line per connection (the :443 listeners) or per request (HTTP listeners),
 * on Envoy's stdout, which the unit's log driver hands to the journal. Command
 * operators from Envoy's access-log reference
 * (docs/root/configuration/observability/access_log/usage.rst); an unset value is
 * logged as "-", and numbers as JSON numbers.
 */
const CONNECTION_LOG: Obj = {
  start_time: "%START_TIME%",
  client: "%DOWNSTREAM_REMOTE_ADDRESS%",
  local: "%DOWNSTREAM_LOCAL_ADDRESS%",
  sni: "%REQUESTED_SERVER_NAME%",
  filter_chain: "%FILTER_CHAIN_NAME%",
  cluster: "%UPSTREAM_CLUSTER%",
  upstream: "%UPSTREAM_HOST%",
  bytes_received: "%BYTES_RECEIVED%",
  bytes_sent: "%BYTES_SENT%",
  duration_ms: "%DURATION%",
  // Why it ended: NR (no chain for the name), UO (the service's connection limit),
  // URX with local_ratelimit_close_over_limit (its rate budget), UF (Caddy unreachable)…
  response_flags: "%RESPONSE_FLAGS%",
  termination: "%CONNECTION_TERMINATION_DETAILS%",
  transport_failure: "%DOWNSTREAM_TRANSPORT_FAILURE_REASON%",
};

const REQUEST_LOG: Obj = {
  start_time: "%START_TIME%",
  client: "%DOWNSTREAM_REMOTE_ADDRESS%",
  method: "%REQ(:METHOD)%",
  authority: "%REQ(:AUTHORITY)%",
  // Without the query string, which may carry credentials (PATH(NQ): Envoy 1.34 and later).
  path: "%PATH(NQ)%",
  protocol: "%PROTOCOL%",
  status: "%RESPONSE_CODE%",
  status_details: "%RESPONSE_CODE_DETAILS%",
  response_flags: "%RESPONSE_FLAGS%",
  cluster: "%UPSTREAM_CLUSTER%",
  upstream: "%UPSTREAM_HOST%",
  bytes_received: "%BYTES_RECEIVED%",
  bytes_sent: "%BYTES_SENT%",
  duration_ms: "%DURATION%",
  termination: "%CONNECTION_TERMINATION_DETAILS%",
};

/** An access log to stdout; `log` names the listener, so lines from different listeners tell apart. */
export function accessLog(log: string, fields: Obj): Obj[] {
  return [
    {
      name: "envoy.access_loggers.stdout",
      typed_config: typed("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", {
        log_format: { json_format: { log, ...fields }, json_format_options: { sort_properties: true } },
      }),
    },
  ];
}

function typed(type: string, fields: Obj = {}): Obj {
  return { "@type": `type.googleapis.com/${type}`, ...fields };
}

function socketAddress(address: string, port: number): Obj {
  return { socket_address: { address, port_value: port } };
}

/**
 * The :443 chain for one service. A public service matches on SNI alone; a tailnet
 * service only on connections to the ingress host's tailnet address from tailnet
 * sources, so it is never reachable from the internet even by a client that sends its
 * name.
 *
 * Envoy narrows chains by destination IP before it looks at SNI, keeping only the most
 * specific prefix that matches (FilterChainMatch, "The following order applies"). Once
 * one chain names the tailnet address, a connection to that address would see no
 * public chain at all, so public services also get a copy at the tailnet address
 * (`onTailnetAddress`): pods reach Authentik, and tailnet clients any public service,
 * that way.
 */
export function sniChain(model: Model, service: Service, onTailnetAddress = false): Obj {
  const match: Obj = { server_names: [service.fqdn] };
  if (onTailnetAddress || service.exposure === "tailnet") {
    match.prefix_ranges = [{ address_prefix: ingressHost(model).tailnetIP, prefix_len: 32 }];
  }
  if (service.exposure === "tailnet") match.source_prefix_ranges = TAILNET_SOURCES;
  const name = onTailnetAddress ? `${sniChainName(service)}_tailnet` : sniChainName(service);
  return {
    name,
    filter_chain_match: match,
    filters: [...edgeLimits(name, service), tcpProxy(name, service)],
  };
}

/**
 * The fleet's own hosts, as sources: every pod on a host connects to Envoy from that
 * host's tailnet address (rootless pods reach the tailnet through the host), so a
 * tailnet-only chain that admitted 100.64.0.0/10 would admit every pod of the fleet,
 * any app container included. These addresses are servers, never tailnet users.
 */
function fleetSources(model: Model): Obj[] {
  return [...new Set(model.hosts.map((h) => h.tailnetIP))].sort().map((ip) => ({ address_prefix: ip, prefix_len: 32 }));
}

/**
 * The chain that closes a tailnet-only service's connections from the fleet's own
 * hosts. It has the same destination and server name as the service's chain and a
 * more specific source (/32 against /10), so Envoy picks it for those sources
 * (FilterChainMatch: the most specific source prefix wins); its RBAC filter denies
 * every connection before anything is proxied.
 */
export function fleetDenyChain(model: Model, service: Service): Obj {
  const name = `${sniChainName(service)}_fleet_denied`;
  return {
    name,
    filter_chain_match: {
      server_names: [service.fqdn],
      prefix_ranges: [{ address_prefix: ingressHost(model).tailnetIP, prefix_len: 32 }],
      source_prefix_ranges: fleetSources(model),
    },
    filters: [denyAll(name)],
  };
}

function denyAll(stat: string): Obj {
  return {
    name: "envoy.filters.network.rbac",
    typed_config: typed("envoy.extensions.filters.network.rbac.v3.RBAC", {
      stat_prefix: stat,
      rules: { action: "DENY", policies: { everyone: { permissions: [{ any: true }], principals: [{ any: true }] } } },
    }),
  };
}

/**
 * A service's rate budget at the edge, ahead of the proxy on each of its chains, so a
 * service that is hammered exhausts its own budget and not the others': new
 * connections per second (token bucket; a connection beyond it is closed at once).
 *
 * A service has up to three chains (public IPv4, its copy on the tailnet address,
 * public IPv6), and each filter instance would have its own bucket. `share_key` makes
 * every local_ratelimit filter with the same key and the same token_bucket, in any
 * chain or listener, use one bucket (LocalRateLimit.share_key, envoyproxy/envoy#20340;
 * source/extensions/filters/network/local_ratelimit/local_ratelimit.cc keeps them in
 * one server-wide registry), so the budget is the service's, not the chain's. The
 * connections open at once are capped once per service too, by its cluster's circuit
 * breaker (caddyCluster), which every chain of the service shares.
 */
function edgeLimits(stat: string, service: Service): Obj[] {
  const { connectionsPerSecond, burst } = service.limits;
  return [
    {
      name: "envoy.filters.network.local_ratelimit",
      typed_config: typed("envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit", {
        stat_prefix: stat,
        token_bucket: { max_tokens: burst, tokens_per_fill: connectionsPerSecond, fill_interval: "1s" },
        share_key: clusterName(service),
      }),
    },
  ];
}

function tcpProxy(stat: string, service: Service): Obj {
  return {
    name: "envoy.filters.network.tcp_proxy",
    typed_config: typed("envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", {
      stat_prefix: stat,
      cluster: clusterName(service),
      // Websockets and streamed responses are long-lived: set per service, 1 h by default.
      idle_timeout: service.limits.idleTimeout,
    }),
  };
}

/**
 * :443. No default_filter_chain: a connection whose SNI matches no service is closed
 * without Envoy ever answering for a name it does not serve. The IPv6 listener carries
 * only public chains: the tailnet address is IPv4.
 */
export function passthroughListener(model: Model, name: string, family: "v4" | "v6"): Obj {
  const services = [...model.services].sort((a, b) => cmp(a.fqdn, b.fqdn));
  const publicServices = services.filter((s) => s.exposure === "public");
  const chains =
    family === "v6"
      ? publicServices.map((s) => sniChain(model, s))
      : [
          ...publicServices.map((s) => sniChain(model, s)),
          ...publicServices.map((s) => sniChain(model, s, true)),
          ...services.filter((s) => s.exposure === "tailnet").map((s) => sniChain(model, s)),
          ...services.filter((s) => s.exposure === "tailnet").map((s) => fleetDenyChain(model, s)),
        ];
  return {
    "@type": LISTENER_TYPE,
    name,
    address: socketAddress(family === "v6" ? "::" : "0.0.0.0", 443),
    listener_filters: [
      {
        name: "envoy.filters.listener.tls_inspector",
        typed_config: typed("envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"),
      },
    ],
    // A client that never finishes its ClientHello is dropped instead of holding a socket.
    listener_filters_timeout: model.envoy.tlsHandshakeTimeout,
    filter_chains: chains,
    // The listener's own log: one line per connection when it closes, matched or not, so
    // a name Envoy does not serve (NR) and a ClientHello that never came are logged too
    // (source/common/listener_manager/active_stream_listener_base.cc).
    access_log: accessLog(name, CONNECTION_LOG),
  };
}

/** :80 answers every request with a redirect to the same URL over HTTPS. */
export function httpRedirectListener(name: string, address: string): Obj {
  return {
    "@type": LISTENER_TYPE,
    name,
    address: socketAddress(address, 80),
    filter_chains: [
      {
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            typed_config: typed("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
              stat_prefix: name,
              use_remote_address: true,
              access_log: accessLog(name, REQUEST_LOG),
              route_config: {
                name: "https_redirect",
                virtual_hosts: [
                  { name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, redirect: { https_redirect: true } }] },
                ],
              },
              http_filters: [
                { name: "envoy.filters.http.router", typed_config: typed("envoy.extensions.filters.http.router.v3.Router") },
              ],
            }),
          },
        ],
      },
    ],
  };
}

/**
 * A service's Caddy: on loopback when the pod shares the ingress host, at the pod
 * host's tailnet address otherwise. PROXY protocol v2 goes first on every connection
 * so Caddy logs and limits by the real client address (caddyserver/caddy#6486).
 *
 * Every chain of the service proxies to this one cluster, so its circuit breaker is
 * where the service's connection limit holds once, whatever the number of chains.
 * tcp_proxy checks it before connecting upstream and closes a connection beyond it at
 * once, with response flag UO and the cluster's upstream_cx_overflow counter
 * (source/common/tcp_proxy/tcp_proxy.cc). Without it, Envoy's default of 1024
 * (config/cluster/v3/circuit_breaker.proto) would cap every service. Pending
 * connections (being connected to Caddy) get the same bound, so they never are the
 * tighter limit. track_remaining publishes the headroom as the remaining_cx gauge.
 */
export function caddyCluster(model: Model, service: Service): Obj {
  const upstream = envoyUpstream(model, service);
  const { maxConnections } = service.limits;
  return {
    "@type": CLUSTER_TYPE,
    name: clusterName(service),
    type: "STATIC",
    connect_timeout: "5s",
    circuit_breakers: {
      thresholds: [
        { priority: "DEFAULT", max_connections: maxConnections, max_pending_requests: maxConnections, track_remaining: true },
      ],
    },
    load_assignment: {
      cluster_name: clusterName(service),
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(upstream.address, upstream.port) } }] }],
    },
    transport_socket: {
      name: "envoy.transport_sockets.upstream_proxy_protocol",
      typed_config: typed("envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport", {
        config: { version: "V2" },
        transport_socket: {
          name: "envoy.transport_sockets.raw_buffer",
          typed_config: typed("envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"),
        },
      }),
    },
  };
}

/** Name of the L7 listener and cluster of an `l7` service. */
export function l7Name(service: Service): string {
  return `l7_${label(service.name)}`;
}

/**
 * The header an `l7` service's Caddy proves itself with to Envoy's L7 listener:
 * `Basic base64(<service>:<key>)`, the key being a secret only that pod's Caddy holds
 * (a podman secret). Not `Authorization`, which belongs to the client (an API key for
 * the model server).
 */
export const L7_CREDENTIAL_HEADER = "x-edgeplane-l7-credential";

/** Where Envoy reads the credential of an `l7` service's Caddy from (l7CredentialFile). */
export const L7_CREDENTIALS_DIR = `${ENVOY_DIR}/l7-credentials`;

export function l7CredentialPath(service: Service): string {
  return `${L7_CREDENTIALS_DIR}/${service.name}.htpasswd`;
}

/**
 * The content of l7CredentialPath: the one user Envoy's basic_auth filter lets in, in
 * htpasswd's `{SHA}` form (base64 of SHA-1 of the key), the only form the filter takes
 * (envoy.extensions.filters.http.basic_auth.v3.BasicAuth, `users`). The key itself
 * never reaches Envoy; it is long and random, so its hash gives nothing away. The
 * file is installed from the generated key at `up` (IngressHost), outside the
 * rendered files, so those are fully known at preview.
 */
export function l7CredentialFile(service: Service, key: string): string {
  return `${service.name}:{SHA}${createHash("sha1").update(key).digest("base64")}\n`;
}

/** The L7_CREDENTIAL_HEADER value of `service`'s Caddy: HTTP Basic credentials, user = the service. */
export function l7Credential(service: Service, key: string): string {
  return `Basic ${Buffer.from(`${service.name}:${key}`).toString("base64")}`;
}

/**
 * The L7 listener an `l7` service's Caddy proxies to, after TLS and auth: on the
 * ingress host's tailnet address (never public), accepting connections only from the
 * host that runs that Caddy, and of those only requests carrying that Caddy's
 * credential (L7_CREDENTIAL_HEADER): every pod on the Caddy's host connects from the
 * same address, so the address alone would let any of them past authentication. The
 * credential header is removed before the request goes on to a backend. Timeouts fit streamed LLM responses (envoyproxy/ai-gateway#795): no
 * request or route timeout (Envoy's default 15 s route timeout would cut a long
 * completion), and an explicit stream idle timeout instead, which a token stream
 * keeps resetting. Retries happen only when no connection could be made, so a
 * request a backend has started is never replayed.
 */
export function l7Listener(model: Model, service: Service & { l7: L7Settings }): Obj {
  const name = l7Name(service);
  const upstream = l7Upstream(model, service);
  const caddyHost = hostByName(model, service.host).tailnetIP;
  return {
    "@type": LISTENER_TYPE,
    name,
    address: socketAddress(upstream.address, upstream.port),
    filter_chains: [
      {
        filter_chain_match: { source_prefix_ranges: [{ address_prefix: caddyHost, prefix_len: 32 }] },
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            typed_config: typed("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
              stat_prefix: name,
              access_log: accessLog(name, REQUEST_LOG),
              request_timeout: "0s",
              stream_idle_timeout: service.l7.streamIdleTimeout,
              route_config: {
                name,
                virtual_hosts: [
                  {
                    name,
                    domains: ["*"],
                    routes: [
                      {
                        match: { prefix: "/" },
                        route: {
                          cluster: name,
                          timeout: "0s",
                          idle_timeout: service.l7.streamIdleTimeout,
                          retry_policy: { retry_on: "connect-failure", num_retries: service.l7.retries },
                        },
                        request_headers_to_remove: [L7_CREDENTIAL_HEADER],
                      },
                    ],
                  },
                ],
              },
              http_filters: [
                {
                  name: "envoy.filters.http.basic_auth",
                  typed_config: typed("envoy.extensions.filters.http.basic_auth.v3.BasicAuth", {
                    // A DataSource file is read when the listener is built: a changed
                    // file takes effect at the next change of this listener (Envoy
                    // does not watch it). The key is generated once per service and
                    // never rotates by itself, so that is only after a manual rotation.
                    users: { filename: l7CredentialPath(service) },
                    authentication_header: L7_CREDENTIAL_HEADER,
                  }),
                },
                { name: "envoy.filters.http.router", typed_config: typed("envoy.extensions.filters.http.router.v3.Router") },
              ],
            }),
          },
        ],
      },
    ],
  };
}

/**
 * The inference backends of an `l7` service. Active HTTP health checks take a dead
 * backend out and put it back; outlier detection ejects only on consecutive 5xx,
 * never on latency (success-rate ejection is off), so a backend that is slow to its
 * first token but healthy stays in. LEAST_REQUEST sends new work to the backend with
 * the fewest requests in flight, which suits long, uneven generations.
 */
export function l7Cluster(model: Model, service: Service & { l7: L7Settings }): Obj {
  const name = l7Name(service);
  const { healthCheck: hc, circuitBreakers: cb, outlierDetection: od } = service.l7;
  const ingress = ingressHost(model);
  return {
    "@type": CLUSTER_TYPE,
    name,
    type: "STRICT_DNS",
    dns_lookup_family: "V4_ONLY",
    connect_timeout: "5s",
    lb_policy: "LEAST_REQUEST",
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: service.l7.backends.map((b) => ({
            endpoint: {
              // A backend on the ingress host itself is reached on loopback; others over the tailnet.
              address: socketAddress(b.host === ingress.name ? "127.0.0.1" : hostByName(model, b.host).tailnetIP, b.port),
            },
          })),
        },
      ],
    },
    health_checks: [
      {
        timeout: hc.timeout,
        interval: hc.interval,
        unhealthy_threshold: hc.unhealthyThreshold,
        healthy_threshold: hc.healthyThreshold,
        http_health_check: { path: service.l7.healthPath },
      },
    ],
    circuit_breakers: {
      thresholds: [
        {
          priority: "DEFAULT",
          max_connections: cb.maxConnections,
          max_pending_requests: cb.maxPendingRequests,
          max_requests: cb.maxRequests,
          max_retries: Math.max(1, service.l7.retries),
        },
      ],
    },
    outlier_detection: {
      consecutive_5xx: od.consecutive5xx,
      interval: od.interval,
      base_ejection_time: od.baseEjectionTime,
      max_ejection_percent: od.maxEjectionPercent,
      enforcing_success_rate: 0,
    },
  };
}

/** The cluster that reaches Envoy's own admin interface on loopback, for the metrics listener only. */
export const ADMIN_CLUSTER = "envoy_admin";
export const METRICS_LISTENER = "metrics";
export const ENVOY_METRICS_PATH = "/stats/prometheus";

/**
 * Envoy's Prometheus endpoint on the ingress host's tailnet address. The admin
 * interface itself stays on loopback (it is unauthenticated and can stop Envoy); this
 * listener forwards exactly one path of it, GET /stats/prometheus, and answers 404 to
 * everything else. Only tailnet sources may connect, and the tailnet policy lets only
 * admins reach the port.
 */
export function metricsListener(model: Model): Obj {
  const { tailnetIP } = ingressHost(model);
  return {
    "@type": LISTENER_TYPE,
    name: METRICS_LISTENER,
    address: socketAddress(tailnetIP, model.envoy.metricsPort),
    filter_chains: [
      {
        filter_chain_match: { source_prefix_ranges: TAILNET_SOURCES },
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            typed_config: typed("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", {
              stat_prefix: METRICS_LISTENER,
              route_config: {
                name: METRICS_LISTENER,
                virtual_hosts: [
                  {
                    name: METRICS_LISTENER,
                    domains: ["*"],
                    routes: [
                      {
                        match: { path: ENVOY_METRICS_PATH, headers: [{ name: ":method", string_match: { exact: "GET" } }] },
                        route: { cluster: ADMIN_CLUSTER },
                      },
                      { match: { prefix: "/" }, direct_response: { status: 404 } },
                    ],
                  },
                ],
              },
              http_filters: [
                { name: "envoy.filters.http.router", typed_config: typed("envoy.extensions.filters.http.router.v3.Router") },
              ],
            }),
          },
        ],
      },
    ],
  };
}

function adminCluster(model: Model): Obj {
  return {
    "@type": CLUSTER_TYPE,
    name: ADMIN_CLUSTER,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: ADMIN_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress("127.0.0.1", model.envoy.adminPort) } }] }],
    },
  };
}

const l7Services = (model: Model) => model.services.filter((s): s is Service & { l7: L7Settings } => s.l7 !== undefined);

/**
 * Every listener: :443 and :80 on IPv4, and on IPv6 too when the host has a public IPv6
 * address; one L7 listener per `l7` service, checking the credential in its
 * l7CredentialPath.
 */
export function listeners(model: Model): Obj[] {
  const out = [passthroughListener(model, "https_passthrough", "v4"), httpRedirectListener("http_redirect", "0.0.0.0")];
  if (ingressHost(model).publicIPv6) {
    // A separate listener per family, not one dual-stack socket: the IPv4 listener
    // must keep seeing plain IPv4 addresses, which its tailnet prefix ranges match.
    out.push(passthroughListener(model, "https_passthrough_v6", "v6"), httpRedirectListener("http_redirect_v6", "::"));
  }
  return [...out, ...l7Services(model).map((s) => l7Listener(model, s)), metricsListener(model)];
}

export function clusters(model: Model): Obj[] {
  return [
    ...model.services.map((s) => caddyCluster(model, s)),
    ...l7Services(model).map((s) => l7Cluster(model, s)),
    adminCluster(model),
  ].sort((a, b) => cmp(String(a.name), String(b.name)));
}

function header(what: string): string {
  return `# managed by edgeplane — ${what}; do not edit by hand\n`;
}

function serialize(what: string, doc: Obj): string {
  return header(what) + YAML.stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** /etc/envoy/lds.yaml: a DiscoveryResponse of every listener. */
export function renderListeners(model: Model): string {
  return serialize(`listeners of ingress host ${ingressHost(model).name}`, { resources: listeners(model) });
}

/** /etc/envoy/cds.yaml: a DiscoveryResponse of every cluster. */
export function renderClusters(model: Model): string {
  return serialize(`clusters of ingress host ${ingressHost(model).name}`, { resources: clusters(model) });
}

function admin(model: Model): Obj {
  // The admin interface has no authentication and can stop Envoy: loopback only.
  return { address: socketAddress("127.0.0.1", model.envoy.adminPort) };
}

/** /etc/envoy/envoy.yaml: admin on loopback; listeners and clusters from the watched files. */
export function renderEnvoyBootstrap(model: Model): string {
  const host = ingressHost(model).name;
  const source = (path: string) => ({
    resource_api_version: "V3",
    // Watching the directory makes Envoy reload `path` whenever a file is renamed into
    // it, which is how every edgeplane install lands (temporary file, then rename).
    path_config_source: { path, watched_directory: { path: ENVOY_DIR } },
  });
  return serialize(`Envoy bootstrap of ingress host ${host}`, {
    node: { id: host, cluster: "edgeplane" },
    admin: admin(model),
    dynamic_resources: { lds_config: source(LISTENERS_PATH), cds_config: source(CLUSTERS_PATH) },
    overload_manager: overloadManager(model),
  });
}

/** Caps connections on all listeners together, so a flood cannot exhaust the host's file descriptors. */
function overloadManager(model: Model): Obj {
  return {
    resource_monitors: [
      {
        name: "envoy.resource_monitors.global_downstream_max_connections",
        typed_config: typed("envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig", {
          max_active_downstream_connections: model.envoy.maxDownstreamConnections,
        }),
      },
    ],
  };
}

/**
 * The same listeners and clusters as a static bootstrap, for `envoy --mode validate`
 * on the host before the live files are replaced. Never run as a real config.
 */
export function renderValidationBootstrap(model: Model): string {
  const strip = (resources: Obj[]) => resources.map(({ "@type": _type, ...rest }) => rest);
  return serialize(`validation copy of the listeners and clusters of ingress host ${ingressHost(model).name}`, {
    node: { id: `${ingressHost(model).name}-check`, cluster: "edgeplane" },
    admin: admin(model),
    overload_manager: overloadManager(model),
    static_resources: { listeners: strip(listeners(model)), clusters: strip(clusters(model)) },
  });
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
