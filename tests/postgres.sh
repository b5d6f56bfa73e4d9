# A throw-away PostgreSQL 15 server for the test run (sourced by tests/run; by hand:
# `source tests/postgres.sh && pg_start && ... && pg_stop`). `pg_start` runs initdb/pg_ctl into a
# temp dir (no root service, no system port), listens on a free port of 127.0.0.1 and exports
# VIGIE_TEST_POSTGRES_URL, the server's maintenance database, where each test creates its own
# database. `pg_stop` stops it and removes its files.

pg_start() {
  if ! command -v initdb >/dev/null 2>&1 || ! command -v pg_ctl >/dev/null 2>&1; then
    # Debian puts them under /usr/lib/postgresql/<version>/bin, off PATH.
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ]; then
      echo "PostgreSQL (initdb, pg_ctl) is missing: installing it (apt-get install postgresql)" >&2
      local sudo=""
      [ "$(id -u)" = 0 ] || sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql
      bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    PATH="$bin:$PATH"
  fi
  # initdb refuses to run as root: as root, the server runs as the `postgres` user (created by
  # the Debian package) or `nobody`.
  local as=()
  if [ "$(id -u)" = 0 ]; then
    local user=postgres
    getent passwd postgres >/dev/null || user=nobody
    as=(runuser -u "$user" --)
  fi
  PG_DIR=$(mktemp -d /tmp/vigie-pg.XXXXXX)
  [ ${#as[@]} = 0 ] || chown "${as[2]}" "$PG_DIR"
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local t0
  t0=$(date +%s%N)
  "${as[@]}" initdb --pgdata="$PG_DIR/data" --username=vigie --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    --no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  # fsync off: a test server that loses its data in a crash loses nothing of value, and the
  # tests' many CREATE DATABASE then take milliseconds.
  "${as[@]}" pg_ctl --pgdata="$PG_DIR/data" --log="$PG_DIR/server.log" --wait --silent \
    --options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG_DIR -c fsync=off \
      -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start \
    || { cat "$PG_DIR/server.log" >&2; return 1; }
  export VIGIE_TEST_POSTGRES_URL="postgres://vigie@127.0.0.1:$port/postgres"
  PG_AS=("${as[@]}")
  echo "PostgreSQL $(postgres --version | awk '{print $3}') on 127.0.0.1:$port, started in \
$(( ($(date +%s%N) - t0) / 1000000 )) ms (initdb + pg_ctl start)" >&2
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  "${PG_AS[@]}" pg_ctl --pgdata="$PG_DIR/data" --mode=fast --wait --silent stop || true
  rm -rf "$PG_DIR"
  unset PG_DIR VIGIE_TEST_POSTGRES_URL
}
