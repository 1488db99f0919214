/**
 * Names and paths shared by a pod's files and by the SidecarPod component, so the
 * secret a unit references is the secret the component creates, and the file a unit
 * mounts is the file the component installs.
 */
import { serviceHome } from "../../../model/topology";
import type { Service } from "../../../model/types";

/** Podman secret holding one generated app secret: `grafana` + `GF_SECURITY_SECRET_KEY` → `grafana-gf-security-secret-key`. */
export function podmanSecretName(service: Service, envName: string): string {
  return `${service.name}-${envName.toLowerCase().replace(/_/g, "-")}`;
}

/**
 * Podman secret holding an `l7` service's credential for Envoy's L7 listener (the value
 * of its x-edgeplane-l7-credential header). The dot keeps it apart from every name
 * podmanSecretName can make.
 */
export function l7CredentialSecretName(service: Service): string {
  return `${service.name}.l7-credential`;
}

/** The environment variable the Caddy container reads the L7 credential from. */
export const L7_CREDENTIAL_ENV = "EDGEPLANE_L7_CREDENTIAL";

/** Podman secret holding the pod's Cloudflare API token (DNS-01). */
export function cloudflareTokenSecretName(service: Service): string {
  return `${service.name}-cf-api-token`;
}

/** Quadlet file names of one pod (in `~/.config/containers/systemd/` of the service user). */
export function podUnitNames(service: Service) {
  return {
    pod: `${service.name}.pod`,
    caddyVolume: `${service.name}-caddy-data.volume`,
    caddyContainer: `${service.name}-caddy.container`,
    appContainer: `${service.name}-app.container`,
  } as const;
}

/** Where the service user's Quadlet files live. */
export function quadletDir(service: Service): string {
  return `${serviceHome(service)}/.config/containers/systemd`;
}

/** The folder holding the Caddyfile on the host, bind-mounted read-only into the Caddy container. */
export function caddyConfigDir(service: Service): string {
  return `${serviceHome(service)}/caddy`;
}

/** The Caddyfile on the host. */
export function caddyfilePath(service: Service): string {
  return `${caddyConfigDir(service)}/Caddyfile`;
}

/** Where the Caddy container sees the config folder, and the Caddyfile in it. */
export const CADDY_CONFIG_IN_CONTAINER = "/etc/caddy";
export const CADDYFILE_IN_CONTAINER = `${CADDY_CONFIG_IN_CONTAINER}/Caddyfile`;

/** Caddy's port inside the pod's network namespace; the pod publishes caddyPort → this. */
export const CADDY_CONTAINER_PORT = 443;
