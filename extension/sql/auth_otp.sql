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
