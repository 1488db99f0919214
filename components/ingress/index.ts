import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ingressHost } from "../../model/topology";
import type { Model } from "../../model/types";
import { HOSTS_BLOCK_PATH, renderHostsBlock, spliceHostsScript } from "../hosts/render";
import { PROMETHEUS_SCRAPE_PATH, renderPrometheusScrapeConfig } from "../metrics/render";
import { RemoteFile, type Connection } from "../remote/file";
import { quadletValidator, shQuote } from "../remote/script";
import {
  l7KeyDigest,
  renderClusters,
  renderEnvoyBootstrap,
  renderListeners,
  renderValidationBootstrap,
  type L7Digests,
} from "./render";
import { renderEnvoyContainerUnit } from "./renderUnit";

export interface IngressHostArgs {
  /** The validated stack model; its ingress host is the one this component manages. */
  readonly platform: Model;
  /** SSH connection to the ingress host. */
  readonly connection: pulumi.Input<Connection>;
}

/** Where Envoy's files live on the ingress host. */
export const envoyPaths = {
  bootstrap: "/etc/envoy/envoy.yaml",
  listeners: "/etc/envoy/lds.yaml",
  clusters: "/etc/envoy/cds.yaml",
  /** Outside Envoy's watched directory, so writing it never triggers a reload. */
  check: "/etc/envoy/check/static.yaml",
  unit: "/etc/containers/systemd/envoy.container",
} as const;

/**
 * The rootful Envoy on the ingress host: SNI passthrough on :443, HTTP→HTTPS on :80,
 * admin on loopback. Listeners and clusters are files Envoy watches (filesystem xDS),
 * so a routing change is applied without a restart; only a bootstrap or image change
 * restarts Envoy.
 */
export class IngressHost extends pulumi.ComponentResource {
  public readonly host: string;
  public readonly files: string[];
  /**
   * Per `l7` service (by name): the key its Caddy presents to Envoy's L7 listener, a
   * secret. Give it to that service's SidecarPod (`l7Key`); Envoy's config holds only
   * its digest.
   */
  public readonly l7Keys: Readonly<Record<string, pulumi.Output<string>>>;

  constructor(name: string, args: IngressHostArgs, opts?: pulumi.ComponentResourceOptions) {
    const ingress = ingressHost(args.platform);
    const addresses = {
      publicIPv4: ingress.publicIPv4 ?? null,
      publicIPv6: ingress.publicIPv6 ?? null,
      tailnetIP: ingress.tailnetIP,
    };
    // The addresses are the component's inputs (the preview and the plan show where
    // records point) and its registered outputs below: the engine records a
    // component's outputs, and that is what stack-wide checks (the policy pack) read.
    super("edgeplane:index:IngressHost", name, addresses, opts);
    const { platform, connection } = args;
    const host = ingress.name;
    // Generated once per l7 service and kept in state.
    const l7Keys: Record<string, pulumi.Output<string>> = {};
    for (const service of platform.services.filter((s) => s.l7)) {
      l7Keys[service.name] = new random.RandomPassword(
        `${service.name}-l7-key`,
        { length: 48, special: false },
        { parent: this },
      ).result;
    }
    this.l7Keys = l7Keys;
    // Only digests reach the rendered files; a digest of a 48-character random key
    // discloses nothing, so it is declared not secret (or every listener file would be).
    const digests: pulumi.Output<L7Digests> = pulumi.unsecret(
      pulumi.all(l7Keys).apply((keys) => Object.fromEntries(Object.entries(keys).map(([svc, key]) => [svc, l7KeyDigest(key)]))),
    );
    const file = (
      suffix: string,
      path: string,
      content: pulumi.Input<string>,
      extra: { validate?: string; dependsOn?: pulumi.Resource[] } = {},
    ) =>
      new RemoteFile(
        `${name}-${suffix}`,
        {
          connection,
          host,
          path,
          content,
          owner: "root",
          mode: "0644",
          ...(extra.validate ? { validate: extra.validate } : {}),
        },
        { parent: this, ...(extra.dependsOn ? { dependsOn: extra.dependsOn } : {}) },
      );

    // Envoy does not validate the contents of file-based LDS/CDS (REFERENCE.md §7), so
    // the same listeners and clusters are first assembled into a static bootstrap and
    // validated by the real Envoy; the live files are only written after that passed.
    const check = file(
      "check",
      envoyPaths.check,
      digests.apply((d) => renderValidationBootstrap(platform, d)),
      {
        validate: `sudo -n podman run --rm --network none -v "$candidate":/check.yaml:ro,Z ${shQuote(platform.images.envoy)} envoy --mode validate -c /check.yaml`,
      },
    );
    // Clusters before listeners: a listener must never name a cluster Envoy lacks.
    const clusters = file("cds", envoyPaths.clusters, renderClusters(platform), { dependsOn: [check.install] });
    const listeners = file(
      "lds",
      envoyPaths.listeners,
      digests.apply((d) => renderListeners(platform, d)),
      { dependsOn: [clusters.install] },
    );
    const bootstrap = file("bootstrap", envoyPaths.bootstrap, renderEnvoyBootstrap(platform), { dependsOn: [check.install] });
    const unit = file("unit", envoyPaths.unit, renderEnvoyContainerUnit(platform), {
      validate: quadletValidator("envoy.container"),
    });

    // Restart only for what Envoy reads at start: the bootstrap and the unit (image).
    const activation = pulumi.all([bootstrap.sha256, unit.sha256]).apply(([b, u]) =>
      [
        "# edgeplane: activate envoy",
        `# bootstrap ${b}`,
        `# unit ${u}`,
        "set -eu",
        // Quadlet reports unit errors only in its own dry run; daemon-reload would
        // silently drop a broken unit.
        "sudo -n /usr/libexec/podman/quadlet -dryrun >/dev/null",
        "sudo -n systemctl daemon-reload",
        "sudo -n systemctl restart envoy.service",
        "",
      ].join("\n"),
    );
    new command.remote.Command(
      `${name}-activate`,
      {
        connection,
        create: activation,
        delete: "sudo -n systemctl stop envoy.service || true\nsudo -n systemctl daemon-reload || true\n",
      },
      { parent: this, dependsOn: [bootstrap.install, unit.install, listeners.install, clusters.install] },
    );

    // Names the platform serves resolve to the local Envoy on this host too.
    const hostsBlock = file("hosts-block", HOSTS_BLOCK_PATH, renderHostsBlock(platform));
    new command.remote.Command(
      `${name}-hosts`,
      {
        connection,
        create: hostsBlock.sha256.apply(
          (hash) =>
            `# edgeplane: /etc/hosts block from ${HOSTS_BLOCK_PATH} ${hash}\n${spliceHostsScript("/etc/hosts", HOSTS_BLOCK_PATH)}`,
        ),
        delete: spliceHostsScript("/etc/hosts", null),
      },
      { parent: this, dependsOn: [hostsBlock.install] },
    );

    // For the operator's Prometheus: where every metrics endpoint of the stack is.
    file("prometheus-scrape", PROMETHEUS_SCRAPE_PATH, renderPrometheusScrapeConfig(platform));

    this.host = host;
    this.files = [...Object.values(envoyPaths), HOSTS_BLOCK_PATH, PROMETHEUS_SCRAPE_PATH].sort();
    this.registerOutputs({ host: this.host, files: this.files, ...addresses });
  }
}
