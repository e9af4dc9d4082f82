#!/usr/bin/env bash
# Makes sure the PostgreSQL that tests use answers: DATABASE_URL when set (any libpq URL or
# connection string), else postgres://postgres@127.0.0.1:5432/postgres. When it does not
# answer, the server is on this machine and a Debian cluster is installed but stopped, start it.
set -euo pipefail
url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
# pg_isready takes the URL itself (-d), so host, port and socket are read as libpq reads them;
# the host, for the messages and the local check, is pulled out here.
host=$(sed -nE 's#^[a-z]+://([^@/]*@)?(\[[^]/]*\]|[^:/?]*).*#\2#p' <<<"$url")
if [ -z "$host" ]; then host=$(sed -nE 's/.*host=([^ ]*).*/\1/p' <<<"$url"); fi
# Never print a password.
shown=$(sed -E 's#^([a-z]+://[^:@/]*):[^@/]*@#\1:***@#; s/password=[^ ]*/password=***/' <<<"$url")
ready() { pg_isready -q -d "$url" 2>/dev/null; }
if ready; then exit 0; fi
case "$host" in
"" | localhost | 127.0.0.1 | "[::1]" | /*)
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for v in $(ls /etc/postgresql); do
      echo "ensure-postgres: starting PostgreSQL $v cluster main" >&2
      pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
    done
  fi
  ;;
esac
for _ in $(seq 1 30); do
  if ready; then exit 0; fi
  sleep 1
done
echo "ensure-postgres: PostgreSQL is not answering at ${shown} (host ${host:-local socket}); install it (apt-get install postgresql) or set DATABASE_URL" >&2
exit 1
