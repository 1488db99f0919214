/**
 * Preflight's SSH step against a real OpenSSH server on loopback: it prints the key to
 * pin in the exact form the config takes, says whether the pinned key is the one the
 * host presents, and fails when it is not.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { buildModel } from "../model";
import { hostKeyFingerprint } from "../model/hostKey";
import type { Host } from "../model/types";
import { formatChecks } from "../preflight/check";
import { checkHostKeys, scanHostKeys } from "../preflight/ssh";
import { EDGE_HOST_KEY } from "./fixtures/models";
import { haveOpenSsh, startSshd, type Sshd } from "./support/sshd";

/** The hosts of a stack whose `edge` host's SSH address is the test's sshd. */
function hostsWith(ssh: Record<string, unknown>): readonly Host[] {
  return buildModel({
    domain: "example.org",
    cloudflare: { zoneId: "0123456789abcdef0123456789abcdef" },
    hosts: { edge: { ingress: true, publicIPv4: "203.0.113.10", tailnetIP: "100.64.0.1", ssh: { user: "deploy", ...ssh } } },
    services: {},
  }).hosts;
}

describe("preflight: SSH host keys (real sshd on 127.0.0.1)", () => {
  let sshd: Sshd | undefined;
  before(async (t) => {
    if (haveOpenSsh(t as never)) sshd = await startSshd();
  });
  after(async () => sshd?.stop());

  it("reads the keys ssh-keyscan reads, with OpenSSH's fingerprint", async (t) => {
    if (!sshd) return t.skip("no OpenSSH");
    const scan = await scanHostKeys("127.0.0.1", sshd.port);
    // Ed25519 first: the key preflight suggests pinning.
    assert.deepEqual(scan.keys, [sshd.keys.ed25519, sshd.keys.ecdsa]);
    for (const type of ["ed25519", "ecdsa"] as const) {
      const listed: string = spawnSync("ssh-keygen", ["-l", "-f", sshd.keyFiles[type]], { encoding: "utf8" }).stdout;
      assert.equal(listed.split(" ")[1], hostKeyFingerprint(sshd.keys[type]));
    }
  });

  it("passes the pinned key, Ed25519 or ECDSA", async (t) => {
    if (!sshd) return t.skip("no OpenSSH");
    for (const key of [sshd.keys.ed25519, `${sshd.keys.ecdsa} root@host`]) {
      const [check] = await checkHostKeys(hostsWith({ host: "127.0.0.1", port: sshd.port, hostKey: key }), "prod");
      assert.equal(check?.status, "ok", formatChecks([check!]));
      assert.equal(
        check?.what,
        `host edge (deploy@127.0.0.1:${sshd.port}): presents ${key.split(" ").slice(0, 2).join(" ")}, the key pinned in edgeplane:hosts.edge.ssh.hostKey`,
      );
    }
  });

  it("fails another key, and prints the presented one in the form the config takes", async (t) => {
    if (!sshd) return t.skip("no OpenSSH");
    const [check] = await checkHostKeys(hostsWith({ host: "127.0.0.1", port: sshd.port, hostKey: EDGE_HOST_KEY }), "prod");
    assert.equal(check?.status, "fail");
    assert.match(
      check!.what,
      new RegExp(
        `^host edge \\(deploy@127\\.0\\.0\\.1:${sshd.port}\\): presents ${escape(sshd.keys.ed25519)} \\(${escape(hostKeyFingerprint(sshd.keys.ed25519))}\\), not the key pinned in edgeplane:hosts\\.edge\\.ssh\\.hostKey \\(ssh-ed25519 ${escape(hostKeyFingerprint(EDGE_HOST_KEY))}\\); pulumi up would refuse to connect$`,
      ),
    );
    const command = `pulumi config set --stack prod --path 'edgeplane:hosts.edge.ssh.hostKey' '${sshd.keys.ed25519}'`;
    assert.ok(check!.hint?.split("\n").includes(command), check!.hint);
    assert.match(check!.hint!, /otherwise something else answers on this address: do not pin it/);
    // What it prints is what the config accepts, and then passes.
    const pinned = hostsWith({ host: "127.0.0.1", port: sshd.port, hostKey: command.split("' '")[1]!.slice(0, -1) });
    assert.equal((await checkHostKeys(pinned, "prod"))[0]?.status, "ok");
  });

  it("warns when the host is not pinned (insecureSkipHostKeyCheck), with the key to pin", async (t) => {
    if (!sshd) return t.skip("no OpenSSH");
    const [check] = await checkHostKeys(
      hostsWith({ host: "127.0.0.1", port: sshd.port, insecureSkipHostKeyCheck: true }),
      "staging",
    );
    assert.equal(check?.status, "warn");
    assert.match(check!.what, /it is not pinned \(edgeplane:hosts\.edge\.ssh\.insecureSkipHostKeyCheck: true\)/);
    assert.ok(
      check!.hint?.includes(`pulumi config set --stack staging --path 'edgeplane:hosts.edge.ssh.hostKey' '${sshd.keys.ed25519}'`),
    );
  });

  it("fails a host where nothing answers", async (t) => {
    if (!sshd) return t.skip("no OpenSSH");
    const closed = sshd.port === 1 ? 2 : 1;
    const [check] = await checkHostKeys(hostsWith({ host: "127.0.0.1", port: closed, hostKey: EDGE_HOST_KEY }), "prod");
    assert.equal(check?.status, "fail");
    assert.match(check!.what, new RegExp(`^host edge \\(deploy@127\\.0\\.0\\.1:${closed}\\): read no Ed25519 or ECDSA host key`));
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
