/**
 * Derived facts about where traffic flows, computed from a valid model. Renderers
 * ask these questions instead of re-deriving addresses, so Envoy's clusters, each
 * pod's published port and each Caddy's PROXY-protocol allow list always agree.
 */
import type { Host, Model, Service } from "./types";

export function hostByName(model: Model, name: string): Host {
  const host = model.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`internal: unknown host ${JSON.stringify(name)} in a validated model`);
  return host;
}

export function ingressHost(model: Model): Host {
  const host = model.hosts.find((h) => h.ingress);
  if (!host) throw new Error("internal: a validated model has exactly one ingress host");
  return host;
}

/** True when the service's pod runs on the same machine as Envoy. */
export function colocatedWithIngress(model: Model, service: Service): boolean {
  return service.host === ingressHost(model).name;
}

/**
 * The address the pod publishes Caddy's port on: its host's tailnet address, also when
 * Envoy runs on the same host. Not loopback: pasta (which keeps a remote client's
 * source address on published ports) presents a connection from the host's loopback
 * as coming from the host's own primary address, which edgeplane cannot know (podman
 * starts pasta with --no-map-gw; passt(1), "--map-host-loopback"), so no PROXY allow
 * list could name Envoy there. A connection to the tailnet address keeps its source,
 * the ingress's tailnet address, wherever Envoy runs. The tailnet policy lets only the
 * ingress reach these ports.
 */
export function caddyBindAddress(model: Model, service: Service): string {
  return hostByName(model, service.host).tailnetIP;
}

/** Where the pod publishes its Caddy's metrics: the pod host's tailnet address, never a public one. */
export function metricsBindAddress(model: Model, service: Service): string {
  return hostByName(model, service.host).tailnetIP;
}

/** Where Envoy sends the still-encrypted stream for this service. */
export function envoyUpstream(model: Model, service: Service): { address: string; port: number } {
  return { address: caddyBindAddress(model, service), port: service.caddyPort };
}

/**
 * The only source address whose PROXY protocol header this pod's Caddy believes, as
 * seen inside the pod: the ingress's tailnet address, from which Envoy connects to the
 * pod's tailnet address on any host (see caddyBindAddress; pasta keeps the source).
 */
export function envoySourceAddress(model: Model, _service: Service): string {
  return ingressHost(model).tailnetIP;
}

/**
 * Where an `l7` service's Caddy sends requests: Envoy's L7 listener for it, on the
 * ingress host's tailnet address. Not loopback even for a pod on the ingress host:
 * inside a pasta pod, 127.0.0.1 is the pod itself.
 */
export function l7Upstream(model: Model, service: Service): { address: string; port: number } {
  if (!service.l7) throw new Error(`internal: service ${service.name} has no l7 settings`);
  return { address: ingressHost(model).tailnetIP, port: service.l7.listenPort };
}

/** Services that run on the given host, sorted by name. */
export function servicesOnHost(model: Model, hostName: string): Service[] {
  return model.services.filter((s) => s.host === hostName);
}

/** Linux user that owns and runs the service's rootless pod. */
export function serviceUser(service: Service): string {
  return `ep-${service.name}`;
}

/** Home of the service user; every per-service file lives below it. */
export function serviceHome(service: Service): string {
  return `/var/lib/edgeplane/${service.name}`;
}
