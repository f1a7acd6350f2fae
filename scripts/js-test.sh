#!/usr/bin/env bash
# End-to-end tests with the clients people use (@supabase/postgrest-js on Node) against a real
# sidecar and database.
#
#   scripts/js-test.sh <superuser-database-url>
#
# Creates a fresh database `sluice_js` on that server with the extension and the fixtures of
# sidecar/tests/js/fixtures.sql, starts the sidecar on it as `authenticator`, runs
# `node --test sidecar/tests/js/*.test.mjs`, and stops the sidecar.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

admin_url=${1:?usage: scripts/js-test.sh <superuser-database-url>}
db=sluice_js
db_url=${admin_url%/*}/$db
port=${SLUICE_JS_PORT:-$(free_port)}
# auth_oauth.test.mjs starts an OpenID provider (npm oidc-provider) here.
oidc_port=${SLUICE_JS_OIDC_PORT:-$(free_port)}
secret=js-test-secret-that-is-at-least-32-bytes-long
js=$REPO/sidecar/tests/js

command -v node >/dev/null || { echo "js-test: node is required (apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -d "$js/node_modules" ] || [ "$js/package-lock.json" -nt "$js/node_modules" ]; then
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi

export PGOPTIONS="-c client_min_messages=warning"
psql "$admin_url" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql "$db_url" -qX -v ON_ERROR_STOP=1 \
    -c "CREATE EXTENSION sluice" \
    -c "ALTER ROLE authenticator LOGIN PASSWORD 'authenticator'" \
    -f "$js/fixtures.sql" \
    -f "$js/fixtures_rpc.sql" \
    -f "$js/fixtures_rpc2.sql" \
    -f "$js/fixtures_auth.sql" \
    -f "$js/fixtures_auth_otp.sql" \
    -f "$js/fixtures_realtime.sql" \
    -f "$js/fixtures_storage.sql" \
    -f "$js/fixtures_select.sql" \
    -f "$js/fixtures_mfa.sql" \
    -f "$js/fixtures_auth_link.sql" \
    -f "$js/fixtures_gaps.sql"

cargo build -q -p sluice-sidecar
host_port=${admin_url#*@}
host_port=${host_port%%/*}
# auth_otp.test.mjs: anonymous sign-ins on, a test phone number with a fixed code, mailed links to here.
# auth_flows.test.mjs: secure password change on, a second test number. The auth tests together sign
# in more than 30 times from 127.0.0.1 within the 300 s window, so the per-address limit is raised
# (as scripts/authjs-test.sh does); the per-email limit (10) stays, and auth_flows.test.mjs tests it.
DATABASE_URL="postgres://authenticator:authenticator@$host_port/$db" SLUICE_JWT_SECRET=$secret \
    SLUICE_AUTH_ANONYMOUS_USERS=true SLUICE_AUTH_SMS_TEST_OTP=15550001111=123456,15550002222=654321 \
    SLUICE_AUTH_SECURE_PASSWORD_CHANGE=true SLUICE_AUTH_RATE_LIMIT_IP=1000 SLUICE_AUTH_EXTERNAL_URL=http://127.0.0.1:$port \
    SLUICE_AUTH_EXTERNAL_KEYCLOAK_ENABLED=true SLUICE_AUTH_EXTERNAL_KEYCLOAK_CLIENT_ID=sluice \
    SLUICE_AUTH_EXTERNAL_KEYCLOAK_SECRET=sluice-oidc-secret SLUICE_AUTH_EXTERNAL_KEYCLOAK_URL=http://127.0.0.1:$oidc_port \
    SLUICE_AUTH_EXTERNAL_OIDC2_ENABLED=true SLUICE_AUTH_EXTERNAL_OIDC2_CLIENT_ID=sluice2 \
    SLUICE_AUTH_EXTERNAL_OIDC2_SECRET=sluice2-oidc-secret SLUICE_AUTH_EXTERNAL_OIDC2_URL=http://127.0.0.1:$oidc_port \
    SLUICE_AUTH_MANUAL_LINKING_ENABLED=true \
    SLUICE_DB_PLAN_ENABLED=true SLUICE_LISTEN=127.0.0.1:$port RUST_LOG=warn SLUICE_STORAGE_ROOT="$REPO/.sluice/js-test-storage" \
    "${CARGO_TARGET_DIR:-$REPO/target}/debug/sluice" serve &
sidecar=$!
trap 'kill "$sidecar" 2>/dev/null; wait "$sidecar" 2>/dev/null || true; rm -rf "$REPO/.sluice/js-test-storage"' EXIT
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
done

cd "$js"
SLUICE_JS_SIDECAR="${CARGO_TARGET_DIR:-$REPO/target}/debug/sluice" \
SLUICE_URL=http://127.0.0.1:$port SLUICE_JWT_SECRET=$secret SLUICE_JS_DATABASE_URL=$db_url SLUICE_JS_OIDC_PORT=$oidc_port \
    node --test --test-concurrency=1 ./*.test.mjs
