// Realtime with the real client: @supabase/realtime-js over both serializers, against the sidecar.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient } from '@supabase/realtime-js';
import { createClient } from '@supabase/supabase-js';
import { url, anonKey, serviceKey, userToken, client, ANN, BOB } from './support.mjs';

const endpoint = `${url.replace(/^http/, 'ws')}/realtime/v1`;
const sockets = [];
after(() => sockets.forEach((s) => s.disconnect()));

function realtime(vsn, token) {
  const socket = new RealtimeClient(endpoint, { params: { apikey: anonKey }, transport: WebSocket, vsn });
  if (token) socket.setAuth(token);
  sockets.push(socket);
  return socket;
}

/** Subscribes and resolves once the server confirmed (or rejects with its reason). */
function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve(channel);
      else if (status !== 'CLOSED') reject(new Error(`${status}: ${err?.message}`));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(check, what, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
}

const service = client(serviceKey);
const summary = (e) => `${e.eventType} ${e.new?.id ?? e.old?.id}`;

for (const vsn of ['1.0.0', '2.0.0']) {
  test(`postgres_changes with and without filters (vsn ${vsn})`, async () => {
    const base = vsn === '1.0.0' ? 100 : 200;
    const all = [];
    const fruit = [];
    const inserts = [];
    const socket = realtime(vsn);
    const channel = socket
      .channel(`items-${vsn}`)
      .on('postgres_changes', { event: '*', schema: 'public', table: 'rt_items' }, (e) => all.push(e))
      .on('postgres_changes', { event: '*', schema: 'public', table: 'rt_items', filter: 'kind=eq.fruit' }, (e) => fruit.push(e))
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_items' }, (e) => inserts.push(e));
    await subscribed(channel);

    const ok = (r) => assert.equal(r.error, null, JSON.stringify(r.error));
    ok(await service.from('rt_items').insert({ id: base + 1, kind: 'fruit', name: 'apple', qty: 1 }));
    ok(await service.from('rt_items').insert({ id: base + 2, kind: 'veg', name: 'leek' }));
    ok(await service.from('rt_items').update({ qty: 5 }).eq('id', base + 1));
    ok(await service.from('rt_items').delete().eq('id', base + 2));

    await until(() => all.length >= 4 && inserts.length >= 2 && fruit.length >= 2, 'events');
    await sleep(200); // nothing more may arrive
    assert.deepEqual(all.map(summary), [`INSERT ${base + 1}`, `INSERT ${base + 2}`, `UPDATE ${base + 1}`, `DELETE ${base + 2}`]);
    assert.deepEqual(fruit.map(summary), [`INSERT ${base + 1}`, `UPDATE ${base + 1}`]);
    assert.deepEqual(inserts.map(summary), [`INSERT ${base + 1}`, `INSERT ${base + 2}`]);

    const [insert, , update, remove] = all;
    assert.equal(insert.schema, 'public');
    assert.equal(insert.table, 'rt_items');
    assert.ok(insert.commit_timestamp);
    assert.deepEqual(insert.new, { id: base + 1, kind: 'fruit', name: 'apple', qty: 1 });
    assert.deepEqual(update.new, { id: base + 1, kind: 'fruit', name: 'apple', qty: 5 });
    // Without REPLICA IDENTITY FULL, old records carry the primary key only, as in Supabase.
    assert.deepEqual(update.old, { id: base + 1 });
    assert.deepEqual(remove.old, { id: base + 2 });
    await socket.removeChannel(channel);
  });
}

test('TRUNCATE reaches * and TRUNCATE listeners, in order, with empty new and old', async () => {
  const all = [];
  const truncates = [];
  const inserts = [];
  const socket = realtime('2.0.0');
  const channel = socket
    .channel('emptied')
    .on('postgres_changes', { event: '*', schema: 'public', table: 'rt_emptied' }, (e) => all.push(e))
    .on('postgres_changes', { event: 'TRUNCATE', schema: 'public', table: 'rt_emptied' }, (e) => truncates.push(e))
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_emptied' }, (e) => inserts.push(e));
  await subscribed(channel);

  const ok = (r) => assert.equal(r.error, null, JSON.stringify(r.error));
  ok(await service.from('rt_emptied').insert({ id: 1 }));
  ok(await service.rpc('rt_empty'));
  ok(await service.from('rt_emptied').insert({ id: 2 }));

  await until(() => all.length >= 3, () => `3 events, got ${all.map(summary)}`);
  await sleep(200); // nothing more may arrive
  assert.deepEqual(all.map(summary), ['INSERT 1', 'TRUNCATE undefined', 'INSERT 2']);
  assert.deepEqual(inserts.map(summary), ['INSERT 1', 'INSERT 2']);
  assert.equal(truncates.length, 1);
  const truncate = truncates[0];
  assert.equal(truncate.eventType, 'TRUNCATE');
  assert.equal(truncate.schema, 'public');
  assert.equal(truncate.table, 'rt_emptied');
  assert.ok(truncate.commit_timestamp);
  assert.deepEqual([truncate.new, truncate.old], [{}, {}]);
  await socket.removeChannel(channel);
});

test('RLS: two users on the same table each receive only their own rows', async () => {
  const seen = { ann: [], bob: [], anon: [] };
  const channels = await Promise.all(
    [['ann', userToken(ANN)], ['bob', userToken(BOB)], ['anon', null]].map(([who, token]) =>
      subscribed(
        realtime('2.0.0', token)
          .channel(`notes-${who}`)
          .on('postgres_changes', { event: '*', schema: 'public', table: 'rt_notes' }, (e) => seen[who].push(e)),
      ),
    ),
  );
  assert.equal(channels.length, 3);
  const rows = [
    { id: 1, owner: ANN, body: 'ann 1' },
    { id: 2, owner: BOB, body: 'bob 1' },
    { id: 3, owner: ANN, body: 'ann 2' },
  ];
  for (const row of rows) {
    const r = await service.from('rt_notes').insert(row);
    assert.equal(r.error, null);
  }
  // Deletes: a deleted row is checked against the policies as it was, so each owner alone hears
  // of it (with the key only: no REPLICA IDENTITY FULL here).
  assert.equal((await service.from('rt_notes').delete().eq('id', 3)).error, null);
  assert.equal((await service.from('rt_notes').delete().eq('id', 2)).error, null);
  await until(() => seen.ann.length >= 3 && seen.bob.length >= 2, () => `rls events, got ${JSON.stringify(seen)}`);
  await sleep(300);
  // Row 3 was deleted before its INSERT was delivered, perhaps: the INSERT is judged by the row it
  // carries, so Ann gets both.
  assert.deepEqual(seen.ann.map(summary), ['INSERT 1', 'INSERT 3', 'DELETE 3']);
  assert.deepEqual(seen.ann.map((e) => e.new.body ?? e.old), ['ann 1', 'ann 2', { id: 3 }]);
  assert.deepEqual(seen.bob.map(summary), ['INSERT 2', 'DELETE 2']);
  assert.deepEqual(seen.bob[1].old, { id: 2 });
  assert.deepEqual(seen.anon, [], 'anon has no SELECT on rt_notes');
});

test('RLS with REPLICA IDENTITY FULL: old records go whole only to who could read them', async () => {
  const seen = { ann: [], bob: [] };
  await Promise.all(
    [['ann', userToken(ANN)], ['bob', userToken(BOB)]].map(([who, token]) =>
      subscribed(
        realtime('1.0.0', token)
          .channel(`full-${who}`)
          .on('postgres_changes', { event: '*', schema: 'public', table: 'rt_notes_full' }, (e) => seen[who].push(e)),
      ),
    ),
  );
  const ok = (r) => assert.equal(r.error, null, JSON.stringify(r.error));
  ok(await service.from('rt_notes_full').insert([{ id: 1, owner: ANN, body: 'ann' }, { id: 2, owner: BOB, body: 'bob' }]));
  ok(await service.from('rt_notes_full').update({ body: 'ann, edited' }).eq('id', 1));
  // Bob's row is given to Ann: she may see it now, but its old version was Bob's.
  ok(await service.from('rt_notes_full').update({ owner: ANN, body: 'was bob' }).eq('id', 2));
  ok(await service.from('rt_notes_full').delete().eq('id', 1));
  ok(await service.from('rt_notes_full').delete().eq('id', 2));
  await until(() => seen.ann.length >= 5 && seen.bob.length >= 1, () => `events, got ${JSON.stringify(seen)}`);
  await sleep(300);
  assert.deepEqual(seen.ann.map(summary), ['INSERT 1', 'UPDATE 1', 'UPDATE 2', 'DELETE 1', 'DELETE 2']);
  assert.deepEqual(seen.ann[1].old, { id: 1, owner: ANN, body: 'ann' });
  assert.deepEqual(seen.ann[2].old, { id: 2 }, 'the old version was not hers');
  assert.deepEqual(seen.ann[2].new, { id: 2, owner: ANN, body: 'was bob' });
  assert.deepEqual(seen.ann[3].old, { id: 1, owner: ANN, body: 'ann, edited' });
  assert.deepEqual(seen.ann[4].old, { id: 2, owner: ANN, body: 'was bob' });
  // Bob saw his row arrive, and nothing after it was given away.
  assert.deepEqual(seen.bob.map(summary), ['INSERT 2']);

  // Each event is judged by the row as it shows it, not by what the row became: inserted for Ann
  // and given to Bob in one transaction, Ann gets the INSERT and Bob the UPDATE (without Ann's
  // version as its old record), although the table shows Bob's row to both deliveries.
  seen.ann.length = 0;
  seen.bob.length = 0;
  ok(await service.rpc('rt_insert_then_give', { note_id: 3, first_owner: ANN, second_owner: BOB }));
  await until(() => seen.ann.length >= 1 && seen.bob.length >= 1, () => `events, got ${JSON.stringify(seen)}`);
  await sleep(300);
  assert.deepEqual(seen.ann.map(summary), ['INSERT 3']);
  assert.deepEqual(seen.ann[0].new, { id: 3, owner: ANN, body: 'first' });
  assert.deepEqual(seen.bob.map(summary), ['UPDATE 3']);
  assert.deepEqual(seen.bob[0].new, { id: 3, owner: BOB, body: 'given' });
  assert.deepEqual(seen.bob[0].old, { id: 3 });
});

test('joining a table without realtime is refused with a reason', async () => {
  const channel = realtime('2.0.0').channel('nope').on('postgres_changes', { event: '*', schema: 'public', table: 'books' }, () => {});
  await assert.rejects(subscribed(channel), /realtime is not enabled/);
});

test('joining a private channel is refused with a reason, not served as public', async () => {
  const channel = realtime('2.0.0', userToken(ANN)).channel('secret-room', { config: { private: true } });
  await assert.rejects(subscribed(channel), /private channels are not supported/);
});

test('broadcast with ack and presence between two clients', async () => {
  const [a, b] = [realtime('2.0.0'), realtime('1.0.0')];
  const got = [];
  const gotA = [];
  const chanA = a
    .channel('room1', { config: { broadcast: { ack: true }, presence: { key: 'alice' } } })
    .on('broadcast', { event: 'back' }, (m) => gotA.push(m.payload));
  const chanB = b
    .channel('room1', { config: { presence: { key: 'bob' } } })
    .on('broadcast', { event: 'hi' }, (m) => got.push(m.payload))
    .on('presence', { event: 'sync' }, () => {});
  await subscribed(chanB);
  await subscribed(chanA);
  assert.equal(await chanA.send({ type: 'broadcast', event: 'hi', payload: { n: 1 } }), 'ok');
  await until(() => got.length === 1, 'broadcast');
  assert.deepEqual(got, [{ n: 1 }]);
  // From the 1.0.0 socket (JSON) to the 2.0.0 one (a binary frame on the wire).
  await chanB.send({ type: 'broadcast', event: 'back', payload: { n: 2 } });
  await until(() => gotA.length === 1, 'broadcast back');
  assert.deepEqual(gotA, [{ n: 2 }]);
  assert.equal(await chanA.track({ mood: 'happy' }), 'ok');
  await until(() => chanB.presenceState().alice?.length === 1, 'presence');
  assert.equal(chanB.presenceState().alice[0].mood, 'happy');
  assert.equal(await chanA.untrack(), 'ok');
  await until(() => !chanB.presenceState().alice, 'presence leave');
});

test('a client that has not joined broadcasts over HTTP to one that has (supabase-js)', async () => {
  const options = { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket } };
  const [listener, sender] = [createClient(url, anonKey, options), createClient(url, anonKey, options)];
  sockets.push(listener.realtime, sender.realtime);
  const got = [];
  await subscribed(listener.channel('news').on('broadcast', { event: 'flash' }, (m) => got.push(m.payload)));

  // Not subscribed: send() goes to POST /realtime/v1/api/broadcast with topic 'news'.
  const out = sender.channel('news');
  const warn = console.warn;
  console.warn = () => {}; // realtime-js warns that it falls back to REST: that is the point here.
  try {
    assert.equal(await out.send({ type: 'broadcast', event: 'flash', payload: { n: 1 } }), 'ok');
  } finally {
    console.warn = warn;
  }
  await until(() => got.length === 1, 'the broadcast sent over HTTP');
  // httpSend(): POST /realtime/v1/api/broadcast/news/events/flash.
  assert.deepEqual(await out.httpSend('flash', { n: 2 }), { success: true });
  await until(() => got.length === 2, 'the broadcast sent with httpSend');
  assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
  assert.equal(sender.realtime.isConnected(), false, 'the sender never opened a socket');

  // Private channels need authorization Sluice does not have: refused, never broadcast.
  await sender.removeChannel(out); // else channel('news') hands back the same, public channel
  const secret = sender.channel('news', { config: { private: true } });
  await assert.rejects(secret.httpSend('flash', { n: 3 }), /private channels are not supported/);
  await sleep(300);
  assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
  await sender.removeAllChannels();
});
