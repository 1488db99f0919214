/**
 * `npm run status` against a recorded host: the real command, its real read-only
 * script run by bash, with ssh and the host's tools replaced by stand-ins that answer
 * what a host answered (test/fixtures/status/lab: unit states, served certificates,
 * Envoy's /clusters). The installed files' hashes are the plan's, except one edited
 * by hand and one deleted.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, it } from "node:test";

const root = path.join(__dirname, "..");
const tsx = path.join(root, "node_modules", ".bin", "tsx");
const recorded = path.join(__dirname, "fixtures", "status", "lab");

/** Stand-ins for ssh (runs the script here) and the host's tools, reading the recorded answers. */
function fakeHost(dir: string, files: string): string {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  const tool = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
  tool("ssh", `printf '%s\\n' "$@" > "${dir}/ssh-args"; tee "${dir}/script" | bash -s`);
  tool("sudo", `while [ "$1" = -n ]; do shift; done; exec "$@"`);
  tool(
    "sha256sum",
    `[ "$1" = -- ] && shift; l=$(grep -F " $1 " "${files}" | head -1); [ -n "$l" ] || exit 1; echo "\${l%% *}  $1"`,
  );
  tool("stat", `f=\${@: -1}; l=$(grep -F " $f " "${files}" | head -1); [ -n "$l" ] || exit 1; echo "\${l##* }"`);
  tool("systemctl", `s=$(grep -F "$3 $5 " "${recorded}/units.txt" | cut -d' ' -f3); echo "\${s:-inactive}"; [ "$s" = active ]`);
  tool(
    "openssl",
    `if [ "$1" = s_client ]; then while [ $# -gt 0 ]; do [ "$1" = -servername ] && echo "SERVED $2"; shift; done; exit 0; fi
n=$(sed -n 's/^SERVED //p'); d=$(grep -F "$n " "${recorded}/certs.txt" | cut -d' ' -f2-); [ -n "$d" ] || exit 1; echo "notAfter=$d"`,
  );
  tool("curl", `cat "${recorded}/clusters.json"`);
  return bin;
}

describe("npm run status against a recorded host", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-status-"));
  let report: any;
  let table: string;
  let stderr: string;
  let exitCode: number | null;
  let edited: string;
  let deleted: string;
  const written = new Map<string, number>();

  before(() => {
    // What `pulumi up` installed: the plan's files, as the offline plan writes them.
    const out = path.join(dir, "out");
    const planned = spawnSync(tsx, [path.join(root, "scripts", "plan.ts"), "--stack", "staging", "--out", out], {
      cwd: root,
      encoding: "utf8",
    });
    assert.equal(planned.status, 0, planned.stderr);
    const files: { path: string; sha256: string; service: string | null }[] = JSON.parse(
      fs.readFileSync(path.join(out, "staging", "plan.json"), "utf8"),
    ).files;
    edited = files.find((f) => f.service === "whoami" && f.path.endsWith("/Caddyfile"))!.path;
    deleted = files.find((f) => f.service === "vllm" && f.path.endsWith("vllm-app.container"))!.path;
    const fileTable = files
      .filter((f) => f.path !== deleted)
      .map((f, i) => {
        // Recorded mtimes (seconds), one file a minute apart.
        const mtime = 1795600020 + i * 60;
        if (f.service) written.set(f.service, Math.max(written.get(f.service) ?? 0, mtime));
        return `${f.path === edited ? "0".repeat(64) : f.sha256} ${f.path} ${mtime}`;
      })
      .join("\n");
    fs.writeFileSync(path.join(dir, "files.txt"), `${fileTable}\n`);
    const bin = fakeHost(dir, path.join(dir, "files.txt"));
    const run = (...args: string[]) =>
      spawnSync(tsx, [path.join(root, "scripts", "status.ts"), "--stack", "staging", ...args], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      });
    const json = run("--json");
    assert.equal(json.status, 1, json.stderr);
    report = JSON.parse(json.stdout);
    const text = run();
    table = text.stdout;
    stderr = text.stderr;
    exitCode = text.status;
  });

  const service = (name: string) => report.services.find((s: any) => s.service === name);

  it("reports each service's units, naming the ones that are not active", () => {
    assert.deepEqual(service("whoami").units, {
      "whoami-pod.service": "active",
      "whoami-app.service": "active",
      "whoami-caddy.service": "active",
    });
    assert.equal(service("grafana").units["grafana-caddy.service"], "failed");
    assert.match(table, /^grafana\s+lab\s+grafana-caddy\.service failed\s/m);
    assert.match(table, /^whoami\s+lab\s+3\/3 active\s/m);
  });

  it("calls a service with a unit down or an upstream Envoy sees unhealthy unhealthy, naming it, and exits 1", () => {
    assert.equal(exitCode, 1);
    assert.deepEqual(
      report.services.filter((s: any) => !s.healthy).map((s: any) => [s.service, s.problems]),
      [
        ["grafana", ["grafana-caddy.service failed", "Envoy sees caddy_grafana (127.0.0.1:10444) unhealthy"]],
        ["vllm", [`Envoy sees l7_vllm (${service("vllm").envoy[1].address}) unhealthy`]],
      ],
    );
    assert.match(stderr, /^status: service grafana on lab is unhealthy: grafana-caddy\.service failed, /m);
    assert.match(stderr, /^status: service vllm on lab is unhealthy: Envoy sees l7_vllm /m);
    assert.doesNotMatch(stderr, /whoami/);
    assert.deepEqual(report.notChecked, [], "the recorded ingress has openssl and curl");
  });

  it("reports the certificate each name is served with through Envoy, and the days left", () => {
    const cert = service("whoami").certificate;
    assert.equal(cert.notAfter, "2027-02-23T08:14:05.000Z");
    const days = Math.floor((Date.parse(cert.notAfter) - Date.now()) / 86_400_000);
    assert.ok(Math.abs(cert.daysLeft - days) <= 1, `${cert.daysLeft} vs ${days}`);
    assert.equal(service("grafana").certificate, null, "grafana's Caddy is down: no certificate served");
    assert.match(table, /none served/);
  });

  it("finds the file edited by hand and the one deleted, and nothing else", () => {
    assert.deepEqual(service("whoami").drift, [{ path: edited, state: "differs" }]);
    assert.deepEqual(service("vllm").drift, [{ path: deleted, state: "missing" }]);
    assert.deepEqual(service("grafana").drift, []);
    for (const h of report.hostFiles) assert.deepEqual(h.drift, [], h.host);
    assert.match(table, /Caddyfile differs/);
  });

  it("says when each service's files were last written", () => {
    for (const name of ["whoami", "grafana", "vllm"])
      assert.equal(service(name).lastApplied, new Date(written.get(name)! * 1000).toISOString(), name);
  });

  it("shows Envoy's view of each cluster: health and open connections", () => {
    assert.deepEqual(service("whoami").envoy, [
      { cluster: "caddy_whoami", address: "127.0.0.1:10443", healthy: true, connections: 3 },
    ]);
    assert.deepEqual(service("grafana").envoy, [
      { cluster: "caddy_grafana", address: "127.0.0.1:10444", healthy: false, connections: 0 },
    ]);
    assert.deepEqual(
      service("vllm").envoy.map((e: any) => [e.cluster, e.healthy]),
      [
        ["caddy_vllm", true],
        ["l7_vllm", false],
      ],
    );
  });

  it("connects as the stack says, trusting only the pinned host key, and only reads", () => {
    const args = fs.readFileSync(path.join(dir, "ssh-args"), "utf8").split("\n");
    assert.ok(args.includes("deploy@100.64.1.1"), args.join(" "));
    assert.ok(args.includes("StrictHostKeyChecking=yes"), "the stack pins the host key");
    assert.ok(args.some((a) => a.startsWith("UserKnownHostsFile=")) && !args.includes("UserKnownHostsFile=/dev/null"));
    const script = fs.readFileSync(path.join(dir, "script"), "utf8");
    // Nothing that writes, moves, removes or restarts anything on the host.
    for (const word of ["mv", "rm", "cp", "tee", "install", "restart", "reload", "start", "stop", "chmod", "chown"])
      assert.doesNotMatch(script, new RegExp(`(^|[\\s;|&(])${word}\\b`, "m"), word);
    assert.doesNotMatch(script.replace(/2>\/dev\/null/g, ""), />/, "no redirection into a file");
    assert.match(script, /systemctl --user -M 'ep-whoami@' is-active/);
    assert.match(script, /curl -fsS --max-time 10 'http:\/\/127\.0\.0\.1:9901\/clusters\?format=json'/);
  });
});
