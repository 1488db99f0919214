/**
 * The platform's invariants as plain functions over resources ({type, name, props}),
 * so the policy pack (policy/index.ts) and its tests run exactly the same checks.
 * Each returns the violations it found, each naming the resource and what is wrong.
 *
 * They judge resources, not the code that made them: a record, token or command added
 * by hand in index.ts, or by a future component, is held to the same rules.
 */

/** What a rule sees of a resource: the shape Pulumi's policy analyzer hands over. */
export interface Resource {
  readonly type: string;
  readonly name: string;
  readonly props: Record<string, any>;
}

export const DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord";
export const API_TOKEN = "cloudflare:index/apiToken:ApiToken";
export const COMMAND_TYPES = ["command:remote:Command", "command:local:Command"];
export const INGRESS_HOST = "edgeplane:index:IngressHost";
export const REMOTE_FILE = "edgeplane:index:RemoteFile";
export const SIDECAR_POD = "edgeplane:index:SidecarPod";

/** Cloudflare's "DNS Write" and "Zone Read" permission groups (Zone Read: cloudflare-docs fundamentals/api/how-to/create-via-api; both IDs as Cloudflare's permission-groups API lists them). */
export const DNS_WRITE = "4755a26eedb94da69e1066d98aa820be";
export const ZONE_READ = "c8fed203ed3043cba015a93ad1616f1f";

/** Where the stack's records may point: the ingress host's public and tailnet addresses. */
export interface IngressAddresses {
  readonly publicIPv4: string | null;
  readonly publicIPv6: string | null;
  readonly tailnetIP: string;
}

/** The ingress addresses, from the stack's one IngressHost component. */
export function ingressAddresses(resources: readonly Resource[]): IngressAddresses | string {
  const ingress = resources.filter((r) => r.type === INGRESS_HOST);
  if (ingress.length !== 1)
    return `the stack has ${ingress.length} ${INGRESS_HOST} components; records can be checked only against exactly one`;
  const p = ingress[0]!.props;
  return { publicIPv4: p.publicIPv4 ?? null, publicIPv6: p.publicIPv6 ?? null, tailnetIP: p.tailnetIP };
}

/**
 * Records are never proxied (Envoy must see the client's own TLS ClientHello) and point
 * only at the ingress host: its public address, or its tailnet address for tailnet
 * services. The only other records are the `_acme-challenge` CNAMEs of challenge
 * delegation.
 */
export function checkDnsRecord(record: Resource, ingress: IngressAddresses): string[] {
  if (record.type !== DNS_RECORD) return [];
  const { type, name, content, proxied } = record.props;
  const where = `DNS record ${record.name} (${type} ${name})`;
  const problems: string[] = [];
  if (proxied === true) problems.push(`${where}: is proxied; Envoy must receive the client's TLS directly (proxied: false)`);
  if (type === "CNAME") {
    if (!String(name).startsWith("_acme-challenge."))
      problems.push(`${where}: the only CNAMEs allowed are _acme-challenge names delegated to the challenge zone`);
  } else if (type === "A") {
    const allowed = [ingress.publicIPv4, ingress.tailnetIP].filter(Boolean);
    if (!allowed.includes(content))
      problems.push(`${where}: points at ${content}, not at the ingress host (${allowed.join(" or ")})`);
  } else if (type === "AAAA") {
    if (content !== ingress.publicIPv6)
      problems.push(
        `${where}: points at ${content}, not at the ingress host (${ingress.publicIPv6 ?? "it has no IPv6 address"})`,
      );
  } else {
    problems.push(`${where}: type ${type} is not one the platform creates (A, AAAA, _acme-challenge CNAME)`);
  }
  return problems;
}

/** A token may do DNS on exactly one zone: DNS Write and Zone Read, allowed, on one zone resource. */
export function checkApiToken(token: Resource): string[] {
  if (token.type !== API_TOKEN) return [];
  const where = `API token ${token.name}`;
  const policies: any[] = token.props.policies ?? [];
  if (policies.length !== 1) return [`${where}: has ${policies.length} policies; a pod token has exactly one`];
  const policy = policies[0];
  const problems: string[] = [];
  if (policy.effect !== "allow") problems.push(`${where}: its policy's effect is ${policy.effect}, not allow`);
  const groups = new Set<string>((policy.permissionGroups ?? []).map((g: { id: string }) => g.id));
  const extra = [...groups].filter((id) => id !== DNS_WRITE && id !== ZONE_READ).sort();
  if (extra.length > 0) problems.push(`${where}: grants permission groups beyond DNS Write and Zone Read: ${extra.join(", ")}`);
  if (!groups.has(DNS_WRITE) || !groups.has(ZONE_READ))
    problems.push(`${where}: must grant exactly DNS Write and Zone Read (it lacks one)`);
  let resources: Record<string, unknown>;
  try {
    resources = typeof policy.resources === "string" ? JSON.parse(policy.resources) : (policy.resources ?? {});
  } catch {
    return [...problems, `${where}: its resources are not JSON: ${String(policy.resources)}`];
  }
  const keys = Object.keys(resources);
  const oneZone =
    keys.length === 1 && /^com\.cloudflare\.api\.account\.zone\.[0-9a-f]{32}$/.test(keys[0]!) && resources[keys[0]!] === "*";
  if (!oneZone)
    problems.push(
      `${where}: must be limited to one zone ("com.cloudflare.api.account.zone.<id>": "*"), got ${JSON.stringify(resources)}`,
    );
  return problems;
}

/** Material that must never be in a command's text (it goes on stdin instead). */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key"],
  [/\bAuthorization:\s*Bearer\s+[A-Za-z0-9._~+/=-]{20,}/i, "a bearer token"],
  [
    /\b(CF_API_TOKEN|CLOUDFLARE_API_TOKEN|[A-Z_]*(PASSWORD|SECRET|TOKEN)[A-Z_]*)=(?!"?\$)['"]?[A-Za-z0-9._~+/=-]{16,}/,
    "a secret assigned inline",
  ],
  [/\bpodman secret create\b(?![^\n]*\s-\s*(>|$|\n|&|;|\|))/m, "a podman secret created from something other than stdin"],
];

/** Commands run on hosts must not carry secrets in their create, update or delete text. */
export function checkCommand(cmd: Resource): string[] {
  if (!COMMAND_TYPES.includes(cmd.type)) return [];
  const problems: string[] = [];
  for (const key of ["create", "update", "delete"]) {
    const text = cmd.props[key];
    if (typeof text !== "string") continue;
    for (const [pattern, what] of SECRET_PATTERNS) {
      if (pattern.test(text)) problems.push(`command ${cmd.name}: its ${key} text contains ${what}; pass secrets on stdin`);
    }
  }
  return problems;
}

/**
 * No pod publishes anything but its Caddy: in the Quadlet files the program pushes, a
 * `[Pod]` may publish only to Caddy's port 443 inside the pod, or, on a tailnet address,
 * to a port where the pod's own Caddyfile serves metrics and nothing else
 * (`metricsPorts`, from caddyMetricsPorts); no `[Container]` publishes a port or joins
 * the host network. Envoy's rootful unit on the ingress host
 * (`/etc/containers/systemd/envoy.container`) uses the host network by design.
 */
export function checkUnitFile(path: string, content: string, owner: string, metricsPorts: readonly number[] = []): string[] {
  if (!/\.(pod|container)$/.test(path)) return [];
  const problems: string[] = [];
  const envoy = path === "/etc/containers/systemd/envoy.container";
  let section = "";
  for (const raw of content.split("\n")) {
    const line = raw.trim();
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (line.startsWith("#") || !line.includes("=")) continue;
    const [key, ...rest] = line.split("=");
    const value = rest.join("=");
    const publishes = key === "PublishPort" || (key === "PodmanArgs" && /(^|\s)(--publish|-p)(=|\s)/.test(value));
    if (section === "Pod" && key === "PublishPort") {
      if (!/:443(\/tcp)?$/.test(value) && !isTailnetMetrics(value, metricsPorts))
        problems.push(
          `${path} (${owner}): the pod publishes ${value}; only Caddy's port 443 may be published (and its metrics site, on a tailnet address)`,
        );
    } else if (publishes) {
      problems.push(`${path} (${owner}): publishes ${value} from a [${section}]; only the pod publishes, and only Caddy`);
    }
    if (section === "Container" && key === "Network" && value === "host" && !envoy)
      problems.push(`${path} (${owner}): a container on the host network bypasses the pod's single published port`);
  }
  return problems;
}

/** `<tailnet address>:<host port>:<pod port>` where the pod port is a metrics-only Caddy site. */
function isTailnetMetrics(value: string, metricsPorts: readonly number[]): boolean {
  const m = /^100\.(\d+)\.\d+\.\d+:\d+:(\d+)(\/tcp)?$/.exec(value);
  return !!m && Number(m[1]) >= 64 && Number(m[1]) <= 127 && metricsPorts.includes(Number(m[2]));
}

/** Ports of the Caddyfile's plain-HTTP sites that serve metrics and nothing else. */
export function caddyMetricsPorts(caddyfile: string): number[] {
  return [...caddyfile.matchAll(/^http:\/\/:(\d+) \{\n\tmetrics \/\S*\n\}$/gm)].map((m) => Number(m[1]));
}

/**
 * Every Quadlet file the stack pushes, with its content: a pod lists its files (content
 * included) in its own props; a host-wide file's content is its install command's stdin.
 */
export function pushedUnitFiles(
  resources: readonly Resource[],
): { path: string; content: string; owner: string; metricsPorts: number[] }[] {
  const installs = new Map(resources.filter((r) => COMMAND_TYPES.includes(r.type)).map((r) => [r.name, r]));
  const files = [
    ...resources
      .filter((r) => r.type === REMOTE_FILE)
      .map((r) => ({
        host: String(r.props.host),
        path: String(r.props.path),
        content: String(installs.get(`${r.name}-install`)?.props.stdin ?? ""),
        owner: `${r.name} on ${r.props.host}`,
      })),
    ...resources
      .filter((r) => r.type === SIDECAR_POD && Array.isArray(r.props.files))
      .flatMap((pod) =>
        (pod.props.files as Record<string, unknown>[]).map((f) => ({
          host: String(f.host),
          path: String(f.path),
          content: String(f.content ?? ""),
          owner: `pod ${pod.name} on ${f.host}`,
        })),
      ),
  ];
  // A service's files all live below its home, /var/lib/edgeplane/<service>/, on its host.
  const homeOf = (file: { host: string; path: string }) =>
    `${file.host} ${/^\/var\/lib\/edgeplane\/[^/]+\//.exec(file.path)?.[0] ?? ""}`;
  const metricsByHome = new Map(
    files.filter((f) => f.path.endsWith("/caddy/Caddyfile")).map((f) => [homeOf(f), caddyMetricsPorts(f.content)]),
  );
  return files
    .filter((f) => /\.(pod|container)$/.test(f.path))
    .map((f) => ({ path: f.path, content: f.content, owner: f.owner, metricsPorts: metricsByHome.get(homeOf(f)) ?? [] }));
}
