import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { HddEngine } from '../src/index.js';
import { codeOf, fakeClock, setRangeRefusals } from './common/conformance.js';
import { fillDisk, mountTmpfs, tmpfsSkip, unmountTmpfs } from './common/disk.js';

const root = await mkdtemp(join(tmpdir(), 'hati-hdd-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
let next = 0;
const freshDir = () => join(root, `store-${next++}`);
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

/** Runs a fixture with the same TypeScript loader this test runs under. */
function runFixture(name: string, args: string[]): ChildProcess {
  return spawn(process.execPath, [...process.execArgv, fixture(name), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

async function fill(store: HddEngine, n: number, ttlOf: (i: number) => number = () => 0): Promise<void> {
  const inFlight = 256;
  let i = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (i < n) {
        const k = i++;
        await store.set(`key-${k}`, `value-${k}`, ttlOf(k));
      }
    }),
  );
}

t.test('a restart keeps data and ttls, and expires what ran out while closed', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  let store = await HddEngine.open({ dataDir, clock });
  await store.set('permanent', 'p');
  await store.set('short', 's', 1000);
  await store.set('long', 'l', 100_000);
  await store.close();

  clock.now += 400;
  store = await HddEngine.open({ dataDir, clock });
  t.equal(await store.get('permanent'), 'p');
  t.equal(await store.ttl('short'), 600, 'the ttl kept running while closed');
  t.equal(await store.count(), 3);
  await store.close();

  clock.now += 601;
  store = await HddEngine.open({ dataDir, clock });
  t.equal(await store.count(), 2, 'a key that expired while closed is gone after open');
  t.equal(await store.get('short'), undefined);
  t.equal(await store.ttl('long'), 98_999);
  t.same(await store.shardCounts().then((c) => c.reduce((a, b) => a + b)), 2);
  await store.close();
});

t.test('active expiry removes keys nobody reads', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  const store = await HddEngine.open({ dataDir, clock, sweepIntervalMs: 5, sweepLimit: 100 });
  t.teardown(() => store.close());
  await fill(store, 1000, (i) => (i < 900 ? 10 : 0));
  clock.now += 11;
  t.equal(store.heldKeys(), 1000, 'expired records are still held before the sweeper runs');
  const deadline = Date.now() + 10_000;
  while (store.heldKeys() > 100 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.equal(store.heldKeys(), 100, 'the sweeper removed every expired record without a read');
  let records = 0;
  for await (const _ of store.entries()) records++;
  t.equal(records, 100);
});

t.test('the sweeper keeps a key at set + N and removes it at set + N + 1', async (t) => {
  const clock = fakeClock();
  const store = await HddEngine.open({ dataDir: freshDir(), clock, sweepIntervalMs: 5 });
  t.teardown(() => store.close());
  const swept: string[] = [];
  store.onExpired = (key) => {
    swept.push(key.toString());
  };
  const keys = (prefix: string) => Array.from({ length: 200 }, (_, i): [string, string] => [`${prefix}-${i}`, 'v']);
  // The early keys are in every shard, so at set + 10 every shard's sweep runs: it must take
  // them and leave the edge keys, live until set + 10 included.
  await store.setMany(keys('early'), 5);
  await store.setMany(keys('edge'), 10);
  clock.now += 10;
  const sweptOf = (prefix: string) => swept.filter((key) => key.startsWith(`${prefix}-`)).length;
  const settled = async (done: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  await settled(() => sweptOf('early') === 200);
  t.equal(sweptOf('early'), 200, 'at set + 10 the sweeper removed every key set with ttl 5');
  t.equal(sweptOf('edge'), 0, 'and none set with ttl 10');
  t.equal(store.heldKeys(), 200);
  clock.now += 1;
  await settled(() => sweptOf('edge') === 200);
  t.equal(sweptOf('edge'), 200, 'at set + 11 it removed those too');
  t.equal(store.heldKeys(), 0);
});

t.test('reshard 8 → 3 → 16 keeps every key and its expiry', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  // Enough keys that even with 16 shards each new shard gets over a thousand, so its copy is
  // written in more than one batch (RESHARD_BATCH entries each), as a big store's is.
  const n = 20_000;
  let store = await HddEngine.open({ dataDir, clock, durability: 'no', shards: 8 });
  await fill(store, n, (i) => (i % 10 === 0 ? 3_600_000 : 0));
  await store.set('expired-before-reshard', 'x', 5);
  await store.close();
  clock.now += 10;

  for (const shards of [3, 16]) {
    store = await HddEngine.open({ dataDir, clock, shards });
    t.equal(await store.count(), n, `${shards} shards: count`);
    const counts = await store.shardCounts();
    t.equal(counts.length, shards);
    t.ok(Math.min(...counts) > (n / shards) * 0.8, `${shards} shards: keys spread evenly (${counts.join(' ')})`);
    let seen = 0;
    let bad = 0;
    for await (const { key, value, expiresAt } of store.entries()) {
      const i = Number(key.toString().slice(4));
      const want = i % 10 === 0 ? 1_700_000_000_000 + 3_600_000 : 0;
      if (value.toString() !== `value-${i}` || expiresAt !== want) bad++;
      seen++;
    }
    t.equal(seen, n, `${shards} shards: every key is there`);
    t.equal(bad, 0, `${shards} shards: every value and expiry is intact`);
    t.equal(await store.get('key-17777'), 'value-17777', 'reads find keys in their new shard');
    t.equal(await store.get('expired-before-reshard'), undefined);
    await store.close();
    const names = (await readdir(join(dataDir, 'db'))).filter((name) => name.startsWith('kv_shard_'));
    t.equal(names.length, shards, `${shards} shard folders, no leftovers`);
    t.same((await readdir(dataDir)).sort(), ['db', 'hati.lock'], 'no reshard leftovers');
  }
});

t.test('without a shard count a new store gets one shard and an existing one keeps its own', async (t) => {
  const fresh = freshDir();
  let store = await HddEngine.open({ dataDir: fresh, durability: 'no' });
  t.equal(store.shards, 1, 'a new store: one shard');
  t.same(await readdir(join(fresh, 'db')), ['hati.json', 'kv_shard_0']);
  await store.set('k', 'v');
  await store.close();
  t.equal(await HddEngine.storedShards(fresh), 1, 'the count is recorded');

  const dataDir = freshDir();
  store = await HddEngine.open({ dataDir, durability: 'no', shards: 5 });
  await fill(store, 1000, () => 0);
  await store.close();
  store = await HddEngine.open({ dataDir, durability: 'no' });
  t.equal(store.shards, 5, 'opened without a count: the 5 it was written with, not rebuilt');
  t.equal(await store.count(), 1000);
  t.equal((await store.shardCounts()).length, 5);
  await store.close();
  t.equal((await readdir(join(dataDir, 'db'))).filter((name) => name.startsWith('kv_shard_')).length, 5);
});

t.test('a reshard interrupted by a crash is finished or undone on open', async (t) => {
  // Build the two complete stores a reshard has at its last step.
  const clock = fakeClock();
  const before = freshDir();
  let store = await HddEngine.open({ dataDir: before, clock, shards: 4 });
  await fill(store, 500);
  await store.close();
  const after = freshDir();
  await cp(before, after, { recursive: true });
  store = await HddEngine.open({ dataDir: after, clock, shards: 2 });
  await store.close();

  // Crash after `db` was moved away and before `db.reshard` took its place.
  const crashed = freshDir();
  await mkdir(crashed);
  await rename(join(before, 'db'), join(crashed, 'db.old'));
  await cp(join(after, 'db'), join(crashed, 'db.reshard'), { recursive: true });
  store = await HddEngine.open({ dataDir: crashed, clock, shards: 2 });
  t.equal(await store.count(), 500, 'the finished rebuild is swapped in');
  t.equal(await store.get('key-499'), 'value-499');
  await store.close();
  t.same((await readdir(crashed)).sort(), ['db', 'hati.lock']);

  // Crash while `db.reshard` was being built: it has no description yet and is dropped.
  await mkdir(join(crashed, 'db.reshard', 'kv_shard_0'), { recursive: true });
  store = await HddEngine.open({ dataDir: crashed, clock, shards: 2 });
  t.equal(await store.count(), 500, 'the old store is kept whole');
  await store.close();
  t.same((await readdir(crashed)).sort(), ['db', 'hati.lock']);
});

t.test('a directory opened twice is locked', async (t) => {
  const dataDir = freshDir();
  const store = await HddEngine.open({ dataDir });
  t.teardown(() => store.close());
  await store.set('k', 'v');
  await t.rejects(HddEngine.open({ dataDir }), { code: 'DATA_DIR_LOCKED' }, 'in the same process');
  await t.rejects(HddEngine.open({ dataDir, shards: 3 }), { code: 'DATA_DIR_LOCKED' }, 'even when asked to reshard');

  const child = runFixture('open.ts', [dataDir]);
  const [line] = await once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), 'line');
  t.same(JSON.parse(line as string), { ok: false, code: 'DATA_DIR_LOCKED' }, 'in another process');
  t.equal(await store.get('k'), 'v', 'the first store still works');
});

t.test('ioObserver hears of each write batch with its records, and of each fsync', async (t) => {
  const dataDir = freshDir();
  const store = await HddEngine.open({ dataDir, shards: 1, durability: 'everysec' });
  const events: Array<[string, number]> = [];
  const times: number[] = [];
  store.ioObserver = (event, ms, ops) => {
    events.push([event, ops]);
    times.push(ms);
  };
  // Issued in one turn: one batch of three data records, one expiry index entry and the count.
  await Promise.all([store.set('a', '1'), store.set('b', '2'), store.set('c', '3', 60_000)]);
  t.same(events, [['write', 5]], 'one batch, five records');
  await store.delete('a');
  t.same(events[1], ['write', 2], 'a delete: the record and the count');

  store.ioObserver = () => {
    throw new Error('a broken metrics hook');
  };
  await store.set('d', '4');
  t.equal(await store.get('d'), '4', 'an observer that throws fails no write');

  store.ioObserver = (event, ms, ops) => {
    events.push([event, ops]);
    times.push(ms);
  };
  await store.close();
  t.same(events.slice(2), [['fsync', 0]], 'closing an everysec store fsyncs once');
  t.ok(
    times.every((ms) => Number.isFinite(ms) && ms >= 0),
    'durations are milliseconds',
  );
});

t.test('unusable data directories fail with clear codes', async (t) => {
  const file = join(root, 'a-file');
  await writeFile(file, 'not a directory');
  await t.rejects(HddEngine.open({ dataDir: file }), { code: 'DATA_DIR_NOT_WRITABLE' }, 'a file');
  await t.rejects(HddEngine.open({ dataDir: join(file, 'below') }), { code: 'DATA_DIR_NOT_WRITABLE' }, 'below a file');

  const badMeta = freshDir();
  await mkdir(join(badMeta, 'db'), { recursive: true });
  await writeFile(join(badMeta, 'db', 'hati.json'), '{"shards":');
  await t.rejects(HddEngine.open({ dataDir: badMeta }), { code: 'DATA_DIR_CORRUPT' }, 'a garbled description');

  const badDb = freshDir();
  const store = await HddEngine.open({ dataDir: badDb, shards: 2 });
  await store.set('k', 'v');
  await store.close();
  await writeFile(join(badDb, 'db', 'kv_shard_1', 'CURRENT'), 'garbage without newline');
  await t.rejects(HddEngine.open({ dataDir: badDb, shards: 2 }), { code: 'DATA_DIR_CORRUPT' }, 'a garbled LevelDB');
  // Had the failed open left the directory locked, this would say DATA_DIR_LOCKED.
  await t.rejects(
    HddEngine.open({ dataDir: badDb, shards: 2 }),
    { code: 'DATA_DIR_CORRUPT' },
    'a failed open leaves nothing locked behind in the process',
  );

  for (const options of [{ shards: 0 }, { durability: 'sometimes' }, { dataDir: '' }]) {
    await t.rejects(
      HddEngine.open({ dataDir: freshDir(), ...options } as never),
      { code: 'OPTION_INVALID' },
      JSON.stringify(options),
    );
  }
});

/** Checks, in a store opened on `dataDir`, that every acknowledged key is there and the count is exact. */
async function checkAcked(t: Test, dataDir: string, acked: string[]): Promise<void> {
  const store = await HddEngine.open({ dataDir });
  try {
    const missing: string[] = [];
    for (const key of acked) if ((await store.get(key)) !== `value-of-${key}`) missing.push(key);
    t.same(missing, [], `all ${acked.length} acknowledged writes are there`);
    const count = await store.count();
    t.ok(count >= acked.length, `count ${count} covers every acknowledged write`);
    let records = 0;
    for await (const _ of store.entries()) records++;
    t.equal(records, count, 'the stored count matches the records after the crash');
  } finally {
    await store.close();
  }
}

for (const durability of ['always', 'everysec', 'no'] as const) {
  t.test(`durability ${durability}: a killed process loses no acknowledged write`, async (t) => {
    const dataDir = freshDir();
    const child = runFixture('writer.ts', [dataDir, durability]);
    const acked: string[] = [];
    const errors: string[] = [];
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const exited = once(child, 'exit');
    const target = 2000 + Math.floor(Math.random() * 2000);
    for await (const line of lines) {
      if (line === 'ready') continue;
      if (line.startsWith('error ')) {
        errors.push(line);
        continue;
      }
      acked.push(line);
      if (acked.length === target) {
        child.kill('SIGKILL');
        break;
      }
    }
    const [, signal] = await exited;
    t.equal(signal, 'SIGKILL', 'the writer was killed, not closed');
    t.same(errors, [], 'no write was refused');
    await checkAcked(t, dataDir, acked);
  });
}

for (const durability of ['always', 'everysec', 'no'] as const) {
  t.test(
    `durability ${durability}: a process killed after the disk filled up and was freed loses no acknowledged write`,
    { skip: tmpfsSkip },
    async (t) => {
      const mnt = await mountTmpfs('4m');
      try {
        const dataDir = join(mnt, 'store');
        const filler = join(mnt, 'filler');
        const child = runFixture('writer.ts', [dataDir, durability, '50']);
        const acked: string[] = [];
        const codes = new Set<string>();
        const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
        const exited = once(child, 'exit');
        let phase: 'writing' | 'filling' | 'full' | 'freed' = 'writing';
        let ackedWhenFreed = 0;
        let filling: Promise<number> | undefined;
        for await (const line of lines) {
          if (line === 'ready') continue;
          if (line.startsWith('error ')) {
            codes.add(line.slice(6));
            if (phase === 'filling') {
              // The store hit the full disk: free it, and let the writer carry on.
              phase = 'full';
              await filling;
              await rm(filler);
              phase = 'freed';
              ackedWhenFreed = acked.length;
            }
            continue;
          }
          acked.push(line);
          if (phase === 'writing' && acked.length === 500) {
            phase = 'filling';
            filling = fillDisk(filler);
          }
          if (phase === 'freed' && acked.length === ackedWhenFreed + 2000) {
            child.kill('SIGKILL');
            break;
          }
        }
        const [, signal] = await exited;
        t.equal(signal, 'SIGKILL', 'the writer was killed, not closed');
        t.equal(phase, 'freed', 'the writer hit the full disk, and wrote again once it was freed');
        t.ok(codes.has('STORAGE_IO'), 'the failing write was refused with STORAGE_IO');
        t.same(
          [...codes].filter((code) => code !== 'STORAGE_IO' && code !== 'WRITES_SUSPENDED'),
          [],
          'refused writes carried only STORAGE_IO or WRITES_SUSPENDED',
        );
        t.ok(acked.length >= ackedWhenFreed + 2000, `${acked.length} writes acknowledged in all`);
        await checkAcked(t, dataDir, acked);
      } finally {
        await unmountTmpfs(mnt);
      }
    },
  );
}

t.test('setRange stores ranges of its arrays, checked as set is, and survives a reopen', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  let store = await HddEngine.open({ dataDir, clock });
  const request = Buffer.from('SET counter 12345 more', 'latin1');
  await store.setRange(request, 4, 11, request, 12, 17, 0);
  t.equal(await store.get('counter'), '12345');
  t.equal(await store.incrBy('counter', 1n), 12346n, 'the value is an integer as any other');
  await store.setRange(request, 4, 11, request, 12, 12, 500);
  t.equal(await store.get('counter'), '', 'an empty range is an empty value');
  t.equal(await store.ttl('counter'), 500, 'with the ttl given');
  await store.setRange(new Uint8Array([1, 2, 3]), 0, 3, new Uint8Array(40).fill(7), 0, 40, 0);
  t.same(await store.getBuffer(Buffer.from([1, 2, 3])), Buffer.alloc(40, 7), 'any Uint8Array, a longer value');

  const bad = setRangeRefusals((...args) => store.setRange(...args), request);
  for (const [what, call, code] of bad) t.equal(await codeOf(call), code, what);
  t.equal(await store.count(), 2, 'refused calls stored nothing');

  await store.close();
  t.equal(await codeOf(() => store.setRange(request, 4, 11, request, 12, 17, 0)), 'STORAGE_CLOSED', 'closed');
  store = await HddEngine.open({ dataDir, clock });
  t.teardown(() => store.close());
  t.equal(await store.get('counter'), '', 'stored on disk');
  t.equal(await store.ttl('counter'), 500);
  t.equal(await store.count(), 2);
});
