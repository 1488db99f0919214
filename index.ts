/**
 * edgeplane: the stack config → a validated model → components. This is the only
 * module that reads pulumi.Config; everything below it takes plain values.
 */
import * as pulumi from "@pulumi/pulumi";
import { AuthentikApp, AuthentikOutpost } from "./components/authentik";
import { protectedServices } from "./components/authentik/render";
import { IngressHost } from "./components/ingress";
import { SidecarPod } from "./components/pod";
import { TailnetPolicy } from "./components/tailnet";
import { tailnetPolicyProblems } from "./components/tailnet/render";
import type { Connection } from "./components/remote/file";
import { buildModel, ConfigError, projectConfig } from "./model";
import { ingressHost } from "./model/topology";
import { withholdSecretsFromDebugLog } from "./components/debug-log";

// Before any resource is registered: the SDK's debug log would otherwise print secrets.
withholdSecretsFromDebugLog();

const config = new pulumi.Config("edgeplane");

// Every edgeplane:* key the stack sets, known or not (an unknown one is a typo that
// must not be silently ignored); buildModel validates all of them at once before any
// resource is registered.
const platform = buildModel(projectConfig(pulumi.runtime.allConfig(), pulumi.getProject()));
// The tailnet policy is checked against the model before anything is registered, like
// the rest of the config: a policy Tailscale would reject must not half-apply a stack.
const policyProblems = platform.tailscale
  ? tailnetPolicyProblems(platform, platform.tailscale.policy, platform.tailscale.testUsers)
  : [];
if (policyProblems.length > 0) throw new ConfigError(policyProblems);

const sshPrivateKey = config.requireSecret("sshPrivateKey");
const connections = new Map<string, Connection>(
  platform.hosts.map((host) => [
    host.name,
    // One stable object per host: a changed connection re-runs every command on the
    // host (pulumi/pulumi-command#447). Only the private key is secret, so a preview
    // still shows which host, user and pinned host key a command uses. With hostKey the
    // provider accepts only a server holding that key; without it (insecureSkipHostKeyCheck)
    // it accepts any (pulumi-command provider/pkg/provider/remote/connection.go, SSHConfig).
    {
      host: host.ssh.host,
      port: host.ssh.port,
      user: host.ssh.user,
      privateKey: sshPrivateKey,
      ...(host.ssh.hostKey ? { hostKey: host.ssh.hostKey } : {}),
    },
  ]),
);
const connectionTo = (hostName: string): Connection => {
  const connection = connections.get(hostName);
  if (!connection) throw new Error(`internal: no connection for host ${hostName}`);
  return connection;
};

/**
 * The program's entry point: Pulumi awaits it, and what it returns is the stack's
 * outputs (sdk/nodejs/cmd/run/run.ts). It is async only to yield after each service,
 * so that a service's registrations finish before the next service's start instead
 * of every resource of the stack being in flight at once: each pending registration
 * holds a dozen promises per input, and a 1,000-service stack took 3.6 GiB to plan.
 */
export = async () => {
  const ingress = ingressHost(platform);
  const ingressComponent = new IngressHost(ingress.name, { platform, connection: connectionTo(ingress.name) });

  const pods: SidecarPod[] = [];
  for (const service of platform.services) {
    pods.push(
      new SidecarPod(service.name, {
        platform,
        service,
        connection: connectionTo(service.host),
        ...(service.l7 ? { l7Key: ingressComponent.l7Keys[service.name] } : {}),
      }),
    );
    await nextTurn();
  }

  // Authentik: one application per protected service, and the embedded outpost's
  // provider list, written once for all of them. Blueprints go to the Authentik host,
  // after its pod (and the service user that owns the folder) exists.
  if (platform.authentik) {
    const authentikPod = pods[platform.services.findIndex((s) => s.name === platform.authentik!.service)]!;
    const authentikHost = platform.services.find((s) => s.name === platform.authentik!.service)!.host;
    const apps: AuthentikApp[] = [];
    for (const service of protectedServices(platform)) {
      apps.push(
        new AuthentikApp(
          `${service.name}-auth`,
          {
            platform,
            service,
            connection: connectionTo(authentikHost),
            ...(platform.authentik.flows ? { flows: platform.authentik.flows } : {}),
          },
          { dependsOn: [authentikPod] },
        ),
      );
      await nextTurn();
    }
    // Even with no protected service: the list must then shrink to the extra providers.
    new AuthentikOutpost(
      "authentik-outpost",
      { platform, connection: connectionTo(authentikHost), apps, extraProviders: platform.authentik.extraProviders ?? [] },
      { dependsOn: [authentikPod] },
    );
  }

  if (platform.tailscale) {
    new TailnetPolicy("tailnet", {
      platform,
      base: platform.tailscale.policy,
      testUsers: platform.tailscale.testUsers,
      adopt: platform.tailscale.adopt,
    });
  }

  return {
    /** The URL of every service, by service name. */
    urls: Object.fromEntries(pods.map((pod, i) => [platform.services[i]!.name, pod.url])),
    /** The ingress host's name and public address(es). */
    ingressAddresses: { host: ingress.name, ipv4: ingress.publicIPv4 ?? null, ipv6: ingress.publicIPv6 ?? null },
  };
};

/** Lets the registrations started so far run before the program goes on. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
