-- Sluice 0.3.0 -> 0.4.0. Each section below names the change it carries; the definitions are the same
-- as the extension's source (extension/sql/*.sql and the Rust functions); checked by
-- scripts/check-upgrade.sh.
\echo Use "ALTER EXTENSION sluice UPDATE TO '0.4.0'" to load this file. \quit

-- ============================================================================================
-- Backups, request-role defaults and sluice.planned_rows
-- ============================================================================================

-- Supabase's statement timeouts for the request roles, where the role has none of its own
-- (as extension/sql/bootstrap.sql).
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

-- The pruning state is no longer seeded (a row appears at the first prune), so that a restore
-- into a fresh install does not meet a seeded duplicate; the seeded row of an unpruned log goes.
DELETE FROM sluice.change_log_state WHERE pruned_through = 0;
CREATE OR REPLACE FUNCTION sluice.prune_changes(older_than interval)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    pruned bigint;
    highest bigint;
BEGIN
    WITH gone AS (
        DELETE FROM sluice.changes
        WHERE position IS NOT NULL AND at < now() - older_than
        RETURNING position
    )
    SELECT count(*), max(position) INTO pruned, highest FROM gone;
    IF highest IS NOT NULL THEN
        INSERT INTO sluice.change_log_state AS s (singleton, pruned_through) VALUES (true, highest)
        ON CONFLICT (singleton) DO UPDATE SET pruned_through = greatest(s.pruned_through, EXCLUDED.pruned_through);
    END IF;
    RETURN pruned;
END
$$;

-- History names its table by regclass, so that pg_dump writes the name and a restore (where the
-- table has another oid) keeps each row's versions.
ALTER TABLE sluice.history_entries ALTER COLUMN relid TYPE regclass;

-- Backups: the rows of every table holding user data, and the sequences, go into pg_dump; the
-- registration of auth.users is seeded by CREATE EXTENSION itself, so it is left out.
SELECT pg_catalog.pg_extension_config_dump('sluice.collections', $$WHERE relid <> 'auth.users'::regclass$$);
SELECT pg_catalog.pg_extension_config_dump('sluice.changes', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.change_positions', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.change_log_state', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.history_entries', '');
SELECT pg_catalog.pg_extension_config_dump('auth.users', '');
SELECT pg_catalog.pg_extension_config_dump('auth.passwords', '');
SELECT pg_catalog.pg_extension_config_dump('auth.sessions', '');
SELECT pg_catalog.pg_extension_config_dump('auth.refresh_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('auth.refresh_tokens_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('auth.one_time_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mail_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mail_outbox_id_seq', '');

-- sluice.planned_rows: the same C function, which now refuses sessions other than authenticator's
-- (or a superuser's) and anything but one SELECT; only its comment changes here.
COMMENT ON FUNCTION sluice.planned_rows(text, text[]) IS 'The planner''s row estimate for one SELECT (Prefer: count=planned); in sessions of authenticator only.';
-- ----------------------------------------------------------------------------------------------
-- Errors that keep their SQLSTATE (issue 16 point 1). sluice.run_request re-raises the statement's error
-- as it was raised (extension/src/rethrow.rs); its SQL definition, C symbol included, is unchanged.
-- New: sluice.raise_error, through which the sidecar's request guards fail with codes of their own.
-- Same text as extension/sql/raise_error.sql.
-- sluice.raise_error: raises an ERROR with the given SQLSTATE, message, detail and hint (NULL: none).
-- The sidecar's generated SQL calls it for the guards PostgREST checks after a statement ("exactly one
-- row" for a single-object write, `Prefer: max-affected`), so that the statement itself fails with a code
-- of its own and its write is undone: no cast error provoked, no message text read back. It returns
-- text only so that it can stand in any expression (`sluice.raise_error(...)::int8`); it never returns.
CREATE FUNCTION sluice.raise_error(error_code text, error_message text, error_detail text DEFAULT NULL, error_hint text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF error_detail IS NULL AND error_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = error_code, MESSAGE = error_message;
    ELSIF error_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = error_code, MESSAGE = error_message, DETAIL = error_detail;
    ELSIF error_detail IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = error_code, MESSAGE = error_message, HINT = error_hint;
    ELSE
        RAISE EXCEPTION USING ERRCODE = error_code, MESSAGE = error_message, DETAIL = error_detail, HINT = error_hint;
    END IF;
END
$$;
COMMENT ON FUNCTION sluice.raise_error(text, text, text, text) IS 'Raises an ERROR with this SQLSTATE, message, detail and hint (the sidecar''s request guards).';
-- The request roles run the generated SQL; raising an error of one's choosing grants nothing.
REVOKE ALL ON FUNCTION sluice.raise_error(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sluice.raise_error(text, text, text, text) TO anon, authenticated, service_role;

-- ============================================================================================
-- Supabase seeds and user exports: GoTrue's auth.users columns, auth.identities, bcrypt hashes
-- moved to auth.passwords (extension/sql/auth_import.sql)
-- ============================================================================================

-- Users written straight into `auth.users`, as Supabase seed files and user exports write them:
-- GoTrue's columns, with a bcrypt hash (pgcrypto's `crypt(pw, gen_salt('bf'))`) in
-- `encrypted_password`. The sidecar verifies such a hash once and rehashes the password to
-- Argon2id at the first sign-in (`auth.sluice_rehash_password`).
--
-- `auth.users` is tracked by the change log, which records whole rows, so a hash never stays in
-- it: a BEFORE trigger takes the hash out of the row (the column is always NULL at rest, a CHECK
-- makes sure) and an AFTER trigger stores it in `auth.passwords`, once the row exists for the
-- foreign key; in between it waits in a transaction-local setting named after the user's id.
-- GoTrue's token columns are cleared the same way: Sluice keeps one-time tokens (hashed) in
-- `auth.one_time_tokens`, and a seed's '' tokens mean nothing.

ALTER TABLE auth.users
    ADD COLUMN instance_id uuid,
    ADD COLUMN encrypted_password text CHECK (encrypted_password IS NULL),
    ADD COLUMN invited_at timestamptz,
    ADD COLUMN confirmation_token text,
    ADD COLUMN recovery_token text,
    ADD COLUMN email_change_token_new text,
    ADD COLUMN email_change_token_current text,
    ADD COLUMN email_change_confirm_status smallint DEFAULT 0,
    ADD COLUMN reauthentication_token text,
    ADD COLUMN reauthentication_sent_at timestamptz,
    ADD COLUMN phone text,
    ADD COLUMN phone_confirmed_at timestamptz,
    ADD COLUMN phone_change text,
    ADD COLUMN phone_change_token text,
    ADD COLUMN phone_change_sent_at timestamptz,
    ADD COLUMN confirmed_at timestamptz
        GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
    ADD COLUMN is_super_admin boolean,
    ADD COLUMN is_sso_user boolean NOT NULL DEFAULT false,
    ADD COLUMN deleted_at timestamptz;

-- GoTrue's identities, which seeds insert beside their users; OAuth/OIDC sign-in finds and links
-- users through them (auth.sluice_oauth_user), and the user JSON lists them.
CREATE TABLE auth.identities (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider_id text NOT NULL,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    identity_data jsonb NOT NULL,
    provider text NOT NULL,
    last_sign_in_at timestamptz,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    email text GENERATED ALWAYS AS (lower(identity_data ->> 'email')) STORED,
    UNIQUE (provider_id, provider)
);
CREATE INDEX identities_user_id_idx ON auth.identities (user_id);
SELECT pg_catalog.pg_extension_config_dump('auth.identities', '');

CREATE FUNCTION auth.sluice_users_take_password()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.encrypted_password IS NOT NULL AND NEW.encrypted_password <> '' THEN
        IF NEW.encrypted_password !~ '^\$(2[aby]\$|argon2id\$)' THEN
            RAISE EXCEPTION 'auth.users.encrypted_password must be a bcrypt or Argon2id hash'
                USING ERRCODE = '22023',
                      HINT = 'Write crypt(password, gen_salt(''bf'')) (pgcrypto), as Supabase seeds do.';
        END IF;
        PERFORM set_config('sluice.pw_' || replace(NEW.id::text, '-', ''), NEW.encrypted_password, true);
    END IF;
    NEW.encrypted_password := NULL;
    NEW.confirmation_token := NULL;
    NEW.recovery_token := NULL;
    NEW.email_change_token_new := NULL;
    NEW.email_change_token_current := NULL;
    NEW.reauthentication_token := NULL;
    NEW.phone_change_token := NULL;
    NEW.email := lower(NEW.email);
    NEW.raw_app_meta_data := coalesce(NEW.raw_app_meta_data, '{}');
    NEW.raw_user_meta_data := coalesce(NEW.raw_user_meta_data, '{}');
    RETURN NEW;
END
$$;

CREATE FUNCTION auth.sluice_users_store_password()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    setting text := 'sluice.pw_' || replace(NEW.id::text, '-', '');
    hash text := current_setting(setting, true);
BEGIN
    IF hash IS NOT NULL AND hash <> '' THEN
        PERFORM set_config(setting, '', true);
        INSERT INTO auth.passwords AS p (user_id, hash) VALUES (NEW.id, hash)
        ON CONFLICT ON CONSTRAINT passwords_pkey DO UPDATE SET hash = EXCLUDED.hash, updated_at = now();
    END IF;
    RETURN NULL;
END
$$;

-- Named to run before any other BEFORE trigger on the table (they fire in name order).
CREATE TRIGGER a_sluice_take_password BEFORE INSERT OR UPDATE ON auth.users
    FOR EACH ROW EXECUTE FUNCTION auth.sluice_users_take_password();
CREATE TRIGGER sluice_store_password AFTER INSERT OR UPDATE ON auth.users
    FOR EACH ROW EXECUTE FUNCTION auth.sluice_users_store_password();

-- After a bcrypt hash verified at sign-in: the Argon2id hash replaces it, unless the password
-- changed meanwhile. Returns whether it did.
CREATE FUNCTION auth.sluice_rehash_password(user_id uuid, old_hash text, new_hash text)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH done AS (
        UPDATE auth.passwords AS p SET hash = $3, updated_at = now()
        WHERE p.user_id = $1 AND p.hash = $2
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM done)
$$;

REVOKE ALL ON FUNCTION auth.sluice_users_take_password() FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.sluice_users_store_password() FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.sluice_rehash_password(uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sluice_rehash_password(uuid, text, text) TO authenticator;
-- ----------------------------------------------------------------------------------------------
-- Storage (issue 11): schema storage with Supabase Storage's buckets and objects under RLS, the policy
-- helpers storage.foldername/filename/extension/operation, and the sidecar's two SECURITY DEFINER
-- lookups. Same text as extension/sql/storage.sql.
CREATE SCHEMA IF NOT EXISTS storage;
GRANT USAGE ON SCHEMA storage TO anon, authenticated, service_role;

CREATE TABLE storage.buckets (
    id text PRIMARY KEY,
    name text NOT NULL,
    -- `owner` is Supabase's deprecated uuid column; `owner_id` holds the `sub` claim as text.
    owner uuid,
    owner_id text,
    public boolean NOT NULL DEFAULT false,
    avif_autodetection boolean DEFAULT false,
    file_size_limit bigint CHECK (file_size_limit IS NULL OR file_size_limit >= 0),
    allowed_mime_types text[],
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);
CREATE UNIQUE INDEX bname ON storage.buckets (name);

CREATE TABLE storage.objects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    bucket_id text REFERENCES storage.buckets (id),
    name text,
    owner uuid,
    owner_id text,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    last_accessed_at timestamptz DEFAULT now(),
    -- eTag, size, mimetype, cacheControl, lastModified, contentLength, httpStatusCode.
    metadata jsonb,
    path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
    -- The version names the bytes in the backend (`<bucket>/<name>/<version>`): a new upload writes
    -- a new version and the row points at it only once its transaction commits.
    version text,
    user_metadata jsonb
);
CREATE UNIQUE INDEX bucketid_objname ON storage.objects (bucket_id, name);
CREATE INDEX name_prefix_search ON storage.objects (name text_pattern_ops);

-- Single-use signed upload URLs: a token's id is recorded when the upload it signs commits.
CREATE TABLE storage.sluice_used_upload_tokens (
    token_id uuid PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.sluice_used_upload_tokens ENABLE ROW LEVEL SECURITY;

-- Privileges as in Supabase, so that policies alone decide; with RLS on and no policy, nothing.
GRANT SELECT, INSERT, UPDATE, DELETE ON storage.buckets TO anon, authenticated, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON storage.objects TO anon, authenticated, service_role;
-- Only signed uploads (run as service_role) record their token.
GRANT SELECT, INSERT, DELETE ON storage.sluice_used_upload_tokens TO service_role;

-- Backups: buckets and file metadata are user data.
SELECT pg_catalog.pg_extension_config_dump('storage.buckets', '');
SELECT pg_catalog.pg_extension_config_dump('storage.objects', '');
SELECT pg_catalog.pg_extension_config_dump('storage.sluice_used_upload_tokens', '');

-- Resumable uploads (TUS): an upload's progress, so that any sidecar can continue it. Its bytes
-- are parts in the backend under `tus~uploads/<id>/`; reached by the sidecar as service_role only,
-- after it has checked that the caller is the upload's creator.
CREATE TABLE storage.sluice_uploads (
    id uuid PRIMARY KEY,
    bucket_id text NOT NULL REFERENCES storage.buckets (id) ON DELETE CASCADE,
    name text NOT NULL,
    role text NOT NULL,
    owner_id text,
    upload_length bigint NOT NULL CHECK (upload_length >= 0),
    upload_offset bigint NOT NULL DEFAULT 0 CHECK (upload_offset BETWEEN 0 AND upload_length),
    parts integer NOT NULL DEFAULT 0,
    upsert boolean NOT NULL DEFAULT false,
    content_type text NOT NULL,
    cache_control text NOT NULL,
    user_metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE storage.sluice_uploads ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON storage.sluice_uploads TO service_role;
SELECT pg_catalog.pg_extension_config_dump('storage.sluice_uploads', '');

-- Policy helpers, with Supabase's names and meaning.
-- The folders of a name: 'a/b/c.png' -> {a,b}.
CREATE FUNCTION storage.foldername(name text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN cardinality(p) > 1 THEN p[1:cardinality(p) - 1] ELSE '{}'::text[] END
    FROM string_to_array(name, '/') AS p
$$;

-- The last segment of a name: 'a/b/c.png' -> 'c.png'.
CREATE FUNCTION storage.filename(name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p[cardinality(p)] FROM string_to_array(name, '/') AS p
$$;

-- What follows the last dot of the file name: 'a/b/c.tar.gz' -> 'gz'. As in Supabase, a name
-- without a dot gives the whole file name.
CREATE FUNCTION storage.extension(name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT reverse(split_part(reverse(p[cardinality(p)]), '.', 1)) FROM string_to_array(name, '/') AS p
$$;

-- The operation the sidecar is performing for this request (e.g. 'storage.object.upload'), set
-- transaction-locally before the metadata statement; NULL outside a storage request.
CREATE FUNCTION storage.operation()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nullif(current_setting('storage.operation', true), '')
$$;

GRANT EXECUTE ON FUNCTION storage.foldername(text), storage.filename(text), storage.extension(text),
    storage.operation() TO anon, authenticated, service_role;

-- A bucket's upload rules (size limit, allowed types) and whether it is public, whatever the
-- caller's policies on storage.buckets: an upload must be checked against them even by a caller who
-- may not read the bucket's row. Reveals no more than a refused upload would.
CREATE FUNCTION storage.sluice_bucket_rules(bucket text)
RETURNS TABLE (public boolean, file_size_limit bigint, allowed_mime_types text[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.public, b.file_size_limit, b.allowed_mime_types FROM storage.buckets b WHERE b.id = bucket
$$;

-- An object of a public bucket, for `/object/public/...`: anyone may read a public bucket's files
-- (as in Supabase, public buckets skip the SELECT policy for downloads); nothing of private ones.
CREATE FUNCTION storage.sluice_public_object(bucket text, object_name text)
RETURNS TABLE (version text, metadata jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.version, o.metadata
    FROM storage.objects o JOIN storage.buckets b ON b.id = o.bucket_id
    WHERE b.public AND o.bucket_id = bucket AND o.name = object_name
$$;

REVOKE ALL ON FUNCTION storage.sluice_bucket_rules(text), storage.sluice_public_object(text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storage.sluice_bucket_rules(text), storage.sluice_public_object(text, text)
    TO anon, authenticated, service_role;

-- ============================================================================================
-- Webhooks (issue 12): definitions, secrets, cursors, the delivery log and the functions that manage
-- them. Same text as extension/sql/webhooks.sql.
-- ============================================================================================
-- Webhooks (issue 12): defined here, delivered by the sidecars from the change log.
--
-- A webhook names tables and events; the sidecar that leads it (one per webhook, by an advisory lock)
-- reads the change log after the webhook's cursor and POSTs each matching event, signed as Standard
-- Webhooks says. The cursor moves only after a 2xx (or when the event is given up as dead), so delivery
-- is at least once and in position order per webhook. Every attempt is logged in
-- sluice.webhook_deliveries.
--
-- Access model. service_role (and superusers) manage webhooks through the functions below (SECURITY
-- DEFINER, executable by service_role only) and may read the definitions, cursors and delivery log. The
-- signing secrets live apart, in sluice.webhook_secrets, which is granted to authenticator (the sidecar's
-- login role) alone and is not tracked by the change log: a secret is seen once, when
-- create_webhook or rotate_webhook_secret returns it.

CREATE TABLE sluice.webhooks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_-]{1,63}$'),
    target text NOT NULL CHECK (target ~* '^https?://[^[:space:]]+$'),
    tables regclass[] NOT NULL CHECK (cardinality(tables) > 0),
    events text[] NOT NULL
        CHECK (cardinality(events) > 0 AND events <@ '{INSERT,UPDATE,DELETE,TRUNCATE}'::text[]),
    headers jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    -- realtime's column filter: `column=op.value`, op one of eq, neq, lt, lte, gt, gte, in.
    filter text CHECK (filter ~ '^[^=]+=(eq|neq|lt|lte|gt|gte|in)\..*$'),
    timeout interval NOT NULL DEFAULT '10 s' CHECK (timeout > '0' AND timeout <= '5 min'),
    max_attempts int NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 100),
    -- The first retry waits about this long; each next one twice as long (jitter added), at most 1 hour.
    retry_delay interval NOT NULL DEFAULT '1 s' CHECK (retry_delay >= '0' AND retry_delay <= '1 hour'),
    -- After a dead delivery: go on with the next event, or pause (disable) the webhook.
    on_dead text NOT NULL DEFAULT 'continue' CHECK (on_dead IN ('continue', 'pause')),
    active boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Standard Webhooks secrets (`whsec_` + base64 of the key). During a rotation the old secret stays
-- valid until `expires_at`, and each delivery carries one signature per valid secret.
CREATE TABLE sluice.webhook_secrets (
    webhook_id bigint NOT NULL REFERENCES sluice.webhooks (id) ON DELETE CASCADE,
    secret text NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/]+={0,2}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    PRIMARY KEY (webhook_id, secret)
);

-- Each webhook's place in the change log: events up to `position` are handled. `attempts` failed
-- attempts were made at the next event (so a restart goes on counting), the next not before
-- `next_attempt_at`. `generation` changes when the cursor is moved by hand (retry_webhook), so a
-- sidecar delivering meanwhile does not move it back.
CREATE TABLE sluice.webhook_cursors (
    webhook_id bigint PRIMARY KEY REFERENCES sluice.webhooks (id) ON DELETE CASCADE,
    position bigint NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    generation bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every attempt: `succeeded` (2xx), `failed` (retried later), `dead` (given up). `pending` is accepted
-- for the issue's fixed vocabulary; this version's dispatcher writes a row when an attempt has ended.
CREATE TABLE sluice.webhook_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook text NOT NULL,
    position bigint NOT NULL,
    attempt int NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    response_status int,
    error text,
    duration_ms int,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_webhook_position_idx ON sluice.webhook_deliveries (webhook, position);
CREATE INDEX webhook_deliveries_at_idx ON sluice.webhook_deliveries (at);

REVOKE ALL ON sluice.webhooks, sluice.webhook_secrets, sluice.webhook_cursors, sluice.webhook_deliveries
    FROM PUBLIC;
GRANT SELECT ON sluice.webhooks, sluice.webhook_cursors, sluice.webhook_deliveries TO service_role;
-- The dispatcher (the sidecar's login role): reads definitions and secrets, moves cursors, logs attempts,
-- and disables a webhook whose receiver answered 410 or that pauses after a dead delivery.
GRANT SELECT ON sluice.webhooks, sluice.webhook_secrets, sluice.webhook_cursors TO authenticator;
GRANT UPDATE (active, disabled_reason, updated_at) ON sluice.webhooks TO authenticator;
GRANT UPDATE (position, attempts, next_attempt_at, updated_at) ON sluice.webhook_cursors TO authenticator;
GRANT INSERT ON sluice.webhook_deliveries TO authenticator;

-- Backups: definitions, secrets and cursors are the user's; the log too (it is pruned by retention).
SELECT pg_catalog.pg_extension_config_dump('sluice.webhooks', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhooks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhook_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhook_cursors', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhook_deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.webhook_deliveries_id_seq', '');

-- A new secret: `whsec_` and 32 random bytes (two random UUIDs, 244 random bits), base64.
CREATE FUNCTION sluice.new_webhook_secret()
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64')
$$;

-- A secret given by the caller must be one that Standard Webhooks libraries accept.
CREATE FUNCTION sluice.checked_webhook_secret(secret text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key bytea;
BEGIN
    IF secret IS NULL OR secret !~ '^whsec_[A-Za-z0-9+/]+={0,2}$' THEN
        RAISE EXCEPTION 'a webhook secret is "whsec_" followed by base64'
            USING ERRCODE = '22023', HINT = 'Leave it out and one is made for you.';
    END IF;
    BEGIN
        key := decode(substr(secret, 7), 'base64');
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'the webhook secret is not valid base64' USING ERRCODE = '22023';
    END;
    IF length(key) < 16 OR length(key) > 64 THEN
        RAISE EXCEPTION 'the webhook secret''s key must be 16 to 64 bytes (it is %)', length(key)
            USING ERRCODE = '22023';
    END IF;
    RETURN secret;
END
$$;

-- The tables a webhook may watch: a table already in the change log (its events are readable by
-- service_role there already, auth.users among them), or one service_role may SELECT; a superuser may
-- name any. Sluice's own tables never. Watching a table puts its changes in the log.
CREATE FUNCTION sluice.checked_webhook_tables(tables regclass[])
RETURNS regclass[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    superuser boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = session_user);
BEGIN
    IF tables IS NULL OR cardinality(tables) = 0 THEN
        RAISE EXCEPTION 'a webhook watches at least one table' USING ERRCODE = '22023';
    END IF;
    FOREACH t IN ARRAY tables LOOP
        IF (SELECT relnamespace = 'sluice'::regnamespace FROM pg_class WHERE oid = t) THEN
            RAISE EXCEPTION 'a webhook cannot watch %: it is one of Sluice''s own tables', t
                USING ERRCODE = '42501';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM sluice.collections c WHERE c.relid = t AND c.realtime) THEN
            IF NOT superuser AND NOT has_table_privilege('service_role', t, 'SELECT') THEN
                RAISE EXCEPTION 'a webhook cannot watch %: service_role may not read it', t
                    USING ERRCODE = '42501';
            END IF;
            PERFORM sluice.enable_realtime(t);
        END IF;
    END LOOP;
    RETURN tables;
END
$$;

CREATE FUNCTION sluice.checked_webhook_events(events text[])
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted text[] := (SELECT array_agg(DISTINCT upper(e)) FROM unnest(events) AS e);
BEGIN
    IF wanted IS NULL OR NOT wanted <@ '{INSERT,UPDATE,DELETE,TRUNCATE}'::text[] THEN
        RAISE EXCEPTION 'webhook events are INSERT, UPDATE, DELETE and TRUNCATE (got %)', events
            USING ERRCODE = '22023';
    END IF;
    RETURN wanted;
END
$$;

-- The target URL and the filter, checked before they reach the table's constraints, with messages that
-- say what is expected.
CREATE FUNCTION sluice.checked_webhook_target(target text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target IS NULL OR target !~* '^https?://[^[:space:]]+$' THEN
        RAISE EXCEPTION 'a webhook target is an http:// or https:// URL (got %)', coalesce(quote_literal(target), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    RETURN target;
END
$$;

CREATE FUNCTION sluice.checked_webhook_filter(filter text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF filter IS NOT NULL AND filter !~ '^[^=]+=(eq|neq|lt|lte|gt|gte|in)\..*$' THEN
        RAISE EXCEPTION 'a webhook filter is realtime''s column=op.value, op one of eq, neq, lt, lte, gt, gte, in (got %)',
            quote_literal(filter) USING ERRCODE = '22023';
    END IF;
    RETURN filter;
END
$$;

-- A webhook by name, locked, or an error that says so.
CREATE FUNCTION sluice.webhook_named(webhook_name text)
RETURNS sluice.webhooks
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hook sluice.webhooks;
BEGIN
    SELECT * INTO hook FROM sluice.webhooks w WHERE w.name = webhook_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no webhook named "%"', webhook_name USING ERRCODE = '42704';
    END IF;
    RETURN hook;
END
$$;

CREATE FUNCTION sluice.create_webhook(
    name text,
    target text,
    tables regclass[],
    events text[] DEFAULT '{INSERT,UPDATE,DELETE}',
    secret text DEFAULT NULL,
    headers jsonb DEFAULT '{}',
    filter text DEFAULT NULL,
    timeout interval DEFAULT '10 s',
    max_attempts int DEFAULT 10,
    retry_delay interval DEFAULT '1 s',
    on_dead text DEFAULT 'continue')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    created bigint;
    signing text := CASE WHEN secret IS NULL THEN sluice.new_webhook_secret()
                         ELSE sluice.checked_webhook_secret(secret) END;
BEGIN
    IF EXISTS (SELECT 1 FROM sluice.webhooks w WHERE w.name = create_webhook.name) THEN
        RAISE EXCEPTION 'a webhook named "%" exists', create_webhook.name
            USING ERRCODE = '42710', HINT = 'Use sluice.alter_webhook, or sluice.drop_webhook first.';
    END IF;
    INSERT INTO sluice.webhooks AS w (name, target, tables, events, headers, filter, timeout, max_attempts,
                                     retry_delay, on_dead)
    VALUES (create_webhook.name, sluice.checked_webhook_target(create_webhook.target),
            sluice.checked_webhook_tables(create_webhook.tables),
            sluice.checked_webhook_events(create_webhook.events), coalesce(create_webhook.headers, '{}'),
            sluice.checked_webhook_filter(create_webhook.filter), create_webhook.timeout, create_webhook.max_attempts,
            create_webhook.retry_delay, create_webhook.on_dead)
    RETURNING w.id INTO created;
    INSERT INTO sluice.webhook_secrets (webhook_id, secret) VALUES (created, signing);
    -- Events committed from now on.
    INSERT INTO sluice.webhook_cursors (webhook_id, position)
    SELECT created, coalesce(max(c.position), 0) FROM sluice.changes c WHERE c.position IS NOT NULL;
    PERFORM pg_notify('sluice_webhooks', create_webhook.name);
    RETURN signing;
END
$$;
COMMENT ON FUNCTION sluice.create_webhook(text, text, regclass[], text[], text, jsonb, text, interval, int, interval, text)
    IS 'Creates a webhook delivering the changes of these tables; returns its signing secret (whsec_...).';

-- Changes what is given (NULL: unchanged).
CREATE FUNCTION sluice.alter_webhook(
    name text,
    target text DEFAULT NULL,
    tables regclass[] DEFAULT NULL,
    events text[] DEFAULT NULL,
    headers jsonb DEFAULT NULL,
    filter text DEFAULT NULL,
    timeout interval DEFAULT NULL,
    max_attempts int DEFAULT NULL,
    retry_delay interval DEFAULT NULL,
    on_dead text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
BEGIN
    UPDATE sluice.webhooks SET
        target = CASE WHEN alter_webhook.target IS NULL THEN w.target
                      ELSE sluice.checked_webhook_target(alter_webhook.target) END,
        tables = CASE WHEN alter_webhook.tables IS NULL THEN w.tables
                      ELSE sluice.checked_webhook_tables(alter_webhook.tables) END,
        events = CASE WHEN alter_webhook.events IS NULL THEN w.events
                      ELSE sluice.checked_webhook_events(alter_webhook.events) END,
        headers = coalesce(alter_webhook.headers, w.headers),
        filter = coalesce(sluice.checked_webhook_filter(alter_webhook.filter), w.filter),
        timeout = coalesce(alter_webhook.timeout, w.timeout),
        max_attempts = coalesce(alter_webhook.max_attempts, w.max_attempts),
        retry_delay = coalesce(alter_webhook.retry_delay, w.retry_delay),
        on_dead = coalesce(alter_webhook.on_dead, w.on_dead),
        updated_at = now()
    WHERE id = w.id;
    PERFORM pg_notify('sluice_webhooks', w.name);
END
$$;

CREATE FUNCTION sluice.drop_webhook(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM sluice.webhooks w WHERE w.name = drop_webhook.name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('sluice_webhooks', drop_webhook.name);
    RETURN true;
END
$$;

CREATE FUNCTION sluice.enable_webhook(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
BEGIN
    UPDATE sluice.webhooks SET active = true, disabled_reason = NULL, updated_at = now() WHERE id = w.id;
    PERFORM pg_notify('sluice_webhooks', w.name);
END
$$;

CREATE FUNCTION sluice.disable_webhook(name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
BEGIN
    UPDATE sluice.webhooks SET active = false, disabled_reason = 'disabled by ' || session_user,
                               updated_at = now()
    WHERE id = w.id;
    PERFORM pg_notify('sluice_webhooks', w.name);
END
$$;

-- Delivers again from `from_position` (inclusive), or, without it, from the earliest dead delivery
-- that was not delivered since; events after it are delivered again too, each with its webhook-id of
-- the first time, so receivers can deduplicate. Enables the webhook. Returns the position delivery
-- resumes at (NULL: nothing to retry).
CREATE FUNCTION sluice.retry_webhook(name text, from_position bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
    start bigint := from_position;
    pruned bigint := coalesce((SELECT pruned_through FROM sluice.change_log_state), 0);
BEGIN
    IF start IS NULL THEN
        SELECT min(d.position) INTO start
        FROM sluice.webhook_deliveries d
        WHERE d.webhook = w.name AND d.status = 'dead' AND d.at >= w.created_at
          AND NOT EXISTS (SELECT 1 FROM sluice.webhook_deliveries s
                          WHERE s.webhook = d.webhook AND s.position = d.position
                            AND s.status = 'succeeded' AND s.at > d.at);
        IF start IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    IF start < 1 THEN
        RAISE EXCEPTION 'change log positions start at 1' USING ERRCODE = '22023';
    END IF;
    IF start <= pruned THEN
        RAISE EXCEPTION 'the change log was pruned through position %', pruned USING ERRCODE = '22023',
            HINT = format('Retry from position %s or later.', pruned + 1);
    END IF;
    UPDATE sluice.webhook_cursors
    SET position = start - 1, attempts = 0, next_attempt_at = NULL, generation = generation + 1,
        updated_at = now()
    WHERE webhook_id = w.id;
    UPDATE sluice.webhooks SET active = true, disabled_reason = NULL, updated_at = now() WHERE id = w.id;
    PERFORM pg_notify('sluice_webhooks', w.name);
    RETURN start;
END
$$;

-- A new signing secret (given, or made); the others stay valid for `keep_old`, and each delivery
-- meanwhile carries a signature for every valid secret. Returns the new secret.
CREATE FUNCTION sluice.rotate_webhook_secret(name text, secret text DEFAULT NULL, keep_old interval DEFAULT '24 hours')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w sluice.webhooks := sluice.webhook_named(name);
    signing text := CASE WHEN secret IS NULL THEN sluice.new_webhook_secret()
                         ELSE sluice.checked_webhook_secret(secret) END;
BEGIN
    DELETE FROM sluice.webhook_secrets s WHERE s.webhook_id = w.id AND s.expires_at <= now();
    UPDATE sluice.webhook_secrets s SET expires_at = least(s.expires_at, now() + keep_old)
    WHERE s.webhook_id = w.id AND s.secret <> signing;
    INSERT INTO sluice.webhook_secrets (webhook_id, secret) VALUES (w.id, signing)
    ON CONFLICT ON CONSTRAINT webhook_secrets_pkey DO UPDATE SET expires_at = NULL;
    PERFORM pg_notify('sluice_webhooks', w.name);
    RETURN signing;
END
$$;

-- Retention of the delivery log.
CREATE FUNCTION sluice.prune_webhook_deliveries(older_than interval DEFAULT '7 days')
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM sluice.webhook_deliveries WHERE at < now() - older_than RETURNING 1)
    SELECT count(*) FROM gone
$$;

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'sluice.new_webhook_secret()',
        'sluice.checked_webhook_secret(text)',
        'sluice.checked_webhook_tables(regclass[])',
        'sluice.checked_webhook_events(text[])',
        'sluice.checked_webhook_target(text)',
        'sluice.checked_webhook_filter(text)',
        'sluice.webhook_named(text)',
        'sluice.create_webhook(text, text, regclass[], text[], text, jsonb, text, interval, int, interval, text)',
        'sluice.alter_webhook(text, text, regclass[], text[], jsonb, text, interval, int, interval, text)',
        'sluice.drop_webhook(text)',
        'sluice.enable_webhook(text)',
        'sluice.disable_webhook(text)',
        'sluice.retry_webhook(text, bigint)',
        'sluice.rotate_webhook_secret(text, text, interval)',
        'sluice.prune_webhook_deliveries(interval)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$grants$;
GRANT EXECUTE ON FUNCTION
    sluice.create_webhook(text, text, regclass[], text[], text, jsonb, text, interval, int, interval, text),
    sluice.alter_webhook(text, text, regclass[], text[], jsonb, text, interval, int, interval, text),
    sluice.drop_webhook(text),
    sluice.enable_webhook(text),
    sluice.disable_webhook(text),
    sluice.retry_webhook(text, bigint),
    sluice.rotate_webhook_secret(text, text, interval),
    sluice.prune_webhook_deliveries(interval)
TO service_role;

-- ============================================================================================
-- Scheduled jobs (issue 12): pg_cron's shape in the sluice schema, run by the sidecars. Same text as extension/sql/jobs.sql.
-- ============================================================================================
-- Scheduled jobs (issue 12), in pg_cron's shape: sluice.schedule / unschedule / alter_job, sluice.jobs and
-- sluice.job_runs with pg_cron's column names. The sidecars run them: each tick of a job is claimed in
-- Postgres by a unique (jobid, scheduled_time), so it runs once however many sidecars run; a job's command
-- runs as the role that scheduled it (`username`), with SET ROLE from the sidecar's login, so never as a
-- superuser that role is not.
--
-- Schedules: five cron fields ('*/5 * * * *'), a shortcut (@yearly, @annually, @monthly, @weekly, @daily,
-- @midnight, @hourly), or an interval of 1 to 59 seconds ('30 seconds'). Times are UTC unless the job
-- names a time zone.

CREATE TABLE sluice.jobs (
    jobid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    jobname text NOT NULL UNIQUE CHECK (length(jobname) BETWEEN 1 AND 200),
    schedule text NOT NULL,
    command text NOT NULL,
    username text NOT NULL DEFAULT current_user,
    active boolean NOT NULL DEFAULT true,
    timezone text,
    timeout interval NOT NULL DEFAULT '5 min' CHECK (timeout > '0'),
    -- A failed run is tried again this many times, `retry_delay` apart.
    max_retries int NOT NULL DEFAULT 0 CHECK (max_retries BETWEEN 0 AND 100),
    retry_delay interval NOT NULL DEFAULT '10 s' CHECK (retry_delay >= '0'),
    -- The latest tick claimed: ticks up to it never run again (a restart runs a missed tick once).
    last_tick timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per run (a retry is a run of the same tick with the next attempt).
CREATE TABLE sluice.job_runs (
    runid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jobid bigint NOT NULL REFERENCES sluice.jobs (jobid) ON DELETE CASCADE,
    scheduled_time timestamptz NOT NULL,
    attempt int NOT NULL DEFAULT 1,
    status text NOT NULL CHECK (status IN ('starting', 'running', 'succeeded', 'failed')),
    return_message text,
    rows_affected bigint,
    username text NOT NULL,
    command text NOT NULL,
    runner text,
    start_time timestamptz,
    end_time timestamptz,
    UNIQUE (jobid, scheduled_time, attempt)
);
CREATE INDEX job_runs_start_time_idx ON sluice.job_runs (start_time);
CREATE INDEX job_runs_running_idx ON sluice.job_runs (jobid) WHERE status IN ('starting', 'running');

-- A schedule the sidecar can read: checked here by shape (the sidecar's cron parser checks the fields,
-- and logs a failed run for a schedule it cannot read).
CREATE FUNCTION sluice.checked_schedule(schedule text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trimmed text := btrim(schedule);
    seconds int;
BEGIN
    IF trimmed ~* '^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$' THEN
        RETURN lower(trimmed);
    END IF;
    IF trimmed ~* '^[0-9]+ *(s|sec|secs|second|seconds)$' THEN
        seconds := substring(trimmed FROM '^[0-9]+')::int;
        IF seconds BETWEEN 1 AND 59 THEN
            RETURN seconds || ' seconds';
        END IF;
    END IF;
    IF trimmed ~ '^[^[:space:]]+([[:space:]]+[^[:space:]]+){4}$' THEN
        RETURN regexp_replace(trimmed, '[[:space:]]+', ' ', 'g');
    END IF;
    RAISE EXCEPTION 'invalid schedule: %', coalesce(quote_literal(schedule), 'NULL') USING ERRCODE = '22023',
        HINT = 'Five cron fields (''*/5 * * * *''), @hourly-style shortcuts, or ''N seconds'' with N from 1 to 59.';
END
$$;

CREATE FUNCTION sluice.checked_timezone(timezone text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF timezone IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = timezone) THEN
        RAISE EXCEPTION 'unknown time zone: %', quote_literal(timezone) USING ERRCODE = '22023',
            HINT = 'Name one of pg_timezone_names, e.g. ''Europe/Berlin''; leave it out for UTC.';
    END IF;
    RETURN timezone;
END
$$;

-- Who a job runs as: the role scheduling it, or a role it is a member of (superusers: any role).
CREATE FUNCTION sluice.jobs_check_username()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.username IS DISTINCT FROM current_user AND NOT pg_has_role(current_user, NEW.username, 'MEMBER') THEN
        RAISE EXCEPTION 'role % may not schedule a job to run as %', current_user, NEW.username
            USING ERRCODE = '42501';
    END IF;
    NEW.schedule := sluice.checked_schedule(NEW.schedule);
    NEW.timezone := sluice.checked_timezone(NEW.timezone);
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_check_username BEFORE INSERT OR UPDATE ON sluice.jobs
    FOR EACH ROW EXECUTE FUNCTION sluice.jobs_check_username();

-- A role sees and manages its own jobs (service_role: all, as it bypasses RLS); the sidecar's login reads
-- all of them to run them.
ALTER TABLE sluice.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_own ON sluice.jobs USING (username = current_user);
CREATE POLICY jobs_runner ON sluice.jobs FOR SELECT TO authenticator USING (true);
ALTER TABLE sluice.job_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_runs_own ON sluice.job_runs FOR SELECT USING (username = current_user);
CREATE POLICY job_runs_runner ON sluice.job_runs TO authenticator USING (true);

REVOKE ALL ON sluice.jobs, sluice.job_runs FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON sluice.jobs TO service_role;
GRANT SELECT ON sluice.job_runs TO service_role;
GRANT SELECT ON sluice.jobs TO authenticator;
GRANT SELECT, UPDATE (status, return_message, rows_affected, start_time, end_time) ON sluice.job_runs TO authenticator;

-- Backups keep the user's jobs and their runs; the built-in maintenance job is made by CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('sluice.jobs', $$WHERE jobname <> 'sluice-maintenance'$$);
SELECT pg_catalog.pg_extension_config_dump('sluice.jobs_jobid_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('sluice.job_runs_runid_seq', '');

-- pg_cron's cron.schedule: creates the job, or changes the schedule and command of the caller's job of
-- that name. Returns its jobid.
CREATE FUNCTION sluice.schedule(job_name text, schedule text, command text)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO sluice.jobs AS j (jobname, schedule, command)
    VALUES (job_name, schedule, command)
    ON CONFLICT (jobname) DO UPDATE SET schedule = EXCLUDED.schedule, command = EXCLUDED.command
    RETURNING j.jobid
$$;
COMMENT ON FUNCTION sluice.schedule(text, text, text) IS 'Schedules a named job (an upsert on its name, as pg_cron''s cron.schedule); returns its jobid.';

-- The same with the optional settings: a time zone, a timeout, retries, and (for a role that is a member
-- of it, or a superuser) the role the job runs as.
CREATE FUNCTION sluice.schedule(job_name text, schedule text, command text, timezone text,
                                timeout interval DEFAULT '5 min', max_retries int DEFAULT 0,
                                retry_delay interval DEFAULT '10 s', username text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO sluice.jobs AS j (jobname, schedule, command, timezone, timeout, max_retries, retry_delay, username)
    VALUES (job_name, schedule, command, timezone, timeout, max_retries, retry_delay, coalesce(username, current_user))
    ON CONFLICT (jobname) DO UPDATE SET schedule = EXCLUDED.schedule, command = EXCLUDED.command,
        timezone = EXCLUDED.timezone, timeout = EXCLUDED.timeout, max_retries = EXCLUDED.max_retries,
        retry_delay = EXCLUDED.retry_delay, username = EXCLUDED.username
    RETURNING j.jobid
$$;

CREATE FUNCTION sluice.unschedule(job_name text)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM sluice.jobs WHERE jobname = job_name RETURNING 1)
    SELECT count(*) > 0 FROM gone
$$;

CREATE FUNCTION sluice.unschedule(job_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM sluice.jobs WHERE jobid = job_id RETURNING 1)
    SELECT count(*) > 0 FROM gone
$$;

-- pg_cron's cron.alter_job: NULL arguments leave a setting as it is.
CREATE FUNCTION sluice.alter_job(job_id bigint, schedule text DEFAULT NULL, command text DEFAULT NULL,
                                 active boolean DEFAULT NULL, timezone text DEFAULT NULL,
                                 timeout interval DEFAULT NULL, max_retries int DEFAULT NULL,
                                 retry_delay interval DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE sluice.jobs j SET
        schedule = coalesce(alter_job.schedule, j.schedule),
        command = coalesce(alter_job.command, j.command),
        active = coalesce(alter_job.active, j.active),
        timezone = coalesce(alter_job.timezone, j.timezone),
        timeout = coalesce(alter_job.timeout, j.timeout),
        max_retries = coalesce(alter_job.max_retries, j.max_retries),
        retry_delay = coalesce(alter_job.retry_delay, j.retry_delay)
    WHERE j.jobid = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no job % (of yours)', job_id USING ERRCODE = '42704';
    END IF;
END
$$;

-- The sidecar claims a tick: the job row is locked, so claims of one job are serialized. NULL when the
-- tick is not this caller's to run: already claimed (by any sidecar), the job gone or inactive, or a run
-- of the job still going (a job never overlaps itself; the tick is claimed later, once it ended, unless a
-- later tick has come by then). A run older than the job's timeout and a minute counts as ended (its
-- sidecar died); the maintenance job marks it failed.
CREATE FUNCTION sluice.claim_job_tick(job_id bigint, tick timestamptz, runner text)
RETURNS TABLE (runid bigint, command text, username text, timeout_ms bigint, max_retries int, retry_delay_ms bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j sluice.jobs;
BEGIN
    SELECT * INTO j FROM sluice.jobs WHERE jobid = job_id AND active FOR UPDATE;
    IF NOT FOUND OR (j.last_tick IS NOT NULL AND j.last_tick >= tick) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM sluice.job_runs r
               WHERE r.jobid = job_id AND r.status IN ('starting', 'running')
                 AND coalesce(r.start_time, now()) > now() - j.timeout - interval '1 minute') THEN
        RETURN;
    END IF;
    UPDATE sluice.jobs SET last_tick = tick WHERE jobid = job_id;
    RETURN QUERY
    INSERT INTO sluice.job_runs AS r (jobid, scheduled_time, status, username, command, runner, start_time)
    VALUES (job_id, tick, 'starting', j.username, j.command, claim_job_tick.runner, now())
    ON CONFLICT DO NOTHING
    RETURNING r.runid, r.command, r.username, (extract(epoch FROM j.timeout) * 1000)::bigint, j.max_retries,
              (extract(epoch FROM j.retry_delay) * 1000)::bigint;
END
$$;

-- The next attempt of a failed run (the same tick), when the job's policy allows one; NULL otherwise.
CREATE FUNCTION sluice.retry_job_run(run_id bigint, runner text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r sluice.job_runs;
    j sluice.jobs;
    next_id bigint;
BEGIN
    SELECT * INTO r FROM sluice.job_runs WHERE job_runs.runid = run_id AND status = 'failed';
    SELECT * INTO j FROM sluice.jobs WHERE jobid = r.jobid AND active FOR UPDATE;
    IF r.runid IS NULL OR j.jobid IS NULL OR r.attempt > j.max_retries THEN
        RETURN NULL;
    END IF;
    INSERT INTO sluice.job_runs AS n (jobid, scheduled_time, attempt, status, username, command, runner, start_time)
    VALUES (r.jobid, r.scheduled_time, r.attempt + 1, 'starting', j.username, j.command, retry_job_run.runner, now())
    ON CONFLICT DO NOTHING
    RETURNING n.runid INTO next_id;
    RETURN next_id;
END
$$;

-- Retention of the run log.
CREATE FUNCTION sluice.prune_job_runs(older_than interval DEFAULT '7 days')
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM sluice.job_runs WHERE coalesce(end_time, start_time) < now() - older_than RETURNING 1)
    SELECT count(*) FROM gone
$$;

-- The built-in maintenance: prune the change log, the webhook delivery log and the job run log past their
-- retention, and refresh tokens revoked (used) longer ago than `refresh_tokens`; mark runs whose sidecar
-- died as failed. Returns what it did, for the run log.
CREATE FUNCTION sluice.run_maintenance(change_log interval DEFAULT '7 days',
                                       deliveries interval DEFAULT '7 days',
                                       job_runs interval DEFAULT '7 days',
                                       refresh_tokens interval DEFAULT '1 day')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changes bigint := sluice.prune_changes(change_log);
    attempts bigint := sluice.prune_webhook_deliveries(deliveries);
    runs bigint;
    tokens bigint;
    stale bigint;
BEGIN
    WITH dead AS (
        UPDATE sluice.job_runs r SET status = 'failed', end_time = now(),
            return_message = 'the run did not end: its sidecar stopped (or it outlived its timeout)'
        FROM sluice.jobs j
        WHERE r.jobid = j.jobid AND r.status IN ('starting', 'running')
          AND r.start_time < now() - j.timeout - interval '1 minute'
        RETURNING 1)
    SELECT count(*) INTO stale FROM dead;
    runs := sluice.prune_job_runs(job_runs);
    WITH gone AS (DELETE FROM auth.refresh_tokens t WHERE t.revoked_at < now() - run_maintenance.refresh_tokens RETURNING 1)
    SELECT count(*) INTO tokens FROM gone;
    RETURN format('pruned %s change-log events, %s delivery attempts, %s job runs, %s used refresh tokens; %s stale runs failed',
                  changes, attempts, runs, tokens, stale);
END
$$;

-- The built-in job runs as the sidecar's login role, hourly; change its retention with
-- sluice.alter_job(<its jobid>, command => 'SELECT sluice.run_maintenance(change_log => ''30 days'')').
INSERT INTO sluice.jobs (jobname, schedule, command, username)
VALUES ('sluice-maintenance', '@hourly', 'SELECT sluice.run_maintenance()', 'authenticator');

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'sluice.schedule(text, text, text)',
        'sluice.schedule(text, text, text, text, interval, int, interval, text)',
        'sluice.unschedule(text)',
        'sluice.unschedule(bigint)',
        'sluice.alter_job(bigint, text, text, boolean, text, interval, int, interval)',
        'sluice.claim_job_tick(bigint, timestamptz, text)',
        'sluice.retry_job_run(bigint, text)',
        'sluice.prune_job_runs(interval)',
        'sluice.run_maintenance(interval, interval, interval, interval)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$grants$;
-- Scheduling is service_role's (and a superuser's); to let another role schedule jobs that run as itself,
-- grant it EXECUTE on these and SELECT, INSERT, UPDATE, DELETE on sluice.jobs (and, so that the sidecar can
-- run them, the role to authenticator). sluice.checked_schedule and sluice.checked_timezone, pure checks
-- run by the INSERT's trigger, stay executable by everyone.
GRANT EXECUTE ON FUNCTION
    sluice.schedule(text, text, text),
    sluice.schedule(text, text, text, text, interval, int, interval, text),
    sluice.unschedule(text),
    sluice.unschedule(bigint),
    sluice.alter_job(bigint, text, text, boolean, text, interval, int, interval),
    sluice.prune_job_runs(interval),
    sluice.run_maintenance(interval, interval, interval, interval)
TO service_role;
GRANT EXECUTE ON FUNCTION
    sluice.claim_job_tick(bigint, timestamptz, text),
    sluice.retry_job_run(bigint, text),
    sluice.run_maintenance(interval, interval, interval, interval)
TO authenticator;

-- storage: S3 multipart uploads in flight, recorded so that the sweep aborts interrupted ones (issue 11).
-- Same text as extension/sql/storage_multipart.sql.
-- S3 multipart uploads in flight: the sidecar records an upload's id here before it sends the first
-- part and deletes the record once the upload is completed (or aborted). A sidecar killed in between
-- leaves the record, and the sweep aborts uploads not touched for longer than its grace period (the
-- sidecar touches the record every 30 seconds while it sends, so a long upload is not taken for a dead one),
-- so an interrupted upload's parts (invisible to an object listing) never stay behind. Reached only by the
-- sidecar's login role: no request role (anon, authenticated, service_role) has any privilege on it.
CREATE TABLE storage.sluice_multipart_uploads (
    upload_id text PRIMARY KEY,
    -- The backend key the parts are uploaded to (a version no row names until the upload commits).
    key text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    touched_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sluice_multipart_uploads_touched ON storage.sluice_multipart_uploads (touched_at, upload_id);
ALTER TABLE storage.sluice_multipart_uploads ENABLE ROW LEVEL SECURITY;
CREATE POLICY sluice_multipart_uploads_sidecar ON storage.sluice_multipart_uploads TO authenticator
    USING (true) WITH CHECK (true);
REVOKE ALL ON storage.sluice_multipart_uploads FROM PUBLIC;
-- authenticator is NOINHERIT (as in Supabase): it reaches the schema through its own grant.
GRANT USAGE ON SCHEMA storage TO authenticator;
GRANT SELECT, INSERT, UPDATE (touched_at), DELETE ON storage.sluice_multipart_uploads TO authenticator;
SELECT pg_catalog.pg_extension_config_dump('storage.sluice_multipart_uploads', '');

-- otp: passwordless sign-in (issue 15): email and phone codes, PKCE flow state, anonymous users.
-- The same text as extension/sql/auth_otp.sql.
-- Passwordless sign-in (issue 15): magic links and email codes, phone codes, PKCE flow state and
-- anonymous users. Same access model as auth_tables.sql: the tables are granted to nobody, the
-- sidecar reaches them only through the SECURITY DEFINER functions below (executable by
-- `authenticator` only), and no code or hash sits in a table that the change log tracks.

-- Users without an email: phone users and anonymous users. `phone` (E.164 digits, no '+', as
-- GoTrue stores it) is one of GoTrue's columns that auth_import.sql added; here it becomes unique.
ALTER TABLE auth.users ALTER COLUMN email DROP NOT NULL;
CREATE UNIQUE INDEX users_phone_key ON auth.users (phone) WHERE phone IS NOT NULL AND phone <> '';

-- A user who proved an email or phone is no longer anonymous (converting an anonymous user by
-- `updateUser({email})` and the mailed confirmation keeps the user's id).
CREATE FUNCTION auth.sluice_users_not_anonymous_once_confirmed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.is_anonymous AND (NEW.email_confirmed_at IS NOT NULL OR NEW.phone_confirmed_at IS NOT NULL) THEN
        NEW.is_anonymous := false;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sluice_not_anonymous_once_confirmed BEFORE INSERT OR UPDATE ON auth.users
    FOR EACH ROW EXECUTE FUNCTION auth.sluice_users_not_anonymous_once_confirmed();

-- PKCE flows (GoTrue's auth.flow_state): a flow starts with the client's code challenge; when the
-- user proves who they are (a mailed link followed, an OAuth callback), the flow gets a user and
-- an auth code, which `POST /token?grant_type=pkce` exchanges, once, with the code verifier.
-- `link_hash` ties a flow to the one-time token of a mailed link (auth.one_time_tokens or
-- auth.otp_codes); the auth code is stored as its SHA-256 hash only.
CREATE TABLE auth.flow_state (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid REFERENCES auth.users (id) ON DELETE CASCADE,
    code_challenge text NOT NULL CHECK (length(code_challenge) BETWEEN 43 AND 128),
    code_challenge_method text NOT NULL CHECK (code_challenge_method IN ('s256', 'plain')),
    provider_type text NOT NULL,
    authentication_method text NOT NULL,
    link_hash text UNIQUE,
    auth_code_hash text UNIQUE,
    auth_code_issued_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One-time codes of passwordless sign-in: one live code per user and channel (a new one replaces
-- it). `code_hash` is SHA-256 of "<user id>:<code>" (a 6-digit code is guessable offline from its
-- hash, so what protects it is its expiry and `failed_attempts`: it is deleted after too many
-- wrong guesses); `link_hash` is the SHA-256 of the 256-bit token in the mailed link.
CREATE TABLE auth.otp_codes (
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    channel text NOT NULL CHECK (channel IN ('email', 'sms')),
    purpose text NOT NULL CHECK (purpose IN ('magiclink', 'signup', 'invite', 'recovery', 'sms')),
    code_hash text NOT NULL,
    link_hash text UNIQUE,
    failed_attempts int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, channel)
);

-- What the default SMS sender sent: a development inbox, like auth.mail_outbox.
CREATE TABLE auth.sms_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

SELECT pg_catalog.pg_extension_config_dump('auth.flow_state', '');
SELECT pg_catalog.pg_extension_config_dump('auth.otp_codes', '');
SELECT pg_catalog.pg_extension_config_dump('auth.sms_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('auth.sms_outbox_id_seq', '');

-- The user as GoTrue returns it, now with phone users and anonymous users (no identities).
CREATE OR REPLACE FUNCTION auth.sluice_user_json(u auth.users)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'id', u.id,
        'aud', u.aud,
        'role', u.role,
        'email', coalesce(u.email, ''),
        'email_confirmed_at', u.email_confirmed_at,
        'phone', coalesce(u.phone, ''),
        'phone_confirmed_at', u.phone_confirmed_at,
        'confirmation_sent_at', u.confirmation_sent_at,
        'confirmed_at', coalesce(u.email_confirmed_at, u.phone_confirmed_at),
        'recovery_sent_at', u.recovery_sent_at,
        'email_change_sent_at', u.email_change_sent_at,
        'invited_at', u.invited_at,
        'last_sign_in_at', u.last_sign_in_at,
        'app_metadata', u.raw_app_meta_data,
        'user_metadata', u.raw_user_meta_data,
        'identities',
            CASE WHEN u.email IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(jsonb_build_object(
                'identity_id', u.id,
                'id', u.id,
                'user_id', u.id,
                'identity_data', jsonb_build_object(
                    'email', u.email,
                    'email_verified', u.email_confirmed_at IS NOT NULL,
                    'phone_verified', false,
                    'sub', u.id),
                'provider', 'email',
                'last_sign_in_at', u.last_sign_in_at,
                'created_at', u.created_at,
                'updated_at', u.updated_at,
                'email', u.email)) END
            || CASE WHEN coalesce(u.phone, '') = '' THEN '[]'::jsonb ELSE jsonb_build_array(jsonb_build_object(
                'identity_id', u.id,
                'id', u.phone,
                'user_id', u.id,
                'identity_data', jsonb_build_object(
                    'phone', u.phone,
                    'email_verified', false,
                    'phone_verified', u.phone_confirmed_at IS NOT NULL,
                    'sub', u.id),
                'provider', 'phone',
                'last_sign_in_at', u.last_sign_in_at,
                'created_at', u.created_at,
                'updated_at', u.updated_at)) END,
        'created_at', u.created_at,
        'updated_at', u.updated_at,
        'is_anonymous', u.is_anonymous)
    || CASE WHEN u.banned_until IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('banned_until', u.banned_until) END
    || CASE WHEN u.email_change IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('new_email', u.email_change) END
$$;

-- A user of passwordless sign-in: with an email, a phone (digits), or neither (anonymous), and a
-- password hash when phone sign-up gave one. A taken email or phone raises unique_violation.
CREATE FUNCTION auth.sluice_create_otp_user(
    email text, phone text, user_meta jsonb, password_hash text, invited boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
    provider text := CASE WHEN $1 IS NOT NULL THEN 'email' WHEN $2 IS NOT NULL THEN 'phone'
                          ELSE 'anonymous' END;
BEGIN
    INSERT INTO auth.users (email, phone, raw_user_meta_data, raw_app_meta_data, is_anonymous, invited_at)
    VALUES (lower($1), $2, coalesce(user_meta, '{}'),
            jsonb_build_object('provider', provider, 'providers',
                CASE WHEN provider = 'anonymous' THEN '[]'::jsonb ELSE jsonb_build_array(provider) END),
            provider = 'anonymous', CASE WHEN $5 THEN now() END)
    RETURNING * INTO u;
    IF password_hash IS NOT NULL THEN
        INSERT INTO auth.passwords (user_id, hash) VALUES (u.id, password_hash);
    END IF;
    RETURN auth.sluice_user_json(u);
END
$$;

-- The user with this email or phone (digits), NULL if none.
CREATE FUNCTION auth.sluice_user_by_contact(email text, phone text)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT auth.sluice_user_json(u) FROM auth.users AS u
    WHERE ($1 IS NOT NULL AND u.email = lower($1)) OR ($2 IS NOT NULL AND u.phone = $2)
    LIMIT 1
$$;

-- Stores a user's new code (replacing the live one of the channel) and notes when it was sent.
-- Returns the user, NULL when the user is gone.
CREATE FUNCTION auth.sluice_issue_otp(
    user_id uuid, channel text, purpose text, code_hash text, link_hash text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
BEGIN
    UPDATE auth.users AS x SET
        confirmation_sent_at = CASE WHEN $3 IN ('signup', 'sms') THEN now() ELSE x.confirmation_sent_at END,
        recovery_sent_at = CASE WHEN $3 IN ('magiclink', 'recovery') THEN now() ELSE x.recovery_sent_at END,
        invited_at = CASE WHEN $3 = 'invite' THEN now() ELSE x.invited_at END
    WHERE x.id = $1
    RETURNING * INTO u;
    IF u.id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO auth.otp_codes AS o (user_id, channel, purpose, code_hash, link_hash)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT ON CONSTRAINT otp_codes_pkey DO UPDATE SET purpose = EXCLUDED.purpose,
        code_hash = EXCLUDED.code_hash, link_hash = EXCLUDED.link_hash, failed_attempts = 0,
        created_at = now();
    RETURN auth.sluice_user_json(u);
END
$$;

-- The live code of the user with this email or phone on `channel`, for the sidecar to compare in
-- constant time: {"user_id", "code_hash"}; {"error": "otp_expired"} for no code, a code of another
-- purpose, or one older than `valid_for`.
CREATE FUNCTION auth.sluice_otp_pending(
    channel text, email text, phone text, purposes text[], valid_for interval)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((
        SELECT jsonb_build_object('user_id', o.user_id, 'code_hash', o.code_hash)
        FROM auth.users AS u JOIN auth.otp_codes AS o ON o.user_id = u.id AND o.channel = $1
        WHERE (($2 IS NOT NULL AND u.email = lower($2)) OR ($3 IS NOT NULL AND u.phone = $3))
          AND o.purpose = ANY ($4) AND o.created_at > now() - $5
        LIMIT 1), '{"error": "otp_expired"}'::jsonb)
$$;

-- A wrong code: counted; at `max_attempts` the code is deleted, so guessing has that many tries.
CREATE FUNCTION auth.sluice_otp_failed(user_id uuid, channel text, max_attempts int)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
BEGIN
    UPDATE auth.otp_codes AS o SET failed_attempts = o.failed_attempts + 1
    WHERE o.user_id = $1 AND o.channel = $2
    RETURNING o.failed_attempts INTO n;
    IF n >= $3 THEN
        DELETE FROM auth.otp_codes AS o WHERE o.user_id = $1 AND o.channel = $2;
    END IF;
END
$$;

-- Uses up a code, found by the user and the code's hash (a typed code) or by the link's hash (a
-- followed link or `token_hash`), of one of `purposes` and younger than `valid_for`. Proves the
-- email (or phone) it was sent to. Returns {"user_id", "purpose", "link_hash"}, NULL when there is
-- no such live code (used, replaced, expired or never issued).
CREATE FUNCTION auth.sluice_consume_otp(
    user_id uuid, code_hash text, link_hash text, purposes text[], valid_for interval)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o auth.otp_codes;
BEGIN
    DELETE FROM auth.otp_codes AS x
    WHERE CASE WHEN $3 IS NOT NULL THEN x.link_hash = $3 ELSE x.user_id = $1 AND x.code_hash = $2 END
      AND x.purpose = ANY ($4) AND x.created_at > now() - $5
    RETURNING * INTO o;
    IF o.user_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF o.channel = 'email' THEN
        UPDATE auth.users SET email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now()
        WHERE id = o.user_id;
    ELSE
        UPDATE auth.users SET phone_confirmed_at = coalesce(phone_confirmed_at, now()), updated_at = now()
        WHERE id = o.user_id;
    END IF;
    RETURN jsonb_build_object('user_id', o.user_id, 'purpose', o.purpose, 'link_hash', o.link_hash);
END
$$;

-- Starts a PKCE flow; with `link_hash`, the flow waits for that mailed link. Flows older than a
-- day are swept here.
CREATE FUNCTION auth.sluice_create_flow_state(
    provider_type text, authentication_method text, code_challenge text,
    code_challenge_method text, user_id uuid, link_hash text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fid uuid;
BEGIN
    DELETE FROM auth.flow_state AS f WHERE f.created_at < now() - interval '1 day';
    INSERT INTO auth.flow_state (provider_type, authentication_method, code_challenge,
                                 code_challenge_method, user_id, link_hash)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING id INTO fid;
    RETURN fid;
END
$$;

-- The flow reached its user: stores the auth code's hash. The flow is named by its id or by the
-- hash of the link it waits for. Returns the flow's id, NULL when there is no such flow.
CREATE FUNCTION auth.sluice_issue_auth_code(
    flow_id uuid, link_hash text, user_id uuid, auth_code_hash text)
RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE auth.flow_state AS f SET user_id = $3, auth_code_hash = $4, auth_code_issued_at = now()
    WHERE (f.id = $1 OR ($2 IS NOT NULL AND f.link_hash = $2)) AND f.auth_code_hash IS NULL
    RETURNING f.id
$$;

-- Takes a flow by its auth code, once: the row is deleted whatever the verifier turns out to be.
-- Returns {"user_id", "code_challenge", "code_challenge_method", "provider_type",
-- "authentication_method", "expired"}, NULL for an unknown (or used) code.
CREATE FUNCTION auth.sluice_take_flow_state(auth_code_hash text, valid_for interval)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM auth.flow_state AS f WHERE f.auth_code_hash = $1 AND f.user_id IS NOT NULL
    RETURNING jsonb_build_object(
        'user_id', f.user_id, 'code_challenge', f.code_challenge,
        'code_challenge_method', f.code_challenge_method, 'provider_type', f.provider_type,
        'authentication_method', f.authentication_method,
        'expired', f.auth_code_issued_at < now() - $2)
$$;

-- What password sign-in with a phone needs, as auth.sluice_password_of for an email.
CREATE FUNCTION auth.sluice_password_of_phone(phone text)
RETURNS TABLE (user_id uuid, hash text, banned boolean, confirmed boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, p.hash, coalesce(u.banned_until > now(), false), u.phone_confirmed_at IS NOT NULL
    FROM auth.users AS u JOIN auth.passwords AS p ON p.user_id = u.id
    WHERE u.phone = $1
$$;

-- Returns the message's id (the SMS answer's `message_id`).
CREATE FUNCTION auth.sluice_enqueue_sms(recipient text, body text)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO auth.sms_outbox (recipient, body) VALUES ($1, $2) RETURNING id
$$;

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'auth.sluice_users_not_anonymous_once_confirmed()',
        'auth.sluice_create_otp_user(text, text, jsonb, text, boolean)',
        'auth.sluice_user_by_contact(text, text)',
        'auth.sluice_issue_otp(uuid, text, text, text, text)',
        'auth.sluice_otp_pending(text, text, text, text[], interval)',
        'auth.sluice_otp_failed(uuid, text, int)',
        'auth.sluice_consume_otp(uuid, text, text, text[], interval)',
        'auth.sluice_create_flow_state(text, text, text, text, uuid, text)',
        'auth.sluice_issue_auth_code(uuid, text, uuid, text)',
        'auth.sluice_take_flow_state(text, interval)',
        'auth.sluice_enqueue_sms(text, text)',
        'auth.sluice_password_of_phone(text)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$grants$;
GRANT EXECUTE ON FUNCTION
    auth.sluice_create_otp_user(text, text, jsonb, text, boolean),
    auth.sluice_user_by_contact(text, text),
    auth.sluice_issue_otp(uuid, text, text, text, text),
    auth.sluice_otp_pending(text, text, text, text[], interval),
    auth.sluice_otp_failed(uuid, text, int),
    auth.sluice_consume_otp(uuid, text, text, text[], interval),
    auth.sluice_create_flow_state(text, text, text, text, uuid, text),
    auth.sluice_issue_auth_code(uuid, text, uuid, text),
    auth.sluice_take_flow_state(text, interval),
    auth.sluice_enqueue_sms(text, text),
    auth.sluice_password_of_phone(text)
TO authenticator;

-- oauth: MFA with TOTP (extension/sql/auth_mfa.sql, as it is).
-- Sluice auth, MFA with TOTP (GoTrue's /factors): factors, their challenges, and the methods each
-- session was authenticated with (its `amr`). Same access model as auth_tables.sql: the tables are
-- granted to nobody, the sidecar reaches them through the SECURITY DEFINER functions below, which
-- only `authenticator` may execute; none of them is tracked by the change log (a factor holds the
-- TOTP secret, which the server must keep in the clear to compute codes).

CREATE TABLE auth.mfa_factors (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    friendly_name text,
    factor_type text NOT NULL DEFAULT 'totp' CHECK (factor_type = 'totp'),
    status text NOT NULL DEFAULT 'unverified' CHECK (status IN ('unverified', 'verified')),
    -- Base32, as in the otpauth:// URI.
    secret text NOT NULL,
    -- The TOTP time step of the last code accepted: a code (and any older one) is used up.
    last_used_step bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_factors_user_id_idx ON auth.mfa_factors (user_id);
CREATE UNIQUE INDEX mfa_factors_user_friendly_name_key
    ON auth.mfa_factors (user_id, friendly_name) WHERE friendly_name <> '';

CREATE TABLE auth.mfa_challenges (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    factor_id uuid NOT NULL REFERENCES auth.mfa_factors (id) ON DELETE CASCADE,
    ip text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_challenges_factor_id_idx ON auth.mfa_challenges (factor_id);

-- How each session was authenticated, beyond its first method (`password`, `otp`...): GoTrue's
-- `amr` claim entries, kept so a refreshed token of an aal2 session still says `totp`.
CREATE TABLE auth.mfa_amr_claims (
    session_id uuid NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
    authentication_method text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, authentication_method)
);

SELECT pg_catalog.pg_extension_config_dump('auth.mfa_factors', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_challenges', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_amr_claims', '');

-- A factor as GoTrue returns it (no secret).
CREATE FUNCTION auth.sluice_factor_json(f auth.mfa_factors)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'id', f.id,
        'friendly_name', coalesce(f.friendly_name, ''),
        'factor_type', f.factor_type,
        'status', f.status,
        'created_at', f.created_at,
        'updated_at', f.updated_at)
$$;

-- A user's factors, oldest first (`factors` of GoTrue's user JSON).
CREATE FUNCTION auth.sluice_mfa_factors(p_user_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(auth.sluice_factor_json(f) ORDER BY f.created_at, f.id), '[]')
    FROM auth.mfa_factors AS f WHERE f.user_id = p_user_id
$$;

-- Enrolls a new, unverified TOTP factor. {"error": code} when the name is taken or the user has
-- `max_factors` already; unverified factors older than a day are dropped first (abandoned
-- enrollments, as GoTrue's cleanup does).
CREATE FUNCTION auth.sluice_mfa_enroll(p_user_id uuid, p_friendly_name text, p_secret text, p_max_factors int)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f auth.mfa_factors;
BEGIN
    PERFORM 1 FROM auth.users WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'user_not_found');
    END IF;
    DELETE FROM auth.mfa_factors
    WHERE user_id = p_user_id AND status = 'unverified' AND created_at < now() - interval '1 day';
    IF (SELECT count(*) FROM auth.mfa_factors WHERE user_id = p_user_id) >= p_max_factors THEN
        RETURN jsonb_build_object('error', 'too_many_enrolled_mfa_factors');
    END IF;
    IF p_friendly_name <> '' AND EXISTS (
        SELECT 1 FROM auth.mfa_factors WHERE user_id = p_user_id AND friendly_name = p_friendly_name
    ) THEN
        RETURN jsonb_build_object('error', 'mfa_factor_name_conflict');
    END IF;
    INSERT INTO auth.mfa_factors (user_id, friendly_name, secret)
    VALUES (p_user_id, nullif(p_friendly_name, ''), p_secret)
    RETURNING * INTO f;
    RETURN auth.sluice_factor_json(f);
END
$$;

-- Opens a challenge on the user's factor; NULL when the user has no such factor.
CREATE FUNCTION auth.sluice_mfa_challenge(p_user_id uuid, p_factor_id uuid, p_ip text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c auth.mfa_challenges;
BEGIN
    PERFORM 1 FROM auth.mfa_factors WHERE id = p_factor_id AND user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO auth.mfa_challenges (factor_id, ip) VALUES (p_factor_id, p_ip) RETURNING * INTO c;
    RETURN jsonb_build_object('id', c.id, 'created_at', extract(epoch FROM c.created_at)::bigint);
END
$$;

-- What checking a code needs: the factor's secret and last used step, and the challenge's age.
-- {"error": code} when the factor or the challenge is not the user's.
CREATE FUNCTION auth.sluice_mfa_for_verify(p_user_id uuid, p_factor_id uuid, p_challenge_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f auth.mfa_factors;
    c auth.mfa_challenges;
BEGIN
    SELECT * INTO f FROM auth.mfa_factors WHERE id = p_factor_id AND user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'mfa_factor_not_found');
    END IF;
    SELECT * INTO c FROM auth.mfa_challenges WHERE id = p_challenge_id AND factor_id = p_factor_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'mfa_challenge_not_found');
    END IF;
    RETURN jsonb_build_object(
        'secret', f.secret,
        'last_used_step', f.last_used_step,
        'challenge_age', extract(epoch FROM now() - c.created_at),
        'challenge_ip', c.ip);
END
$$;

-- A code checked by the sidecar: uses up the challenge and the code's time step (single use: a
-- step not after the last used one is refused), verifies the factor, raises the session to aal2,
-- records its methods (those of `p_amr`, the caller's token's, at their times; then `totp`), and swaps its refresh tokens for `p_refresh_hash`.
-- Returns {"user", "amr"} or {"error": code}.
CREATE FUNCTION auth.sluice_mfa_verified(p_user_id uuid, p_factor_id uuid, p_challenge_id uuid,
                                         p_step bigint, p_session_id uuid, p_amr jsonb,
                                         p_refresh_hash text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
BEGIN
    DELETE FROM auth.mfa_challenges WHERE id = p_challenge_id AND factor_id = p_factor_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'mfa_challenge_not_found');
    END IF;
    UPDATE auth.mfa_factors
    SET status = 'verified', last_used_step = p_step, updated_at = now()
    WHERE id = p_factor_id AND user_id = p_user_id
      AND (last_used_step IS NULL OR last_used_step < p_step);
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'mfa_verification_failed');
    END IF;
    UPDATE auth.sessions SET aal = 'aal2', updated_at = now(), refreshed_at = now()
    WHERE id = p_session_id AND user_id = p_user_id;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'session_not_found');
    END IF;
    INSERT INTO auth.mfa_amr_claims (session_id, authentication_method, created_at)
    SELECT p_session_id, e->>'method', to_timestamp((e->>'timestamp')::double precision)
    FROM jsonb_array_elements(p_amr) AS e
    WHERE e->>'method' NOT IN ('totp', 'token_refresh') AND e->>'timestamp' ~ '^[0-9]+$'
    ON CONFLICT DO NOTHING;
    INSERT INTO auth.mfa_amr_claims (session_id, authentication_method)
    VALUES (p_session_id, 'totp')
    ON CONFLICT (session_id, authentication_method) DO UPDATE SET created_at = now();
    UPDATE auth.refresh_tokens SET revoked_at = now()
    WHERE session_id = p_session_id AND revoked_at IS NULL;
    INSERT INTO auth.refresh_tokens (token_hash, session_id, user_id)
    VALUES (p_refresh_hash, p_session_id, p_user_id);
    SELECT * INTO u FROM auth.users WHERE id = p_user_id;
    RETURN jsonb_build_object('user', auth.sluice_user_json(u),
                              'amr', auth.sluice_session_amr(p_session_id));
END
$$;

-- A session's `amr`: its methods, newest first, as [{"method", "timestamp"}].
CREATE FUNCTION auth.sluice_session_amr(p_session_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'method', a.authentication_method,
               'timestamp', extract(epoch FROM a.created_at)::bigint)
           ORDER BY a.created_at DESC, a.authentication_method), '[]')
    FROM auth.mfa_amr_claims AS a WHERE a.session_id = p_session_id
$$;

-- Removes the user's factor; its JSON, or NULL when there was none. With no verified factor left,
-- the user's sessions fall back to aal1.
CREATE FUNCTION auth.sluice_mfa_unenroll(p_user_id uuid, p_factor_id uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f auth.mfa_factors;
BEGIN
    DELETE FROM auth.mfa_factors WHERE id = p_factor_id AND user_id = p_user_id RETURNING * INTO f;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM auth.mfa_factors WHERE user_id = p_user_id AND status = 'verified') THEN
        UPDATE auth.sessions SET aal = 'aal1' WHERE user_id = p_user_id AND aal = 'aal2';
    END IF;
    RETURN auth.sluice_factor_json(f);
END
$$;

DO $grants$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
        WHERE p.pronamespace = 'auth'::regnamespace
          AND (p.proname LIKE 'sluice\_mfa\_%' OR p.proname IN ('sluice_factor_json', 'sluice_session_amr'))
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$grants$;
GRANT EXECUTE ON FUNCTION
    auth.sluice_mfa_factors(uuid),
    auth.sluice_mfa_enroll(uuid, text, text, int),
    auth.sluice_mfa_challenge(uuid, uuid, text),
    auth.sluice_mfa_for_verify(uuid, uuid, uuid),
    auth.sluice_mfa_verified(uuid, uuid, uuid, bigint, uuid, jsonb, text),
    auth.sluice_session_amr(uuid),
    auth.sluice_mfa_unenroll(uuid, uuid)
TO authenticator;

-- ============================================================================================
-- OAuth and OpenID Connect sign-in (issue 15, oidc helper): extension/sql/auth_oauth.sql
-- ============================================================================================

-- OAuth and OpenID Connect sign-in (issue 15): the user behind a provider's account, found or made.
-- The sidecar has checked the provider's answer (an ID token's signature, or the provider's user
-- API over TLS); this applies GoTrue's rules:
-- - an identity (provider, provider_id) already known: its user, the identity's data refreshed;
-- - else, when the provider vouches for the email, a user with that email CONFIRMED gets the new
--   identity linked (an unconfirmed account could belong to whoever typed the address);
-- - else a new user, its email confirmed when the provider says email_verified.
-- Returns {"user_id", "created", "linked"}, or {"error": "email_exists"} when the email belongs to
-- a user the identity may not be linked to, or {"error": "signup_disabled"} when a user would be
-- created and `p_may_create` is false (sign-ups disabled).
CREATE FUNCTION auth.sluice_oauth_user(
    p_provider text, p_provider_id text, p_identity_data jsonb, p_email text,
    p_email_verified boolean, p_may_create boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid;
    v_email text := nullif(lower(p_email), '');
BEGIN
    UPDATE auth.identities
       SET identity_data = p_identity_data, last_sign_in_at = now(), updated_at = now()
     WHERE provider = p_provider AND provider_id = p_provider_id
    RETURNING user_id INTO v_user;
    IF v_user IS NOT NULL THEN
        RETURN jsonb_build_object('user_id', v_user, 'created', false, 'linked', false);
    END IF;
    IF v_email IS NOT NULL THEN
        SELECT id INTO v_user FROM auth.users WHERE email = v_email;
        IF v_user IS NOT NULL THEN
            IF NOT p_email_verified OR NOT EXISTS (
                SELECT 1 FROM auth.users WHERE id = v_user AND email_confirmed_at IS NOT NULL) THEN
                RETURN jsonb_build_object('error', 'email_exists');
            END IF;
            INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at)
            VALUES (p_provider_id, v_user, p_identity_data, p_provider, now());
            UPDATE auth.users
               SET raw_app_meta_data = jsonb_set(coalesce(raw_app_meta_data, '{}'), '{providers}',
                       coalesce(raw_app_meta_data -> 'providers', '[]')
                       || CASE WHEN coalesce(raw_app_meta_data -> 'providers', '[]') ? p_provider
                               THEN '[]'::jsonb ELSE jsonb_build_array(p_provider) END),
                   updated_at = now()
             WHERE id = v_user;
            RETURN jsonb_build_object('user_id', v_user, 'created', false, 'linked', true);
        END IF;
    END IF;
    IF NOT p_may_create THEN
        RETURN jsonb_build_object('error', 'signup_disabled');
    END IF;
    INSERT INTO auth.users (email, role, raw_user_meta_data, raw_app_meta_data, email_confirmed_at)
    VALUES (v_email, 'authenticated', coalesce(p_identity_data, '{}'),
            jsonb_build_object('provider', p_provider, 'providers', jsonb_build_array(p_provider)),
            CASE WHEN p_email_verified AND v_email IS NOT NULL THEN now() END)
    RETURNING id INTO v_user;
    INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at)
    VALUES (p_provider_id, v_user, p_identity_data, p_provider, now());
    RETURN jsonb_build_object('user_id', v_user, 'created', true, 'linked', false);
END
$$;

REVOKE ALL ON FUNCTION auth.sluice_oauth_user(text, text, jsonb, text, boolean, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sluice_oauth_user(text, text, jsonb, text, boolean, boolean) TO authenticator;

-- The user as GoTrue returns it, now with the provider identities in `identities` (after the email
-- and phone ones): the previous definition is kept as `sluice_user_json_base` and completed here.
ALTER FUNCTION auth.sluice_user_json(auth.users) RENAME TO sluice_user_json_base;
CREATE FUNCTION auth.sluice_user_json(u auth.users)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN x.ids IS NULL THEN b.base
                ELSE jsonb_set(b.base, '{identities}', (b.base -> 'identities') || x.ids) END
    FROM (SELECT auth.sluice_user_json_base(u) AS base) AS b,
         LATERAL (
            SELECT jsonb_agg(jsonb_build_object(
                       'identity_id', i.id,
                       'id', i.provider_id,
                       'user_id', i.user_id,
                       'identity_data', i.identity_data,
                       'provider', i.provider,
                       'last_sign_in_at', i.last_sign_in_at,
                       'created_at', i.created_at,
                       'updated_at', i.updated_at,
                       'email', i.email) ORDER BY i.created_at, i.id) AS ids
            FROM auth.identities AS i
            WHERE i.user_id = u.id AND i.provider NOT IN ('email', 'phone')) AS x
$$;
REVOKE ALL ON FUNCTION auth.sluice_user_json(auth.users) FROM PUBLIC;

-- alink: manual identity linking and unlinking (issue 15): extension/sql/auth_link.sql
-- Manual identity linking (issue 15), as GoTrue's `linkIdentity` / `unlinkIdentity`: a signed-in user
-- adds a provider identity to their own account (not by email, never to another user), or removes
-- one of theirs, keeping at least one. Same access model as auth_tables.sql: granted to nobody, the
-- sidecar calls the SECURITY DEFINER functions below as `authenticator`.

-- The user JSON shows an `email` identity built from `auth.users.email` (auth_otp.sql). A user
-- listed here has no email identity of their own: they unlinked it, or their email came from a
-- provider identity linked by hand (an anonymous user converted by linking). No secret here.
CREATE TABLE auth.email_identity_removed (
    user_id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON auth.email_identity_removed FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('auth.email_identity_removed', '');

-- The user as GoTrue returns it, without the email identity of a user listed above. The previous
-- definition is kept as `sluice_user_json_identities` and filtered here.
ALTER FUNCTION auth.sluice_user_json(auth.users) RENAME TO sluice_user_json_identities;
CREATE FUNCTION auth.sluice_user_json(u auth.users)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN NOT EXISTS (SELECT 1 FROM auth.email_identity_removed AS r WHERE r.user_id = u.id)
            THEN j.base
        ELSE jsonb_set(j.base, '{identities}', coalesce((
            SELECT jsonb_agg(i ORDER BY n)
            FROM jsonb_array_elements(j.base -> 'identities') WITH ORDINALITY AS e (i, n)
            WHERE NOT (i ->> 'provider' = 'email' AND i ->> 'identity_id' = u.id::text)), '[]'))
        END
    FROM (SELECT auth.sluice_user_json_identities(u) AS base) AS j
$$;
REVOKE ALL ON FUNCTION auth.sluice_user_json(auth.users) FROM PUBLIC;

-- `app_metadata.providers` recomputed from the user's identities, in their order, and `provider`
-- the first of them (GoTrue's UpdateAppMetaDataProviders), after an identity was removed.
CREATE FUNCTION auth.sluice_refresh_providers(p_user uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
    v_providers jsonb;
BEGIN
    SELECT * INTO u FROM auth.users WHERE id = p_user;
    SELECT coalesce(jsonb_agg(p ORDER BY first), '[]') INTO v_providers
    FROM (SELECT i ->> 'provider' AS p, min(n) AS first
          FROM jsonb_array_elements(auth.sluice_user_json(u) -> 'identities') WITH ORDINALITY AS e (i, n)
          GROUP BY 1) AS x;
    UPDATE auth.users
       SET raw_app_meta_data = coalesce(raw_app_meta_data, '{}')
               || jsonb_build_object('providers', v_providers)
               || CASE WHEN jsonb_array_length(v_providers) > 0
                       THEN jsonb_build_object('provider', v_providers ->> 0) ELSE '{}' END,
           updated_at = now()
     WHERE id = p_user;
END
$$;

-- Links a provider's identity, checked by the sidecar, to `p_user` (GoTrue's linkIdentityToUser).
-- Refused, changing nothing: an identity already linked (to this user or another one:
-- {"error": "identity_already_exists", "same_user": bool}); for a user without an email (an
-- anonymous user), an identity whose email the provider did not verify ("email_not_verified"), or
-- whose email another user has ("email_exists"). A user without an email takes the identity's
-- verified email and stops being anonymous, keeping their id. Returns {"user_id", "converted"}.
CREATE FUNCTION auth.sluice_link_identity(
    p_user uuid, p_provider text, p_provider_id text, p_identity_data jsonb, p_email text,
    p_email_verified boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
    v_owner uuid;
    v_email text := nullif(lower(p_email), '');
    v_takes_email boolean;
BEGIN
    SELECT * INTO u FROM auth.users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'user_not_found');
    END IF;
    SELECT user_id INTO v_owner FROM auth.identities
     WHERE provider = p_provider AND provider_id = p_provider_id;
    IF v_owner IS NOT NULL THEN
        RETURN jsonb_build_object('error', 'identity_already_exists', 'same_user', v_owner = p_user);
    END IF;
    v_takes_email := coalesce(u.email, '') = '';
    IF v_takes_email THEN
        IF v_email IS NULL OR NOT p_email_verified THEN
            RETURN jsonb_build_object('error', 'email_not_verified');
        END IF;
        IF EXISTS (SELECT 1 FROM auth.users WHERE email = v_email AND id <> p_user) THEN
            RETURN jsonb_build_object('error', 'email_exists');
        END IF;
    END IF;
    INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at)
    VALUES (p_provider_id, p_user, p_identity_data, p_provider, now());
    IF v_takes_email THEN
        -- The email is the identity's, not an email identity of the user's own.
        INSERT INTO auth.email_identity_removed (user_id) VALUES (p_user) ON CONFLICT DO NOTHING;
        UPDATE auth.users
           SET email = v_email, email_confirmed_at = now(), is_anonymous = false,
               raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || jsonb_build_object('email_verified', true),
               updated_at = now()
         WHERE id = p_user;
    END IF;
    -- The provider joins `providers`; it becomes `provider` for a user who had none (anonymous).
    UPDATE auth.users
       SET raw_app_meta_data = coalesce(raw_app_meta_data, '{}')
               || jsonb_build_object('providers', coalesce(raw_app_meta_data -> 'providers', '[]')
                      || CASE WHEN coalesce(raw_app_meta_data -> 'providers', '[]') ? p_provider
                              THEN '[]'::jsonb ELSE jsonb_build_array(p_provider) END)
               || CASE WHEN coalesce(raw_app_meta_data ->> 'provider', 'anonymous') = 'anonymous'
                       THEN jsonb_build_object('provider', p_provider) ELSE '{}' END,
           updated_at = now()
     WHERE id = p_user;
    RETURN jsonb_build_object('user_id', p_user, 'converted', u.is_anonymous AND v_takes_email);
END
$$;

-- Removes one of `p_user`'s identities (GoTrue's DeleteIdentity), by its `identity_id` in the user
-- JSON: a provider identity (its row), the email identity (the user keeps the address only if
-- another identity has it, see below) or the phone identity (the phone is removed). Refused:
-- the user's only identity ("single_identity_not_deletable"), an identity that is not the user's
-- ("identity_not_found"). Afterwards, as GoTrue's UpdateUserEmailFromIdentities: if no remaining
-- identity has the user's email, the user takes the email of the best one left (verified first,
-- then unverified, oldest first; unconfirmed if the provider did not verify it; none if no identity
-- has one); when that email is another user's, nothing changes
-- ("email_conflict_identity_not_deletable"). Returns {"provider"} of the identity removed.
CREATE FUNCTION auth.sluice_unlink_identity(p_user uuid, p_identity uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
    v_ids jsonb;
    v_found jsonb;
    v_provider text;
    v_best jsonb;
    v_email text;
BEGIN
    SELECT * INTO u FROM auth.users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'user_not_found');
    END IF;
    v_ids := auth.sluice_user_json(u) -> 'identities';
    IF jsonb_array_length(v_ids) <= 1 THEN
        RETURN jsonb_build_object('error', 'single_identity_not_deletable');
    END IF;
    -- The email and phone identities both carry the user's id: the email one is taken first.
    SELECT i INTO v_found
    FROM jsonb_array_elements(v_ids) WITH ORDINALITY AS e (i, n)
    WHERE i ->> 'identity_id' = p_identity::text
    ORDER BY n LIMIT 1;
    IF v_found IS NULL THEN
        RETURN jsonb_build_object('error', 'identity_not_found');
    END IF;
    v_provider := v_found ->> 'provider';
    BEGIN
        IF v_provider = 'email' AND p_identity = p_user THEN
            INSERT INTO auth.email_identity_removed (user_id) VALUES (p_user) ON CONFLICT DO NOTHING;
        ELSIF v_provider = 'phone' AND p_identity = p_user THEN
            UPDATE auth.users SET phone = NULL, phone_confirmed_at = NULL, updated_at = now()
             WHERE id = p_user;
        ELSE
            DELETE FROM auth.identities WHERE id = p_identity AND user_id = p_user;
        END IF;
        IF v_provider <> 'phone' THEN
            SELECT * INTO u FROM auth.users WHERE id = p_user;
            v_ids := auth.sluice_user_json(u) -> 'identities';
            IF coalesce(u.email, '') = '' OR NOT EXISTS (
                    SELECT 1 FROM jsonb_array_elements(v_ids) AS i
                    WHERE lower(i ->> 'email') = u.email
                       OR lower(i -> 'identity_data' ->> 'email') = u.email) THEN
                SELECT i INTO v_best
                FROM jsonb_array_elements(v_ids) WITH ORDINALITY AS e (i, n)
                ORDER BY CASE WHEN coalesce(i -> 'identity_data' ->> 'email', '') = '' THEN 2
                              WHEN (i -> 'identity_data' ->> 'email_verified') = 'true' THEN 0
                              ELSE 1 END,
                         i ->> 'created_at', n
                LIMIT 1;
                v_email := nullif(lower(v_best -> 'identity_data' ->> 'email'), '');
                UPDATE auth.users
                   SET email = v_email,
                       email_confirmed_at = CASE
                           WHEN v_email IS NOT NULL AND (v_best -> 'identity_data' ->> 'email_verified') = 'true'
                           THEN email_confirmed_at END,
                       updated_at = now()
                 WHERE id = p_user;
            END IF;
        END IF;
    EXCEPTION WHEN unique_violation THEN
        RETURN jsonb_build_object('error', 'email_conflict_identity_not_deletable');
    END;
    PERFORM auth.sluice_refresh_providers(p_user);
    RETURN jsonb_build_object('provider', v_provider);
END
$$;

REVOKE ALL ON FUNCTION auth.sluice_refresh_providers(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.sluice_link_identity(uuid, text, text, jsonb, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.sluice_unlink_identity(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sluice_link_identity(uuid, text, text, jsonb, text, boolean) TO authenticator;
GRANT EXECUTE ON FUNCTION auth.sluice_unlink_identity(uuid, uuid) TO authenticator;

-- aflow: resent confirmations, reauthentication nonces, phone changes, GoTrue's user JSON (issue 15;
-- extension/sql/auth_flow.sql)
-- Two more channels, each with its own live code so that one never replaces another: the nonce
-- of `GET /reauthenticate`, and the code texted to a new phone number (`updateUser({phone})`).
ALTER TABLE auth.otp_codes DROP CONSTRAINT otp_codes_channel_check;
ALTER TABLE auth.otp_codes ADD CONSTRAINT otp_codes_channel_check
    CHECK (channel IN ('email', 'sms', 'phone_change', 'reauthentication'));
ALTER TABLE auth.otp_codes DROP CONSTRAINT otp_codes_purpose_check;
ALTER TABLE auth.otp_codes ADD CONSTRAINT otp_codes_purpose_check
    CHECK (purpose IN ('magiclink', 'signup', 'invite', 'recovery', 'sms', 'phone_change',
                       'reauthentication'));

-- The user as GoTrue returns it: GoTrue's `omitempty` fields are left out while unset (rather
-- than sent as null), and a pending phone change shows as `new_phone`. The previous definition is
-- kept as `sluice_user_json_unset` and completed here.
ALTER FUNCTION auth.sluice_user_json(auth.users) RENAME TO sluice_user_json_unset;
CREATE FUNCTION auth.sluice_user_json(u auth.users)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT x.j - ARRAY(
        SELECT k FROM unnest(ARRAY[
            'email_confirmed_at', 'invited_at', 'phone_confirmed_at', 'confirmation_sent_at',
            'confirmed_at', 'recovery_sent_at', 'new_email', 'email_change_sent_at', 'new_phone',
            'phone_change_sent_at', 'reauthentication_sent_at', 'last_sign_in_at', 'banned_until'
        ]) AS k
        WHERE x.j -> k = 'null'::jsonb)
    FROM (SELECT auth.sluice_user_json_unset(u)
            || CASE WHEN coalesce(u.phone_change, '') = '' THEN '{}'::jsonb
                    ELSE jsonb_build_object('new_phone', u.phone_change,
                                            'phone_change_sent_at', u.phone_change_sent_at) END
            || jsonb_build_object('reauthentication_sent_at', u.reauthentication_sent_at) AS j) AS x
$$;
REVOKE ALL ON FUNCTION auth.sluice_user_json(auth.users) FROM PUBLIC;

-- Stores the user's new code on `channel` (replacing the live one) and notes when it was sent;
-- for `phone_change`, `phone` is the number asked for. A number another user has raises
-- unique_violation. Returns the user, NULL when the user is gone.
CREATE FUNCTION auth.sluice_issue_flow_code(user_id uuid, channel text, code_hash text, phone text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
BEGIN
    IF $2 = 'phone_change' AND EXISTS (
        SELECT 1 FROM auth.users AS x WHERE x.phone = $4 AND x.id <> $1) THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint "users_phone_key"'
            USING ERRCODE = 'unique_violation';
    END IF;
    UPDATE auth.users AS x SET
        phone_change = CASE WHEN $2 = 'phone_change' THEN $4 ELSE x.phone_change END,
        phone_change_sent_at = CASE WHEN $2 = 'phone_change' THEN now() ELSE x.phone_change_sent_at END,
        reauthentication_sent_at = CASE WHEN $2 = 'reauthentication' THEN now()
                                        ELSE x.reauthentication_sent_at END
    WHERE x.id = $1
    RETURNING * INTO u;
    IF u.id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO auth.otp_codes AS o (user_id, channel, purpose, code_hash, link_hash)
    VALUES ($1, $2, $2, $3, NULL)
    ON CONFLICT ON CONSTRAINT otp_codes_pkey DO UPDATE SET purpose = EXCLUDED.purpose,
        code_hash = EXCLUDED.code_hash, link_hash = NULL, failed_attempts = 0, created_at = now();
    RETURN auth.sluice_user_json(u);
END
$$;

-- The live code of a user on `channel`, for the sidecar to compare in constant time: its hash,
-- NULL when there is none younger than `valid_for`. With `phone`, the user is the one waiting
-- to change to that number: {"user_id", "code_hash"} or NULL.
CREATE FUNCTION auth.sluice_flow_code_pending(user_id uuid, channel text, phone text, valid_for interval)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('user_id', o.user_id, 'code_hash', o.code_hash)
    FROM auth.otp_codes AS o JOIN auth.users AS u ON u.id = o.user_id
    WHERE o.channel = $2 AND o.created_at > now() - $4
      AND CASE WHEN $3 IS NOT NULL THEN u.phone_change = $3 ELSE o.user_id = $1 END
    ORDER BY o.created_at DESC
    LIMIT 1
$$;

-- Uses up the code (once): a reauthentication nonce clears `reauthentication_sent_at`; a phone
-- change code applies the new number, confirmed. Returns the user, NULL when there is no such
-- live code. A number taken meanwhile raises unique_violation.
CREATE FUNCTION auth.sluice_take_flow_code(user_id uuid, channel text, code_hash text, valid_for interval)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o auth.otp_codes;
    u auth.users;
BEGIN
    DELETE FROM auth.otp_codes AS x
    WHERE x.user_id = $1 AND x.channel = $2 AND x.code_hash = $3 AND x.created_at > now() - $4
    RETURNING * INTO o;
    IF o.user_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF $2 = 'phone_change' THEN
        UPDATE auth.users AS x SET phone = x.phone_change, phone_confirmed_at = now(),
            phone_change = '', phone_change_sent_at = NULL, updated_at = now()
        WHERE x.id = $1 AND coalesce(x.phone_change, '') <> ''
        RETURNING * INTO u;
    ELSE
        UPDATE auth.users AS x SET reauthentication_sent_at = NULL WHERE x.id = $1
        RETURNING * INTO u;
    END IF;
    IF u.id IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN auth.sluice_user_json(u);
END
$$;

-- A phone change without a code (SLUICE_AUTH_AUTOCONFIRM): the number is applied, confirmed.
-- A number another user has raises unique_violation. NULL when the user is gone.
CREATE FUNCTION auth.sluice_set_phone(user_id uuid, phone text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
BEGIN
    UPDATE auth.users AS x SET phone = $2, phone_confirmed_at = now(), phone_change = '',
        phone_change_sent_at = NULL, updated_at = now()
    WHERE x.id = $1
    RETURNING * INTO u;
    IF u.id IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM auth.otp_codes AS o WHERE o.user_id = $1 AND o.channel = 'phone_change';
    RETURN auth.sluice_user_json(u);
END
$$;

-- A resent signup confirmation replaces the mailed signup token too (it is in
-- auth.one_time_tokens when the confirmation came from `POST /signup`): only the new one works.
CREATE FUNCTION auth.sluice_drop_one_time_token(user_id uuid, token_type text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM auth.one_time_tokens AS o WHERE o.user_id = $1 AND o.token_type = $2
$$;

-- How long ago the session started, in seconds; NULL when it is gone (a password change asks for
-- a reauthentication nonce when the session is older than a day, as GoTrue does).
CREATE FUNCTION auth.sluice_session_age(session_id uuid)
RETURNS double precision
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT extract(epoch FROM now() - s.created_at)::double precision
    FROM auth.sessions AS s WHERE s.id = $1
$$;

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'auth.sluice_issue_flow_code(uuid, text, text, text)',
        'auth.sluice_flow_code_pending(uuid, text, text, interval)',
        'auth.sluice_take_flow_code(uuid, text, text, interval)',
        'auth.sluice_set_phone(uuid, text)',
        'auth.sluice_drop_one_time_token(uuid, text)',
        'auth.sluice_session_age(uuid)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO authenticator', f);
    END LOOP;
END
$grants$;

-- Several pipelined reads in one call (extension/src/reads.rs): each in a subtransaction rolled
-- back after it, a failing read answered with its error in its row.
CREATE FUNCTION sluice.run_reads(roles text[], claims text[], methods text[], paths text[], headers text[], statement_timeouts text[], sqls text[], param_counts int4[], params text[]) RETURNS TABLE(result text[], error text[]) STRICT VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'run_reads_wrapper';
COMMENT ON FUNCTION sluice.run_reads(text[], text[], text[], text[], text[], text[], text[], int4[], text[]) IS 'Runs several read-only sidecar requests, each in a subtransaction rolled back after it; a read''s error is its row''s answer (for authenticator only).';
REVOKE ALL ON FUNCTION sluice.run_reads(text[], text[], text[], text[], text[], text[], text[], int4[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sluice.run_reads(text[], text[], text[], text[], text[], text[], text[], int4[], text[]) TO authenticator;
