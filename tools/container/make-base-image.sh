#!/usr/bin/env bash
# Builds the local base image for gitserver's container (default name
# localhost/gitserver-base:bookworm) when no public registry is reachable:
#
#   debootstrap --variant=minbase bookworm  +  python3, python3-venv, ca-certificates
#   -> tar | podman import
#
# The Debian mirror is the one apt uses on this host (read from /etc/apt/sources.list and
# /etc/apt/sources.list.d/), or $DEBIAN_MIRROR. Idempotent: does nothing if the image
# already exists (FORCE=1 rebuilds). The rootfs is made under $WORK_DIR (default
# /var/tmp/gitserver-base), never inside the repository. Needs root (debootstrap, chroot).
#
# Usage: tools/container/make-base-image.sh [IMAGE_NAME]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"

IMAGE=${1:-$BASE_IMAGE_NAME}
SUITE=${SUITE:-bookworm}
WORK_DIR=${WORK_DIR:-/var/tmp/gitserver-base}
PACKAGES=python3,python3-venv,ca-certificates

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot)"
ensure_podman

if [ "${FORCE:-0}" != 1 ] && podman image exists "$IMAGE"; then
    log "base image $IMAGE exists; nothing to do (FORCE=1 rebuilds)"
    exit 0
fi

# The first URI apt uses for the main Debian archive (not -security, not third-party).
find_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "$f" | grep -E '/debian/?$' | head -n1 || true)
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f" |
            grep -E '/debian/?$' | head -n1 || true)
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    echo "http://deb.debian.org/debian"
}

MIRROR=${DEBIAN_MIRROR:-$(find_mirror)}
MIRROR=${MIRROR%/}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-${MIRROR}-security}
ROOTFS="$WORK_DIR/rootfs"

log "debootstrap $SUITE from $MIRROR into $ROOTFS"
rm -rf "$ROOTFS"
mkdir -p "$WORK_DIR"
started=$(now_ms)
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK_DIR/debootstrap.log" 2>&1 ||
    { tail -n 30 "$WORK_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $WORK_DIR/debootstrap.log)"; }

# apt inside the image (the builder stage installs gcc from it) uses the same mirror,
# with updates and security fixes; bring the image itself up to date as well.
cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
cp /etc/hosts "$ROOTFS/etc/hosts"
if chroot "$ROOTFS" apt-get update -qq >>"$WORK_DIR/debootstrap.log" 2>&1; then
    DEBIAN_FRONTEND=noninteractive chroot "$ROOTFS" apt-get -y -qq upgrade >>"$WORK_DIR/debootstrap.log" 2>&1 ||
        log "warning: apt-get upgrade in the rootfs failed; image keeps the $SUITE release packages"
else
    log "warning: apt-get update in the rootfs failed; image keeps the $SUITE release packages"
fi

# Slim down: no package caches, lists, docs or man pages; no host-specific files.
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
: >"$ROOTFS/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"

log "importing $ROOTFS as $IMAGE"
tar --numeric-owner -C "$ROOTFS" -c . |
    podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase $SUITE + $PACKAGES" \
        - "$IMAGE" >/dev/null
rm -rf "$ROOTFS"
log "base image $IMAGE ready in $(( ($(now_ms) - started) / 1000 )) s: $(podman image inspect --format '{{.Size}}' "$IMAGE") bytes"
