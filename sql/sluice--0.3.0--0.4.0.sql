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

-- =====================================================================================-- Supabase seeds and user exports: GoTrue's auth.users columns, auth.identities, bcrypt hashes
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

-- GoTrue's identities, which seeds insert beside their users. Not used by Sluice's sign-in (the
-- email and password are), kept so that such seeds and exports load.
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
=======
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
