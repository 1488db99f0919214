/**
 * Pure renderers for one service's pod: the Caddyfile and the Quadlet units, plus the
 * list of every file the pod installs. No Pulumi, no I/O: a model in, text out.
 * The pieces live in ./render/; this module is the component's single entry point.
 */
import type { Model, Service } from "../../model/types";
import { renderCaddyfile } from "./render/caddyfile";
import { caddyfilePath, quadletDir } from "./render/names";
import { renderPodUnits } from "./render/units";

export { AUTHENTIK_HEADERS, accessLog, renderCaddyfile, stripClientClaims, tlsDirective } from "./render/caddyfile";
export { cloudflareTokenSecretName, l7CredentialSecretName, podmanSecretName, podUnitNames } from "./render/names";
export { renderAppContainerUnit, renderCaddyContainerUnit, renderCaddyVolumeUnit, renderPodUnit } from "./render/units";

export interface PodFile {
  /** Absolute path on the service's host. */
  readonly path: string;
  readonly content: string;
  /** Octal mode. Nothing here is secret: secrets are podman secrets, referenced by name. */
  readonly mode: string;
}

/** Every file of `service`'s pod with its absolute path, sorted by path. */
export function renderPodFiles(model: Model, service: Service): PodFile[] {
  const files: PodFile[] = [
    { path: caddyfilePath(service), content: renderCaddyfile(model, service), mode: "0644" },
    ...renderPodUnits(model, service).map(([name, content]) => ({
      path: `${quadletDir(service)}/${name}`,
      content,
      mode: "0644",
    })),
  ];
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
