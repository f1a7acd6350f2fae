// Sign-in through an OpenID Connect provider with @supabase/supabase-js, unmodified, against a real
// provider started by oidc_support.mjs (npm `oidc-provider`, its development login and consent pages): the
// implicit flow (session in the fragment), PKCE (`exchangeCodeForSession`), a second provider
// configuration with the same verified email linking a second identity to the same user,
// `signInWithIdToken` with an ID token the provider issued, and the refusals (forged or unbound
// state, foreign redirect_to, unknown provider). The sidecar runs with two providers on this
// issuer, `keycloak` (client `sluice`) and `oidc2` (client `sluice2`) (scripts/js-test.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import { anonKey, url } from './support.mjs';
import { site, callback, issuer, emailOf, Jar, browse, fragmentOf } from './oidc_support.mjs';

class NoWebSocket {
  constructor() {
    throw new Error('realtime is not used in these tests');
  }
}
const newClient = (flowType = 'implicit') =>
  createClient(url, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false, flowType },
    realtime: { transport: NoWebSocket },
  });

test('implicit flow: the session arrives in the fragment; the same account signs in as the same user', async () => {
  const login = `ann-${randomUUID().slice(0, 8)}`;
  const supabase = newClient();
  const { data, error } = await supabase.auth.signInWithOAuth({
    provider: 'keycloak',
    options: { redirectTo: `${site}/welcome`, skipBrowserRedirect: true },
  });
  assert.equal(error, null);
  const location = await browse(data.url, new Jar(), login);
  assert.equal(`${location.origin}${location.pathname}`, `${site}/welcome`);
  const fragment = fragmentOf(location);
  assert.equal(fragment.get('token_type'), 'bearer');
  assert.ok(fragment.get('refresh_token'));
  assert.ok(fragment.get('provider_token'), 'the provider access token is handed over');
  assert.ok(Number(fragment.get('expires_in')) > 0);
  const { data: session, error: setError } = await supabase.auth.setSession({
    access_token: fragment.get('access_token'),
    refresh_token: fragment.get('refresh_token'),
  });
  assert.equal(setError, null);
  const user = session.user;
  assert.equal(user.email, emailOf(login));
  assert.ok(user.email_confirmed_at, 'the provider verified the email');
  assert.equal(user.app_metadata.provider, 'keycloak');
  assert.deepEqual(user.app_metadata.providers, ['keycloak']);
  assert.equal(user.user_metadata.name, `User ${login}`);
  const claims = JSON.parse(Buffer.from(fragment.get('access_token').split('.')[1], 'base64url'));
  assert.deepEqual(claims.amr.map((entry) => entry.method ?? entry), ['oauth']);

  // Again, in a fresh browser: the known identity, the same user.
  const again = await newClient().auth.signInWithOAuth({
    provider: 'keycloak',
    options: { redirectTo: `${site}/welcome`, skipBrowserRedirect: true },
  });
  const second = fragmentOf(await browse(again.data.url, new Jar(), login));
  const { data: same } = await newClient().auth.getUser(second.get('access_token'));
  assert.equal(same.user.id, user.id);
});

test('PKCE: the browser comes back with ?code= and exchangeCodeForSession signs in; a second provider with the same verified email links to the user', async () => {
  const login = `bob-${randomUUID().slice(0, 8)}`;
  const supabase = newClient('pkce');
  const { data } = await supabase.auth.signInWithOAuth({
    provider: 'keycloak',
    options: { redirectTo: `${site}/pkce`, skipBrowserRedirect: true },
  });
  assert.match(data.url, /code_challenge=/);
  const location = await browse(data.url, new Jar(), login);
  assert.equal(location.pathname, '/pkce');
  assert.equal(location.hash, '', 'no tokens in the URL with PKCE');
  const code = location.searchParams.get('code');
  assert.ok(code);
  const { data: exchanged, error } = await supabase.auth.exchangeCodeForSession(code);
  assert.equal(error, null);
  assert.equal(exchanged.user.email, emailOf(login));
  const first = exchanged.user.id;
  // The code is used up.
  const replay = await newClient('pkce').auth.exchangeCodeForSession(code);
  assert.ok(replay.error);

  // The same account through the second configuration (another client): a second identity,
  // linked to the user with that verified email.
  const other = newClient('pkce');
  const { data: linkStart } = await other.auth.signInWithOAuth({
    provider: 'oidc2',
    options: { redirectTo: `${site}/pkce`, skipBrowserRedirect: true },
  });
  const linked = await browse(linkStart.url, new Jar(), login);
  const { data: second, error: secondError } = await other.auth.exchangeCodeForSession(
    linked.searchParams.get('code'),
  );
  assert.equal(secondError, null);
  assert.equal(second.user.id, first);
  assert.deepEqual([...second.user.app_metadata.providers].sort(), ['keycloak', 'oidc2']);
  const { data: identities } = await other.auth.getUserIdentities();
  assert.deepEqual(
    identities.identities.map((identity) => identity.provider),
    ['email', 'keycloak', 'oidc2'],
  );
  assert.equal(identities.identities[1].identity_data.email, emailOf(login));
});

test('a forged or unbound state is refused; a foreign redirect_to is not honoured', async () => {
  const login = `cy-${randomUUID().slice(0, 8)}`;
  const { data } = await newClient().auth.signInWithOAuth({
    provider: 'keycloak',
    options: { redirectTo: 'https://evil.example/steal', skipBrowserRedirect: true },
  });
  const jar = new Jar();
  const atCallback = await browse(data.url, jar, login, callback);
  const refused = async (target, cookie) => {
    const response = await fetch(target, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    assert.equal(response.status, 302);
    const location = new URL(response.headers.get('location'));
    assert.equal(location.origin, site);
    assert.equal(location.searchParams.get('error'), 'invalid_request');
    return location.searchParams.get('error_code');
  };
  // Another browser (no cookie) with the real state and code.
  assert.equal(await refused(atCallback.href, null), 'bad_oauth_state');
  // The real browser, the state altered.
  const forged = new URL(atCallback);
  const [payload, tag] = forged.searchParams.get('state').split('.');
  const flow = JSON.parse(Buffer.from(payload, 'base64url'));
  flow.r = 'https://evil.example/steal';
  forged.searchParams.set('state', `${Buffer.from(JSON.stringify(flow)).toString('base64url')}.${tag}`);
  assert.equal(await refused(forged.href, jar.header(callback)), 'bad_oauth_state');
  // No state at all.
  assert.equal(await refused(`${callback}?code=x`, jar.header(callback)), 'bad_oauth_callback');
  // The real browser goes on: signed in, but sent to the site URL, not evil.example.
  const location = await browse(atCallback.href, jar, login);
  assert.equal(location.origin, site);
  assert.ok(fragmentOf(location).get('access_token'));
});

test('unknown provider: GoTrue\'s 400 validation_failed', async () => {
  const settings = await fetch(`${url}/auth/v1/settings`, { headers: { apikey: anonKey } }).then((r) => r.json());
  assert.equal(settings.external.keycloak, true);
  assert.equal(settings.external.oidc2, true);
  assert.equal(settings.external.nope, undefined);
  const response = await fetch(`${url}/auth/v1/authorize?provider=nope&redirect_to=${site}`, {
    redirect: 'manual',
  });
  assert.equal(response.status, 400);
  assert.deepEqual(await response.json(), {
    code: 400,
    error_code: 'validation_failed',
    msg: 'Unsupported provider: Provider nope could not be found',
  });
});

test('signInWithIdToken with an ID token the provider issued', async () => {
  const login = `dee-${randomUUID().slice(0, 8)}`;
  const nonce = randomUUID();
  const redirect = `${site}/id-token`;
  const authorize = new URL(`${issuer}/auth`);
  for (const [k, v] of Object.entries({
    client_id: 'sluice',
    redirect_uri: redirect,
    response_type: 'code',
    scope: 'openid email profile',
    nonce,
    state: 'test',
  })) authorize.searchParams.set(k, v);
  const back = await browse(authorize.href, new Jar(), login);
  const tokens = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('sluice:sluice-oidc-secret').toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: back.searchParams.get('code'),
      redirect_uri: redirect,
    }).toString(),
  }).then((r) => r.json());
  assert.ok(tokens.id_token, JSON.stringify(tokens));

  const supabase = newClient();
  // The wrong nonce, and a token for another provider configuration (audience sluice2): refused.
  const wrongNonce = await supabase.auth.signInWithIdToken({ provider: 'keycloak', token: tokens.id_token, nonce: 'other' });
  assert.equal(wrongNonce.error?.status, 400);
  const wrongAudience = await supabase.auth.signInWithIdToken({ provider: 'oidc2', token: tokens.id_token, nonce });
  assert.equal(wrongAudience.error?.status, 400);
  const tampered = tokens.id_token.slice(0, -4) + (tokens.id_token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  const badSignature = await supabase.auth.signInWithIdToken({ provider: 'keycloak', token: tampered, nonce });
  assert.equal(badSignature.error?.status, 400);

  const { data, error } = await supabase.auth.signInWithIdToken({ provider: 'keycloak', token: tokens.id_token, nonce });
  assert.equal(error, null);
  assert.equal(data.user.email, emailOf(login));
  assert.ok(data.user.email_confirmed_at);
  assert.ok(data.session.access_token);
});
