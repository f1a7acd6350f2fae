#!/usr/bin/env bash
# Webhook speed: deliveries per second at saturation to a local receiver, and commit-to-delivery latency
# p50/p95 for single inserts, with one and with two sidecars on one database (bench/webhooks/bench.rs).
#
#   bench/webhooks.sh                 # EVENTS=20000 SINGLES=500 PACE_MS=10 SIDECARS="1 2"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

DATA=.sluice/bench-webhooks
PORT=${BENCH_PG_PORT:-54380}
API_PORT=${BENCH_API_PORT:-54381}
RECEIVER_PORT=${BENCH_RECEIVER_PORT:-54385}
URL=postgres://postgres:postgres@127.0.0.1:$PORT/postgres
SECRET=bench-secret-bench-secret-bench-secret-0123
export PGPASSWORD=postgres

[ "${SKIP_INSTALL:-0}" = 1 ] || scripts/install-extension.sh >/dev/null
cargo build -q --release -p sluice-sidecar --bin sluice --example webhooks_bench
SLUICE_BIN=target/release/sluice CLIENT_BIN=target/release/examples/webhooks_bench
scripts/pg-cluster.sh stop "$DATA"
rm -rf "$DATA"
scripts/pg-cluster.sh start "$DATA" "$PORT" postgres >/dev/null
psql -qX -v ON_ERROR_STOP=1 "$URL" <<'SQL'
CREATE EXTENSION sluice;
ALTER ROLE authenticator LOGIN PASSWORD 'authenticator';
SQL

sidecars=()
stop_sidecars() {
    for pid in "${sidecars[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    sidecars=()
}
trap 'stop_sidecars; scripts/pg-cluster.sh stop "$DATA"' EXIT

for count in ${SIDECARS:-1 2}; do
    for i in $(seq "$count"); do
        DATABASE_URL="postgres://authenticator:authenticator@127.0.0.1:$PORT/postgres" SLUICE_JWT_SECRET=$SECRET \
            SLUICE_LISTEN=127.0.0.1:$((API_PORT + i - 1)) RUST_LOG=warn "$SLUICE_BIN" serve &
        sidecars+=($!)
        for _ in $(seq 100); do curl -fs "http://127.0.0.1:$((API_PORT + i - 1))/health" >/dev/null && break; sleep 0.1; done
    done
    echo "load average before the run with $count sidecar(s): $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
    DATABASE_URL=$URL RECEIVER_PORT=$RECEIVER_PORT LABEL="$count sidecar(s): " "$CLIENT_BIN"
    stop_sidecars
done
