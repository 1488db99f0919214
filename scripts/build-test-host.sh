#!/usr/bin/env bash
# Builds the root filesystem the end-to-end tests boot as throwaway hosts: Debian trixie
# (systemd 257, podman 5.4 with Quadlet, crun, passt, sshd) made with debootstrap, once.
# The result is cached outside the clone, keyed by a hash of this script, so a fresh CI
# clone on the same machine reuses it; a warm run only prints the path.
#
#   scripts/build-test-host.sh            # prints the cached root filesystem's path
#
# Env: EDGEPLANE_TEST_HOST_CACHE (default /var/cache/edgeplane-test-hosts),
#      EDGEPLANE_DEBIAN_MIRROR (default: the first Debian URI in /etc/apt/sources.list*).
# Needs root and debootstrap (apt-get install systemd-container debootstrap).
set -euo pipefail

CACHE="${EDGEPLANE_TEST_HOST_CACHE:-/var/cache/edgeplane-test-hosts}"
KEY="$(sha256sum "$0" | cut -c1-16)"
ROOT="$CACHE/rootfs-$KEY"

# What a host needs that edgeplane does not install itself; the README's "Using it for
# real" lists the same packages for operators.
PACKAGES=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,podman,crun,catatonit,uidmap,passt,iproute2,procps,openssh-server,sudo

mirror() {
  if [ -n "${EDGEPLANE_DEBIAN_MIRROR:-}" ]; then
    echo "$EDGEPLANE_DEBIAN_MIRROR"
    return
  fi
  local uri
  uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')"
  echo "${uri:-http://deb.debian.org/debian}"
}

if [ -f "$ROOT/.complete" ]; then
  echo "$ROOT"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$ROOT/.complete" ]; then
  echo "$ROOT"
  exit 0
fi

for tool in debootstrap systemd-nspawn; do
  command -v "$tool" >/dev/null || {
    echo "build-test-host: $tool is missing (apt-get install -y systemd-container debootstrap)" >&2
    exit 1
  }
done

# Earlier keys' trees and half-built ones are of no further use.
for old in "$CACHE"/rootfs-* "$CACHE"/tmp-*; do
  [ -e "$old" ] || continue
  [ "$old" = "$ROOT" ] && continue
  rm -rf --one-file-system "$old"
done

TMP="$CACHE/tmp-$KEY"
rm -rf --one-file-system "$TMP"
start=$(date +%s)
echo "build-test-host: debootstrap trixie into $TMP from $(mirror) (about 3.5 min)" >&2
debootstrap --variant=minbase --include="$PACKAGES" trixie "$TMP" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 || {
  tail -n 30 "$CACHE/debootstrap.log" >&2
  exit 1
}

# Every copy gets its own machine ID and SSH host keys at boot time, not this tree's.
rm -f "$TMP"/etc/ssh/ssh_host_*
: >"$TMP/etc/machine-id"
rm -f "$TMP/var/lib/dbus/machine-id"
rm -rf "$TMP"/var/cache/apt/archives/*.deb "$TMP"/var/lib/apt/lists/*

touch "$TMP/.complete"
mv "$TMP" "$ROOT"
echo "build-test-host: built in $(($(date +%s) - start)) s" >&2
echo "$ROOT"
