# A throw-away PostgreSQL 15 server for the test run (sourced by tests/run; by hand:
# `source tests/postgres.sh && pg_start && ... && pg_stop`). `pg_start` runs initdb/pg_ctl into a
# temp dir (no root service, no system port), listens on a free port of 127.0.0.1 and exports
# VIGIE_TEST_POSTGRES_URL, the server's maintenance database, where each test creates its own
# database. `pg_stop` stops it and removes its files (from any shell: `PG_DIR=... pg_stop`).

# Puts initdb and pg_ctl on PATH when they are not: Debian puts them under
# /usr/lib/postgresql/<version>/bin. Fails when PostgreSQL is not installed.
pg_path() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] || return 1
  PATH="$bin:$PATH"
}

pg_start() {
  if ! pg_path; then
    echo "PostgreSQL (initdb, pg_ctl) is missing: installing it (apt-get install postgresql)" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql
    pg_path
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
  # Kept for callers that read it (benches/common); pg_stop finds the user from the directory.
  PG_AS=("${as[@]}")
  echo "PostgreSQL $(postgres --version | awk '{print $3}') on 127.0.0.1:$port, started in \
$(( ($(date +%s%N) - t0) / 1000000 )) ms (initdb + pg_ctl start)" >&2
}

# Stops the server of $PG_DIR and removes its files, from pg_start's shell or any other
# (`PG_DIR=/tmp/vigie-pg.XXXXXX pg_stop`, as root or as the server's user). pg_ctl refuses to run
# as root: as root it runs as the owner of the data directory, who started the server. Never
# removes the directory under a server that did not stop: says so on stderr and fails instead.
pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  local data="$PG_DIR/data"
  # A server this user cannot look into (another user's) cannot be told stopped.
  local dir
  for dir in "$PG_DIR" "$data"; do
    if [ -e "$dir" ] && { ! [ -r "$dir" ] || ! [ -x "$dir" ]; }; then
      echo "pg_stop: cannot read $dir (owned by $(stat -c %U "$dir")): run pg_stop as root or as that user;" \
        "$PG_DIR left in place" >&2
      return 1
    fi
  done
  if pg_running "$data"; then
    local as=()
    if [ "$(id -u)" = 0 ]; then
      local owner
      owner=$(stat -c %U "$data")
      [ "$owner" = root ] || as=(runuser -u "$owner" --)
    fi
    if ! pg_path; then
      echo "pg_stop: pg_ctl not found: the server of $data (pid $(pg_pid "$data")) is left running, and $PG_DIR in place" >&2
      return 1
    fi
    "${as[@]}" pg_ctl --pgdata="$data" --mode=fast --wait --silent stop || true
    if pg_running "$data"; then
      echo "pg_stop: the server of $data (pid $(pg_pid "$data")) did not stop: $PG_DIR left in place;" \
        "stop it as its user ($(stat -c %U "$data")): pg_ctl --pgdata=$data --mode=fast stop" >&2
      return 1
    fi
  fi
  rm -rf "$PG_DIR" || { echo "pg_stop: the server is stopped, but $PG_DIR could not be removed" >&2; return 1; }
  unset PG_DIR PG_AS VIGIE_TEST_POSTGRES_URL
}

# The pid of the postmaster of data directory $1 (the first line of its postmaster.pid, which
# the server removes when it stops), or nothing.
pg_pid() {
  # The file goes away while a stopping server finishes: no error then.
  [ -r "$1/postmaster.pid" ] && head -n 1 "$1/postmaster.pid" 2>/dev/null
}

# Whether the postmaster of data directory $1 is running: its pid file names a live process (a
# server killed outright leaves a stale file, whose pid is gone).
pg_running() {
  local pid
  pid=$(pg_pid "$1") || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ]
}
