/**
 * A throwaway OpenSSH server on 127.0.0.1 with its own host keys, for tests that read
 * or check host keys. Nothing can log in (no authorized keys); it only answers the key
 * exchange. Needs Debian's openssh-server (sshd) and openssh-client (ssh-keygen,
 * ssh-keyscan): missing, the test is skipped outside CI and fails in CI.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { TestContext } from "node:test";
import { freePort } from "./live";

export const SSHD = "/usr/sbin/sshd";

export interface Sshd {
  readonly port: number;
  /** The server's public host keys, `<type> <base64>`, by ssh-keygen type name. */
  readonly keys: Readonly<Record<"ed25519" | "ecdsa", string>>;
  /** The private-key files, for `ssh-keygen -l`. */
  readonly keyFiles: Readonly<Record<"ed25519" | "ecdsa", string>>;
  stop(): Promise<void>;
}

/** True when the OpenSSH binaries are here; throws in CI when they are not. */
export function haveOpenSsh(t: TestContext): boolean {
  const missing = [
    ...(fs.existsSync(SSHD) ? [] : [SSHD]),
    ...["ssh-keygen", "ssh-keyscan"].filter((bin) => spawnSync("which", [bin]).status !== 0),
  ];
  if (missing.length === 0) return true;
  const message = `OpenSSH is not installed (${missing.join(", ")}): apt-get install openssh-server openssh-client`;
  if (process.env.CI) throw new Error(message);
  t.skip(message);
  return false;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("data", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export async function startSshd(): Promise<Sshd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-sshd-"));
  const keyFiles = { ed25519: path.join(dir, "host_ed25519"), ecdsa: path.join(dir, "host_ecdsa") };
  for (const [type, file] of Object.entries(keyFiles)) {
    const r = spawnSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "", "-f", file]);
    if (r.status !== 0) throw new Error(`ssh-keygen -t ${type}: ${r.stderr}`);
  }
  const pub = (file: string) => fs.readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  // Run as root, sshd wants its privilege-separation directory (Debian's unit creates it).
  if (process.getuid?.() === 0) fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = path.join(dir, "sshd_config");
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${keyFiles.ed25519}`,
      `HostKey ${keyFiles.ecdsa}`,
      `PidFile ${path.join(dir, "sshd.pid")}`,
      "AuthorizedKeysFile none",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  for (let i = 0; i < 50 && child.exitCode === null; i++) {
    if (await listening(port)) {
      return {
        port,
        keys: { ed25519: pub(keyFiles.ed25519), ecdsa: pub(keyFiles.ecdsa) },
        keyFiles,
        async stop() {
          if (child.exitCode === null) child.kill("SIGTERM");
          await exited;
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGTERM");
  throw new Error(`sshd did not start on 127.0.0.1:${port}:\n${log}`);
}
