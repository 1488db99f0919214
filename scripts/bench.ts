/**
 * `npm run bench`: the offline plan of generated stacks of 10, 100 and 1,000
 * services, each run as a user would (`npm run plan`), in its own process. Prints a
 * Markdown table, one row per size as soon as that size is done: wall time, peak
 * memory, resources and files per service, and how many resources a one-service change
 * (an image bump) touches. `--sizes 10,100` picks the sizes.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import YAML from "yaml";
import { comparePlans } from "../plan/compare";
import type { Plan } from "../plan/manifest";

const root = path.join(__dirname, "..");
const SERVICES_PER_HOST = 100;

/** A well-formed Ed25519 public-key line derived from `seed` (RFC 8709 §4 wire format); no private key exists for it. */
function exampleHostKey(seed: string): string {
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const blob = Buffer.concat([field(Buffer.from("ssh-ed25519")), field(createHash("sha256").update(seed).digest())]);
  return `ssh-ed25519 ${blob.toString("base64")}`;
}

/** A stack of `n` services spread over hosts, with the mix of features a real one has. */
export function generateStack(n: number, imageOf: (i: number) => string = () => "docker.io/traefik/whoami:v1.10.3") {
  const hostCount = Math.max(1, Math.ceil(n / SERVICES_PER_HOST));
  const hosts: Record<string, unknown> = {};
  for (let h = 0; h < hostCount; h++) {
    hosts[`host-${h}`] = {
      ...(h === 0 ? { ingress: true, publicIPv4: "203.0.113.10", publicIPv6: "2001:db8::10" } : {}),
      tailnetIP: `100.64.${Math.floor(h / 250)}.${(h % 250) + 1}`,
      ssh: { host: `100.64.${Math.floor(h / 250)}.${(h % 250) + 1}`, user: "deploy", hostKey: exampleHostKey(`host-${h}`) },
    };
  }
  const services: Record<string, unknown> = {
    sso: {
      host: "host-0",
      image: "ghcr.io/goauthentik/server:2025.10.1",
      port: 9000,
      caddyPort: 10999,
      fqdn: "auth.example.org",
    },
  };
  for (let i = 0; i < n - 1; i++) {
    const host = `host-${Math.floor(i / SERVICES_PER_HOST)}`;
    const slot = i % SERVICES_PER_HOST;
    const svc: Record<string, unknown> = { host, image: imageOf(i), port: 8080, caddyPort: 11000 + slot };
    if (i % 3 === 0) Object.assign(svc, { auth: { groups: ["staff"] }, publicPaths: ["/health"] });
    if (i % 7 === 0) svc.exposure = "tailnet";
    if (i % 4 === 0) Object.assign(svc, { secrets: ["APP_SECRET"], env: { LOG_LEVEL: "info" }, volumes: [`data-${i}:/data`] });
    // L7 listeners all live on the ingress host, so their ports must be unique stack-wide.
    if (i % 50 === 1) {
      svc.l7 = {
        backends: [
          // Clear of the pods' Caddy metrics ports (caddyPort + 20000 = 31000 + slot).
          { host, port: 32000 + slot },
          { host, port: 33000 + slot },
        ],
        listenPort: 40000 + i,
      };
    }
    services[`svc-${i}`] = svc;
  }
  return {
    config: {
      "edgeplane:domain": "example.org",
      "edgeplane:cloudflare": { zoneId: "0123456789abcdef0123456789abcdef" },
      "edgeplane:sshPrivateKey": { secure: "v1:bench" },
      "edgeplane:authentik": { service: "sso" },
      "edgeplane:hosts": hosts,
      "edgeplane:services": services,
    },
  };
}

interface RunStats {
  /** Plan time inside the process (plan.ts --stats). */
  ms: number;
  /** CPU time of the plan inside the process (user + system). */
  cpuMs: number;
  /** The whole process, as a user waits for `npm run plan`: Node, the TypeScript hook and the plan. */
  processMs: number;
  peakRssMiB: number;
  resources: number;
  files: number;
}

function plan(stack: unknown, dir: string): { stats: RunStats; plan: Plan } {
  fs.mkdirSync(dir, { recursive: true });
  const stackFile = path.join(dir, "Pulumi.bench.yaml");
  fs.writeFileSync(stackFile, YAML.stringify(stack));
  // Exactly what `npm run plan` runs (package.json), timed from outside.
  const started = process.hrtime.bigint();
  const r = spawnSync(
    process.execPath,
    [
      "--require",
      path.join(root, "scripts", "node-ts.cjs"),
      path.join(root, "scripts", "plan.ts"),
      ...["--stack", "bench", "--stack-file", stackFile, "--out", dir, "--stats"],
    ],
    { cwd: root, encoding: "utf8", maxBuffer: 1 << 26 },
  );
  const processMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 0) throw new Error(r.stderr);
  const statsLine = r.stderr.split("\n").find((l) => l.startsWith("{"));
  if (!statsLine) throw new Error(`no stats from the plan: ${r.stderr}`);
  return {
    stats: { ...JSON.parse(statsLine), processMs },
    plan: JSON.parse(fs.readFileSync(path.join(dir, "bench", "plan.json"), "utf8")),
  };
}

const HEADER = [
  "services",
  "plan wall time (s)",
  "plan CPU time (s)",
  "npm run plan, start-up included (s)",
  "peak memory (MiB)",
  "CPU ms per service",
  "resources per service",
  "files per service",
  "resources touched by a one-service change",
];
const line = (cells: string[]) => `| ${cells.join(" | ")} |`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { sizes: { type: "string" }, engine: { type: "boolean", default: false }, parallel: { type: "string" } },
  });
  const sizesArg = values.sizes ?? (values.engine ? "10,50" : "10,100,1000");
  const sizes = sizesArg.split(",").map((s) => Number(s.trim()));
  const bad = sizesArg.split(",").filter((_, i) => !Number.isInteger(sizes[i]) || sizes[i]! < 1);
  if (bad.length > 0) {
    console.error(`--sizes ${sizesArg}: expected a comma-separated list of service counts such as 10,100,1000`);
    return 2;
  }
  const parallel = values.parallel === undefined ? undefined : Number(values.parallel);
  if (parallel !== undefined && (!Number.isInteger(parallel) || parallel < 1)) {
    console.error(`--parallel ${values.parallel}: expected the engine's parallelism, a whole number of 1 or more`);
    return 2;
  }
  // The real engine on test hosts (root, minutes): loaded only when asked for.
  if (values.engine) return (await import("./bench-engine")).benchEngine(sizes, parallel);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-bench-"));
  process.on("exit", () => fs.rmSync(work, { recursive: true, force: true }));
  console.log([line(HEADER), line(HEADER.map(() => "---"))].join("\n"));
  for (const n of sizes) {
    console.error(`bench: planning ${n} services, twice (the second time with one image bumped)…`);
    const base = plan(generateStack(n), path.join(work, `${n}-base`));
    // The same stack with one service's image bumped: what a routine deploy changes.
    const bumped = plan(
      generateStack(n, (i) => (i === 1 ? "docker.io/traefik/whoami:v1.10.4" : "docker.io/traefik/whoami:v1.10.3")),
      path.join(work, `${n}-bumped`),
    );
    const diff = comparePlans(base.plan, bumped.plan);
    const touched = diff.added.length + diff.removed.length + diff.changed.length;
    const s = base.stats;
    // Each row as soon as its size is done: the 1,000-service size takes minutes.
    console.log(
      line([
        String(n),
        (s.ms / 1000).toFixed(1),
        (s.cpuMs / 1000).toFixed(1),
        (s.processMs / 1000).toFixed(1),
        String(s.peakRssMiB),
        (s.cpuMs / n).toFixed(1),
        (s.resources / n).toFixed(1),
        (s.files / n).toFixed(1),
        String(touched),
      ]),
    );
  }
  return 0;
}

if (require.main === module) void main().then((code) => (process.exitCode = code));
