/**
 * The offline plan: `npm run plan -- --stack <name> [--out <dir>] [--stack-file <file>]`.
 * Runs index.ts under Pulumi's mock runtime with Pulumi.<name>.yaml and writes
 * <dir>/<name>/hosts/<host>/<path> for every file the stack installs, plus
 * <dir>/<name>/plan.json. Needs no Pulumi CLI and no credentials. On an invalid
 * config it prints every problem, exits 1 and writes nothing.
 *
 * With `--engine real` the same plan.json and hosts/ come from the real Pulumi engine's
 * `pulumi preview` of the stack (plan/engine.ts) instead of the mock runtime, so the two
 * can be compared on any stack.
 *
 * With `--diff <git-ref> [--diff-format markdown|text|json] [--diff-out <file>]` it
 * plans the stack twice, at <git-ref> (that commit's code and stack file) and in the
 * working tree, and prints what changed (plan/diff.ts) instead of writing a plan; it
 * exits 0 whether or not anything changed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { runCli } from "../plan/cli";
import { loadStackConfig, PlanInputError } from "../plan/config";
import {
  diffPlans,
  EMPTY_PLAN,
  planAtRef,
  planWorkingTree,
  readPlanFolder,
  refLabel,
  renderDiffFailure,
  renderDiffJson,
  renderDiffMarkdown,
  renderDiffText,
  resolveRef,
  type DiffHeading,
  type RefPlan,
} from "../plan/diff";
import { buildPlan, type Plan, type PlannedFile } from "../plan/manifest";

const root = path.join(__dirname, "..");

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      stack: { type: "string" },
      out: { type: "string", default: "out" },
      // A stack file outside the project root (tests; trying a config before adding it).
      "stack-file": { type: "string" },
      // One JSON line on stderr with wall time and peak memory (npm run bench reads it).
      stats: { type: "boolean", default: false },
      // mock: Pulumi's mock runtime (no CLI needed); real: the real engine's preview.
      engine: { type: "string", default: "mock" },
      // A git ref to compare the working tree's plan with (pull-request previews).
      diff: { type: "string" },
      "diff-format": { type: "string", default: "markdown" },
      // Write the diff report to this file instead of stdout.
      "diff-out": { type: "string" },
    },
    strict: true,
  });
  if (!values.stack) {
    console.error(
      "usage: npm run plan -- --stack <name> [--out <dir>] [--stack-file <Pulumi.<name>.yaml>] [--engine mock|real]\n" +
        "       npm run plan -- --stack <name> --diff <git-ref> [--diff-format markdown|text|json] [--diff-out <file>]",
    );
    return 2;
  }
  if (values.diff !== undefined) {
    if (values["stack-file"]) {
      console.error("--diff compares Pulumi.<name>.yaml at the ref with the working tree's; it does not take --stack-file");
      return 2;
    }
    const format = values["diff-format"]!;
    if (!isDiffFormat(format)) {
      console.error(`--diff-format ${format}: expected one of ${DIFF_FORMATS.join(", ")}`);
      return 2;
    }
    return planDiff(values.stack, values.diff, format, values["diff-out"]);
  }
  if (values.engine !== "mock" && values.engine !== "real") {
    console.error(`--engine ${values.engine}: expected mock or real`);
    return 2;
  }
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const stackFile = values["stack-file"] ? path.resolve(values["stack-file"]) : undefined;
  // Validates the stack (and refuses what the CLI refuses) before either engine runs.
  const config = loadStackConfig(root, values.stack, stackFile);
  const records =
    values.engine === "real"
      ? await realEngineRecords(values.stack, stackFile ?? path.join(root, `Pulumi.${values.stack}.yaml`))
      : // Loaded here, not at the top: --diff plans in child processes and does not need Pulumi.
        await (await import("../plan/run")).runProgram(config);
  const { plan, files } = buildPlan(config.project, config.stack, records);
  const dest = path.resolve(values.out!, values.stack);
  writePlanFolder(dest, plan, files);

  if (values.stats) {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    const cpu = process.cpuUsage(cpuBefore);
    console.error(
      JSON.stringify({
        ms: Math.round(ms),
        // On a busy machine wall time grows with the load; the CPU time much less.
        cpuMs: Math.round((cpu.user + cpu.system) / 1000),
        peakRssMiB: Math.round(peakRssMiB),
        resources: plan.resources.length,
        files: files.length,
      }),
    );
  }
  const hosts = new Set(files.map((f) => f.host));
  console.log(
    `plan for stack ${config.stack}: ${plan.resources.length} resources, ${files.length} files on ${hosts.size} host(s) → ${path.relative(process.cwd(), dest) || dest}`,
  );
  return 0;
}

/**
 * `--engine real`: the records of the real engine's `pulumi preview` of the stack, with
 * the providers pointed at the Cloudflare/Tailscale API stand-in on loopback (a preview
 * does not call them; if it ever did, it would reach the stand-in, never the real APIs).
 */
async function realEngineRecords(stack: string, stackFile: string) {
  const [{ previewStack, recordsFromPreview, splitSecureConfig }, { startApiStandIn }] = await Promise.all([
    import("../plan/engine"),
    import("../test/support/api-stand-in"),
  ]);
  const cf = splitSecureConfig(stackFile).config["edgeplane:cloudflare"] as { zoneId?: string } | undefined;
  const standIn = await startApiStandIn({ zones: cf?.zoneId ? [{ id: cf.zoneId, name: stack }] : [] });
  try {
    const { preview } = await previewStack({
      root,
      stack,
      stackFile,
      providers: {
        config: {
          "cloudflare:baseUrl": standIn.cloudflareBaseUrl,
          "tailscale:baseUrl": standIn.tailscaleBaseUrl,
          "tailscale:tailnet": standIn.tailnet,
        },
        secrets: { "cloudflare:apiToken": standIn.token, "tailscale:apiKey": standIn.tailscaleApiKey },
      },
    });
    return recordsFromPreview(preview);
  } finally {
    await standIn.close();
  }
}

/**
 * Writes a plan folder. Builds the whole tree beside the destination, then swaps it in:
 * a failed plan never leaves a half-written folder behind, and a stale file from an
 * earlier plan never lingers.
 */
function writePlanFolder(dest: string, plan: Plan, files: readonly PlannedFile[]): void {
  const staging = `${dest}.partial-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  // Many files share a folder (a pod's units): create each folder once.
  const made = new Set<string>();
  for (const file of files) {
    const target = path.join(staging, "hosts", file.host, file.path);
    const dir = path.dirname(target);
    if (!made.has(dir)) fs.mkdirSync(dir, { recursive: true });
    made.add(dir);
    fs.writeFileSync(target, file.content);
  }
  fs.mkdirSync(staging, { recursive: true });
  fs.writeFileSync(path.join(staging, "plan.json"), JSON.stringify(plan, null, 2) + "\n");
  fs.rmSync(dest, { recursive: true, force: true });
  fs.renameSync(staging, dest);
}

const DIFF_FORMATS = ["markdown", "text", "json"] as const;
type DiffFormat = (typeof DIFF_FORMATS)[number];
const isDiffFormat = (f: string): f is DiffFormat => (DIFF_FORMATS as readonly string[]).includes(f);

/**
 * `--diff <ref>`: the report on stdout, or in `outFile`. When the diff cannot be made,
 * `outFile` says so (and why) before the command fails: a pull-request comment must
 * never keep showing the diff of an earlier push as if it were current.
 */
async function planDiff(stack: string, ref: string, format: DiffFormat, outFile: string | undefined): Promise<number> {
  let result: { report: string; summary: string };
  try {
    result = await diffReport(stack, ref, format);
  } catch (err) {
    if (outFile) {
      const message = err instanceof Error ? err.message : String(err);
      fs.writeFileSync(outFile, renderDiffFailure(format, { stack, base: ref, head: "working tree" }, message));
    }
    throw err;
  }
  if (!outFile) {
    // Flushed before main exits the process (stdout may be an asynchronous pipe).
    await new Promise<void>((resolve) => process.stdout.write(result.report, () => resolve()));
    return 0;
  }
  fs.writeFileSync(outFile, result.report);
  console.log(`${result.summary} → ${outFile}`);
  return 0;
}

/**
 * Plans the stack at <ref> (that commit's own plan script) and in the working tree, in
 * two child processes at once, and renders the difference. Both plans live in one
 * scratch folder that is removed on every way out, Ctrl-C included; nothing is written
 * under --out.
 */
async function diffReport(stack: string, ref: string, format: DiffFormat): Promise<{ report: string; summary: string }> {
  // The name becomes a file name at the ref and here.
  if (!/^[A-Za-z0-9_.-]+$/.test(stack) || stack.startsWith("."))
    throw new PlanInputError(`--stack ${stack}: not a stack name (letters, digits, "-", "_", ".")`);
  const at = resolveRef(root, ref);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-diff-"));
  const abort = new AbortController();
  const cleanUp = () => {
    abort.abort();
    fs.rmSync(scratch, { recursive: true, force: true });
  };
  process.on("exit", cleanUp);
  const base = planAtRef({ root, at, stack, workDir: path.join(scratch, "base"), signal: abort.signal });
  const head = planWorkingTree({ root, stack, workDir: path.join(scratch, "head"), signal: abort.signal });
  const bothDone = Promise.allSettled([base, head]);
  // On Ctrl-C, stop both plans and let them exit before their folder is removed (on
  // "exit"): removed under a running plan, the folder would be written again.
  const interrupted = (signal: NodeJS.Signals) => {
    abort.abort();
    const code = 128 + os.constants.signals[signal];
    setTimeout(() => process.exit(code), 5000);
    void bothDone.finally(() => process.exit(code));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    const [before, after] = await Promise.all([base, head]);
    if ("missing" in before && "missing" in after)
      throw new PlanInputError(
        `no stack ${stack}: Pulumi.${stack}.yaml exists neither in the working tree nor at ${refLabel(at)}`,
      );
    const read = (side: RefPlan) => ("dir" in side ? readPlanFolder(side.dir) : EMPTY_PLAN);
    const diff = diffPlans(read(before), read(after));
    const heading: DiffHeading = {
      stack,
      base: refLabel(at),
      head: "working tree",
      ...("missing" in before ? { baseMissing: before.missing } : {}),
      ...("missing" in after ? { headMissing: after.missing } : {}),
      command: `npm run plan -- --stack ${stack} --diff ${ref}`,
    };
    const report =
      format === "json"
        ? renderDiffJson(diff, heading)
        : format === "text"
          ? renderDiffText(diff, heading)
          : renderDiffMarkdown(diff, heading);
    const summary = `plan diff for stack ${stack} against ${heading.base}: ${diff.resources.length} resource(s), ${diff.files.length} file(s) differ`;
    return { report, summary };
  } finally {
    abort.abort();
    await bothDone;
    cleanUp();
    process.off("exit", cleanUp);
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
}

runCli(main);
