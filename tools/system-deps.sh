#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks drive for real (git, redis-server,
# lighttpd, zlib headers, node/npm, chromium + chromedriver for the UI tests). Idempotent; needs root (CI runs as root).
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
command -v redis-server >/dev/null || need+=(redis-server)
command -v lighttpd >/dev/null || need+=(lighttpd)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${need[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
