#!/usr/bin/env bash
# End-to-end test of gitserver's container image with podman (`make image-test`).
#
#  1. makes the local base image if missing (make-base-image.sh: debootstrap, no registry)
#  2. builds the project image from ./Dockerfile (timed), pip reaching PyPI as the host does
#  3. runs it with a named volume on a loopback port and an admin token from the env;
#     waits for /healthz (timed from `podman run`) and for the image's own HEALTHCHECK
#  4. checks that the server runs as non-root (PID 1 and `podman exec id -u`)
#  5. creates a repo over the REST API, pushes a small history with the git CLI, clones it
#  6. stops (SIGTERM) and starts the container again; clones again: the data survived
#  7. sends SIGTERM and checks a clean, prompt exit (status 0)
#  8. prints image size, build time, time to first healthy response; cleans up
#
# Knobs (environment): BASE_IMAGE (default localhost/gitserver-base:bookworm),
# IMAGE (default localhost/gitserver:image-test), HOST_PORT (default: a free port),
# NO_CACHE=1 (build without layer cache), KEEP_IMAGE=1 (keep the image and the build
# cache afterwards), WORK (scratch dir, default /var/tmp/gitserver-image-test).
# Needs root (rootful podman), git and curl on the host. Exit status 0 = all passed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"

BASE_IMAGE=${BASE_IMAGE:-$BASE_IMAGE_NAME}
IMAGE=${IMAGE:-localhost/gitserver:image-test}
WORK=${WORK:-/var/tmp/gitserver-image-test}
NAME=gitserver-image-test-$$
VOLUME=gitserver-image-test-data-$$
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-90}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}

build_seconds="-" image_size="-" first_healthy_ms="-" restart_healthy_ms="-" stop_ms="-"
passed=()
current_step="setup"

step() { current_step=$1; log "== $1"; }
ok() { passed+=("$current_step"); log "ok: $current_step"; }
fail() {
    log "FAILED at step '$current_step': $*"
    if podman container exists "$NAME" 2>/dev/null; then
        log "last container log lines:"
        podman logs --tail 40 "$NAME" 2>&1 | sed 's/^/    /' >&2 || true
    fi
    exit 1
}

summary() {
    local rc=$?
    set +e
    echo
    echo "=== gitserver image test: $([ $rc = 0 ] && echo PASSED || echo "FAILED at '$current_step'")"
    echo "image:                         $IMAGE (base $BASE_IMAGE)"
    echo "image size:                    $image_size"
    echo "build time:                    ${build_seconds} s"
    echo "time to first healthy /healthz: ${first_healthy_ms} ms (after restart: ${restart_healthy_ms} ms)"
    echo "SIGTERM to exit:               ${stop_ms} ms"
    echo "steps passed:                  ${#passed[@]}"
    local s
    for s in "${passed[@]}"; do echo "  - $s"; done
    # Clean up everything this run made (only by name).
    podman rm -f -t 0 "$NAME" >/dev/null 2>&1
    podman volume rm -f "$VOLUME" >/dev/null 2>&1
    if [ "${KEEP_IMAGE:-0}" != 1 ]; then
        podman rmi -f "$IMAGE" >/dev/null 2>&1
        podman image prune -f --filter label=gitserver.stage=builder >/dev/null 2>&1
    fi
    rm -rf "$WORK"
    exit $rc
}
trap summary EXIT

[ "$(id -u)" = 0 ] || die "run as root (rootful podman; debootstrap for the base image)"
command -v git >/dev/null || die "git is needed on the host"
command -v curl >/dev/null || die "curl is needed on the host"
ensure_podman
rm -rf "$WORK"
mkdir -p "$WORK"

# ---------------------------------------------------------------- base image
step "base image $BASE_IMAGE"
if [ "$BASE_IMAGE" = "$BASE_IMAGE_NAME" ]; then
    "$here/make-base-image.sh" "$BASE_IMAGE" || fail "make-base-image.sh failed"
fi
podman image exists "$BASE_IMAGE" || fail "base image $BASE_IMAGE not found"
ok

# ---------------------------------------------------------------- build
step "build $IMAGE"
pip_build_args
build_opts=(--format docker --network=host --build-arg "BASE_IMAGE=$BASE_IMAGE" "${PIP_BUILD_ARGS[@]}")
[ "${NO_CACHE:-0}" = 1 ] && build_opts+=(--no-cache)
t0=$(now_ms)
if ! podman build "${build_opts[@]}" -t "$IMAGE" -f "$repo_root/Dockerfile" "$repo_root" >"$WORK/build.log" 2>&1; then
    cp "$WORK/build.log" /var/tmp/gitserver-image-build.log
    tail -n 40 "$WORK/build.log" >&2
    fail "podman build failed (full log: /var/tmp/gitserver-image-build.log)"
fi
build_seconds=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
image_size=$(podman image inspect --format '{{.Size}}' "$IMAGE" |
    awk '{ printf "%.1f MB (%d bytes)", $1 / 1e6, $1 }')
# no compilers in the runtime image
if podman run --rm --entrypoint sh "$IMAGE" -c 'command -v gcc || command -v cc || command -v pip' 2>/dev/null | grep -q .; then
    fail "runtime image contains a compiler or pip"
fi
ok

# ---------------------------------------------------------------- run
admin_token=gs_$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40 || true)
port=${HOST_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
base_url="http://127.0.0.1:$port"

# Waits until GET /healthz answers 200 through the published port; prints elapsed ms.
wait_healthy() {
    local since=$1 deadline=$(($(now_ms) + HEALTH_TIMEOUT * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$base_url/healthz")" = 200 ]; then
            echo $(($(now_ms) - since))
            return 0
        fi
        [ "$(podman inspect --format '{{.State.Running}}' "$NAME" 2>/dev/null)" = true ] || return 1
        sleep 0.1
    done
    return 1
}

step "run with volume $VOLUME on 127.0.0.1:$port, wait for /healthz"
podman volume create "$VOLUME" >/dev/null
t0=$(now_ms)
# No systemd here, so podman's healthcheck timer is off; `podman healthcheck run` below
# runs the image's HEALTHCHECK command by hand.
podman run -d --name "$NAME" --health-interval=disable \
    -p "127.0.0.1:$port:8080" -v "$VOLUME:/data" \
    -e GITSERVER_ADMIN_TOKEN="$admin_token" \
    "$IMAGE" >"$WORK/run.log" 2>&1 || { cat "$WORK/run.log" >&2; fail "podman run failed"; }
first_healthy_ms=$(wait_healthy "$t0") || fail "no 200 from $base_url/healthz within ${HEALTH_TIMEOUT}s"
podman healthcheck run "$NAME" >/dev/null 2>&1 || fail "the image's HEALTHCHECK command failed"
ok

# ---------------------------------------------------------------- non-root
step "server runs as non-root"
uid_exec=$(podman exec "$NAME" id -u)
uid_pid1=$(podman exec "$NAME" awk '/^Uid:/ { print $2 }' /proc/1/status)
[ "$uid_exec" != 0 ] || fail "podman exec id -u is 0"
[ "$uid_pid1" != 0 ] || fail "PID 1 runs as uid 0"
log "exec uid $uid_exec, PID 1 uid $uid_pid1"
ok

# ---------------------------------------------------------------- REST + git
step "create repo ci/demo over the REST API"
curl -sS -m 20 -o "$WORK/create.json" -w '%{http_code}' \
    -H "Authorization: Bearer $admin_token" -H 'content-type: application/json' \
    -X POST -d '{"name": "demo", "description": "image test"}' \
    "$base_url/api/v1/namespaces/ci/repos" >"$WORK/create.status" || fail "POST failed"
[ "$(cat "$WORK/create.status")" = 201 ] || fail "POST /api/v1/namespaces/ci/repos: HTTP $(cat "$WORK/create.status"): $(cat "$WORK/create.json")"
repo_token=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$WORK/create.json") ||
    fail "no token in the create response: $(cat "$WORK/create.json")"
ok

export GIT_TERMINAL_PROMPT=0 GIT_CONFIG_NOSYSTEM=1 HOME="$WORK/home"
mkdir -p "$HOME"
git config --global user.name "Image Test"
git config --global user.email "image-test@example.invalid"
git config --global init.defaultBranch main
git config --global credential.helper ""
remote="http://x:$repo_token@127.0.0.1:$port/git/ci/demo.git"

step "push a history with git"
src="$WORK/src"
git init -q "$src"
for i in 1 2 3; do
    printf 'line %s\n' $(seq 1 $((i * 50))) >"$src/file$i.txt"
    head -c 200000 /dev/urandom >"$src/blob$i.bin"
    git -C "$src" add -A
    git -C "$src" commit -q -m "commit $i"
done
git -C "$src" tag v1
git -C "$src" push -q "$remote" main v1 >"$WORK/push.log" 2>&1 || { cat "$WORK/push.log" >&2; fail "git push failed"; }
head_oid=$(git -C "$src" rev-parse HEAD)
ok

# Clones and compares with the pushed history.
check_clone() {
    local dest=$1
    rm -rf "$dest"
    git clone -q "$remote" "$dest" >"$WORK/clone.log" 2>&1 || { cat "$WORK/clone.log" >&2; return 1; }
    [ "$(git -C "$dest" rev-parse HEAD)" = "$head_oid" ] || { log "HEAD differs"; return 1; }
    [ "$(git -C "$dest" rev-parse v1)" = "$(git -C "$src" rev-parse v1)" ] || { log "tag differs"; return 1; }
    git -C "$dest" fsck --strict --no-progress >/dev/null 2>&1 || { log "git fsck failed on the clone"; return 1; }
    diff -r -q --exclude=.git "$src" "$dest" >/dev/null || { log "work trees differ"; return 1; }
}

step "clone with git and compare"
check_clone "$WORK/clone1" || fail "clone does not match what was pushed"
ok

# ---------------------------------------------------------------- restart
step "restart (SIGTERM, start) keeps the data"
podman stop -t "$STOP_TIMEOUT" "$NAME" >/dev/null 2>&1 || fail "podman stop failed"
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "exit status $code after podman stop (want 0: graceful SIGTERM)"
t0=$(now_ms)
podman start "$NAME" >/dev/null 2>&1 || fail "podman start failed"
restart_healthy_ms=$(wait_healthy "$t0") || fail "no 200 from /healthz after restart"
check_clone "$WORK/clone2" || fail "clone after restart does not match what was pushed"
curl -sSf -m 10 -o /dev/null -H "Authorization: Bearer $admin_token" \
    "$base_url/api/v1/namespaces/ci/repos/demo" || fail "GET repo after restart failed"
ok

# ---------------------------------------------------------------- SIGTERM
step "SIGTERM gives a clean exit"
t0=$(now_ms)
podman kill --signal TERM "$NAME" >/dev/null 2>&1 || fail "podman kill --signal TERM failed"
code=$(timeout "$STOP_TIMEOUT" podman wait "$NAME" 2>/dev/null) || fail "still running ${STOP_TIMEOUT}s after SIGTERM"
stop_ms=$(($(now_ms) - t0))
[ "$code" = 0 ] || fail "exit status $code after SIGTERM (want 0)"
podman logs "$NAME" >"$WORK/server.log" 2>&1 || true
if grep -q Traceback "$WORK/server.log"; then
    grep -n -A 20 Traceback "$WORK/server.log" | head -n 40 >&2
    fail "the server log has a Python traceback"
fi
ok
