// The hdd engine's read-modify-write operations, multi-key operations, scans and expiry hook,
// where the disk and the write queue matter: atomicity under concurrency, restarts, failures.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { faultsKey } from '../src/hdd-engine.js';
import type { ShardFaults } from '../src/hdd-shard.js';
import { HddEngine, type HddEngineOptions } from '../src/index.js';
import { codeOf, fakeClock } from './common/conformance.js';
import { scanAll } from './common/conformance-commands.js';

const root = await mkdtemp(join(tmpdir(), 'hati-hdd-ops-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
let next = 0;
const freshDir = () => join(root, `store-${next++}`);

async function until(what: string, done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

for (const durability of ['always', 'no'] as const) {
  t.test(`durability ${durability}: 200 concurrent incrBy(1) on one key all count, across a reopen`, async (t) => {
    const dataDir = freshDir();
    let store = await HddEngine.open({ dataDir, durability, shards: 4 });
    const results = await Promise.all(Array.from({ length: 200 }, () => store.incrBy('hits', 1n)));
    t.same(
      results.map(Number).sort((a, b) => a - b),
      Array.from({ length: 200 }, (_, i) => i + 1),
      'every increment saw the one before it',
    );
    // Increments issued from the continuations of earlier ones, as a server's clients would.
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = 0; i < 10; i++) await store.incrBy('hits', 1n);
      }),
    );
    t.equal(await store.get('hits'), '400');
    await store.close();
    store = await HddEngine.open({ dataDir, durability, shards: 4 });
    t.equal(await store.get('hits'), '400', 'the count survives a restart');
    t.equal(await store.incrBy('hits', -400n), 0n);
    t.equal(await store.count(), 1);
    await store.close();
  });
}

t.test('read-modify-writes take their place in the write queue', async (t) => {
  const store = await HddEngine.open({ dataDir: freshDir(), durability: 'no' });
  t.teardown(() => store.close());
  const settled = await Promise.allSettled([
    store.incrBy('n', 1n),
    store.set('n', '100'),
    store.incrBy('n', 1n),
    store.set('word', 'abc'),
    store.incrBy('word', 1n),
    store.setIf('n', '7', 0, 'absent'),
    store.expire('n', 500),
    store.incrBy('n', 1n),
    store.delete('n'),
    store.setIf('n', '7', 0, 'absent'),
    store.ttl('n'),
  ]);
  t.same(
    settled.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as { code: string }).code)),
    [1n, undefined, 101n, undefined, 'NOT_INTEGER', false, true, 102n, true, true, 0],
    'each sees exactly the writes queued before it; a failed one fails alone',
  );
  t.equal(await store.get('word'), 'abc');
  t.equal(await store.count(), 2);
});

t.test('incrBy, expire and setIf persist across close and reopen', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  let store = await HddEngine.open({ dataDir, clock, shards: 3 });
  t.equal(await store.setIf('nx', 'first', 1000, 'absent'), true);
  t.equal(await store.setIf('nx', 'second', 0, 'absent'), false);
  await store.set('xx', 'old');
  t.equal(await store.setIf('xx', 'new', 2000, 'present'), true);
  await store.set('short', 'v');
  t.equal(await store.expire('short', 500), true);
  await store.set('permanent', 'v', 100);
  t.equal(await store.expire('permanent', 0), true);
  await store.set('counter', '41', 3000);
  t.equal(await store.incrBy('counter', 1n), 42n);
  t.equal(await store.incrBy('fresh', -5n), -5n);
  await store.close();

  clock.now += 200;
  store = await HddEngine.open({ dataDir, clock, shards: 3 });
  t.equal(await store.get('nx'), 'first');
  t.equal(await store.ttl('nx'), 800, 'the ttl setIf gave runs on');
  t.equal(await store.get('xx'), 'new');
  t.equal(await store.ttl('xx'), 1800);
  t.equal(await store.ttl('short'), 300, 'the ttl expire gave is stored');
  t.equal(await store.ttl('permanent'), 0, 'expire(0) made the key permanent on disk');
  t.equal(await store.get('counter'), '42');
  t.equal(await store.ttl('counter'), 2800, 'incrBy kept the ttl');
  t.equal(await store.get('fresh'), '-5');
  t.equal(await store.count(), 6);
  await store.close();

  clock.now += 301;
  store = await HddEngine.open({ dataDir, clock, shards: 3 });
  t.equal(await store.get('short'), undefined, 'expired while closed: the index entry expire wrote was honoured');
  t.equal(await store.count(), 5);
  clock.now += 100_000;
  t.equal(await store.count(), 2, 'then the rest expire as their ttls say');
  t.same((await store.getMany(['permanent', 'fresh'])).map(String), ['v', '-5']);
  await store.close();
});

t.test('setMany with durability always: every entry stored together, and kept', async (t) => {
  const dataDir = freshDir();
  // A fake clock: on the real one, a slow disk or a loaded machine ate into the ttl checked below.
  const clock = fakeClock();
  let store = await HddEngine.open({ dataDir, clock, durability: 'always', shards: 4 });
  const entries = Array.from({ length: 2000 }, (_, i): [string, string] => [`m-${i}`, `v-${i}`]);
  const pending = store.setMany(entries, 60_000);
  // A read issued after the call sees all of it, whichever shard its key is in.
  const read = store.getMany(['m-0', 'm-1999', 'm-777']);
  await pending;
  t.same((await read).map(String), ['v-0', 'v-1999', 'v-777']);
  t.equal(await store.count(), 2000);
  await store.close();
  clock.now += 1000;
  store = await HddEngine.open({ dataDir, clock, shards: 4 });
  const values = await store.getMany(entries.map(([k]) => k));
  t.equal(
    values.filter((v, i) => v?.toString() !== entries[i]?.[1]).length,
    0,
    'all 2000 entries are there after a reopen',
  );
  const ttls = await Promise.all(entries.map(([k]) => store.ttl(k)));
  t.same([...new Set(ttls)], [59_000], 'with their ttl, which ran on while the store was closed');
  await store.close();
});

t.test('a scan survives writes, expiry and a flush between calls, holding nothing open', async (t) => {
  const clock = fakeClock();
  const store = await HddEngine.open({ dataDir: freshDir(), clock, durability: 'no', shards: 4 });
  t.teardown(() => store.close());
  const n = 3000;
  await store.setMany(Array.from({ length: n }, (_, i): [string, string] => [`stay-${i}`, 'v']));
  await store.setMany(
    Array.from({ length: 500 }, (_, i): [string, string] => [`brief-${i}`, 'v']),
    10,
  );
  let written = 0;
  const seen = await scanAll(store, { count: 100 }, async (call) => {
    // Writes between calls land before and after the scan's position in every shard.
    await store.setMany(Array.from({ length: 20 }, (_, i): [string, string] => [`new-${call}-${i}`, 'v']));
    for (let i = 0; i < 5; i++) await store.delete(`brief-${call * 5 + i}`);
    written += 20;
    if (call === 5) clock.now += 11;
  });
  const returned = new Set(seen.keys);
  t.equal(
    Array.from({ length: n }, (_, i) => `stay-${i}`).filter((k) => !returned.has(k)).length,
    0,
    `all ${n} keys live throughout were returned`,
  );
  t.ok(
    seen.calls >= n / 100,
    `each call read at most 100 records (${seen.calls} calls, ${written} keys written in between)`,
  );
  t.ok(seen.largest <= 100);

  // A flush between calls: the cursor (a shard and a key) still works.
  // (Its first call may return no key: the expired brief-* keys sort first, and whether the
  // sweeper, on a real-time timer, has removed them yet depends on the machine's load.)
  const first = await store.scan('0', { count: 50 });
  t.ok(first.keys.length <= 50);
  t.not(first.cursor, '0', 'the scan is not over after one call');
  await store.flushAll();
  await store.setMany(Array.from({ length: 100 }, (_, i): [string, string] => [`after-${i}`, 'v']));
  const rest = await scanAll(store, { count: 50 }, undefined, first.cursor);
  t.ok(
    rest.keys.every((k) => k.startsWith('after-')),
    'after the flush only keys written since come',
  );
  t.ok(rest.keys.length <= 100);
  t.equal((await scanAll(store, { count: 1000 })).keys.length, 100, 'a new scan finds every key written since');

  // A scan left open holds no LevelDB iterator: closing does not wait for it and cannot fail on it.
  const open = await store.scan('0', { count: 10 });
  t.not(open.cursor, '0');
  await store.close();
  t.equal(await codeOf(() => store.scan(open.cursor)), 'STORAGE_CLOSED');
});

t.test('cursors belong to one open store', async (t) => {
  const dataDir = freshDir();
  let store = await HddEngine.open({ dataDir, durability: 'no', maxOpenScans: 2 });
  await store.setMany(Array.from({ length: 50 }, (_, i): [string, string] => [`k${i}`, 'v']));
  const a = await store.scan('0', { count: 5 });
  const b = await store.scan('0', { count: 5 });
  const c = await store.scan('0', { count: 5 });
  t.equal(await codeOf(() => store.scan(a.cursor)), 'CURSOR_INVALID', 'maxOpenScans 2: the third drops the first');
  t.equal(await codeOf(() => store.scan(b.cursor)), undefined);
  await store.close();
  store = await HddEngine.open({ dataDir, durability: 'no' });
  t.equal(await codeOf(() => store.scan(c.cursor)), 'CURSOR_INVALID', 'a cursor does not outlive its store');
  await store.close();
  await t.rejects(HddEngine.open({ dataDir, maxOpenScans: 0 }), { code: 'OPTION_INVALID' });
});

t.test('the active sweeper tells onExpired about keys nobody reads', async (t) => {
  const clock = fakeClock();
  const store = await HddEngine.open({ dataDir: freshDir(), clock, sweepIntervalMs: 5, sweepLimit: 50, shards: 2 });
  t.teardown(() => store.close());
  const heard = new Set<string>();
  let calls = 0;
  store.onExpired = (key) => {
    calls++;
    heard.add(key.toString());
  };
  await store.setMany(
    Array.from({ length: 300 }, (_, i): [string, string] => [`e${i}`, 'v']),
    10,
  );
  await store.set('keep', 'v');
  clock.now += 11;
  await until('the sweeper removed every expired key', () => store.heldKeys() === 1);
  t.equal(heard.size, 300, 'every swept key was heard');
  t.equal(calls, 300, 'once each');
  t.equal(await store.count(), 1);
});

t.test('while writes are suspended the new writes are refused and reads go on', async (t) => {
  let failWrites = false;
  const faults: ShardFaults = {
    beforeWrite() {
      if (failWrites) throw Object.assign(new Error('ENOSPC: no space left on device (injected)'), { code: 'ENOSPC' });
    },
    beforeProbe() {
      if (failWrites) throw new Error('still full (injected)');
    },
  };
  const store = await HddEngine.open({
    dataDir: freshDir(),
    shards: 2,
    recoveryIntervalMs: 20,
    [faultsKey]: faults,
  } as HddEngineOptions);
  t.teardown(() => store.close());
  await store.setMany([
    ['n', '1'],
    ['a', 'x'],
  ]);
  failWrites = true;
  const queued = [store.incrBy('n', 1n), store.setIf('b', 'v', 0, 'absent'), store.expire('a', 10)];
  const failed = await Promise.allSettled([store.set('c', 'v'), ...queued]);
  const codes = failed.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'stored'));
  t.notOk(codes.includes('stored'), `nothing was stored (${codes.join(', ')})`);
  t.equal(store.state, 'suspended');
  for (const call of [
    () => store.incrBy('n', 1n),
    () => store.setIf('b', 'v', 0, 'absent'),
    () => store.expire('a', 10),
    () => store.setMany([['b', 'v']]),
  ]) {
    t.equal(await codeOf(call), 'WRITES_SUSPENDED');
  }
  t.same(
    (await store.getMany(['n', 'a', 'b'])).map((v) => v?.toString()),
    ['1', 'x', undefined],
    'reads work',
  );
  t.same((await store.keys('*')).map(String).sort(), ['a', 'n'], 'keys works');
  t.same((await scanAll(store)).keys.sort(), ['a', 'n'], 'scan works');
  failWrites = false;
  await until('recovered', () => store.state === 'ok');
  t.equal(await store.incrBy('n', 1n), 2n, 'and the writes resume');
});
