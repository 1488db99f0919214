/**
 * `npm run bench` as a user runs it: a Markdown table whose rows appear one by one, as
 * each size finishes, not all at the end; `--sizes` picks the sizes.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";

const root = path.join(__dirname, "..");
const tsx = path.join(root, "node_modules", ".bin", "tsx");

describe("npm run bench", () => {
  it("prints each size's row as soon as that size is done", async () => {
    const child = spawn(tsx, [path.join(root, "scripts", "bench.ts"), "--sizes", "2,60"], { cwd: root });
    // What the user sees on either stream, and when.
    const seen: string[] = [];
    const at = new Map<string, number>();
    const record = (stream: string) => (d: string) => {
      for (const l of d.trimEnd().split("\n")) {
        seen.push(`${stream} ${l}`);
        at.set(`${stream} ${l}`, Date.now());
      }
    };
    child.stdout.setEncoding("utf8").on("data", record("out"));
    child.stderr.setEncoding("utf8").on("data", record("err"));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 0, seen.join("\n"));
    const rows = seen.filter((l) => l.startsWith("out | ")).map((l) => l.slice(4));
    assert.equal(rows.length, 4, seen.join("\n"));
    assert.match(
      rows[0]!,
      /^\| services \| plan wall time \(s\) \| plan CPU time \(s\) \| npm run plan, start-up included \(s\) \| peak memory \(MiB\) \|/,
    );
    assert.match(rows[2]!, /^\| 2 \| \d+\.\d \| \d+\.\d \| \d+\.\d \| \d+ \| /);
    assert.match(rows[3]!, /^\| 60 \| \d+\.\d \| \d+\.\d \| \d+\.\d \| \d+ \| /);
    // The row for 2 services came while the 60-service plans (two processes of a second
    // or more each) were still to run, not with the rest at the end.
    const row2 = at.get(`out ${rows[2]}`)!;
    const row3 = at.get(`out ${rows[3]}`)!;
    assert.ok(row3 - row2 >= 1000, `row 2 at ${row2}, row 3 at ${row3}`);
  });

  it("rejects sizes that are not service counts", () => {
    const r = spawnSync(tsx, [path.join(root, "scripts", "bench.ts"), "--sizes", "10,ten"], { cwd: root, encoding: "utf8" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--sizes 10,ten: expected a comma-separated list of service counts/);
    assert.equal(r.stdout, "");
  });

  it("rejects an engine parallelism that is not a whole number of 1 or more, before booting anything", () => {
    const r = spawnSync(tsx, [path.join(root, "scripts", "bench.ts"), "--engine", "--parallel", "0"], {
      cwd: root,
      encoding: "utf8",
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--parallel 0: expected the engine's parallelism, a whole number of 1 or more/);
    assert.equal(r.stdout, "");
  });
});
