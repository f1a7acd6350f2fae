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
