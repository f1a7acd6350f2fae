#!/usr/bin/env bash
# Realtime speed: commit-to-socket latency p50/p95/p99 at 1, 100 and 1000 subscribers with RLS off and
# on, delivered messages per second at saturation, and the sidecar's RSS with 10,000 idle sockets.
#
#   bench/realtime.sh                       # SUBSCRIBERS="1 100 1000" EVENTS=200 IDLE=10000 CLIENTS="node rust"
#   BENCH_BIN_DIR=/tmp/before bench/realtime.sh   # binaries built elsewhere (sluice, realtime_bench): no build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

DATA=.sluice/bench-realtime
PORT=${BENCH_PG_PORT:-54370}
API_PORT=${BENCH_API_PORT:-54371}
URL=postgres://postgres:postgres@127.0.0.1:$PORT/postgres
SECRET=bench-secret-bench-secret-bench-secret-0123
export PGPASSWORD=postgres
# 10,000 sockets need as many descriptors in the sidecar and in the client (each its own process).
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $(( ${IDLE:-10000} + 1000 )) ] \
    || { echo "realtime bench: ulimit -n is $(ulimit -n); raise the hard limit or set IDLE lower" >&2; exit 1; }

[ "${SKIP_INSTALL:-0}" = 1 ] || scripts/install-extension.sh >/dev/null
# Another commit's binaries, to compare before and after in one session.
if [ -n "${BENCH_BIN_DIR:-}" ]; then
    SLUICE_BIN=$BENCH_BIN_DIR/sluice CLIENT_BIN=$BENCH_BIN_DIR/realtime_bench
else
    cargo build -q --release -p sluice-sidecar --bin sluice --example realtime_bench
    SLUICE_BIN=target/release/sluice CLIENT_BIN=target/release/examples/realtime_bench
fi
(cd bench/realtime && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
scripts/pg-cluster.sh stop "$DATA"
rm -rf "$DATA"
scripts/pg-cluster.sh start "$DATA" "$PORT" postgres >/dev/null
psql -qX -v ON_ERROR_STOP=1 "$URL" <<'SQL'
CREATE EXTENSION sluice;
ALTER ROLE authenticator LOGIN PASSWORD 'authenticator';
CREATE TABLE bench_open (id int PRIMARY KEY, owner uuid NOT NULL, at timestamptz DEFAULT now());
GRANT SELECT ON bench_open TO authenticated;
CREATE TABLE bench_rls (id int PRIMARY KEY, owner uuid NOT NULL, at timestamptz DEFAULT now());
ALTER TABLE bench_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON bench_rls FOR SELECT TO authenticated USING (owner = auth.uid());
GRANT SELECT ON bench_rls TO authenticated;
SELECT sluice.enable_realtime('bench_open'), sluice.enable_realtime('bench_rls');
SQL

# The benchmark's sockets send no heartbeats: keep the sidecar from closing them as silent.
DATABASE_URL="postgres://authenticator:authenticator@127.0.0.1:$PORT/postgres" SLUICE_JWT_SECRET=$SECRET \
    SLUICE_LISTEN=127.0.0.1:$API_PORT SLUICE_POOL_SIZE=16 SLUICE_REALTIME_HEARTBEAT_TIMEOUT=86400 \
    RUST_LOG=warn "$SLUICE_BIN" serve &
sidecar=$!
trap 'kill $sidecar 2>/dev/null; wait $sidecar 2>/dev/null; scripts/pg-cluster.sh stop "$DATA"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$API_PORT/health" >/dev/null && break; sleep 0.1; done

export SLUICE_WS=ws://127.0.0.1:$API_PORT DATABASE_URL=$URL SLUICE_JWT_SECRET=$SECRET SIDECAR_PID=$sidecar
for client in ${CLIENTS:-node rust}; do
    echo "load average before the $client client: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
    case $client in
        node) node bench/realtime/bench.mjs ;;
        # Latency only: the same measurement with a reader of a few microseconds per frame.
        rust) "$CLIENT_BIN" ;;
        *) echo "realtime bench: unknown client $client (node, rust)" >&2; exit 1 ;;
    esac
done
