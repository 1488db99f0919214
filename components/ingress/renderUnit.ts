/**
 * The rootful Quadlet unit that runs Envoy on the ingress host
 * (/etc/containers/systemd/envoy.container → envoy.service). Pure: model in, text out.
 */
import { ingressHost } from "../../model/topology";
import type { Model } from "../../model/types";
import { entry, marshalUnit, section, words } from "../render/unit";

export function renderEnvoyContainerUnit(model: Model): string {
  return marshalUnit({
    origin: `ingress host ${ingressHost(model).name}`,
    sections: [
      section("Unit", entry("Description", "edgeplane Envoy: SNI passthrough ingress")),
      section(
        "Container",
        entry("ContainerName", "envoy"),
        entry("Image", model.images.envoy),
        entry("Network", "host", ["Listens on the host's :80, :443 and loopback admin port directly."]),
        entry("LogDriver", "journald", [
          "Envoy's access log (one JSON line per connection or request) goes to stdout and from",
          "there to the journal: journalctl -u envoy.service.",
        ]),
        entry("User", "envoy", [
          "The image's entrypoint (docker-entrypoint.sh) starts as root and su-execs to its",
          "`envoy` user, which drops every capability, so that user could not bind :80/:443",
          "on the host network. Starting as `envoy` skips the su-exec; podman gives a",
          "non-root user the added capability (ambient), and nothing else.",
        ]),
        entry("DropCapability", "all"),
        entry("AddCapability", "CAP_NET_BIND_SERVICE"),
        entry("NoNewPrivileges", "true"),
        entry("ReadOnly", "true"),
        entry("Volume", "/etc/envoy:/etc/envoy:ro,Z", [
          "The directory, not single files: Envoy watches lds.yaml/cds.yaml, which are",
          "replaced by rename, and a file bind mount would keep showing the old inode.",
        ]),
        entry("Exec", words("envoy", "-c", "/etc/envoy/envoy.yaml"), [
          "The entrypoint runs its arguments as the command (it prepends `envoy` only to",
          "arguments that start with `-`), so name the binary explicitly.",
        ]),
      ),
      section(
        "Service",
        entry("Restart", "always"),
        entry("TimeoutStartSec", "900", ["The first start pulls the image; systemd's default 90 s is too short for that."]),
      ),
      section("Install", entry("WantedBy", "multi-user.target")),
    ],
  });
}
