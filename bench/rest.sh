#!/usr/bin/env bash
# REST API speed: wrk against the sidecar vs pgbench running the equivalent SQL directly on the same
# database (the ceiling), in one run, at several client counts. A table of 100k rows.
#
#   bench/rest.sh                       # CLIENTS="1 16 64" SECONDS_PER_RUN=5 ROUNDS=3
#
# Each cell alternates sidecar and pgbench runs ROUNDS times and reports medians, so that load from
# other work on a shared machine falls on both sides alike. A last table runs, with pgbench, the
# exact call the sidecar makes for a GET by key (`sluice.run_request`: role, claims, method, path
# and headers set, then the statement): the database-side cost of a REST request, with no HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_commands wrk

CLIENTS=${CLIENTS:-"1 16 64"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
ROUNDS=${ROUNDS:-3}
DATA=.sluice/bench-rest
PORT=54360
API_PORT=54361
URL=postgres://postgres:postgres@127.0.0.1:$PORT/postgres
SECRET=bench-secret-bench-secret-bench-secret-0123
export PGPASSWORD=postgres

[ "${SKIP_INSTALL:-0}" = 1 ] || scripts/install-extension.sh >/dev/null
cargo build -q --release -p sluice-sidecar
scripts/pg-cluster.sh stop "$DATA"
rm -rf "$DATA"
scripts/pg-cluster.sh start "$DATA" "$PORT" postgres >/dev/null
psql -qX -v ON_ERROR_STOP=1 "$URL" <<'SQL'
ALTER SYSTEM SET max_connections = 200;
SQL
scripts/pg-cluster.sh restart "$DATA" >/dev/null
psql -qX -v ON_ERROR_STOP=1 "$URL" -f bench/rest/setup.sql

DATABASE_URL="postgres://authenticator:authenticator@127.0.0.1:$PORT/postgres" SLUICE_JWT_SECRET=$SECRET \
    SLUICE_LISTEN=127.0.0.1:$API_PORT SLUICE_POOL_SIZE=16 RUST_LOG=warn target/release/sluice serve &
sidecar=$!
trap 'kill $sidecar 2>/dev/null; wait $sidecar 2>/dev/null; scripts/pg-cluster.sh stop "$DATA"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$API_PORT/health" >/dev/null && break; sleep 0.1; done
SLUICE_BENCH_KEY=$(SLUICE_JWT_SECRET=$SECRET target/release/sluice keys | sed -n 's/^anon key: //p')
export SLUICE_BENCH_KEY

# wrk: req/s, p50, p99 (ms)
run_wrk() { # script clients
    local threads=$(( $2 < 2 ? 1 : 2 ))
    wrk -t"$threads" -c"$2" -d"${SECONDS_PER_RUN}s" --latency -s "bench/rest/$1.lua" "http://127.0.0.1:$API_PORT" \
        | awk '
            function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
            /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
            /Non-2xx/ { bad = $NF }
            END { printf "%.0f %.2f %.2f %s\n", rps, p50, p99, (bad == "" ? 0 : bad) }'
}
# pgbench: tps, p50, p99 (ms) from its per-transaction log
run_pgbench() { # script clients
    local dir; dir=$(mktemp -d)
    chmod 777 "$dir"
    local threads=$(( $2 < 2 ? 1 : 2 ))
    (cd "$dir" && pgbench -n -M prepared -h 127.0.0.1 -p "$PORT" -U postgres -c "$2" -j "$threads" \
        -T "$SECONDS_PER_RUN" -l -f "$OLDPWD/bench/rest/$1.sql" postgres >"$dir/out" 2>&1)
    local tps; tps=$(awk '/^tps = / { printf "%.0f", $3 }' "$dir/out")
    cat "$dir"/pgbench_log.* | awk '{ print $3 / 1000 }' | sort -n \
        | awk -v tps="$tps" '{ v[NR] = $1 } END { printf "%s %.2f %.2f\n", tps, v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1] }'
    rm -rf "$dir"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# One cell: ROUNDS alternating runs; prints "rps p50 p99 bad tps q50 q99" as medians.
measure() { # wrk-script pgbench-script clients
    local dir; dir=$(mktemp -d)
    for _ in $(seq "$ROUNDS"); do
        run_wrk "$1" "$3" >>"$dir/wrk"
        run_pgbench "$2" "$3" >>"$dir/pgbench"
    done
    local out=()
    for col in 1 2 3 4; do out+=("$(awk -v c=$col '{ print $c }' "$dir/wrk" | median)"); done
    for col in 1 2 3; do out+=("$(awk -v c=$col '{ print $c }' "$dir/pgbench" | median)"); done
    rm -rf "$dir"
    echo "${out[@]}"
}

echo "REST via the sidecar (wrk) vs the same SQL via pgbench -M prepared: medians of $ROUNDS alternating ${SECONDS_PER_RUN}s runs"
echo "$(nproc) cores; $(date -u +%Y-%m-%d); items: 100k rows"
echo
echo "| request | clients | sidecar req/s | p50 ms | p99 ms | pgbench tps | p50 ms | p99 ms | sidecar / pgbench |"
echo "|---|---|---|---|---|---|---|---|---|"
for script in get_pk list insert embed; do
    for c in $CLIENTS; do
        read -r rps p50 p99 bad tps q50 q99 < <(measure "$script" "$script" "$c")
        ratio=$(awk -v a="$rps" -v b="$tps" 'BEGIN { printf "%.2f", a / b }')
        note=""; [ "$bad" != 0 ] && note=" ($bad non-2xx!)"
        echo "| $script | $c | $rps$note | $p50 | $p99 | $tps | $q50 | $q99 | $ratio |"
    done
done

echo
echo "Database side of a GET by key: pgbench running the sidecar's call vs the plain SELECT"
echo
echo "| clients | sluice.run_request tps | plain SELECT tps | ratio |"
echo "|---|---|---|---|"
for c in $CLIENTS; do
    gateway=(); plain=()
    for _ in $(seq "$ROUNDS"); do
        read -r tps _ _ < <(run_pgbench get_pk_gateway "$c"); gateway+=("$tps")
        read -r tps _ _ < <(run_pgbench get_pk "$c"); plain+=("$tps")
    done
    g=$(printf '%s\n' "${gateway[@]}" | median); p=$(printf '%s\n' "${plain[@]}" | median)
    echo "| $c | $g | $p | $(awk -v a="$g" -v b="$p" 'BEGIN { printf "%.2f", a / b }') |"
done
