import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ingressHost } from "../../model/topology";
import type { Model } from "../../model/types";
import { HOSTS_BLOCK_PATH, renderHostsBlock, spliceHostsScript } from "../hosts/render";
import { PROMETHEUS_SCRAPE_PATH, renderPrometheusScrapeConfig } from "../metrics/render";
import { RemoteFile, type Connection } from "../remote/file";
import { installScript, quadletValidator, removeScript, shQuote } from "../remote/script";
import {
  L7_CREDENTIALS_DIR,
  l7CredentialFile,
  l7CredentialPath,
  renderClusters,
  renderEnvoyBootstrap,
  renderListeners,
  renderValidationBootstrap,
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
   * secret. Give it to that service's SidecarPod (`l7Key`); Envoy holds only its
   * digest, in a file of its own (l7CredentialPath).
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
    // Generated once per l7 service and kept in state; it never rotates by itself.
    const l7Keys: Record<string, pulumi.Output<string>> = {};
    // Each key's digest goes to Envoy in a file of its own, installed from stdin: the
    // digest exists only once the key does (at `up`), and the rendered files, which
    // the preview and the plan show and the policy pack reads, must not wait for it.
    // Envoy reads the file when it builds the listener, so a changed key takes effect
    // at the next change of that listener (or an Envoy restart), not by itself.
    const credentials: command.remote.Command[] = [];
    for (const service of platform.services.filter((s) => s.l7)) {
      const key = new random.RandomPassword(`${service.name}-l7-key`, { length: 48, special: false }, { parent: this }).result;
      l7Keys[service.name] = key;
      const path = l7CredentialPath(service);
      const description = `${path} (L7 credential digest of ${service.name})`;
      credentials.push(
        new command.remote.Command(
          `${name}-l7-credential-${service.name}`,
          {
            connection,
            // A digest of a 48-character random key discloses nothing, so Envoy (which
            // runs as its own user) may read it: root's, mode 0644. It still travels
            // only on stdin, and the text names no hash, so it is known at preview.
            stdin: pulumi.secret(key.apply((k) => l7CredentialFile(service, k))),
            create: installScript({ path, owner: "root", mode: "0644", description }),
            delete: removeScript({ path, description }),
            logging: "none",
          },
          { parent: this, additionalSecretOutputs: ["stdout", "stderr", "stdin"] },
        ),
      );
    }
    this.l7Keys = l7Keys;
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

    // `envoy --mode validate` does not validate the contents of file-based LDS/CDS
    // (envoyproxy/envoy#36289, #24663), so the same listeners and clusters are first
    // assembled into a static bootstrap and validated by the real Envoy; the live
    // files are only written after that passed.
    // The L7 listeners read their credential files, so the check needs them too:
    // mounted read-only without relabelling, which would take them from the live Envoy
    // (its unit mounts /etc/envoy with a private SELinux label).
    const credentialMount =
      credentials.length > 0 ? `--security-opt label=disable -v ${L7_CREDENTIALS_DIR}:${L7_CREDENTIALS_DIR}:ro ` : "";
    const check = file("check", envoyPaths.check, renderValidationBootstrap(platform), {
      validate: `sudo -n podman run --rm --network none ${credentialMount}-v "$candidate":/check.yaml:ro,Z ${shQuote(platform.images.envoy)} envoy --mode validate -c /check.yaml`,
      dependsOn: credentials,
    });
    // Clusters before listeners: a listener must never name a cluster Envoy lacks.
    const clusters = file("cds", envoyPaths.clusters, renderClusters(platform), { dependsOn: [check.install] });
    const listeners = file("lds", envoyPaths.listeners, renderListeners(platform), { dependsOn: [clusters.install] });
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
