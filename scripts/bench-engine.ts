/**
 * `npm run bench -- --engine`: the real Pulumi engine (test/support/pulumi-project.ts)
 * deploying generated stacks onto two throwaway test hosts (test/support/hosts.ts), an
 * ingress `edge` and `app`, with Cloudflare behind its API stand-in, `tls.issuer:
 * internal` and images from each host's own registry. For each size, on fresh hosts:
 * the first `pulumi up`, a `pulumi preview` and an `up` with no change, and an `up`
 * changing one service's image. One Markdown row per step as soon as it is done: wall
 * time, peak memory of the engine and of the program, SSH sessions each host's sshd
 * accepted (and dropped past MaxStartups), what the engine changed, and resources per
 * service in the state. Everything is torn down at the end, or on Ctrl-C.
 */
import os from "node:os";
import { startApiStandIn, type ApiStandIn } from "../test/support/api-stand-in";
import { DOMAIN, ZONE_ID, e2eConfig, e2eMissing, generatedServices, startE2eHosts } from "../test/support/e2e";
import { changeSummary, measuredRun, stateResources, type MeasuredRun } from "../test/support/engine-measure";
import type { TestHosts } from "../test/support/hosts";
import { PulumiProject } from "../test/support/pulumi-project";
import { IMAGES } from "../test/support/test-images";

const HOSTS = ["edge", "app"] as const;
/** The service whose image the last step changes: an app on `app`, public, unprotected. */
const CHANGED = 1;

const HEADER = [
  "services",
  "step",
  "wall time (s)",
  "engine peak RSS (MiB)",
  "program peak RSS (MiB)",
  ...HOSTS.map((h) => `SSH sessions ${h}`),
  ...HOSTS.map((h) => `peak open SSH connections ${h}`),
  "dropped by sshd",
  "dials retried",
  "engine's summary",
  "resources per service",
  "load average (1 min)",
];
const line = (cells: string[]) => `| ${cells.join(" | ")} |`;

export async function benchEngine(sizes: number[], parallel: number | undefined): Promise<number> {
  const missing = e2eMissing();
  if (missing.length > 0) {
    console.error(`bench --engine needs: ${missing.join("; ")}`);
    return 2;
  }
  let cleanup: (() => Promise<void>) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`bench: ${signal}, tearing down…`);
    void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  console.log([line(HEADER), line(HEADER.map(() => "---"))].join("\n"));
  for (const n of sizes) {
    let hosts: TestHosts | undefined;
    let api: ApiStandIn | undefined;
    let project: PulumiProject | undefined;
    cleanup = async () => {
      await hosts?.stop();
      await api?.close();
      project?.remove();
    };
    try {
      console.error(`bench: ${n} services: booting ${HOSTS.join(" and ")}…`);
      hosts = await startE2eHosts(HOSTS);
      api = await startApiStandIn({ zones: [{ id: ZONE_ID, name: DOMAIN }] });
      project = new PulumiProject(`bench${n}`);
      const config = (changed: boolean) =>
        e2eConfig(
          hosts!,
          api!.cloudflareBaseUrl,
          generatedServices(n, HOSTS, (i) => (changed && i === CHANGED ? IMAGES.echoV2 : IMAGES.echo)),
        );
      await project.init(config(false), { "edgeplane:sshPrivateKey": hosts.privateKey, "cloudflare:apiToken": api.token });
      const machines = HOSTS.map((h) => hosts!.hosts[h]!);
      const par = parallel ? ["--parallel", String(parallel)] : [];
      const up = ["up", "--yes", "--skip-preview", ...par];
      const steps: [string, string[], (() => Promise<void>)?][] = [
        ["first up", up],
        ["preview, no change", ["preview", "--expect-no-changes", ...par]],
        ["up, no change", [...up, "--expect-no-changes"]],
        ["up, one image changed", up, () => project!.setConfig(config(true))],
      ];
      for (const [step, args, prepare] of steps) {
        console.error(`bench: ${n} services: ${step}…`);
        await prepare?.();
        const run: MeasuredRun = await measuredRun(project, args, machines, { timeoutMs: 90 * 60_000 });
        if (run.result.code !== 0) {
          console.error(run.result.output.split("\n").slice(-60).join("\n"));
          throw new Error(`${n} services, ${step}: pulumi ${args[0]} exited ${run.result.code}`);
        }
        const resources = await stateResources(project);
        console.log(
          line([
            String(n),
            step,
            run.seconds.toFixed(1),
            String(run.memory.engineMiB),
            String(run.memory.programMiB),
            ...HOSTS.map((h) => String(run.sshd[h]!.accepted)),
            ...HOSTS.map((h) => String(run.peakOpen[h])),
            String(HOSTS.reduce((sum, h) => sum + run.sshd[h]!.dropped, 0)),
            String(run.dialRetries),
            changeSummary(run.result.output),
            (resources / n).toFixed(1),
            // This machine's load as the step ended: wall times stretch with it on a shared machine.
            os.loadavg()[0]!.toFixed(1),
          ]),
        );
      }
    } catch (err) {
      console.error(`bench: ${(err as Error).message}`);
      await cleanup();
      return 1;
    }
    await cleanup();
  }
  return 0;
}
