# syntax=docker/dockerfile:1
# gitserver container image.
#
#   docker build -t gitserver .        (or: podman build --format docker -t gitserver .)
#   docker run -p 8080:8080 -v gitdata:/data gitserver
#
# Two stages from one base image:
# - builder: compilers + headers, builds the project wheel (with the cffi C extension)
#   and its dependencies' wheels (`pip wheel .`), installs them into the venv
#   /opt/gitserver.
# - runtime: the base image (python only) + that venv + tini; no compilers, no pip.
#   Runs as the unprivileged user `gitserver` (uid/gid 10001), data in the /data volume.
#
# BASE_IMAGE must be a Debian bookworm-family image with python3 (>= 3.11) and its venv
# module, e.g. python:3.11-slim-bookworm (the default) or the locally debootstrapped
# localhost/gitserver-base:bookworm (tools/container/make-base-image.sh). Both stages use
# it, so the venv's interpreter path is the same in both.
#
# pip inside the build can be pointed at another index with the build args
# PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_TRUSTED_HOST, and given a CA bundle (for
# an intercepting proxy) as the build secret `pip_cert`; the secret is never stored in
# a layer. tools/container/image-test.sh passes the host's settings this way.

ARG BASE_IMAGE=python:3.11-slim-bookworm

############################ builder ############################
FROM ${BASE_IMAGE} AS builder
# lets scripts prune this stage's intermediate images after a build
LABEL gitserver.stage=builder

ARG PIP_INDEX_URL=
ARG PIP_EXTRA_INDEX_URL=
ARG PIP_TRUSTED_HOST=
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DEFAULT_TIMEOUT=120

# gcc + libc/zlib headers for the C extension; Python.h from python3-dev unless the base
# image ships its own headers (the python:* images do); tini as a small PID 1.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev zlib1g-dev tini \
 && if ! python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then \
        apt-get install -y --no-install-recommends python3-dev; \
    fi \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Build every wheel (the project's own, with its compiled extension, and its
# dependencies'), then install them offline into the venv that the runtime stage copies.
RUN --mount=type=secret,id=pip_cert \
    set -eu; \
    [ -n "$PIP_INDEX_URL" ] || unset PIP_INDEX_URL; \
    [ -n "$PIP_EXTRA_INDEX_URL" ] || unset PIP_EXTRA_INDEX_URL; \
    [ -n "$PIP_TRUSTED_HOST" ] || unset PIP_TRUSTED_HOST; \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    python3 -m venv /opt/gitserver; \
    /opt/gitserver/bin/pip wheel --wheel-dir /wheels .; \
    /opt/gitserver/bin/pip install --no-index --find-links /wheels gitserver; \
    cd /; /opt/gitserver/bin/python -c 'import native, sys; print("native implementation:", native.IMPLEMENTATION); sys.exit(native.IMPLEMENTATION != "c")'; \
    /opt/gitserver/bin/python -m pip uninstall -y -q pip setuptools wheel 2>/dev/null || true; \
    find /opt/gitserver -name '__pycache__' -prune -exec rm -rf {} +; \
    cp /usr/bin/tini-static /opt/tini 2>/dev/null || cp /usr/bin/tini /opt/tini

############################ runtime ############################
FROM ${BASE_IMAGE} AS runtime

LABEL org.opencontainers.image.title="gitserver" \
      org.opencontainers.image.description="Self-hosted Git host: smart HTTP, REST API, per-repo actors" \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --gid 10001 gitserver \
 && useradd --no-log-init --uid 10001 --gid 10001 --create-home --home-dir /home/gitserver \
        --shell /usr/sbin/nologin gitserver \
 && mkdir -p /data \
 && chown gitserver:gitserver /data \
 && chmod 0750 /data

COPY --from=builder /opt/tini /usr/local/bin/tini
COPY --from=builder /opt/gitserver /opt/gitserver

# Configuration: every `gitserver serve` flag has a GITSERVER_* variable. Not set here
# (so the embedded defaults apply unless you set them):
#   GITSERVER_ADMIN_TOKEN   admin token (else one is generated into /data/admin-token)
#   GITSERVER_BLOB_STORE    file:///data/blobs (default) | s3://BUCKET/PREFIX?endpoint=URL&region=R
#   GITSERVER_KV            sqlite:///data/kv.sqlite (default) | redis://HOST:6379/0
#   GITSERVER_TLS_CERT / GITSERVER_TLS_KEY   PEM files (mount them read-only)
#   GITSERVER_DURABILITY    local (default) | remote
#   GITSERVER_METRICS_TOKEN, GITSERVER_IDLE_TIMEOUT, GITSERVER_PUBLIC_URL, ...
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION for the S3 blob store
ENV PATH=/opt/gitserver/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/gitserver \
    GITSERVER_HOST=0.0.0.0 \
    GITSERVER_PORT=8080 \
    GITSERVER_DATA_DIR=/data

VOLUME ["/data"]
EXPOSE 8080
USER 10001:10001
WORKDIR /data

# Liveness: GET /healthz on the configured port (https, unverified, when TLS is on).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, ssl, sys, urllib.request as r; tls = bool(os.environ.get('GITSERVER_TLS_CERT')); url = ('https' if tls else 'http') + '://127.0.0.1:' + os.environ.get('GITSERVER_PORT', '8080') + '/healthz'; ctx = ssl._create_unverified_context() if tls else None; sys.exit(0 if r.urlopen(url, timeout=4, context=ctx).status == 200 else 1)"]

# tini is PID 1: it forwards SIGTERM/SIGINT to gitserver and reaps zombies; gitserver
# drains and exits on SIGTERM (docker stop / podman stop send it, then SIGKILL after
# the stop timeout: give slow drains `--stop-timeout` / `--time`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tini", "--", "gitserver"]
CMD ["serve"]
