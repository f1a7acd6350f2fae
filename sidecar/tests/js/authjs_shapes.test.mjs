// Answers that auth-js's own test suite (sidecar/tests/authjs) revealed: flows Sluice does not have
// answer as GoTrue does when they are turned off, so supabase-js reports them with GoTrue's code and
// message instead of a missing route.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@supabase/supabase-js';
import { anonKey, serviceKey, url } from './support.mjs';

class NoWebSocket {
  constructor() {
    throw new Error('realtime is not used in these tests');
  }
}
const newClient = () =>
  createClient(url, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: NoWebSocket },
  });

test('signInWithSSO: SAML 2.0 is disabled (404 saml_provider_disabled), by domain or provider id', async () => {
  for (const params of [{ domain: 'example.com' }, { providerId: '6d4a6f1e-1b0b-4c4a-9d47-5b6c1f0f4a11' }]) {
    const { data, error } = await newClient().auth.signInWithSSO(params);
    assert.equal(data, null);
    assert.equal(error?.status, 404);
    assert.equal(error?.code, 'saml_provider_disabled');
    assert.equal(error?.message, 'SAML 2.0 is disabled');
  }
  // The rest of GoTrue's /sso surface (SAML metadata and ACS) answers the same.
  const response = await fetch(`${url}/auth/v1/sso/saml/metadata`, { headers: { apikey: anonKey } });
  assert.equal(response.status, 404);
  assert.equal((await response.json()).error_code, 'saml_provider_disabled');
});

test('signInWithWeb3: Web3 provider is disabled (400 web3_provider_disabled), nothing signed in', async () => {
  for (const chain of ['solana', 'ethereum']) {
    const supabase = newClient();
    const { data, error } = await supabase.auth.signInWithWeb3({
      chain,
      message: 'example.com wants you to sign in',
      signature: new Uint8Array([1, 2, 3]),
    });
    assert.equal(data.session, null);
    assert.equal(error?.status, 400);
    assert.equal(error?.code, 'web3_provider_disabled');
    assert.equal(error?.message, 'Web3 provider is disabled');
    assert.equal((await supabase.auth.getSession()).data.session, null);
  }
});

const admin = () =>
  createClient(url, serviceKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: NoWebSocket },
  }).auth.admin;

test('addresses GoTrue refuses are refused at sign-up and by createUser, and nothing is created', async () => {
  const refused = ['xx:;x@x.x', 'a(b)@example.com', 'ann@exa_mple.com'];
  for (const email of refused) {
    const created = await admin().createUser({ email, password: 'password123' });
    assert.equal(created.data.user, null);
    assert.equal(created.error?.status, 400);
    assert.equal(created.error?.message, 'Unable to validate email address: invalid format');
    const signedUp = await newClient().auth.signUp({ email, password: 'password123' });
    assert.equal(signedUp.data.user, null);
    assert.equal(signedUp.error?.message, 'Unable to validate email address: invalid format');
  }
  const { data } = await admin().listUsers({ perPage: 1000 });
  assert.ok(data.users.length > 0);
  assert.ok(!data.users.some((user) => refused.includes(user.email)));
  // Addresses with the unusual characters GoTrue allows still work.
  const email = `o'neil+${Date.now()}@mail.example.com`;
  const ok = await admin().createUser({ email, password: 'password123' });
  assert.equal(ok.error, null);
  assert.equal(ok.data.user.email, email);
});

test('listUsers with a negative page is refused (400), as GoTrue refuses it', async () => {
  const { data, error } = await admin().listUsers({ page: -1, perPage: 10 });
  assert.equal(error?.status, 400);
  assert.equal(error?.code, 'validation_failed');
  assert.match(error?.message, /Bad Pagination Parameters/);
  assert.deepEqual(data.users, []);
  const fine = await admin().listUsers({ page: 1, perPage: 10 });
  assert.equal(fine.error, null);
});
