// Data safety of the hdd engine (issue 7): a failed disk write suspends writes until the store
// has recovered, and a data directory deleted or replaced under a running store stops it.
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { faultsKey } from '../src/hdd-engine.js';
import type { ShardFaults } from '../src/hdd-shard.js';
import { HddEngine, type HddEngineOptions, type HddStateEvent, StorageError } from '../src/index.js';
import { fakeClock } from './common/conformance.js';
import { fillDisk, mountTmpfs, tmpfsSkip, unmountTmpfs } from './common/disk.js';

const root = await mkdtemp(join(tmpdir(), 'hati-safety-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
let next = 0;
const freshDir = () => join(root, `store-${next++}`);

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof StorageError) return err.code;
    throw err;
  }
  return undefined;
}

async function until(what: string, done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function setMany(store: HddEngine, prefix: string, n: number): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (i < n) {
        const k = i++;
        await store.set(`${prefix}-${k}`, `value-${k}`);
      }
    }),
  );
}

async function entryCount(store: HddEngine): Promise<number> {
  let n = 0;
  for await (const _ of store.entries()) n++;
  return n;
}

/** Keys `prefix-0` .. `prefix-(n-1)` that do not read back as written. */
async function missingOf(store: HddEngine, prefix: string, n: number): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < n; i++) if ((await store.get(`${prefix}-${i}`)) !== `value-${i}`) missing.push(`${prefix}-${i}`);
  return missing;
}

t.test('a failed write suspends every write until the store has reopened and proved the disk', async (t) => {
  const dataDir = freshDir();
  const clock = fakeClock();
  const events: HddStateEvent[] = [];
  let failWrites = false;
  let failedShard = -1;
  let failOpens = 0;
  let openAttempts = 0;
  let diskFull = false;
  let probes = 0;
  const faults: ShardFaults = {
    beforeProbe() {
      probes++;
      if (diskFull) throw Object.assign(new Error('ENOSPC: no space left on device (injected)'), { code: 'ENOSPC' });
    },
    beforeWrite(shard) {
      if (!failWrites) return;
      failedShard = shard;
      throw Object.assign(new Error('ENOSPC: no space left on device (injected)'), { code: 'ENOSPC' });
    },
    beforeOpen() {
      openAttempts++;
      if (failOpens > 0) {
        failOpens--;
        throw new Error('injected: the disk still refuses');
      }
    },
  };
  const options = {
    dataDir,
    clock,
    shards: 4,
    durability: 'always',
    recoveryIntervalMs: 20,
    onStateChange: (event: HddStateEvent) => events.push(event),
    [faultsKey]: faults,
  } as HddEngineOptions;
  const store = await HddEngine.open(options);
  t.teardown(() => store.close());
  t.equal(store.state, 'ok');
  await setMany(store, 'before', 500);
  await store.set('expiring', 'e', 100);

  failWrites = true;
  diskFull = true;
  t.equal(await codeOf(store.set('failing', 'v')), 'STORAGE_IO', 'the failing write rejects with STORAGE_IO');
  // LevelDB would take writes again (the injected failure is gone): its handle still is not trusted.
  failWrites = false;
  t.equal(store.state, 'suspended');
  t.same(
    events.map((e) => e.state),
    ['suspended'],
  );
  t.match(events[0]?.reason, /write on shard \d failed \(ENOSPC/, 'the event says what failed');

  const suspended = await store.set('refused', 'v').catch((err: StorageError) => err);
  t.equal((suspended as StorageError).code, 'WRITES_SUSPENDED', 'a later set is refused at once');
  t.match((suspended as StorageError).message, /suspended.*resume once the store has recovered/);
  t.equal(await codeOf(store.delete('before-1')), 'WRITES_SUSPENDED', 'delete too');
  t.equal(await codeOf(store.flushAll()), 'WRITES_SUSPENDED', 'flushAll too');

  // While the disk is still full, recovery fails at its probe and the shards keep their handles.
  await until('two recovery attempts found the disk still full', () => probes >= 2);
  t.match(store.stateReason, /last try: probing the disk failed \(ENOSPC/, 'the reason says why it is not over');
  t.equal(await store.get('before-7'), 'value-7', 'reads still work');
  t.equal(await store.has('before-8'), true);
  t.equal(await store.count(), 501, 'count is exact while suspended');
  clock.now += 101;
  t.equal(await store.get('expiring'), undefined, 'an expired key reads as missing (its removal is refused)');
  t.equal(await store.count(), 500, 'and is not counted, although it cannot be removed yet');

  // The disk takes writes again, but reopening the shard keeps failing: writes stay refused, and
  // reads of the closed shard fail with a clear code instead of crashing or hanging.
  failOpens = Number.POSITIVE_INFINITY;
  diskFull = false;
  await until('two reopen attempts failed', () => openAttempts >= 2);
  t.equal(store.state, 'suspended', 'still suspended after a failed reopen');
  t.match(store.stateReason, new RegExp(`last try: reopening shard ${failedShard} failed`));
  const reads = await Promise.allSettled(Array.from({ length: 500 }, (_, i) => store.get(`before-${i}`)));
  const readCodes = new Set(
    reads.map((r) => (r.status === 'fulfilled' ? (r.value?.startsWith('value-') ? 'value' : 'wrong') : r.reason.code)),
  );
  t.same([...readCodes].sort(), ['STORAGE_IO', 'value'], 'healthy shards answer; the closed one fails with STORAGE_IO');
  const closedRead = reads.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.match(closedRead.reason.message, /could not be opened again yet/);
  t.equal(await codeOf(store.count()), 'STORAGE_IO', 'so does a count, which cannot be exact without it');
  t.equal(await codeOf(store.set('still-refused', 'v')), 'WRITES_SUSPENDED');
  failOpens = 0;

  await until('recovered', () => store.state === 'ok');
  t.same(
    events.map((e) => e.state),
    ['suspended', 'recovered'],
  );
  t.match(events[1]?.reason, new RegExp(`shard ${failedShard} reopened and a synced probe write succeeded`));
  t.equal(await store.count(), 500, 'count is exact after recovery');
  t.equal(await store.get('before-499'), 'value-499');

  await setMany(store, 'after', 500);
  t.equal(await store.count(), 1000, 'writes are acknowledged again');
  t.equal(await store.delete('after-0'), true);
  await store.set('after-0', 'value-0');
  await store.close();

  const again = await HddEngine.open({ dataDir, clock, shards: 4 });
  t.teardown(() => again.close());
  t.same(await missingOf(again, 'before', 500), [], 'every key acknowledged before the failure is there');
  t.same(await missingOf(again, 'after', 500), [], 'every key acknowledged after recovery is there');
  for (const key of ['failing', 'refused', 'still-refused'])
    t.equal(await again.get(key), undefined, `${key} was not stored`);
  t.equal(await again.count(), 1000, 'count is exact after reopening');
  t.equal(await entryCount(again), 1000, 'and equals the keys present');
});

t.test('a failed fsync (durability everysec) suspends writes too', async (t) => {
  const dataDir = freshDir();
  const events: HddStateEvent[] = [];
  let failFsync = false;
  const faults: ShardFaults = {
    beforeWrite(_shard, what) {
      if (failFsync && what === 'fsync') throw new Error('EIO: i/o error, fsync (injected)');
    },
  };
  const store = await HddEngine.open({
    dataDir,
    shards: 2,
    durability: 'everysec',
    recoveryIntervalMs: 20,
    onStateChange: (event) => {
      events.push(event);
      // Recovery's own probe write goes to LevelDB directly, so it is not failed here.
      if (event.state === 'suspended') failFsync = false;
    },
    [faultsKey]: faults,
  } as HddEngineOptions);
  t.teardown(() => store.close());
  await setMany(store, 'k', 100);
  failFsync = true;
  await until('suspended by the once-a-second fsync', () => store.state !== 'ok', 5000);
  t.match(events[0], { state: 'suspended', reason: /fsync on shard \d failed \(EIO/ });
  await until('recovered', () => store.state === 'ok');
  await setMany(store, 'l', 100);
  await store.close();
  const again = await HddEngine.open({ dataDir, shards: 2 });
  t.teardown(() => again.close());
  t.same([...(await missingOf(again, 'k', 100)), ...(await missingOf(again, 'l', 100))], []);
  t.equal(await again.count(), 200);
});

t.test('a flushAll that fails on one shard leaves every count exact', async (t) => {
  const dataDir = freshDir();
  let armed = false;
  const faults: ShardFaults = {
    beforeWrite(shard, what) {
      if (armed && what === 'clear' && shard === 1) throw new Error('EIO: i/o error, write (injected)');
    },
  };
  const store = await HddEngine.open({
    dataDir,
    shards: 4,
    recoveryIntervalMs: 20,
    [faultsKey]: faults,
  } as HddEngineOptions);
  t.teardown(() => store.close());
  await setMany(store, 'k', 400);
  armed = true;
  t.equal(await codeOf(store.flushAll()), 'STORAGE_IO', 'flushAll rejects: it was not done');
  armed = false;
  const left = await entryCount(store);
  t.ok(left > 0 && left < 400, `part of the keys are gone (${left} left)`);
  t.equal(await store.count(), left, 'count equals the keys present while suspended');
  await until('recovered', () => store.state === 'ok');
  t.equal(await store.count(), left, 'and after recovery');
  await store.flushAll();
  t.equal(await store.count(), 0);
  t.equal(await entryCount(store), 0);
});

t.test(
  'a real full disk: writes fail, then resume once space is freed, and nothing acknowledged is lost',
  { skip: tmpfsSkip },
  async (t) => {
    for (const durability of ['always', 'everysec', 'no'] as const) {
      const mnt = await mountTmpfs('4m');
      try {
        const dataDir = join(mnt, 'store');
        const events: HddStateEvent[] = [];
        const store = await HddEngine.open({
          dataDir,
          durability,
          recoveryIntervalMs: 50,
          onStateChange: (event) => events.push(event),
        });
        let closed = false;
        try {
          await setMany(store, 'early', 200);
          // The disk is full before the store writes again, so the store's own writes hit ENOSPC.
          const filler = join(mnt, 'filler');
          await fillDisk(filler);
          let acked = 0;
          let failure: unknown;
          for (; acked < 1_000_000; acked++) {
            try {
              await store.set(`full-${acked}`, `value-${acked}`.padEnd(200, '.'));
            } catch (err) {
              failure = err;
              break;
            }
          }
          t.equal((failure as StorageError).code, 'STORAGE_IO', `${durability}: the first failing write: STORAGE_IO`);
          t.match((failure as StorageError).message, /space|ENOSPC|IO error/i, 'naming the disk error');
          t.equal(store.state, 'suspended');
          t.equal(await codeOf(store.set('refused', 'v')), 'WRITES_SUSPENDED', 'later writes are refused');
          t.equal(await store.get('early-3'), 'value-3', 'reads still work on a full disk');

          await rm(filler);
          await until('writes resume', () => store.state === 'ok');
          t.same(
            events.map((e) => e.state),
            ['suspended', 'recovered'],
          );
          await setMany(store, 'late', 2000);
          t.equal(await store.count(), 200 + acked + 2000, `${durability}: count exact after recovery`);
          await store.close();
          closed = true;

          const again = await HddEngine.open({ dataDir });
          try {
            t.same(await missingOf(again, 'early', 200), [], 'keys from before the disk filled');
            const lostFull: number[] = [];
            for (let i = 0; i < acked; i++) {
              if ((await again.get(`full-${i}`)) !== `value-${i}`.padEnd(200, '.')) lostFull.push(i);
            }
            t.same(lostFull, [], `the ${acked} writes acknowledged on the filling disk`);
            t.same(await missingOf(again, 'late', 2000), [], 'all 2000 keys written after recovery');
            t.equal(await again.count(), 200 + acked + 2000, 'count exact after reopening');
            t.equal(await entryCount(again), 200 + acked + 2000, 'and equal to the keys present');
          } finally {
            await again.close();
          }
        } finally {
          if (!closed) await store.close();
        }
      } finally {
        await unmountTmpfs(mnt);
      }
    }
  },
);

for (const how of ['deleted', 'replaced', 'deleted, found by the timer'] as const) {
  t.test(`a data directory ${how} while open: nothing more is acknowledged or answered`, async (t) => {
    const dataDir = freshDir();
    const events: HddStateEvent[] = [];
    const store = await HddEngine.open({
      dataDir,
      durability: 'always',
      // Only the timer variant lets the periodic check find it; the others leave it to the batch.
      recoveryIntervalMs: how === 'deleted, found by the timer' ? 20 : 600_000,
      onStateChange: (event) => events.push(event),
    });
    await setMany(store, 'k', 300);
    t.equal(await store.count(), 300);

    if (how === 'replaced') {
      await rename(dataDir, `${dataDir}-moved`);
      await mkdir(dataDir);
    } else {
      await rm(dataDir, { recursive: true, force: true });
    }
    if (how === 'deleted, found by the timer') {
      await until('the timer finds the directory gone', () => store.state === 'gone');
    } else {
      const refused = await store.set('after', 'v').catch((err: StorageError) => err);
      t.equal((refused as StorageError).code, 'DATA_DIR_GONE', 'the batch that found it is not acknowledged');
      t.match((refused as StorageError).message, dataDir, 'the message names the path');
      t.match((refused as StorageError).message, /restart the server/);
    }
    t.equal(store.state, 'gone');
    t.same(
      events.map((e) => e.state),
      ['gone'],
    );
    t.match(events[0]?.reason, how === 'replaced' ? /replaced/ : /deleted/);
    for (const [name, op] of [
      ['set', () => store.set('k-1', 'x')],
      ['get', () => store.get('k-1')],
      ['has', () => store.has('k-1')],
      ['ttl', () => store.ttl('k-1')],
      ['delete', () => store.delete('k-1')],
      ['count', () => store.count()],
      ['shardCounts', () => store.shardCounts()],
      ['flushAll', () => store.flushAll()],
      ['entries', () => store.entries().next()],
    ] as const) {
      t.equal(await codeOf((op as () => Promise<unknown>)()), 'DATA_DIR_GONE', `${name} is refused`);
    }
    await store.close();
    t.equal(await codeOf(store.get('k-1')), 'STORAGE_CLOSED', 'close() resolved');

    const second = await HddEngine.open({ dataDir });
    t.teardown(() => second.close());
    let readable = 0;
    for (let i = 0; i < 300; i++) if ((await second.get(`k-${i}`)) !== undefined) readable++;
    t.equal(readable, 0, 'the new directory holds none of the old keys');
    t.equal(await second.get('after'), undefined, 'nor the refused write');
    t.equal(await second.count(), readable, 'a second store on the path counts the keys it can read');
    t.equal(await entryCount(second), readable);
    await second.set('new', 'v');
    t.equal(await second.count(), 1);
  });
}
