/**
 * The real Pulumi CLI, language host and plugins (scripts/build-pulumi.sh) driving this
 * repository's program as an ordinary project would: a stack in a file backend in a
 * temporary folder, its config file there too, secrets encrypted with a passphrase.
 * Nothing is downloaded: plugins come only from the tools cache.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { toolsDir } from "./tools";

const REPO = path.join(__dirname, "..", "..");
export const pulumiDir = path.join(toolsDir, "pulumi");

/** What is missing for the real engine, if anything. */
export function pulumiMissing(): string | undefined {
  const cli = path.join(pulumiDir, "bin", "pulumi");
  if (!fs.existsSync(cli)) return `the Pulumi CLI (${cli}): run bash scripts/build-pulumi.sh`;
  const plugins = path.join(pulumiDir, "home", "plugins");
  for (const name of ["command", "random", "cloudflare"]) {
    const found = fs.existsSync(plugins) && fs.readdirSync(plugins).some((d) => d.startsWith(`resource-${name}-v`));
    if (!found) return `the ${name} provider plugin in ${plugins}: run bash scripts/build-pulumi.sh`;
  }
  return undefined;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Both streams, as one text for assertion messages. */
  readonly output: string;
}

export class PulumiProject {
  readonly dir: string;
  readonly stack: string;
  readonly configFile: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(stack: string) {
    this.stack = stack;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-e2e-"));
    const home = path.join(this.dir, "pulumi-home");
    fs.mkdirSync(home);
    // Only the plugins are shared; the rest of PULUMI_HOME (workspaces, locks) is this run's.
    fs.symlinkSync(path.join(pulumiDir, "home", "plugins"), path.join(home, "plugins"));
    fs.mkdirSync(path.join(this.dir, "state"));
    // The repository's project, run from here so the stack's files stay out of the clone.
    const project = YAML.parse(fs.readFileSync(path.join(REPO, "Pulumi.yaml"), "utf8")) as Record<string, unknown>;
    fs.writeFileSync(path.join(this.dir, "Pulumi.yaml"), YAML.stringify({ ...project, main: path.relative(this.dir, REPO) }));
    this.configFile = path.join(this.dir, `Pulumi.${stack}.yaml`);
    this.env = {
      ...process.env,
      PATH: `${path.join(pulumiDir, "bin")}:${process.env.PATH}`,
      PULUMI_HOME: home,
      PULUMI_BACKEND_URL: `file://${path.join(this.dir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "1",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      NO_COLOR: "1",
    };
  }

  /** Runs the CLI; `onSpawn` gets its process ID as soon as it starts (to measure it). */
  run(args: string[], opts: { input?: string; timeoutMs?: number; onSpawn?: (pid: number) => void } = {}): Promise<RunResult> {
    return new Promise((resolve) => {
      const child = spawn("pulumi", [...args, "--stack", this.stack, "--non-interactive"], {
        cwd: this.dir,
        env: this.env,
        stdio: ["pipe", "pipe", "pipe"],
      });
      if (child.pid !== undefined) opts.onSpawn?.(child.pid);
      let stdout = "";
      let stderr = "";
      let output = "";
      child.stdout.on("data", (d) => ((stdout += d), (output += d)));
      child.stderr.on("data", (d) => ((stderr += d), (output += d)));
      const timer = setTimeout(() => child.kill("SIGTERM"), opts.timeoutMs ?? 20 * 60_000);
      child.once("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr, output });
      });
      child.stdin.end(opts.input ?? "");
    });
  }

  async init(config: Record<string, unknown>, secrets: Record<string, string>): Promise<void> {
    await this.must(["stack", "init"]);
    await this.setConfig(config);
    for (const [key, value] of Object.entries(secrets)) {
      // On stdin, as the README tells operators: never on a command line.
      await this.must(["config", "set", "--secret", key], { input: value });
    }
  }

  /** Replaces the plain config values (secrets set by init stay). */
  async setConfig(config: Record<string, unknown>): Promise<void> {
    const file = fs.existsSync(this.configFile)
      ? ((YAML.parse(fs.readFileSync(this.configFile, "utf8")) as { config?: Record<string, unknown> } | null) ?? {})
      : {};
    const current = (file.config ?? {}) as Record<string, unknown>;
    const kept = Object.fromEntries(
      Object.entries(current).filter(([, v]) => typeof v === "object" && v !== null && "secure" in v),
    );
    fs.writeFileSync(this.configFile, YAML.stringify({ ...file, config: { ...kept, ...config } }));
  }

  up(): Promise<RunResult> {
    return this.run(["up", "--yes", "--skip-preview", "--diff"]);
  }

  preview(): Promise<RunResult> {
    return this.run(["preview", "--diff"]);
  }

  destroy(): Promise<RunResult> {
    return this.run(["destroy", "--yes", "--skip-preview"]);
  }

  async must(args: string[], opts: { input?: string } = {}): Promise<RunResult> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} failed (${r.code}):\n${r.output}`);
    return r;
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
