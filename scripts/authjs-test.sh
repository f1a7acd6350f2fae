#!/usr/bin/env bash
# auth-js's own test suite (sidecar/tests/authjs, taken from supabase/supabase-js) against Sluice.
#
#   scripts/authjs-test.sh <superuser-database-url>
#
# The suite expects four GoTrue servers (test/lib/clients.ts): :9999 sign-ups on and autoconfirm
# off, :9998 autoconfirm on, :9997 sign-ups disabled, :9996 autoconfirm on with asymmetric
# (ES256) signing keys, all with the JWT secret the suite signs its admin tokens with. This starts
# one sidecar for each on one fresh database `sluice_authjs`, on ports SLUICE_AUTHJS_PORT
# .. +3 (default: four free ones), configured as that GoTrue instance; sluice/ports.ts sends the suite's
# requests to them. It runs jest as the suite's own config does, writes per-file counts to
# sidecar/tests/authjs/results/, and exits non-zero only when a test listed in
# sidecar/tests/authjs/expected-pass.txt (the tests that passed when the list was made) does not
# pass. SLUICE_AUTHJS_UPDATE=1 rewrites that list from this run instead.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

admin_url=${1:?usage: scripts/authjs-test.sh <superuser-database-url>}
db=sluice_authjs
db_url=${admin_url%/*}/$db
# Four ports: SLUICE_AUTHJS_PORT .. +3 when given, otherwise four that are free now (lib.sh).
if [ -n "${SLUICE_AUTHJS_PORT:-}" ]; then
    api_ports=("$SLUICE_AUTHJS_PORT" $((SLUICE_AUTHJS_PORT + 1)) $((SLUICE_AUTHJS_PORT + 2)) $((SLUICE_AUTHJS_PORT + 3)))
else
    api_ports=("$(free_port)" "$(free_port)" "$(free_port)" "$(free_port)")
fi
# GoTrue's GOTRUE_JWT_SECRET in the suite's setup (test/lib/clients.ts signs admin tokens with it).
secret=37c304f8-51aa-419a-a1af-06154e63707a
suite=$REPO/sidecar/tests/authjs
work=$REPO/.sluice/authjs-test

command -v node >/dev/null || { echo "authjs-test: node is required (apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -d "$suite/node_modules" ] || [ "$suite/package-lock.json" -nt "$suite/node_modules" ]; then
    (cd "$suite" && npm ci --no-audit --no-fund --loglevel=error)
fi
# The source under test is the npm package's (the suite imports it as ../src).
rm -rf "$suite/src"
cp -r "$suite/node_modules/@supabase/auth-js/src" "$suite/src"

export PGOPTIONS="-c client_min_messages=warning"
psql "$admin_url" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql "$db_url" -qX -v ON_ERROR_STOP=1 \
    -c "CREATE EXTENSION sluice" \
    -c "ALTER ROLE authenticator LOGIN PASSWORD 'authenticator'"

cargo build -q -p sluice-sidecar --bin sluice
rm -rf "$work" && mkdir -p "$work"
# The asymmetric instance's signing key (GoTrue's GOTRUE_JWT_KEYS in the suite's setup).
openssl ecparam -name prime256v1 -genkey -noout -out "$work/signing.pem" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$work/signing.pem" -out "$work/signing.p8.pem"
openssl ec -in "$work/signing.pem" -pubout -out "$work/public.pem" 2>/dev/null

host_port=${admin_url#*@}
host_port=${host_port%%/*}
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# start <gotrue port> <sidecar port> [VAR=value...]: one sidecar standing in for one GoTrue server.
# As the suite's GoTrue servers, SMS goes through Twilio with credentials that do not work (here: an
# API address nothing listens on), so sending a text fails ("pkce flow fails with invalid sms provider").
# http://localhost:9999/ is an allowed redirect besides the suite's config.toml: GoTrueApi.test.ts's
# generateLink tests expect redirect_to=http://localhost:9999/welcome in the link, which GoTrue's own
# check (the site URL's host, a loopback IP, or the allow list) would refuse under that config too.
start() {
    local gotrue=$1 port=$2
    shift 2
    env DATABASE_URL="postgres://authenticator:authenticator@$host_port/$db" \
        SLUICE_JWT_SECRET=$secret SLUICE_LISTEN=127.0.0.1:$port RUST_LOG=warn \
        SLUICE_NO_JOBS=true SLUICE_NO_WEBHOOKS=true SLUICE_STORAGE_ROOT="$work/storage-$port" \
        SLUICE_AUTH_EXTERNAL_URL="http://localhost:$gotrue" \
        SLUICE_AUTH_SITE_URL=http://127.0.0.1:3000 \
        SLUICE_AUTH_ADDITIONAL_REDIRECT_URLS=https://127.0.0.1:3000,http://localhost:9999/ \
        SLUICE_AUTH_JWT_EXPIRY=3600 SLUICE_AUTH_PASSWORD_MIN_LENGTH=6 \
        SLUICE_AUTH_REFRESH_REUSE_INTERVAL=10 \
        SLUICE_AUTH_RATE_LIMIT_IP=100000 SLUICE_AUTH_RATE_LIMIT_EMAIL=1000 \
        SLUICE_AUTH_SMS_PROVIDER=twilio SLUICE_AUTH_SMS_TWILIO_ACCOUNT_SID=ACunused \
        SLUICE_AUTH_SMS_TWILIO_AUTH_TOKEN=unused SLUICE_AUTH_SMS_TWILIO_MESSAGE_SERVICE_SID=MGunused \
        SLUICE_AUTH_SMS_TWILIO_API_URL=http://127.0.0.1:9 \
        "$@" "${CARGO_TARGET_DIR:-$REPO/target}/debug/sluice" serve >"$work/sidecar-$gotrue.log" 2>&1 &
    pids+=($!)
    ports+=("$gotrue=$port")
}
ports=()
start 9999 "${api_ports[0]}"
# :9998 also has anonymous sign-ins on (signInAnonymously succeeds there and fails on :9999).
start 9998 "${api_ports[1]}" SLUICE_AUTH_AUTOCONFIRM=true SLUICE_AUTH_ANONYMOUS_USERS=true
start 9997 "${api_ports[2]}" SLUICE_AUTH_DISABLE_SIGNUP=true
start 9996 "${api_ports[3]}" SLUICE_AUTH_AUTOCONFIRM=true \
    SLUICE_AUTH_JWT_SIGNING_KEY_FILE="$work/signing.p8.pem" SLUICE_AUTH_JWT_SIGNING_KID=authjs-es256 \
    SLUICE_JWT_PUBLIC_KEY_FILE="$work/public.pem"
for port in "${api_ports[@]}"; do
    for _ in $(seq 200); do
        curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && continue 2
        sleep 0.1
    done
    echo "authjs-test: the sidecar on :$port did not start; its log:" >&2
    cat "$work"/sidecar-*.log >&2
    exit 1
done

rm -rf "$suite/results" && mkdir -p "$suite/results"
cd "$suite"
status=0
SLUICE_AUTHJS_PORTS=$(IFS=,; echo "${ports[*]}") \
    npx jest --config jest.sluice.config.js --runInBand --json \
    --outputFile=results/jest.json >results/jest.out 2>&1 || status=$?
if [ ! -s results/jest.json ]; then
    echo "authjs-test: jest produced no results (exit $status):" >&2
    tail -50 results/jest.out >&2
    exit 1
fi
node sluice/compare.js results/jest.json expected-pass.txt
