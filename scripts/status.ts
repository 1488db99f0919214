/**
 * `npm run status -- --stack <name> [--json] [--identity <ssh key file>]`: a read-only
 * look at the running platform (status/index.ts), over SSH to each host with the stack's
 * own connection settings (host, port, user, pinned host key). The private key is the
 * operator's (`--identity`, or the ssh agent): the stack's copy is a Pulumi secret the
 * offline tools cannot decrypt. Exits 0 when it could ask every host and every service is
 * healthy (status/index.ts), 1 otherwise, naming each unhealthy service on stderr.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { buildModel, projectConfig } from "../model";
import type { Host } from "../model/types";
import { runCli } from "../plan/cli";
import { loadStackConfig } from "../plan/config";
import { buildPlan } from "../plan/manifest";
import { parseStatus, renderStatusTable, statusReport, statusScript, type HostFacts } from "../status";

const root = path.join(__dirname, "..");

/** Runs `script` on the host with the system's ssh, trusting only the host's pinned key. */
function onHost(host: Host, script: string, identity: string | undefined, scratch: string): { ok: boolean; output: string } {
  const knownHosts = path.join(scratch, `known_hosts-${host.name}`);
  const target = host.ssh.port === 22 ? host.ssh.host : `[${host.ssh.host}]:${host.ssh.port}`;
  if (host.ssh.hostKey) fs.writeFileSync(knownHosts, `${target} ${host.ssh.hostKey}\n`);
  const args = [
    "-p",
    String(host.ssh.port),
    "-o",
    "BatchMode=yes",
    ...(host.ssh.hostKey
      ? ["-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes"]
      : ["-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"]),
    ...(identity ? ["-i", identity, "-o", "IdentitiesOnly=yes"] : []),
    `${host.ssh.user}@${host.ssh.host}`,
    "bash -s",
  ];
  const r = spawnSync("ssh", args, { input: script, encoding: "utf8", timeout: 120_000 });
  return { ok: r.status === 0, output: r.status === 0 ? r.stdout : `${r.stderr}${r.error ? String(r.error) : ""}` };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      stack: { type: "string" },
      "stack-file": { type: "string" },
      json: { type: "boolean", default: false },
      identity: { type: "string" },
    },
    strict: true,
  });
  if (!values.stack) {
    console.error("usage: npm run status -- --stack <name> [--json] [--identity <ssh private key file>] [--stack-file <file>]");
    return 2;
  }
  const config = loadStackConfig(root, values.stack, values["stack-file"] && path.resolve(values["stack-file"]));
  const model = buildModel(projectConfig(config.values, config.project));
  // What `pulumi up` would install, from the same program the offline plan runs.
  const { runProgram } = await import("../plan/run");
  const { files } = buildPlan(config.project, config.stack, await runProgram(config));

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-status-"));
  const facts = new Map<string, HostFacts>();
  const unreachable: string[] = [];
  try {
    for (const host of model.hosts) {
      const result = onHost(
        host,
        statusScript(
          model,
          host,
          files.filter((f) => f.host === host.name),
        ),
        values.identity,
        scratch,
      );
      if (result.ok) facts.set(host.name, parseStatus(result.output));
      else unreachable.push(`${host.name}: ${result.output.trim().split("\n").pop() ?? "ssh failed"}`);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  const report = statusReport(config.stack, model, files, facts, new Date());
  if (values.json) console.log(JSON.stringify({ ...report, unreachable }, null, 2));
  else process.stdout.write(renderStatusTable(report));
  for (const u of unreachable) console.error(`status: could not ask host ${u}`);
  const unhealthy = report.services.filter((s) => !s.healthy);
  for (const s of unhealthy) console.error(`status: service ${s.service} on ${s.host} is unhealthy: ${s.problems.join(", ")}`);
  return unreachable.length === 0 && unhealthy.length === 0 ? 0 : 1;
}

runCli(main);
