#!/usr/bin/env bash
# Makes sure the PostgreSQL that tests use (DATABASE_URL, default 127.0.0.1:5432)
# answers. When it does not and a Debian cluster is installed but stopped, start it.
set -euo pipefail
host=127.0.0.1 port=5432
if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    echo "ensure-postgres: starting PostgreSQL $v cluster main" >&2
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
fi
for _ in $(seq 1 30); do
  if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then exit 0; fi
  sleep 1
done
echo "ensure-postgres: PostgreSQL is not answering on $host:$port; install it (apt-get install postgresql) or set DATABASE_URL" >&2
exit 1
