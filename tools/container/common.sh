# shellcheck shell=bash
# Shared helpers for tools/container/*.sh (sourced, not run).
#
# - ensure_podman: installs Debian's podman/buildah/runc (+ debootstrap) when missing and
#   writes a containers.conf drop-in that selects runc and sets rlimits this host allows;
#   on these machines no Docker engine runs, but rootful podman does.
# - pip_build_args: turns the host's pip setup (index URLs, CA bundle) into `podman build`
#   arguments, so pip inside the build reaches PyPI the same way the host's pip does.
# - log / die / now_ms: small utilities.

BASE_IMAGE_NAME=${BASE_IMAGE_NAME:-localhost/gitserver-base:bookworm}
CONTAINERS_CONF_DROPIN=/etc/containers/containers.conf.d/50-gitserver.conf

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }

ensure_podman() {
    local need=()
    command -v podman >/dev/null || need+=(podman)
    command -v buildah >/dev/null || need+=(buildah)
    command -v runc >/dev/null || need+=(runc)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    if [ ${#need[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing ${need[*]}; install them (as root) first"
        log "installing ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    # runc (not crun), and rlimits the sandbox lets runc set: podman's own defaults ask
    # for more processes and open files than this host's hard limits allow, and runc
    # then fails with "error setting rlimit ...: operation not permitted".
    local nproc conf_text
    nproc=$(ulimit -Hu)
    [ "$nproc" = unlimited ] && nproc=32768
    [ "$nproc" -le 32768 ] || nproc=32768
    conf_text=$(printf '%s\n' \
        '# Written by gitserver tools/container/common.sh' \
        '[containers]' \
        "default_ulimits = [\"nofile=20000:20000\", \"nproc=$nproc:$nproc\"]" \
        '' \
        '[engine]' \
        'runtime = "runc"')
    if [ "$(id -u)" = 0 ]; then
        if [ "$(cat "$CONTAINERS_CONF_DROPIN" 2>/dev/null)" != "$conf_text" ]; then
            mkdir -p "$(dirname "$CONTAINERS_CONF_DROPIN")"
            printf '%s\n' "$conf_text" >"$CONTAINERS_CONF_DROPIN"
            log "wrote $CONTAINERS_CONF_DROPIN"
        fi
    else
        # Rootless: point podman at a private copy of the same settings.
        local conf="${XDG_CONFIG_HOME:-$HOME/.config}/gitserver/containers.conf"
        mkdir -p "$(dirname "$conf")"
        printf '%s\n' "$conf_text" >"$conf"
        export CONTAINERS_CONF="$conf"
    fi
}

# Print one pip setting as the host's pip sees it: environment first, then pip config.
_pip_setting() {
    local env_name=$1 key=$2 value
    value=${!env_name:-}
    if [ -z "$value" ] && command -v pip3 >/dev/null; then
        value=$(pip3 config get "global.$key" 2>/dev/null || true)
    fi
    printf '%s' "$value"
}

# Fill the array PIP_BUILD_ARGS with --build-arg/--secret options for `podman build`.
# Only http(s) index URLs are passed on: file:// indexes exist on the host only.
pip_build_args() {
    PIP_BUILD_ARGS=()
    local index extra cert trusted url kept=()
    index=$(_pip_setting PIP_INDEX_URL index-url)
    case $index in http://* | https://*) PIP_BUILD_ARGS+=(--build-arg "PIP_INDEX_URL=$index") ;; esac
    extra=$(_pip_setting PIP_EXTRA_INDEX_URL extra-index-url)
    for url in $extra; do
        case $url in http://* | https://*) kept+=("$url") ;; esac
    done
    [ ${#kept[@]} -eq 0 ] || PIP_BUILD_ARGS+=(--build-arg "PIP_EXTRA_INDEX_URL=${kept[*]}")
    trusted=$(_pip_setting PIP_TRUSTED_HOST trusted-host)
    [ -z "$trusted" ] || PIP_BUILD_ARGS+=(--build-arg "PIP_TRUSTED_HOST=$trusted")
    # A CA bundle (e.g. one that trusts an egress proxy) goes in as a build secret:
    # it is visible to the pip step only and never stored in an image layer.
    cert=$(_pip_setting PIP_CERT cert)
    if [ -n "$cert" ] && [ -s "$cert" ]; then
        PIP_BUILD_ARGS+=(--secret "id=pip_cert,src=$cert")
    fi
}
