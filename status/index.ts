/**
 * `npm run status`: a read-only look at the running platform. For each host, one shell
 * script (statusScript) runs over SSH and prints one line per fact; parseStatus reads
 * them back, and statusReport sets them against the plan (what `pulumi up` would
 * install): per service, its units' state, its certificate's expiry as served through
 * Envoy, when its files were last written, and which of them differ from the plan; for
 * the ingress, Envoy's view of each cluster from its admin interface on loopback.
 *
 * The script only reads: sha256sum, stat, `systemctl is-active`, `openssl s_client`
 * and `curl` of Envoy's admin (GET /clusters). Nothing here writes to a host. When
 * openssl or curl is not installed on the ingress, the report says what was not
 * checked instead of showing no certificate or no cluster.
 *
 * A service is healthy when every unit of its pod is active and Envoy, when it
 * answered, sees each of its upstreams healthy; `npm run status` exits 1 otherwise.
 */
import { shQuote } from "../components/remote/script";
import { ingressHost, serviceUser } from "../model/topology";
import type { Host, Model, Service } from "../model/types";
import type { PlannedFile } from "../plan/manifest";

/** Units of a service's pod, as Quadlet names them (`<name>.pod` → `<name>-pod.service`). */
export function serviceUnits(service: Service): string[] {
  return [
    `${service.name}-pod.service`,
    `${service.name}-app.service`,
    `${service.name}-caddy.service`,
    ...(service.containers ?? []).map((c) => `${service.name}-${c.name}.service`),
  ];
}

/** The read-only script for one host: every planned file there, its services' units, and on the ingress, certificates and Envoy. */
export function statusScript(model: Model, host: Host, files: readonly Pick<PlannedFile, "path">[]): string {
  const lines = ["set -u", "# edgeplane status: read-only"];
  for (const file of files) {
    const f = shQuote(file.path);
    lines.push(
      `h=$(sudo -n sha256sum -- ${f} 2>/dev/null | cut -d' ' -f1); t=$(sudo -n stat -c %Y -- ${f} 2>/dev/null)`,
      `echo "file \${h:-missing} \${t:--} "${f}`,
    );
  }
  for (const service of model.services.filter((s) => s.host === host.name)) {
    const user = shQuote(`${serviceUser(service)}@`);
    for (const unit of serviceUnits(service)) {
      lines.push(
        `s=$(sudo -n systemctl --user -M ${user} is-active ${shQuote(unit)} 2>/dev/null); echo "unit ${service.name} ${unit} \${s:-unknown}"`,
      );
    }
  }
  if (host.ingress) {
    // Without them the lines below would read as "no certificate" and "no cluster".
    for (const tool of ["openssl", "curl"]) lines.push(`t=$(command -v ${tool}); echo "tool ${tool} \${t:-missing}"`);
    for (const service of model.services) {
      // Through Envoy, as a client gets it: a tailnet service only on the tailnet address.
      const address = service.exposure === "tailnet" ? host.tailnetIP : "127.0.0.1";
      lines.push(
        `e=$(echo | timeout 10 openssl s_client -connect ${shQuote(`${address}:443`)} -servername ${shQuote(service.fqdn)} 2>/dev/null | openssl x509 -noout -enddate 2>/dev/null | sed 's/^notAfter=//')`,
        `echo "cert ${service.name} \${e:--}"`,
      );
    }
    lines.push(
      `c=$(curl -fsS --max-time 10 ${shQuote(`http://127.0.0.1:${model.envoy.adminPort}/clusters?format=json`)} 2>/dev/null | base64 -w0)`,
      `echo "envoy \${c:--}"`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export interface HostFacts {
  readonly files: Map<string, { sha256: string | null; mtime: number | null }>;
  readonly units: Map<string, Map<string, string>>;
  readonly certs: Map<string, string | null>;
  /** Envoy's /clusters?format=json, when this is the ingress and the admin answered. */
  readonly envoy: EnvoyClusters | null;
  /** The ingress's tools the script needs that are not installed (`openssl`, `curl`). */
  readonly missingTools: string[];
}

interface EnvoyClusters {
  readonly cluster_statuses?: {
    name: string;
    host_statuses?: { health_status?: Record<string, unknown>; stats?: { name: string; value?: string }[] }[];
  }[];
}

/** Reads statusScript's output back. */
export function parseStatus(output: string): HostFacts {
  const facts: HostFacts = { files: new Map(), units: new Map(), certs: new Map(), envoy: null, missingTools: [] };
  let envoy: EnvoyClusters | null = null;
  for (const line of output.split("\n")) {
    const [kind, ...rest] = line.split(" ");
    if (kind === "file" && rest.length >= 3) {
      const [hash, mtime, ...path] = rest;
      facts.files.set(path.join(" "), {
        sha256: hash === "missing" ? null : hash!,
        mtime: mtime === "-" ? null : Number(mtime),
      });
    } else if (kind === "unit" && rest.length === 3) {
      const [service, unit, state] = rest as [string, string, string];
      const units = facts.units.get(service) ?? new Map<string, string>();
      units.set(unit, state);
      facts.units.set(service, units);
    } else if (kind === "cert" && rest.length >= 2) {
      const [service, ...date] = rest;
      facts.certs.set(service!, date.join(" ") === "-" ? null : date.join(" "));
    } else if (kind === "tool" && rest.length === 2 && rest[1] === "missing") {
      facts.missingTools.push(rest[0]!);
    } else if (kind === "envoy" && rest[0] && rest[0] !== "-") {
      try {
        envoy = JSON.parse(Buffer.from(rest[0], "base64").toString("utf8")) as EnvoyClusters;
      } catch {
        envoy = null;
      }
    }
  }
  return { ...facts, envoy };
}

export interface ServiceStatus {
  readonly service: string;
  readonly host: string;
  /** Every unit active, and every upstream Envoy reported healthy. */
  readonly healthy: boolean;
  /** Why not, one line each (`web-pod.service inactive`); empty when healthy. */
  readonly problems: string[];
  /** Unit → state (`active`, `failed`, …). */
  readonly units: Record<string, string>;
  /** The served certificate's notAfter (ISO 8601), and days left; null when none was served. */
  readonly certificate: { readonly notAfter: string; readonly daysLeft: number } | null;
  /** When the newest of the service's installed files was written (ISO 8601). */
  readonly lastApplied: string | null;
  /** Installed files that differ from the plan, or are missing. */
  readonly drift: { readonly path: string; readonly state: "differs" | "missing" }[];
  /** Envoy's view of the service's cluster(s): each upstream host with its health and open connections. */
  readonly envoy: {
    readonly cluster: string;
    readonly address: string;
    readonly healthy: boolean;
    readonly connections: number;
  }[];
}

export interface StatusReport {
  readonly stack: string;
  readonly services: ServiceStatus[];
  /** Host-wide files (Envoy's, /etc/hosts block, …) that differ from the plan. */
  readonly hostFiles: { readonly host: string; readonly drift: ServiceStatus["drift"]; readonly lastApplied: string | null }[];
  /** What could not be checked and why (`certificates: openssl is not installed on edge`). */
  readonly notChecked: string[];
}

const iso = (seconds: number | null) => (seconds === null ? null : new Date(seconds * 1000).toISOString());

function driftOf(files: readonly PlannedFile[], facts: HostFacts | undefined): ServiceStatus["drift"] {
  return files.flatMap((f): ServiceStatus["drift"] => {
    const seen = facts?.files.get(f.path);
    if (!seen || seen.sha256 === null) return [{ path: f.path, state: "missing" as const }];
    return seen.sha256 === f.sha256 ? [] : [{ path: f.path, state: "differs" as const }];
  });
}

function newest(files: readonly PlannedFile[], facts: HostFacts | undefined): string | null {
  const times = files.map((f) => facts?.files.get(f.path)?.mtime ?? null).filter((t): t is number => t !== null);
  return times.length > 0 ? iso(Math.max(...times)) : null;
}

/** Sets what each host reported against the plan. `now` decides the days left. */
export function statusReport(
  stack: string,
  model: Model,
  planned: readonly PlannedFile[],
  factsByHost: ReadonlyMap<string, HostFacts>,
  now: Date,
): StatusReport {
  const ingress = ingressHost(model);
  const envoy = factsByHost.get(ingress.name)?.envoy;
  const missingTools = factsByHost.get(ingress.name)?.missingTools ?? [];
  const services = model.services.map((service): ServiceStatus => {
    const facts = factsByHost.get(service.host);
    const units = Object.fromEntries(serviceUnits(service).map((u) => [u, facts?.units.get(service.name)?.get(u) ?? "unknown"]));
    const files = planned.filter((f) => f.service === service.name);
    const notAfter = factsByHost.get(ingress.name)?.certs.get(service.name) ?? null;
    const expiry = notAfter ? new Date(notAfter) : null;
    const clusters = [
      `caddy_${service.name.replace(/[^A-Za-z0-9]/g, "_")}`,
      ...(service.l7 ? [`l7_${service.name.replace(/[^A-Za-z0-9]/g, "_")}`] : []),
    ];
    const upstreams = (envoy?.cluster_statuses ?? [])
      .filter((c) => clusters.includes(c.name))
      .flatMap((c) =>
        (c.host_statuses ?? []).map((h) => {
          const stat = (name: string) => Number(h.stats?.find((s) => s.name === name)?.value ?? 0);
          const address = (h as { address?: { socket_address?: { address?: string; port_value?: number } } }).address
            ?.socket_address;
          return {
            cluster: c.name,
            address: address ? `${address.address}:${address.port_value}` : "?",
            healthy: Object.keys(h.health_status ?? {}).every(
              (k) => k === "eds_health_status" && h.health_status![k] === "HEALTHY",
            ),
            connections: stat("cx_active"),
          };
        }),
      );
    const problems = [
      ...Object.entries(units)
        .filter(([, state]) => state !== "active")
        .map(([unit, state]) => `${unit} ${state}`),
      ...upstreams.filter((u) => !u.healthy).map((u) => `Envoy sees ${u.cluster} (${u.address}) unhealthy`),
    ];
    return {
      service: service.name,
      host: service.host,
      healthy: problems.length === 0,
      problems,
      units,
      certificate:
        expiry && !Number.isNaN(expiry.getTime())
          ? { notAfter: expiry.toISOString(), daysLeft: Math.floor((expiry.getTime() - now.getTime()) / 86_400_000) }
          : null,
      lastApplied: newest(files, facts),
      drift: driftOf(files, facts),
      envoy: upstreams,
    };
  });
  const hostFiles = model.hosts.map((host) => {
    const files = planned.filter((f) => f.host === host.name && f.service === null);
    const facts = factsByHost.get(host.name);
    return { host: host.name, drift: driftOf(files, facts), lastApplied: newest(files, facts) };
  });
  const notChecked = [
    ...(missingTools.includes("openssl") ? [`certificates: openssl is not installed on ${ingress.name}`] : []),
    ...(missingTools.includes("curl") ? [`Envoy's clusters: curl is not installed on ${ingress.name}`] : []),
  ];
  return { stack, services, hostFiles, notChecked };
}

/** The report as a table for a terminal. */
export function renderStatusTable(report: StatusReport): string {
  const header = ["service", "host", "units", "certificate", "last applied", "drift", "envoy"];
  const certificates = report.notChecked.some((n) => n.startsWith("certificates:")) ? "not checked" : "none served";
  const clusters = report.notChecked.some((n) => n.startsWith("Envoy's clusters:")) ? "not checked" : "no cluster";
  const rows = report.services.map((s) => {
    const states = Object.entries(s.units);
    const down = states.filter(([, state]) => state !== "active");
    return [
      s.service,
      s.host,
      down.length === 0 ? `${states.length}/${states.length} active` : down.map(([u, state]) => `${u} ${state}`).join(", "),
      s.certificate ? `${s.certificate.notAfter.slice(0, 10)} (${s.certificate.daysLeft} d)` : certificates,
      s.lastApplied ? s.lastApplied.replace("T", " ").slice(0, 16) : "-",
      s.drift.length === 0 ? "none" : s.drift.map((d) => `${d.path.slice(d.path.lastIndexOf("/") + 1)} ${d.state}`).join(", "),
      s.envoy.length === 0
        ? clusters
        : s.envoy.map((e) => `${e.cluster} ${e.healthy ? "healthy" : "UNHEALTHY"} ${e.connections} cx`).join(", "),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const hostLines = report.hostFiles.map(
    (h) =>
      `host ${h.host}: ${h.drift.length === 0 ? "no drift" : h.drift.map((d) => `${d.path} ${d.state}`).join(", ")}${h.lastApplied ? `; last applied ${h.lastApplied.replace("T", " ").slice(0, 16)}` : ""}`,
  );
  const notChecked = report.notChecked.map((n) => `not checked: ${n}`);
  return [`stack ${report.stack}`, line(header), ...rows.map(line), "", ...hostLines, ...notChecked, ""].join("\n");
}
