// Writes through @supabase/postgrest-js, as an application would make them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANN, BOB, anonKey, client, url, userToken } from './support.mjs';

const ann = () => client(userToken(ANN));

test('insert one row and read it back with select()', async () => {
  const { data, error, status } = await ann().from('stock').insert({ id: 1, sku: 'a-1' }).select();
  assert.equal(error, null);
  assert.equal(status, 201);
  assert.deepEqual(data, [{ id: 1, sku: 'a-1', qty: 0, note: null }]);

  const single = await ann().from('stock').insert({ id: 2, sku: 'a-2', qty: 4 }).select('id, qty').single();
  assert.equal(single.error, null);
  assert.deepEqual(single.data, { id: 2, qty: 4 });
});

test('bulk insert, with and without defaults for missing keys', async () => {
  const plain = await ann().from('stock').insert([{ id: 10, sku: 'b-10', qty: 1 }, { id: 11, sku: 'b-11', qty: 2 }]);
  assert.equal(plain.error, null);
  assert.equal(plain.status, 201);
  assert.equal(plain.data, null);

  const { data, error } = await ann()
    .from('stock')
    .insert([{ id: 12, sku: 'b-12', qty: 5 }, { id: 13, sku: 'b-13' }], { defaultToNull: false })
    .select('id, qty')
    .order('id');
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 12, qty: 5 }, { id: 13, qty: 0 }]);
});

test('bulk insert of objects with different keys keeps every key (postgrest-js names the columns)', async () => {
  const { data, error } = await ann()
    .from('stock')
    .insert([{ id: 14, sku: 'b-14' }, { id: 15, sku: 'b-15', note: 'second' }], { defaultToNull: false })
    .select('id, qty, note')
    .order('id');
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 14, qty: 0, note: null }, { id: 15, qty: 0, note: 'second' }]);

  // Without columns= (a hand-written client), the same body is refused as PostgREST refuses it.
  const response = await fetch(`${url}/rest/v1/stock`, {
    method: 'POST',
    headers: { apikey: anonKey, Authorization: `Bearer ${userToken(ANN)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify([{ id: 16, sku: 'b-16' }, { id: 17, sku: 'b-17', note: 'lost?' }]),
  });
  assert.equal(response.status, 400);
  const body = await response.json();
  assert.equal(body.code, 'PGRST102');
  assert.equal(body.message, 'All object keys must match');
  const none = await ann().from('stock').select('id').in('id', [16, 17]);
  assert.deepEqual(none.data, []);
});

test('upsert merges on the primary key or on_conflict, or ignores duplicates', async () => {
  await ann().from('stock').insert([{ id: 20, sku: 'u-20', qty: 1 }, { id: 21, sku: 'u-21', qty: 1 }]);
  const merged = await ann().from('stock').upsert({ id: 20, sku: 'u-20', qty: 9 }).select('id, qty');
  assert.equal(merged.error, null);
  assert.deepEqual(merged.data, [{ id: 20, qty: 9 }]);

  const bySku = await ann().from('stock').upsert({ id: 21, sku: 'u-21', qty: 7 }, { onConflict: 'sku' }).select('id, qty');
  assert.equal(bySku.error, null);
  assert.deepEqual(bySku.data, [{ id: 21, qty: 7 }]);

  const ignored = await ann()
    .from('stock')
    .upsert([{ id: 99, sku: 'u-20', qty: 0 }, { id: 22, sku: 'u-22', qty: 2 }], { onConflict: 'sku', ignoreDuplicates: true })
    .select('id');
  assert.equal(ignored.error, null);
  assert.deepEqual(ignored.data, [{ id: 22 }]);
});

test('update and delete with filters', async () => {
  await ann().from('stock').insert([{ id: 30, sku: 'd-30', qty: 3 }, { id: 31, sku: 'd-31', qty: 3 }]);
  const updated = await ann().from('stock').update({ note: 'checked' }).eq('id', 30).select('id, note');
  assert.equal(updated.error, null);
  assert.deepEqual(updated.data, [{ id: 30, note: 'checked' }]);

  const quiet = await ann().from('stock').update({ qty: 0 }).eq('id', 31);
  assert.equal(quiet.error, null);
  assert.equal(quiet.status, 204);

  const deleted = await ann().from('stock').delete().in('id', [30, 31]).select('id').order('id');
  assert.equal(deleted.error, null);
  assert.deepEqual(deleted.data, [{ id: 30 }, { id: 31 }]);

  const left = await ann().from('stock').select('id').in('id', [30, 31]);
  assert.deepEqual(left.data, []);

  const unfiltered = await ann().from('stock').delete();
  assert.equal(unfiltered.status, 400);
  assert.equal(unfiltered.error.code, 'SLUICE123');
});

test('row-level security decides who may write what', async () => {
  const mine = await ann().from('memos').insert({ body: 'hello' }).select('owner, body');
  assert.equal(mine.error, null);
  assert.deepEqual(mine.data, [{ owner: ANN, body: 'hello' }]);

  const forged = await ann().from('memos').insert({ body: 'as bob', owner: BOB });
  assert.equal(forged.status, 403);
  assert.equal(forged.error.code, '42501');

  const anon = await client().from('memos').insert({ body: 'anon' });
  assert.equal(anon.status, 401);
  assert.equal(anon.error.code, '42501');
});

test('bad input is a 400 with a code, never a 500', async () => {
  const unknown = await ann().from('stock').insert({ id: 40, sku: 'x', nope: 1 });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.error.code, 'PGRST204');

  const typed = await ann().from('stock').insert({ id: 'forty', sku: 'x' });
  assert.equal(typed.status, 400);
  assert.equal(typed.error.code, '22P02');
});
