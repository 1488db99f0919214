/**
 * The tailnet policy file, as a pure function of the model and the operator's base
 * policy. Tailscale keeps one policy document per tailnet and the provider replaces it
 * whole (tailscale/terraform-provider-tailscale tailscale/resource_acl.go; #182), so edgeplane renders the entire document:
 * everything the operator owns (groups, their own ACLs and grants, ssh, …) from the
 * base, plus what the stack implies:
 *
 * - `hosts`: an alias `edgeplane-<host>` for each host's tailnet address;
 * - `tagOwners`: `tag:edgeplane-ingress` and `tag:edgeplane-host`, owned by admins, for
 *   operators who tag the machines;
 * - `grants`: who reaches the ingress for each tailnet-only service, the traffic
 *   between the ingress and the other hosts that the pods need, and the tailnet
 *   admins' access to the metrics endpoints (Envoy's, each pod's Caddy's);
 * - `tests`: Tailscale refuses to save a policy whose tests fail, so a base policy
 *   that would let a non-member reach a tailnet service (the default "everyone reaches
 *   everything" rule, say) is rejected by Tailscale itself before it applies.
 *
 * Tailnet access is per address and port, not per name: every tailnet service is
 * Envoy on the ingress's tailnet address, port 443, so whoever may reach one tailnet
 * service reaches that port, and Envoy (SNI) and Authentik (groups) decide which
 * service they get. The tests therefore prove the part Tailscale can enforce: members
 * of the allowed groups get in; a user in none of them does not.
 */
import { ingressHost } from "../../model/topology";
import type { Host, Model, Service } from "../../model/types";

export const INGRESS_TAG = "tag:edgeplane-ingress";
export const HOST_TAG = "tag:edgeplane-host";
const ADMINS = "autogroup:admin";
const HTTPS = 443;

/** The config key the base policy and test users come from, for messages. */
const KEY = "edgeplane:tailscale";

/** A tailnet policy document (or the operator's part of one), as JSON values. */
export type PolicyDocument = Readonly<Record<string, unknown>>;

/** Identities the generated `tests` run as. */
export interface TailnetTestUsers {
  /**
   * One member's login per group, keyed as in `auth.groups` (`admins` → `alice@example.org`).
   * A group without one is tested as `group:<name>`, which Tailscale accepts as a test
   * source. `"autogroup:admin"` names an admin, needed for a tailnet service without
   * auth: Tailscale does not accept autogroups as a test source (tailscale/tailscale#4416).
   */
  readonly members?: Readonly<Record<string, string>>;
  /** A login in none of the groups: the source of the deny tests. Required when a service is tailnet-only. */
  readonly nonMember?: string;
}

/** Alias of a host in the policy's `hosts` section. */
export function hostAlias(host: Host): string {
  return `edgeplane-${host.name}`;
}

/** Services reachable only over the tailnet, sorted by name. */
export function tailnetServices(model: Model): Service[] {
  return model.services.filter((s) => s.exposure === "tailnet");
}

/** Tailscale sources allowed to reach a tailnet service: its Authentik groups, or only the tailnet's admins without auth. */
export function allowedSources(service: Service): string[] {
  return service.auth ? service.auth.groups.map((g) => `group:${g}`) : [ADMINS];
}

/** The key a test user for a source is configured under: the group name, or "autogroup:admin". */
function testUserKey(source: string): string {
  return source.startsWith("group:") ? source.slice("group:".length) : source;
}

interface Grant {
  readonly src: string[];
  readonly dst: string[];
  readonly ip: string[];
}

interface PolicyTest {
  readonly src: string;
  readonly accept?: string[];
  readonly deny?: string[];
}

const tcp = (ports: Iterable<number>) => [...new Set(ports)].sort((a, b) => a - b).map((p) => `tcp:${p}`);

/** Hosts other than the ingress, with the ports each side must open to the other. */
function remoteTraffic(model: Model): { host: Host; fromIngress: number[]; toIngress: number[] }[] {
  const ingress = ingressHost(model);
  return model.hosts
    .filter((h) => h.name !== ingress.name)
    .map((host) => {
      const pods = model.services.filter((s) => s.host === host.name);
      // Envoy on the ingress reaches each pod's Caddy, and each l7 backend, on this host.
      const fromIngress = [
        ...pods.map((s) => s.caddyPort),
        ...model.services.flatMap((s) => (s.l7?.backends ?? []).filter((b) => b.host === host.name).map((b) => b.port)),
      ];
      // Pods here reach the ingress: Authentik (through Envoy's :443) for forward auth,
      // and the Envoy L7 listener their Caddy proxies to.
      const toIngress = [
        ...(model.authentik && pods.some((s) => s.auth) ? [HTTPS] : []),
        ...pods.flatMap((s) => (s.l7 ? [s.l7.listenPort] : [])),
      ];
      return { host, fromIngress, toIngress };
    });
}

/** Per host, the ports of the Prometheus endpoints on its tailnet address: Envoy's on the ingress, each pod's Caddy's. */
export function metricsPorts(model: Model): { host: Host; ports: number[] }[] {
  const ingress = ingressHost(model);
  return model.hosts
    .map((host) => ({
      host,
      ports: [
        ...(host.name === ingress.name ? [model.envoy.metricsPort] : []),
        ...model.services.filter((s) => s.host === host.name).map((s) => s.metricsPort),
      ].sort((a, b) => a - b),
    }))
    .filter(({ ports }) => ports.length > 0);
}

function generatedGrants(model: Model): Grant[] {
  const ingress = hostAlias(ingressHost(model));
  const grants: Grant[] = tailnetServices(model).map((service) => ({
    src: allowedSources(service),
    dst: [ingress],
    ip: tcp([HTTPS]),
  }));
  for (const { host, fromIngress, toIngress } of remoteTraffic(model)) {
    if (fromIngress.length > 0) grants.push({ src: [ingress], dst: [hostAlias(host)], ip: tcp(fromIngress) });
    if (toIngress.length > 0) grants.push({ src: [hostAlias(host)], dst: [ingress], ip: tcp(toIngress) });
  }
  // Metrics carry service names, request rates and client-facing errors: admins only.
  for (const { host, ports } of metricsPorts(model)) grants.push({ src: [ADMINS], dst: [hostAlias(host)], ip: tcp(ports) });
  return grants;
}

function generatedTests(model: Model, users: TailnetTestUsers): PolicyTest[] {
  const ingressHttps = `${ingressHost(model).tailnetIP}:${HTTPS}`;
  const services = tailnetServices(model);
  const tests: PolicyTest[] = services.flatMap((service) =>
    allowedSources(service).map((source) => ({
      src: users.members?.[testUserKey(source)] ?? source,
      accept: [ingressHttps],
    })),
  );
  const metricsEndpoints = metricsPorts(model).flatMap(({ host, ports }) => ports.map((p) => `${host.tailnetIP}:${p}`));
  const admin = users.members?.[ADMINS];
  if (admin && metricsEndpoints.length > 0) tests.push({ src: admin, accept: metricsEndpoints });
  if (users.nonMember) {
    // Nobody outside the groups reaches the tailnet services, nor any hop behind Envoy
    // directly: a remote pod's Caddy (only Envoy may), Envoy's L7 listeners (only the
    // service's Caddy may) and the L7 backends (only Envoy may), wherever they run; nor
    // any metrics endpoint (admins only).
    const ingress = ingressHost(model);
    const remoteCaddies = remoteTraffic(model).flatMap(({ host }) =>
      model.services.filter((s) => s.host === host.name).map((s) => `${host.tailnetIP}:${s.caddyPort}`),
    );
    const l7Listeners = model.services.flatMap((s) => (s.l7 ? [`${ingress.tailnetIP}:${s.l7.listenPort}`] : []));
    const backends = model.services.flatMap((s) =>
      (s.l7?.backends ?? []).map((b) => `${model.hosts.find((h) => h.name === b.host)!.tailnetIP}:${b.port}`),
    );
    const deny = [
      ...new Set([
        ...(services.length > 0 ? [ingressHttps] : []),
        ...remoteCaddies,
        ...l7Listeners,
        ...backends,
        ...metricsEndpoints,
      ]),
    ];
    if (deny.length > 0) tests.push({ src: users.nonMember, deny });
  }
  return tests;
}

function generatedHosts(model: Model): Record<string, string> {
  return Object.fromEntries(model.hosts.map((h) => [hostAlias(h), h.tailnetIP]));
}

const generatedTagOwners = (): Record<string, string[]> => ({ [INGRESS_TAG]: [ADMINS], [HOST_TAG]: [ADMINS] });

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Every reason the base policy and test users cannot be merged with the stack, each
 * naming its config key. Empty when renderTailnetPolicy will succeed.
 */
export function tailnetPolicyProblems(model: Model, base: unknown, users: TailnetTestUsers = {}): string[] {
  const problems: string[] = [];
  if (!isObject(base)) return [`${KEY}.policy: must be an object (a tailnet policy file as JSON)`];
  for (const key of ["grants", "tests"]) {
    if (key in base && !Array.isArray(base[key])) problems.push(`${KEY}.policy.${key}: must be a list`);
  }
  const generatedMaps: [string, Record<string, unknown>, (name: string) => string][] = [
    ["hosts", generatedHosts(model), (alias) => `the tailnet address of host "${alias.slice("edgeplane-".length)}"`],
    ["tagOwners", generatedTagOwners(), () => "a tag edgeplane owns"],
  ];
  for (const [key, generated, what] of generatedMaps) {
    const section = base[key];
    if (section === undefined) continue;
    if (!isObject(section)) {
      problems.push(`${KEY}.policy.${key}: must be an object`);
      continue;
    }
    for (const [name, value] of Object.entries(generated)) {
      if (name in section && canonical(section[name]) !== canonical(value)) {
        problems.push(
          `${KEY}.policy.${key}.${name}: is generated by edgeplane as ${canonical(value)} (${what(name)}); remove it from the base policy`,
        );
      }
    }
  }
  const services = tailnetServices(model);
  for (const service of services) {
    for (const source of allowedSources(service)) {
      if (source === ADMINS && !users.members?.[ADMINS]) {
        problems.push(
          `${KEY}.testUsers.members: service "${service.name}" is tailnet-only without auth, so only tailnet admins may reach it; ` +
            `Tailscale tests cannot run as an autogroup, so set "${ADMINS}" to one admin's login`,
        );
      }
    }
  }
  if (services.length > 0 && !users.nonMember) {
    problems.push(
      `${KEY}.testUsers.nonMember: is required when a service has exposure: tailnet (${services.map((s) => s.name).join(", ")}); ` +
        "name a login in none of their groups, so Tailscale's own tests prove it cannot reach them",
    );
  }
  const groups = isObject(base.groups) ? base.groups : {};
  if (users.nonMember) {
    for (const service of services) {
      for (const source of allowedSources(service)) {
        const members = groups[source];
        if (Array.isArray(members) && members.includes(users.nonMember)) {
          problems.push(
            `${KEY}.testUsers.nonMember: ${users.nonMember} is in ${source} in the base policy, which may reach service "${service.name}"`,
          );
        }
      }
    }
  }
  return [...new Set(problems)];
}

/**
 * The whole policy file: the base with the generated sections merged in. Generated
 * `hosts` and `tagOwners` entries are added to the base's (the same name with another
 * value is an error); generated `grants` and `tests` are appended after the base's,
 * skipping any the base already has. Keys are sorted at every level, so the text
 * depends only on the content.
 */
export function renderTailnetPolicy(model: Model, base: PolicyDocument, users: TailnetTestUsers = {}): string {
  const problems = tailnetPolicyProblems(model, base, users);
  if (problems.length > 0) throw new Error(`cannot render the tailnet policy:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  const policy: Record<string, unknown> = { ...base };
  policy.hosts = { ...(base.hosts as object | undefined), ...generatedHosts(model) };
  policy.tagOwners = { ...(base.tagOwners as object | undefined), ...generatedTagOwners() };
  const append = (key: string, generated: readonly unknown[]) => {
    const existing = (base[key] as unknown[] | undefined) ?? [];
    const seen = new Set(existing.map(canonical));
    const added = generated.filter((entry) => {
      const text = canonical(entry);
      if (seen.has(text)) return false;
      seen.add(text);
      return true;
    });
    if (key in base || added.length > 0) policy[key] = [...existing, ...added];
  };
  append("grants", generatedGrants(model));
  append("tests", generatedTests(model, users));
  return (
    "// managed by edgeplane — tailnet policy: the base policy from edgeplane:tailscale.policy plus the hosts, tags,\n" +
    "// grants and tests the stack implies; edit the base in the stack config, not here\n" +
    JSON.stringify(sortKeys(policy), null, 2) +
    "\n"
  );
}

/** The value with object keys sorted at every level (arrays keep their order). */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isObject(value)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  }
  return value;
}

function canonical(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

/** Reads rendered policy text back (its only comments are the leading `//` lines). */
export function parseTailnetPolicy(text: string): Record<string, unknown> {
  return JSON.parse(
    text
      .split("\n")
      .filter((line) => !line.startsWith("//"))
      .join("\n"),
  ) as Record<string, unknown>;
}
