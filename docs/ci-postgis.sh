#!/usr/bin/env bash
# Install what the PostGIS tests (tests/test_postgis.py) need, from Debian:
#   postgresql                  -> the server binaries (/usr/lib/postgresql/NN/bin: initdb,
#                                  pg_ctl, postgres)
#   postgresql-NN-postgis-3     -> the PostGIS extension for that server version
# The tests start their own throw-away server: a fresh cluster in a temporary folder,
# listening on 127.0.0.1 only, on a free port, with a random password that lives only in
# the test process; they drop it at the end. So nothing has to be started here, no
# service has to survive between sessions, and no connection string or password is written
# anywhere. This script then checks that such a server starts and that PostGIS loads in
# it, so a broken install fails CI here rather than as skipped tests.
# Idempotent (installs only what is missing) and quiet. Needs root to install (CI runs as
# root). Called from .ci/run:  bash docs/ci-postgis.sh
set -euo pipefail

have_postgis() {  # prints the newest server major version that has PostGIS installed
  local bin v
  for bin in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    v="$(basename "$(dirname "$bin")")"
    if [ -x "$bin/initdb" ] && [ -f "/usr/share/postgresql/$v/extension/postgis.control" ]; then
      echo "$v"
      return 0
    fi
  done
  return 1
}

if major="$(have_postgis)"; then
  echo "ci-postgis: PostgreSQL $major with PostGIS already installed"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "ci-postgis: need root to apt-get install postgresql and PostGIS" >&2
    exit 1
  fi
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$log" 2>&1 || { tail -n 40 "$log" >&2; exit 1; }
  # the server version already installed, else the one Debian's `postgresql` depends on
  major="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$major" ]; then
    major="$(apt-cache depends postgresql | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' \
      | head -n 1)"
  fi
  if [ -z "$major" ]; then
    echo "ci-postgis: cannot tell which PostgreSQL version Debian provides" >&2
    exit 1
  fi
  echo "ci-postgis: installing postgresql-$major and postgresql-$major-postgis-3"
  if ! apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends \
      postgresql "postgresql-$major" "postgresql-$major-postgis-3" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "ci-postgis: apt-get install failed" >&2
    exit 1
  fi
  major="$(have_postgis)" || { echo "ci-postgis: PostGIS still missing after install" >&2; exit 1; }
fi

# Smoke test: the same kind of server the tests start (temporary cluster, loopback only).
bin="/usr/lib/postgresql/$major/bin"
run_as=()
if [ "$(id -u)" -eq 0 ]; then
  run_as=(runuser -u postgres --)  # the server refuses to run as root
fi
dir="$(mktemp -d /tmp/siteplan-pg-check.XXXXXX)"
chmod 755 "$dir"
[ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
cleanup() {
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  [ -z "${log:-}" ] || rm -f "$log"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
  2>/dev/null || echo $((49152 + RANDOM % 16000)))"
password="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
fail() { echo "ci-postgis: $1" >&2; tail -n 20 "$dir/server.log" 2>/dev/null >&2 || true; exit 1; }
(umask 077; echo "$password" >"$dir/pwfile")
[ "$(id -u)" -ne 0 ] || chown postgres: "$dir/pwfile"
"${run_as[@]}" "$bin/initdb" -D "$dir/data" -U siteplan --pwfile="$dir/pwfile" -A scram-sha-256 \
  --no-sync >"$dir/initdb.log" 2>&1 || { tail -n 20 "$dir/initdb.log" >&2; fail "initdb failed"; }
rm -f "$dir/pwfile"
"${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off" \
  start >/dev/null || fail "the server did not start"
version="$(PGPASSWORD="$password" "$bin/psql" -h 127.0.0.1 -p "$port" -U siteplan -d postgres \
  -XqAt -c "CREATE EXTENSION postgis" -c "SELECT postgis_lib_version()" 2>&1)" \
  || fail "CREATE EXTENSION postgis failed: $version"
echo "ci-postgis: PostgreSQL $major with PostGIS $version starts on loopback"
