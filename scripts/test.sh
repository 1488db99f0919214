#!/usr/bin/env bash
# The whole test suite: `npm test`. Builds the real-tool binaries once (cached), then
# type-checks and runs every test with node's test runner. In CI (CI=true) a test
# that needs a missing tool fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f scripts/build-tools.sh ]; then
  bash scripts/build-tools.sh
fi
export EDGEPLANE_TOOLS_DIR="${EDGEPLANE_TOOLS_DIR:-$PWD/.cache/tools}"

echo "== typecheck and format"
npx tsc --noEmit
npx prettier --check . >/dev/null || { npx prettier --list-different .; echo "run: npm run format" >&2; exit 1; }

echo "== tests"
mapfile -t files < <(find test -name '*.test.ts' | sort)
node --import tsx --test --test-reporter=spec "${files[@]}"
