#!/usr/bin/env bash
# Builds the real Pulumi toolchain the engine tests run, once, into a cache folder, so
# the CLI never downloads anything:
#   $PULUMI_TOOLS/bin/pulumi                   the CLI (Go module proxy, tools/pulumi/cli)
#   $PULUMI_TOOLS/bin/pulumi-language-nodejs   the Node.js language host
#   $PULUMI_TOOLS/home/plugins/resource-*      command, random, cloudflare, tailscale
# where PULUMI_TOOLS = ${EDGEPLANE_TOOLS_DIR:-.cache/tools}/pulumi. Versions come from
# package-lock.json: the CLI and language host at the @pulumi/pulumi SDK's version,
# each plugin at its npm SDK's version (the engine asks for exactly that version).
#
# The language host and plugins are built from PULUMI_SOURCES (default
# ../shared/pulumi-sources), a tarball of their public sources (pulumi/pulumi
# sdk/nodejs/cmd/pulumi-language-nodejs, pulumi/pulumi-command, pulumi/pulumi-random,
# pulumi/pulumi-tailscale, pulumi/pulumi-cloudflare); their Go dependencies come from
# the module proxy. The cloudflare plugin takes about an hour and 12 GB to link on 2
# cores, so the prebuilt copy beside the tarball is used after checking its sha256,
# unless EDGEPLANE_BUILD_CLOUDFLARE=1.
#
# On a machine with internet access none of this is needed: install the CLI from
# https://www.pulumi.com/docs/install/ and let it fetch the plugins.
#
# Everything is rebuilt only when its inputs changed (a stamp per binary records the
# version and source hash), so a warm run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools="${EDGEPLANE_TOOLS_DIR:-$root/.cache/tools}/pulumi"
# ../shared beside the clone; for a git worktree elsewhere, beside the main checkout.
sources="${PULUMI_SOURCES:-$root/../shared/pulumi-sources}"
if [ -z "${PULUMI_SOURCES:-}" ] && [ ! -d "$sources" ]; then
  common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  [ -n "$common" ] && sources="$(dirname "$(dirname "$common")")/shared/pulumi-sources"
fi
bin="$tools/bin"
plugins="$tools/plugins"
mkdir -p "$bin" "$plugins"
export CGO_ENABLED=0
# sha256 of the uncompressed prebuilt pulumi-resource-cloudflare 6.22.1 (linux-amd64),
# built from pulumi/pulumi-cloudflare 52f065c5f with Go 1.26.8; a different file is refused.
CLOUDFLARE_PREBUILT_SHA256=2283e9fc5b49b57924a8fb66d56603bbcc8502f0f04140e23b6444a7182a8a66

lock_version() { node -p "require('./package-lock.json').packages['node_modules/$1'].version"; }
sdk=$(lock_version @pulumi/pulumi)

step() { echo "build-pulumi: $*"; }

# fresh NAME STAMP: true when $bin/NAME (or plugin) exists with the same stamp.
fresh() { [ -f "$2.stamp" ] && [ "$(cat "$2.stamp")" = "$1" ] && [ -x "$2" ]; }

# The CLI, from the module proxy (tools/pulumi/cli/go.mod pins pkg/v3 and sdk/v3).
cli_stamp="cli v$sdk $(cat tools/pulumi/cli/go.mod tools/pulumi/cli/go.sum | sha256sum | cut -c1-16)"
if fresh "$cli_stamp" "$bin/pulumi"; then
  step "pulumi v$sdk is up to date"
else
  step "building pulumi v$sdk (cold: about 10 CPU-minutes) ..."
  start=$SECONDS
  (cd tools/pulumi/cli && go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$sdk" \
    -o "$bin/pulumi.partial" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  mv -f "$bin/pulumi.partial" "$bin/pulumi"
  echo "$cli_stamp" >"$bin/pulumi.stamp"
  step "built pulumi in $((SECONDS - start)) s"
fi

# The sources tarball, unpacked once per content hash.
if [ ! -f "$sources/sources.tar.gz" ]; then
  echo "build-pulumi: $sources/sources.tar.gz not found (set PULUMI_SOURCES)" >&2
  exit 1
fi
src_hash=$(sha256sum "$sources/sources.tar.gz" | cut -c1-16)
src="$tools/src-$src_hash"
if [ ! -d "$src" ]; then
  step "unpacking sources"
  rm -rf "$tools"/src-*
  mkdir -p "$src.partial"
  tar -xzf "$sources/sources.tar.gz" -C "$src.partial"
  mv "$src.partial" "$src"
fi

# go_build NAME DIR PKG VERSION LDFLAGS_VERSION_VAR: builds a binary from the unpacked sources.
go_build() {
  local name=$1 dir=$2 pkg=$3 version=$4 var=$5 out=$6
  local stamp="$name $version $src_hash"
  if fresh "$stamp" "$out"; then
    step "$name $version is up to date"
    return
  fi
  step "building $name $version ..."
  local start=$SECONDS
  (cd "$src/$dir" && go build -trimpath -ldflags "-s -w -X $var=$version" -o "$out.partial" "$pkg")
  mv -f "$out.partial" "$out"
  echo "$stamp" >"$out.stamp"
  step "built $name in $((SECONDS - start)) s"
}

go_build pulumi-language-nodejs langhost . "v$sdk" \
  github.com/pulumi/pulumi/sdk/v3/go/common/version.Version "$bin/pulumi-language-nodejs"

command_v=$(lock_version @pulumi/command)
random_v=$(lock_version @pulumi/random)
tailscale_v=$(lock_version @pulumi/tailscale)
cloudflare_v=$(lock_version @pulumi/cloudflare)

go_build pulumi-resource-command command ./cmd/pulumi-resource-command "$command_v" \
  github.com/pulumi/pulumi-command/provider/pkg/version.Version "$plugins/pulumi-resource-command-$command_v"
go_build pulumi-resource-random random ./cmd/pulumi-resource-random "$random_v" \
  github.com/pulumi/pulumi-random/provider/v4/pkg/version.Version "$plugins/pulumi-resource-random-$random_v"
go_build pulumi-resource-tailscale tailscale ./cmd/pulumi-resource-tailscale "$tailscale_v" \
  github.com/pulumi/pulumi-tailscale/provider/pkg/version.Version "$plugins/pulumi-resource-tailscale-$tailscale_v"

cf="$plugins/pulumi-resource-cloudflare-$cloudflare_v"
if [ "${EDGEPLANE_BUILD_CLOUDFLARE:-}" = 1 ]; then
  go_build pulumi-resource-cloudflare cloudflare/provider ./cmd/pulumi-resource-cloudflare "$cloudflare_v" \
    github.com/pulumi/pulumi-cloudflare/provider/v6/pkg/version.Version "$cf"
else
  prebuilt="$sources/prebuilt/pulumi-resource-cloudflare-$cloudflare_v-linux-amd64.xz"
  want=$CLOUDFLARE_PREBUILT_SHA256
  stamp="pulumi-resource-cloudflare $cloudflare_v prebuilt $want"
  if fresh "$stamp" "$cf"; then
    step "pulumi-resource-cloudflare $cloudflare_v (prebuilt) is up to date"
  else
    [ -f "$prebuilt" ] || { echo "build-pulumi: $prebuilt not found; set EDGEPLANE_BUILD_CLOUDFLARE=1 to build it (about an hour)" >&2; exit 1; }
    xz -dc "$prebuilt" >"$cf.partial"
    got=$(sha256sum "$cf.partial" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
      rm -f "$cf.partial"
      echo "build-pulumi: prebuilt cloudflare plugin has sha256 $got, expected $want" >&2
      exit 1
    fi
    chmod +x "$cf.partial"
    mv -f "$cf.partial" "$cf"
    echo "$stamp" >"$cf.stamp"
    step "installed the prebuilt pulumi-resource-cloudflare $cloudflare_v (sha256 checked)"
  fi
fi

# Install the plugins into a private PULUMI_HOME, where the CLI looks for them; a plugin
# is reinstalled whenever its binary changed.
export PULUMI_HOME="$tools/home"
export PULUMI_SKIP_UPDATE_CHECK=1
mkdir -p "$PULUMI_HOME"
for plugin in "command $command_v" "random $random_v" "tailscale $tailscale_v" "cloudflare $cloudflare_v"; do
  set -- $plugin
  file="$plugins/pulumi-resource-$1-$2"
  installed="$PULUMI_HOME/plugins/resource-$1-v$2/pulumi-resource-$1"
  if [ -x "$installed" ] && cmp -s "$file" "$installed"; then continue; fi
  "$bin/pulumi" plugin install resource "$1" "$2" --file "$file" --reinstall >/dev/null
  step "installed plugin $1 $2"
done
step "ready: $bin/pulumi (PULUMI_HOME=$PULUMI_HOME)"
