/**
 * The real tools, run over rendered files. Each returns the tool's own complaint
 * (empty when the file is valid) so a failing test shows exactly what the tool said.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/** A token in the format caddy-dns/cloudflare accepts at provision time (caddy-dns/cloudflare README: provision checks the token's format); never a real one. */
export const PLACEHOLDER_CF_TOKEN = "edgeplaneValidationPlaceholderToken0000";

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status ?? -1, output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

/** `caddy adapt --validate`: parses, adapts and provisions every module (incl. the Cloudflare DNS provider). */
export function caddyProblems(caddy: string, caddyfile: string): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-caddy-validate-"));
  const r = run(caddy, ["adapt", "--validate", "--adapter", "caddyfile", "--config", caddyfile], {
    CF_API_TOKEN: PLACEHOLDER_CF_TOKEN,
    HOME: home,
    XDG_DATA_HOME: path.join(home, "data"),
    XDG_CONFIG_HOME: path.join(home, "config"),
  });
  return r.code === 0 ? "" : r.output;
}

/** envoy-validate over a bootstrap and the LDS/CDS files it names, read from `root` (a plan's hosts/<host>). */
export function envoyProblems(tool: string, root: string, bootstrap: string): string {
  const r = run(tool, ["--root", root, path.join(root, bootstrap)]);
  return r.code === 0 ? "" : r.output;
}

/**
 * Quadlet's generator over a unit folder (as systemd would run it at daemon-reload),
 * then `systemd-analyze verify` over every unit it generated. systemd-analyze
 * reports bad keys and values as warnings with exit 0, so any output is a problem.
 * It runs against a scratch root holding systemd's own targets and a stand-in
 * /usr/bin/podman, since it checks that ExecStart binaries exist.
 */
export function unitProblems(quadlet: string, unitDir: string, user: boolean): string {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-units-"));
  const generated = path.join(scratch, "generated");
  fs.mkdirSync(generated);
  // Quadlet prints its errors only in dry-run mode (as a generator it logs to the
  // kernel log), so the dry run reports, and the real run writes the units to verify.
  const mode = user ? ["-user"] : [];
  const dry = run(quadlet, ["-dryrun", ...mode], { QUADLET_UNIT_DIRS: unitDir });
  if (dry.code !== 0) return `quadlet: ${dry.output}`;
  const q = run(quadlet, [...mode, generated], { QUADLET_UNIT_DIRS: unitDir });
  if (q.code !== 0) return `quadlet: ${q.output}`;
  const services = fs.readdirSync(generated).filter((f) => f.endsWith(".service"));
  if (services.length === 0) return `quadlet generated no service from ${unitDir}`;

  const root = path.join(scratch, "root");
  const unitPath = path.join(root, "etc", "systemd", "system");
  fs.mkdirSync(unitPath, { recursive: true });
  fs.mkdirSync(path.join(root, "usr", "bin"), { recursive: true });
  fs.writeFileSync(path.join(root, "usr", "bin", "podman"), "#!/bin/sh\n", { mode: 0o755 });
  fs.cpSync("/usr/lib/systemd/system", path.join(root, "usr", "lib", "systemd", "system"), {
    recursive: true,
    filter: (src) => !fs.statSync(src).isFile() || src.endsWith(".target"),
  });
  for (const f of services) fs.copyFileSync(path.join(generated, f), path.join(unitPath, f));
  const problems: string[] = [];
  for (const f of services) {
    const v = run("systemd-analyze", ["verify", "--man=no", `--root=${root}`, `/etc/systemd/system/${f}`]);
    if (v.code !== 0 || v.output.trim() !== "") problems.push(`${f}: ${v.output.trim()}`);
  }
  return problems.join("\n");
}
