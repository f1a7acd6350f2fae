#!/usr/bin/env bash
# Run once by the postgres image's entrypoint when it creates the cluster: create the extension and let
# the sidecar log in as `authenticator`.
set -euo pipefail
psql -v ON_ERROR_STOP=1 -v pw="${AUTHENTICATOR_PASSWORD:?set AUTHENTICATOR_PASSWORD}" \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE EXTENSION IF NOT EXISTS sluice;
ALTER ROLE authenticator LOGIN PASSWORD :'pw';
SQL
