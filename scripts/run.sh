#!/usr/bin/env bash
# `make run`: install, start a local Postgres on port 54322 (or use $DATABASE_URL), prepare the
# database, and run the sidecar on port 54321 until Ctrl-C, which stops the sidecar and then the
# local cluster. Secrets are generated once and kept in .sluice/.
#
# A Supabase project runs as it is: with SLUICE_PROJECT=<dir> (or from a folder holding
# supabase/migrations, as `make -C <sluice> run` from the project folder), a new local cluster gets
# the project's migrations and supabase/seed.sql (`sluice db reset`), and an existing one its
# pending migrations (`sluice migration up`). SLUICE_JWT_SECRET may be set to any secret of 32
# bytes or more, such as the Supabase CLI's demo secret, so that clients keep their keys.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
project=${SLUICE_PROJECT:-$PWD}
cd "$REPO"

DATA=$REPO/.sluice/data
DB_PORT=54322
API_LISTEN=127.0.0.1:54321

# A file holding 48 random hex characters, created on first use.
secret_file() {
    if [ ! -s "$1" ]; then
        mkdir -p "$(dirname "$1")"
        (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$1")
    fi
    cat "$1"
}

scripts/deps.sh
scripts/install-extension.sh

local_cluster=no
new_cluster=no
[ -d "$DATA" ] || new_cluster=yes
if [ -n "${DATABASE_URL:-}" ]; then
    admin_url=$DATABASE_URL
else
    local_cluster=yes
    scripts/pg-cluster.sh start "$DATA" "$DB_PORT" postgres
    admin_url=$(scripts/pg-cluster.sh url "$DATA")
fi

sidecar_pid=
cleanup() {
    trap - INT TERM EXIT
    if [ -n "$sidecar_pid" ]; then
        kill -TERM "$sidecar_pid" 2>/dev/null || true
        wait "$sidecar_pid" 2>/dev/null || true
    fi
    if [ "$local_cluster" = yes ]; then scripts/pg-cluster.sh stop "$DATA"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

authenticator_password=$(secret_file .sluice/authenticator_password)
psql "$admin_url" -qX -v ON_ERROR_STOP=1 -v pw="$authenticator_password" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS sluice;
-- A database made by an earlier `make run` is brought to this version (sql/sluice--A--B.sql).
ALTER EXTENSION sluice UPDATE;
ALTER ROLE authenticator LOGIN PASSWORD :'pw';
SQL

# The sidecar connects as authenticator to the same host and database as the administrator.
[[ $admin_url =~ ^(postgres(ql)?://)([^@/]*@)?(.*)$ ]] \
    || { echo "run: DATABASE_URL must look like postgres://user:password@host:port/db" >&2; exit 1; }
sidecar_db_url="${BASH_REMATCH[1]}authenticator:$authenticator_password@${BASH_REMATCH[4]}"

SLUICE_JWT_SECRET=${SLUICE_JWT_SECRET:-$(secret_file .sluice/jwt_secret)}
export SLUICE_JWT_SECRET

cargo build --release -p sluice-sidecar

if [ -d "$project/supabase/migrations" ]; then
    if [ "$local_cluster" = yes ] && [ "$new_cluster" = yes ]; then
        target/release/sluice db reset --db-url "$admin_url" --workdir "$project"
    else
        target/release/sluice migration up --db-url "$admin_url" --workdir "$project"
    fi
fi
keys=$(target/release/sluice keys)

cat <<EOF_BANNER

Sluice is running. Ctrl-C stops it.

http://$API_LISTEN   <- API
$admin_url   <- database (admin)

API URL: http://$API_LISTEN
DB URL: $admin_url
psql '$admin_url'
$keys

EOF_BANNER

# As in Supabase's local development, sign-ups need no email confirmation (set it to false to try
# the confirmation mail, which lands in the log and in auth.mail_outbox).
SLUICE_AUTH_AUTOCONFIRM=${SLUICE_AUTH_AUTOCONFIRM:-true} \
    DATABASE_URL=$sidecar_db_url SLUICE_LISTEN=$API_LISTEN target/release/sluice serve &
sidecar_pid=$!
wait "$sidecar_pid"
