/**
 * Pieces of the end-to-end test (test/e2e/stack.test.ts) that are not assertions:
 * prerequisites, the stack config for the harness's hosts, Envoy's routes as the
 * rendered LDS/CDS describe them, and connections made from inside a host's network
 * namespace (where Envoy sits) with tools/cmd/test-standin.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import YAML from "yaml";
import type { TestHost, TestHosts } from "./hosts";
import { missingPrerequisites, startHosts } from "./hosts";
import { pulumiMissing } from "./pulumi-project";
import { IMAGES, testImages } from "./test-images";
import { toolPath, type ToolName } from "./tools";

export const DOMAIN = "e2e.example.org";
export const ZONE_ID = "e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0";

/** Everything missing for the end-to-end tests; empty when they can run. */
export function e2eMissing(): string[] {
  const missing = missingPrerequisites();
  for (const tool of ["caddy", "caddy-plain", "envoy-validate", "test-standin", "test-registry"] as ToolName[]) {
    if (!toolPath(tool)) missing.push(`${tool}: run bash scripts/build-tools.sh`);
  }
  const pulumi = pulumiMissing();
  if (pulumi) missing.push(pulumi);
  return missing;
}

/** Boots test hosts `names`, each with its registry serving the test images (test-images.ts). */
export function startE2eHosts(names: readonly string[]): Promise<TestHosts> {
  const bin = (name: ToolName) => toolPath(name)!;
  return startHosts(names, {
    registry: bin("test-registry"),
    images: testImages({
      caddy: bin("caddy"),
      caddyPlain: bin("caddy-plain"),
      standin: bin("test-standin"),
      envoyValidate: bin("envoy-validate"),
    }),
  });
}

export interface ServiceSpec {
  host: string;
  image: string;
  port: number;
  caddyPort: number;
  exposure?: "public" | "tailnet";
  auth?: { groups: string[] };
  publicPaths?: string[];
  env?: Record<string, string>;
  secrets?: string[];
  tokenRotation?: string;
}

/** The stack: ingress host `edge` plus `app`; a public, a protected, a tailnet-only service, and Authentik's stand-in. */
export function e2eServices(): Record<string, ServiceSpec> {
  return {
    // Two secrets: the first deploy creates both in one session.
    web: { host: "app", image: IMAGES.echo, port: 8080, caddyPort: 10443, secrets: ["APP_SECRET", "SESSION_KEY"] },
    docs: {
      host: "edge",
      image: IMAGES.echo,
      port: 8080,
      caddyPort: 10444,
      auth: { groups: ["admins"] },
      publicPaths: ["/health"],
      // Unchanged by the reload test's change: an unchanged secret must not restart the pod.
      secrets: ["DOCS_SECRET"],
    },
    intra: { host: "app", image: IMAGES.echo, port: 8080, caddyPort: 10445, exposure: "tailnet" },
    authentik: { host: "edge", image: IMAGES.outpost, port: 9000, caddyPort: 10446 },
  };
}

/**
 * `n` services spread over `hostNames` in turn, with the mix of features a real stack
 * has: the first is Authentik's outpost stand-in (on the first host), every third of
 * the others is protected (with a public path), every seventh tailnet-only, every
 * fourth has a generated secret and an environment variable. `imageOf` picks each
 * app's image (an index among the apps).
 */
export function generatedServices(
  n: number,
  hostNames: readonly string[],
  imageOf: (i: number) => string = () => IMAGES.echo,
): Record<string, ServiceSpec> {
  const perHost = new Map<string, number>();
  const caddyPort = (host: string) => {
    const slot = perHost.get(host) ?? 0;
    perHost.set(host, slot + 1);
    return 11000 + slot;
  };
  const services: Record<string, ServiceSpec> = {
    authentik: { host: hostNames[0]!, image: IMAGES.outpost, port: 9000, caddyPort: caddyPort(hostNames[0]!) },
  };
  for (let i = 0; i < n - 1; i++) {
    const host = hostNames[i % hostNames.length]!;
    const svc: ServiceSpec = { host, image: imageOf(i), port: 8080, caddyPort: caddyPort(host) };
    if (i % 3 === 0) Object.assign(svc, { auth: { groups: ["staff"] }, publicPaths: ["/health"] });
    if (i % 7 === 0) svc.exposure = "tailnet";
    if (i % 4 === 0) Object.assign(svc, { secrets: ["APP_SECRET"], env: { LOG_LEVEL: "info" } });
    services[`svc-${i}`] = svc;
  }
  return services;
}

export function e2eConfig(
  hosts: TestHosts,
  cloudflareBaseUrl: string,
  services: Record<string, ServiceSpec> = e2eServices(),
  overrides: { caddy?: string; issuer?: "internal" | "cloudflare-dns"; ingress?: string } = {},
): Record<string, unknown> {
  const host = (h: TestHost, ingress: boolean) => ({
    ...(ingress ? { ingress: true, publicIPv4: h.publicAddress } : {}),
    tailnetIP: h.address,
    ssh: { host: h.address, user: hosts.user, hostKey: h.hostKey },
  });
  const ingress = overrides.ingress ?? "edge";
  const names = [
    ingress,
    ...Object.keys(hosts.hosts)
      .filter((n) => n !== ingress)
      .sort(),
  ];
  return {
    "cloudflare:baseUrl": cloudflareBaseUrl,
    "edgeplane:domain": DOMAIN,
    "edgeplane:cloudflare": { zoneId: ZONE_ID },
    "edgeplane:tls": { issuer: overrides.issuer ?? "internal" },
    "edgeplane:images": { caddy: overrides.caddy ?? IMAGES.caddy, envoy: IMAGES.envoy },
    "edgeplane:hosts": Object.fromEntries(names.map((n) => [n, host(hosts.hosts[n]!, n === ingress)])),
    "edgeplane:services": services,
    "edgeplane:authentik": { service: "authentik" },
  };
}

/** One :443 filter chain of the rendered listeners, with its cluster's endpoint. */
export interface Route {
  name: string;
  serverNames: string[];
  destinations: string[];
  sources: string[];
  /** host:port of the cluster's endpoint; empty for a chain that only closes the connection. */
  upstream: string;
  proxyProtocol: boolean;
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The IPv4 :443 listener's chains, from /etc/envoy/lds.yaml and cds.yaml as installed. */
export function routesFrom(lds: string, cds: string): Route[] {
  const clusters = new Map<string, Obj>(((YAML.parse(cds) as Obj).resources as Obj[]).map((c) => [c.name as string, c]));
  const listener = ((YAML.parse(lds) as Obj).resources as Obj[]).find(
    (l) => l.address?.socket_address?.port_value === 443 && l.address.socket_address.address === "0.0.0.0",
  );
  if (!listener) throw new Error("no IPv4 :443 listener in lds.yaml");
  const prefixes = (ranges: Obj[] | undefined) => (ranges ?? []).map((r) => `${r.address_prefix}/${r.prefix_len}`);
  return (listener.filter_chains as Obj[]).map((chain) => {
    const filters = chain.filters as Obj[];
    const match = {
      name: chain.name as string,
      serverNames: chain.filter_chain_match?.server_names ?? [],
      destinations: prefixes(chain.filter_chain_match?.prefix_ranges),
      sources: prefixes(chain.filter_chain_match?.source_prefix_ranges),
    };
    const proxy = filters.find((f) => f.name === "envoy.filters.network.tcp_proxy");
    // A chain without a proxy (an RBAC filter that denies all) closes the connection.
    if (!proxy) return { ...match, upstream: "", proxyProtocol: false };
    const cluster = clusters.get(proxy.typed_config?.cluster);
    if (!cluster) throw new Error(`chain ${chain.name}: no cluster`);
    const address = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    return {
      ...match,
      upstream: `${address.address}:${address.port_value}`,
      proxyProtocol: cluster.transport_socket?.name === "envoy.transport_sockets.upstream_proxy_protocol",
    };
  });
}

/** A test-standin process run in a host's network namespace, stopped by stop(). */
export interface Helper {
  stop(): void;
}

function startInNetns(host: TestHost, args: string[]): Promise<Helper & { proc: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const proc = spawn("nsenter", [`--net=/run/netns/${host.netns}`, "--", toolPath("test-standin")!, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    proc.stderr.on("data", (d) => (err += d));
    proc.stdout.once("data", () => resolve({ proc, stop: () => proc.kill() }));
    proc.once("exit", (code) => reject(new Error(`test-standin ${args[0]} exited ${code}: ${err}`)));
  });
}

/**
 * A unix socket on this machine whose connections are opened to `target` from inside
 * `host`'s network namespace: the test speaks through it as Envoy on that host would.
 */
export async function forwarder(host: TestHost, dir: string, target: string): Promise<Helper & { port: number }> {
  const socket = path.join(dir, `fwd-${host.name}-${target.replace(/[^0-9a-z]/gi, "_")}.sock`);
  const helper = await startInNetns(host, ["forward", socket, target]);
  // A loopback port in front of the socket, so clients speak TLS over TCP as usual.
  const server = net.createServer((client) => {
    const upstream = net.connect({ path: socket });
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, stop: () => (server.close(), helper.stop(), fs.rmSync(socket, { force: true })) };
}

/** The Envoy stand-in for the pods' own calls through the ingress (see tools/cmd/test-standin/net.go). */
export async function sniRouter(host: TestHost, dir: string, routes: Route[]): Promise<Helper> {
  const file = path.join(dir, "routes.json");
  fs.writeFileSync(file, JSON.stringify(routes));
  return startInNetns(host, ["sni", file, "0.0.0.0:443"]);
}

/** Which of `addresses` (host:port) accept a TCP connection from inside `host`'s namespace. */
export async function openPorts(host: TestHost, addresses: string[]): Promise<string[]> {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn("nsenter", [`--net=/run/netns/${host.netns}`, "--", toolPath("test-standin")!, "probe", ...addresses]);
    let s = "";
    p.stdout.on("data", (d) => (s += d));
    p.once("exit", (code) => (code === 0 ? resolve(s) : reject(new Error(`probe exited ${code}`))));
  });
  return out
    .split("\n")
    .filter((l) => l.endsWith(" open"))
    .map((l) => l.split(" ")[0]!);
}

/**
 * The DNS tokens in the config a pod's Caddy is running now, read from its admin socket
 * (`/run/caddy-admin.sock`, in the Caddy container's own /run) through /proc on this
 * machine, since the image has no client to ask it with. The process is found by the
 * container's ID in its cgroup, which no other machine's container shares.
 */
export async function runningDnsTokens(containerId: string): Promise<string[]> {
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cgroup: string;
    let cmdline: string;
    try {
      cgroup = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8");
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (!cgroup.includes(containerId) || !cmdline.startsWith("caddy\0run\0")) continue;
    const config = await new Promise<string>((resolve, reject) => {
      http
        .get({ socketPath: `/proc/${pid}/root/run/caddy-admin.sock`, path: "/config/" }, (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body}`))));
        })
        .on("error", reject);
    });
    const tokens: string[] = [];
    JSON.parse(config, (key, value: unknown) => {
      if (key === "api_token" && typeof value === "string") tokens.push(value);
      return value;
    });
    return tokens;
  }
  throw new Error(`no caddy process of container ${containerId.slice(0, 12)}`);
}
