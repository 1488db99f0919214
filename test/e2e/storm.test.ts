/**
 * No SSH storm: the first `pulumi up` of 50 services onto ONE host whose sshd keeps
 * OpenSSH's default connection limits (`MaxStartups 10:30:100`: past 10 connections
 * that have not yet authenticated, sshd drops new ones at random, 30% rising to all at
 * 100; sshd_config(5)), with the engine's parallelism at 64, what `--parallel` an
 * operator's 16-thread machine gets by default (GOMAXPROCS × 4), not this machine's 8.
 * It must succeed, and every pod must run. The run's SSH sessions and sshd's drops are
 * counted from the host's journal and reported as diagnostics.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startApiStandIn, type ApiStandIn } from "../support/api-stand-in";
import {
  DOMAIN,
  ZONE_ID,
  e2eConfig,
  e2eMissing,
  generatedServices,
  openPorts,
  startE2eHosts,
  type ServiceSpec,
} from "../support/e2e";
import { changeSummary, measuredRun, type MeasuredRun } from "../support/engine-measure";
import type { TestHost, TestHosts } from "../support/hosts";
import { PulumiProject } from "../support/pulumi-project";

const missing = e2eMissing();
if (missing.length > 0 && process.env.CI) {
  throw new Error(`the end-to-end tests cannot run in CI; missing: ${missing.join("; ")}`);
}

const SERVICES = 50;
const PARALLEL = 64;

describe(
  `no SSH storm: the first up of ${SERVICES} services onto one host, --parallel ${PARALLEL}`,
  { skip: missing.length > 0 && `needs: ${missing.join("; ")}` },
  () => {
    let hosts: TestHosts;
    let api: ApiStandIn;
    let project: PulumiProject;
    let services: Record<string, ServiceSpec>;
    let host: TestHost;

    before(async () => {
      ({ hosts, api, project } = await oneHostStack("storm", (services = generatedServices(SERVICES, ["edge"]))));
      host = hosts.hosts.edge!;
    });

    after(async () => {
      await hosts?.stop();
      await api?.close();
      project?.remove();
    });

    it("runs on a host whose sshd has OpenSSH's default MaxStartups", async () => {
      assert.equal((await host.run("sshd -T | grep -i '^maxstartups '")).trim(), "maxstartups 10:30:100");
    });

    let up: MeasuredRun;
    it(`brings all ${SERVICES} services up with one pulumi up --parallel ${PARALLEL}`, async (t) => {
      up = await measuredRun(project, ["up", "--yes", "--skip-preview", "--parallel", String(PARALLEL)], [host]);
      const { accepted, dropped } = up.sshd.edge!;
      t.diagnostic(
        `first up: ${up.seconds.toFixed(0)} s; ${accepted} SSH sessions, at most ${up.peakOpen.edge} open at once, ` +
          `${dropped} connections dropped by sshd, ${up.dialRetries} dials retried; ${changeSummary(up.result.output)}`,
      );
      assert.equal(up.result.code, 0, up.result.output.split("\n").slice(-80).join("\n"));
      assert.ok(accepted >= SERVICES, `${accepted} SSH sessions for ${SERVICES} pods`);
    });

    it("runs every pod: its units active, its Caddy listening", async () => {
      const names = Object.keys(services);
      // One shell on the host for all of them: each pod's unit, as its user's manager sees it.
      const states = await host.run(
        names
          .map(
            (s) =>
              `u=ep-${s}; printf '%s %s\\n' ${s} "$(runuser -u "$u" -- env XDG_RUNTIME_DIR=/run/user/$(id -u "$u") ` +
              `systemctl --user is-active ${s}-pod.service ${s}-app.service ${s}-caddy.service | tr '\\n' ' ')"`,
          )
          .join("\n"),
      );
      const inactive = states
        .trim()
        .split("\n")
        .filter((l) =>
          l
            .trim()
            .split(" ")
            .slice(1)
            .some((state) => state !== "active"),
        );
      assert.deepEqual(inactive, [], "pods with a unit not active");
      const caddies = names.map((s) => `${host.address}:${services[s]!.caddyPort}`);
      assert.deepEqual((await openPorts(host, caddies)).sort(), caddies.sort());
    });
  },
);

/**
 * The same first `up`, smaller, onto a host whose sshd refuses nearly every connection
 * that starts while another is still authenticating (`MaxStartups 1:90:2`): a storm on
 * any machine, however slow. It must still succeed, because the command provider
 * retries a refused connection (`dialErrorLimit`, 10 tries by default:
 * provider/pkg/provider/remote/connection.go); the engine's output must show it did.
 */
describe(
  "no SSH storm: a first up onto a host whose sshd refuses almost every concurrent connection",
  { skip: missing.length > 0 && `needs: ${missing.join("; ")}` },
  () => {
    let hosts: TestHosts;
    let api: ApiStandIn;
    let project: PulumiProject;

    before(async () => {
      ({ hosts, api, project } = await oneHostStack("strict", generatedServices(10, ["edge"])));
    });

    after(async () => {
      await hosts?.stop();
      await api?.close();
      project?.remove();
    });

    it("succeeds, the refused connections retried", async (t) => {
      const host = hosts.hosts.edge!;
      await host.run("echo 'MaxStartups 1:90:2' > /etc/ssh/sshd_config.d/00-strict.conf && systemctl restart ssh");
      assert.equal((await host.run("sshd -T | grep -i '^maxstartups '")).trim(), "maxstartups 1:90:2");
      const up = await measuredRun(project, ["up", "--yes", "--skip-preview", "--parallel", String(PARALLEL)], [host]);
      t.diagnostic(
        `first up: ${up.seconds.toFixed(0)} s; ${up.sshd.edge!.accepted} SSH sessions, ` +
          `${up.sshd.edge!.dropped} drops logged by sshd, ${up.dialRetries} dials retried`,
      );
      assert.equal(up.result.code, 0, up.result.output.split("\n").slice(-80).join("\n"));
      assert.ok(up.dialRetries > 0, "sshd refused no connection: no storm to absorb");
    });
  },
);

/** One fresh test host `edge`, the API stand-in and a project holding a stack of `services` on it. */
async function oneHostStack(
  stack: string,
  services: Record<string, ServiceSpec>,
): Promise<{ hosts: TestHosts; api: ApiStandIn; project: PulumiProject }> {
  const hosts = await startE2eHosts(["edge"]);
  const api = await startApiStandIn({ zones: [{ id: ZONE_ID, name: DOMAIN }] });
  const project = new PulumiProject(stack);
  await project.init(e2eConfig(hosts, api.cloudflareBaseUrl, services), {
    "edgeplane:sshPrivateKey": hosts.privateKey,
    "cloudflare:apiToken": api.token,
  });
  return { hosts, api, project };
}
