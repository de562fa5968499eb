# shellcheck shell=bash
# PostgreSQL for development and tests: a private cluster on a free loopback port.
# initdb refuses root, so as root the server runs as the `postgres` user.
#
#   yw_pg_start DIR   initialises DIR/pgdata when absent (reused otherwise), starts the server on a
#                     free port, writes the port to DIR/port and exports YW_PG_PORT and YW_PG_URL.
#   yw_pg_stop DIR    stops it (fast shutdown); a no-op when it is not running.

yw_pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; return 1; }
  echo "$d"
}

# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves.
yw_pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

yw_free_port() {
  local p
  for p in $(seq "${1:-55432}" 65000); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

yw_pg_start() {
  local dir bin port
  dir=$(realpath -m "$1")
  bin=$(yw_pg_bindir) || return 1
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    # The postgres user must reach the directory: every parent needs o+x.
    if ! runuser -u postgres -- test -x "$dir"; then
      echo "error: the postgres user cannot enter $dir (a parent directory is private);" \
           "clone the repository under a world-traversable path, e.g. /srv or /work" >&2
      return 1
    fi
    chown postgres:postgres "$dir"
  fi
  chmod 700 "$dir"
  if [ ! -f "$dir/pgdata/PG_VERSION" ]; then
    yw_pg_as_owner "$bin/initdb" -D "$dir/pgdata" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  if yw_pg_as_owner "$bin/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
    port=$(cat "$dir/port")
  else
    # A port that looked free can be taken before the server binds it (another test's server,
    # or a port the kernel handed out as ephemeral): try the next one, a few times.
    local base=${YW_PG_PORT_BASE:-55432} try started=0
    for try in 1 2 3 4 5; do
      port=$(yw_free_port "$base") || { echo "no free port" >&2; return 1; }
      yw_pg_as_owner sh -c ': >"$1"' sh "$dir/server.log"
      if yw_pg_as_owner "$bin/pg_ctl" -D "$dir/pgdata" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=300 -c fsync=${YW_PG_FSYNC:-on}" \
        start >/dev/null; then
        started=1
        break
      fi
      grep -q "could not bind" "$dir/server.log" || break
      base=$((port + 1))
    done
    [ "$started" = 1 ] || { tail -n 20 "$dir/server.log" >&2; return 1; }
    echo "$port" >"$dir/port"
  fi
  export YW_PG_PORT=$port
  export YW_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
}

yw_pg_stop() {
  local dir bin
  dir=$(realpath -m "$1")
  bin=$(yw_pg_bindir) || return 0
  [ -f "$dir/pgdata/PG_VERSION" ] || return 0
  if yw_pg_as_owner "$bin/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
    yw_pg_as_owner "$bin/pg_ctl" -D "$dir/pgdata" -m fast -w stop >/dev/null
  fi
}
