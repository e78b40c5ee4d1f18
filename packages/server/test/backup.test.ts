// BACKUP BEGIN / NEXT / END / LOAD over real sockets: round trips of every record kind into a
// second server and into a stopped server's data directory, a consistent snapshot under
// concurrent writes, expiry, bad input, rights, and the release of what a snapshot holds.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { recordFromFields } from '@hati/protocol';
import { HddEngine } from '@hati/storage';
import { tempDir } from '@hati/test-helpers';
import t from 'tap';
import { backupSnapshotsHeld, backupTimeouts, openBackupTarget } from '../src/backup.js';
import { hashPassword, writeUsersFile } from '../src/index.js';
import { RawClient, type Reply, ReplyError, startServer } from './common/harness.js';

const codeOf = (reply: Reply | undefined) => (reply instanceof ReplyError ? reply.code : undefined);
const str = (reply: Reply | undefined) => (Buffer.isBuffer(reply) ? reply.toString() : reply);

/** Waits (a turn at a time, at most 5 s) until `done()`. */
async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not after 5 s`);
    await sleep(5);
  }
}

/** BEGIN, then NEXT `count` at a time to the end: every record as its list of fields (Buffers). */
async function exportAll(c: RawClient, count = 3, memory = true): Promise<Buffer[][]> {
  const id = await c.command('BACKUP', 'BEGIN', ...(memory ? ['MEMORY'] : []));
  if (!Buffer.isBuffer(id)) throw new Error(`BACKUP BEGIN answered ${String(id)}`);
  const records: Buffer[][] = [];
  for (;;) {
    const chunk = await c.command('BACKUP', 'NEXT', id, 'COUNT', String(count));
    if (!Array.isArray(chunk)) throw new Error(`BACKUP NEXT answered ${String(chunk)}`);
    if (chunk.length === 0) break;
    if (chunk.length > count) throw new Error(`BACKUP NEXT gave ${chunk.length} records for COUNT ${count}`);
    records.push(...(chunk as Buffer[][]));
  }
  return records;
}

/** Records as readable lines: fields joined by '|', binary shown as hex. */
const lines = (records: Buffer[][]) =>
  records.map((fields) =>
    fields
      .map((f) => (/^[\x20-\x7e]*$/.test(f.toString('latin1')) ? f.toString('latin1') : `0x${f.toString('hex')}`))
      .join('|'),
  );

/** What the round trip starts from: keys of both types, definitions, messages in every state. */
async function populate(c: RawClient): Promise<void> {
  const ok = async (...args: string[]) => {
    const reply = await c.command(...args);
    if (reply instanceof ReplyError) throw new Error(`${args.join(' ')}: ${reply.code} ${reply.message}`);
    return reply;
  };
  await ok('SET', 'hdd', '0', 'plain', 'value');
  await ok('SET', 'hdd', '60000', 'with-ttl', 'soon');
  await c.command('SET', 'hdd', '0', Buffer.from([0xff, 0x00, 0x01]), Buffer.from([0x00, 0xfe]));
  await ok('SET', 'memory', '0', 'm-plain', 'mv');
  await ok('SET', 'memory', '30000', 'm-ttl', 'mt');
  await ok('CREATEROUTER', 'orders', 'topic');
  await ok('CREATEROUTER', 'audit', 'fanout');
  await ok('CREATEQUEUE', 'work', 'hdd', 'ACKTIMEOUT', '5000', 'MAXDELIVERIES', '5');
  await ok('CREATEQUEUE', 'scratch', 'memory');
  await ok('BIND', 'work', 'orders', 'order.*');
  await ok('BIND', 'scratch', 'audit', '');
  await ok('PUBLISH', 'orders', 'order.new', 'a');
  await ok('PUBLISH', 'orders', 'order.new', 'ID', 'id-b', 'b');
  await ok('PUBLISH', 'orders', 'order.late', 'DELAY', '60000', 'TTL', '120000', 'c');
  await ok('PUBLISH', 'orders', 'order.new', 'd');
  await ok('PUBLISH', 'audit', '', 'memory queues are not backed up');
  const [a] = (await ok('FETCH', 'work', '1')) as Reply[][];
  await ok('NACK', 'work', str(a?.[0]) as string);
  await ok('FETCH', 'work', '2'); // a (its second delivery) and b: leased at the backup
  const [d] = (await ok('FETCH', 'work', '1')) as Reply[][];
  await ok('NACK', 'work', str(d?.[0]) as string, 'DROP');
}

const NOW = 1_700_000_000_000;
const EXPECTED = [
  'router|audit|fanout',
  'router|orders|topic',
  'queue|scratch|memory|{"ackTimeoutMs":30000,"maxDeliveries":0,"maxLength":0,"overflow":"reject","ttlMs":0,"dedupWindowMs":120000}',
  'queue|work|hdd|{"ackTimeoutMs":5000,"maxDeliveries":5,"maxLength":0,"overflow":"reject","ttlMs":0,"dedupWindowMs":120000}',
  'binding|work|orders|order.*',
  'binding|scratch|audit|',
];

t.test('every record kind goes through BEGIN/NEXT and LOAD into a second server unchanged', async (t) => {
  const a = await startServer(t);
  const ca = await RawClient.tcp(t, a);
  await populate(ca);
  const records = await exportAll(ca);
  const got = lines(records);
  t.same(got.slice(0, 6), EXPECTED, 'definitions first: routers, queues, bindings');
  t.same(
    got.slice(6).sort(),
    [
      'key|hdd|plain|value|0',
      `key|hdd|with-ttl|soon|${NOW + 60_000}`,
      'key|hdd|0xff0001|0x00fe|0',
      'key|memory|m-plain|mv|0',
      `key|memory|m-ttl|mt|${NOW + 30_000}`,
      'message|work|order.new|a|2|0|0|',
      'message|work|order.new|b|1|0|0|id-b',
      `message|work|order.late|c|0|${NOW + 60_000}|${NOW + 120_000}|`,
      'dead|work|order.new|d|rejected|work|1',
    ].sort(),
  );
  t.same(
    got.map((line) => line.split('|')[0]),
    [
      'router',
      'router',
      'queue',
      'queue',
      'binding',
      'binding',
      'key',
      'key',
      'key',
      'key',
      'key',
      'message',
      'message',
      'message',
      'dead',
    ],
    'then hdd keys, memory keys, messages, dead letters',
  );
  t.match(got[9], /^key\|memory/, 'memory keys after the hdd ones');

  const b = await startServer(t);
  const cb = await RawClient.tcp(t, b);
  const replies = await cb.send(records.map((fields) => ['BACKUP', 'LOAD', ...fields]));
  t.same(
    replies,
    records.map(() => 1),
    'LOAD applies each record, pipelined',
  );
  t.same(lines(await exportAll(cb)), got, 'the second server exports exactly what the first did');

  t.equal(str(await cb.command('GET', 'hdd', 'plain')), 'value');
  t.equal(await cb.command('TTL', 'hdd', 'with-ttl'), 60_000, 'the absolute expiry is kept');
  t.same(await cb.command('GET', 'hdd', Buffer.from([0xff, 0x00, 0x01])), Buffer.from([0x00, 0xfe]));
  t.equal(str(await cb.command('GET', 'memory', 'm-plain')), 'mv');
  t.equal(await cb.command('TTL', 'memory', 'm-ttl'), 30_000);
  const fetched = (await cb.command('FETCH', 'work', '10')) as Reply[][];
  t.same(
    fetched.map((m) => [str(m[1]), str(m[2]), str(m[3])]),
    [
      [3, 'order.new', 'a'],
      [2, 'order.new', 'b'],
    ],
    'leased messages are ready again with their deliveries kept (FETCH adds one)',
  );
  const dead = (await cb.command('DEADLETTERS', 'work')) as Reply[][];
  t.same(
    dead.map((m) => [str(m[3]), (m[4] as Reply[]).map(str)]),
    [['d', ['rejected', 'work', 1]]],
  );
  t.same(await cb.command('FETCH', 'scratch', '10'), [], 'memory queue messages are not backed up');
  b.clock.now += 60_001;
  t.same(
    ((await cb.command('FETCH', 'work', '10')) as Reply[][]).map((m) => str(m[3])),
    ['c'],
    'the delayed message falls due when it did on the first server',
  );
  t.equal(await cb.command('BACKUP', 'LOAD', ...(records[0] as Buffer[])), 1, 'a router kept as it is');
});

t.test('a stopped server’s data directory takes the same records (openBackupTarget)', async (t) => {
  const a = await startServer(t);
  const ca = await RawClient.tcp(t, a);
  await populate(ca);
  const records = await exportAll(ca);

  // Three shards, not the default: the target must open the store as it is, not rebuild it.
  const b = await startServer(t, { shards: 3 });
  const dataDir = join(b.dir, 'data');
  await t.rejects(openBackupTarget({ dataDir }), { code: 'DATA_DIR_LOCKED' }, 'not while a server runs on it');
  await b.server.close();

  const target = await openBackupTarget({ dataDir, clock: () => b.clock.now });
  const applied: boolean[] = [];
  for (const fields of records) applied.push(await target.apply(recordFromFields(fields)));
  await target.close();
  t.equal(await HddEngine.storedShards(dataDir), 3, 'the store keeps the 3 shards it was written with');
  t.same(
    applied,
    records.map((fields) => !(fields[0]?.toString() === 'key' && fields[1]?.toString() === 'memory')),
    'every record but the memory keys (a stopped server keeps none)',
  );

  const c = await startServer(t, { dataDir });
  const cc = await RawClient.tcp(t, c);
  const again = lines(await exportAll(cc));
  t.same(
    again,
    lines(records).filter((line) => !line.startsWith('key|memory')),
    'a server started on it exports the same records',
  );
});

t.test('a snapshot is the state at BEGIN while a writer keeps writing', async (t) => {
  const h = await startServer(t);
  const writer = await RawClient.tcp(t, h);
  const reader = await RawClient.tcp(t, h);
  // Key i is written only once key i-1 and the counter after it were acknowledged.
  let written = 0;
  const total = 400;
  const writing = (async () => {
    while (written < total) {
      await writer.command('SET', 'hdd', '0', `seq:${written}`, String(written));
      written++;
      await writer.command('INCR', 'hdd', 'counter');
    }
  })();
  const snapshots: Array<[number, string]> = [];
  for (let target = 20; target < total; target += 100) {
    await until(`${target} writes`, () => written >= target);
    snapshots.push([written, str(await reader.command('BACKUP', 'BEGIN')) as string]);
  }
  await writing;
  for (const [acknowledged, id] of snapshots) {
    const keys = new Map<string, string>();
    for (;;) {
      const chunk = (await reader.command('BACKUP', 'NEXT', id, 'COUNT', '37')) as Buffer[][];
      if (chunk.length === 0) break;
      for (const [kind, , key, value] of chunk) if (kind?.toString() === 'key') keys.set(`${key}`, `${value}`);
    }
    const seq = [...keys.keys()].filter((k) => k.startsWith('seq:')).map((k) => Number(k.slice(4)));
    const highest = Math.max(-1, ...seq);
    t.equal(seq.length, highest + 1, `snapshot after ${acknowledged} writes: no key i+1 without key i`);
    t.ok(highest >= acknowledged - 1, `it holds every acknowledged write (up to seq:${highest})`);
    const counter = Number(keys.get('counter') ?? 0);
    t.ok(counter === highest + 1 || counter === highest, `the counter (${counter}) agrees with seq:${highest}`);
  }
  t.equal(backupSnapshotsHeld(), 0, 'every snapshot read to its end was released');
});

t.test('expired keys and messages are skipped, at export and at LOAD', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  await c.command('SET', 'hdd', '1000', 'short', 's');
  await c.command('SET', 'memory', '1000', 'm-short', 's');
  await c.command('SET', 'hdd', '0', 'long', 'l');
  await c.command('CREATEROUTER', 'r', 'direct');
  await c.command('CREATEQUEUE', 'q', 'hdd');
  await c.command('BIND', 'q', 'r', 'k');
  await c.command('PUBLISH', 'r', 'k', 'TTL', '1000', 'fleeting');
  const id = await c.command('BACKUP', 'BEGIN', 'MEMORY');
  h.clock.now += 1001;
  const records = [];
  for (let chunk = (await c.command('BACKUP', 'NEXT', id as Buffer)) as Buffer[][]; chunk.length > 0; ) {
    records.push(...chunk);
    chunk = (await c.command('BACKUP', 'NEXT', id as Buffer)) as Buffer[][];
  }
  t.same(lines(records), [
    'router|r|direct',
    'queue|q|hdd|{"ackTimeoutMs":30000,"maxDeliveries":0,"maxLength":0,"overflow":"reject","ttlMs":0,"dedupWindowMs":120000}',
    'binding|q|r|k',
    'key|hdd|long|l|0',
  ]);
  const past = String(h.clock.now - 1);
  t.equal(await c.command('BACKUP', 'LOAD', 'key', 'hdd', 'old', 'v', past), 0, 'a key expired before LOAD');
  t.equal(await c.command('BACKUP', 'LOAD', 'key', 'memory', 'old', 'v', past), 0);
  t.equal(await c.command('BACKUP', 'LOAD', 'message', 'q', 'k', 'm', '0', '0', past, ''), 0, 'a message too');
  t.equal(await c.command('HAS', 'hdd', 'old'), 0);
  t.equal(await c.command('BACKUP', 'LOAD', 'key', 'hdd', 'new', 'v', String(h.clock.now + 5000)), 1);
  t.equal(await c.command('TTL', 'hdd', 'new'), 5000);
});

t.test('bad ids, bad records and bad options get stable codes; the connection goes on', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const other = await RawClient.tcp(t, h);
  const id = str(await c.command('BACKUP', 'BEGIN')) as string;
  t.match(id, /^[0-9a-f]{16}$/);
  const refusals: Array<[string[], string]> = [
    [['BACKUP', 'NEXT', 'nope'], 'BACKUP_NOT_FOUND'],
    [['BACKUP', 'END', 'nope'], 'BACKUP_NOT_FOUND'],
    [['BACKUP', 'NEXT', id, 'COUNT', '0'], 'ARGUMENT_INVALID'],
    [['BACKUP', 'NEXT', id, 'COUNT', '100001'], 'ARGUMENT_INVALID'],
    [['BACKUP', 'NEXT', id, 'LIMIT', '5'], 'SYNTAX'],
    [['BACKUP', 'BEGIN', 'DISK'], 'SYNTAX'],
    [['BACKUP', 'RESTORE'], 'UNKNOWN_COMMAND'],
    [['BACKUP', 'LOAD', 'key'], 'WRONG_ARITY'],
    [['BACKUP', 'LOAD', 'file', 'x'], 'BACKUP_RECORD_INVALID'],
    [['BACKUP', 'LOAD', 'key', 'hdd', 'k', 'v'], 'BACKUP_RECORD_INVALID'],
    [['BACKUP', 'LOAD', 'key', 'ram', 'k', 'v', '0'], 'BACKUP_RECORD_INVALID'],
    [['BACKUP', 'LOAD', 'key', 'hdd', 'k', 'v', '-5'], 'BACKUP_RECORD_INVALID'],
    [['BACKUP', 'LOAD', 'key', 'hdd', '', 'v', '0'], 'KEY_EMPTY'],
    [['BACKUP', 'LOAD', 'queue', 'q', 'hdd', '{not json'], 'BACKUP_RECORD_INVALID'],
    [['BACKUP', 'LOAD', 'queue', 'q', 'hdd', '[]'], 'BACKUP_RECORD_INVALID'],
    [['BACKUP', 'LOAD', 'queue', 'q', 'hdd', '{"ackTimeoutMs":"soon"}'], 'ARGUMENT_INVALID'],
    [['BACKUP', 'LOAD', 'queue', 'bad name', 'hdd', '{}'], 'NAME_INVALID'],
    [['BACKUP', 'LOAD', 'router', 'r', 'circular'], 'ROUTER_KIND_INVALID'],
    [['BACKUP', 'LOAD', 'binding', 'nowhere', 'r', 'k'], 'QUEUE_NOT_FOUND'],
    [['BACKUP', 'LOAD', 'message', 'nowhere', 'k', 'm', '0', '0', '0', ''], 'QUEUE_NOT_FOUND'],
    [['BACKUP', 'LOAD', 'dead', 'nowhere', 'k', 'm', 'rejected', 'q', '1'], 'QUEUE_NOT_FOUND'],
  ];
  for (const [words, code] of refusals) t.equal(codeOf(await c.command(...words)), code, words.join(' '));
  t.equal(codeOf(await other.command('BACKUP', 'NEXT', id)), 'BACKUP_NOT_FOUND', 'another connection’s id');

  t.equal(await c.command('BACKUP', 'LOAD', 'router', 'r', 'direct'), 1);
  t.equal(codeOf(await c.command('BACKUP', 'LOAD', 'router', 'r', 'topic')), 'ROUTER_EXISTS', 'another kind');
  t.equal(await c.command('BACKUP', 'LOAD', 'queue', 'q', 'hdd', '{"maxDeliveries":3,"future":1}'), 1);
  t.equal(await c.command('BACKUP', 'LOAD', 'queue', 'q', 'hdd', '{"maxDeliveries":3}'), 1, 'the same definition');
  t.equal(codeOf(await c.command('BACKUP', 'LOAD', 'queue', 'q', 'hdd', '{}')), 'QUEUE_EXISTS', 'other settings');
  t.equal(
    codeOf(await c.command('BACKUP', 'LOAD', 'dead', 'q', 'k', 'm', 'bored', 'q', '1')),
    'ARGUMENT_INVALID',
    'an unknown death reason',
  );

  t.equal(await c.command('BACKUP', 'END', id), 'OK');
  t.equal(codeOf(await c.command('BACKUP', 'NEXT', id)), 'BACKUP_NOT_FOUND', 'ended');
  const ids = [];
  for (let i = 0; i < 4; i++) ids.push(str(await c.command('BACKUP', 'BEGIN')));
  t.equal(codeOf(await c.command('BACKUP', 'BEGIN')), 'ARGUMENT_INVALID', 'at most 4 snapshots per connection');
  t.same((await c.command('BACKUP', 'NEXT', ids[0] as string, 'COUNT', '1')) as unknown[], [
    [Buffer.from('router'), Buffer.from('r'), Buffer.from('direct')],
  ]);
  t.equal(await c.command('PING'), 'PONG', 'the connection still works');
  t.same(h.log, [], 'nothing was logged');
});

t.test('BACKUP needs the admin right', async (t) => {
  const usersFile = join(await tempDir(t), 'users.json');
  const hash = (password: string) => hashPassword(password, { cost: 2 ** 10 });
  await writeUsersFile(usersFile, {
    version: 1,
    users: [
      { name: 'ops', password: await hash('ops-pw'), admin: true },
      { name: 'app', password: await hash('app-pw'), read: ['*'], write: ['*'], manage: ['*'] },
    ],
  });
  const s = await startServer(t, { usersFile });
  const app = await RawClient.tcp(t, s);
  t.equal(await app.command('AUTH', 'app', 'app-pw'), 'OK');
  for (const words of [['BEGIN'], ['NEXT', 'x'], ['END', 'x'], ['LOAD', 'router', 'r', 'direct']]) {
    t.equal(codeOf(await app.command('BACKUP', ...words)), 'NOPERM', `BACKUP ${words[0]}`);
  }
  const ops = await RawClient.tcp(t, s);
  t.equal(await ops.command('AUTH', 'ops', 'ops-pw'), 'OK');
  t.ok(Buffer.isBuffer(await ops.command('BACKUP', 'BEGIN')), 'an admin may');
});

t.test('a snapshot is released when its connection closes, and after being idle', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  await c.command('SET', 'hdd', '0', 'k', 'v');
  const before = backupSnapshotsHeld();
  await c.command('BACKUP', 'BEGIN');
  await c.command('BACKUP', 'BEGIN', 'MEMORY');
  t.equal(backupSnapshotsHeld(), before + 2);
  c.close();
  await until('the snapshots are released', () => backupSnapshotsHeld() === before);
  t.equal(backupSnapshotsHeld(), before, 'both released once the connection closed');

  const idle = backupTimeouts.idleMs;
  backupTimeouts.idleMs = 50;
  t.teardown(() => {
    backupTimeouts.idleMs = idle;
  });
  const d = await RawClient.tcp(t, h);
  const id = await d.command('BACKUP', 'BEGIN');
  t.equal(backupSnapshotsHeld(), before + 1);
  await until('the idle snapshot is released', () => backupSnapshotsHeld() === before);
  t.equal(codeOf(await d.command('BACKUP', 'NEXT', id as Buffer)), 'BACKUP_NOT_FOUND', 'its id is gone');
});
