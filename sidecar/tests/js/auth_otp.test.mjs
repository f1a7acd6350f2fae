// Passwordless sign-in through @supabase/supabase-js, unmodified: magic links and email codes,
// phone codes with a test number, PKCE (magic link, sign-up, recovery), anonymous sign-in with a
// policy that tells anonymous users apart and their conversion, and the admin's invitations and
// generated links. Codes and links are read from the sidecar's outboxes (auth.mail_outbox), as a
// user reads their mail. The sidecar runs with SLUICE_AUTH_ANONYMOUS_USERS=true and the test
// number 15550001111=123456 (scripts/js-test.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import { anonKey, serviceKey, url } from './support.mjs';

class NoWebSocket {
  constructor() {
    throw new Error('realtime is not used in these tests');
  }
}
const options = {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: NoWebSocket },
};
const newClient = (flowType = 'implicit') =>
  createClient(url, anonKey, { ...options, auth: { ...options.auth, flowType } });
const admin = createClient(url, serviceKey, options).auth.admin;
const site = 'http://127.0.0.1:3000';

/** One value from the test database (as the superuser). */
function sql(query) {
  return execFileSync('psql', [process.env.SLUICE_JS_DATABASE_URL, '-XAtc', query], { encoding: 'utf8' }).trim();
}

/** The newest mail to `email` (waiting for it: some are sent after the answer): kind, link, code. */
async function mailTo(email, kind = null) {
  const filter = kind ? ` AND kind = '${kind}'` : '';
  for (let i = 0; i < 100; i += 1) {
    const row = sql(`SELECT kind || E'\\x1f' || body FROM auth.mail_outbox WHERE recipient = '${email}'${filter} ORDER BY id DESC LIMIT 1`);
    if (row) {
      const [found, body] = row.split('\x1f');
      return {
        kind: found,
        link: body.split('\n').find((line) => line.startsWith('http')),
        code: body.split('Or enter this code: ')[1].trim(),
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no mail to ${email}`);
}

/** Follows a mailed link as a browser would, without following the redirect: where it goes. */
async function follow(link) {
  const response = await fetch(link, { redirect: 'manual' });
  assert.equal(response.status, 303);
  return new URL(response.headers.get('location'));
}

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

test('magic link and email code: signInWithOtp, verifyOtp, shouldCreateUser', async () => {
  const email = `otp-${randomUUID()}@example.com`;
  const supabase = newClient();

  const refused = await supabase.auth.signInWithOtp({ email, options: { shouldCreateUser: false } });
  assert.equal(refused.error?.code, 'otp_disabled');
  assert.equal(refused.error?.status, 422);

  const sent = await supabase.auth.signInWithOtp({ email, options: { emailRedirectTo: `${site}/welcome` } });
  assert.equal(sent.error, null);
  assert.deepEqual(sent.data, { user: null, session: null });
  const { code } = await mailTo(email);
  assert.match(code, /^\d{6}$/);

  const wrong = await supabase.auth.verifyOtp({ email, token: code === '000000' ? '000001' : '000000', type: 'email' });
  assert.equal(wrong.error?.code, 'otp_expired');
  const { data, error } = await supabase.auth.verifyOtp({ email, token: code, type: 'email' });
  assert.equal(error, null);
  assert.equal(data.user.email, email);
  assert.ok(data.user.email_confirmed_at);
  assert.ok(data.session.access_token);
  assert.equal((await supabase.auth.getUser()).data.user.id, data.user.id);
  const reused = await newClient().auth.verifyOtp({ email, token: code, type: 'email' });
  assert.equal(reused.error?.code, 'otp_expired');

  // The magic link: followed, it lands on emailRedirectTo with the session in the fragment.
  assert.equal((await supabase.auth.signInWithOtp({ email, options: { emailRedirectTo: `${site}/welcome` } })).error, null);
  const mail = await mailTo(email);
  assert.equal(mail.kind, 'magiclink');
  const landed = await follow(mail.link);
  assert.equal(`${landed.origin}${landed.pathname}`, `${site}/welcome`);
  const fragment = new URLSearchParams(landed.hash.slice(1));
  const fromLink = await newClient().auth.setSession({
    access_token: fragment.get('access_token'),
    refresh_token: fragment.get('refresh_token'),
  });
  assert.equal(fromLink.error, null);
  assert.equal(fromLink.data.user.id, data.user.id);

  // verifyOtp({token_hash}), as custom email templates link it.
  await supabase.auth.signInWithOtp({ email });
  const hashed = await mailTo(email);
  const tokenHash = sha256(new URL(hashed.link).searchParams.get('token'));
  const viaHash = await newClient().auth.verifyOtp({ token_hash: tokenHash, type: 'magiclink' });
  assert.equal(viaHash.error, null);
  assert.equal(viaHash.data.user.email, email);
});

test('phone OTP with a test number', async () => {
  const supabase = newClient();
  const sent = await supabase.auth.signInWithOtp({ phone: '+15550001111' });
  assert.equal(sent.error, null);
  const { data, error } = await supabase.auth.verifyOtp({ phone: '+15550001111', token: '123456', type: 'sms' });
  assert.equal(error, null);
  assert.equal(data.user.phone, '15550001111');
  assert.ok(data.user.phone_confirmed_at);
  const again = await newClient().auth.verifyOtp({ phone: '+15550001111', token: '123456', type: 'sms' });
  assert.equal(again.error?.code, 'otp_expired', 'the fixed code is single use too');
  const bad = await newClient().auth.signInWithOtp({ phone: 'call me maybe' });
  assert.equal(bad.error?.code, 'validation_failed');
  assert.equal(bad.error?.message, 'Invalid phone number format (E.164 required)');
});

test('PKCE: magic link, sign-up and recovery each end in exchangeCodeForSession', async () => {
  const email = `pkce-${randomUUID()}@example.com`;
  const supabase = newClient('pkce');

  assert.equal((await supabase.auth.signInWithOtp({ email })).error, null);
  let landed = await follow((await mailTo(email)).link);
  assert.equal(landed.hash, '', 'no tokens in the URL');
  const code = landed.searchParams.get('code');
  assert.ok(code);
  const { data, error } = await supabase.auth.exchangeCodeForSession(code);
  assert.equal(error, null);
  assert.equal(data.user.email, email);
  assert.ok(data.session.access_token);
  // A code without the verifier (another browser): refused.
  assert.equal((await supabase.auth.signInWithOtp({ email })).error, null);
  landed = await follow((await mailTo(email)).link);
  const stranger = newClient('pkce');
  const stolen = await stranger.auth.exchangeCodeForSession(landed.searchParams.get('code'));
  assert.ok(stolen.error, 'no verifier, no session');

  // Sign-up with a password.
  const other = `pkce-signup-${randomUUID()}@example.com`;
  const signUp = await supabase.auth.signUp({ email: other, password: 'pkce-password-1' });
  assert.equal(signUp.error, null);
  assert.equal(signUp.data.session, null);
  landed = await follow((await mailTo(other, 'signup')).link);
  const confirmed = await supabase.auth.exchangeCodeForSession(landed.searchParams.get('code'));
  assert.equal(confirmed.error, null);
  assert.equal(confirmed.data.user.email, other);
  assert.ok(confirmed.data.user.email_confirmed_at);

  // Recovery.
  assert.equal((await supabase.auth.resetPasswordForEmail(other)).error, null);
  landed = await follow((await mailTo(other, 'recovery')).link);
  const recovered = await supabase.auth.exchangeCodeForSession(landed.searchParams.get('code'));
  assert.equal(recovered.error, null);
  assert.equal(recovered.data.user.email, other);
  assert.equal((await supabase.auth.updateUser({ password: 'pkce-password-2' })).error, null);
  const signIn = await newClient().auth.signInWithPassword({ email: other, password: 'pkce-password-2' });
  assert.equal(signIn.error, null);
});

test('anonymous sign-in: is_anonymous in the token, a policy tells, conversion keeps the id', async () => {
  const supabase = newClient();
  const { data, error } = await supabase.auth.signInAnonymously({ options: { data: { nick: 'guest' } } });
  assert.equal(error, null);
  assert.equal(data.user.is_anonymous, true);
  const claims = JSON.parse(Buffer.from(data.session.access_token.split('.')[1], 'base64url'));
  assert.equal(claims.is_anonymous, true);
  const id = data.user.id;

  // The restrictive policy refuses anonymous writers.
  const write = await supabase.from('guest_notes').insert({ body: 'as a guest' });
  assert.equal(write.error?.code, '42501');

  // Converting: add an email, confirm it with the mailed code.
  const email = `convert-${randomUUID()}@example.com`;
  const updated = await supabase.auth.updateUser({ email });
  assert.equal(updated.error, null);
  const { code } = await mailTo(email, 'email_change');
  const verified = await supabase.auth.verifyOtp({ email, token: code, type: 'email_change' });
  assert.equal(verified.error, null);
  assert.equal(verified.data.user.id, id);
  assert.equal(verified.data.user.is_anonymous, false);
  assert.equal(verified.data.user.email, email);

  // Now a permanent user: the same policy lets the write through.
  assert.equal((await supabase.from('guest_notes').insert({ body: 'as myself' })).error, null);
  const rows = await supabase.from('guest_notes').select('body, user_id');
  assert.deepEqual(rows.data, [{ body: 'as myself', user_id: id }]);
});

test('admin: inviteUserByEmail and generateLink', async () => {
  const email = `invite-${randomUUID()}@example.com`;
  const invited = await admin.inviteUserByEmail(email, { data: { team: 'blue' } });
  assert.equal(invited.error, null);
  assert.equal(invited.data.user.email, email);
  assert.ok(invited.data.user.invited_at);
  const { code, kind } = await mailTo(email);
  assert.equal(kind, 'invite');
  const accepted = await newClient().auth.verifyOtp({ email, token: code, type: 'invite' });
  assert.equal(accepted.error, null);
  assert.equal(accepted.data.user.id, invited.data.user.id);

  const generated = await admin.generateLink({ type: 'magiclink', email });
  assert.equal(generated.error, null);
  assert.equal(generated.data.user.email, email);
  const { properties } = generated.data;
  assert.equal(properties.verification_type, 'magiclink');
  assert.match(properties.email_otp, /^\d{6}$/);
  assert.ok(properties.action_link.startsWith('http'));
  assert.equal(properties.redirect_to, site);
  const viaOtp = await newClient().auth.verifyOtp({ email, token: properties.email_otp, type: 'magiclink' });
  assert.equal(viaOtp.error, null);

  const recovery = await admin.generateLink({ type: 'recovery', email });
  assert.equal(recovery.error, null);
  const viaHash = await newClient().auth.verifyOtp({ token_hash: recovery.data.properties.hashed_token, type: 'recovery' });
  assert.equal(viaHash.error, null);
  assert.equal(viaHash.data.user.id, invited.data.user.id);
});
