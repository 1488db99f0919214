/**
 * Preflight's SSH step: the host key each host's SSH address presents, as the config
 * pins it (`edgeplane:hosts.<h>.ssh.hostKey`), and whether it is the pinned one.
 *
 * The keys are read with OpenSSH's own `ssh-keyscan`, the tool an operator would use by
 * hand, limited to the key types edgeplane pins (model/hostKey.ts). It only reads: no
 * login is attempted, no credential is sent.
 */
import { spawn } from "node:child_process";
import type { Host } from "../model/types";
import { hostKeyFingerprint, parseHostKey } from "../model/hostKey";
import { fail, ok, warn, type Check } from "./check";

/** Most preferred first: the key preflight suggests when a host has several. */
const PREFERENCE = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"];

export interface ScanResult {
  /** Every pinnable key the address presented, as `<type> <base64>`, most preferred first. */
  readonly keys: readonly string[];
  /** What ssh-keyscan said on stderr (connection errors), when it read no key. */
  readonly error?: string;
}

/** Runs `ssh-keyscan` against one address. Rejects only when ssh-keyscan cannot be started. */
export function scanHostKeys(address: string, port: number, timeoutSeconds = 5): Promise<ScanResult> {
  return new Promise((resolve, reject) => {
    // `--` so an address cannot be read as an option.
    const child = spawn("ssh-keyscan", ["-T", String(timeoutSeconds), "-p", String(port), "-t", "ed25519,ecdsa", "--", address], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", () => {
      // Lines are `<host> <type> <base64>` (`[host]:port` off port 22); comments start with #.
      const keys = out
        .split("\n")
        .filter((l) => l.trim() !== "" && !l.startsWith("#"))
        .map((l) => parseHostKey(l.trim().split(/\s+/).slice(1).join(" ")))
        .flatMap((p) => (p.ok ? [p.key] : []));
      const rank = (k: string) => PREFERENCE.indexOf(k.split(" ")[0]!);
      const sorted = [...new Set(keys)].sort((a, b) => rank(a) - rank(b));
      const error = err
        .split("\n")
        .filter((l) => l.trim() !== "" && !l.startsWith("#"))
        .join("; ");
      resolve({ keys: sorted, ...(sorted.length === 0 ? { error: error || "no answer" } : {}) });
    });
  });
}

/** The command that pins `key` for `host`, exactly as the config holds it. */
export function pinCommand(stack: string, host: string, key: string): string {
  return `pulumi config set --stack ${stack} --path 'edgeplane:hosts.${host}.ssh.hostKey' '${key}'`;
}

const describeKey = (key: string) => `${key.split(" ")[0]} ${hostKeyFingerprint(key)}`;

/** One check per host: the key its SSH address presents against the pinned one. */
export async function checkHostKeys(
  hosts: readonly Host[],
  stack: string,
  scan: (address: string, port: number) => Promise<ScanResult> = scanHostKeys,
): Promise<Check[]> {
  let results: ScanResult[];
  try {
    results = await Promise.all(hosts.map((h) => scan(h.ssh.host, h.ssh.port)));
  } catch (err) {
    return [
      fail(
        `SSH host keys: cannot run ssh-keyscan (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
        "install OpenSSH's client (Debian: openssh-client), or pass --skip-ssh to leave the host keys unchecked",
      ),
    ];
  }
  return hosts.map((host, i): Check => {
    const { keys, error } = results[i]!;
    const where = `host ${host.name} (${host.ssh.user}@${host.ssh.host}:${host.ssh.port})`;
    const key = `edgeplane:hosts.${host.name}.ssh.hostKey`;
    const pinned = host.ssh.hostKey;
    if (keys.length === 0)
      return fail(
        `${where}: read no Ed25519 or ECDSA host key (${error ?? "no answer"})`,
        "is the host reachable from here (over the tailnet), and does its sshd have an Ed25519 key? pulumi up connects to the same address",
      );
    const offered = keys[0]!;
    if (pinned === undefined)
      return warn(
        `${where}: presents ${offered}; it is not pinned (edgeplane:hosts.${host.name}.ssh.insecureSkipHostKeyCheck: true), so pulumi up would send secrets to whoever answers there`,
        `check ${describeKey(offered)} on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then pin it and remove insecureSkipHostKeyCheck:\n${pinCommand(stack, host.name, offered)}`,
      );
    if (keys.includes(pinned)) return ok(`${where}: presents ${pinned}, the key pinned in ${key}`);
    return fail(
      `${where}: presents ${offered} (${hostKeyFingerprint(offered)}), not the key pinned in ${key} (${describeKey(pinned)}); pulumi up would refuse to connect`,
      `if the host was re-installed, check the new key on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin it:\n${pinCommand(stack, host.name, offered)}\notherwise something else answers on this address: do not pin it`,
    );
  });
}
