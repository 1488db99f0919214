/**
 * Stack config → validated, normalized Model. Every problem is collected and reported
 * at once, each naming its key path as an operator would write it
 * (`edgeplane:services.grafana.host: unknown host "edg"`); nothing downstream runs on
 * an invalid config.
 */
import type { ZodIssue } from "zod";
import { DEFAULT_CADDY_IMAGE } from "./caddy-version";
import { closestKey, knownKeysAt } from "./keys";
import {
  configSchema,
  hostSchema,
  NAME,
  PROGRAM_KEYS,
  serviceSchema,
  stackSchema,
  type ParsedService,
  type ParsedStack,
} from "./schema";
import type { Host, Model, Service, ServiceAuth } from "./types";

export type { Model, Host, Service } from "./types";

/** The top-level config keys edgeplane knows, without the `edgeplane:` prefix. */
export const CONFIG_KEYS: readonly string[] = Object.keys(configSchema.shape);

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

/** Formats a key path the way it appears in Pulumi.<stack>.yaml: `edgeplane:services.grafana.port`. */
export function keyPath(path: readonly (string | number)[]): string {
  const [head, ...rest] = path;
  let out = `edgeplane:${head ?? ""}`;
  for (const seg of rest) out += typeof seg === "number" ? `[${seg}]` : `.${seg}`;
  return out;
}

/**
 * Keys that cannot exist, by path: why, and what to do instead. Said in place of
 * "unknown key", which would suggest a typo.
 */
const IMPOSSIBLE_KEYS: ReadonlyMap<string, string> = new Map([
  [
    "adopt.tokens",
    "an existing API token cannot be adopted: Cloudflare returns a token's value only when it creates the token " +
      "(https://developers.cloudflare.com/fundamentals/api/get-started/create-token/), so an imported token has no " +
      "value to give the pod. Remove the entry and let edgeplane create a new token for the service; after the " +
      "first `pulumi up`, delete the old token by hand (My Profile → API Tokens)",
  ],
]);

function describeIssue(issue: ZodIssue): string[] {
  if (issue.code === "unrecognized_keys") {
    const known = knownKeysAt(issue.path);
    return issue.keys.map((k) => {
      const why = IMPOSSIBLE_KEYS.get([...issue.path, k].join("."));
      if (why) return `${keyPath([...issue.path, k])}: ${why}`;
      const guess = closestKey(k, known);
      return `${keyPath([...issue.path, k])}: unknown key${guess ? `; did you mean ${keyPath([...issue.path, guess])}?` : ""}`;
    });
  }
  if (issue.code === "invalid_type" && issue.received === "undefined") {
    return [`${keyPath(issue.path)}: is required`];
  }
  if (issue.code === "invalid_type") {
    return [`${keyPath(issue.path)}: must be ${article(issue.expected)}, got ${issue.received}`];
  }
  if (issue.code === "invalid_enum_value") {
    return [
      `${keyPath(issue.path)}: must be one of ${issue.options.map((o) => JSON.stringify(o)).join(", ")}, got ${JSON.stringify(issue.received)}`,
    ];
  }
  return [`${keyPath(issue.path)}: ${issue.message}`];
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** The pod's own containers are `<service>-app` and `<service>-caddy`. */
const RESERVED_CONTAINERS = ["app", "caddy"];

const RESERVED_PORTS: ReadonlyMap<number, string> = new Map([
  [80, "Envoy's HTTP listener"],
  [443, "Envoy's HTTPS listener"],
]);
/** Linux user names are at most 32 bytes; the service user is `ep-<service>`. */
const MAX_SERVICE_NAME = 29;
const MAX_HOST_NAME = 63;

/** Cross-field rules that need the whole parsed config. Returns every problem found. */
function crossCheck(stack: ParsedStack, declaredHosts: readonly string[], declaredServices: readonly string[]): string[] {
  const problems: string[] = [];
  const hostNames = Object.keys(stack.hosts);
  const hostList = declaredHosts.map((n) => `"${n}"`).join(", ");
  // A host whose own entry has errors still exists for the services that name it.
  const knownHost = (name: string) => declaredHosts.includes(name);
  const parsedHost = (name: string) => Object.hasOwn(stack.hosts, name);

  for (const name of hostNames) {
    if (!NAME.test(name) || name.length > MAX_HOST_NAME) {
      problems.push(
        `${keyPath(["hosts", name])}: host names must match [a-z0-9-] (at most ${MAX_HOST_NAME}, no leading or trailing -)`,
      );
    }
  }
  const ingress = hostNames.filter((n) => stack.hosts[n]?.ingress);
  if (declaredHosts.length === 0) {
    problems.push(`${keyPath(["hosts"])}: must define at least one host`);
  } else if (ingress.length !== 1 && hostNames.length === declaredHosts.length) {
    problems.push(
      `${keyPath(["hosts"])}: exactly one host must have ingress: true, found ${ingress.length}${ingress.length ? ` (${ingress.join(", ")})` : ""}`,
    );
  }
  for (const name of ingress) {
    if (!stack.hosts[name]?.publicIPv4)
      problems.push(`${keyPath(["hosts", name, "publicIPv4"])}: is required on the ingress host`);
  }
  const tailnetOwners = new Map<string, string>();
  for (const [name, host] of Object.entries(stack.hosts)) {
    const other = tailnetOwners.get(host.tailnetIP);
    if (other)
      problems.push(
        `${keyPath(["hosts", name, "tailnetIP"])}: ${host.tailnetIP} is already the tailnet address of host "${other}"`,
      );
    else tailnetOwners.set(host.tailnetIP, name);
    if (!inCgnat(host.tailnetIP))
      problems.push(`${keyPath(["hosts", name, "tailnetIP"])}: ${host.tailnetIP} is not a tailnet address (100.64.0.0/10)`);
  }

  const adminPort = stack.envoy.adminPort;
  const reservedOnIngress = new Map(RESERVED_PORTS)
    .set(adminPort, "Envoy's admin interface")
    .set(stack.envoy.metricsPort, "Envoy's metrics endpoint");
  if (adminPort === stack.envoy.metricsPort)
    problems.push(`${keyPath(["envoy", "metricsPort"])}: port ${adminPort} is already Envoy's admin port (envoy.adminPort)`);
  const fqdnOwners = new Map<string, string>();
  // host → port → what uses it, so a collision names the first user
  const portUsers = new Map<string, Map<number, string>>();
  const claimPort = (host: string, port: number, user: string, path: (string | number)[]): boolean => {
    const ports = portUsers.get(host) ?? new Map<number, string>();
    portUsers.set(host, ports);
    const holder = ports.get(port);
    if (holder) problems.push(`${keyPath(path)}: port ${port} on host "${host}" is already used by ${holder}`);
    else ports.set(port, user);
    return !holder;
  };

  // Sorted, so which of two colliding services is blamed does not depend on YAML order.
  for (const [name, svc] of Object.entries(stack.services).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const at = (...rest: (string | number)[]) => ["services", name, ...rest];
    if (!NAME.test(name) || name.length > MAX_SERVICE_NAME) {
      problems.push(
        `${keyPath(at())}: service names must match [a-z0-9-] (at most ${MAX_SERVICE_NAME}, no leading or trailing -)`,
      );
    }
    if (!knownHost(svc.host)) problems.push(`${keyPath(at("host"))}: unknown host "${svc.host}" (hosts: ${hostList})`);

    const fqdn = svc.fqdn ?? `${name}.${stack.domain}`;
    const fqdnOwner = fqdnOwners.get(fqdn);
    if (fqdnOwner) problems.push(`${keyPath(at("fqdn"))}: ${fqdn} is already the name of service "${fqdnOwner}"`);
    else fqdnOwners.set(fqdn, name);

    const reserved = svc.host === ingress[0] ? reservedOnIngress : RESERVED_PORTS;
    const reason = reserved.get(svc.caddyPort);
    let caddyPortProblem = true;
    if (reason) problems.push(`${keyPath(at("caddyPort"))}: port ${svc.caddyPort} is reserved for ${reason}`);
    else if (svc.caddyPort < 1024)
      problems.push(`${keyPath(at("caddyPort"))}: must be 1024 or above (rootless pods cannot bind privileged ports)`);
    else if (parsedHost(svc.host))
      caddyPortProblem = !claimPort(svc.host, svc.caddyPort, `the Caddy of service "${name}"`, at("caddyPort"));

    const metrics = metricsPort(svc);
    const metricsPath = svc.metricsPort === undefined ? at("caddyPort") : at("metricsPort");
    const metricsWhy =
      svc.metricsPort === undefined
        ? ` (Caddy's metrics port defaults to caddyPort + ${METRICS_PORT_OFFSET}; set metricsPort)`
        : "";
    const metricsReserved = (svc.host === ingress[0] ? reservedOnIngress : RESERVED_PORTS).get(metrics);
    if (metrics > 65535)
      problems.push(`${keyPath(at("metricsPort"))}: caddyPort + ${METRICS_PORT_OFFSET} is above 65535; set metricsPort`);
    else if (metricsReserved)
      problems.push(`${keyPath(metricsPath)}: port ${metrics} is reserved for ${metricsReserved}${metricsWhy}`);
    else if (metrics === svc.port || metrics === svc.caddyPort)
      problems.push(
        `${keyPath(metricsPath)}: port ${metrics} is also the ${metrics === svc.port ? "app's port" : "caddyPort"} of the service${metricsWhy}`,
      );
    // A metrics port derived from a caddyPort that already collides would only repeat that problem.
    else if (parsedHost(svc.host) && !(svc.metricsPort === undefined && caddyPortProblem))
      claimPort(svc.host, metrics, `the Caddy metrics of service "${name}"`, metricsPath);

    for (const [key] of Object.entries(svc.env)) {
      if (svc.secrets.includes(key))
        problems.push(`${keyPath(at("env", key))}: ${key} is also listed in secrets; a variable is either plain or secret`);
    }
    const seenSecrets = new Set<string>();
    svc.secrets.forEach((secret, i) => {
      if (seenSecrets.has(secret)) problems.push(`${keyPath(at("secrets", i))}: ${secret} is listed twice`);
      seenSecrets.add(secret);
    });
    for (const [cname, container] of Object.entries(svc.containers)) {
      if (!NAME.test(cname) || RESERVED_CONTAINERS.includes(cname))
        problems.push(
          `${keyPath(at("containers", cname))}: container names must match [a-z0-9-] and not be ${RESERVED_CONTAINERS.join(" or ")}`,
        );
      container.secrets.forEach((ref, i) => {
        const secret = ref.includes("=") ? ref.slice(ref.indexOf("=") + 1) : ref;
        if (!svc.secrets.includes(secret))
          problems.push(
            `${keyPath(at("containers", cname, "secrets", i))}: ${secret} is not one of the service's secrets (services.${name}.secrets)`,
          );
      });
    }
    if (svc.auth && !stack.authentik) {
      problems.push(`${keyPath(at("auth"))}: needs edgeplane:authentik, which names the service that runs Authentik`);
    }
    if (svc.auth) problems.push(...checkAuthKeys(name, svc));
    if (svc.auth?.rateLimit && stack.images.caddy === DEFAULT_CADDY_IMAGE) {
      problems.push(
        `${keyPath(at("auth", "rateLimit"))}: needs the Caddy module http.handlers.rate_limit, which the default ` +
          `images.caddy (${DEFAULT_CADDY_IMAGE}) does not have; set edgeplane:images.caddy to an image built with it ` +
          `(images/caddy/Containerfile)`,
      );
    }
    if (svc.publicPaths.length > 0 && !svc.auth) {
      problems.push(`${keyPath(at("publicPaths"))}: only means something with auth; without auth every path is public`);
    }
    if (svc.l7 && ingress.length === 1 && parsedHost(ingress[0]!)) {
      const listen = l7ListenPort(svc);
      const listenPath = svc.l7.listenPort === undefined ? at("caddyPort") : at("l7", "listenPort");
      const why =
        svc.l7.listenPort === undefined
          ? ` (Envoy's L7 listener defaults to caddyPort + ${L7_PORT_OFFSET}; set l7.listenPort)`
          : "";
      const reservedReason = reservedOnIngress.get(listen);
      if (listen > 65535)
        problems.push(`${keyPath(at("l7", "listenPort"))}: caddyPort + ${L7_PORT_OFFSET} is above 65535; set l7.listenPort`);
      else if (reservedReason) problems.push(`${keyPath(listenPath)}: port ${listen} is reserved for ${reservedReason}${why}`);
      else
        claimPort(
          ingress[0]!,
          listen,
          `Envoy's L7 listener for service "${name}"`,
          svc.l7.listenPort === undefined ? at("l7") : at("l7", "listenPort"),
        );
    }
    svc.l7?.backends.forEach((backend, i) => {
      if (!knownHost(backend.host)) {
        problems.push(`${keyPath(at("l7", "backends", i, "host"))}: unknown host "${backend.host}" (hosts: ${hostList})`);
      } else {
        const reservedReason = (backend.host === ingress[0] ? reservedOnIngress : RESERVED_PORTS).get(backend.port);
        if (reservedReason)
          problems.push(`${keyPath(at("l7", "backends", i, "port"))}: port ${backend.port} is reserved for ${reservedReason}`);
        else claimPort(backend.host, backend.port, `backend ${i} of service "${name}"`, at("l7", "backends", i, "port"));
      }
    });
  }

  for (const [name, svc] of Object.entries(stack.services)) {
    if (svc.tokenRotation !== undefined && stack.tls.issuer !== "cloudflare-dns") {
      problems.push(
        `${keyPath(["services", name, "tokenRotation"])}: only means something with tls.issuer cloudflare-dns (the pod has no token)`,
      );
    }
  }
  for (const name of Object.keys(stack.adopt?.records ?? {})) {
    if (!declaredServices.includes(name)) problems.push(`${keyPath(["adopt", "records", name])}: unknown service "${name}"`);
  }
  for (const [name, records] of Object.entries(stack.adopt?.records ?? {})) {
    const svc = stack.services[name];
    if (records.CNAME && !stack.cloudflare.challengeZone)
      problems.push(
        `${keyPath(["adopt", "records", name, "CNAME"])}: only the ACME challenge CNAME is managed, and only with cloudflare.challengeZone`,
      );
    if (svc && records.AAAA && svc.exposure === "tailnet")
      problems.push(`${keyPath(["adopt", "records", name, "AAAA"])}: a tailnet service has only an A record`);
  }
  if (stack.authentik) {
    const svcName = stack.authentik.service;
    const svc = stack.services[svcName];
    if (!declaredServices.includes(svcName)) {
      problems.push(`${keyPath(["authentik", "service"])}: unknown service "${svcName}"`);
    } else if (svc?.auth) {
      problems.push(`${keyPath(["services", svcName, "auth"])}: the Authentik service cannot sit behind itself`);
    }
  }
  return problems;
}

/** The host port of a service's Caddy metrics: explicit, or derived from caddyPort so it never shifts when others change. */
function metricsPort(svc: ParsedService): number {
  return svc.metricsPort ?? svc.caddyPort + METRICS_PORT_OFFSET;
}
const METRICS_PORT_OFFSET = 20000;

/** `auth` keys that only mean something together, and rules that contradict the public paths. */
function checkAuthKeys(name: string, svc: ParsedService): string[] {
  const auth = svc.auth!;
  const at = (...rest: (string | number)[]) => keyPath(["services", name, "auth", ...rest]);
  const problems: string[] = [];
  if (auth.passAuthorization && !auth.apiClients)
    problems.push(
      `${at("passAuthorization")}: only means something with apiClients: true (without it the app always gets Authorization)`,
    );
  const seen = new Map<string, number>();
  auth.rules.forEach((rule, i) => {
    const key = rule.path.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined)
      problems.push(`${at("rules", i, "path")}: ${rule.path} is already the path of ${at("rules", first)}`);
    else seen.set(key, i);
    svc.publicPaths.forEach((publicPath, j) => {
      if (pathPatternsOverlap(rule.path, publicPath))
        problems.push(
          `${at("rules", i, "path")}: ${rule.path} overlaps public path ${publicPath} (${keyPath(["services", name, "publicPaths", j])}); a path is either public or under a rule`,
        );
    });
  });
  return problems;
}

/**
 * Whether two path patterns (`/exact` or `/prefix*`) can cover the same request, compared
 * without case: rules are matched case-insensitively, so the check errs the same way.
 * An exact path also covers itself with a trailing `/`; `/p/*` also covers `/p`.
 */
export function pathPatternsOverlap(a: string, b: string): boolean {
  const covers = (pattern: string, target: string) => {
    if (!pattern.endsWith("*")) return target === pattern || target === `${pattern}/` || `${target}/` === pattern;
    const prefix = pattern.slice(0, -1);
    return target.startsWith(prefix) || (prefix.endsWith("/") && target === prefix.slice(0, -1));
  };
  const samples = (pattern: string) => {
    const literal = pattern.endsWith("*") ? pattern.slice(0, -1) : pattern;
    return [literal, literal.endsWith("/") ? literal.slice(0, -1) : `${literal}/`].filter((s) => s !== "");
  };
  const [x, y] = [a.toLowerCase(), b.toLowerCase()];
  return samples(x).some((s) => covers(y, s)) || samples(y).some((s) => covers(x, s));
}

function normalizeAuth(auth: NonNullable<ParsedService["auth"]>): ServiceAuth {
  return {
    groups: [...new Set(auth.groups)].sort(),
    ...(auth.apiClients ? { apiClients: true } : {}),
    ...(auth.passAuthorization ? { passAuthorization: true } : {}),
    ...(auth.rules.length > 0 ? { rules: auth.rules.map((r) => ({ path: r.path, groups: [...new Set(r.groups)].sort() })) } : {}),
    ...(auth.rateLimit ? { rateLimit: { ...auth.rateLimit } } : {}),
    ...(auth.grants.length > 0
      ? {
          grants: auth.grants.map((g) =>
            g.users ? { users: [...new Set(g.users)].sort(), until: g.until } : { group: g.group!, until: g.until },
          ),
        }
      : {}),
  };
}

/** Envoy's L7 listener port for a service: explicit, or derived from caddyPort so it never shifts when others change. */
function l7ListenPort(svc: ParsedService): number {
  return svc.l7?.listenPort ?? svc.caddyPort + L7_PORT_OFFSET;
}
const L7_PORT_OFFSET = 10000;

function inCgnat(ip: string): boolean {
  const [a, b] = ip.split(".").map(Number);
  return a === 100 && b !== undefined && b >= 64 && b <= 127;
}

function normalize(stack: ParsedStack): Model {
  const byName = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  const hosts: Host[] = Object.entries(stack.hosts)
    .sort(byName)
    .map(([name, h]) => ({
      name,
      ingress: h.ingress,
      ...(h.publicIPv4 ? { publicIPv4: h.publicIPv4 } : {}),
      ...(h.publicIPv6 ? { publicIPv6: h.publicIPv6 } : {}),
      tailnetIP: h.tailnetIP,
      ...(h.egressIPs ? { egressIPs: [...new Set(h.egressIPs)].sort() } : {}),
      ssh: { host: h.ssh.host, user: h.ssh.user, port: h.ssh.port, ...(h.ssh.hostKey ? { hostKey: h.ssh.hostKey } : {}) },
    }));
  const services: Service[] = Object.entries(stack.services)
    .sort(byName)
    .map(([name, s]) => ({
      name,
      host: s.host,
      image: s.image,
      port: s.port,
      caddyPort: s.caddyPort,
      metricsPort: metricsPort(s),
      fqdn: s.fqdn ?? `${name}.${stack.domain}`,
      exposure: s.exposure,
      ...(s.auth ? { auth: normalizeAuth(s.auth) } : {}),
      publicPaths: [...new Set(s.publicPaths)].sort(),
      env: Object.entries(s.env).sort(byName),
      secrets: [...s.secrets].sort(),
      volumes: [...s.volumes],
      limits: { ...s.limits },
      ...(s.tokenRotation ? { tokenRotation: s.tokenRotation } : {}),
      ...(s.command ? { command: [...s.command] } : {}),
      ...(Object.keys(s.containers).length > 0
        ? {
            containers: Object.entries(s.containers)
              .sort(byName)
              .map(([cname, c]) => ({
                name: cname,
                image: c.image,
                ...(c.command ? { command: [...c.command] } : {}),
                env: Object.entries(c.env).sort(byName),
                secrets: c.secrets
                  .map((ref): [string, string] => {
                    const [envName, secret] = ref.split("=");
                    return [envName!, secret ?? envName!];
                  })
                  .sort(byName),
                volumes: [...c.volumes],
              })),
          }
        : {}),
      ...(s.l7
        ? {
            l7: {
              backends: s.l7.backends.map((b) => ({ host: b.host, port: b.port })),
              healthPath: s.l7.healthPath,
              listenPort: l7ListenPort(s),
              streamIdleTimeout: s.l7.streamIdleTimeout,
              retries: s.l7.retries,
              healthCheck: { ...s.l7.healthCheck },
              circuitBreakers: { ...s.l7.circuitBreakers },
              outlierDetection: { ...s.l7.outlierDetection },
            },
          }
        : {}),
    }));
  return {
    domain: stack.domain,
    cloudflare: {
      zoneId: stack.cloudflare.zoneId,
      permissionGroups: { ...stack.cloudflare.permissionGroups },
      ...(stack.cloudflare.challengeZone ? { challengeZone: { ...stack.cloudflare.challengeZone } } : {}),
    },
    tls: { issuer: stack.tls.issuer, ...(stack.tls.email ? { email: stack.tls.email } : {}) },
    images: { ...stack.images },
    envoy: { ...stack.envoy },
    hosts,
    services,
    ...(stack.authentik
      ? {
          authentik: {
            service: stack.authentik.service,
            flows: { ...stack.authentik.flows },
            extraProviders: [...new Set(stack.authentik.extraProviders)].sort(),
            ...(stack.authentik.createGroups ? { createGroups: true } : {}),
          },
        }
      : {}),
    ...(stack.tailscale
      ? {
          tailscale: {
            policy: stack.tailscale.policy,
            testUsers: {
              members: stack.tailscale.testUsers.members,
              ...(stack.tailscale.testUsers.nonMember ? { nonMember: stack.tailscale.testUsers.nonMember } : {}),
            },
            adopt: stack.tailscale.adopt,
          },
        }
      : {}),
    // An empty `adopt` (Pulumi.yaml's default) adopts nothing: the same model as none.
    ...(stack.adopt && Object.keys(stack.adopt.records).length > 0 ? { adopt: { records: stack.adopt.records } } : {}),
  };
}

/**
 * Validates and normalizes the `edgeplane:*` config (keys without the prefix): every
 * key the stack sets, so that an unknown one is an error. Keys the program reads
 * itself (the SSH key) are not part of the model and are left out unread. Throws
 * ConfigError listing every problem when the config is invalid.
 */
export function buildModel(raw: unknown): Model {
  // Unknown top-level keys are reported with the rest rather than alone, so one typo
  // does not hide the problems inside hosts and services.
  const { known, unknown } = splitTopLevel(raw);
  const problems: string[] = unknown.flatMap((key) =>
    describeIssue({ code: "unrecognized_keys", keys: [key], path: [], message: "" }),
  );
  const top = stackSchema.safeParse(known);
  if (!top.success) throw new ConfigError(dedupe([...problems, ...top.error.issues.flatMap(describeIssue)]));
  const parseEntries = <T>(
    section: "hosts" | "services",
    schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: ZodIssue[] } } },
  ) => {
    const out: Record<string, T> = {};
    for (const [name, value] of Object.entries(top.data[section])) {
      const result = schema.safeParse(value);
      if (result.success) out[name] = result.data;
      else problems.push(...result.error.issues.flatMap((i) => describeIssue({ ...i, path: [section, name, ...i.path] })));
    }
    return out;
  };
  const stack: ParsedStack = {
    ...top.data,
    hosts: parseEntries("hosts", hostSchema),
    services: parseEntries("services", serviceSchema),
  };
  problems.push(...crossCheck(stack, Object.keys(top.data.hosts), Object.keys(top.data.services)));
  if (problems.length > 0) throw new ConfigError(dedupe(problems));
  return normalize(stack);
}

/** The model's keys, and the keys nobody reads; keys the program reads itself are in neither. */
function splitTopLevel(raw: unknown): { known: unknown; unknown: string[] } {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return { known: raw, unknown: [] };
  const entries = Object.entries(raw).filter(([key]) => !PROGRAM_KEYS.has(key));
  const isModelKey = ([key]: [string, unknown]) => Object.hasOwn(stackSchema.shape, key);
  return {
    known: Object.fromEntries(entries.filter(isModelKey)),
    unknown: entries.filter((e) => !isModelKey(e)).map(([key]) => key),
  };
}

/**
 * The `edgeplane:*` values of a config map as Pulumi hands it to a program
 * (`namespace:key` → text; structured values as JSON), keyed without the prefix.
 */
export function projectConfig(all: Readonly<Record<string, string>>, project = "edgeplane"): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(all)) {
    if (!fullKey.startsWith(`${project}:`)) continue;
    const key = fullKey.slice(project.length + 1);
    if (PROGRAM_KEYS.has(key)) continue;
    raw[key] = parseConfigValue(value);
  }
  return raw;
}

/** Pulumi hands structured config values over as JSON text; plain strings stay strings. */
function parseConfigValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function dedupe(items: string[]): string[] {
  return [...new Set(items)];
}
