#!/usr/bin/env bash
# The test suite: `npm test` runs all of it; `npm test -- <file or folder>...` runs only
# those test files (a folder: every *.test.ts below it), and `npm run test:<group>`
# one group (package.json). Builds the real-tool binaries and the real Pulumi toolchain
# first (cached: about a second each when warm), then, for the whole suite only,
# type-checks and checks the formatting. In CI (CI=true) a test that needs a missing
# tool fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

timed() {
  local start=$SECONDS status=0
  "$@" || status=$?
  echo "   ($2: $((SECONDS - start)) s)"
  return $status
}

echo "== real-tool binaries (scripts/build-tools.sh)"
timed bash scripts/build-tools.sh
echo "== Pulumi CLI, language host and plugins (scripts/build-pulumi.sh)"
if ! timed bash scripts/build-pulumi.sh; then
  # In CI the engine tests must run; elsewhere (no Go, no ../shared) they skip, saying why.
  [ -n "${CI:-}" ] && exit 1
  echo "test: the Pulumi toolchain could not be built; the engine tests will be skipped" >&2
fi
export EDGEPLANE_TOOLS_DIR="${EDGEPLANE_TOOLS_DIR:-$PWD/.cache/tools}"

if [ $# -eq 0 ]; then
  echo "== typecheck and format"
  npx tsc --noEmit
  npx prettier --check . >/dev/null || { npx prettier --list-different .; echo "run: npm run format" >&2; exit 1; }
  set -- test
fi

# Test hosts for the end-to-end tests: the cached root filesystem (minutes when cold).
if [ "$(id -u)" = 0 ] && command -v debootstrap >/dev/null 2>&1; then
  echo "== test-host root filesystem (scripts/build-test-host.sh)"
  timed bash scripts/build-test-host.sh >/dev/null
fi

files=()
for arg in "$@"; do
  if [ -d "$arg" ]; then
    mapfile -t found < <(find "$arg" -name '*.test.ts' | sort)
    files+=("${found[@]}")
  elif [ -f "$arg" ]; then
    files+=("$arg")
  else
    echo "test: $arg is neither a test file nor a folder" >&2
    exit 2
  fi
done
if [ ${#files[@]} -eq 0 ]; then
  echo "test: no *.test.ts under $*" >&2
  exit 2
fi

echo "== tests (${#files[@]} file(s))"
status=0
node --import tsx --test --test-reporter=spec "${files[@]}" || status=$?
echo "== done in $((SECONDS - started)) s"
exit $status
