// Select features beyond columns and foreign-key embeddings, through @supabase/postgrest-js:
// PostgREST 12's embedding errors, computed fields and relationships, spreads and aggregates.
// Tables and functions: fixtures_select.sql.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client } from './support.mjs';

/** The error body as postgrest-js hands it over, with the status. */
const failure = async (query) => {
  const { data, error, status } = await query;
  assert.equal(data, null);
  assert.notEqual(error, null);
  return { status, body: { code: error.code, message: error.message, details: error.details, hint: error.hint } };
};

test('two embeddings with one name are refused as PostgREST refuses them (42712)', async () => {
  const { status, body } = await failure(client().from('sel_channels').select('id, sel_messages(id), sel_messages(body)'));
  assert.equal(status, 400);
  assert.deepEqual(body, {
    code: '42712',
    message: 'table name "sel_channels_sel_messages_1" specified more than once',
    details: null,
    hint: null,
  });
  // Different names (an alias) are fine.
  const { data, error } = await client()
    .from('sel_channels')
    .select('id, sel_messages(id), texts:sel_messages(body)')
    .eq('id', 2);
  assert.equal(error, null);
  assert.deepEqual(data, [{ id: 2, sel_messages: [{ id: 3 }], texts: [{ body: 'yo' }] }]);
});

test('an ambiguous embedding lists its candidates as objects (PGRST201)', async () => {
  const { status, body } = await failure(client().from('sel_people').select('id, sel_messages(id)'));
  assert.equal(status, 300);
  assert.deepEqual(body, {
    code: 'PGRST201',
    message: "Could not embed because more than one relationship was found for 'sel_people' and 'sel_messages'",
    details: [
      {
        cardinality: 'one-to-many',
        embedding: 'sel_people with sel_messages',
        relationship: 'sel_messages_reviewer_id_fkey using sel_people(id) and sel_messages(reviewer_id)',
      },
      {
        cardinality: 'one-to-many',
        embedding: 'sel_people with sel_messages',
        relationship: 'sel_messages_sender_id_fkey using sel_people(id) and sel_messages(sender_id)',
      },
    ],
    hint:
      "Try changing 'sel_messages' to one of the following: 'sel_messages!sel_messages_reviewer_id_fkey', " +
      "'sel_messages!sel_messages_sender_id_fkey'. Find the desired relationship in the 'details' key.",
  });
});

test('no relationship: what was searched, and a close name (PGRST200)', async () => {
  const typo = await failure(client().from('sel_channels').select('id, sel_mesages(id)'));
  assert.equal(typo.status, 400);
  assert.deepEqual(typo.body, {
    code: 'PGRST200',
    message: "Could not find a relationship between 'sel_channels' and 'sel_mesages' in the schema cache",
    details:
      "Searched for a foreign key relationship between 'sel_channels' and 'sel_mesages' in the schema 'public', " +
      'but no matches were found.',
    hint: "Perhaps you meant 'sel_messages' instead of 'sel_mesages'.",
  });
  const hinted = await failure(client().from('sel_channels').select('id, sel_messages!nope(id)'));
  assert.deepEqual(hinted.body, {
    code: 'PGRST200',
    message: "Could not find a relationship between 'sel_channels' and 'sel_messages' in the schema cache",
    details:
      "Searched for a foreign key relationship between 'sel_channels' and 'sel_messages' using the hint 'nope' " +
      "in the schema 'public', but no matches were found.",
    hint: null,
  });
});

test('not one row for single() (PGRST116)', async () => {
  const { status, body } = await failure(client().from('sel_messages').select('id').single());
  assert.equal(status, 406);
  assert.deepEqual(body, {
    code: 'PGRST116',
    message: 'Cannot coerce the result to a single JSON object',
    details: 'The result contains 4 rows',
    hint: null,
  });
});

test('unknown functions: what was searched and the closest (PGRST202)', async () => {
  const post = await failure(client().rpc('sel_all_messagez'));
  assert.equal(post.status, 404);
  assert.deepEqual(post.body, {
    code: 'PGRST202',
    message: 'Could not find the function public.sel_all_messagez without parameters in the schema cache',
    details:
      'Searched for the function public.sel_all_messagez without parameters or with a single unnamed json/jsonb ' +
      'parameter, but no matches were found in the schema cache.',
    hint: 'Perhaps you meant to call the function public.sel_all_messages',
  });
  const get = await failure(client().rpc('add_them', { a: 1 }, { get: true }));
  assert.deepEqual(get.body, {
    code: 'PGRST202',
    message: 'Could not find the function public.add_them(a) in the schema cache',
    details: 'Searched for the function public.add_them with parameter a, but no matches were found in the schema cache.',
    hint: 'Perhaps you meant to call the function public.add_them(a, b)',
  });
});

test('an empty embedding only filters and is left out of the body', async () => {
  const { data, error } = await client()
    .from('sel_channels')
    .select('name, sel_messages!inner()')
    .eq('sel_messages.sender_id', 3);
  assert.equal(error, null);
  assert.deepEqual(data, [{ name: 'general' }]);
});

test('computed fields: selected, filtered and ordered like columns, in embeddings and partitioned tables', async () => {
  const db = client();
  const people = await db
    .from('sel_people')
    .select('id, full_name, name:full_name')
    .ilike('full_name', '%e%')
    .order('full_name', { ascending: false });
  assert.equal(people.error, null);
  assert.deepEqual(people.data, [
    { id: 2, full_name: 'Bo Chen', name: 'Bo Chen' },
    { id: 1, full_name: 'Ann Lee', name: 'Ann Lee' },
  ]);

  const embedded = await db.from('sel_channels').select('name, sel_people(full_name)').eq('id', 2);
  assert.equal(embedded.error, null);
  assert.deepEqual(embedded.data, [{ name: 'random', sel_people: { full_name: 'Bo Chen' } }]);

  const events = await db.from('sel_events').select('id, year').eq('year', 2026).order('id');
  assert.equal(events.error, null);
  assert.deepEqual(events.data, [{ id: 2, year: 2026 }, { id: 3, year: 2026 }]);

  const unknown = await failure(db.from('sel_people').select('id, nickname'));
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.code, '42703');
});

test('computed relationships: to-many with filters, order and limit; to-one; overriding detected ones', async () => {
  const db = client();
  const many = await db
    .from('sel_channels')
    .select('id, get_messages(id, body)')
    .gt('get_messages.id', 1)
    .order('id', { referencedTable: 'get_messages', ascending: false })
    .limit(1, { referencedTable: 'get_messages' })
    .order('id');
  assert.equal(many.error, null);
  assert.deepEqual(many.data, [
    { id: 1, get_messages: [{ id: 4, body: 'hey' }] },
    { id: 2, get_messages: [{ id: 3, body: 'yo' }] },
    { id: 3, get_messages: [] },
  ]);

  const one = await db.from('sel_channels').select('name, owner(first_name), last:last_message(body)').order('id');
  assert.equal(one.error, null);
  assert.deepEqual(one.data, [
    { name: 'general', owner: { first_name: 'Ann' }, last: { body: 'hey' } },
    { name: 'random', owner: { first_name: 'Bo' }, last: { body: 'yo' } },
    // Not SETOF: a SQL function without a row returns a NULL row, which reads as one row of
    // NULLs in PostgREST's query as in ours (PostgREST's docs advise SETOF … ROWS 1).
    { name: 'quiet', owner: null, last: { body: null } },
  ]);

  const inner = await db.from('sel_channels').select('name, get_messages!inner(id)').eq('get_messages.sender_id', 3);
  assert.equal(inner.error, null);
  assert.deepEqual(inner.data, [{ name: 'general', get_messages: [{ id: 4 }] }]);

  // sel_messages has two keys to sel_people (ambiguous), but the function sel_people(sel_messages)
  // overrides both: the sender, as one object.
  const overridden = await db.from('sel_messages').select('id, sel_people(first_name)').order('id').limit(2);
  assert.equal(overridden.error, null);
  assert.deepEqual(overridden.data, [
    { id: 1, sel_people: { first_name: 'Ann' } },
    { id: 2, sel_people: { first_name: 'Bo' } },
  ]);
});

test('spread embeddings: to-one columns join the parent, to-many become arrays', async () => {
  const db = client();
  const toOne = await db.from('sel_messages').select('id, ...sel_channels(channel:name)').order('id').limit(3);
  assert.equal(toOne.error, null);
  assert.deepEqual(toOne.data, [
    { id: 1, channel: 'general' },
    { id: 2, channel: 'general' },
    { id: 3, channel: 'random' },
  ]);

  const computed = await db.from('sel_channels').select('name, ...owner(first_name, last_name)').order('id');
  assert.equal(computed.error, null);
  assert.deepEqual(computed.data, [
    { name: 'general', first_name: 'Ann', last_name: 'Lee' },
    { name: 'random', first_name: 'Bo', last_name: 'Chen' },
    { name: 'quiet', first_name: null, last_name: null },
  ]);

  const toMany = await db
    .from('sel_channels')
    .select('name, ...sel_messages(ids:id, body)')
    .order('id', { referencedTable: 'sel_messages' })
    .order('id');
  assert.equal(toMany.error, null);
  assert.deepEqual(toMany.data, [
    { name: 'general', ids: [1, 2, 4], body: ['hello', 'hi', 'hey'] },
    { name: 'random', ids: [3], body: ['yo'] },
    { name: 'quiet', ids: [], body: [] },
  ]);

  // `*` spreads every column: the channel's `id` follows the message's, so the body has `id`
  // twice (as PostgREST's has) and the client keeps the last.
  const star = await db.from('sel_messages').select('id, ...sel_channels(*)').eq('id', 3);
  assert.equal(star.error, null);
  assert.deepEqual(star.data, [{ id: 2, name: 'random', owner_id: 2 }]);
});

test('aggregates: on columns with casts and aliases, count(), grouped by the other columns', async () => {
  const db = client();
  const all = await db.from('sel_messages').select('amount.sum(), amount.avg()::int, most:amount.max(), amount.min(), count()');
  assert.equal(all.error, null);
  assert.deepEqual(all.data, [{ sum: 25.5, avg: 6, most: 10.5, min: 3, count: 4 }]);

  const grouped = await db
    .from('sel_messages')
    .select('channel_id, total:amount.sum()::text, n:count()')
    .order('channel_id');
  assert.equal(grouped.error, null);
  assert.deepEqual(grouped.data, [
    { channel_id: 1, total: '18.5', n: 3 },
    { channel_id: 2, total: '7', n: 1 },
  ]);

  const inputCast = await db.from('sel_messages').select('amount::int.sum()').eq('channel_id', 1);
  assert.equal(inputCast.error, null);
  // Each amount is cast before the sum: 10.5 rounds to 11, so 11 + 5 + 3.
  assert.deepEqual(inputCast.data, [{ sum: 19 }]);

  const filtered = await db.from('sel_message_view').select('sender_id, count()').gte('amount', 5).order('sender_id');
  assert.equal(filtered.error, null);
  assert.deepEqual(filtered.data, [
    { sender_id: 1, count: 2 },
    { sender_id: 2, count: 1 },
  ]);

  const rpc = await db.rpc('sel_all_messages').select('channel_id, amount.max()').order('channel_id');
  assert.equal(rpc.error, null);
  assert.deepEqual(rpc.data, [
    { channel_id: 1, max: 10.5 },
    { channel_id: 2, max: 7 },
  ]);
});

test('aggregates on embeddings: rel(count) and rel(col.sum()), grouped by the parent', async () => {
  const db = client();
  const counts = await db.from('sel_channels').select('name, sel_messages(count)').order('id');
  assert.equal(counts.error, null);
  assert.deepEqual(counts.data, [
    { name: 'general', sel_messages: [{ count: 3 }] },
    { name: 'random', sel_messages: [{ count: 1 }] },
    { name: 'quiet', sel_messages: [{ count: 0 }] },
  ]);

  const sums = await db
    .from('sel_channels')
    .select('name, get_messages(amount.sum(), count())')
    .eq('id', 1);
  assert.equal(sums.error, null);
  assert.deepEqual(sums.data, [{ name: 'general', get_messages: [{ sum: 18.5, count: 3 }] }]);

  // The parent's own aggregate, grouped by its embedding.
  const byOwner = await db.from('sel_channels').select('sel_people(first_name), count()');
  assert.equal(byOwner.error, null);
  assert.deepEqual(
    byOwner.data.sort((a, b) => String(a.sel_people?.first_name).localeCompare(String(b.sel_people?.first_name))),
    [
      { sel_people: { first_name: 'Ann' }, count: 1 },
      { sel_people: { first_name: 'Bo' }, count: 1 },
      { sel_people: null, count: 1 },
    ],
  );
});
