-- Sluice auth: users, passwords, sessions, refresh tokens, one-time tokens and the mail outbox.
--
-- Access model. The tables are owned by the extension's owner and granted to nobody: not to anon,
-- authenticated or service_role (so no REST or RPC request, whatever its key, can read a password
-- hash or a token hash, even through a function a user writes), and not to authenticator. The
-- sidecar reaches them only through the SECURITY DEFINER functions below, which only
-- `authenticator` may execute: a request's transaction runs as anon/authenticated/service_role,
-- which do not inherit authenticator's privileges, so REST cannot call them either. Each function
-- does one whole step (rotating a refresh token, say) atomically, in one round trip.
--
-- Secrets live apart from `auth.users`: that table is tracked by the change log (webhooks and
-- realtime see user changes), and the log records whole rows, so the password hash is kept in
-- `auth.passwords` and one-time token hashes in `auth.one_time_tokens`, neither of them tracked.

CREATE TABLE auth.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    aud text NOT NULL DEFAULT 'authenticated',
    role text NOT NULL DEFAULT 'authenticated',
    email text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 320),
    email_confirmed_at timestamptz,
    confirmation_sent_at timestamptz,
    recovery_sent_at timestamptz,
    -- A requested new email, applied when the link mailed to it is followed.
    email_change text CHECK (email_change = lower(email_change)),
    email_change_sent_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(raw_app_meta_data) = 'object'),
    raw_user_meta_data jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(raw_user_meta_data) = 'object'),
    banned_until timestamptz,
    is_anonymous boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Emails are stored lower-cased (the CHECK above), so this index makes them unique regardless of case.
CREATE UNIQUE INDEX users_email_key ON auth.users (email);

-- Argon2id PHC strings; see sidecar/src/auth/password.rs for the parameters.
CREATE TABLE auth.passwords (
    user_id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    hash text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth.sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    aal text NOT NULL DEFAULT 'aal1',
    user_agent text,
    ip text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz
);
CREATE INDEX sessions_user_id_idx ON auth.sessions (user_id);

-- Refresh tokens are stored as SHA-256 hashes (hex) of the random token handed to the client. Each
-- rotation revokes a token and inserts its child, so a session's tokens form a chain via `parent`.
CREATE TABLE auth.refresh_tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    session_id uuid NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    parent bigint REFERENCES auth.refresh_tokens (id) ON DELETE SET NULL,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_session_id_idx ON auth.refresh_tokens (session_id);

-- Confirmation and recovery tokens (SHA-256 hex of the emailed token); one of each kind per user.
CREATE TABLE auth.one_time_tokens (
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    token_type text NOT NULL CHECK (token_type IN ('signup', 'recovery', 'email_change')),
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, token_type)
);

-- What the default mailer sent: a development inbox, and a queue for a relay of one's own.
CREATE TABLE auth.mail_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- "On user created" webhooks and realtime: user rows go through the change log.
SELECT sluice.enable_realtime('auth.users');

-- Backups: every auth table holds user data (accounts, hashes, sessions, tokens, sent mail), so
-- pg_dump must keep its rows (see bootstrap.sql); the identity sequences too, so ids continue.
SELECT pg_catalog.pg_extension_config_dump('auth.users', '');
SELECT pg_catalog.pg_extension_config_dump('auth.passwords', '');
SELECT pg_catalog.pg_extension_config_dump('auth.sessions', '');
SELECT pg_catalog.pg_extension_config_dump('auth.refresh_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('auth.refresh_tokens_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('auth.one_time_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mail_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mail_outbox_id_seq', '');

-- The user as GoTrue returns it (its `models.User` JSON), which supabase-js expects. Internal:
-- called by the functions below only.
CREATE FUNCTION auth.sluice_user_json(u auth.users)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'id', u.id,
        'aud', u.aud,
        'role', u.role,
        'email', u.email,
        'email_confirmed_at', u.email_confirmed_at,
        'phone', '',
        'confirmation_sent_at', u.confirmation_sent_at,
        'confirmed_at', u.email_confirmed_at,
        'recovery_sent_at', u.recovery_sent_at,
        'email_change_sent_at', u.email_change_sent_at,
        'last_sign_in_at', u.last_sign_in_at,
        'app_metadata', u.raw_app_meta_data,
        'user_metadata', u.raw_user_meta_data,
        'identities', jsonb_build_array(jsonb_build_object(
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
            'email', u.email)),
        'created_at', u.created_at,
        'updated_at', u.updated_at,
        'is_anonymous', u.is_anonymous)
    || CASE WHEN u.banned_until IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('banned_until', u.banned_until) END
    || CASE WHEN u.email_change IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('new_email', u.email_change) END
$$;

-- GoTrue's metadata update: keys of `patch` replace those of `base`, and a key set to null is removed.
CREATE FUNCTION auth.sluice_merge_meta(base jsonb, patch jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb)
    FROM jsonb_each(base || coalesce(patch, '{}'::jsonb))
    WHERE value <> 'null'::jsonb
$$;

-- A new user with a password hash. A taken email raises unique_violation (23505) on users_email_key.
CREATE FUNCTION auth.sluice_create_user(
    email text, password_hash text, user_meta jsonb, app_meta jsonb, confirmed boolean, role text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
BEGIN
    INSERT INTO auth.users (email, role, raw_user_meta_data, raw_app_meta_data, email_confirmed_at)
    VALUES (lower(email), coalesce(role, 'authenticated'), coalesce(user_meta, '{}'),
            jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email'))
                || coalesce(app_meta, '{}'),
            CASE WHEN confirmed THEN now() END)
    RETURNING * INTO u;
    IF password_hash IS NOT NULL THEN
        INSERT INTO auth.passwords (user_id, hash) VALUES (u.id, password_hash);
    END IF;
    RETURN auth.sluice_user_json(u);
END
$$;

-- What password sign-in needs. The only function that returns a password hash; the sidecar checks it
-- and never sends it anywhere.
CREATE FUNCTION auth.sluice_password_of(email text)
RETURNS TABLE (user_id uuid, hash text, banned boolean, confirmed boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, p.hash, coalesce(u.banned_until > now(), false), u.email_confirmed_at IS NOT NULL
    FROM auth.users AS u JOIN auth.passwords AS p ON p.user_id = u.id
    WHERE u.email = lower($1)
$$;

-- Starts a session with its first refresh token; NULL when the user is gone or banned.
-- Returns {"session_id", "user"}.
CREATE FUNCTION auth.sluice_start_session(
    user_id uuid, refresh_hash text, user_agent text, ip text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
    sid uuid;
BEGIN
    UPDATE auth.users SET last_sign_in_at = now(), updated_at = now()
    WHERE id = $1 AND NOT coalesce(banned_until > now(), false)
    RETURNING * INTO u;
    IF u.id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO auth.sessions (user_id, user_agent, ip) VALUES (u.id, $3, $4) RETURNING id INTO sid;
    INSERT INTO auth.refresh_tokens (token_hash, session_id, user_id) VALUES ($2, sid, u.id);
    RETURN jsonb_build_object('session_id', sid, 'user', auth.sluice_user_json(u));
END
$$;

-- Rotates a refresh token. Returns {"session_id", "aal", "user"} on success, else {"error": code}:
--   refresh_token_not_found    unknown token (or its session was revoked);
--   refresh_token_already_used a revoked token presented after the grace window: reuse, so the
--                              whole session is revoked, the newest token included;
--   user_banned                the user is banned.
-- Within `grace` of a token's revocation, presenting it again (two tabs refreshing at once) gets a
-- sibling of the token issued the first time instead of a reuse verdict.
CREATE FUNCTION auth.sluice_refresh(token_hash text, new_hash text, grace interval)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t auth.refresh_tokens;
    u auth.users;
    s auth.sessions;
BEGIN
    SELECT * INTO t FROM auth.refresh_tokens AS r WHERE r.token_hash = $1 FOR UPDATE;
    IF t.id IS NULL THEN
        RETURN jsonb_build_object('error', 'refresh_token_not_found');
    END IF;
    SELECT * INTO s FROM auth.sessions WHERE id = t.session_id FOR UPDATE;
    IF t.revoked_at IS NOT NULL AND t.revoked_at < now() - grace THEN
        DELETE FROM auth.sessions WHERE id = t.session_id;
        RETURN jsonb_build_object('error', 'refresh_token_already_used');
    END IF;
    SELECT * INTO u FROM auth.users WHERE id = t.user_id;
    IF coalesce(u.banned_until > now(), false) THEN
        RETURN jsonb_build_object('error', 'user_banned');
    END IF;
    IF t.revoked_at IS NULL THEN
        UPDATE auth.refresh_tokens SET revoked_at = now() WHERE id = t.id;
    END IF;
    INSERT INTO auth.refresh_tokens (token_hash, session_id, user_id, parent)
    VALUES ($2, t.session_id, t.user_id, t.id);
    UPDATE auth.sessions SET refreshed_at = now(), updated_at = now() WHERE id = t.session_id;
    RETURN jsonb_build_object('session_id', s.id, 'aal', s.aal, 'user', auth.sluice_user_json(u));
END
$$;

-- The user behind an access token: NULL if the user is gone, {"error": "session_not_found"} if the
-- token names a session that has ended.
CREATE FUNCTION auth.sluice_user_of(user_id uuid, session_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
BEGIN
    SELECT * INTO u FROM auth.users WHERE id = $1;
    IF u.id IS NULL THEN
        RETURN NULL;
    END IF;
    IF $2 IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM auth.sessions AS s WHERE s.id = $2 AND s.user_id = $1) THEN
        RETURN jsonb_build_object('error', 'session_not_found');
    END IF;
    RETURN auth.sluice_user_json(u);
END
$$;

-- Changes a user. NULL arguments leave a field as it is; metadata is merged as GoTrue merges it.
-- `ban` NULL leaves the ban, 'epoch' lifts it, another time bans until then (and ends all
-- sessions). A new password ends every session but `keep_session`. NULL when the user is gone.
CREATE FUNCTION auth.sluice_update_user(
    user_id uuid, email text, password_hash text, user_meta jsonb, app_meta jsonb,
    ban timestamptz, confirm boolean, keep_session uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
BEGIN
    UPDATE auth.users AS x SET
        email = coalesce(lower($2), x.email),
        raw_user_meta_data = CASE WHEN $4 IS NULL THEN x.raw_user_meta_data
                                  ELSE auth.sluice_merge_meta(x.raw_user_meta_data, $4) END,
        raw_app_meta_data = CASE WHEN $5 IS NULL THEN x.raw_app_meta_data
                                 ELSE auth.sluice_merge_meta(x.raw_app_meta_data, $5) END,
        banned_until = CASE WHEN $6 IS NULL THEN x.banned_until
                            WHEN $6 = 'epoch' THEN NULL ELSE $6 END,
        email_confirmed_at = CASE WHEN coalesce($7, false) THEN coalesce(x.email_confirmed_at, now())
                                  ELSE x.email_confirmed_at END,
        updated_at = now()
    WHERE x.id = $1
    RETURNING * INTO u;
    IF u.id IS NULL THEN
        RETURN NULL;
    END IF;
    IF $3 IS NOT NULL THEN
        INSERT INTO auth.passwords AS p (user_id, hash) VALUES (u.id, $3)
        ON CONFLICT ON CONSTRAINT passwords_pkey DO UPDATE SET hash = EXCLUDED.hash, updated_at = now();
        DELETE FROM auth.sessions AS s WHERE s.user_id = u.id AND s.id IS DISTINCT FROM $8;
        DELETE FROM auth.one_time_tokens AS o WHERE o.user_id = u.id AND o.token_type = 'recovery';
    END IF;
    IF $6 IS NOT NULL AND $6 > now() THEN
        DELETE FROM auth.sessions AS s WHERE s.user_id = u.id;
    END IF;
    RETURN auth.sluice_user_json(u);
END
$$;

-- Ends sessions: 'local' the given one, 'others' all of the user's but it, 'global' all of them.
CREATE FUNCTION auth.sluice_logout(user_id uuid, session_id uuid, scope text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM auth.sessions AS s
    WHERE s.user_id = $1
      AND CASE $3 WHEN 'local' THEN s.id = $2
                  WHEN 'others' THEN s.id IS DISTINCT FROM $2
                  ELSE true END
$$;

-- Stores a one-time token (replacing any earlier one of its kind) for the user with this email and
-- returns the user; NULL for an unknown email.
CREATE FUNCTION auth.sluice_issue_one_time_token(email text, token_type text, token_hash text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
BEGIN
    UPDATE auth.users AS x SET
        recovery_sent_at = CASE WHEN $2 = 'recovery' THEN now() ELSE x.recovery_sent_at END,
        confirmation_sent_at = CASE WHEN $2 = 'signup' THEN now() ELSE x.confirmation_sent_at END
    WHERE x.email = lower($1)
    RETURNING * INTO u;
    IF u.id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO auth.one_time_tokens AS o (user_id, token_type, token_hash) VALUES (u.id, $2, $3)
    ON CONFLICT ON CONSTRAINT one_time_tokens_pkey
    DO UPDATE SET token_hash = EXCLUDED.token_hash, created_at = now();
    RETURN auth.sluice_user_json(u);
END
$$;

-- Records a requested email change and its token (the link goes to the new address). A new email
-- that another user has raises unique_violation. NULL when the user is gone.
CREATE FUNCTION auth.sluice_request_email_change(user_id uuid, new_email text, token_hash text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u auth.users;
BEGIN
    IF EXISTS (SELECT 1 FROM auth.users AS x WHERE x.email = lower($2) AND x.id <> $1) THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint "users_email_key"'
            USING ERRCODE = 'unique_violation';
    END IF;
    UPDATE auth.users AS x SET email_change = lower($2), email_change_sent_at = now(), updated_at = now()
    WHERE x.id = $1
    RETURNING * INTO u;
    IF u.id IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO auth.one_time_tokens AS o (user_id, token_type, token_hash)
    VALUES (u.id, 'email_change', $3)
    ON CONFLICT ON CONSTRAINT one_time_tokens_pkey
    DO UPDATE SET token_hash = EXCLUDED.token_hash, created_at = now();
    RETURN auth.sluice_user_json(u);
END
$$;

-- Uses up a one-time token younger than `valid_for`; a signup token confirms the email, an
-- email_change token applies the new email. Returns the user's id, or NULL when the token is
-- unknown, of another kind, or expired.
CREATE FUNCTION auth.sluice_consume_one_time_token(token_type text, token_hash text, valid_for interval)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    uid uuid;
BEGIN
    DELETE FROM auth.one_time_tokens AS o
    WHERE o.token_type = $1 AND o.token_hash = $2 AND o.created_at > now() - $3
    RETURNING o.user_id INTO uid;
    IF uid IS NOT NULL AND $1 = 'signup' THEN
        UPDATE auth.users SET email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now()
        WHERE id = uid;
    ELSIF uid IS NOT NULL AND $1 = 'email_change' THEN
        UPDATE auth.users AS x SET email = x.email_change, email_change = NULL,
            email_change_sent_at = NULL, email_confirmed_at = now(), updated_at = now()
        WHERE x.id = uid AND x.email_change IS NOT NULL;
    END IF;
    RETURN uid;
END
$$;

-- Admin: one page of users, newest first, with the total. Returns {"users": [...], "total": n}.
CREATE FUNCTION auth.sluice_list_users(page int, per_page int)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'users', coalesce((
            SELECT jsonb_agg(auth.sluice_user_json(u) ORDER BY u.created_at DESC, u.id)
            FROM (SELECT * FROM auth.users ORDER BY created_at DESC, id
                  LIMIT $2 OFFSET ($1 - 1) * $2) AS u), '[]'::jsonb),
        'total', (SELECT count(*) FROM auth.users))
$$;

CREATE FUNCTION auth.sluice_get_user(user_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT auth.sluice_user_json(u) FROM auth.users AS u WHERE u.id = $1 $$;

-- Deleting a user ends their sessions and tokens (ON DELETE CASCADE). Returns whether it existed.
CREATE FUNCTION auth.sluice_delete_user(user_id uuid)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM auth.users AS u WHERE u.id = $1 RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM gone)
$$;

CREATE FUNCTION auth.sluice_enqueue_mail(kind text, recipient text, subject text, body text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO auth.mail_outbox (kind, recipient, subject, body) VALUES ($1, $2, $3, $4)
$$;

-- authenticator is NOINHERIT, so it does not get the request roles' USAGE on the schema.
GRANT USAGE ON SCHEMA auth TO authenticator;
DO $grants$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
        WHERE p.pronamespace = 'auth'::regnamespace AND p.proname LIKE 'sluice\_%'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$grants$;
GRANT EXECUTE ON FUNCTION
    auth.sluice_create_user(text, text, jsonb, jsonb, boolean, text),
    auth.sluice_password_of(text),
    auth.sluice_start_session(uuid, text, text, text),
    auth.sluice_refresh(text, text, interval),
    auth.sluice_user_of(uuid, uuid),
    auth.sluice_update_user(uuid, text, text, jsonb, jsonb, timestamptz, boolean, uuid),
    auth.sluice_logout(uuid, uuid, text),
    auth.sluice_issue_one_time_token(text, text, text),
    auth.sluice_request_email_change(uuid, text, text),
    auth.sluice_consume_one_time_token(text, text, interval),
    auth.sluice_list_users(int, int),
    auth.sluice_get_user(uuid),
    auth.sluice_delete_user(uuid),
    auth.sluice_enqueue_mail(text, text, text, text)
TO authenticator;
