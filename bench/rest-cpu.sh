#!/usr/bin/env bash
# CPU time per REST request, of the sidecar and of Postgres, for one or more builds side by side.
#
#   bench/rest-cpu.sh                                   # this checkout only
#   SIDES="before=/work/wt-before:/path/to/pg_config after=$PWD:/usr/bin/pg_config" bench/rest-cpu.sh
#
# Each side is `label=checkout:pg_config`: the checkout's release sidecar (built here) and a cluster of
# that Postgres installation, into which the checkout's extension must already be installed
# (scripts/install-extension.sh with that PG_CONFIG). For each request kind, the sides take turns
# ROUNDS times: wrk runs SECONDS_PER_RUN seconds at CLIENTS connections, and the CPU (user + system)
# that the sidecar process and the cluster's backends used meanwhile is read from /proc and divided by
# the requests answered. Unlike requests per second, CPU per request hardly depends on what else the
# machine is doing, so builds can be compared on a busy machine. SKIP_BUILD=1 uses the release binaries
# as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_commands wrk
here=$PWD

SIDES=${SIDES:-"this=$here:${PG_CONFIG:-/usr/bin/pg_config}"}
REQUESTS=${REQUESTS:-"get_pk list embed"}
CLIENTS=${CLIENTS:-16}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
ROUNDS=${ROUNDS:-3}
BASE_PORT=${BASE_PORT:-54370}
SECRET=bench-secret-bench-secret-bench-secret-0123
export PGPASSWORD=postgres
TCK=$(getconf CLK_TCK)

declare -A checkout pgconfig port api pid
labels=()
i=0
for side in $SIDES; do
    label=${side%%=*}; rest=${side#*=}
    labels+=("$label")
    checkout[$label]=${rest%%:*}
    pgconfig[$label]=${rest#*:}
    port[$label]=$((BASE_PORT + 2 * i))
    api[$label]=$((BASE_PORT + 2 * i + 1))
    i=$((i + 1))
done

cleanup() {
    for label in "${labels[@]}"; do
        [ -n "${pid[$label]:-}" ] && kill "${pid[$label]}" 2>/dev/null && wait "${pid[$label]}" 2>/dev/null
        PG_CONFIG=${pgconfig[$label]} scripts/pg-cluster.sh stop "$here/.sluice/bench-cpu-$label" >/dev/null || true
    done
}
trap cleanup EXIT

for label in "${labels[@]}"; do
    [ "${SKIP_BUILD:-0}" = 1 ] || (cd "${checkout[$label]}" && cargo build -q --release -p sluice-sidecar)
    data=$here/.sluice/bench-cpu-$label
    PG_CONFIG=${pgconfig[$label]} scripts/pg-cluster.sh stop "$data" >/dev/null
    rm -rf "$data"
    PG_CONFIG=${pgconfig[$label]} scripts/pg-cluster.sh start "$data" "${port[$label]}" postgres >/dev/null
    url=postgres://postgres:postgres@127.0.0.1:${port[$label]}/postgres
    psql -qX -v ON_ERROR_STOP=1 "$url" -f bench/rest/setup.sql
    DATABASE_URL="postgres://authenticator:authenticator@127.0.0.1:${port[$label]}/postgres" \
        SLUICE_JWT_SECRET=$SECRET SLUICE_LISTEN=127.0.0.1:${api[$label]} SLUICE_POOL_SIZE=16 RUST_LOG=warn \
        "${checkout[$label]}/target/release/sluice" serve &
    pid[$label]=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:${api[$label]}/health" >/dev/null && break; sleep 0.1; done
done
first=${labels[0]}
SLUICE_BENCH_KEY=$(SLUICE_JWT_SECRET=$SECRET "${checkout[$first]}/target/release/sluice" keys | sed -n 's/^anon key: //p')
export SLUICE_BENCH_KEY

# "pid ticks" lines (`ticks_of`, scripts/lib.sh) for every child of a cluster's postmaster; and the
# ticks used between two such snapshots (a child that ended meanwhile is left out, one that started
# counts whole).
cluster_snapshot() {
    local postmaster child; postmaster=$(head -n 1 "$1/postmaster.pid")
    for child in $(pgrep -P "$postmaster"); do
        echo "$child $(ticks_of "$child" 2>/dev/null || echo 0)"
    done
}
cluster_used() { # before-snapshot after-snapshot
    awk 'NR == FNR { start[$1] = $2; next } { used += $2 - ($1 in start ? start[$1] : 0) } END { print used + 0 }' \
        <(echo "$1") <(echo "$2")
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "CPU per request (user + system, µs): medians of $ROUNDS alternating ${SECONDS_PER_RUN}s wrk runs at $CLIENTS connections"
echo "$(nproc) cores; $(date -u +%Y-%m-%d); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| request | side | req/s | sidecar µs/req | Postgres µs/req |"
echo "|---|---|---|---|---|"
for request in $REQUESTS; do
    declare -A rps_all=() side_all=() pg_all=()
    for round in $(seq "$ROUNDS"); do
        # Whoever runs second in a round was measured slower (by up to 10%): the order turns each round.
        order=("${labels[@]}")
        if [ $((round % 2)) = 0 ]; then
            order=(); for ((k = ${#labels[@]} - 1; k >= 0; k--)); do order+=("${labels[$k]}"); done
        fi
        for label in "${order[@]}"; do
            data=$here/.sluice/bench-cpu-$label
            s0=$(ticks_of "${pid[$label]}"); p0=$(cluster_snapshot "$data")
            out=$(wrk -t"$(( CLIENTS < 2 ? 1 : 2 ))" -c"$CLIENTS" -d"${SECONDS_PER_RUN}s" -s "bench/rest/$request.lua" "http://127.0.0.1:${api[$label]}")
            s1=$(ticks_of "${pid[$label]}"); p1=$(cluster_snapshot "$data")
            n=$(echo "$out" | awk '/requests in/ { print $1 }')
            rps=$(echo "$out" | awk '/^Requests\/sec/ { printf "%.0f", $2 }')
            if echo "$out" | grep -q Non-2xx; then echo "$label $request: non-2xx answers" >&2; exit 1; fi
            rps_all[$label]+="$rps "
            side_all[$label]+="$(awk -v t=$((s1 - s0)) -v n="$n" -v k="$TCK" 'BEGIN { printf "%.1f", t / k * 1e6 / n }') "
            pg_all[$label]+="$(awk -v t="$(cluster_used "$p0" "$p1")" -v n="$n" -v k="$TCK" 'BEGIN { printf "%.1f", t / k * 1e6 / n }') "
        done
    done
    for label in "${labels[@]}"; do
        r=$(tr ' ' '\n' <<<"${rps_all[$label]}" | grep . | median)
        s=$(tr ' ' '\n' <<<"${side_all[$label]}" | grep . | median)
        p=$(tr ' ' '\n' <<<"${pg_all[$label]}" | grep . | median)
        echo "| $request | $label | $r | $s | $p |"
    done
done
