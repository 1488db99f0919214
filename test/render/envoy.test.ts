import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import YAML from "yaml";
import {
  clusterName,
  l7Credential,
  l7CredentialFile,
  l7CredentialPath,
  L7_CREDENTIAL_HEADER,
  renderClusters,
  renderEnvoyBootstrap,
  renderListeners,
  renderValidationBootstrap,
} from "../../components/ingress/render";
import { renderEnvoyContainerUnit } from "../../components/ingress/renderUnit";
import type { Model } from "../../model/types";
import { fixtures, fleet, single } from "../fixtures/models";
import { assertGolden, pruneGolden } from "../golden";

type Obj = Record<string, any>;

/** The test's L7 keys: one per `l7` service, as IngressHost generates them. */
const keyOf = (service: string) => `test-l7-key-of-${service}-0123456789abcdefghijklmnop`;

const renderers = {
  "envoy.yaml": renderEnvoyBootstrap,
  "lds.yaml": renderListeners,
  "cds.yaml": renderClusters,
  "check.yaml": renderValidationBootstrap,
};

describe("Envoy renderers: golden files", () => {
  const written: string[] = [];
  for (const [fixture, model] of Object.entries(fixtures)) {
    for (const [file, render] of Object.entries(renderers)) {
      const rel = `envoy/${fixture}/${file}`;
      written.push(rel);
      it(rel, () => assertGolden(rel, render(model)));
    }
  }
  it("has no stale golden files", () => pruneGolden("envoy", written));
});

const lds = (m: Model): Obj[] => YAML.parse(renderListeners(m)).resources;
const cds = (m: Model): Obj[] => YAML.parse(renderClusters(m)).resources;
const listener = (m: Model, name: string) => lds(m).find((l) => l.name === name)!;

/** Prefix match of an IPv4 address against a CIDR range from the config. */
function inRange(ip: string, range: { address_prefix: string; prefix_len: number }): boolean {
  const toInt = (a: string) => a.split(".").reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  if (!ip.includes(".") || !range.address_prefix.includes(".")) return false;
  const mask = range.prefix_len === 0 ? 0 : (~0 << (32 - range.prefix_len)) >>> 0;
  return (toInt(ip) & mask) === (toInt(range.address_prefix) & mask);
}

/**
 * Envoy's documented chain selection for the criteria these listeners use, in its
 * order (FilterChainMatch: destination IP, then server name, then source IP), keeping
 * at each step only the most specific match. Returns the cluster, or null when the
 * connection is closed.
 */
function route(l: Obj, conn: { dst: string; sni: string; src: string }): string | null {
  let chains: Obj[] = l.filter_chains;
  const narrow = (score: (c: Obj) => number) => {
    const scored = chains.map((c) => [c, score(c)] as const).filter(([, s]) => s >= 0);
    const best = Math.max(...scored.map(([, s]) => s));
    chains = scored.filter(([, s]) => s === best).map(([c]) => c);
  };
  const prefixScore = (ranges: Obj[] | undefined, ip: string) =>
    !ranges?.length ? 0 : Math.max(-1, ...ranges.filter((r) => inRange(ip, r as any)).map((r) => 1 + r.prefix_len));
  narrow((c) => prefixScore(c.filter_chain_match?.prefix_ranges, conn.dst));
  narrow((c) => {
    const names: string[] | undefined = c.filter_chain_match?.server_names;
    return !names ? 0 : names.includes(conn.sni) ? 2 : -1;
  });
  narrow((c) => prefixScore(c.filter_chain_match?.source_prefix_ranges, conn.src));
  if (chains.length === 0) return null;
  assert.equal(chains.length, 1, `ambiguous match for ${JSON.stringify(conn)}`);
  // A chain whose network RBAC filter denies everyone closes the connection.
  const rbac = chains[0]!.filters.find((f: Obj) => f.name === "envoy.filters.network.rbac")?.typed_config;
  if (rbac?.rules?.action === "DENY" && Object.values<Obj>(rbac.rules.policies).some((p) => p.principals?.[0]?.any)) return null;
  return tcpProxyOf(chains[0]!).cluster;
}

function tcpProxyOf(chain: Obj): Obj {
  return chain.filters.find((f: Obj) => f.name === "envoy.filters.network.tcp_proxy").typed_config;
}

describe("Envoy config: what matters", () => {
  it("binds the admin interface to 127.0.0.1 only", () => {
    for (const render of [renderEnvoyBootstrap, renderers["check.yaml"]]) {
      assert.deepEqual(YAML.parse(render(fleet)).admin.address.socket_address, { address: "127.0.0.1", port_value: 9901 });
    }
  });

  it("inspects TLS on :443 and has no default chain, so unknown names are closed", () => {
    for (const name of ["https_passthrough", "https_passthrough_v6"]) {
      const l = listener(fleet, name);
      assert.equal(l.listener_filters[0].name, "envoy.filters.listener.tls_inspector");
      assert.equal(l.default_filter_chain, undefined);
      assert.equal(route(l, { dst: "203.0.113.10", sni: "unknown.example.org", src: "198.51.100.1" }), null);
    }
  });

  it("routes each public name from the internet to that service's Caddy, and each only once", () => {
    const l = listener(fleet, "https_passthrough");
    for (const svc of fleet.services.filter((s) => s.exposure === "public")) {
      assert.equal(route(l, { dst: "203.0.113.10", sni: svc.fqdn, src: "198.51.100.1" }), clusterName(svc));
    }
  });

  it("never routes a tailnet-only service from the internet, on either address family", () => {
    const pgadmin = fleet.services.find((s) => s.name === "pgadmin")!;
    assert.equal(
      route(listener(fleet, "https_passthrough"), { dst: "203.0.113.10", sni: pgadmin.fqdn, src: "198.51.100.1" }),
      null,
    );
    // Even a client that reaches the tailnet address from outside the tailnet.
    assert.equal(
      route(listener(fleet, "https_passthrough"), { dst: "100.64.0.1", sni: pgadmin.fqdn, src: "198.51.100.1" }),
      null,
    );
    const v6 = listener(fleet, "https_passthrough_v6");
    assert.ok(v6.filter_chains.every((c: Obj) => !c.filter_chain_match.server_names.includes(pgadmin.fqdn)));
  });

  it("closes tailnet-only services to the fleet's own hosts: every pod connects as its host", () => {
    const l = listener(fleet, "https_passthrough");
    const pgadmin = fleet.services.find((s) => s.name === "pgadmin")!;
    for (const host of fleet.hosts) {
      assert.equal(route(l, { dst: "100.64.0.1", sni: pgadmin.fqdn, src: host.tailnetIP }), null, host.name);
    }
    // A tailnet user still gets in, and pods still reach public services (Authentik) there.
    assert.equal(route(l, { dst: "100.64.0.1", sni: pgadmin.fqdn, src: "100.64.0.7" }), clusterName(pgadmin));
    const authentik = fleet.services.find((s) => s.name === "authentik")!;
    assert.equal(route(l, { dst: "100.64.0.1", sni: authentik.fqdn, src: "100.64.0.1" }), clusterName(authentik));
  });

  it("serves tailnet clients both tailnet-only and public services on the tailnet address", () => {
    const l = listener(fleet, "https_passthrough");
    for (const svc of fleet.services) {
      assert.equal(route(l, { dst: "100.64.0.1", sni: svc.fqdn, src: "100.64.0.7" }), clusterName(svc), svc.name);
    }
  });

  it("reaches every pod at its host's tailnet address, on the ingress host too", () => {
    const endpoints = Object.fromEntries(
      cds(fleet).map((c) => [c.name, c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address]),
    );
    assert.deepEqual(endpoints.caddy_grafana, { address: "100.64.0.1", port_value: 10443 });
    assert.deepEqual(endpoints.caddy_vllm, { address: "100.64.0.2", port_value: 10450 });
  });

  it("sends PROXY protocol v2 to every Caddy", () => {
    const caddyClusters = cds(fleet).filter((c) => c.name.startsWith("caddy_"));
    assert.equal(caddyClusters.length, fleet.services.length);
    for (const c of caddyClusters) {
      assert.equal(
        c.transport_socket.typed_config["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport",
      );
      assert.equal(c.transport_socket.typed_config.config.version, "V2");
    }
  });

  it("only names clusters that exist, from TCP proxies and HTTP routes alike", () => {
    const defined = new Set(cds(fleet).map((c) => c.name));
    const named: string[] = [];
    for (const l of lds(fleet)) {
      for (const chain of l.filter_chains) {
        for (const f of chain.filters) {
          if (f.typed_config.cluster) named.push(f.typed_config.cluster);
          for (const vh of f.typed_config.route_config?.virtual_hosts ?? []) {
            for (const r of vh.routes) if (r.route) named.push(r.route.cluster);
          }
        }
      }
    }
    assert.ok(named.includes("l7_vllm") && named.includes("caddy_grafana"));
    for (const cluster of named) assert.ok(defined.has(cluster), cluster);
  });

  it("redirects every HTTP request to HTTPS", () => {
    const hcm = listener(single, "http_redirect").filter_chains[0].filters[0].typed_config;
    assert.deepEqual(hcm.route_config.virtual_hosts[0].domains, ["*"]);
    assert.deepEqual(hcm.route_config.virtual_hosts[0].routes[0], { match: { prefix: "/" }, redirect: { https_redirect: true } });
  });

  it("adds IPv6 listeners only when the ingress host has a public IPv6 address", () => {
    assert.deepEqual(
      lds(single).map((l) => l.name),
      ["https_passthrough", "http_redirect", "metrics"],
    );
    assert.deepEqual(
      lds(fleet).map((l) => l.name),
      ["https_passthrough", "http_redirect", "https_passthrough_v6", "http_redirect_v6", "l7_vllm", "metrics"],
    );
  });

  it("reads listeners and clusters from the watched files", () => {
    const dyn = YAML.parse(renderEnvoyBootstrap(fleet)).dynamic_resources;
    assert.equal(dyn.lds_config.path_config_source.path, "/etc/envoy/lds.yaml");
    assert.equal(dyn.cds_config.path_config_source.path, "/etc/envoy/cds.yaml");
    assert.equal(dyn.lds_config.path_config_source.watched_directory.path, "/etc/envoy");
  });

  it("validates exactly the live listeners and clusters", () => {
    const check = YAML.parse(renderers["check.yaml"](fleet)).static_resources;
    const strip = (rs: Obj[]) => rs.map(({ "@type": _t, ...rest }) => rest);
    assert.deepEqual(check.listeners, strip(lds(fleet)));
    assert.deepEqual(check.clusters, strip(cds(fleet)));
  });

  it("does not depend on the order of services", () => {
    const shuffled = { ...fleet, services: [...fleet.services].reverse() };
    for (const render of Object.values(renderers)) assert.equal(render(shuffled), render(fleet));
  });
});

describe("limits at the edge", () => {
  // Chains that proxy; the ones that close fleet sources (fleetDenyChain) have nothing to limit.
  const chainsOf = (m: Model) =>
    lds(m)
      .flatMap((l) => (l.name.startsWith("https_passthrough") ? (l.filter_chains as Obj[]) : []))
      .filter((c) => !c.name.endsWith("_fleet_denied"));
  const rateLimitOf = (chain: Obj): Obj =>
    chain.filters.find((f: Obj) => f.name === "envoy.filters.network.local_ratelimit").typed_config;
  const clusterOf = (m: Model, name: string): Obj => cds(m).find((c) => c.name === name)!;
  const tune = (limits: Partial<Model["services"][number]["limits"]>): Model => ({
    ...fleet,
    services: fleet.services.map((s) => (s.name === "grafana" ? { ...s, limits: { ...s.limits, ...limits } } : s)),
  });

  it("rate-limits new connections on every SNI chain, before proxying", () => {
    for (const chain of chainsOf(fleet)) {
      assert.deepEqual(
        chain.filters.map((f: Obj) => f.name),
        ["envoy.filters.network.local_ratelimit", "envoy.filters.network.tcp_proxy"],
        chain.name,
      );
      assert.deepEqual(rateLimitOf(chain).token_bucket, { max_tokens: 200, tokens_per_fill: 50, fill_interval: "1s" });
      assert.equal(tcpProxyOf(chain).idle_timeout, "3600s");
    }
  });

  it("gives a service one rate budget and one connection cap, however many chains carry it", () => {
    // grafana is public on a host with IPv6: chains on public IPv4, on the tailnet address and on IPv6.
    const grafana = chainsOf(fleet).filter((c) => tcpProxyOf(c).cluster === "caddy_grafana");
    assert.equal(grafana.length, 3);
    // Envoy shares one token bucket between local_ratelimit filters with the same
    // share_key and an identical token_bucket (LocalRateLimit.share_key).
    const buckets = new Set(grafana.map((c) => JSON.stringify([rateLimitOf(c).share_key, rateLimitOf(c).token_bucket])));
    assert.equal(buckets.size, 1, [...buckets].join(" / "));
    // No other service's chain uses that key: each service has a budget of its own.
    const others = chainsOf(fleet).filter((c) => tcpProxyOf(c).cluster !== "caddy_grafana");
    assert.ok(others.length > 0);
    for (const c of others) assert.notEqual(rateLimitOf(c).share_key, rateLimitOf(grafana[0]!).share_key, c.name);
    // The connection cap is the one cluster's circuit breaker, not a filter per chain
    // (a connection_limit filter counts only its own chain's connections).
    for (const c of chainsOf(fleet)) assert.ok(!c.filters.some((f: Obj) => f.name === "envoy.filters.network.connection_limit"));
    assert.deepEqual(clusterOf(fleet, "caddy_grafana").circuit_breakers.thresholds, [
      { priority: "DEFAULT", max_connections: 1024, max_pending_requests: 1024, track_remaining: true },
    ]);
  });

  it("lets any configured connection limit work, above Envoy's default of 1024 too", () => {
    const cb = clusterOf(tune({ maxConnections: 20000 }), "caddy_grafana").circuit_breakers.thresholds[0];
    assert.equal(cb.max_connections, 20000);
    // A lower threshold elsewhere would cap it again: none is below the configured limit.
    assert.equal(cb.max_pending_requests, 20000);
    assert.equal(Object.keys(cb).filter((k) => k.startsWith("max_") && cb[k] < 20000).length, 0);
  });

  it("takes each service's own limits, leaving the others' untouched", () => {
    const tuned = tune({ maxConnections: 10, connectionsPerSecond: 2, burst: 5, idleTimeout: "60s" });
    for (const chain of chainsOf(tuned)) {
      const grafana = tcpProxyOf(chain).cluster === "caddy_grafana";
      assert.equal(rateLimitOf(chain).token_bucket.tokens_per_fill, grafana ? 2 : 50, chain.name);
      assert.equal(rateLimitOf(chain).token_bucket.max_tokens, grafana ? 5 : 200, chain.name);
      assert.equal(tcpProxyOf(chain).idle_timeout, grafana ? "60s" : "3600s", chain.name);
    }
    for (const c of cds(tuned).filter((c) => String(c.name).startsWith("caddy_")))
      assert.equal(c.circuit_breakers.thresholds[0].max_connections, c.name === "caddy_grafana" ? 10 : 1024, c.name);
  });

  it("bounds the TLS handshake and the host's total connections", () => {
    assert.equal(listener(fleet, "https_passthrough").listener_filters_timeout, "5s");
    const monitors = YAML.parse(renderEnvoyBootstrap(fleet)).overload_manager.resource_monitors;
    assert.equal(monitors[0].typed_config.max_active_downstream_connections, 50000);
    const slow = { ...fleet, envoy: { ...fleet.envoy, tlsHandshakeTimeout: "2s" } };
    assert.equal(listener(slow, "https_passthrough").listener_filters_timeout, "2s");
  });
});

describe("Envoy L7 for inference backends", () => {
  const l7 = () => listener(fleet, "l7_vllm");
  const hcm = () => l7().filter_chains[0].filters[0].typed_config;
  const route = () => hcm().route_config.virtual_hosts[0].routes[0].route;
  const cluster = () => cds(fleet).find((c) => c.name === "l7_vllm")!;

  /**
   * The files on the ingress host that a DataSource `filename` can name: each `l7`
   * service's credential file, with the content IngressHost installs there from that
   * service's key.
   */
  const hostFiles = new Map(
    fleet.services.filter((s) => s.l7).map((s) => [l7CredentialPath(s), l7CredentialFile(s, keyOf(s.name))]),
  );

  /**
   * Envoy's basic_auth filter on one request's headers (envoy source
   * source/extensions/filters/http/basic_auth/basic_auth_filter.cc): `users` is read
   * from its DataSource, one `user:hash` a line, empty lines and `#` comments skipped;
   * the credential header must be `Basic base64(user:password)`, the user one of
   * those, and `{SHA}` + base64(SHA-1(password)) that user's hash.
   */
  function basicAuthLetsIn(headers: Record<string, string>): boolean {
    const filter = hcm().http_filters.find((f: Obj) => f.name === "envoy.filters.http.basic_auth").typed_config;
    const value = headers[filter.authentication_header ?? "authorization"];
    if (!value?.startsWith("Basic ")) return false;
    const decoded = Buffer.from(value.slice(6), "base64").toString();
    const [user, ...rest] = decoded.split(":");
    const htpasswd = hostFiles.get(filter.users.filename);
    assert.ok(htpasswd !== undefined, `users names ${filter.users.filename}, which nothing installs`);
    const users = new Map<string, string>(
      htpasswd
        .split("\n")
        .filter((line) => line !== "" && !line.startsWith("#"))
        .map((line) => line.split(":") as [string, string]),
    );
    return users.get(user!) === `{SHA}${createHash("sha1").update(rest.join(":")).digest("base64")}`;
  }

  it("lets in only requests carrying the credential of this service's Caddy, which it then removes", () => {
    const vllm = fleet.services.find((s) => s.name === "vllm")!;
    const filters = hcm().http_filters.map((f: Obj) => f.name);
    assert.deepEqual(filters, ["envoy.filters.http.basic_auth", "envoy.filters.http.router"], "checked before routing");
    assert.equal(basicAuthLetsIn({ [L7_CREDENTIAL_HEADER]: l7Credential(vllm, keyOf("vllm")) }), true);
    // Another pod on the Caddy's host connects from the same address, but has no key.
    for (const headers of <Record<string, string>[]>[
      {},
      { [L7_CREDENTIAL_HEADER]: l7Credential(vllm, "guessed") },
      { [L7_CREDENTIAL_HEADER]: l7Credential({ ...vllm, name: "grafana" }, keyOf("grafana")) },
      { authorization: l7Credential(vllm, keyOf("vllm")) },
    ]) {
      assert.equal(basicAuthLetsIn(headers), false, JSON.stringify(headers));
    }
    assert.deepEqual(hcm().route_config.virtual_hosts[0].routes[0].request_headers_to_remove, [L7_CREDENTIAL_HEADER]);
    // The key is nowhere in Envoy's files, not even its digest: that is in the
    // credential file, installed from the key at `up`, so these are known at preview.
    const digest = l7CredentialFile(vllm, keyOf("vllm")).split("{SHA}")[1]!.trim();
    for (const text of [renderListeners(fleet), renderers["check.yaml"](fleet)]) {
      assert.ok(!text.includes(digest));
      assert.ok(!text.includes(keyOf("vllm")));
      assert.ok(!text.includes(l7Credential(vllm, keyOf("vllm")).slice(6)));
    }
  });

  it("listens on the ingress host's tailnet address only, for the Caddy host only", () => {
    assert.deepEqual(l7().address.socket_address, { address: "100.64.0.1", port_value: 20450 });
    assert.deepEqual(l7().filter_chains[0].filter_chain_match.source_prefix_ranges, [
      { address_prefix: "100.64.0.2", prefix_len: 32 },
    ]);
  });

  it("has no 15 s route timeout: request and route timeouts are off, idle timeouts explicit", () => {
    assert.equal(hcm().request_timeout, "0s");
    assert.equal(hcm().stream_idle_timeout, "300s");
    assert.equal(route().timeout, "0s");
    assert.equal(route().idle_timeout, "300s");
  });

  it("retries only when a connection could not be made", () => {
    assert.deepEqual(route().retry_policy, { retry_on: "connect-failure", num_retries: 2 });
  });

  it("balances over every backend with STRICT_DNS, health-checks them over HTTP, and limits them", () => {
    const c = cluster();
    assert.equal(c.type, "STRICT_DNS");
    assert.deepEqual(
      c.load_assignment.endpoints[0].lb_endpoints.map((e: Obj) => e.endpoint.address.socket_address),
      [
        { address: "100.64.0.2", port_value: 8001 },
        { address: "100.64.0.2", port_value: 8002 },
      ],
    );
    assert.deepEqual(c.health_checks[0].http_health_check, { path: "/health" });
    assert.deepEqual(
      [
        c.health_checks[0].interval,
        c.health_checks[0].timeout,
        c.health_checks[0].unhealthy_threshold,
        c.health_checks[0].healthy_threshold,
      ],
      ["10s", "5s", 3, 2],
    );
    assert.equal(c.circuit_breakers.thresholds[0].max_requests, 1024);
  });

  it("ejects a backend only for consecutive errors, never for being slow", () => {
    const od = cluster().outlier_detection;
    assert.equal(od.consecutive_5xx, 5);
    assert.equal(od.enforcing_success_rate, 0);
  });

  it("takes every threshold from the service's settings", () => {
    const vllm = fleet.services.find((s) => s.name === "vllm")!;
    const tuned: Model = {
      ...fleet,
      services: fleet.services.map((s) =>
        s === vllm
          ? {
              ...s,
              l7: {
                ...s.l7!,
                listenPort: 21000,
                streamIdleTimeout: "900s",
                retries: 0,
                healthCheck: { interval: "3s", timeout: "1s", unhealthyThreshold: 2, healthyThreshold: 1 },
                circuitBreakers: { maxConnections: 8, maxPendingRequests: 4, maxRequests: 16 },
                outlierDetection: { consecutive5xx: 10, interval: "20s", baseEjectionTime: "60s", maxEjectionPercent: 10 },
              },
            }
          : s,
      ),
    };
    const l = lds(tuned).find((x) => x.name === "l7_vllm")!;
    const c = cds(tuned).find((x) => x.name === "l7_vllm")!;
    assert.equal(l.address.socket_address.port_value, 21000);
    assert.equal(l.filter_chains[0].filters[0].typed_config.stream_idle_timeout, "900s");
    assert.equal(
      l.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.retry_policy.num_retries,
      0,
    );
    assert.deepEqual(c.circuit_breakers.thresholds[0].max_connections, 8);
    assert.equal(c.health_checks[0].interval, "3s");
    assert.equal(c.outlier_detection.max_ejection_percent, 10);
  });
});

describe("seeing into the edge: access logs and metrics", () => {
  const stdoutLog = (logs: Obj[] | undefined): Obj => {
    assert.equal(logs?.length, 1);
    const [log] = logs as [Obj];
    assert.equal(log.name, "envoy.access_loggers.stdout");
    assert.equal(log.typed_config["@type"], "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog");
    return log.typed_config.log_format;
  };
  const hcmOf = (l: Obj): Obj => l.filter_chains[0].filters[0].typed_config;

  it("logs every :443 connection once, as JSON, with who asked for which name, where it went and why it closed", () => {
    for (const name of ["https_passthrough", "https_passthrough_v6"]) {
      const l = listener(fleet, name);
      // On the listener, not in each chain: Envoy logs there when any connection closes,
      // also one that matched no chain (an unknown name), so each connection is one line.
      const format = stdoutLog(l.access_log);
      for (const chain of l.filter_chains)
        assert.ok(
          chain.filters.every((f: Obj) => f.typed_config.access_log === undefined),
          chain.name,
        );
      // What an operator needs from each line, as Envoy's access-log command operators
      // (docs/root/configuration/observability/access_log/usage.rst).
      const operators = Object.values(format.json_format as Record<string, string>);
      for (const needed of [
        "DOWNSTREAM_REMOTE_ADDRESS", // who
        "REQUESTED_SERVER_NAME", // which name
        "FILTER_CHAIN_NAME", // which chain took it
        "UPSTREAM_CLUSTER", // where it went
        "BYTES_RECEIVED",
        "BYTES_SENT",
        "DURATION",
        "RESPONSE_FLAGS", // why it ended: NR, UO, URX, UF, …
        "CONNECTION_TERMINATION_DETAILS",
      ])
        assert.ok(operators.includes(`%${needed}%`), `${name} logs %${needed}%`);
      assert.equal(format.json_format.log, name);
      // Every other value is a single command operator, so each field is a JSON value of its own.
      for (const [field, value] of Object.entries(format.json_format as Record<string, string>))
        if (field !== "log") assert.match(value, /^%[A-Z_]+(\([^)]*\))?%$/, field);
      assert.deepEqual(format.json_format_options, { sort_properties: true });
    }
  });

  it("logs every request on the :80 redirect and the L7 listeners, without query strings", () => {
    for (const name of ["http_redirect", "http_redirect_v6", "l7_vllm"]) {
      const format = stdoutLog(hcmOf(listener(fleet, name)).access_log).json_format;
      assert.equal(format.log, name);
      assert.equal(format.path, "%PATH(NQ)%", "the query string may hold credentials");
      assert.ok(!JSON.stringify(format).includes("REQ(:PATH)"));
      for (const field of ["client", "authority", "status", "response_flags", "cluster", "duration_ms"])
        assert.ok(field in format);
    }
  });

  it("writes the log to the journal through the unit's log driver", () => {
    assert.match(renderEnvoyContainerUnit(fleet), /^LogDriver=journald$/m);
  });

  it("serves /stats/prometheus, and only that, on the ingress host's tailnet address to tailnet sources", () => {
    const l = listener(fleet, "metrics");
    const tailnetIP = fleet.hosts.find((h) => h.ingress)!.tailnetIP;
    assert.deepEqual(l.address, { socket_address: { address: tailnetIP, port_value: 9902 } });
    assert.deepEqual(
      l.filter_chains[0].filter_chain_match.source_prefix_ranges.map((r: Obj) => `${r.address_prefix}/${r.prefix_len}`),
      ["100.64.0.0/10", "fd7a:115c:a1e0::/48"],
    );
    const routes: Obj[] = hcmOf(l).route_config.virtual_hosts.flatMap((v: Obj) => v.routes);
    const toAdmin = routes.filter((r) => r.route?.cluster === "envoy_admin");
    assert.deepEqual(toAdmin, [
      {
        match: { path: "/stats/prometheus", headers: [{ name: ":method", string_match: { exact: "GET" } }] },
        route: { cluster: "envoy_admin" },
      },
    ]);
    // Every other request (/quitquitquit, /config_dump, …) gets a 404 from Envoy itself.
    assert.deepEqual(routes.at(-1), { match: { prefix: "/" }, direct_response: { status: 404 } });
    // The admin itself stays on loopback; the metrics route reaches it there.
    const admin = cds(fleet).find((c) => c.name === "envoy_admin")!;
    assert.deepEqual(admin.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address, {
      socket_address: { address: "127.0.0.1", port_value: 9901 },
    });
    assert.deepEqual(YAML.parse(renderEnvoyBootstrap(fleet)).admin.address.socket_address.address, "127.0.0.1");
  });

  it("takes the metrics port from the config", () => {
    const moved: Model = { ...fleet, envoy: { ...fleet.envoy, metricsPort: 19902 } };
    assert.equal(listener(moved, "metrics").address.socket_address.port_value, 19902);
  });
});
