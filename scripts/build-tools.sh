#!/usr/bin/env bash
# Builds the real tools the test suite runs, once, into a cache folder:
#   caddy           Caddy with the caddy-dns/cloudflare and caddy-ratelimit modules (tools/cmd/caddy)
#   caddy-cloudflare  Caddy with caddy-dns/cloudflare only, the default image's modules (tools/cmd/caddy-cloudflare)
#   envoy-validate  Envoy's v3 API types and validation rules (tools/cmd/envoy-validate)
#   quadlet         podman's Quadlet generator (tools/quadlet)
#   actionlint      the GitHub Actions workflow linter (tools/actionlint)
#   caddy-plain     Caddy without the DNS module (the end-to-end tests' broken Caddy image)
#   test-standin    the end-to-end tests' echo app, Authentik outpost and Envoy stand-ins
#   test-registry   the image registry of the end-to-end tests' throwaway hosts
# Everything comes from the Go module proxy at the versions pinned in the go.sum
# files. Needs Go >= the go directive of tools/go.mod.
#
# Cold (empty Go module and build caches), on a 2-core machine: caddy about 5 min,
# caddy-cloudflare about 1 min more (caddy's packages are compiled by then; 25 s measured
# warm), envoy-validate about 3 min, quadlet and actionlint under 30 s each; about 9 min in
# all. While a tool builds, a progress line every 15 s says how long it has been
# building and how many packages it compiled. Warm: about a second.
#
# A binary is reused while a hash of its sources (go.mod, go.sum, its own package)
# matches the one recorded beside it (<bin>.sources), so a fresh checkout or another
# worktree, whose files all have new mtimes, reuses a cache built from the same
# sources.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${EDGEPLANE_TOOLS_DIR:-$PWD/.cache/tools}/bin"
mkdir -p "$out"
export CGO_ENABLED=0
PROGRESS_EVERY=${EDGEPLANE_BUILD_PROGRESS_SECONDS:-15}
started_all=$SECONDS
built=0

# sources_hash FILE_OR_DIR...: one hash over the names and contents of every file.
sources_hash() {
  find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

# elapsed SECONDS: "2m05s".
elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# build NAME ABOUT MODULE_DIR PACKAGE SOURCES...: rebuilds when the sources changed.
# ABOUT is the expected cold build time, for the first line a waiting user reads.
build() {
  local name=$1 about=$2 dir=$3 pkg=$4
  shift 4
  local bin="$out/$name" stamp="$out/$name.sources" hash
  hash=$(sources_hash "$@")
  if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    echo "build-tools: $name is up to date"
    return
  fi
  # A cache from before the hash stamps: trust a binary newer than its sources once.
  if [ -x "$bin" ] && [ ! -f "$stamp" ] && [ -z "$(find "$@" -newer "$bin" -print -quit)" ]; then
    echo "$hash" >"$stamp"
    echo "build-tools: $name is up to date"
    return
  fi
  echo "build-tools: building $name (a cold build takes $about; progress every ${PROGRESS_EVERY} s)"
  local log start=$SECONDS next=$PROGRESS_EVERY
  log=$(mktemp)
  # -v names each package as it is compiled: the progress count.
  (cd "$dir" && go build -v -trimpath -o "$bin.partial" "$pkg") >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ $((SECONDS - start)) -ge "$next" ]; then
      local compiled downloads
      compiled=$(grep -cv '^go: ' "$log" || true)
      downloads=$(grep -c '^go: downloading' "$log" || true)
      echo "build-tools: $name: $(elapsed $((SECONDS - start))) so far, $compiled packages compiled, $downloads modules downloaded"
      next=$((next + PROGRESS_EVERY))
    fi
  done
  if ! wait "$pid"; then
    grep -v '^go: downloading' "$log" >&2 || true
    rm -f "$log" "$bin.partial"
    echo "build-tools: building $name failed after $(elapsed $((SECONDS - start)))" >&2
    exit 1
  fi
  rm -f "$log"
  mv -f "$bin.partial" "$bin"
  echo "$hash" >"$stamp"
  built=$((built + 1))
  echo "build-tools: built $name in $(elapsed $((SECONDS - start)))"
}

build caddy "about 5 min" tools ./cmd/caddy tools/go.mod tools/go.sum tools/cmd/caddy
build caddy-cloudflare "about 1 min after caddy" tools ./cmd/caddy-cloudflare tools/go.mod tools/go.sum tools/cmd/caddy-cloudflare
build envoy-validate "about 3 min" tools ./cmd/envoy-validate tools/go.mod tools/go.sum tools/cmd/envoy-validate
build quadlet "under 30 s" tools/quadlet github.com/containers/podman/v5/cmd/quadlet tools/quadlet/go.mod tools/quadlet/go.sum
build actionlint "under 30 s" tools/actionlint github.com/rhysd/actionlint/cmd/actionlint tools/actionlint/go.mod tools/actionlint/go.sum
build caddy-plain "about a minute" tools github.com/caddyserver/caddy/v2/cmd/caddy tools/go.mod tools/go.sum
build test-standin "under 30 s" tools ./cmd/test-standin tools/go.mod tools/go.sum tools/cmd/test-standin
build test-registry "under 30 s" tools ./cmd/test-registry tools/go.mod tools/go.sum tools/cmd/test-registry
if [ "$built" -gt 0 ]; then
  echo "build-tools: $built tool(s) built in $(elapsed $((SECONDS - started_all))), into $out"
fi
