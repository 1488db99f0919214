/**
 * What a real `pulumi` run costs, measured from outside it: the peak memory of the
 * engine (the `pulumi` CLI, the language host and the provider plugins) and of the
 * program (the node process the language host starts), sampled from /proc; and the
 * SSH sessions each test host's sshd accepted (or dropped past `MaxStartups`), read
 * from the host's journal. Neither depends on what the program registers.
 */
import fs from "node:fs";
import type { TestHost } from "./hosts";
import type { PulumiProject, RunResult } from "./pulumi-project";

export interface MemoryPeaks {
  /** Max over samples of the summed VmRSS of `pulumi`, `pulumi-language-*` and `pulumi-resource-*`, MiB. */
  engineMiB: number;
  /** Max over samples of the summed VmRSS of the node processes under the CLI, MiB. */
  programMiB: number;
}

function childrenOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** VmRSS in KiB and the command name, or undefined if the process is gone. */
function rssOf(pid: number): { comm: string; kib: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const comm = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? "";
    const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
    return { comm, kib };
  } catch {
    return undefined;
  }
}

/**
 * Samples the process tree under `rootPid` every `intervalMs` until stop() is called.
 * Summed VmRSS, not each process's VmHWM: plugins start and exit at different times,
 * so the sum of their peaks would overstate what was ever resident at once.
 */
export function sampleMemory(rootPid: number, intervalMs = 200): { stop(): MemoryPeaks } {
  const peaks = { engine: 0, program: 0 };
  const sample = () => {
    let engine = 0;
    let program = 0;
    const queue = [rootPid];
    const seen = new Set<number>();
    while (queue.length > 0) {
      const pid = queue.pop()!;
      if (seen.has(pid)) continue;
      seen.add(pid);
      const p = rssOf(pid);
      if (!p) continue;
      // comm is cut at 15 characters: "pulumi-resource", "pulumi-language".
      if (p.comm === "node") program += p.kib;
      else if (p.comm.startsWith("pulumi")) engine += p.kib;
      queue.push(...childrenOf(pid));
    }
    peaks.engine = Math.max(peaks.engine, engine);
    peaks.program = Math.max(peaks.program, program);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return { engineMiB: Math.round(peaks.engine / 1024), programMiB: Math.round(peaks.program / 1024) };
    },
  };
}

export interface SshdCounts {
  /** Sessions sshd authenticated ("Accepted publickey for …"). */
  accepted: number;
  /** Connections sshd dropped before authentication ("drop connection #…": MaxStartups or PerSourcePenalties). */
  dropped: number;
}

/** sshd's counts so far on `host`, from its journal (flushed first). */
export async function sshdCounts(host: TestHost): Promise<SshdCounts> {
  // OpenSSH ≥ 9.8 logs a session's authentication from sshd-session, the listener's
  // drops from sshd (sshd.c, drop_connection); the whole journal, whatever the identifier.
  const out = await host.run(
    "journalctl --sync; journalctl --no-pager -o cat | " +
      "awk '/^Accepted publickey for /{a++} /^drop connection #/{d++} END{print a+0, d+0}'",
  );
  const [accepted, dropped] = out.trim().split(" ").map(Number);
  return { accepted: accepted!, dropped: dropped! };
}

/** The counts since `before`. */
export function sshdDelta(before: SshdCounts, after: SshdCounts): SshdCounts {
  return { accepted: after.accepted - before.accepted, dropped: after.dropped - before.dropped };
}

/** The engine's "Resources:" summary of an up or a preview, on one line: `+ 12 created, 3 unchanged`. */
export function changeSummary(output: string): string {
  const lines = output.split("\n");
  const start = lines.findIndex((l) => /^Resources:\s*$/.test(l));
  if (start < 0) return "";
  const parts: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (!l.trim()) break;
    parts.push(l.trim().replace(/\s+/g, " "));
  }
  return parts.join(", ");
}

export interface MeasuredRun {
  result: RunResult;
  seconds: number;
  memory: MemoryPeaks;
  /** Per host name, what its sshd counted during the run. */
  sshd: Record<string, SshdCounts>;
  /** Dials the command provider retried ("Dial 2/10 failed: retrying" in the engine's output). */
  dialRetries: number;
  /** Per host name, the most SSH connections open at once (sampled every 2 s). */
  peakOpen: Record<string, number>;
}

/** SSH connections open on `host` now: established TCP connections to its port 22. */
async function openSshConnections(host: TestHost): Promise<number> {
  const r = await host.exec("ss -Htn state established '( sport = :22 )' | wc -l");
  return Number(r.stdout.trim()) || 0;
}

/** Runs `pulumi <args>` in `project`, measuring its wall time, memory and each host's SSH sessions. */
export async function measuredRun(
  project: PulumiProject,
  args: string[],
  hosts: readonly TestHost[],
  opts: { timeoutMs?: number } = {},
): Promise<MeasuredRun> {
  const before = await Promise.all(hosts.map(sshdCounts));
  let sampler: { stop(): MemoryPeaks } | undefined;
  const started = process.hrtime.bigint();
  const peakOpen: Record<string, number> = Object.fromEntries(hosts.map((h) => [h.name, 0]));
  let running = true;
  const connections = (async () => {
    while (running) {
      const open = await Promise.all(hosts.map(openSshConnections));
      hosts.forEach((h, i) => (peakOpen[h.name] = Math.max(peakOpen[h.name]!, open[i]!)));
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })();
  const result = await project.run(args, { ...opts, onSpawn: (pid) => (sampler = sampleMemory(pid)) });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  running = false;
  await connections;
  const memory = sampler?.stop() ?? { engineMiB: 0, programMiB: 0 };
  const after = await Promise.all(hosts.map(sshdCounts));
  const sshd = Object.fromEntries(hosts.map((h, i) => [h.name, sshdDelta(before[i]!, after[i]!)]));
  const dialRetries = result.output.split("\n").filter((l) => / Dial \d+\/-?\d+ failed: retrying/.test(l)).length;
  return { result, seconds, memory, sshd, peakOpen, dialRetries };
}

/** Resources in the stack's state, the stack itself and provider resources left out. */
export async function stateResources(project: PulumiProject): Promise<number> {
  const exported = await project.must(["stack", "export"]);
  const resources =
    (JSON.parse(exported.stdout) as { deployment: { resources?: { type: string }[] } }).deployment.resources ?? [];
  return resources.filter((r) => r.type !== "pulumi:pulumi:Stack" && !r.type.startsWith("pulumi:providers:")).length;
}
