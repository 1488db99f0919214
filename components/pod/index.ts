import * as cloudflare from "@pulumi/cloudflare";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { createHash } from "node:crypto";
import { hostByName, ingressHost, serviceHome, serviceUser } from "../../model/topology";
import type { Model, Service } from "../../model/types";
import { blueprintDir } from "../authentik/render";
import { l7Credential } from "../ingress/render";
import type { Connection } from "../remote/file";
import { shQuote } from "../remote/script";
import { deployBundle, podDeployScript, podRemoveScript, type DeployFile, type DeploySecret, type PodDeploySpec } from "./deploy";
import { CADDY_ADMIN_SOCKET, requiredCaddyModules } from "./render/caddyfile";
import { CADDYFILE_IN_CONTAINER, caddyfilePath, quadletDir } from "./render/names";
import { cloudflareTokenSecretName, l7CredentialSecretName, podmanSecretName, renderPodFiles } from "./render";

export interface SidecarPodArgs {
  /** The validated stack model the service is part of (addresses, images, TLS issuer). */
  readonly platform: Model;
  /** The service this pod runs; must be one of `platform.services`. */
  readonly service: Service;
  /** SSH connection to the service's host. */
  readonly connection: pulumi.Input<Connection>;
  /**
   * For an `l7` service: the key its Caddy presents to Envoy's L7 listener
   * (IngressHost's `l7Keys`), a secret; required then, and nothing else has it.
   */
  readonly l7Key?: pulumi.Input<string>;
}

/**
 * One service as a rootless podman pod: its own Linux user, a Caddy sidecar that
 * terminates TLS for the service's name, the app (never published), podman secrets,
 * the DNS record(s) and a Cloudflare token that can only solve DNS-01 in one zone.
 */
/** The component's type token; its inputs and outputs list the pod's files (see the constructor). */
export const SIDECAR_POD = "edgeplane:index:SidecarPod";

export class SidecarPod extends pulumi.ComponentResource {
  public readonly fqdn: string;
  public readonly url: string;
  /** Absolute paths of the files this pod installs on its host. */
  public readonly files: string[];

  constructor(name: string, args: SidecarPodArgs, opts?: pulumi.ComponentResourceOptions) {
    const { platform, service, connection } = args;
    if (!platform.services.some((s) => s.name === service.name)) {
      throw new Error(`SidecarPod ${name}: service "${service.name}" is not part of the platform model`);
    }
    const podFiles = renderPodFiles(platform, service);
    // The pod's files as installed, with their content (never secret): `pulumi preview`
    // shows which file changed, the offline plan writes them out, and the policy pack
    // checks the units (the engine records a component's outputs, and policies read them).
    const described = {
      host: service.host,
      files: podFiles.map((f) => ({
        host: service.host,
        path: f.path,
        owner: serviceUser(service),
        mode: f.mode,
        service: service.name,
        sha256: sha256(f.content),
        content: f.content,
      })),
    };
    super(SIDECAR_POD, name, described, opts);

    /** Each podman secret with its value: on the deploy's stdin only, never in a file or a command's text. */
    const secrets: { secret: DeploySecret; value: pulumi.Output<string> }[] = [];
    let cfToken: cloudflare.ApiToken | undefined;
    if (platform.tls.issuer === "cloudflare-dns") {
      cfToken = this.dnsToken(name, platform, service);
      // A new token is handed to the running Caddy by a reload, not a restart.
      secrets.push({ secret: { name: cloudflareTokenSecretName(service), onChange: "reload" }, value: cfToken.value });
    }
    if (service.l7) {
      if (args.l7Key === undefined) {
        throw new pulumi.ResourceError(`service "${service.name}" has l7, so it needs the l7Key IngressHost made for it`, this);
      }
      const credential = pulumi.output(args.l7Key).apply((key) => l7Credential(service, key));
      secrets.push({ secret: { name: l7CredentialSecretName(service), onChange: "restart" }, value: credential });
    }
    for (const envName of service.secrets) {
      const suffix = envName.toLowerCase().replace(/_/g, "-");
      // Generated once and kept in state; never rendered into a file.
      const value = new random.RandomPassword(`${name}-secret-${suffix}`, { length: 48, special: false }, { parent: this });
      secrets.push({ secret: { name: podmanSecretName(service, envName), onChange: "restart" }, value: value.result });
    }

    const deploy = podDeploySpec(
      platform,
      service,
      described.files,
      secrets.map((s) => s.secret),
    );
    // One command, one SSH session: it re-runs (as an update) exactly when a file's hash
    // (in its text) or a secret's value (on stdin) changed, and never otherwise. Its text
    // is known at preview, where the policy pack checks it and a reviewer sees which
    // files changed; what is secret or known only at `up` travels on stdin.
    new command.remote.Command(
      `${name}-deploy`,
      {
        connection,
        create: podDeployScript(deploy),
        delete: podRemoveScript(deploy),
        // A service moved to another host is a new deploy there, then the old one's
        // removal on the old host (with the old connection): no pod is left behind.
        triggers: [service.host],
        stdin: pulumi.secret(
          pulumi.all(secrets.map((s) => s.value)).apply((values) =>
            deployBundle(
              podFiles.map((f) => f.content),
              values,
            ),
          ),
        ),
        // The tools' messages are the useful output; the script never prints a secret.
        logging: "stderr",
        // The previous run's output is of no use on the host; sshd refuses the variables anyway.
        addPreviousOutputInEnv: false,
      },
      { parent: this, additionalSecretOutputs: ["stdin", "stdout", "stderr"] },
    );

    this.dnsRecords(name, platform, service);

    this.fqdn = service.fqdn;
    this.url = `https://${service.fqdn}`;
    this.files = podFiles.map((f) => f.path);
    this.registerOutputs({ fqdn: this.fqdn, url: this.url, ...described });
  }

  /**
   * A public service resolves to the ingress host's public address; a tailnet service
   * to its tailnet address, so TLS names work for tailnet clients and the public
   * internet learns nothing routable. Records are never proxied: Envoy must see the
   * client's own TLS ClientHello.
   */
  private dnsRecords(name: string, platform: Model, service: Service): void {
    const ingress = ingressHost(platform);
    const adopted = platform.adopt?.records[service.name] ?? {};
    const record = (resourceName: string, type: "A" | "AAAA" | "CNAME", recordName: string, content: string) =>
      new cloudflare.DnsRecord(
        resourceName,
        {
          zoneId: platform.cloudflare.zoneId,
          name: recordName,
          type,
          content,
          proxied: false,
          ttl: 1,
          comment: `managed by edgeplane: stack ${pulumi.getStack()}, service ${service.name}`,
        },
        { parent: this, ...adoptOptions(adopted[type] && `${platform.cloudflare.zoneId}/${adopted[type]}`) },
      );
    const targets: [string, "A" | "AAAA", string | undefined][] =
      service.exposure === "public"
        ? [
            [`${name}-dns`, "A", ingress.publicIPv4],
            [`${name}-dns-v6`, "AAAA", ingress.publicIPv6],
          ]
        : [[`${name}-dns`, "A", ingress.tailnetIP]];
    for (const [resourceName, type, content] of targets) {
      if (content) record(resourceName, type, service.fqdn, content);
    }
    const challenge = platform.cloudflare.challengeZone;
    if (challenge && platform.tls.issuer === "cloudflare-dns") {
      record(`${name}-acme-challenge`, "CNAME", `_acme-challenge.${service.fqdn}`, challengeTarget(platform, service)!);
    }
  }

  /**
   * The pod's DNS-01 token: DNS Write and Zone Read on one zone (the challenge zone when
   * delegation is set, so a stolen token cannot touch service records), usable only
   * from the host's egress addresses when they are known. A new `tokenRotation` label
   * replaces it: the new token is created and swapped in before the old one is deleted.
   */
  private dnsToken(name: string, platform: Model, service: Service): cloudflare.ApiToken {
    const { permissionGroups, challengeZone } = platform.cloudflare;
    const zoneId = challengeZone?.id ?? platform.cloudflare.zoneId;
    const egress = hostByName(platform, service.host).egressIPs;
    const label = service.tokenRotation ? `-${service.tokenRotation}` : "";
    return new cloudflare.ApiToken(
      `${name}-token`,
      {
        name: `edgeplane-${pulumi.getStack()}-${service.name}${label}`,
        policies: [
          {
            effect: "allow",
            permissionGroups: [{ id: permissionGroups.dnsWrite }, { id: permissionGroups.zoneRead }],
            resources: JSON.stringify({ [`com.cloudflare.api.account.zone.${zoneId}`]: "*" }),
          },
        ],
        ...(egress ? { condition: { requestIp: { ins: egress.map(asCidr) } } } : {}),
      },
      {
        parent: this,
        // A rename would otherwise update the token in place and keep its value.
        replaceOnChanges: ["name"],
        // Never imported: Cloudflare returns a token's value only at creation, and the
        // pod needs it (the config refuses edgeplane:adopt.tokens).
      },
    );
  }
}

/** Where a service's `_acme-challenge` CNAME points: a name in the challenge zone, unique per FQDN. */
export function challengeTarget(platform: Model, service: Service): string | undefined {
  const zone = platform.cloudflare.challengeZone;
  return zone && `${service.fqdn}.${zone.name}`;
}

/**
 * What the pod's deploy command does on its host (components/pod/deploy.ts): `files`
 * and `secrets` in the order their contents and values travel on stdin.
 */
export function podDeploySpec(
  platform: Model,
  service: Service,
  files: readonly DeployFile[],
  secrets: readonly DeploySecret[],
): PodDeploySpec {
  return {
    service: service.name,
    host: service.host,
    user: serviceUser(service),
    home: serviceHome(service),
    unitDir: quadletDir(service),
    caddyfile: caddyfilePath(service),
    files,
    secrets,
    ...(platform.tls.issuer === "cloudflare-dns" ? { tokenSecret: cloudflareTokenSecretName(service) } : {}),
    caddyImage: platform.images.caddy,
    caddyModules: requiredCaddyModules(service),
    podUnit: `${service.name}-pod.service`,
    caddyContainer: `${service.name}-caddy`,
    reloadCaddy: `caddy reload --config ${CADDYFILE_IN_CONTAINER} --adapter caddyfile --address ${shQuote(`unix/${CADDY_ADMIN_SOCKET}`)}`,
    // The Authentik pod bind-mounts its blueprint folder, which must exist first.
    beforeStart: platform.authentik?.service === service.name ? [`mkdir -p ${shQuote(blueprintDir(platform))}`] : [],
  };
}

/** Pulumi `import` for an existing object; the first `up` then takes it over instead of creating a duplicate. */
function adoptOptions(importId: string | undefined): pulumi.CustomResourceOptions {
  return importId ? { import: importId } : {};
}

/** Cloudflare's token conditions take CIDR ranges. */
function asCidr(address: string): string {
  return address.includes("/") ? address : `${address}/${address.includes(":") ? 128 : 32}`;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
