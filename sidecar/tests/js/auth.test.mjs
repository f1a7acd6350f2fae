// The auth API through @supabase/supabase-js, as an application uses it: sign up, sign in, read the
// user, refresh, update metadata and password, sign out; and between those steps, rows of a table
// whose RLS policy is `user_id = auth.uid()`, which each user sees only their own of.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import { anonKey, serviceKey, url } from './support.mjs';

// Node 20 has no WebSocket, which supabase-js's realtime client looks for when created; these tests
// never open a channel, so a transport that refuses to be used is enough.
class NoWebSocket {
  constructor() {
    throw new Error('realtime is not used in these tests');
  }
}
const options = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: NoWebSocket },
};
const newClient = () => createClient(url, anonKey, options);
const admin = createClient(url, serviceKey, options).auth.admin;

/** Signs up (the sidecar asks for email confirmation here), confirms as an admin, signs in. */
async function signedIn(name, password) {
  const email = `${name}-${randomUUID()}@example.com`;
  const supabase = newClient();
  const { data, error } = await supabase.auth.signUp({ email, password, options: { data: { name } } });
  assert.equal(error, null);
  assert.equal(data.session, null, 'confirmation is required, so no session yet');
  assert.equal(data.user.email, email);
  assert.equal(data.user.user_metadata.name, name);
  assert.ok(data.user.confirmation_sent_at);

  const early = await supabase.auth.signInWithPassword({ email, password });
  assert.equal(early.error?.code, 'email_not_confirmed');
  assert.equal(early.error?.status, 400);

  const confirmed = await admin.updateUserById(data.user.id, { email_confirm: true });
  assert.equal(confirmed.error, null);
  assert.ok(confirmed.data.user.email_confirmed_at);

  const signIn = await supabase.auth.signInWithPassword({ email, password });
  assert.equal(signIn.error, null);
  assert.equal(signIn.data.user.id, data.user.id);
  assert.ok(signIn.data.session.access_token);
  return { supabase, email, id: data.user.id };
}

async function titles(supabase) {
  const { data, error } = await supabase.from('user_todos').select('title, user_id').order('id');
  assert.equal(error, null);
  return data;
}

test('sign up, sign in, read the user, refresh, update, sign out, with RLS rows in between', async () => {
  const ann = await signedIn('ann', 'ann-password-1');
  const bob = await signedIn('bob', 'bob-password-1');

  // The user behind the session, from the server.
  const { data: got, error: getError } = await ann.supabase.auth.getUser();
  assert.equal(getError, null);
  assert.equal(got.user.id, ann.id);
  assert.equal(got.user.email, ann.email);
  assert.equal(got.user.role, 'authenticated');

  // Each writes a row; each sees only their own.
  assert.equal((await ann.supabase.from('user_todos').insert({ title: 'ann: one' })).error, null);
  assert.equal((await bob.supabase.from('user_todos').insert({ title: 'bob: one' })).error, null);
  assert.deepEqual(await titles(ann.supabase), [{ title: 'ann: one', user_id: ann.id }]);
  assert.deepEqual(await titles(bob.supabase), [{ title: 'bob: one', user_id: bob.id }]);
  // Writing a row for someone else is refused by the policy's WITH CHECK.
  const forged = await bob.supabase.from('user_todos').insert({ title: 'as ann', user_id: ann.id });
  assert.equal(forged.error?.code, '42501');
  // Bob cannot change Ann's row: the update matches nothing he can see.
  const hijack = await bob.supabase.from('user_todos').update({ title: 'mine' }).eq('title', 'ann: one').select();
  assert.equal(hijack.error, null);
  assert.deepEqual(hijack.data, []);

  // Refresh: new tokens, and the new access token reads the same rows.
  const before = (await ann.supabase.auth.getSession()).data.session;
  const refreshed = await ann.supabase.auth.refreshSession();
  assert.equal(refreshed.error, null);
  assert.notEqual(refreshed.data.session.refresh_token, before.refresh_token);
  assert.notEqual(refreshed.data.session.access_token, before.access_token);
  assert.equal(refreshed.data.user.id, ann.id);
  assert.equal((await ann.supabase.from('user_todos').insert({ title: 'ann: two' })).error, null);
  assert.deepEqual((await titles(ann.supabase)).map((row) => row.title), ['ann: one', 'ann: two']);

  // Metadata updates merge into user_metadata.
  const updated = await ann.supabase.auth.updateUser({ data: { theme: 'dark' } });
  assert.equal(updated.error, null);
  assert.deepEqual(updated.data.user.user_metadata, { name: 'ann', theme: 'dark' });

  // A new password: the old one stops working, the new one works.
  const changed = await ann.supabase.auth.updateUser({ password: 'ann-password-2' });
  assert.equal(changed.error, null);
  assert.deepEqual((await titles(ann.supabase)).length, 2, 'the current session survives the change');
  const old = await newClient().auth.signInWithPassword({ email: ann.email, password: 'ann-password-1' });
  assert.equal(old.error?.code, 'invalid_credentials');
  assert.equal(old.error?.message, 'Invalid login credentials');

  // Sign out: the session is gone locally and on the server.
  const lastToken = (await ann.supabase.auth.getSession()).data.session.access_token;
  assert.equal((await ann.supabase.auth.signOut()).error, null);
  assert.equal((await ann.supabase.auth.getSession()).data.session, null);
  const afterSignOut = await ann.supabase.auth.getUser(lastToken);
  assert.equal(afterSignOut.data.user, null);
  assert.equal(afterSignOut.error?.name, 'AuthSessionMissingError');
  // Signed out, the client is anon again, which has no grant on the table.
  const anon = await ann.supabase.from('user_todos').select('title');
  assert.equal(anon.error?.code, '42501');

  // The new password signs in, and Ann's rows are all there; Bob's are still only Bob's.
  const again = await ann.supabase.auth.signInWithPassword({ email: ann.email, password: 'ann-password-2' });
  assert.equal(again.error, null);
  assert.deepEqual((await titles(ann.supabase)).map((row) => row.title), ['ann: one', 'ann: two']);
  assert.deepEqual((await titles(bob.supabase)).map((row) => row.title), ['bob: one']);
});

test('wrong password and unknown email get the same answer', async () => {
  const { email } = await signedIn('carol', 'carol-password');
  const wrong = await newClient().auth.signInWithPassword({ email, password: 'not-it' });
  const unknown = await newClient().auth.signInWithPassword({ email: `nobody-${randomUUID()}@example.com`, password: 'not-it' });
  for (const { error } of [wrong, unknown]) {
    assert.equal(error.status, 400);
    assert.equal(error.code, 'invalid_credentials');
    assert.equal(error.message, 'Invalid login credentials');
  }
});

test('a taken email looks like a new sign-up; a short password is refused', async () => {
  const { email, id } = await signedIn('dave', 'dave-password');
  // Email enumeration protection, as Supabase does it with confirmation on: no error, no session,
  // and a user with no identities (how clients tell a repeated sign-up), not the real one.
  const taken = await newClient().auth.signUp({ email, password: 'another-password' });
  assert.equal(taken.error, null);
  assert.equal(taken.data.session, null);
  assert.equal(taken.data.user.email, email);
  assert.deepEqual(taken.data.user.identities, []);
  assert.notEqual(taken.data.user.id, id);
  // Nothing changed: the real password still works, the other does not.
  assert.equal((await newClient().auth.signInWithPassword({ email, password: 'dave-password' })).error, null);
  const other = await newClient().auth.signInWithPassword({ email, password: 'another-password' });
  assert.equal(other.error?.code, 'invalid_credentials');
  const weak = await newClient().auth.signUp({ email: `erin-${randomUUID()}@example.com`, password: '123' });
  assert.equal(weak.error?.code, 'weak_password');
  assert.equal(weak.error?.name, 'AuthWeakPasswordError');
  assert.deepEqual(weak.error?.reasons, ['length']);
});

test('admin: list, read, ban and delete users; other keys are refused', async () => {
  const { supabase, id, email } = await signedIn('frank', 'frank-password');

  const listed = await admin.listUsers({ page: 1, perPage: 1000 });
  assert.equal(listed.error, null);
  assert.ok(listed.data.users.some((user) => user.id === id));
  assert.ok(listed.data.total >= 1);
  assert.ok(listed.data.users.every((user) => !('encrypted_password' in user) && !('password_hash' in user)));

  const read = await admin.getUserById(id);
  assert.equal(read.data.user.email, email);

  // A user's own token is not an admin key.
  const asUser = createClient(url, anonKey, {
    ...options,
    global: { headers: { Authorization: `Bearer ${(await supabase.auth.getSession()).data.session.access_token}` } },
  });
  const refused = await asUser.auth.admin.listUsers();
  assert.equal(refused.error?.status, 403);
  assert.equal(refused.error?.code, 'not_admin');

  // Banned: sign-in and refresh are refused.
  const banned = await admin.updateUserById(id, { ban_duration: '24h' });
  assert.equal(banned.error, null);
  assert.ok(banned.data.user.banned_until);
  const signIn = await newClient().auth.signInWithPassword({ email, password: 'frank-password' });
  assert.equal(signIn.error?.code, 'user_banned');

  const deleted = await admin.deleteUser(id);
  assert.equal(deleted.error, null);
  const gone = await admin.getUserById(id);
  assert.equal(gone.error?.status, 404);
});

test('settings say email sign-up is on and confirmation is required', async () => {
  const response = await fetch(`${url}/auth/v1/settings`, { headers: { apikey: anonKey } });
  assert.equal(response.status, 200);
  const settings = await response.json();
  assert.equal(settings.external.email, true);
  assert.equal(settings.mailer_autoconfirm, false);
  assert.equal(settings.disable_signup, false);
});
