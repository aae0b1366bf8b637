#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback, for the tests (no systemd, no Docker).
#   pg-cluster.sh start <root> <port>   initdb (first time) + start; prints the admin URL
#   pg-cluster.sh stop <root>           fast shutdown, keeping the data
#   pg-cluster.sh destroy <root>        stop and remove
# initdb refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail
pg_bin="${UPDRAFT_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/pg_ctl" ]; then
  echo "pg-cluster.sh: PostgreSQL server binaries not found (apt-get install postgresql, or set UPDRAFT_PG_BIN)" >&2
  exit 1
fi
as=()
if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
command=$1 root=$2
case "$command" in
  start)
    port=$3
    mkdir -p "$root"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$root"; fi
    if [ ! -f "$root/data/PG_VERSION" ]; then
      "${as[@]}" "$pg_bin/initdb" -D "$root/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$root/initdb.log" 2>&1
    fi
    # Members of password_login must give their password (tests check that a database password never reaches the
    # gateway's log or errors); every other role is trusted, as befits a throwaway cluster on loopback.
    cat >"$root/data/pg_hba.conf" <<'HBA'
local all all trust
host all +password_login 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
HBA
    "${as[@]}" "$pg_bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $root -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
      start >/dev/null
    "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'updraft'" \
      | grep -q 1 || "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres updraft
    "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qtAc "SELECT 1 FROM pg_roles WHERE rolname = 'password_login'" \
      | grep -q 1 || "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE ROLE password_login NOLOGIN"
    echo "postgres://postgres@127.0.0.1:$port/updraft"
    ;;
  stop)
    "${as[@]}" "$pg_bin/pg_ctl" -D "$root/data" -m fast -w stop >/dev/null
    ;;
  destroy)
    "${as[@]}" "$pg_bin/pg_ctl" -D "$root/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$root"
    ;;
  *)
    echo "usage: pg-cluster.sh start <root> <port> | stop <root> | destroy <root>" >&2
    exit 2
    ;;
esac
