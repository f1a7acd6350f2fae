// Function calls through @supabase/postgrest-js's rpc(), as an application would make them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANN, BOB, client, userToken } from './support.mjs';

test('a scalar function by POST and by GET', async () => {
  const posted = await client().rpc('add_them', { a: 1, b: 2 });
  assert.equal(posted.error, null);
  assert.equal(posted.data, 3);
  const got = await client().rpc('add_them', { a: 40, b: 2 }, { get: true });
  assert.equal(got.error, null);
  assert.equal(got.data, 42);
});

test('a set of rows takes filters, order, limit and counts', async () => {
  const { data, error, count } = await client()
    .rpc('books_since', { year: 1965 }, { count: 'exact' })
    .select('title, year')
    .lt('year', 1975)
    .order('year', { ascending: false })
    .limit(2);
  assert.equal(error, null);
  assert.deepEqual(data, [
    { title: 'The Dispossessed', year: 1974 },
    { title: 'The Left Hand of Darkness', year: 1969 },
  ]);
  assert.equal(count, 4);
});

test('rows of a table type embed related tables', async () => {
  const { data, error } = await client()
    .rpc('books_since', { year: 1990 })
    .select('title, authors(name)');
  assert.equal(error, null);
  assert.deepEqual(data, [{ title: 'Parable of the Sower', authors: { name: 'Octavia E. Butler' } }]);
});

test('RETURNS TABLE columns can be filtered, and single() gives one object', async () => {
  const { data, error } = await client()
    .rpc('author_stats')
    .eq('author', 'Stanisław Lem')
    .single();
  assert.equal(error, null);
  assert.deepEqual(data, { author: 'Stanisław Lem', books: 2 });
});

test('RLS applies inside the function', async () => {
  const ann = await client(userToken(ANN)).rpc('my_open_todos').select('title');
  assert.equal(ann.error, null);
  assert.ok(ann.data.every((row) => row.title.startsWith('ann:')), JSON.stringify(ann.data));
  const bob = await client(userToken(BOB)).rpc('my_open_todos').select('title');
  assert.deepEqual(bob.data.map((row) => row.title), ['bob: fix bike']);
  // anon has no grant on todos: refused inside the function, as a 401 for a role that may log in.
  const anon = await client().rpc('my_open_todos');
  assert.equal(anon.status, 401);
  assert.equal(anon.error.code, '42501');
});

test('a volatile function writes by POST and is refused by GET', async () => {
  const db = client(userToken(BOB));
  const added = await db.rpc('add_visit', { note: 'from rpc' });
  assert.equal(added.error, null);
  assert.equal(added.data.owner, BOB);
  assert.equal(added.data.note, 'from rpc');
  const refused = await db.rpc('add_visit', { note: 'by get' }, { get: true });
  assert.equal(refused.status, 405);
  assert.equal(refused.error.code, '25006');
});

test('a json argument takes the whole body; void answers 204', async () => {
  const echo = await client().rpc('echo_payload', { any: ['shape', 1] });
  assert.equal(echo.error, null);
  assert.deepEqual(echo.data, { any: ['shape', 1] });
  const ping = await client().rpc('ping');
  assert.equal(ping.error, null);
  assert.equal(ping.status, 204);
});

test('errors: unknown function, wrong argument type, RAISE', async () => {
  const missing = await client().rpc('no_such_function', { x: 1 });
  assert.equal(missing.status, 404);
  assert.equal(missing.error.code, 'PGRST202');
  const wrongType = await client().rpc('add_them', { a: 'one', b: 2 });
  assert.equal(wrongType.status, 400);
  assert.equal(wrongType.error.code, '22P02');
  const raised = await client().rpc('refuse', { reason: 'no' });
  assert.equal(raised.status, 400);
  assert.equal(raised.error.code, 'P0001');
  assert.equal(raised.error.message, 'refused: no');
});
