/**
 * A throwaway OpenSSH server on 127.0.0.1 for the engine tests' `pulumi up`: its own
 * config, host key and client key in a temporary folder, key login only, and every
 * session forced (`ForceCommand`) into a recorder that stores the command text the
 * client asked for (`SSH_ORIGINAL_COMMAND`), the sha256 of its stdin and the
 * `PULUMI_COMMAND_*` variables it was sent, then exits 0. Nothing runs on this
 * machine: what the remote commands would do on a host is not the point here, what
 * the engine sends, when, and how often, is.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "./live";

export interface RecordedSession {
  /** Order in which sessions started. */
  readonly seq: number;
  /** The command text as the client sent it. */
  readonly command: string;
  /** sha256 (hex) of everything the client sent on stdin. */
  readonly stdinSha256: string;
  /** Bytes on stdin. */
  readonly stdinBytes: number;
  /** PULUMI_COMMAND_* variables the client set (AcceptEnv). */
  readonly env: Record<string, string>;
}

export interface RecordingSshd {
  readonly port: number;
  readonly user: string;
  /** The client's private key (OpenSSH format), for `edgeplane:sshPrivateKey`. */
  readonly clientKey: string;
  /** The server's host public key line (`ssh-ed25519 AAAA…`), for host-key pinning. */
  readonly hostKey: string;
  /** Every session so far, in order. */
  sessions(): RecordedSession[];
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

/** True when OpenSSH's server and ssh-keygen are installed (Debian: openssh-server). */
export function haveSshd(): boolean {
  return fs.existsSync(SSHD) && spawnSync("ssh-keygen", ["-?"], { stdio: "ignore" }).error === undefined;
}

const RECORDER = `#!/bin/sh
# One session: the command text, the sha256 of stdin and PULUMI_COMMAND_* env, one folder each.
dir="$(dirname "$0")/sessions/$(date +%s%N)-$$"
mkdir -p "$dir"
printf '%s' "$SSH_ORIGINAL_COMMAND" > "$dir/command"
tee "$dir/.stdin" | sha256sum | cut -d' ' -f1 > "$dir/stdin.sha256"
wc -c < "$dir/.stdin" > "$dir/stdin.bytes"
rm -f "$dir/.stdin"
env | grep '^PULUMI_COMMAND_' > "$dir/env" || true
: > "$dir/done"
exit 0
`;

export async function startRecordingSshd(): Promise<RecordingSshd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-sshd-"));
  const keygen = (file: string) => {
    const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "edgeplane-test", "-f", file]);
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  };
  keygen(path.join(dir, "host_key"));
  keygen(path.join(dir, "client_key"));
  fs.copyFileSync(path.join(dir, "client_key.pub"), path.join(dir, "authorized_keys"));
  fs.writeFileSync(path.join(dir, "record.sh"), RECORDER, { mode: 0o755 });
  fs.mkdirSync(path.join(dir, "sessions"));
  // sshd's privilege separation needs this folder; a machine without a running sshd may lack it.
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const user = os.userInfo().username;
  const port = await freePort();
  fs.writeFileSync(
    path.join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${dir}/host_key`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "StrictModes no",
      `AllowUsers ${user}`,
      `ForceCommand ${dir}/record.sh`,
      // The command provider sends PULUMI_COMMAND_STDOUT/STDERR to a delete.
      "AcceptEnv PULUMI_COMMAND_*",
      "MaxStartups 100:30:200",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  let log = "";
  const proc: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", path.join(dir, "sshd_config")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (d) => (log += d));
  proc.stderr!.on("data", (d) => (log += d));
  await waitForListen(port, proc, () => log);

  const hostKeyLine = fs.readFileSync(path.join(dir, "host_key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ");
  return {
    port,
    user,
    clientKey: fs.readFileSync(path.join(dir, "client_key"), "utf8"),
    hostKey: hostKeyLine,
    sessions: () => readSessions(path.join(dir, "sessions")),
    stop: async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once("exit", resolve));
        proc.kill("SIGTERM");
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readSessions(dir: string): RecordedSession[] {
  const names = fs.readdirSync(dir).sort((a, b) => {
    const [ta, pa] = a.split("-").map(BigInt);
    const [tb, pb] = b.split("-").map(BigInt);
    return ta! < tb! ? -1 : ta! > tb! ? 1 : pa! < pb! ? -1 : 1;
  });
  return names
    .filter((n) => fs.existsSync(path.join(dir, n, "done")))
    .map((name, seq) => {
      const read = (f: string) => fs.readFileSync(path.join(dir, name, f), "utf8");
      const env = Object.fromEntries(
        read("env")
          .split("\n")
          .filter(Boolean)
          .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
      );
      return {
        seq,
        command: read("command"),
        stdinSha256: read("stdin.sha256").trim(),
        stdinBytes: Number(read("stdin.bytes").trim()),
        env,
      };
    });
}

async function waitForListen(port: number, proc: ChildProcess, log: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`sshd exited with ${proc.exitCode}:\n${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on ${port} within ${timeoutMs} ms:\n${log()}`);
}
