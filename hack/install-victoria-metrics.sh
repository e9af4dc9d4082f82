#!/usr/bin/env bash
# install-victoria-metrics.sh DEST: puts Debian's victoria-metrics binary at DEST, without
# installing the package system-wide (apt-get download, then dpkg -x). The metric store's
# InfluxDB write path is tested against it: it accepts InfluxDB 2's /api/v2/write.
set -euo pipefail
dest=${1:?usage: install-victoria-metrics.sh DEST}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download victoria-metrics >/dev/null 2>&1; then
  # Package lists may be missing on a fresh machine.
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get download victoria-metrics >/dev/null
fi
dpkg -x victoria-metrics_*.deb root
cd - >/dev/null
mkdir -p "$(dirname "$dest")"
install -m 0755 "$tmp/root/usr/bin/victoria-metrics" "$dest"
"$dest" -version 2>/dev/null | head -n1 || true
