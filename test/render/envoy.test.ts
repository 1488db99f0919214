import assert from "node:assert/strict";
import { describe, it } from "node:test";
import YAML from "yaml";
import {
  clusterName,
  renderClusters,
  renderEnvoyBootstrap,
  renderListeners,
  renderValidationBootstrap,
} from "../../components/ingress/render";
import type { Model } from "../../model/types";
import { fixtures, fleet, single } from "../fixtures/models";
import { assertGolden, pruneGolden } from "../golden";

type Obj = Record<string, any>;

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
  return chains[0]!.filters[0].typed_config.cluster;
}

describe("Envoy config: what matters", () => {
  it("binds the admin interface to 127.0.0.1 only", () => {
    for (const render of [renderEnvoyBootstrap, renderValidationBootstrap]) {
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

  it("serves tailnet clients both tailnet-only and public services on the tailnet address", () => {
    const l = listener(fleet, "https_passthrough");
    for (const svc of fleet.services) {
      assert.equal(route(l, { dst: "100.64.0.1", sni: svc.fqdn, src: "100.64.0.7" }), clusterName(svc), svc.name);
    }
  });

  it("reaches a pod on the ingress host on loopback and a remote pod at its host's tailnet address", () => {
    const endpoints = Object.fromEntries(
      cds(fleet).map((c) => [c.name, c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address]),
    );
    assert.deepEqual(endpoints.caddy_grafana, { address: "127.0.0.1", port_value: 10443 });
    assert.deepEqual(endpoints.caddy_vllm, { address: "100.64.0.2", port_value: 10450 });
  });

  it("sends PROXY protocol v2 to every Caddy", () => {
    for (const c of cds(fleet)) {
      assert.equal(
        c.transport_socket.typed_config["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport",
      );
      assert.equal(c.transport_socket.typed_config.config.version, "V2");
    }
  });

  it("only names clusters that exist", () => {
    const defined = new Set(cds(fleet).map((c) => c.name));
    for (const l of lds(fleet)) {
      for (const chain of l.filter_chains) {
        const cluster = chain.filters[0].typed_config.cluster;
        if (cluster !== undefined) assert.ok(defined.has(cluster), cluster);
      }
    }
  });

  it("redirects every HTTP request to HTTPS", () => {
    const hcm = listener(single, "http_redirect").filter_chains[0].filters[0].typed_config;
    assert.deepEqual(hcm.route_config.virtual_hosts[0].domains, ["*"]);
    assert.deepEqual(hcm.route_config.virtual_hosts[0].routes[0], { match: { prefix: "/" }, redirect: { https_redirect: true } });
  });

  it("adds IPv6 listeners only when the ingress host has a public IPv6 address", () => {
    assert.deepEqual(
      lds(single).map((l) => l.name),
      ["https_passthrough", "http_redirect"],
    );
    assert.deepEqual(
      lds(fleet).map((l) => l.name),
      ["https_passthrough", "http_redirect", "https_passthrough_v6", "http_redirect_v6"],
    );
  });

  it("reads listeners and clusters from the watched files", () => {
    const dyn = YAML.parse(renderEnvoyBootstrap(fleet)).dynamic_resources;
    assert.equal(dyn.lds_config.path_config_source.path, "/etc/envoy/lds.yaml");
    assert.equal(dyn.cds_config.path_config_source.path, "/etc/envoy/cds.yaml");
    assert.equal(dyn.lds_config.path_config_source.watched_directory.path, "/etc/envoy");
  });

  it("validates exactly the live listeners and clusters", () => {
    const check = YAML.parse(renderValidationBootstrap(fleet)).static_resources;
    const strip = (rs: Obj[]) => rs.map(({ "@type": _t, ...rest }) => rest);
    assert.deepEqual(check.listeners, strip(lds(fleet)));
    assert.deepEqual(check.clusters, strip(cds(fleet)));
  });

  it("does not depend on the order of services", () => {
    const shuffled = { ...fleet, services: [...fleet.services].reverse() };
    for (const render of Object.values(renderers)) assert.equal(render(shuffled), render(fleet));
  });
});
