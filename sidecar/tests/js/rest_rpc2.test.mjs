// RPC as PostgREST 12 answers it, through @supabase/postgrest-js unmodified: counts with GET, POST
// and HEAD (Content-Range), Prefer: max-affected (PGRST124, undoing the call's writes) and array
// bodies (no bulk calls in PostgREST 12: one call with the first object).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anonKey, client, url } from './support.mjs';

/** A raw request to the REST API, as the anonymous key. */
async function rest(path, { method = 'GET', headers = {}, body } = {}) {
  const response = await fetch(`${url}/rest/v1${path}`, {
    method,
    headers: { apikey: anonKey, Authorization: `Bearer ${anonKey}`, ...headers },
    body,
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

test('count=exact on a set of scalars by POST, GET and HEAD', async () => {
  const posted = await client().rpc('rpc2_numbers', { n: 7 }, { count: 'exact' }).range(0, 2);
  assert.equal(posted.error, null);
  assert.deepEqual(posted.data, [1, 2, 3]);
  assert.equal(posted.count, 7);
  assert.equal(posted.status, 206);

  const got = await client().rpc('rpc2_numbers', { n: 4 }, { get: true, count: 'exact' });
  assert.equal(got.error, null);
  assert.deepEqual(got.data, [1, 2, 3, 4]);
  assert.equal(got.count, 4);
  assert.equal(got.status, 200);

  const head = await client().rpc('rpc2_numbers', { n: 9 }, { head: true, count: 'exact' });
  assert.equal(head.error, null);
  assert.equal(head.data, null);
  assert.equal(head.count, 9);

  const raw = await rest('/rpc/rpc2_numbers?n=9&limit=2&offset=3', {
    method: 'HEAD',
    headers: { Prefer: 'count=exact' },
  });
  assert.equal(raw.status, 206);
  assert.equal(raw.text, '');
  assert.equal(raw.headers.get('content-range'), '3-4/9');
  assert.equal(raw.headers.get('preference-applied'), 'count=exact');
});

test('planned and estimated counts of a call are exact, and rows of a table count too', async () => {
  for (const count of ['planned', 'estimated']) {
    const { data, error, count: total } = await client()
      .rpc('rpc2_items_upto', { n: 4 }, { count })
      .select('id')
      .limit(1);
    assert.equal(error, null);
    assert.deepEqual(data, [{ id: 1 }]);
    assert.equal(total, 4, count);
  }
  const head = await client().rpc('rpc2_items_upto', { n: 3 }, { head: true, count: 'exact' });
  assert.equal(head.error, null);
  assert.equal(head.count, 3);
  const raw = await rest('/rpc/rpc2_numbers?n=3', { headers: { Prefer: 'count=planned' } });
  assert.equal(raw.headers.get('content-range'), '0-2/3');
  assert.equal(raw.headers.get('preference-applied'), 'count=planned');
});

test('a scalar or void call answers with a one-row Content-Range', async () => {
  const sum = await client().rpc('rpc2_sum', { a: 2, b: 3 }, { count: 'exact' });
  assert.equal(sum.error, null);
  assert.equal(sum.data, 5);
  assert.equal(sum.count, 1);
  const plain = await rest('/rpc/rpc2_sum?a=1&b=1');
  assert.equal(plain.status, 200);
  assert.equal(plain.text, '2');
  assert.equal(plain.headers.get('content-range'), '0-0/*');
  assert.equal(plain.headers.get('preference-applied'), null);
  const head = await rest('/rpc/rpc2_sum?a=1&b=1', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.text, '');
  const noop = await rest('/rpc/rpc2_noop', { method: 'POST', headers: { Prefer: 'count=exact' } });
  assert.equal(noop.status, 204);
  assert.equal(noop.headers.get('content-range'), '0-0/1');
  const beyond = await rest('/rpc/rpc2_numbers?n=2&offset=5', { headers: { Prefer: 'count=exact' } });
  assert.equal(beyond.status, 416);
  assert.deepEqual(JSON.parse(beyond.text), {
    code: 'PGRST103',
    message: 'Requested range not satisfiable',
    details: 'An offset of 5 was requested, but there are only 2 rows.',
    hint: null,
  });
});

test('max-affected refuses a call returning more rows and undoes its writes', async () => {
  const refused = await client().rpc('rpc2_relabel', { prefix: 'x' }).maxAffected(2);
  assert.equal(refused.status, 400);
  assert.equal(refused.data, null);
  assert.deepEqual(refused.error, {
    code: 'PGRST124',
    message: 'Query result exceeds max-affected preference constraint',
    details: 'The query affects 5 rows',
    hint: null,
  });
  const { data: untouched } = await client().from('rpc2_items').select('label').eq('id', 1);
  assert.deepEqual(untouched, [{ label: 'item 1' }]);

  // Within the bound the call commits; without handling=strict the bound is ignored.
  const allowed = await client().rpc('rpc2_relabel', { prefix: 'y' }).maxAffected(5).select('id');
  assert.equal(allowed.error, null);
  assert.equal(allowed.data.length, 5);
  const lenient = await rest('/rpc/rpc2_relabel', {
    method: 'POST',
    headers: { Prefer: 'max-affected=1', 'Content-Type': 'application/json' },
    body: JSON.stringify({ prefix: 'item ' }),
  });
  assert.equal(lenient.status, 200);
  assert.equal(JSON.parse(lenient.text).length, 5);
  const strict = await rest('/rpc/rpc2_sum?a=1&b=2', {
    headers: { Prefer: 'handling=strict, max-affected=1' },
  });
  assert.equal(strict.status, 200);
  assert.equal(strict.headers.get('preference-applied'), 'handling=strict, max-affected=1');
});

test('an array body calls the function once with its first object, as PostgREST 12', async () => {
  const post = (fn, body) =>
    rest(`/rpc/${fn}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  const first = await post('rpc2_sum', [
    { a: 1, b: 2 },
    { a: 10, b: 20 },
  ]);
  assert.equal(first.status, 200);
  assert.equal(first.text, '3');
  // The same through postgrest-js, which sends the array as the body.
  const { data, error } = await client().rpc('rpc2_sum', [{ a: 4, b: 5 }]);
  assert.equal(error, null);
  assert.equal(data, 9);
  // A function of one unnamed json argument takes the whole array.
  const whole = await post('rpc2_length', [{ a: 1 }, { a: 2 }, { a: 3 }]);
  assert.equal(whole.status, 200);
  assert.equal(whole.text, '3');
  const differ = await post('rpc2_sum', [{ a: 1, b: 2 }, { a: 1 }]);
  assert.equal(differ.status, 400);
  assert.equal(JSON.parse(differ.text).code, 'PGRST102');
  assert.equal(JSON.parse(differ.text).message, 'All object keys must match');
});
