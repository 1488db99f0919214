/**
 * scripts/build-tools.sh as a user meets it: progress while a tool builds, a cache that
 * survives a fresh checkout (new mtimes, same sources), a rebuild when the sources
 * change, and a failed build that says which tool failed. Go itself is replaced by a
 * stand-in on PATH that prints what `go build -v` prints, so no real build runs.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

const root = path.join(__dirname, "..");
/** How many tools the script builds: one `build NAME …` line each. */
const TOOL_COUNT = (fs.readFileSync(path.join(root, "scripts", "build-tools.sh"), "utf8").match(/^build /gm) ?? []).length;

/** A copy of the script and the tools' sources, with a stand-in `go` that builds in `seconds`. */
function sandbox(seconds: number, fail = false) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-build-tools-"));
  fs.cpSync(path.join(root, "scripts", "build-tools.sh"), path.join(dir, "scripts", "build-tools.sh"));
  fs.cpSync(path.join(root, "tools"), path.join(dir, "tools"), { recursive: true });
  const bin = path.join(dir, "fakebin");
  fs.mkdirSync(bin);
  fs.writeFileSync(
    path.join(bin, "go"),
    `#!/bin/sh
echo "$PWD $*" >> "${dir}/go-calls"
i=0
while [ $i -lt ${seconds} ]; do i=$((i + 1)); echo "go: downloading example.com/m$i v1.0.0" >&2; echo "example.com/p$i" >&2; sleep 1; done
${fail ? 'echo "cmd/x/main.go:3:1: syntax error" >&2; exit 1' : ""}
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
printf '#!/bin/sh\\n' > "$out"; chmod +x "$out"
`,
    { mode: 0o755 },
  );
  const run = () =>
    spawnSync("bash", [path.join(dir, "scripts", "build-tools.sh")], {
      encoding: "utf8",
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH}`,
        EDGEPLANE_TOOLS_DIR: path.join(dir, "cache"),
        EDGEPLANE_BUILD_PROGRESS_SECONDS: "1",
      },
    });
  const calls = () =>
    fs.existsSync(path.join(dir, "go-calls")) ? fs.readFileSync(path.join(dir, "go-calls"), "utf8").trim().split("\n") : [];
  return { dir, run, calls };
}

describe("scripts/build-tools.sh", () => {
  it("says what it builds, how long that takes cold, and shows progress while it builds", () => {
    const box = sandbox(2);
    const r = box.run();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^build-tools: building caddy \(a cold build takes about 5 min; progress every 1 s\)$/m);
    assert.match(r.stdout, /^build-tools: caddy: 0m0\ds so far, \d+ packages compiled, \d+ modules downloaded$/m);
    assert.match(r.stdout, /^build-tools: built caddy in 0m0\ds$/m);
    assert.match(r.stdout, new RegExp(`^build-tools: ${TOOL_COUNT} tool\\(s\\) built in \\dm\\d\\ds, into `, "m"));
    assert.equal(box.calls().length, TOOL_COUNT);
  });

  it("reuses the cache in a fresh checkout of the same sources, and rebuilds what changed", () => {
    const box = sandbox(0);
    assert.equal(box.run().status, 0);
    // A checkout gives every file a new mtime; the sources are the same.
    const later = new Date(Date.now() + 60_000);
    for (const f of fs.readdirSync(path.join(box.dir, "tools"), { recursive: true }))
      fs.utimesSync(path.join(box.dir, "tools", String(f)), later, later);
    const warm = box.run();
    assert.equal(warm.status, 0, warm.stderr);
    assert.equal((warm.stdout.match(/is up to date/g) ?? []).length, TOOL_COUNT, warm.stdout);
    assert.equal(box.calls().length, TOOL_COUNT, "no tool was built again");
    // A changed go.sum rebuilds the tools built from that module, and only them.
    fs.appendFileSync(path.join(box.dir, "tools", "actionlint", "go.sum"), "\n");
    const changed = box.run();
    assert.match(changed.stdout, /^build-tools: built actionlint in /m);
    assert.match(changed.stdout, /^build-tools: caddy is up to date$/m);
    assert.equal(box.calls().length, TOOL_COUNT + 1);
  });

  it("names the tool that failed and shows the compiler's message", () => {
    const box = sandbox(0, true);
    const r = box.run();
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cmd\/x\/main\.go:3:1: syntax error/);
    assert.match(r.stderr, /^build-tools: building caddy failed after 0m0\ds$/m);
    assert.ok(!fs.existsSync(path.join(box.dir, "cache", "bin", "caddy")), "no half-built binary is left to be reused");
  });
});
