/**
 * edgeplane: the stack config → a validated model → components. This is the only
 * module that reads pulumi.Config; everything below it takes plain values.
 */
import * as pulumi from "@pulumi/pulumi";
import { IngressHost } from "./components/ingress";
import { SidecarPod } from "./components/pod";
import type { Connection } from "./components/remote/file";
import { buildModel, CONFIG_KEYS } from "./model";
import { ingressHost } from "./model/topology";

const config = new pulumi.Config("edgeplane");

// Read every key as its raw JSON value; buildModel validates all of them at once
// before any resource is registered.
const raw: Record<string, unknown> = {};
for (const key of CONFIG_KEYS) {
  const value = config.get(key);
  if (value === undefined) continue;
  raw[key] = parseConfigValue(value);
}
const platform = buildModel(raw);

const sshPrivateKey = config.requireSecret("sshPrivateKey");
const connections = new Map<string, Connection>(
  platform.hosts.map((host) => [
    host.name,
    // One stable object per host: a spurious connection diff would re-run every
    // command on the host (LESSONS.md 8). Only the key is secret, so a preview still
    // shows which host and user a command targets.
    { host: host.ssh.host, port: host.ssh.port, user: host.ssh.user, privateKey: sshPrivateKey },
  ]),
);
const connectionTo = (hostName: string): Connection => {
  const connection = connections.get(hostName);
  if (!connection) throw new Error(`internal: no connection for host ${hostName}`);
  return connection;
};

const ingress = ingressHost(platform);
new IngressHost(ingress.name, { platform, connection: connectionTo(ingress.name) });

const pods = platform.services.map(
  (service) => new SidecarPod(service.name, { platform, service, connection: connectionTo(service.host) }),
);

/** The URL of every service, by service name. */
export const urls = Object.fromEntries(pods.map((pod, i) => [platform.services[i]!.name, pod.url]));
/** The ingress host's name and public address(es). */
export const ingressAddresses = { host: ingress.name, ipv4: ingress.publicIPv4 ?? null, ipv6: ingress.publicIPv6 ?? null };

/** Pulumi hands structured config values over as JSON text; plain strings stay strings. */
function parseConfigValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
