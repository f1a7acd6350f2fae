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
