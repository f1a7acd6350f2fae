-- Resent confirmations, reauthentication nonces, phone changes and the admin's email-change links
-- (issue 15), and the user JSON as GoTrue shapes it. Same access model as auth_otp.sql: the codes
-- live in `auth.otp_codes` (hashed, one live code per user and channel), reached only through the
-- SECURITY DEFINER functions below, executable by `authenticator` only.

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
