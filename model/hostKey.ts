/**
 * SSH host keys as `edgeplane:hosts.<h>.ssh.hostKey` takes them: one OpenSSH public-key
 * line, `<type> <base64>` (an `authorized_keys` / `.pub` line; a trailing comment is
 * allowed and dropped).
 *
 * The value goes to @pulumi/command's `ConnectionArgs.hostKey`. Its provider
 * (pulumi/pulumi-command v1.2.1, provider/pkg/provider/remote/connection.go,
 * `SSHConfig`) parses it with golang.org/x/crypto/ssh `ParseAuthorizedKey`, accepts the
 * server only when it presents exactly that key (`ssh.FixedHostKey`), and offers the
 * server only that key's algorithm (`HostKeyAlgorithms: []string{publicKey.Type()}`).
 * Without it, the provider calls `ssh.InsecureIgnoreHostKey()`: whoever answers on the
 * address receives every secret sent on stdin.
 *
 * Accepted types: Ed25519 and ECDSA. Not `ssh-rsa`: pinned, it makes the provider offer
 * only the SHA-1 `ssh-rsa` signature algorithm, which OpenSSH 8.8 and later no longer
 * accept for host keys (https://www.openssh.com/txt/release-8.8), so the connection
 * would fail.
 */
import { createHash } from "node:crypto";

/** The key types edgeplane pins, with the length of the key data after the type name. */
const KEY_TYPES: Record<string, { curve?: string; point: number }> = {
  // RFC 8709 §4: string "ssh-ed25519", string key (32 bytes).
  "ssh-ed25519": { point: 32 },
  // RFC 5656 §3.1: string type, string curve name, string Q (uncompressed point 0x04‖X‖Y).
  "ecdsa-sha2-nistp256": { curve: "nistp256", point: 65 },
  "ecdsa-sha2-nistp384": { curve: "nistp384", point: 97 },
  "ecdsa-sha2-nistp521": { curve: "nistp521", point: 133 },
};

export const HOST_KEY_TYPES = Object.keys(KEY_TYPES);

export type HostKeyParse = { ok: true; key: string } | { ok: false; problem: string };

/** Reads one SSH wire-format `string` (uint32 length + bytes) at `at`. */
function wireString(buf: Buffer, at: number): { value: Buffer; next: number } | undefined {
  if (at + 4 > buf.length) return undefined;
  const len = buf.readUInt32BE(at);
  if (at + 4 + len > buf.length) return undefined;
  return { value: buf.subarray(at + 4, at + 4 + len), next: at + 4 + len };
}

/**
 * Checks one host-key line and returns it as `<type> <base64>` (comment dropped, so
 * editing a comment does not change every connection, which would re-run every
 * command on the host).
 */
export function parseHostKey(line: string): HostKeyParse {
  const fields = line.trim().split(/\s+/);
  const [type, data] = fields;
  const example = "such as ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… (the host's /etc/ssh/ssh_host_ed25519_key.pub)";
  if (!type || !data) return { ok: false, problem: `must be an OpenSSH public key line, ${example}` };
  if (!Object.hasOwn(KEY_TYPES, type)) {
    if (data && Object.hasOwn(KEY_TYPES, data))
      return {
        ok: false,
        problem: `starts with "${type}", which is not a key type; drop the host name (ssh-keyscan and known_hosts put it first): use "${fields.slice(1, 3).join(" ")}"`,
      };
    if (type === "ssh-rsa")
      return {
        ok: false,
        problem:
          "ssh-rsa is not accepted: pinned, it limits the connection to SHA-1 RSA signatures, which OpenSSH 8.8+ refuses; pin the host's Ed25519 key (/etc/ssh/ssh_host_ed25519_key.pub)",
      };
    return { ok: false, problem: `key type "${type}" is not one of ${HOST_KEY_TYPES.join(", ")}` };
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data) || data.length % 4 !== 0)
    return { ok: false, problem: `the key data after "${type}" is not base64` };
  const blob = Buffer.from(data, "base64");
  const spec = KEY_TYPES[type]!;
  const name = wireString(blob, 0);
  const badData = { ok: false as const, problem: `the key data is not a well-formed ${type} key (truncated or copied wrong?)` };
  if (!name || name.value.toString("latin1") !== type) {
    return name && Object.hasOwn(KEY_TYPES, name.value.toString("latin1"))
      ? { ok: false, problem: `the key data is a ${name.value.toString("latin1")} key, but the line says ${type}` }
      : badData;
  }
  let at = name.next;
  if (spec.curve) {
    const curve = wireString(blob, at);
    if (!curve || curve.value.toString("latin1") !== spec.curve) return badData;
    at = curve.next;
  }
  const point = wireString(blob, at);
  if (!point || point.value.length !== spec.point || point.next !== blob.length) return badData;
  if (spec.curve && point.value[0] !== 0x04) return badData;
  return { ok: true, key: `${type} ${data}` };
}

/** OpenSSH's fingerprint of a key (`ssh-keygen -l`): SHA256 of the key data, base64 without padding. */
export function hostKeyFingerprint(key: string): string {
  const data = key.trim().split(/\s+/)[1] ?? "";
  return `SHA256:${createHash("sha256").update(Buffer.from(data, "base64")).digest("base64").replace(/=+$/, "")}`;
}
