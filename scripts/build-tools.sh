#!/usr/bin/env bash
# Builds the real tools the test suite runs, once, into a cache folder:
#   caddy           Caddy with the caddy-dns/cloudflare module (tools/cmd/caddy)
#   envoy-validate  Envoy's v3 API types and validation rules (tools/cmd/envoy-validate)
#   quadlet         podman's Quadlet generator (tools/quadlet)
#   actionlint      the GitHub Actions workflow linter (tools/actionlint)
# Everything comes from the Go module proxy at the versions pinned in the go.sum
# files. A binary newer than its sources and go.sum is kept, so a warm run takes
# about a second. Needs Go >= the go directive of tools/go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${EDGEPLANE_TOOLS_DIR:-$PWD/.cache/tools}/bin"
mkdir -p "$out"
export CGO_ENABLED=0

# build NAME MODULE_DIR PACKAGE SOURCES...: rebuilds when any source is newer than the binary.
build() {
  local name=$1 dir=$2 pkg=$3
  shift 3
  local bin="$out/$name"
  if [ -x "$bin" ] && [ -z "$(find "$@" -newer "$bin" -print -quit)" ]; then
    echo "build-tools: $name is up to date"
    return
  fi
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -o "$bin.partial" "$pkg")
  mv -f "$bin.partial" "$bin"
  echo "build-tools: built $name in $((SECONDS - start)) s"
}

build caddy tools ./cmd/caddy tools/go.mod tools/go.sum tools/cmd/caddy
build envoy-validate tools ./cmd/envoy-validate tools/go.mod tools/go.sum tools/cmd/envoy-validate
build quadlet tools/quadlet github.com/containers/podman/v5/cmd/quadlet tools/quadlet/go.mod tools/quadlet/go.sum
build actionlint tools/actionlint github.com/rhysd/actionlint/cmd/actionlint tools/actionlint/go.mod tools/actionlint/go.sum
