#!/usr/bin/env bash
# Checks the upgrade scripts: for each earlier release A (sql/sluice--A.sql), a database created at
# version A and updated with ALTER EXTENSION sluice UPDATE must end up with exactly what a fresh install of the
# current version has: the extension's objects with their definitions and grants, and the indexes,
# constraints, triggers and registered collections of its schemas.
#
#   scripts/check-upgrade.sh <superuser-database-url>
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

admin_url=${1:?usage: scripts/check-upgrade.sh <superuser-database-url>}
export PGOPTIONS="-c client_min_messages=warning"

# One line per object, names only (no OIDs), so two databases compare as text.
FINGERPRINT=$(cat <<'SQL'
WITH members AS (
    SELECT d.classid, d.objid, d.objsubid
    FROM pg_depend d
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sluice')
)
SELECT 'member ' || pg_describe_object(m.classid, m.objid, m.objsubid) || ' ' ||
       CASE m.classid
           WHEN 'pg_proc'::regclass THEN
               (SELECT pg_get_functiondef(p.oid) || ' acl=' || coalesce(p.proacl::text, '')
                FROM pg_proc p WHERE p.oid = m.objid AND p.prokind <> 'a')
           WHEN 'pg_class'::regclass THEN
               (SELECT c.relkind::text || ' acl=' || coalesce(c.relacl::text, '') || ' ' ||
                       coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                                   || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                                                   || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), ''),
                                                   ', ' ORDER BY a.attnum)
                                 FROM pg_attribute a
                                 LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
                FROM pg_class c WHERE c.oid = m.objid)
           WHEN 'pg_namespace'::regclass THEN
               (SELECT 'acl=' || coalesce(n.nspacl::text, '') FROM pg_namespace n WHERE n.oid = m.objid)
           ELSE ''
       END
FROM members m
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname IN ('sluice', 'auth')
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace IN ('sluice'::regnamespace, 'auth'::regnamespace)
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger
WHERE NOT tgisinternal AND tgrelid::regclass::text ~ '^(sluice|auth)\.'
UNION ALL
SELECT 'schema ' || nspname || ' acl=' || coalesce(nspacl::text, '')
FROM pg_namespace WHERE nspname IN ('sluice', 'auth')
UNION ALL
SELECT 'dumped ' || u.config::regclass || ' ' || coalesce(u.condition, '')
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(config, condition)
WHERE e.extname = 'sluice'
UNION ALL
SELECT 'collection ' || relid::text || ' ' || realtime || ' ' || history || ' ' || pk_columns::text
FROM sluice.collections
ORDER BY 1
SQL
)

current=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n 1)
fresh_db=sluice_upgrade_fresh
psql "$admin_url" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $fresh_db" -c "CREATE DATABASE $fresh_db"
psql "${admin_url%/*}/$fresh_db" -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION sluice"
expected=$(psql "${admin_url%/*}/$fresh_db" -qXAt -v ON_ERROR_STOP=1 -c "$FINGERPRINT")

checked=0
# From every earlier release (each has its install script in sql/); Postgres chains the upgrade
# scripts it needs.
for install in "$REPO"/sql/sluice--*.sql; do
    from=$(basename "$install" .sql | sed 's/^sluice--//')
    case $from in *--* | "$current") continue ;; esac
    db=sluice_upgrade_from_${from//./_}
    psql "$admin_url" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    psql "${admin_url%/*}/$db" -qX -v ON_ERROR_STOP=1 \
        -c "CREATE EXTENSION sluice VERSION '$from'" -c "ALTER EXTENSION sluice UPDATE TO '$current'"
    actual=$(psql "${admin_url%/*}/$db" -qXAt -v ON_ERROR_STOP=1 -c "$FINGERPRINT")
    if [ "$actual" != "$expected" ]; then
        diff <(echo "$expected") <(echo "$actual") | head -40 || true
        echo "check-upgrade: $from updated to $current differs from a fresh $current install (< fresh, > updated)" >&2
        exit 1
    fi
    echo "check-upgrade: $from -> $current matches a fresh install ($(echo "$expected" | wc -l) objects compared)"
    psql "$admin_url" -qX -c "DROP DATABASE $db"
    checked=$((checked + 1))
done
psql "$admin_url" -qX -c "DROP DATABASE $fresh_db"
[ "$checked" -gt 0 ] || echo "check-upgrade: no earlier release to upgrade from"
