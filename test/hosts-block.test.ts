/**
 * The ingress host's /etc/hosts block: what it maps, and the exact shell that splices
 * it into /etc/hosts, run locally on a scratch file with a fake `sudo`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { BEGIN_MARKER, END_MARKER, renderHostsBlock, spliceHostsScript } from "../components/hosts/render";
import { fleet } from "./fixtures/models";
import { fakeBin } from "./support/fakebin";

const bin = fakeBin();

const OPERATOR_LINES = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n10.0.0.5\tnas.lan\n";

function setup(initial: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-hosts-"));
  const hosts = path.join(dir, "hosts");
  const block = path.join(dir, "block");
  fs.writeFileSync(hosts, initial);
  return { dir, hosts, block };
}

function splice(hosts: string, block: string | null) {
  const r = spawnSync("sh", ["-c", spliceHostsScript(hosts, block)], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
  });
  assert.equal(r.status, 0, r.stderr);
}

describe("/etc/hosts block", () => {
  it("maps every served name to the ingress's tailnet address, one name per line", () => {
    const lines = renderHostsBlock(fleet)
      .split("\n")
      .filter((l) => l && !l.startsWith("#"));
    const ingress = fleet.hosts.find((h) => h.ingress)!;
    assert.deepEqual(
      lines,
      [...fleet.services.map((s) => s.fqdn)].sort().map((n) => `${ingress.tailnetIP}\t${n}`),
    );
  });

  it("adds the block after the operator's lines and keeps those untouched", () => {
    const { hosts, block } = setup(OPERATOR_LINES);
    fs.writeFileSync(block, renderHostsBlock(fleet));
    splice(hosts, block);
    const text = fs.readFileSync(hosts, "utf8");
    assert.ok(text.startsWith(OPERATOR_LINES));
    assert.equal(text.slice(OPERATOR_LINES.length), `${BEGIN_MARKER}\n${renderHostsBlock(fleet)}${END_MARKER}\n`);
    assert.equal((fs.statSync(hosts).mode & 0o777).toString(8), "644");
  });

  it("replaces its own block on a change, wherever the operator's lines are", () => {
    const { hosts, block } = setup(
      `${OPERATOR_LINES}${BEGIN_MARKER}\n100.64.0.9\told.example.org\n${END_MARKER}\n192.168.1.1\trouter\n`,
    );
    fs.writeFileSync(block, "100.64.0.1\tnew.example.org\n");
    splice(hosts, block);
    assert.equal(
      fs.readFileSync(hosts, "utf8"),
      `${OPERATOR_LINES}192.168.1.1\trouter\n${BEGIN_MARKER}\n100.64.0.1\tnew.example.org\n${END_MARKER}\n`,
    );
  });

  it("writes nothing when the block is already in place", () => {
    const { dir, hosts, block } = setup(OPERATOR_LINES);
    fs.writeFileSync(block, renderHostsBlock(fleet));
    splice(hosts, block);
    const inode = fs.statSync(hosts).ino;
    splice(hosts, block);
    assert.equal(fs.statSync(hosts).ino, inode, "an unchanged block is not rewritten");
    assert.deepEqual(fs.readdirSync(dir).sort(), ["block", "hosts"], "no temporary file is left behind");
  });

  it("removes only its block on destroy", () => {
    const { hosts, block } = setup(OPERATOR_LINES);
    fs.writeFileSync(block, renderHostsBlock(fleet));
    splice(hosts, block);
    splice(hosts, null);
    assert.equal(fs.readFileSync(hosts, "utf8"), OPERATOR_LINES);
  });
});
