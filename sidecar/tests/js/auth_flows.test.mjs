// Flows around an existing account through @supabase/supabase-js, unmodified: resend (signup and
// phone change), reauthenticate with a secure password change, phone change by code, generateLink
// for signup (redirect_to) and email changes, and GoTrue's user JSON (unset fields left out).
// Codes are read from the sidecar's outboxes (auth.mail_outbox, auth.sms_outbox), as a user reads
// their mail and texts. The sidecar runs with SLUICE_AUTH_SECURE_PASSWORD_CHANGE=true and the test
// numbers 15550001111=123456 and 15550002222=654321 (scripts/js-test.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID, randomInt } from 'node:crypto';
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
const newClient = () => createClient(url, anonKey, options);
const admin = createClient(url, serviceKey, options).auth.admin;
const site = 'http://127.0.0.1:3000';
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/** Rows from the test database (as the superuser), one string per row. */
function sql(query) {
  return execFileSync('psql', [process.env.SLUICE_JS_DATABASE_URL, '-XAtc', query], { encoding: 'utf8' }).trim();
}

/** The mails to `email` of `kind`, newest first: {body, link, code}. */
function mails(email, kind) {
  const rows = sql(
    `SELECT replace(body, E'\\n', ' ') FROM auth.mail_outbox WHERE recipient = '${email}' AND kind = '${kind}' ORDER BY id DESC`,
  );
  return rows
    ? rows.split('\n').map((body) => ({
        body,
        link: body.split(' ').find((word) => word.startsWith('http')),
        code: body.match(/(?:code: |code is )(\S+)/)?.[1],
      }))
    : [];
}

/** The texts to `phone` (digits), newest first. */
function texts(phone) {
  const rows = sql(`SELECT body FROM auth.sms_outbox WHERE recipient = '${phone}' ORDER BY id DESC`);
  return rows ? rows.split('\n') : [];
}

const randomPhone = () => `1555${String(randomInt(1e6, 1e7))}`;
const otherCode = (code) => (code === '000000' ? '000001' : '000000');

/** A confirmed email user and a client signed in as them. */
async function signedIn(password = 'first-password') {
  const email = `flows-${randomUUID()}@example.com`;
  const created = await admin.createUser({ email, password, email_confirm: true });
  assert.equal(created.error, null);
  const client = newClient();
  const { data, error } = await client.auth.signInWithPassword({ email, password });
  assert.equal(error, null);
  return { email, client, user: data.user };
}

test('resend: a new signup code replaces the old link, once; nothing pending answers the same', async () => {
  const email = `resend-${randomUUID()}@example.com`;
  const supabase = newClient();
  const signedUp = await supabase.auth.signUp({ email, password: 'resend-password' });
  assert.equal(signedUp.error, null);
  // GoTrue leaves unset timestamps out of the user object.
  assert.equal('email_confirmed_at' in signedUp.data.user, false);
  assert.equal('last_sign_in_at' in signedUp.data.user, false);
  assert.ok(signedUp.data.user.confirmation_sent_at);
  const [first] = mails(email, 'signup');
  const firstToken = new URL(first.link).searchParams.get('token');

  const resent = await supabase.auth.resend({ type: 'signup', email, options: { emailRedirectTo: `${site}/again` } });
  assert.equal(resent.error, null);
  assert.deepEqual(resent.data, { user: null, session: null });
  const all = mails(email, 'signup');
  assert.equal(all.length, 2);
  const [second] = all;
  assert.match(second.code, /^\d{6}$/);
  assert.ok(second.link.includes(`redirect_to=${site}/again`), second.link);

  // The first link stopped working; the new code works once.
  const old = await newClient().auth.verifyOtp({ token_hash: sha256(firstToken), type: 'signup' });
  assert.equal(old.error?.code, 'otp_expired');
  const wrong = await newClient().auth.verifyOtp({ email, token: otherCode(second.code), type: 'signup' });
  assert.equal(wrong.error?.code, 'otp_expired');
  const { data, error } = await newClient().auth.verifyOtp({ email, token: second.code, type: 'signup' });
  assert.equal(error, null);
  assert.ok(data.user.email_confirmed_at);
  const reused = await newClient().auth.verifyOtp({ email, token: second.code, type: 'signup' });
  assert.equal(reused.error?.code, 'otp_expired');

  // Already confirmed, or no such account: the same empty answer, and no mail.
  assert.equal((await supabase.auth.resend({ type: 'signup', email })).error, null);
  assert.equal(mails(email, 'signup').length, 2);
  const stranger = `nobody-${randomUUID()}@example.com`;
  assert.equal((await supabase.auth.resend({ type: 'signup', email: stranger })).error, null);
  assert.equal(mails(stranger, 'signup').length, 0);
  // Nothing pending for email_change either.
  assert.equal((await supabase.auth.resend({ type: 'email_change', email })).error, null);

  // Bad requests get GoTrue's errors.
  const badType = await supabase.auth.resend({ type: 'magiclink', email });
  assert.equal(badType.error?.status, 400);
  assert.equal(badType.error?.code, 'validation_failed');
  assert.equal(badType.error?.message, 'Missing one of these types: signup, email_change, sms, phone_change');
  const smsWithoutPhone = await supabase.auth.resend({ type: 'sms', email });
  assert.equal(smsWithoutPhone.error?.message, 'Type provided requires a phone number');
  const badPhone = await supabase.auth.resend({ type: 'sms', phone: 'call me' });
  assert.equal(badPhone.error?.message, 'Invalid phone number format (E.164 required)');
});

test('resend: email_change and sms send new codes, the old ones stop working', async () => {
  // A pending email change: the link goes to the new address; a resent one replaces it.
  const { email, client } = await signedIn();
  const newEmail = `moved-${randomUUID()}@example.com`;
  const asked = await client.auth.updateUser({ email: newEmail });
  assert.equal(asked.error, null);
  assert.equal(asked.data.user.new_email, newEmail);
  const [first] = mails(newEmail, 'email_change');
  assert.equal((await newClient().auth.resend({ type: 'email_change', email })).error, null);
  const all = mails(newEmail, 'email_change');
  assert.equal(all.length, 2);
  const token = (mail) => new URL(mail.link).searchParams.get('token');
  const stale = await newClient().auth.verifyOtp({ token_hash: sha256(token(first)), type: 'email_change' });
  assert.equal(stale.error?.code, 'otp_expired');
  const moved = await newClient().auth.verifyOtp({ token_hash: sha256(token(all[0])), type: 'email_change' });
  assert.equal(moved.error, null);
  assert.equal(moved.data.user.email, newEmail);

  // An unconfirmed phone sign-up: resend({type: 'sms'}) texts a new code.
  const phone = randomPhone();
  const signedUp = await newClient().auth.signUp({ phone: `+${phone}`, password: 'phone-password' });
  assert.equal(signedUp.error, null);
  assert.equal('phone_confirmed_at' in signedUp.data.user, false);
  const firstCode = texts(phone)[0].match(/\d{6}/)[0];
  const resent = await newClient().auth.resend({ type: 'sms', phone });
  assert.equal(resent.error, null);
  assert.ok(resent.data.messageId, 'the message id of the text');
  assert.equal(texts(phone).length, 2);
  const secondCode = texts(phone)[0].match(/\d{6}/)[0];
  if (firstCode !== secondCode) {
    const old = await newClient().auth.verifyOtp({ phone, token: firstCode, type: 'sms' });
    assert.equal(old.error?.code, 'otp_expired');
  }
  const { data, error } = await newClient().auth.verifyOtp({ phone, token: secondCode, type: 'sms' });
  assert.equal(error, null);
  assert.ok(data.user.phone_confirmed_at);
  // Confirmed now: nothing more is sent.
  assert.equal((await newClient().auth.resend({ type: 'sms', phone })).error, null);
  assert.equal(texts(phone).length, 2);
});

test('resend is rate limited per address like sign-in', async () => {
  const email = `limited-${randomUUID()}@example.com`;
  const supabase = newClient();
  let refused = null;
  for (let i = 0; i < 12 && !refused; i += 1) {
    const { error } = await supabase.auth.resend({ type: 'signup', email });
    if (error) refused = { error, after: i };
  }
  assert.ok(refused, 'a limit is reached');
  assert.equal(refused.error.status, 429);
  assert.equal(refused.error.code, 'over_request_rate_limit');
  assert.equal(refused.after, 10, 'SLUICE_AUTH_RATE_LIMIT_EMAIL (10) resends pass');
});

test('reauthenticate: a nonce for a password change from an old session, single use, expiring', async () => {
  const { email, client, user } = await signedIn();
  const sent = await client.auth.reauthenticate();
  assert.equal(sent.error, null);
  assert.deepEqual(sent.data, { user: null, session: null });
  const [mail] = mails(email, 'reauthentication');
  assert.match(mail.code, /^\d{6}$/);
  assert.ok((await client.auth.getUser()).data.user.reauthentication_sent_at);

  // A session younger than a day changes its password without a nonce (GoTrue's rule).
  assert.equal((await client.auth.updateUser({ password: 'second-password' })).error, null);

  // Once the session is older than a day, the nonce is needed.
  sql(`UPDATE auth.sessions SET created_at = now() - interval '25 hours' WHERE user_id = '${user.id}'`);
  const needed = await client.auth.updateUser({ password: 'third-password' });
  assert.equal(needed.error?.status, 400);
  assert.equal(needed.error?.code, 'reauthentication_needed');
  const wrong = await client.auth.updateUser({ password: 'third-password', nonce: otherCode(mail.code) });
  assert.equal(wrong.error?.status, 422);
  assert.equal(wrong.error?.code, 'reauthentication_not_valid');
  assert.equal(wrong.error?.message, 'Nonce has expired or is invalid');
  const done = await client.auth.updateUser({ password: 'third-password', nonce: mail.code });
  assert.equal(done.error, null);
  assert.equal('reauthentication_sent_at' in done.data.user, false);
  const signIn = await newClient().auth.signInWithPassword({ email, password: 'third-password' });
  assert.equal(signIn.error, null);

  // Used once only.
  const reused = await client.auth.updateUser({ password: 'fourth-password', nonce: mail.code });
  assert.equal(reused.error?.code, 'reauthentication_not_valid');

  // An expired nonce is refused, and the password stays.
  assert.equal((await client.auth.reauthenticate()).error, null);
  const [fresh] = mails(email, 'reauthentication');
  assert.notEqual(fresh.body, undefined);
  sql(`UPDATE auth.otp_codes SET created_at = now() - interval '2 hours' WHERE user_id = '${user.id}' AND channel = 'reauthentication'`);
  const expired = await client.auth.updateUser({ password: 'fourth-password', nonce: fresh.code });
  assert.equal(expired.error?.code, 'reauthentication_not_valid');
  assert.equal((await newClient().auth.signInWithPassword({ email, password: 'third-password' })).error, null);

  // Without a session, and for a user with neither email nor phone.
  const anonymous = await fetch(`${url}/auth/v1/reauthenticate`, { headers: { apikey: anonKey } });
  assert.equal(anonymous.status, 401);
  assert.equal((await anonymous.json()).error_code, 'no_authorization');
  const guest = newClient();
  assert.equal((await guest.auth.signInAnonymously()).error, null);
  const noContact = await guest.auth.reauthenticate();
  assert.equal(noContact.error?.status, 400);
  assert.equal(noContact.error?.message, 'Reauthentication requires the user to have an email or a phone number');
});

test('phone change: a code to the new number, applied only when verified, once', async () => {
  const { client, user } = await signedIn();
  const phone = randomPhone();
  const asked = await client.auth.updateUser({ phone: `+${phone}` });
  assert.equal(asked.error, null);
  assert.equal(asked.data.user.new_phone, phone);
  assert.ok(asked.data.user.phone_change_sent_at);
  assert.equal(asked.data.user.phone, '', 'the phone is unchanged until verified');
  assert.equal((await client.auth.getUser()).data.user.phone, '');
  const [text] = texts(phone);
  const code = text.match(/\d{6}/)[0];

  const wrong = await newClient().auth.verifyOtp({ phone, token: otherCode(code), type: 'phone_change' });
  assert.equal(wrong.error?.code, 'otp_expired');
  assert.equal((await client.auth.getUser()).data.user.phone, '');
  const { data, error } = await newClient().auth.verifyOtp({ phone: `+${phone}`, token: code, type: 'phone_change' });
  assert.equal(error, null);
  assert.equal(data.user.id, user.id);
  assert.equal(data.user.phone, phone);
  assert.ok(data.user.phone_confirmed_at);
  assert.equal('new_phone' in data.user, false);
  const reused = await newClient().auth.verifyOtp({ phone, token: code, type: 'phone_change' });
  assert.equal(reused.error?.code, 'otp_expired');

  // resend({type: 'phone_change'}) by the current number: a new code, the old one stops working.
  const next = randomPhone();
  assert.equal((await client.auth.updateUser({ phone: next })).error, null);
  const firstCode = texts(next)[0].match(/\d{6}/)[0];
  const resent = await newClient().auth.resend({ type: 'phone_change', phone });
  assert.equal(resent.error, null);
  assert.equal(texts(next).length, 2);
  const secondCode = texts(next)[0].match(/\d{6}/)[0];
  if (firstCode !== secondCode) {
    const stale = await newClient().auth.verifyOtp({ phone: next, token: firstCode, type: 'phone_change' });
    assert.equal(stale.error?.code, 'otp_expired');
  }
  // Expired: the number stays as it was.
  sql(`UPDATE auth.otp_codes SET created_at = now() - interval '2 hours' WHERE user_id = '${user.id}' AND channel = 'phone_change'`);
  const expired = await newClient().auth.verifyOtp({ phone: next, token: secondCode, type: 'phone_change' });
  assert.equal(expired.error?.code, 'otp_expired');
  assert.equal((await client.auth.getUser()).data.user.phone, phone);

  // A number another user has is refused, and a malformed one.
  const other = await signedIn();
  const taken = await other.client.auth.updateUser({ phone });
  assert.equal(taken.error?.status, 422);
  assert.equal(taken.error?.code, 'phone_exists');
  const malformed = await other.client.auth.updateUser({ phone: 'call me' });
  assert.equal(malformed.error?.code, 'validation_failed');
});

test('phone change to a test number uses its fixed code and texts nothing', async () => {
  const { client, user } = await signedIn();
  sql(`DELETE FROM auth.otp_codes WHERE channel = 'phone_change' AND user_id IN (SELECT id FROM auth.users WHERE phone_change = '15550002222')`);
  assert.equal((await client.auth.updateUser({ phone: '+15550002222' })).error, null);
  assert.equal(texts('15550002222').length, 0);
  const { data, error } = await newClient().auth.verifyOtp({ phone: '15550002222', token: '654321', type: 'phone_change' });
  assert.equal(error, null);
  assert.equal(data.user.id, user.id);
  assert.equal(data.user.phone, '15550002222');
  sql(`UPDATE auth.users SET phone = NULL WHERE id = '${user.id}'`);
});

test('generateLink: signup with redirectTo, and email change links that /verify accepts', async () => {
  const email = `gen-${randomUUID()}@example.com`;
  const redirectTo = `${site}/welcome`;
  const signup = await admin.generateLink({
    type: 'signup',
    email,
    password: 'generated-password',
    options: { data: { status: 'alpha' }, redirectTo },
  });
  assert.equal(signup.error, null);
  assert.deepEqual(signup.data.user.user_metadata, { status: 'alpha' });
  assert.equal('email_confirmed_at' in signup.data.user, false);
  assert.match(signup.data.properties.action_link, /\?token=.*type=signup/);
  assert.ok(signup.data.properties.action_link.includes(`redirect_to=${redirectTo}`), signup.data.properties.action_link);
  assert.equal(signup.data.properties.redirect_to, redirectTo);
  // A redirect outside the allow list falls back to the site URL.
  const foreign = await admin.generateLink({ type: 'magiclink', email, options: { redirectTo: 'https://evil.example/x' } });
  assert.equal(foreign.data.properties.redirect_to, site);

  for (const type of ['email_change_current', 'email_change_new']) {
    const { email: current } = await signedIn();
    const newEmail = `changed-${randomUUID()}@example.com`;
    const { data, error } = await admin.generateLink({ type, email: current, newEmail, options: { redirectTo } });
    assert.equal(error, null, type);
    assert.equal(data.user.email, current);
    assert.equal(data.user.new_email, newEmail);
    assert.equal(data.properties.verification_type, type);
    assert.match(data.properties.action_link, /\?token=.*type=email_change/);
    assert.ok(data.properties.action_link.includes(`redirect_to=${redirectTo}`));
    const verified = await newClient().auth.verifyOtp({ token_hash: data.properties.hashed_token, type: 'email_change' });
    assert.equal(verified.error, null, type);
    assert.equal(verified.data.user.email, newEmail);
    assert.equal('new_email' in verified.data.user, false);
    const again = await newClient().auth.verifyOtp({ token_hash: data.properties.hashed_token, type: 'email_change' });
    assert.equal(again.error?.code, 'otp_expired');
  }
  const missing = await admin.generateLink({ type: 'email_change_new', email: `nobody-${randomUUID()}@example.com`, newEmail: 'x@example.com' });
  assert.equal(missing.error?.status, 404);
  const { email: taken } = await signedIn();
  const { email: mine } = await signedIn();
  const clash = await admin.generateLink({ type: 'email_change_new', email: mine, newEmail: taken });
  assert.equal(clash.error?.code, 'email_exists');
});

test('user JSON: unset timestamps are left out, set ones are there', async () => {
  const email = `shape-${randomUUID()}@example.com`;
  const { data } = await newClient().auth.signUp({ email, password: 'shape-password' });
  for (const field of ['email_confirmed_at', 'phone_confirmed_at', 'confirmed_at', 'last_sign_in_at', 'invited_at', 'banned_until', 'new_email', 'new_phone']) {
    assert.equal(field in data.user, false, field);
  }
  const updated = await admin.updateUserById(data.user.id, { email_confirm: true });
  assert.equal(updated.error, null);
  assert.ok(updated.data.user.email_confirmed_at);
  assert.ok(updated.data.user.confirmed_at);
  const listed = await admin.getUserById(data.user.id);
  assert.equal('last_sign_in_at' in listed.data.user, false);
  assert.equal((await newClient().auth.signInWithPassword({ email, password: 'shape-password' })).error, null);
  assert.ok((await admin.getUserById(data.user.id)).data.user.last_sign_in_at);
});
