/**
 * Runs the exact shell the RemoteFile component sends to hosts, locally, with a fake
 * `sudo` (runs the command as the current user; ownership changes are no-ops) and
 * fake validators, and checks the install protocol an operator relies on.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { asServiceUser, installScript, quadletValidator, removeScript, shQuote } from "../components/remote/script";
import { haveTool, toolPath } from "./support/tools";
import { fakeBin } from "./support/fakebin";
import { renderPodFiles } from "../components/pod/render";
import type { Model } from "../model/types";
import { single } from "./fixtures/models";

/** Words of a command that systemd or Quadlet would read specially if written bare. */
const AWKWARD_WORDS = [
  "sh",
  "-c",
  "echo a; echo b",
  "a;b",
  ";x",
  "x;",
  "100%",
  "%n",
  "$HOME",
  "${HOME}",
  "it's",
  'say "hi"',
  "back\\slash",
  "\\;",
  "`id`",
  "",
  "two  spaces",
];

const bin = fakeBin();

function run(script: string, stdin: string, env: Record<string, string> = {}) {
  const result = spawnSync("sh", ["-c", script], {
    input: stdin,
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, HOME: os.tmpdir(), ...env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function workdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-install-"));
}

const spec = (target: string, validate?: string) => ({
  path: target,
  owner: "root",
  mode: "0640",
  description: `${target} on test`,
  ...(validate ? { validate } : {}),
});

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith(".edgeplane."));
}

describe("install script", () => {
  it("installs the stdin content byte for byte with the requested mode, creating parent directories", () => {
    const dir = workdir();
    const target = path.join(dir, "etc", "envoy", "lds.yaml");
    const content = "a: 'quoted' $HOME `date` \\ \n\tünïcode\n";
    const r = run(installScript(spec(target)), content);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(target, "utf8"), content);
    assert.equal(fs.statSync(target).mode & 0o777, 0o640);
    assert.deepEqual(leftovers(path.dirname(target)), []);
  });

  it("leaves an unchanged file alone: same inode, no rollback copy", () => {
    const dir = workdir();
    const target = path.join(dir, "Caddyfile");
    assert.equal(run(installScript(spec(target)), "same\n").code, 0);
    const before = fs.statSync(target).ino;
    assert.equal(run(installScript(spec(target)), "same\n").code, 0);
    assert.equal(fs.statSync(target).ino, before);
    assert.equal(fs.existsSync(`${target}.edgeplane-prev`), false);
  });

  it("replaces a changed file by rename and keeps the previous one for rollback", () => {
    const dir = workdir();
    const target = path.join(dir, "cds.yaml");
    run(installScript(spec(target)), "old\n");
    const r = run(installScript(spec(target)), "new\n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(target, "utf8"), "new\n");
    assert.equal(fs.readFileSync(`${target}.edgeplane-prev`, "utf8"), "old\n");
  });

  it("runs the validator on the candidate, not on the installed file", () => {
    const dir = workdir();
    const target = path.join(dir, "lds.yaml");
    run(installScript(spec(target)), "old\n");
    const r = run(installScript(spec(target, `grep -q '^new$' "$candidate"`)), "new\n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(target, "utf8"), "new\n");
  });

  it("on a failed validation keeps the running file, cleans up, and fails with the validator's message", () => {
    const dir = workdir();
    const target = path.join(dir, "lds.yaml");
    run(installScript(spec(target)), "good\n");
    const validator = `echo "error: unknown field 'filter_chainz'" >&2; exit 1`;
    const r = run(installScript(spec(target, validator)), "broken\n");
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      new RegExp(`${target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} failed validation; the installed file is unchanged`),
    );
    assert.match(r.stderr, /unknown field 'filter_chainz'/);
    assert.equal(fs.readFileSync(target, "utf8"), "good\n");
    assert.equal(fs.existsSync(`${target}.edgeplane-prev`), false);
    assert.deepEqual(leftovers(dir), []);
  });

  it("a failed first install leaves no file at all", () => {
    const dir = workdir();
    const target = path.join(dir, "envoy.yaml");
    const r = run(installScript(spec(target, "false")), "x\n");
    assert.notEqual(r.code, 0);
    assert.equal(fs.existsSync(target), false);
    assert.deepEqual(leftovers(dir), []);
  });

  it("handles paths with spaces and quotes", () => {
    const dir = workdir();
    const target = path.join(dir, "it's a dir", "file name");
    const r = run(installScript(spec(target)), "ok\n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(target, "utf8"), "ok\n");
  });

  it("never puts the content on the command line", () => {
    const script = installScript({ ...spec("/etc/x"), sha256: "ab".repeat(32) });
    assert.doesNotMatch(script, /SECRET-CONTENT/);
    assert.match(script, /sudo -n tee "\$candidate" >\/dev\/null/);
  });

  it("rejects relative paths and non-octal modes", () => {
    assert.throws(() => installScript(spec("etc/x")), /must be absolute/);
    assert.throws(() => installScript({ ...spec("/etc/x"), mode: "644" }), /mode must be octal/);
  });
});

describe("remove script", () => {
  it("removes the file and its rollback copy, and succeeds when they are already gone", () => {
    const dir = workdir();
    const target = path.join(dir, "unit.container");
    run(installScript(spec(target)), "a\n");
    run(installScript(spec(target)), "b\n");
    assert.equal(run(removeScript(spec(target)), "").code, 0);
    assert.deepEqual(fs.readdirSync(dir), []);
    assert.equal(run(removeScript(spec(target)), "").code, 0);
  });

  it("reads its stdin to the end before it exits, as the command provider needs", () => {
    // The provider runs a delete with the create's stdin (here the file's content). Its
    // SSH client (golang.org/x/crypto/ssh, Session.Wait) fails the command with `EOF`
    // when the command exits while that stdin is still being written; a small stdin
    // makes it a race, one larger than the channel's window makes it certain.
    const dir = workdir();
    const target = path.join(dir, "unit.container");
    run(installScript(spec(target)), "a\n");
    const big = "x".repeat(4 << 20);
    const result = spawnSync("sh", ["-c", removeScript(spec(target))], {
      input: big,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    assert.equal(result.error, undefined, "the whole stdin was read");
    assert.equal(result.status, 0);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

describe("shell helpers", () => {
  it("shQuote round-trips awkward values through sh", () => {
    for (const value of ["plain", "it's", "$(rm -rf /)", "a\nb", '`x` \\ "y"']) {
      assert.equal(run(`printf %s ${shQuote(value)}`, "").stdout, value);
    }
  });

  it("asServiceUser hands the caller's arguments to the inner script", () => {
    const dir = workdir();
    const file = path.join(dir, "candidate file");
    fs.writeFileSync(file, "hello\n");
    const r = run(`candidate=${shQuote(file)}\n${asServiceUser("ep-test", 'cat "$1"', ['"$candidate"'])}`, "");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hello\n");
  });
});

describe(
  "Quadlet units are validated before they replace the installed ones",
  { skip: !haveTool("quadlet") && "quadlet is not built" },
  () => {
    const pod = "[Pod]\nPodName=app\nPublishPort=127.0.0.1:10443:443\n";
    const container = "[Container]\nImage=docker.io/library/nginx:1.27\nPod=app.pod\n";
    // Quadlet writes ExecStart= with $PODMAN, and systemd-analyze checks that it is an
    // executable: this machine has no podman, so a stand-in takes its place.
    const podman = path.join(bin, "podman");
    fs.writeFileSync(podman, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const install = (dir: string, name: string, content: string, user?: string) =>
      run(
        installScript({ ...spec(path.join(dir, name)), validate: quadletValidator(name, user, toolPath("quadlet")!) }),
        content,
        { PODMAN: podman },
      );

    for (const user of [undefined, "ep-app"]) {
      const as = user ? "as the service user" : "as root";

      it(`accepts a container whose pod is already installed (${as})`, () => {
        const dir = workdir();
        assert.equal(install(dir, "app.pod", pod, user).code, 0);
        const r = install(dir, "app-web.container", container, user);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(fs.readFileSync(path.join(dir, "app-web.container"), "utf8"), container);
      });

      it(`refuses a unit Quadlet rejects, keeping the installed one (${as})`, () => {
        const dir = workdir();
        install(dir, "app.pod", pod, user);
        install(dir, "app-web.container", container, user);
        const r = install(dir, "app-web.container", container + "PublishPorts=3000:3000\n", user);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /app-web\.container failed validation/);
        assert.match(r.stderr, /unsupported key 'PublishPorts'/);
        assert.equal(fs.readFileSync(path.join(dir, "app-web.container"), "utf8"), container);
      });

      it(`refuses a unit Quadlet accepts but systemd would refuse to load, keeping the installed one (${as})`, () => {
        const dir = workdir();
        install(dir, "app.pod", pod, user);
        install(dir, "app-web.container", container, user);
        // A lone ; reaches ExecStart= unquoted: systemd's command separator, and a second
        // command is refused for the Type=notify service Quadlet generates.
        const r = install(dir, "app-web.container", `${container}Exec=nginx ; reboot\n`, user);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /app-web\.container failed validation/);
        assert.match(r.stderr, /more than one ExecStart= setting/);
        assert.equal(fs.readFileSync(path.join(dir, "app-web.container"), "utf8"), container);
      });

      it(`installs a rendered container whose command and environment hold every character systemd reads specially (${as})`, () => {
        const dir = workdir();
        const svc = { ...single.services[0]!, command: [...AWKWARD_WORDS], env: [["AWKWARD", AWKWARD_WORDS.join(" ")] as const] };
        const model: Model = { ...single, services: [svc] };
        const files = renderPodFiles(model, svc).map((f) => ({ name: path.basename(f.path), content: f.content }));
        for (const f of files.filter((f) => f.name.endsWith(".pod") || f.name.endsWith(".volume")))
          assert.equal(install(dir, f.name, f.content, user).code, 0, f.name);
        const app = files.find((f) => f.name === `${svc.name}-app.container`)!;
        assert.match(app.content, /^Exec=sh -c "echo a; echo b" /m);
        const r = install(dir, app.name, app.content, user);
        assert.equal(r.code, 0, r.stderr);
      });

      it(`refuses a container whose pod does not exist (${as})`, () => {
        const dir = workdir();
        const r = install(dir, "app-web.container", container, user);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /app\.pod does not exist/);
        assert.equal(fs.existsSync(path.join(dir, "app-web.container")), false);
      });
    }
  },
);
