// Snapshots for backups (a point-in-time view read in bounded steps) and restores with an absolute
// expiry, on both engines.
import { fakeClock, tempDir } from '@hati/test-helpers';
import t, { type Test } from 'tap';
import { HddEngine, type HddSnapshot, MemoryEngine, type MemorySnapshot, type StoredEntry } from '../src/index.js';

type Snapshot = HddSnapshot | MemorySnapshot;

/** Every entry of a snapshot, read `step` at a time, as `key=value@expiresAt` sorted. */
async function drain(
  snapshot: Snapshot,
  step: number,
  maxBytes = 1 << 20,
): Promise<{ seen: string[]; reads: number[] }> {
  const seen: string[] = [];
  const reads: number[] = [];
  for (;;) {
    const entries: StoredEntry[] = await snapshot.read(step, maxBytes);
    if (entries.length === 0) break;
    reads.push(entries.length);
    for (const { key, value, expiresAt } of entries) seen.push(`${key}=${value}@${expiresAt}`);
  }
  return { seen: seen.sort(), reads };
}

const engines = [
  {
    name: 'hdd',
    open: async (t: Test, clock: () => number) => {
      const store = await HddEngine.open({ dataDir: await tempDir(t), shards: 3, clock, durability: 'no' });
      t.teardown(() => store.close());
      return store;
    },
  },
  {
    name: 'memory',
    open: async (t: Test, clock: () => number) => {
      const store = new MemoryEngine({ shards: 3, clock });
      t.teardown(() => store.close());
      return store;
    },
  },
] as const;

for (const { name, open } of engines) {
  t.test(`${name}: a snapshot holds the keys of its moment, whatever is written after`, async (t) => {
    const clock = fakeClock();
    const store = await open(t, clock);
    for (let i = 0; i < 20; i++) await store.set(`k${i}`, `v${i}`);
    await store.set('short', 's', 1000);
    await store.set('long', 'l', 100_000);
    const snapshot = store.snapshot();

    await store.set('k0', 'changed');
    await store.delete('k1');
    await store.set('new', 'n');
    await store.flushAll();
    clock.now += 1001;

    const { seen, reads } = await drain(snapshot, 7);
    const expected = [
      ...Array.from({ length: 20 }, (_, i) => `k${i}=v${i}@0`),
      `long=l@${1_700_000_000_000 + 100_000}`,
    ].sort();
    t.same(seen, expected, 'the keys as they were; `short` expired before it was read, so it is left out');
    t.ok(
      reads.every((n) => n <= 7),
      `at most 7 per read (${reads.join(', ')})`,
    );
    t.equal(snapshot.done, true, 'read to the end, it is done');
    t.same(await snapshot.read(10, 1 << 20), [], 'and stays empty');
  });

  t.test(`${name}: a read stops at its byte budget, one large value alone`, async (t) => {
    const store = await open(t, Date.now);
    const big = 'x'.repeat(10_000);
    for (let i = 0; i < 5; i++) await store.set(`big${i}`, big);
    const { seen, reads } = await drain(store.snapshot(), 100, 5000);
    t.equal(seen.length, 5);
    t.same(reads, [1, 1, 1, 1, 1], 'each 10 kB value fills a 5 kB budget by itself');
  });

  t.test(`${name}: restore keeps an absolute expiry and skips one already past`, async (t) => {
    const clock = fakeClock();
    const store = await open(t, clock);
    const at = clock.now + 5000;
    t.equal(await store.restore('a', 'A', at), true);
    t.equal(await store.restore('b', Buffer.from([0xff, 0]), 0), true);
    t.equal(await store.restore('gone', 'G', clock.now - 1), false, 'expired before the restore');
    t.equal(await store.get('gone'), undefined);
    t.equal(await store.ttl('a'), 5000);
    t.equal(await store.ttl('b'), 0, 'no expiry');
    t.same(await store.getBuffer('b'), Buffer.from([0xff, 0]));
    await store.set('c', 'old', 10);
    t.equal(await store.restore('c', 'new', 0), true, 'a restore replaces a key and its ttl');
    t.equal(await store.ttl('c'), 0);
    clock.now += 5001;
    t.equal(await store.get('a'), undefined, 'it expires at the time restored');
    for (const bad of [-1, 1.5, Number.NaN, '12']) {
      await t.rejects((async () => store.restore('k', 'v', bad as number))(), { code: 'TTL_INVALID' }, String(bad));
    }
  });

  t.test(`${name}: a closed snapshot reads nothing`, async (t) => {
    const store = await open(t, Date.now);
    await store.set('k', 'v');
    const snapshot = store.snapshot();
    await snapshot.close();
    t.same(await snapshot.read(10, 1000), []);
    t.equal(snapshot.done, true);
  });
}

t.test('hdd: a snapshot taken while batches are being written holds each batch whole or not at all', async (t) => {
  const store = await HddEngine.open({ dataDir: await tempDir(t), shards: 4, durability: 'no' });
  t.teardown(() => store.close());
  // A writer that writes key i only after key i-1 was acknowledged, and a counter after each.
  let written = 0;
  const writer = (async () => {
    while (written < 60) {
      await store.set(`seq-${written}`, String(written));
      written++;
      await store.set('counter', String(written));
    }
  })();
  // Snapshots taken as the writer goes on: each while its next write is queued or being written.
  const snapshots: Array<[number, HddSnapshot]> = [];
  for (let target = 5; target < 60; target += 11) {
    while (written < target) await new Promise((resolve) => setImmediate(resolve));
    snapshots.push([written, store.snapshot()]);
  }
  await writer;
  for (const [acknowledged, snapshot] of snapshots) {
    const seen = new Map<string, string>();
    for (
      let entries = await snapshot.read(50, 1 << 20);
      entries.length > 0;
      entries = await snapshot.read(50, 1 << 20)
    ) {
      for (const { key, value } of entries) seen.set(key.toString(), value.toString());
    }
    const counter = Number(seen.get('counter') ?? 0);
    const keys = [...seen.keys()].filter((k) => k.startsWith('seq-')).map((k) => Number(k.slice(4)));
    const highest = keys.length === 0 ? -1 : Math.max(...keys);
    t.ok(highest >= acknowledged - 1, `seq-${highest}: the ${acknowledged} keys acknowledged before are in it`);
    t.equal(keys.length, highest + 1, `no gap below seq-${highest}`);
    t.ok(counter === highest + 1 || counter === highest, `the counter ${counter} matches seq-${highest}`);
  }
});
