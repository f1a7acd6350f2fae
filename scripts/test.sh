#!/usr/bin/env bash
# Everything CI checks, in order, stopping at the first failure:
# deps, extension #[pg_test]s, install, SQL regression tests (pg_regress), sidecar tests, client tests
# (postgrest-js, supabase-js, storage on both backends), clippy, rustfmt.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO"

TEST_DATA=$REPO/.sluice/test-data
TEST_PORT=${SLUICE_TEST_PORT:-54330}
TEST_URL=postgres://postgres:postgres@127.0.0.1:$TEST_PORT/postgres
REGRESS_DB=sluice_regress
REGRESS_OUT=$REPO/.sluice/regress-out
started=$SECONDS
cluster_up=no

timed_stage() { stage "$* (at ${SECONDS}s)"; }

on_exit() {
    local rc=$?
    if [ "$cluster_up" = yes ]; then scripts/pg-cluster.sh stop "$TEST_DATA" || true; fi
    echo
    if [ "$rc" -eq 0 ]; then echo "all tests passed in $((SECONDS - started))s"; else echo "FAILED after $((SECONDS - started))s"; fi
}
trap on_exit EXIT

timed_stage "deps"
scripts/deps.sh

timed_stage "extension: cargo pgrx test pg15"
if [ "$(id -u)" -eq 0 ]; then
    # The pgrx test cluster runs as `postgres`, which must be able to create its data folder here.
    pgrx_data=$REPO/.sluice/pgrx-test-data
    mkdir -p "$pgrx_data"
    chown postgres: "$pgrx_data"
    runuser -u postgres -- test -w "$pgrx_data" \
        || { echo "user postgres cannot reach $pgrx_data: make its parents traversable (chmod o+x)" >&2; exit 1; }
    export CARGO_PGRX_TEST_RUNAS=postgres CARGO_PGRX_TEST_PGDATA=$pgrx_data
fi
(cd extension && cargo pgrx test pg15)
unset CARGO_PGRX_TEST_RUNAS CARGO_PGRX_TEST_PGDATA

# `cargo pgrx test` installs a test build of the extension; install the release build over it.
timed_stage "install the extension"
scripts/install-extension.sh
scripts/check-sql.sh

timed_stage "throwaway cluster on port $TEST_PORT"
scripts/pg-cluster.sh stop "$TEST_DATA"
rm -rf "$TEST_DATA"
cluster_up=yes
scripts/pg-cluster.sh start "$TEST_DATA" "$TEST_PORT"

timed_stage "SQL regression tests (pg_regress)"
export PGPASSWORD=postgres
PGOPTIONS="-c client_min_messages=warning" psql "$TEST_URL" -qX -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $REGRESS_DB" -c "CREATE DATABASE $REGRESS_DB"
psql "${TEST_URL%/*}/$REGRESS_DB" -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION sluice"
tests=()
for f in pg_test/sql/*.sql; do [ -e "$f" ] && tests+=("$(basename "$f" .sql)"); done
rm -rf "$REGRESS_OUT"
mkdir -p "$REGRESS_OUT"
if ! "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
    --use-existing --bindir="$("$PG_CONFIG" --bindir)" \
    --host=127.0.0.1 --port="$TEST_PORT" --user=postgres --dbname="$REGRESS_DB" \
    --inputdir=pg_test --outputdir="$REGRESS_OUT" "${tests[@]}"; then
    cat "$REGRESS_OUT/regression.diffs" || true
    exit 1
fi

timed_stage "upgrade scripts"
scripts/check-upgrade.sh "$TEST_URL"

timed_stage "sidecar: cargo test -p sluice-sidecar"
SLUICE_TEST_DATABASE_URL=$TEST_URL cargo test -p sluice-sidecar
# Each test sidecar gets a storage folder of its own (support/sidecar.rs); they are throwaway.
rm -rf "$REPO"/.sluice/test-storage-*

timed_stage "client tests: @supabase/postgrest-js against a real sidecar"
scripts/js-test.sh "$TEST_URL"

timed_stage "storage: supabase-js storage and tus-js-client against the file and S3 (moto) backends"
scripts/storage-test.sh "$TEST_URL"

timed_stage "auth-js's own test suite against four sidecars (fails only on a lost expected pass)"
scripts/authjs-test.sh "$TEST_URL"

timed_stage "stop the throwaway cluster"
scripts/pg-cluster.sh stop "$TEST_DATA"
cluster_up=no

timed_stage "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

timed_stage "cargo fmt --check"
cargo fmt --all --check
