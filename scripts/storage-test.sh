#!/usr/bin/env bash
# Storage end to end with supabase-js's storage client, against both backends:
#
#   scripts/storage-test.sh <superuser-database-url>
#
# For each backend (the local filesystem, then S3 on a moto server started here), creates a fresh
# database `sluice_storage` with the extension and sidecar/tests/js/fixtures_storage.sql, starts the
# sidecar on it, and runs `node --test` on sidecar/tests/js/storage.test.mjs and storage_info_list.test.mjs.
# A second sidecar on the same database and backend (port SLUICE_JS_PORT_2) continues a
# resumable upload the first one began.
# Ports: SLUICE_JS_PORT and SLUICE_JS_PORT_2 (sidecars) and SLUICE_S3_PORT (moto); free ones by default.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

admin_url=${1:?usage: scripts/storage-test.sh <superuser-database-url>}
db=sluice_storage
db_url=${admin_url%/*}/$db
# Ports that are free now, unless given (see `free_port` in lib.sh).
port=${SLUICE_JS_PORT:-$(free_port)}
port2=${SLUICE_JS_PORT_2:-$(free_port)}
s3_port=${SLUICE_S3_PORT:-$(free_port)}
secret=js-test-secret-that-is-at-least-32-bytes-long
js=$REPO/sidecar/tests/js
work=$(mktemp -d)

command -v node >/dev/null || { echo "storage-test: node is required" >&2; exit 1; }
command -v moto_server >/dev/null || { echo "storage-test: moto_server is required (pip install 'moto[server]')" >&2; exit 1; }
if [ ! -d "$js/node_modules" ] || [ "$js/package-lock.json" -nt "$js/node_modules" ]; then
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi
cargo build -q -p sluice-sidecar

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

moto_server -p "$s3_port" >"$work/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$s3_port/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs -X PUT "http://127.0.0.1:$s3_port/sluice-test" >/dev/null

export PGOPTIONS="-c client_min_messages=warning"
host_port=${admin_url#*@}
host_port=${host_port%%/*}
for backend in file s3; do
    echo "== storage tests against the $backend backend"
    psql "$admin_url" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    psql "$db_url" -qX -v ON_ERROR_STOP=1 \
        -c "CREATE EXTENSION sluice" \
        -c "ALTER ROLE authenticator LOGIN PASSWORD 'authenticator'" \
        -f "$js/fixtures_storage.sql"
    sidecars=()
    for p in "$port" "$port2"; do
        DATABASE_URL="postgres://authenticator:authenticator@$host_port/$db" SLUICE_JWT_SECRET=$secret \
            SLUICE_LISTEN=127.0.0.1:$p RUST_LOG=warn \
            SLUICE_STORAGE_BACKEND=$backend SLUICE_STORAGE_ROOT="$work/files" SLUICE_STORAGE_S3_BUCKET=sluice-test \
            AWS_ENDPOINT="http://127.0.0.1:$s3_port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
            AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
            "${CARGO_TARGET_DIR:-$REPO/target}/debug/sluice" serve &
        sidecars+=($!)
        pids+=($!)
        for _ in $(seq 100); do
            curl -fs "http://127.0.0.1:$p/health" >/dev/null 2>&1 && break
            sleep 0.1
        done
        curl -fs "http://127.0.0.1:$p/health" >/dev/null 2>&1 \
            || { echo "storage-test: the sidecar on port $p did not start" >&2; exit 1; }
    done
    (cd "$js" && SLUICE_URL=http://127.0.0.1:$port SLUICE_URL_2=http://127.0.0.1:$port2 \
        SLUICE_JWT_SECRET=$secret node --test --test-concurrency=1 ./storage.test.mjs ./storage_info_list.test.mjs)
    for pid in "${sidecars[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
done
