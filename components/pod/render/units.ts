/**
 * Quadlet files of one pod, for `~/.config/containers/systemd/` of the service user
 * (rootless podman ≥ 5: `.pod` units). Only keys Quadlet already knows in Podman 5.0
 * are used, because Quadlet rejects a file with an unknown key.
 */
import { BLUEPRINTS_IN_CONTAINER, blueprintDir } from "../../authentik/render";
import { caddyBindAddress, ingressHost, metricsBindAddress } from "../../../model/topology";
import type { ExtraContainer, Model, Service } from "../../../model/types";
import { entry, marshalUnit, section, words, type UnitEntry, type UnitSection } from "../../render/unit";
import {
  CADDY_CONTAINER_PORT,
  CADDY_CONFIG_IN_CONTAINER,
  CADDYFILE_IN_CONTAINER,
  caddyConfigDir,
  cloudflareTokenSecretName,
  L7_CREDENTIAL_ENV,
  l7CredentialSecretName,
  podmanSecretName,
  podUnitNames,
} from "./names";

const origin = (service: Service) => `service ${service.name}`;

/** Every container restarts on failure and waits long enough for a first image pull. */
function serviceSection(): UnitSection {
  return section(
    "Service",
    entry("Restart", "always"),
    entry("TimeoutStartSec", "900", ["The first start pulls the image; systemd's default 90 s is too short for that."]),
  );
}

function installSection(): UnitSection {
  return section("Install", entry("WantedBy", "default.target"));
}

/** A podman secret handed to a container as one environment variable. */
function envSecret(secretName: string, envName: string): UnitEntry {
  return entry("Secret", `${secretName},type=env,target=${envName}`);
}

/**
 * Names the pod must resolve to Envoy rather than through public DNS. A pod behind
 * Authentik calls the outpost at the Authentik FQDN; public DNS would give the ingress
 * host's public address, which inside a pasta namespace on that host is the pod's own
 * address. The ingress host's tailnet address reaches Envoy from every host
 * (pods reach Authentik through Envoy, never over the internet).
 */
function addedHosts(model: Model, service: Service): UnitEntry[] {
  if (!service.auth || !model.authentik) return [];
  const authentik = model.services.find((s) => s.name === model.authentik?.service);
  if (!authentik)
    throw new Error(`internal: authentik service ${JSON.stringify(model.authentik.service)} is not in a validated model`);
  return [
    entry("PodmanArgs", words(`--add-host=${authentik.fqdn}:${ingressHost(model).tailnetIP}`), [
      "Authentik is reached through Envoy on the tailnet, never over the internet.",
      "(PodmanArgs: Quadlet's [Pod] AddHost= is newer than Podman 5.0.)",
    ]),
  ];
}

/** `<name>.pod`: the shared network namespace; publishes Caddy's port and nothing else. */
export function renderPodUnit(model: Model, service: Service): string {
  return marshalUnit({
    origin: origin(service),
    sections: [
      section("Unit", entry("Description", `edgeplane pod ${service.name} (${service.fqdn})`)),
      section(
        "Pod",
        entry("PodName", service.name),
        entry("Network", "pasta", [
          "pasta keeps the client's source address on published ports (a bridge network's",
          "rootlessport would rewrite it), so Caddy's PROXY allow list sees Envoy's real",
          "address (containers/podman issues #26581 and #8193).",
        ]),
        entry("PublishPort", `${caddyBindAddress(model, service)}:${service.caddyPort}:${CADDY_CONTAINER_PORT}`, [
          "Only Caddy, only on the address Envoy reaches. The app port is never published:",
          "whoever reaches the app directly can forge identity headers.",
        ]),
        entry("PublishPort", `${metricsBindAddress(model, service)}:${service.metricsPort}:${service.metricsPort}`, [
          "Caddy's metrics, on the tailnet address only (the tailnet policy lets only admins reach it).",
        ]),
        addedHosts(model, service),
      ),
      installSection(),
    ],
  });
}

/** `<name>-caddy-data.volume`: Caddy's /data (certificates, ACME account, local CA). */
export function renderCaddyVolumeUnit(service: Service): string {
  return marshalUnit({
    origin: origin(service),
    sections: [
      section("Unit", entry("Description", `edgeplane Caddy data of ${service.name}`)),
      section(
        "Volume",
        entry("VolumeName", `${service.name}-caddy-data`, [
          "Certificates and the ACME account survive restarts and pod re-creation: re-issuing",
          "on every start runs into the CA's rate limits (https://letsencrypt.org/docs/rate-limits/). Quadlet only ever",
          "creates this volume; removing the unit leaves it in place.",
        ]),
      ),
    ],
  });
}

/** `<name>-caddy.container`: the TLS-terminating, forward-auth sidecar. */
export function renderCaddyContainerUnit(model: Model, service: Service): string {
  const names = podUnitNames(service);
  const issuer = model.tls.issuer;
  let tokenSecret: UnitEntry[];
  switch (issuer) {
    case "cloudflare-dns":
      tokenSecret = [
        entry("Secret", `${cloudflareTokenSecretName(service)},type=env,target=CF_API_TOKEN`, [
          "DNS-01 token, read by the Caddyfile as {$CF_API_TOKEN}; the value lives only in podman's secret store.",
        ]),
      ];
      break;
    case "internal":
      tokenSecret = [];
      break;
    default: {
      const _exhaustive: never = issuer;
      throw new Error(`unknown TLS issuer ${String(_exhaustive)}`);
    }
  }
  return marshalUnit({
    origin: origin(service),
    sections: [
      section("Unit", entry("Description", `edgeplane Caddy for ${service.fqdn}`)),
      section(
        "Container",
        entry("ContainerName", `${service.name}-caddy`),
        entry("Pod", names.pod),
        entry("Image", model.images.caddy),
        entry("Volume", `${caddyConfigDir(service)}:${CADDY_CONFIG_IN_CONTAINER}:ro,Z`, [
          "The folder, not the file: the Caddyfile is replaced by rename, and a file bind",
          "mount would keep showing the old one to `caddy reload`.",
        ]),
        entry("Volume", `${names.caddyVolume}:/data:Z`),
        tokenSecret,
        service.l7
          ? [
              entry("Secret", `${l7CredentialSecretName(service)},type=env,target=${L7_CREDENTIAL_ENV}`, [
                "What this Caddy presents to Envoy's L7 listener, read by the Caddyfile at request time",
                `as {env.${L7_CREDENTIAL_ENV}}; the app container never gets it.`,
              ]),
            ]
          : [],
        entry("Exec", words("caddy", "run", "--config", CADDYFILE_IN_CONTAINER, "--adapter", "caddyfile")),
        entry("StopTimeout", "15", ["Longer than Caddy's grace_period (10s), so open requests finish before SIGKILL."]),
      ),
      serviceSection(),
      installSection(),
    ],
  });
}

/** `<name>-app.container`: the app itself, reachable only inside the pod. */
export function renderAppContainerUnit(model: Model, service: Service): string {
  const names = podUnitNames(service);
  return marshalUnit({
    origin: origin(service),
    sections: [
      section("Unit", entry("Description", `edgeplane app ${service.name}`)),
      section(
        "Container",
        entry("ContainerName", `${service.name}-app`),
        entry("Pod", names.pod),
        entry("Image", service.image),
        service.env.map(([name, value]) => entry("Environment", words(`${name}=${value}`))),
        service.secrets.map((envName) => envSecret(podmanSecretName(service, envName), envName)),
        service.volumes.map((spec) => entry("Volume", spec)),
        service.command ? entry("Exec", words(...service.command)) : [],
        model.authentik?.service === service.name
          ? entry("Volume", `${blueprintDir(model)}:${BLUEPRINTS_IN_CONTAINER}:ro,Z`, [
              "edgeplane's Authentik blueprints (one per protected service, and the outpost's provider list).",
            ])
          : [],
      ),
      serviceSection(),
      installSection(),
    ],
  });
}

/** `<name>-<container>.container`: a further container of the pod (a worker, a database), never published. */
export function renderExtraContainerUnit(service: Service, container: ExtraContainer): string {
  return marshalUnit({
    origin: origin(service),
    sections: [
      section("Unit", entry("Description", `edgeplane ${service.name}: ${container.name}`)),
      section(
        "Container",
        entry("ContainerName", `${service.name}-${container.name}`),
        entry("Pod", podUnitNames(service).pod),
        entry("Image", container.image),
        container.env.map(([name, value]) => entry("Environment", words(`${name}=${value}`))),
        container.secrets.map(([envName, secret]) => envSecret(podmanSecretName(service, secret), envName)),
        container.volumes.map((spec) => entry("Volume", spec)),
        container.command ? entry("Exec", words(...container.command)) : [],
      ),
      serviceSection(),
      installSection(),
    ],
  });
}

/** Quadlet files by file name, for renderPodFiles. */
export function renderPodUnits(model: Model, service: Service): [string, string][] {
  const names = podUnitNames(service);
  return [
    [names.pod, renderPodUnit(model, service)],
    [names.caddyVolume, renderCaddyVolumeUnit(service)],
    [names.caddyContainer, renderCaddyContainerUnit(model, service)],
    [names.appContainer, renderAppContainerUnit(model, service)],
    ...(service.containers ?? []).map((c): [string, string] => [
      `${service.name}-${c.name}.container`,
      renderExtraContainerUnit(service, c),
    ]),
  ];
}
