// Reads through @supabase/postgrest-js, as an application would make them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANN, BOB, client, serviceKey, sign, url, userToken } from './support.mjs';

const titles = (data) => data.map((row) => row.title);

test('select columns, aliases, casts and JSON paths', async () => {
  const { data, error } = await client()
    .from('books')
    .select('id, name:title, year::text, pages:meta->pages')
    .eq('id', 4);
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 4, name: 'Solaris', year: '1961', pages: 204 }]);
});

test('comparison, pattern, list and null filters', async () => {
  const db = client();
  const check = async (query, expected) => {
    const { data, error } = await query.order('id');
    assert.equal(error, null);
    assert.deepEqual(titles(data), expected);
  };
  await check(db.from('books').select('title').gt('year', 1970), ['The Dispossessed', 'Kindred', 'Parable of the Sower']);
  await check(db.from('books').select('title').gte('year', 1974).lt('year', 1990), ['The Dispossessed', 'Kindred']);
  await check(db.from('books').select('title').neq('author_id', 1), ['Solaris', 'The Cyberiad', 'Kindred', 'Parable of the Sower']);
  await check(db.from('books').select('title').lte('year', 1961), ['Solaris']);
  await check(db.from('books').select('title').like('title', '%Dark%'), ['The Left Hand of Darkness']);
  await check(db.from('books').select('title').ilike('title', 'the %'), ['The Left Hand of Darkness', 'The Dispossessed', 'The Cyberiad']);
  await check(db.from('books').select('title').in('id', [1, 4, 8]), ['A Wizard of Earthsea', 'Solaris', 'Anonymous Pamphlet']);
  await check(db.from('books').select('title').is('year', null), ['Anonymous Pamphlet']);
  await check(db.from('books').select('title').not('year', 'is', null).lt('year', 1965), ['Solaris']);
  await check(db.from('books').select('title').match({ author_id: 3, year: 1979 }), ['Kindred']);
});

test('array, full-text and or/and filters', async () => {
  const db = client();
  const check = async (query, expected) => {
    const { data, error } = await query.order('id');
    assert.equal(error, null);
    assert.deepEqual(titles(data), expected);
  };
  await check(db.from('books').select('title').contains('tags', ['scifi', 'utopia']), ['The Dispossessed']);
  await check(db.from('books').select('title').containedBy('tags', ['fantasy']), ['A Wizard of Earthsea', 'Kindred', 'Anonymous Pamphlet']);
  await check(db.from('books').select('title').overlaps('tags', ['humour', 'utopia']), ['The Dispossessed', 'The Cyberiad']);
  await check(db.from('books').select('title').textSearch('title', 'darkness'), ['The Left Hand of Darkness']);
  await check(db.from('books').select('title').or('year.lt.1962,title.eq.Kindred'), ['Solaris', 'Kindred']);
  await check(
    db.from('books').select('title').or('and(author_id.eq.1,year.gt.1970),id.eq.5'),
    ['The Dispossessed', 'The Cyberiad'],
  );
});

test('order, limit, range and exact count', async () => {
  const db = client();
  const { data, error } = await db.from('books').select('title, year').order('year', { ascending: false, nullsFirst: false }).limit(2);
  assert.equal(error, null);
  assert.deepEqual(titles(data), ['Parable of the Sower', 'Kindred']);

  const page = await db.from('books').select('id', { count: 'exact' }).order('id').range(2, 4);
  assert.equal(page.error, null);
  assert.deepEqual(page.data.map((r) => r.id), [3, 4, 5]);
  assert.equal(page.count, 8);
  assert.equal(page.status, 206);

  const head = await db.from('books').select('*', { count: 'exact', head: true }).eq('author_id', 1);
  assert.equal(head.error, null);
  assert.equal(head.count, 3);
  assert.equal(head.data, null);
});

test('single and maybeSingle', async () => {
  const db = client();
  const one = await db.from('books').select('title').eq('id', 6).single();
  assert.equal(one.error, null);
  assert.deepEqual(one.data, { title: 'Kindred' });

  const many = await db.from('books').select('title').eq('author_id', 1).single();
  assert.equal(many.status, 406);
  assert.equal(many.error.code, 'PGRST116');

  const none = await db.from('books').select('title').eq('id', 99).maybeSingle();
  assert.equal(none.error, null);
  assert.equal(none.data, null);
});

test('row-level security: each user sees their own rows, anon none', async () => {
  const ann = await client(userToken(ANN)).from('todos').select('title').order('id');
  assert.equal(ann.error, null);
  assert.deepEqual(titles(ann.data), ['ann: buy milk', 'ann: call bob']);

  const bob = await client(userToken(BOB)).from('todos').select('title');
  assert.deepEqual(titles(bob.data), ['bob: fix bike']);

  const anon = await client().from('todos').select('title');
  assert.equal(anon.status, 401);

  const service = await client(serviceKey).from('todos').select('id');
  assert.equal(service.data.length, 3);
});

test('a token signed with a wrong key is refused with 401', async () => {
  const forged = sign({ role: 'authenticated', sub: ANN }, 'another-secret-another-secret-another-secret');
  const res = await fetch(`${url}/rest/v1/todos`, { headers: { Authorization: `Bearer ${forged}` } });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /invalid_token/);
  const body = await res.json();
  assert.equal(body.code, 'PGRST301');
});

test('bad requests get 4xx JSON errors, never 500', async () => {
  const cases = [
    ['books?select=id,', 400],
    ['books?id=eq.abc', 400],
    ['books?nope=eq.1', 400],
    ['books?select=nope', 400],
    ['no_such_table', 404],
    ['books?or=(id.eq.1', 400],
    ['books?order=title.sideways', 400],
  ];
  for (const [path, status] of cases) {
    const res = await fetch(`${url}/rest/v1/${path}`, { headers: { apikey: sign({ role: 'anon' }) } });
    assert.equal(res.status, status, path);
    const body = await res.json();
    assert.equal(typeof body.code, 'string', path);
    assert.equal(typeof body.message, 'string', path);
  }
});

test('CSV', async () => {
  const res = await fetch(`${url}/rest/v1/authors?select=id,name&order=id`, {
    headers: { apikey: sign({ role: 'anon' }), Accept: 'text/csv' },
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/csv/);
  assert.equal(await res.text(), 'id,name\n1,"Ursula K. Le Guin"\n2,"Stanisław Lem"\n3,"Octavia E. Butler"');
});

test('resource embedding through foreign keys', async () => {
  const db = client();
  const toOne = await db.from('books').select('title, author:authors(name)').eq('id', 4).single();
  assert.equal(toOne.error, null);
  assert.deepEqual(toOne.data, { title: 'Solaris', author: { name: 'Stanisław Lem' } });

  const toMany = await db
    .from('authors')
    .select('name, books(title)')
    .eq('id', 1)
    .order('year', { referencedTable: 'books', ascending: false })
    .limit(2, { referencedTable: 'books' })
    .single();
  assert.equal(toMany.error, null);
  assert.deepEqual(toMany.data, { name: 'Ursula K. Le Guin', books: [{ title: 'The Dispossessed' }, { title: 'The Left Hand of Darkness' }] });

  const inner = await db.from('books').select('title, authors!inner(name)').eq('authors.name', 'Octavia E. Butler').order('id');
  assert.equal(inner.error, null);
  assert.deepEqual(titles(inner.data), ['Kindred', 'Parable of the Sower']);
});
