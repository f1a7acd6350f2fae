// Writes as PostgREST 12 answers them, through @supabase/postgrest-js unmodified:
// Prefer: missing=default for bulk rows lacking a key (identity columns included), an upsert in
// which every row existed is 200 (not 201), and CSV quoted as PostgREST writes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anonKey, client, url } from './support.mjs';

test('missing=default gives absent keys the column default, identity columns included', async () => {
  const { data, error, status } = await client()
    .from('rpc2_tags')
    .insert(
      [{ name: 'a', weight: 1 }, { name: 'b', note: null }, { id: 100, name: 'c' }],
      { defaultToNull: false },
    )
    .select('id, name, weight, note')
    .order('name');
  assert.equal(error, null);
  assert.equal(status, 201);
  assert.equal(data.length, 3);
  assert.ok(Number.isInteger(data[0].id) && data[0].id !== data[1].id, JSON.stringify(data));
  assert.deepEqual(
    data.map(({ name, weight, note }) => ({ name, weight, note })),
    [
      { name: 'a', weight: 1, note: 'none' },
      { name: 'b', weight: 10, note: null },
      { name: 'c', weight: 10, note: 'none' },
    ],
  );
  assert.equal(data[2].id, 100);
  // Without missing=default (postgrest-js's default) an absent key is NULL: the NOT NULL weight
  // refuses it as Postgres does.
  const nulls = await client()
    .from('rpc2_tags')
    .insert([{ name: 'd', weight: 2 }, { name: 'e' }]);
  assert.equal(nulls.status, 400);
  assert.equal(nulls.error.code, '23502');
});

test('an upsert answers 201 when a row is new and 200 when every row existed', async () => {
  const fresh = await client()
    .from('rpc2_tags')
    .upsert([{ id: 200, name: 'x' }, { id: 201, name: 'y' }], { defaultToNull: false })
    .select('id, name');
  assert.equal(fresh.error, null);
  assert.equal(fresh.status, 201);
  const again = await client()
    .from('rpc2_tags')
    .upsert([{ id: 200, name: 'x2' }, { id: 201, name: 'y2' }], { defaultToNull: false })
    .select('id, name')
    .order('id');
  assert.equal(again.error, null);
  assert.equal(again.status, 200);
  assert.deepEqual(again.data, [{ id: 200, name: 'x2' }, { id: 201, name: 'y2' }]);
  const minimal = await client().from('rpc2_tags').upsert({ id: 200, name: 'x3' });
  assert.equal(minimal.error, null);
  assert.equal(minimal.status, 200);
  const mixed = await client()
    .from('rpc2_tags')
    .upsert([{ id: 200, name: 'x4' }, { id: 202, name: 'z' }], { defaultToNull: false });
  assert.equal(mixed.status, 201);
  // ignore-duplicates is 201 whatever it inserted, as PostgREST.
  const ignored = await client()
    .from('rpc2_tags')
    .upsert({ id: 200, name: 'ignored' }, { ignoreDuplicates: true });
  assert.equal(ignored.status, 201);
  const { data } = await client().from('rpc2_tags').select('name').eq('id', 200);
  assert.deepEqual(data, [{ name: 'x4' }]);
});

test('PUT answers 201 when it inserts its row and 200 when it replaced one', async () => {
  const put = (body) =>
    fetch(`${url}/rest/v1/rpc2_tags?id=eq.300`, {
      method: 'PUT',
      headers: {
        apikey: anonKey,
        Authorization: `Bearer ${anonKey}`,
        'Content-Type': 'application/json',
        Prefer: 'return=representation',
      },
      body: JSON.stringify(body),
    });
  const created = await put({ id: 300, name: 'p', weight: 1, note: null });
  assert.equal(created.status, 201, await created.text());
  const replaced = await put({ id: 300, name: 'q', weight: 2, note: null });
  assert.equal(replaced.status, 200);
  assert.deepEqual(await replaced.json(), [{ id: 300, name: 'q', weight: 2, note: null }]);
});

test('CSV quotes, NULLs, booleans, json, arrays and line breaks as PostgREST', async () => {
  const { data, error } = await client().from('rpc2_csv').select('*').order('id').csv();
  assert.equal(error, null);
  assert.equal(
    data,
    'id,label,flag,doc,tags,at\n' +
      '1,plain,t,"{""a"": [1, ""x""]}","{a,b}","2026-01-02 03:04:05+00"\n' +
      '2,"with ""quotes"", comma",f,null,{},\n' +
      '3,"two\nlines",,"""text""","{""with space"",NULL}",\n' +
      '4,"",,,,\n' +
      '5,,,,,\n' +
      '6,"back\\\\slash (paren)",,,,',
  );
  const empty = await client().from('rpc2_csv').select('id, label').eq('id', 99).csv();
  assert.equal(empty.error, null);
  assert.equal(empty.data, '\n');
});
