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
