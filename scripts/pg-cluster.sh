#!/usr/bin/env bash
# A throwaway local Postgres cluster for development and tests.
#
#   pg-cluster.sh start <datadir> <port> [dbname]   initdb if needed, configure, start (idempotent)
#   pg-cluster.sh stop <datadir>                    fast shutdown (idempotent)
#   pg-cluster.sh restart <datadir>                 stop + start with the stored port and dbname
#   pg-cluster.sh url <datadir>                     print the superuser URL
#
# The superuser is `postgres` with password `postgres`; local socket connections are trusted, TCP
# connections use scram-sha-256. Our settings live in <datadir>/sluice.conf, included from
# postgresql.conf and rewritten on every start. They preload sluice.so when it is installed, unless
# SLUICE_NO_PRELOAD=1 (a server without shared_preload_libraries, where the extension must still
# work, numbering its change log inline). When run as root the cluster runs as the `postgres`
# system user, because initdb refuses to run as root.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)

die() { echo "pg-cluster: $*" >&2; exit 1; }

# Run a command as the cluster owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

abs_dir() { mkdir -p "$1" && (cd "$1" && pwd -P); }

is_running() { [ -f "$1/PG_VERSION" ] && as_owner "$BINDIR/pg_ctl" status -D "$1" >/dev/null 2>&1; }

conf_value() { # conf_value <datadir> <name>: a value from sluice.conf, quotes stripped
    sed -n "s/^$2 = '\{0,1\}\([^']*\)'\{0,1\}\$/\1/p" "$1/sluice.conf" 2>/dev/null | tail -n 1 || true
}

init_cluster() {
    local datadir=$1 pwfile
    pwfile=$(mktemp)
    # shellcheck disable=SC2064
    trap "rm -f '$pwfile'" RETURN
    echo postgres >"$pwfile"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$pwfile"; fi
    as_owner "$BINDIR/initdb" -D "$datadir" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$datadir.initdb.log" 2>&1 \
        || { cat "$datadir.initdb.log" >&2; die "initdb failed in $datadir"; }
    rm -f "$datadir.initdb.log"
    echo "include_if_exists = 'sluice.conf'" | as_owner tee -a "$datadir/postgresql.conf" >/dev/null
}

# Writes sluice.conf; returns 0 if it changed.
write_conf() {
    local datadir=$1 port=$2 dbname=$3 new
    new="# Written by scripts/pg-cluster.sh on every start; edits are overwritten.
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$datadir'
sluice.database = '$dbname'"
    if [ -f "$PKGLIBDIR/sluice.so" ] && [ "${SLUICE_NO_PRELOAD:-0}" != 1 ]; then
        new+=$'\n'"shared_preload_libraries = 'sluice'"
    fi
    if [ "$(cat "$datadir/sluice.conf" 2>/dev/null)" = "$new" ]; then
        return 1
    fi
    printf '%s\n' "$new" | as_owner tee "$datadir/sluice.conf" >/dev/null
}

start() {
    [ $# -ge 2 ] || die "usage: pg-cluster.sh start <datadir> <port> [dbname]"
    local datadir port=$2 dbname=${3:-postgres} changed=no
    datadir=$(abs_dir "$1")
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$datadir"
        chmod 700 "$datadir"
        runuser -u postgres -- test -w "$datadir" \
            || die "user postgres cannot reach $datadir: make every parent directory traversable (chmod o+x)"
    fi
    [ -f "$datadir/PG_VERSION" ] || init_cluster "$datadir"
    if write_conf "$datadir" "$port" "$dbname"; then changed=yes; fi
    if is_running "$datadir"; then
        [ "$changed" = yes ] || return 0
        as_owner "$BINDIR/pg_ctl" stop -D "$datadir" -m fast -w >/dev/null
    fi
    # A server never shows Rust backtraces to its clients, whatever the shell that started it set.
    if ! as_owner env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$BINDIR/pg_ctl" start -D "$datadir" -l "$datadir/postgres.log" -w -t 60 >/dev/null; then
        tail -n 20 "$datadir/postgres.log" >&2 || true
        die "postgres failed to start in $datadir (log: $datadir/postgres.log)"
    fi
    for _ in $(seq 1 60); do
        if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port"; then
            echo "postgres ready on 127.0.0.1:$port"
            return 0
        fi
        sleep 0.5
    done
    die "postgres in $datadir did not become ready on port $port"
}

stop() {
    [ $# -ge 1 ] || die "usage: pg-cluster.sh stop <datadir>"
    [ -d "$1" ] || return 0
    local datadir
    datadir=$(abs_dir "$1")
    is_running "$datadir" || return 0
    as_owner "$BINDIR/pg_ctl" stop -D "$datadir" -m fast -w -t 60 >/dev/null
}

restart() {
    [ $# -ge 1 ] || die "usage: pg-cluster.sh restart <datadir>"
    local port dbname
    port=$(conf_value "$1" port)
    dbname=$(conf_value "$1" sluice.database)
    [ -n "$port" ] || die "no cluster configured in $1 (run start first)"
    stop "$1"
    start "$1" "$port" "${dbname:-postgres}"
}

url() {
    [ $# -ge 1 ] || die "usage: pg-cluster.sh url <datadir>"
    local port
    port=$(conf_value "$1" port)
    [ -n "$port" ] || die "no cluster configured in $1 (run start first)"
    echo "postgres://postgres:postgres@127.0.0.1:$port/postgres"
}

cmd=${1:-}
shift || true
case "$cmd" in
    start | stop | restart | url) "$cmd" "$@" ;;
    *) die "usage: pg-cluster.sh {start <datadir> <port> [dbname] | stop <datadir> | restart <datadir> | url <datadir>}" ;;
esac
