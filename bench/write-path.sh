#!/usr/bin/env bash
# Write-path cost of Sluice's change capture, measured with pgbench in one run so every number
# shares the same machine state. Each variant inserts one row per transaction into its own table:
#
#   bare          untracked table (the baseline)
#   realtime      sluice.enable_realtime with the default sluice.numbering = worker: the background
#                 worker numbers events in batches after commit and sends one NOTIFY per batch
#   rt+history    realtime and sluice.enable_history
#   rt inline     realtime with sluice.numbering = inline: each commit takes the numbering lock,
#                 numbers and NOTIFYs itself (what a cluster without shared_preload_libraries does)
#
# Variants are interleaved round by round (ROUNDS rounds of SECONDS each) and the median tps is
# reported, with the ratio of the baseline's time per insert to each variant's.
#
#   bench/write-path.sh            # defaults: CLIENTS="1 4" ROUNDS=3 SECONDS_PER_RUN=10
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-"1 4"}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
DATA=.sluice/bench-data
PORT=54350
URL=postgres://postgres:postgres@127.0.0.1:$PORT/postgres
export PGPASSWORD=postgres

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    scripts/deps.sh >/dev/null
    scripts/install-extension.sh >/dev/null
fi
scripts/pg-cluster.sh stop "$DATA"
rm -rf "$DATA"
trap 'scripts/pg-cluster.sh stop "$DATA"' EXIT
scripts/pg-cluster.sh start "$DATA" "$PORT" postgres >/dev/null

psql -qX -v ON_ERROR_STOP=1 "$URL" <<'SQL'
CREATE EXTENSION sluice;
CREATE TABLE bench_bare (id bigserial PRIMARY KEY, body text, client int);
CREATE TABLE bench_realtime (LIKE bench_bare INCLUDING ALL);
CREATE TABLE bench_history (LIKE bench_bare INCLUDING ALL);
CREATE TABLE bench_inline (LIKE bench_bare INCLUDING ALL);
SELECT sluice.enable_realtime('bench_realtime');
SELECT sluice.enable_realtime('bench_history'), sluice.enable_history('bench_history');
SELECT sluice.enable_realtime('bench_inline');
SQL

scripts_dir=$(mktemp -d)
for table in bare realtime history inline; do
    echo "INSERT INTO bench_$table (body, client) VALUES ('a short row of text', :client_id);" \
        >"$scripts_dir/$table.sql"
done

declare -A label=([bare]="bare" [realtime]="realtime" [history]="rt+history" [inline]="rt inline")
declare -A tps
run() { # table clients -> tps
    local options=""
    case $1 in
        inline) options="-c sluice.numbering=inline" ;;
    esac
    PGOPTIONS="$options" pgbench -n -h 127.0.0.1 -p "$PORT" -U postgres -c "$2" -j "$2" \
        -T "$SECONDS_PER_RUN" -f "$scripts_dir/$1.sql" postgres 2>/dev/null \
        | awk '/^tps = / { printf "%.0f", $3 }'
}
median() { xargs -n1 | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for clients in $CLIENTS; do
    for round in $(seq "$ROUNDS"); do
        for table in bare realtime history inline; do
            tps[$table,$clients]+="$(run "$table" "$clients") "
        done
        psql -qX "$URL" -c "CHECKPOINT" >/dev/null
    done
done

# Every event was numbered (the worker keeps up) and none is missing.
sleep 1
pending=$(psql -qAtX "$URL" -c "SELECT count(*) FROM sluice.changes WHERE position IS NULL")
logged=$(psql -qAtX "$URL" -c "SELECT count(*) FROM sluice.changes WHERE table_name IN ('bench_realtime', 'bench_history', 'bench_inline')")
written=$(psql -qAtX "$URL" -c "SELECT (SELECT count(*) FROM bench_realtime) + (SELECT count(*) FROM bench_history) + (SELECT count(*) FROM bench_inline)")

echo "pgbench, one-row INSERT per transaction, ${SECONDS_PER_RUN}s x $ROUNDS interleaved rounds, median tps"
echo "$(nproc) cores; $(date -u +%Y-%m-%d)"
echo
printf '| %-11s |' "variant"; for c in $CLIENTS; do printf ' %9s | %-14s |' "tps c=$c" "cost vs bare"; done; echo
printf '|-------------|'; for _ in $CLIENTS; do printf -- '-----------|----------------|'; done; echo
for table in bare realtime history inline; do
    printf '| %-11s |' "${label[$table]}"
    for c in $CLIENTS; do
        t=$(echo "${tps[$table,$c]}" | median)
        b=$(echo "${tps[bare,$c]}" | median)
        printf ' %9s | %-14s |' "$t" "$(awk -v b="$b" -v t="$t" 'BEGIN { printf "%.2fx", b / t }')"
    done
    echo
done
echo
echo "events logged: $logged for $written rows written; unnumbered after the run: $pending"
rm -rf "$scripts_dir"
