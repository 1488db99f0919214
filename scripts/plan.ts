/**
 * The offline plan: `npm run plan -- --stack <name> [--out <dir>] [--stack-file <file>]`.
 * Runs index.ts under Pulumi's mock runtime with Pulumi.<name>.yaml and writes
 * <dir>/<name>/hosts/<host>/<path> for every file the stack installs, plus
 * <dir>/<name>/plan.json. Needs no Pulumi CLI and no credentials. On an invalid
 * config it prints every problem, exits 1 and writes nothing.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../model";
import { loadStackConfig, PlanInputError } from "../plan/config";
import { buildPlan } from "../plan/manifest";
import { runProgram } from "../plan/run";

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
    },
    strict: true,
  });
  if (!values.stack) {
    console.error("usage: npm run plan -- --stack <name> [--out <dir>] [--stack-file <Pulumi.<name>.yaml>]");
    return 2;
  }
  const started = process.hrtime.bigint();
  const config = loadStackConfig(root, values.stack, values["stack-file"] && path.resolve(values["stack-file"]));
  const records = await runProgram(config);
  const { plan, files } = buildPlan(config.project, config.stack, records);

  // Build the whole tree beside the destination, then swap it in: a failed plan never
  // leaves a half-written folder behind, and a stale file from an earlier plan never lingers.
  const dest = path.resolve(values.out!, values.stack);
  const staging = `${dest}.partial-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  for (const file of files) {
    const target = path.join(staging, "hosts", file.host, file.path);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, file.content);
  }
  fs.mkdirSync(staging, { recursive: true });
  fs.writeFileSync(path.join(staging, "plan.json"), JSON.stringify(plan, null, 2) + "\n");
  fs.rmSync(dest, { recursive: true, force: true });
  fs.renameSync(staging, dest);

  if (values.stats) {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    console.error(
      JSON.stringify({
        ms: Math.round(ms),
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

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof PlanInputError) {
      console.error(err.message);
      process.exit(1);
    }
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
