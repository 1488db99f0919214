/**
 * A folder of test doubles to put first on PATH when running the exact shell the
 * components send to hosts: `sudo` runs the command as the current user (dropping -n
 * and -u USER; chown is a no-op) and `id -u` answers 1000 (for runtime directories).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export function fakeBin(dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgeplane-fakebin-"))): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "sudo"),
    `#!/bin/sh
# test double for sudo: drop -n and -u USER, make chown a no-op, run the rest
while [ $# -gt 0 ]; do case "$1" in -n) shift ;; -u) shift 2 ;; *) break ;; esac; done
[ "$1" = chown ] && exit 0
exec "$@"
`,
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(dir, "id"), `#!/bin/sh\necho 1000\n`, { mode: 0o755 });
  return dir;
}
