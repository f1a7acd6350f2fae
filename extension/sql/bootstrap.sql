-- Sluice bootstrap: roles, schemas and tables. Runs before any function is created.

-- Supabase's roles, created only when missing so an existing cluster keeps its own settings.
-- `authenticator` is the sidecar's login role: it owns nothing and may only switch to the others
-- (SET LOCAL ROLE inside each request's transaction, as PostgREST does). It is created NOLOGIN;
-- give it a password with: ALTER ROLE authenticator LOGIN PASSWORD '...';
DO $roles$
DECLARE
    wanted text[][] := ARRAY[
        ['anon', 'NOLOGIN NOINHERIT'],
        ['authenticated', 'NOLOGIN NOINHERIT'],
        ['service_role', 'NOLOGIN NOINHERIT BYPASSRLS'],
        ['authenticator', 'NOLOGIN NOINHERIT']];
    i int;
BEGIN
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted[i][1]) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s', wanted[i][1], wanted[i][2]);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                -- Created meanwhile by CREATE EXTENSION in another database: roles are
                -- cluster-wide.
                NULL;
            END;
        END IF;
    END LOOP;
END
$roles$;
GRANT anon, authenticated, service_role TO authenticator;

-- Supabase's statement timeouts for the request roles (anon 3 s, authenticated 8 s), so that no
-- request holds a backend for long. Set only where the role has no statement_timeout of its own
-- (for all databases), so `ALTER ROLE anon SET statement_timeout = ...` stays the operator's
-- choice, also across upgrades and in a second database of the cluster. The sidecar applies a
-- role's setting to its requests (SET ROLE alone does not).
DO $timeouts$
DECLARE
    wanted text[][] := ARRAY[['anon', '3s'], ['authenticated', '8s']];
    i int;
BEGIN
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
            CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting)
            WHERE r.rolname = wanted[i][1] AND s.setdatabase = 0
              AND c.setting LIKE 'statement\_timeout=%'
        ) THEN
            EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', wanted[i][1], wanted[i][2]);
        END IF;
    END LOOP;
END
$timeouts$;

CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA sluice TO anon, authenticated, service_role;
-- The sidecar's login calls sluice.run_request and sluice.policies_admit (granted to it alone) and reads
-- sluice.collections (whether a subscribed table has realtime on).
GRANT USAGE ON SCHEMA sluice TO authenticator;

-- The tables Sluice tracks and what is switched on for each.
CREATE TABLE sluice.collections (
    relid regclass PRIMARY KEY,
    realtime boolean NOT NULL DEFAULT false,
    history boolean NOT NULL DEFAULT false,
    pk_columns text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON sluice.collections TO PUBLIC;

-- The durable change log. A row is written by the change trigger with `position` NULL; the
-- position is assigned when its transaction commits (see extension/src/changelog.rs for why a
-- plain bigserial is not a safe resume cursor). Readers only ever see numbered rows.
CREATE SEQUENCE sluice.change_positions AS bigint;
CREATE TABLE sluice.changes (
    position bigint,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    seq bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    schema_name text NOT NULL,
    table_name text NOT NULL,
    op text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    pk jsonb,
    record jsonb,
    old_record jsonb,
    actor uuid
);
CREATE UNIQUE INDEX changes_position_key ON sluice.changes (position) WHERE position IS NOT NULL;
CREATE INDEX changes_pending_idx ON sluice.changes (xid, seq) WHERE position IS NULL;
-- Readers of the whole log see every table's rows, so only service_role (and the owner) may.
GRANT SELECT ON sluice.changes TO service_role;

-- How far pruning has gone: a resume cursor below this can no longer be served completely. At most
-- one row, written by the first prune (no row: nothing pruned yet). Not seeded, so that pg_dump can
-- keep the row as it is and a restore into a fresh install does not meet a seeded duplicate.
CREATE TABLE sluice.change_log_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_through bigint NOT NULL DEFAULT 0
);
GRANT SELECT ON sluice.change_log_state TO service_role;

-- Row history: one numbered version per change of a row of a table with history on.
-- `relid` is a regclass, not an oid, so that pg_dump writes the table's name and a restore (where
-- the table has another oid) still finds the row's versions.
CREATE TABLE sluice.history_entries (
    relid regclass NOT NULL,
    pk jsonb NOT NULL,
    version int NOT NULL,
    op text NOT NULL,
    record jsonb,
    actor uuid,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (relid, pk, version)
);

-- Backups: pg_dump leaves out the rows of an extension's tables unless they are marked as
-- configuration tables. Everything here is user data; the one row the extension seeds itself (the
-- registration of auth.users, made by auth_tables.sql) is filtered out, since a restore runs
-- CREATE EXTENSION first, which seeds it again. The position sequence is marked too, so that
-- positions after a restore continue above the restored ones (resume cursors stay valid).
SELECT pg_catalog.pg_extension_config_dump('sluice.collections', $$WHERE relid <> 'auth.users'::regclass$$);
SELECT pg_catalog.pg_extension_config_dump('sluice.changes', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.change_positions', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.change_log_state', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.history_entries', '');
