#!/usr/bin/env bash
# The hostile request of issue 10: an anonymous GET repeating one filter 5,000 times (a 40 kB URL)
# on a 50,000-row table, every row matching (no limit: the plan's cost is what made Postgres JIT it).
# Times it against the release sidecar with the default bounds (refused by the 16 KiB URL bound, 414
# SLUICE102), 1,000 filters in a URL under that bound (refused by the filter limit, 400 SLUICE115),
# a request at the limit (100 filters), and the 1,000 filters again with the filter limit raised so
# that they reach Postgres (where the request roles now run with JIT off).
#
#   bench/hostile-query.sh          # PORT=54362 API_PORT=54363 RUNS=5
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

PORT=${PORT:-54362}
API_PORT=${API_PORT:-54363}
RUNS=${RUNS:-5}
DATA=.sluice/bench-hostile
URL=postgres://postgres:postgres@127.0.0.1:$PORT/postgres
SECRET=bench-secret-bench-secret-bench-secret-0123
export PGPASSWORD=postgres

[ "${SKIP_INSTALL:-0}" = 1 ] || scripts/install-extension.sh >/dev/null
cargo build -q --release -p sluice-sidecar
scripts/pg-cluster.sh stop "$DATA"
rm -rf "$DATA"
scripts/pg-cluster.sh start "$DATA" "$PORT" postgres >/dev/null
psql -qX -v ON_ERROR_STOP=1 "$URL" <<'SQL'
CREATE EXTENSION sluice;
ALTER ROLE authenticator LOGIN PASSWORD 'authenticator';
CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, score integer NOT NULL);
INSERT INTO events SELECT n, 'kind' || (n % 7), n % 1000 FROM generate_series(1, 50000) AS n;
ANALYZE events;
GRANT SELECT ON events TO anon;
SQL

sidecar=
stop_sidecar() { [ -z "$sidecar" ] || { kill "$sidecar" 2>/dev/null; wait "$sidecar" 2>/dev/null || true; }; sidecar=; }
trap 'stop_sidecar; scripts/pg-cluster.sh stop "$DATA"' EXIT

# start_sidecar [VAR=value ...]: the release sidecar on API_PORT with extra environment.
start_sidecar() {
    env "$@" DATABASE_URL="postgres://authenticator:authenticator@127.0.0.1:$PORT/postgres" \
        SLUICE_JWT_SECRET=$SECRET SLUICE_LISTEN=127.0.0.1:$API_PORT RUST_LOG=warn \
        "${CARGO_TARGET_DIR:-$REPO/target}/release/sluice" serve &
    sidecar=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$API_PORT/health" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "the sidecar did not start" >&2
    exit 1
}

# query N: N copies of the issue's filter.
query() { printf 'id=gt.0%.0s&' $(seq "$1") | sed 's/&$//'; }

# timed LABEL N RUNS: the median wall time of RUNS GETs with N filters, and the status.
timed() {
    local label=$1 n=$2 runs=$3 path times status
    path="/rest/v1/events?select=id&$(query "$n")"
    times=()
    for _ in $(seq "$runs"); do
        read -r status t < <(curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$API_PORT$path")
        times+=("$t")
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '| %-44s | %6s B | %3s | %9.1f ms |\n' "$label" "${#path}" "$status" "$(awk -v s="$median" 'BEGIN {print s * 1000}')"
}

echo "| request (median of $RUNS, one client) | URL | status | time |"
echo "|---|---|---|---|"
start_sidecar
timed "5,000 filters, default bounds (URL bound)" 5000 "$RUNS"
timed "1,000 filters, default bounds (filter limit)" 1000 "$RUNS"
timed "100 filters (at the default limit)" 100 "$RUNS"
stop_sidecar
start_sidecar SLUICE_MAX_QUERY_FILTERS=10000
timed "1,000 filters, limit raised (reaches Postgres)" 1000 3
stop_sidecar
