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
