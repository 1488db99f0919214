import * as cloudflare from "@pulumi/cloudflare";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { createHash } from "node:crypto";
import { hostByName, ingressHost, serviceHome, serviceUser } from "../../model/topology";
import type { Model, Service } from "../../model/types";
import { blueprintDir } from "../authentik/render";
import { l7Credential } from "../ingress/render";
import { RemoteFile, type Connection } from "../remote/file";
import { asServiceUser, caddyModulesCheck, quadletValidator, shQuote } from "../remote/script";
import { CADDY_ADMIN_SOCKET, requiredCaddyModules } from "./render/caddyfile";
import { CADDYFILE_IN_CONTAINER, caddyfilePath } from "./render/names";
import { cloudflareTokenSecretName, l7CredentialSecretName, podmanSecretName, renderPodFiles, type PodFile } from "./render";

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
export class SidecarPod extends pulumi.ComponentResource {
  public readonly fqdn: string;
  public readonly url: string;
  /** Absolute paths of the files this pod installs on its host. */
  public readonly files: string[];

  constructor(name: string, args: SidecarPodArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edgeplane:index:SidecarPod", name, {}, opts);
    const { platform, service, connection } = args;
    if (!platform.services.some((s) => s.name === service.name)) {
      throw new pulumi.ResourceError(`service "${service.name}" is not part of the platform model`, this);
    }
    const user = serviceUser(service);

    const account = new command.remote.Command(
      `${name}-user`,
      {
        connection,
        create: serviceUserScript(service),
        // The user and its home stay: they hold Caddy's certificates and ACME account
        // (podman volumes), and re-issuing them on every re-creation hits CA rate limits.
        delete: `sudo -n loginctl disable-linger ${shQuote(user)} || true\n`,
      },
      { parent: this },
    );

    const secretCommands: command.remote.Command[] = [];
    /** Digest of each generated secret's value, by environment name: a new value restarts the pod. */
    const secretDigests: pulumi.Output<string>[] = [];
    const podmanSecret = (secretName: string, value: pulumi.Output<string>, resource: string) => {
      const cmd = new command.remote.Command(
        resource,
        {
          connection,
          // The value is on stdin only: never in the command text, the logs or stdout.
          stdin: pulumi.secret(value),
          create: asServiceUser(user, `podman secret create --replace ${shQuote(secretName)} - >/dev/null`),
          delete: asServiceUser(user, `podman secret rm ${shQuote(secretName)} >/dev/null 2>&1 || true`),
          logging: "none",
        },
        { parent: this, dependsOn: [account], additionalSecretOutputs: ["stdout", "stderr", "stdin"] },
      );
      secretCommands.push(cmd);
    };

    let cfToken: cloudflare.ApiToken | undefined;
    if (platform.tls.issuer === "cloudflare-dns") {
      cfToken = this.dnsToken(name, platform, service);
      // Not a restart trigger: the reload below hands a new token to the running Caddy.
      podmanSecret(cloudflareTokenSecretName(service), cfToken.value, `${name}-cf-token-secret`);
    }

    if (service.l7) {
      if (args.l7Key === undefined) {
        throw new pulumi.ResourceError(`service "${service.name}" has l7, so it needs the l7Key IngressHost made for it`, this);
      }
      const credential = pulumi.output(args.l7Key).apply((key) => l7Credential(service, key));
      podmanSecret(l7CredentialSecretName(service), credential, `${name}-l7-credential-secret`);
    }

    for (const envName of service.secrets) {
      const suffix = envName.toLowerCase().replace(/_/g, "-");
      // Generated once and kept in state; never rendered into a file.
      const value = new random.RandomPassword(`${name}-secret-${suffix}`, { length: 48, special: false }, { parent: this });
      podmanSecret(podmanSecretName(service, envName), value.result, `${name}-secret-${suffix}-podman`);
      secretDigests.push(value.result.apply((v) => `${envName} ${createHash("sha256").update(v).digest("hex")}`));
    }

    const podFiles = renderPodFiles(platform, service);
    // Units are checked by Quadlet before they replace the installed ones, against the
    // folder as it will be; so the pod and volume units go first and the containers,
    // which name them, after.
    const install = (file: PodFile, after: pulumi.Resource[]) => {
      const basename = file.path.slice(file.path.lastIndexOf("/") + 1);
      const validate = basename === "Caddyfile" ? caddyValidator(platform, service) : quadletValidator(basename, user);
      return new RemoteFile(
        `${name}-${basename}`,
        {
          connection,
          host: service.host,
          path: file.path,
          content: file.content,
          owner: user,
          mode: file.mode,
          service: service.name,
          validate,
        },
        { parent: this, dependsOn: [account, ...after] },
      );
    };
    const isContainer = (f: PodFile) => f.path.endsWith(".container");
    const referenced = podFiles.filter((f) => !isContainer(f)).map((f) => install(f, []));
    const containers = podFiles.filter(isContainer).map((f) =>
      install(
        f,
        referenced.map((r) => r.install),
      ),
    );
    const installed = [...referenced, ...containers];

    // Restart for what the containers read at start (units, images, secrets); reload for
    // the Caddyfile, which Caddy swaps in without dropping connections (grace_period).
    // Each command re-runs (as an update) exactly when an input it depends on changed,
    // and never otherwise: the text lists the hashes of its files, and what is secret or
    // unknown until `up` (a generated secret, a new token) travels on stdin, so the text
    // is known at preview, where the policy pack checks it.
    const caddyfile = installed.find((f) => f.path === caddyfilePath(service));
    if (!caddyfile) throw new pulumi.ResourceError(`internal: no Caddyfile for ${service.name}`, this);
    const units = installed.filter((f) => f !== caddyfile);
    const podUnit = shQuote(`${service.name}-pod.service`);
    const restartText = pulumi.all(units.map((f) => pulumi.interpolate`${f.path} ${f.sha256}`)).apply((files) =>
      [
        `# edgeplane: (re)start pod ${service.name}`,
        ...files.map((f) => `# unit ${f}`),
        "set -eu",
        // stdin holds the digests of the generated secrets, only so that a new secret
        // re-runs this command; nothing here needs them.
        ...(secretDigests.length > 0 ? ["cat >/dev/null"] : []),
        // The Authentik pod bind-mounts its blueprint folder, which must exist first.
        ...(platform.authentik?.service === service.name
          ? [asServiceUser(user, `mkdir -p ${shQuote(blueprintDir(platform))}`)]
          : []),
        // Quadlet reports unit errors only in its own dry run; daemon-reload would
        // silently drop a broken unit.
        asServiceUser(
          user,
          `/usr/libexec/podman/quadlet -dryrun -user >/dev/null && systemctl --user daemon-reload && systemctl --user restart ${podUnit}`,
        ),
        "",
      ].join("\n"),
    );
    const restart = new command.remote.Command(
      `${name}-activate`,
      {
        connection,
        create: restartText,
        delete: asServiceUser(user, `systemctl --user stop ${podUnit} || true; systemctl --user daemon-reload || true`),
        ...(secretDigests.length > 0
          ? { stdin: pulumi.secret(pulumi.all(secretDigests).apply((lines) => lines.join("\n") + "\n")) }
          : {}),
      },
      {
        parent: this,
        dependsOn: [...installed.map((f) => f.install), ...secretCommands],
        ...(secretDigests.length > 0 ? { additionalSecretOutputs: ["stdin"] } : {}),
      },
    );
    const caddyContainer = shQuote(`${service.name}-caddy`);
    const reloadCaddy = `caddy reload --config ${CADDYFILE_IN_CONTAINER} --adapter caddyfile --address ${shQuote(`unix/${CADDY_ADMIN_SOCKET}`)}`;
    // The Caddyfile reads the token as {$CF_API_TOKEN}, substituted by whichever process
    // adapts it: at start, the container's env (the podman secret); on reload, the value
    // this command reads from stdin. So a new token reaches the running Caddy by a reload,
    // without dropping a connection, and a restart later reads the replaced secret.
    const withToken = cfToken ? `CF_API_TOKEN="$(cat)" podman exec --env CF_API_TOKEN` : "podman exec";
    new command.remote.Command(
      `${name}-reload`,
      {
        connection,
        // A rotated token changes stdin (its value), which re-runs the reload.
        create: caddyfile.sha256.apply((hash) =>
          [
            `# edgeplane: reload Caddy of ${service.name}`,
            `# Caddyfile ${caddyfile.path} ${hash}`,
            "set -eu",
            // A container that is not running reads the new file when it starts.
            asServiceUser(
              user,
              `if [ "$(podman container inspect -f '{{.State.Running}}' ${caddyContainer} 2>/dev/null)" = true ]; then ` +
                `${withToken} ${caddyContainer} ${reloadCaddy}; fi`,
            ),
            "",
          ].join("\n"),
        ),
        ...(cfToken ? { stdin: pulumi.secret(cfToken.value), logging: "none" as const } : {}),
      },
      {
        parent: this,
        dependsOn: [caddyfile.install, restart, ...secretCommands],
        ...(cfToken ? { additionalSecretOutputs: ["stdout", "stderr", "stdin"] } : {}),
      },
    );

    this.dnsRecords(name, platform, service);

    this.fqdn = service.fqdn;
    this.url = `https://${service.fqdn}`;
    this.files = podFiles.map((f) => f.path);
    this.registerOutputs({ fqdn: this.fqdn, url: this.url, files: this.files });
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

/** Pulumi `import` for an existing object; the first `up` then takes it over instead of creating a duplicate. */
function adoptOptions(importId: string | undefined): pulumi.CustomResourceOptions {
  return importId ? { import: importId } : {};
}

/** Cloudflare's token conditions take CIDR ranges. */
function asCidr(address: string): string {
  return address.includes("/") ? address : `${address}/${address.includes(":") ? 128 : 32}`;
}

/** Creates the service user once (with subordinate IDs for rootless podman) and lets its units run without a login. */
function serviceUserScript(service: Service): string {
  const user = shQuote(serviceUser(service));
  const home = shQuote(serviceHome(service));
  return [
    `# edgeplane: service user for ${service.name}`,
    "set -eu",
    `if ! id -u ${user} >/dev/null 2>&1; then`,
    `  sudo -n mkdir -p "$(dirname ${home})"`,
    `  sudo -n useradd --create-home --home-dir ${home} --shell /usr/sbin/nologin --comment ${shQuote(`edgeplane service ${service.name}`)} ${user}`,
    "fi",
    `if ! grep -q ^${serviceUser(service)}: /etc/subuid; then`,
    `  echo "edgeplane: ${serviceUser(service)} has no subordinate UIDs in /etc/subuid; rootless podman needs them (usermod --add-subuids)" >&2`,
    "  exit 1",
    "fi",
    `sudo -n loginctl enable-linger ${user}`,
    "",
  ].join("\n");
}

/**
 * `caddy validate` on the candidate Caddyfile, in the pod's own Caddy image, as the
 * service user, after checking that the image has the modules the Caddyfile needs
 * beyond the default image's (`auth.rateLimit` needs http.handlers.rate_limit), so a
 * missing one is refused by name. Validation provisions the DNS module, which checks the token's format,
 * so the real token secret is given to it exactly as the running container gets it.
 */
export function caddyValidator(platform: Model, service: Service): string {
  const secret =
    platform.tls.issuer === "cloudflare-dns"
      ? `--secret ${shQuote(`${cloudflareTokenSecretName(service)},type=env,target=CF_API_TOKEN`)} `
      : "";
  const image = shQuote(platform.images.caddy);
  const modules = requiredCaddyModules(service);
  // Only when needed: the same validator text as before for every other pod, so their install is not re-run.
  const moduleCheck =
    modules.length > 0
      ? `${caddyModulesCheck(`podman run --rm --network none ${image} caddy`, platform.images.caddy, modules)} && `
      : "";
  return asServiceUser(
    serviceUser(service),
    moduleCheck +
      `podman run --rm --network none ${secret}-v "$1":/etc/caddy/Caddyfile:ro,Z ${image} ` +
      `caddy validate --adapter caddyfile --config /etc/caddy/Caddyfile`,
    ['"$candidate"'],
  );
}
