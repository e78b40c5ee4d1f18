// The hdd write path without the read before write: a write knows what its key holds from the
// key filter (new keys) and the key states (keys written lately), and reads only the others. What
// must not change: the count is exact, the expiry index holds exactly one entry per record with an
// expiry, acknowledged writes survive a kill, and a failed write leaves nothing assumed.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ClassicLevel } from 'classic-level';
import t, { type Test } from 'tap';
import { shardOfBytes } from '../src/hash.js';
import { faultsKey, filtersBuiltKey } from '../src/hdd-engine.js';
import type { ShardFaults } from '../src/hdd-shard.js';
import { HddEngine, type HddEngineOptions, type StorageError } from '../src/index.js';
import { type FakeClock, fakeClock } from './common/conformance.js';

const root = await mkdtemp(join(tmpdir(), 'hati-write-path-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
let next = 0;
const freshDir = () => join(root, `store-${next++}`);

/** Counts the keys write batches read (their previous records), per the test seam. */
function readCounter(): { faults: ShardFaults; reads: () => number } {
  let reads = 0;
  return {
    faults: {
      beforeRead(_shard, keys) {
        reads += keys;
      },
    },
    reads: () => reads,
  };
}

async function openStore(options: HddEngineOptions & { faults?: ShardFaults }): Promise<HddEngine> {
  const { faults, ...rest } = options;
  const store = await HddEngine.open({ ...rest, [faultsKey]: faults } as HddEngineOptions);
  return store;
}

/** Waits until every shard's key filter is built (after open), and says whether all are ready. */
async function filtersReady(store: HddEngine): Promise<boolean> {
  return (await store[filtersBuiltKey]()).every(Boolean);
}

/**
 * Reads a closed store's LevelDBs directly and checks its layout: each shard's stored count is
 * its number of records, and its expiry index holds exactly one entry per record with an expiry
 * (that expiry and key), nothing else.
 */
async function checkLayout(t: Test, dataDir: string): Promise<void> {
  const meta = JSON.parse(await readFile(join(dataDir, 'db', 'hati.json'), 'utf8')) as { shards: number };
  for (let i = 0; i < meta.shards; i++) {
    const db = new ClassicLevel<Buffer, Buffer>(join(dataDir, 'db', `kv_shard_${i}`), {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      createIfMissing: false,
    });
    await db.open();
    try {
      let records = 0;
      let count: number | undefined;
      const wanted = new Set<string>();
      const indexed = new Set<string>();
      for await (const [k, v] of db.iterator()) {
        if (k[0] === 0x01) {
          records++;
          const expiresAt = v.readDoubleBE(0);
          if (expiresAt !== 0) wanted.add(`${expiresAt} ${k.subarray(1).toString('hex')}`);
        } else if (k[0] === 0x02) {
          indexed.add(`${k.readDoubleBE(1)} ${k.subarray(9).toString('hex')}`);
        } else if (k.equals(Buffer.from([0x00, 0x63]))) {
          count = v.readDoubleBE(0);
        }
      }
      t.equal(count ?? 0, records, `shard ${i}: the stored count is the number of records (${records})`);
      t.same([...indexed].sort(), [...wanted].sort(), `shard ${i}: one index entry per record with an expiry`);
    } finally {
      await db.close();
    }
  }
}

t.test('writes of new keys and of keys written lately read nothing; the count stays exact', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  const counter = readCounter();
  let store = await openStore({ dataDir, clock, shards: 2, faults: counter.faults });
  t.ok(await filtersReady(store), 'the filter of an empty store is ready at once');
  const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`);
  await Promise.all(keys.map((key) => store.set(key, 'v1')));
  t.equal(counter.reads(), 0, 'new keys: not in the filter, so certainly absent');
  t.equal(await store.count(), 1000);

  await Promise.all(keys.map((key, i) => store.set(key, 'v2', i % 2 === 0 ? 60_000 : 0)));
  await Promise.all(keys.map((key) => store.set(key, 'v3')));
  t.equal(counter.reads(), 0, 'overwrites, with and without a ttl: their state is known');
  t.equal(await store.count(), 1000);

  const removed = await Promise.all(keys.slice(0, 500).map((key) => store.delete(key)));
  t.ok(
    removed.every((r) => r === true),
    'deletes of known keys answer true',
  );
  t.same(await Promise.all([store.delete('key-0'), store.delete('never-set')]), [false, false]);
  t.equal(await store.count(), 500);
  await Promise.all(keys.slice(0, 250).map((key) => store.set(key, 'again', 30_000)));
  t.equal(await store.count(), 750, 'keys set, deleted and set again are counted once');
  t.equal(counter.reads(), 0, 'none of that read a key');

  t.equal(await store.setIf('key-300', 'x', 0, 'absent'), true, 'a known deleted key is absent');
  t.equal(await store.incrBy('counter', 5n), 5n, 'incrBy of a new key');
  t.equal(counter.reads(), 0, 'setIf and incrBy of keys known absent read nothing');
  t.equal(await store.setIf('key-1', 'x', 0, 'absent'), false, 'a known live key is not absent');
  t.equal(await store.incrBy('counter', 1n), 6n);
  t.equal(counter.reads(), 2, 'a read-modify-write of a stored key reads its record');
  t.equal(await store.get('key-0'), 'again');
  t.equal(await store.ttl('key-0'), 30_000);
  t.equal(await store.count(), 752);
  await store.close();
  await checkLayout(t, dataDir);

  // A reopened store knows no key's state: overwrites read, new keys do not once the filter is built.
  store = await openStore({ dataDir, clock, shards: 2, faults: counter.faults });
  t.ok(await filtersReady(store), 'the filter is rebuilt at open');
  const before = counter.reads();
  await Promise.all(keys.map((key) => store.set(key, 'v4')));
  // 751 of them are stored; the deleted ones are not in the rebuilt filter (a few might seem to be).
  const read = counter.reads() - before;
  t.ok(read >= 751 && read <= 760, `after a reopen, the stored keys are read once (${read})`);
  await Promise.all(keys.map((key) => store.set(key, 'v5')));
  await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(`fresh-${i}`, 'v')));
  t.equal(counter.reads() - before, read, 'then known again; fresh keys are not read');
  t.equal(await store.count(), 1101);
  await store.close();
  await checkLayout(t, dataDir);
});

t.test('jobs of one batch on one key see each other, whether the key was known or read', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  const counter = readCounter();
  let store = await openStore({ dataDir, clock, shards: 1, faults: counter.faults });
  await filtersReady(store);
  await store.set('stored', 'old', 60_000);
  for (const round of ['known', 'read']) {
    // Nothing queued or being written: the first get is answered on its own, the rest (issued in
    // the same turn) form one batch.
    await new Promise((resolve) => setImmediate(resolve));
    const before = counter.reads();
    const results = await Promise.all([
      store.get('stored'),
      store.set('stored', 'a'),
      store.ttl('stored'),
      store.delete('stored'),
      store.has('stored'),
      store.setIf('stored', 'b', 5_000, 'absent'),
      store.get('stored'),
      store.ttl('stored'),
      store.set('new', '1', 1_000),
      store.delete('new'),
      store.delete('new'),
    ]);
    t.same(results, ['old', undefined, 0, true, false, true, 'b', 5_000, undefined, true, false], round);
    t.equal(counter.reads() - before, round === 'known' ? 0 : 1, `${round}: keys read by the batch`);
    t.equal(await store.count(), 1, `${round}: one key`);
    await store.set('stored', 'old', 60_000);
    await store.close();
    await checkLayout(t, dataDir);
    // The next round starts from a reopened store, which knows no key's state.
    store = await openStore({ dataDir, clock, shards: 1, faults: counter.faults });
    await filtersReady(store);
  }
  await store.close();
});

t.test('the key filter is saved at close and used by the next open, unless the LevelDB changed', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  const counter = readCounter();
  const shardFile = (i: number) => join(dataDir, 'db', `kv_shard_${i}`);
  const filterFile = (i: number) => join(dataDir, 'db', `key_filter_${i}`);
  let store = await openStore({ dataDir, clock, shards: 2, faults: counter.faults });
  await filtersReady(store);
  await Promise.all(Array.from({ length: 2000 }, (_, i) => store.set(`key-${i}`, 'v')));
  await store.close();
  t.ok(await exists(filterFile(0)), 'saved beside the shard');

  store = await openStore({ dataDir, clock, shards: 2, faults: counter.faults });
  t.same(await store[filtersBuiltKey](), [true, true], 'ready as soon as the store is open');
  t.notOk(await exists(filterFile(0)), 'taken: an open LevelDB no longer matches it');
  await Promise.all(Array.from({ length: 500 }, (_, i) => store.set(`new-${i}`, 'v')));
  t.equal(counter.reads(), 0, 'new keys are known new at once');
  t.equal(await store.count(), 2500);
  await store.close();

  // Another writer (an older version, a tool) adds keys behind the saved filters' backs.
  for (const key of ['sneaky-0', 'sneaky-1']) {
    const dataKey = Buffer.from(`\x01${key}`);
    const db = new ClassicLevel<Buffer, Buffer>(shardFile(shardOfBytes(dataKey, 1, 2)), {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
    });
    await db.open();
    const count = (await db.get(Buffer.from([0x00, 0x63]))) as Buffer;
    const record = Buffer.alloc(9);
    record.write('x', 8);
    await db
      .batch()
      .put(dataKey, record)
      .put(Buffer.from([0x00, 0x63]), encodeCount(count.readDoubleBE(0) + 1))
      .write();
    await db.close();
  }
  store = await openStore({ dataDir, clock, shards: 2 });
  t.equal(await store.count(), 2502);
  await Promise.all([store.set('sneaky-0', 'y'), store.set('sneaky-1', 'y')]);
  t.equal(await store.count(), 2502, 'the stale filter was not used: the keys were found stored');
  // Rebuilt in the background; a close before that saves no filter for the shard (on a loaded
  // machine the rebuild can take longer than the writes above).
  t.ok(await filtersReady(store), 'rebuilt from the LevelDB');
  await store.close();

  // A damaged file is not used either.
  await writeFile(filterFile(0), 'garbage');
  const saved = await readFile(filterFile(1));
  saved[saved.length - 1] = (saved[saved.length - 1] as number) ^ 0xff;
  await writeFile(filterFile(1), saved);
  store = await openStore({ dataDir, clock, shards: 2, faults: counter.faults });
  t.same(await store[filtersBuiltKey](), [true, true], 'rebuilt instead');
  const before = counter.reads();
  await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(`fresh-${i}`, 'v')));
  t.equal(counter.reads(), before, 'and as good');
  t.equal(await store.count(), 2602);
  await store.close();
  await checkLayout(t, dataDir);
});

function encodeCount(n: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeDoubleBE(n, 0);
  return out;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A small deterministic random source, so that a failing run can be replayed from its seed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

interface Held {
  value: string;
  expiresAt: number;
}

/** What the store must answer, computed op by op in the order the ops were issued. */
class Model {
  readonly keys = new Map<string, Held>();
  constructor(readonly clock: FakeClock) {}
  live(key: string): Held | undefined {
    const held = this.keys.get(key);
    if (held === undefined) return undefined;
    if (held.expiresAt !== 0 && this.clock.now > held.expiresAt) return undefined;
    return held;
  }
  expiry(ttl: number): number {
    return ttl === 0 ? 0 : this.clock.now + ttl;
  }
  count(): number {
    let n = 0;
    for (const key of this.keys.keys()) if (this.live(key) !== undefined) n++;
    return n;
  }
}

type Op = { name: string; run: (store: HddEngine) => Promise<unknown>; expect: unknown };

/** One random operation on `key`, applied to the model; what the store must answer. */
function randomOp(model: Model, key: string, rand: () => number): Op {
  const ttls = [0, 0, 0, 20, 60_000];
  const ttl = ttls[Math.floor(rand() * ttls.length)] as number;
  const live = model.live(key);
  const value = `v${Math.floor(rand() * 1000)}`;
  const pick = Math.floor(rand() * 10);
  if (pick <= 2) {
    model.keys.set(key, { value, expiresAt: model.expiry(ttl) });
    return { name: `set ${key} ${ttl}`, run: (s) => s.set(key, value, ttl), expect: undefined };
  }
  if (pick === 3) {
    model.keys.delete(key);
    return { name: `delete ${key}`, run: (s) => s.delete(key), expect: live !== undefined };
  }
  if (pick === 4) {
    const condition = rand() < 0.5 ? 'absent' : 'present';
    const stores = (live === undefined) === (condition === 'absent');
    if (stores) model.keys.set(key, { value, expiresAt: model.expiry(ttl) });
    return { name: `setIf ${key} ${condition}`, run: (s) => s.setIf(key, value, ttl, condition), expect: stores };
  }
  if (pick === 5) {
    if (live !== undefined) live.expiresAt = model.expiry(ttl);
    return { name: `expire ${key} ${ttl}`, run: (s) => s.expire(key, ttl), expect: live !== undefined };
  }
  if (pick === 6 && (live === undefined || /^-?\d+$/.test(live.value))) {
    const sum = BigInt(live?.value ?? '0') + 3n;
    model.keys.set(key, { value: String(sum), expiresAt: live?.expiresAt ?? 0 });
    return { name: `incrBy ${key}`, run: (s) => s.incrBy(key, 3n), expect: sum };
  }
  if (pick === 7) return { name: `has ${key}`, run: (s) => s.has(key), expect: live !== undefined };
  if (pick === 8) {
    const left =
      live === undefined ? undefined : live.expiresAt === 0 ? 0 : Math.max(1, live.expiresAt - model.clock.now);
    return { name: `ttl ${key}`, run: (s) => s.ttl(key), expect: left };
  }
  return { name: `get ${key}`, run: (s) => s.get(key), expect: live?.value };
}

for (const seed of [1, 2, 3]) {
  t.test(`random writes, reads, expiry and reopens agree with a model (seed ${seed})`, async (t) => {
    const rand = random(seed * 7919);
    const dataDir = freshDir();
    const clock = fakeClock();
    const model = new Model(clock);
    const keyNames = Array.from({ length: 30 }, (_, i) => `k${i}`);
    const open = () => openStore({ dataDir, clock, shards: 2, sweepIntervalMs: 20 });
    let store = await open();
    let mismatches = 0;
    for (let group = 0; group < 250; group++) {
      // Issued in one turn, so that they share batches; each key's ops keep their order.
      const ops = Array.from({ length: 1 + Math.floor(rand() * 12) }, () =>
        randomOp(model, keyNames[Math.floor(rand() * keyNames.length)] as string, rand),
      );
      const results = await Promise.all(ops.map((op) => op.run(store)));
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i] as Op;
        if (results[i] !== op.expect) {
          mismatches++;
          t.fail(`group ${group}: ${op.name} answered ${String(results[i])}, expected ${String(op.expect)}`);
        }
      }
      if (group % 10 === 0) t.equal(await store.count(), model.count(), `group ${group}: count`);
      const step = rand();
      if (step < 0.2) clock.now += 1;
      else if (step < 0.3) clock.now += 30;
      if (rand() < 0.04) {
        await store.close();
        store = await open();
        // Half the time writes start before the filter is built (then they read every key).
        if (rand() < 0.5) await filtersReady(store);
      }
    }
    t.equal(mismatches, 0, 'every answer matched the model');
    t.equal(await store.count(), model.count(), 'final count');
    await store.close();
    await checkLayout(t, dataDir);
  });
}

t.test('a write that failed after reaching the disk leaves no key state assumed', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  let failNext = false;
  const faults: ShardFaults = {
    afterWrite(_shard, what) {
      if (failNext && what === 'write') {
        failNext = false;
        throw new Error('EIO: the fsync after this write failed');
      }
    },
  };
  const store = await openStore({ dataDir, clock, shards: 1, recoveryIntervalMs: 20, faults });
  await filtersReady(store);
  await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(`key-${i}`, 'v', i % 2 === 0 ? 60_000 : 0)));
  await Promise.all(Array.from({ length: 50 }, (_, i) => store.delete(`key-${i}`)));
  t.equal(await store.count(), 50);

  // One batch that sets deleted keys, new keys and stored keys, and is on disk when it fails.
  failNext = true;
  const writes = [
    ...Array.from({ length: 50 }, (_, i) => store.set(`key-${i}`, 'back', 30_000)),
    ...Array.from({ length: 20 }, (_, i) => store.set(`new-${i}`, 'v')),
    ...Array.from({ length: 50 }, (_, i) => store.set(`key-${50 + i}`, 'over', i % 2 === 0 ? 0 : 45_000)),
  ];
  const codes = await Promise.all(
    writes.map((write) =>
      write.then(
        () => 'ok',
        (err: StorageError) => err.code,
      ),
    ),
  );
  t.same([...new Set(codes)], ['STORAGE_IO'], 'the writers hear of the failure');
  const deadline = Date.now() + 10_000;
  while (store.state !== 'ok' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.equal(store.state, 'ok', 'the store recovered');

  // The failed batch is on disk: 120 keys. Writing every key again must count each once.
  t.equal(await store.count(), 120, 'the count reloaded from disk includes the failed batch');
  await Promise.all([
    ...Array.from({ length: 100 }, (_, i) => store.set(`key-${i}`, 'final')),
    ...Array.from({ length: 20 }, (_, i) => store.set(`new-${i}`, 'final', 10_000)),
  ]);
  t.equal(await store.count(), 120, 'each key is counted once');
  let records = 0;
  for await (const _ of store.entries()) records++;
  t.equal(records, 120, 'as many records as counted');
  await store.close();
  await checkLayout(t, dataDir);
});

/** Runs a fixture with the same TypeScript loader this test runs under. */
function runFixture(name: string, args: string[]): ChildProcess {
  return spawn(
    process.execPath,
    [...process.execArgv, new URL(`./fixtures/${name}`, import.meta.url).pathname, ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
}

// One shard, the default of a new store, and eight, whose batch is eight LevelDB writes a kill can cut between.
for (const [durability, shards] of [
  ['always', 1],
  ['everysec', 1],
  ['always', 8],
] as const) {
  t.test(
    `durability ${durability}, ${shards} shard(s): a process killed while overwriting keeps the count and index exact`,
    async (t) => {
      const dataDir = freshDir();
      const child = runFixture('hdd-overwriter.ts', [dataDir, durability, String(shards)]);
      // Per key: the op of each seq issued, and the highest seq acknowledged.
      const issued = new Map<string, Map<number, string>>();
      const acked = new Map<string, number>();
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      const exited = once(child, 'exit');
      const target = 3000 + Math.floor(Math.random() * 3000);
      let acks = 0;
      for await (const line of lines) {
        const [what, key, seq, op] = line.split(' ') as [string, string, string, string];
        if (what === 'issue') {
          const ops = issued.get(key) ?? new Map<number, string>();
          issued.set(key, ops);
          ops.set(Number(seq), op);
        } else if (what === 'ack') {
          acked.set(key, Math.max(acked.get(key) ?? 0, Number(seq)));
          // Read on to the end: ops issued before the kill may have been written, and only their
          // lines say so (the child prints each op before making it).
          if (++acks === target) child.kill('SIGKILL');
        }
      }
      const [, signal] = await exited;
      t.equal(signal, 'SIGKILL', 'the writer was killed, not closed');
      await checkLayout(t, dataDir);

      const store = await openStore({ dataDir });
      const lost: string[] = [];
      for (const [key, seq] of acked) {
        const ops = issued.get(key) as Map<number, string>;
        const value = await store.get(key);
        if (value === undefined) {
          // Absent is right only if a delete was issued at or after the last acknowledged op.
          if (![...ops].some(([s, op]) => s >= seq && op === 'delete')) lost.push(`${key}: gone after ack of ${seq}`);
        } else {
          const stored = Number(value.split(':')[1]);
          if (stored < seq || ops.get(stored) === 'delete') lost.push(`${key}: ${value} after ack of ${seq}`);
        }
      }
      t.same(lost, [], `every acknowledged write of ${acked.size} keys is there`);
      t.ok(await filtersReady(store));
      const keys = [...issued.keys()];
      await Promise.all(keys.map((key, i) => store.set(key, 'after', i % 3 === 0 ? 60_000 : 0)));
      await Promise.all(keys.map((key) => store.set(key, 'again')));
      t.equal(await store.count(), keys.length, 'after the crash, every key written again is counted once');
      await store.close();
      await checkLayout(t, dataDir);
    },
  );
}
