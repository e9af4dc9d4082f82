#!/usr/bin/env bash
# install-chromium.sh: makes sure Debian's chromium is installed (the UI's browser tests drive it
# headless through the DevTools protocol). Installs the package as root with apt-get; it needs
# many shared libraries, so unpacking it beside the project (as install-victoria-metrics.sh does)
# would not run.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  chromium --version 2>/dev/null || true
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium: chromium is not installed; run as root, or apt-get install chromium, or set CHROMIUM" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
  # Package lists may be missing on a fresh machine.
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
chromium --version 2>/dev/null || true
