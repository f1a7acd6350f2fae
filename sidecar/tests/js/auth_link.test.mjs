// Manual identity linking with @supabase/supabase-js, unmodified, against the local OpenID provider
// of oidc_support.mjs: `linkIdentity({provider})` through the provider's login and consent pages
// (PKCE and implicit), `linkIdentity({provider, token})` with an ID token the provider issued, an
// identity already linked to another user refused, `unlinkIdentity` (the last identity is not
// deletable, another user's identity is not found), an anonymous user who links an identity and
// stops being anonymous with the same id and their rows, and a sidecar with manual linking off
// (404 manual_linking_disabled). The main sidecar runs with SLUICE_AUTH_MANUAL_LINKING_ENABLED
// (scripts/js-test.sh); the one with linking off is started here.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import { anonKey, freePort, serviceKey, url } from './support.mjs';
import { site, issuer, port as oidcPort, emailOf, Jar, browse, fragmentOf } from './oidc_support.mjs';

class NoWebSocket {
  constructor() {
    throw new Error('realtime is not used in these tests');
  }
}
const options = (flowType) => ({
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false, flowType },
  realtime: { transport: NoWebSocket },
});
const newClient = (flowType = 'implicit', base = url) => createClient(base, anonKey, options(flowType));
const admin = createClient(url, serviceKey, options('implicit')).auth.admin;
const claimsOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));
const unique = () => randomUUID().slice(0, 8);

/** A signed-in client of a new confirmed email user (not the provider's email). */
async function emailUser(flowType = 'pkce', base = url) {
  const email = `link-${unique()}@example.com`;
  const password = 'correct horse battery';
  const created = await admin.createUser({ email, password, email_confirm: true });
  assert.equal(created.error, null);
  const supabase = newClient(flowType, base);
  const signedIn = await supabase.auth.signInWithPassword({ email, password });
  assert.equal(signedIn.error, null);
  return { supabase, email, id: signedIn.data.user.id };
}

/** An ID token of the provider (client `sluice`) for `login`, with `nonce`. */
async function idTokenFor(login, nonce) {
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
  return tokens.id_token;
}

const providersOf = (identities) => identities.map((identity) => identity.provider);

test('linkIdentity through the provider (PKCE) adds the identity to the signed-in user, not by email; unlinkIdentity removes it', async () => {
  const { supabase, email, id } = await emailUser('pkce');
  const login = `lin-${unique()}`;
  const { data, error } = await supabase.auth.linkIdentity({
    provider: 'keycloak',
    options: { redirectTo: `${site}/linked`, skipBrowserRedirect: true },
  });
  assert.equal(error, null);
  assert.equal(data.provider, 'keycloak');
  // The browser opens this server's /authorize with a signed linking ticket.
  assert.ok(data.url.startsWith(`${url}/auth/v1/authorize?`), data.url);
  assert.ok(new URL(data.url).searchParams.get('link'));
  const location = await browse(data.url, new Jar(), login);
  assert.equal(location.pathname, '/linked');
  assert.equal(location.hash, '', 'no tokens in the URL with PKCE');
  const { data: exchanged, error: exchangeError } = await supabase.auth.exchangeCodeForSession(
    location.searchParams.get('code'),
  );
  assert.equal(exchangeError, null);
  assert.equal(exchanged.user.id, id, 'the same user, not a new one');
  assert.equal(exchanged.user.email, email, 'the email is the user\'s own, not the provider\'s');
  assert.deepEqual(exchanged.user.app_metadata.providers, ['email', 'keycloak']);
  const { data: listed } = await supabase.auth.getUserIdentities();
  assert.deepEqual(providersOf(listed.identities), ['email', 'keycloak']);
  const keycloak = listed.identities.find((identity) => identity.provider === 'keycloak');
  assert.equal(keycloak.identity_data.email, emailOf(login));

  // Signing in with that provider account now reaches this user.
  const again = await newClient().auth.signInWithOAuth({
    provider: 'keycloak',
    options: { redirectTo: `${site}/welcome`, skipBrowserRedirect: true },
  });
  const fragment = fragmentOf(await browse(again.data.url, new Jar(), login));
  assert.equal(claimsOf(fragment.get('access_token')).sub, id);

  // An identity id that is not a UUID.
  const notUuid = await fetch(`${url}/auth/v1/user/identities/nope`, {
    method: 'DELETE',
    headers: { apikey: anonKey, authorization: `Bearer ${exchanged.session.access_token}` },
  });
  assert.equal(notUuid.status, 404);
  assert.equal((await notUuid.json()).error_code, 'validation_failed');

  // The owner unlinks it; then the email identity is the last one and stays.
  const unlinked = await supabase.auth.unlinkIdentity(keycloak);
  assert.equal(unlinked.error, null);
  const { data: after1 } = await supabase.auth.getUserIdentities();
  assert.deepEqual(providersOf(after1.identities), ['email']);
  const { data: user } = await supabase.auth.getUser();
  assert.deepEqual(user.user.app_metadata.providers, ['email']);
  assert.equal(user.user.email, email);
  const last = await supabase.auth.unlinkIdentity(after1.identities[0]);
  assert.equal(last.error?.status, 422);
  assert.equal(last.error?.code, 'single_identity_not_deletable');
  // The provider account is free again: a fresh sign-in with it makes a new user.
  const fresh = fragmentOf(await browse((await newClient().auth.signInWithOAuth({
    provider: 'keycloak',
    options: { redirectTo: `${site}/welcome`, skipBrowserRedirect: true },
  })).data.url, new Jar(), login));
  assert.notEqual(claimsOf(fresh.get('access_token')).sub, id);
});

test('linkIdentity with an ID token; an identity already linked (to this user or another) is refused', async () => {
  const login = `tok-${unique()}`;
  const nonce = randomUUID();
  const token = await idTokenFor(login, nonce);
  const ann = await emailUser('implicit');
  const { data, error } = await ann.supabase.auth.linkIdentity({ provider: 'keycloak', token, nonce });
  assert.equal(error, null);
  assert.equal(data.user.id, ann.id);
  assert.equal(data.user.email, ann.email);
  assert.deepEqual(providersOf(data.user.identities), ['email', 'keycloak']);
  assert.ok(data.session.access_token, 'a new session, as GoTrue answers');
  assert.equal(claimsOf(data.session.access_token).sub, ann.id);

  const again = await ann.supabase.auth.linkIdentity({ provider: 'keycloak', token, nonce });
  assert.equal(again.error?.status, 422);
  assert.equal(again.error?.code, 'identity_already_exists');
  assert.equal(again.error?.message, 'Identity is already linked');

  const bob = await emailUser('implicit');
  const taken = await bob.supabase.auth.linkIdentity({ provider: 'keycloak', token, nonce });
  assert.equal(taken.error?.status, 422);
  assert.equal(taken.error?.code, 'identity_already_exists');
  assert.equal(taken.error?.message, 'Identity is already linked to another user');
  // Through the provider's pages too: the browser comes back with GoTrue's error.
  const started = await bob.supabase.auth.linkIdentity({
    provider: 'keycloak',
    options: { redirectTo: `${site}/linked`, skipBrowserRedirect: true },
  });
  const refused = await browse(started.data.url, new Jar(), login);
  assert.equal(refused.pathname, '/linked');
  assert.equal(refused.searchParams.get('error_code'), 'identity_already_exists');
  const { data: bobUser } = await bob.supabase.auth.getUser();
  assert.deepEqual(providersOf(bobUser.user.identities), ['email']);
  // Ann (two identities) cannot unlink Bob's identity: not hers.
  const foreign = await ann.supabase.auth.unlinkIdentity(bobUser.user.identities[0]);
  assert.equal(foreign.error?.status, 422);
  assert.equal(foreign.error?.code, 'identity_not_found');
  const { data: bobAfter } = await bob.supabase.auth.getUser();
  assert.equal(bobAfter.user.email, bob.email);
  // Ann unlinks her email identity: no identity left has her address, so, as in GoTrue, her email
  // becomes the linked identity's (verified by the provider) and she stays confirmed.
  await ann.supabase.auth.setSession(data.session);
  const emailIdentity = data.user.identities.find((identity) => identity.provider === 'email');
  const unlinked = await ann.supabase.auth.unlinkIdentity(emailIdentity);
  assert.equal(unlinked.error, null);
  const { data: annAfter } = await ann.supabase.auth.getUser();
  assert.equal(annAfter.user.email, emailOf(login));
  assert.ok(annAfter.user.email_confirmed_at);
  assert.deepEqual(providersOf(annAfter.user.identities), ['keycloak']);
  assert.deepEqual(annAfter.user.app_metadata.providers, ['keycloak']);
  // A bad ID token links nothing.
  const forged = await bob.supabase.auth.linkIdentity({ provider: 'keycloak', token: `${token}x`, nonce });
  assert.equal(forged.error?.status, 400);
  // Without a session there is nothing to link to.
  const anonymous = await fetch(`${url}/auth/v1/token?grant_type=id_token`, {
    method: 'POST',
    headers: { apikey: anonKey, 'content-type': 'application/json' },
    body: JSON.stringify({ provider: 'keycloak', id_token: token, nonce, link_identity: true }),
  });
  assert.equal(anonymous.status, 401);
});

test('an anonymous user who links an identity stops being anonymous, keeps their id and rows', async () => {
  const supabase = newClient('implicit');
  const { data: signedIn, error } = await supabase.auth.signInAnonymously();
  assert.equal(error, null);
  const id = signedIn.user.id;
  assert.equal(claimsOf(signedIn.session.access_token).is_anonymous, true);
  assert.equal((await supabase.from('link_notes').insert({ body: 'as a guest' })).error, null);
  const asGuest = await supabase.from('link_notes').insert({ body: 'flagged', by_permanent_user: true });
  assert.ok(asGuest.error, 'the policy refuses anonymous users');

  const login = `anon-${unique()}`;
  const { data } = await supabase.auth.linkIdentity({
    provider: 'keycloak',
    options: { redirectTo: `${site}/converted`, skipBrowserRedirect: true },
  });
  const fragment = fragmentOf(await browse(data.url, new Jar(), login));
  const access = fragment.get('access_token');
  assert.ok(access, 'the session arrives in the fragment');
  assert.equal(claimsOf(access).sub, id, 'the same user id');
  assert.equal(claimsOf(access).is_anonymous, false);
  assert.equal(claimsOf(access).email, emailOf(login));
  const { data: session, error: setError } = await supabase.auth.setSession({
    access_token: access,
    refresh_token: fragment.get('refresh_token'),
  });
  assert.equal(setError, null);
  assert.equal(session.user.is_anonymous, false);
  assert.equal(session.user.email, emailOf(login));
  assert.ok(session.user.email_confirmed_at, 'the provider verified the email');
  assert.deepEqual(providersOf(session.user.identities), ['keycloak']);
  assert.equal(session.user.app_metadata.provider, 'keycloak');

  // The rows written as a guest are still theirs; the policy now lets them write as permanent.
  const rows = await supabase.from('link_notes').select('body, user_id').order('id');
  assert.deepEqual(rows.data, [{ body: 'as a guest', user_id: id }]);
  assert.equal((await supabase.from('link_notes').insert({ body: 'flagged', by_permanent_user: true })).error, null);
  // And the next token (a refresh) says so too.
  const { data: refreshed, error: refreshError } = await supabase.auth.refreshSession();
  assert.equal(refreshError, null);
  assert.equal(claimsOf(refreshed.session.access_token).is_anonymous, false);
  assert.equal(claimsOf(refreshed.session.access_token).sub, id);
  // The only identity is not deletable.
  const last = await supabase.auth.unlinkIdentity(session.user.identities[0]);
  assert.equal(last.error?.code, 'single_identity_not_deletable');
});

test('an anonymous user converted by linking an ID token keeps their id', async () => {
  const supabase = newClient('implicit');
  const { data: signedIn } = await supabase.auth.signInAnonymously();
  const login = `anontok-${unique()}`;
  const nonce = randomUUID();
  const token = await idTokenFor(login, nonce);
  const { data, error } = await supabase.auth.linkIdentity({ provider: 'keycloak', token, nonce });
  assert.equal(error, null);
  assert.equal(data.user.id, signedIn.user.id);
  assert.equal(data.user.is_anonymous, false);
  assert.equal(claimsOf(data.session.access_token).is_anonymous, false);
  assert.equal(data.user.email, emailOf(login));
});

// A second sidecar on the same database with manual linking off (GoTrue's default).
const sidecarPort = await freePort();
const offUrl = `http://127.0.0.1:${sidecarPort}`;
let offSidecar;
after(() => offSidecar?.kill());

async function startLinkingOff() {
  const db = new URL(process.env.SLUICE_JS_DATABASE_URL);
  db.username = 'authenticator';
  db.password = 'authenticator';
  offSidecar = spawn(process.env.SLUICE_JS_SIDECAR, ['serve'], {
    env: {
      ...process.env,
      DATABASE_URL: db.href,
      SLUICE_LISTEN: `127.0.0.1:${sidecarPort}`,
      SLUICE_AUTH_MANUAL_LINKING_ENABLED: 'false',
      SLUICE_AUTH_EXTERNAL_URL: offUrl,
      SLUICE_AUTH_EXTERNAL_KEYCLOAK_ENABLED: 'true',
      SLUICE_AUTH_EXTERNAL_KEYCLOAK_CLIENT_ID: 'sluice',
      SLUICE_AUTH_EXTERNAL_KEYCLOAK_SECRET: 'sluice-oidc-secret',
      SLUICE_AUTH_EXTERNAL_KEYCLOAK_URL: `http://127.0.0.1:${oidcPort}`,
      SLUICE_NO_WEBHOOKS: 'true',
      SLUICE_NO_JOBS: 'true',
      SLUICE_STORAGE_ROOT: `/tmp/sluice-js-link-off-${process.pid}`,
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (let i = 0; i < 100; i += 1) {
    try {
      if ((await fetch(`${offUrl}/health`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the second sidecar did not start');
}

test('manual linking off: linkIdentity and unlinkIdentity answer 404 manual_linking_disabled', async () => {
  assert.ok(process.env.SLUICE_JS_SIDECAR, 'scripts/js-test.sh names the sidecar binary');
  await startLinkingOff();
  const { supabase } = await emailUser('implicit', offUrl);
  const link = await supabase.auth.linkIdentity({
    provider: 'keycloak',
    options: { redirectTo: `${site}/linked`, skipBrowserRedirect: true },
  });
  assert.equal(link.error?.status, 404);
  assert.equal(link.error?.code, 'manual_linking_disabled');
  assert.equal(link.error?.message, 'Manual linking is disabled');
  const { data: user } = await supabase.auth.getUser();
  const unlink = await supabase.auth.unlinkIdentity(user.user.identities[0]);
  assert.equal(unlink.error?.status, 404);
  assert.equal(unlink.error?.code, 'manual_linking_disabled');
  const nonce = randomUUID();
  const token = await idTokenFor(`off-${unique()}`, nonce);
  const byToken = await supabase.auth.linkIdentity({ provider: 'keycloak', token, nonce });
  assert.equal(byToken.error?.status, 404);
  assert.equal(byToken.error?.code, 'manual_linking_disabled');
  const { data: unchanged } = await supabase.auth.getUser();
  assert.deepEqual(providersOf(unchanged.user.identities), ['email']);
});
