/**
 * Golden-file comparison shared by every renderer test. `UPDATE_GOLDEN=1` rewrites the
 * expected files and removes stale ones in the folders it touched, the way
 * envoyproxy/gateway's `-override-testdata` does.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

export const updating = process.env.UPDATE_GOLDEN === "1";
const goldenRoot = path.join(__dirname, "golden");

/** Compares `actual` with test/golden/<relPath>, or rewrites it under UPDATE_GOLDEN=1. */
export function assertGolden(relPath: string, actual: string): void {
  const file = path.join(goldenRoot, relPath);
  if (updating) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  assert.ok(fs.existsSync(file), `missing golden file ${relPath}; run with UPDATE_GOLDEN=1 to create it`);
  assert.equal(actual, fs.readFileSync(file, "utf8"), `rendered output differs from golden ${relPath}`);
}

/**
 * Under UPDATE_GOLDEN=1, removes files in test/golden/<dir> that the run did not write.
 * Call it once per golden folder after all cases have been asserted.
 */
export function pruneGolden(dir: string, written: readonly string[]): void {
  if (!updating) return;
  const root = path.join(goldenRoot, dir);
  if (!fs.existsSync(root)) return;
  const keep = new Set(written.map((p) => path.join(goldenRoot, p)));
  for (const entry of fs.readdirSync(root, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && !keep.has(full)) fs.rmSync(full);
  }
}
