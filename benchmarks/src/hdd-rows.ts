import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Durability, HddEngine } from '@hati/storage';
import { ClassicLevel } from 'classic-level';
import { config } from './config.js';
import { ORDER_MASK, randomOrder, uuids } from './keys.js';
import { type Measured, type Row, row, valueRow } from './report.js';

// The asynchronous rows: a closed loop keeps `inFlight` operations outstanding (each finished
// op starts the next one), for a fixed time or until the row runs out of keys. ns/op is
// elapsed time / ops, the inverse of throughput, not the latency of one op.

const { inFlight } = config.hdd;

type Op = (i: number) => Promise<unknown>;

/** Runs op(from), op(from + 1), ... with `inFlight` outstanding, until `to` or `timeMs`. */
async function closedLoop(op: Op, from: number, to: number, timeMs: number): Promise<{ next: number; ms: number }> {
  let next = from;
  const start = performance.now();
  const deadline = start + timeMs;
  const worker = async (): Promise<void> => {
    while (next < to && performance.now() < deadline) await op(next++);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { next, ms: performance.now() - start };
}

/** A short warm-up, then the measured loop; op indexes continue, so no key is reused. */
async function measure(op: Op, total: number): Promise<Measured> {
  const warm = await closedLoop(op, 0, Math.floor(total / 10), config.hdd.warmupMs);
  const run = await closedLoop(op, warm.next, total, config.hdd.timeMs);
  const ops = run.next - warm.next;
  const nsPerOp = (run.ms * 1e6) / ops;
  return { nsPerOp, opsPerSec: 1e9 / nsPerOp, ops };
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'hati-bench-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function withEngine<T>(durability: Durability, fn: (engine: HddEngine) => Promise<T>): Promise<T> {
  return withDir(async (dataDir) => {
    const engine = await HddEngine.open({ dataDir, durability });
    try {
      return await fn(engine);
    } finally {
      await engine.close();
    }
  });
}

/** Writes keys[i] → values[i] for every i, `inFlight` at a time. */
async function fill(
  put: (key: string, value: string) => Promise<unknown>,
  keys: readonly string[],
  values: readonly string[],
) {
  await closedLoop((i) => put(keys[i] as string, values[i] as string), 0, keys.length, Number.POSITIVE_INFINITY);
}

function check(name: string, ok: boolean, what: string): void {
  if (!ok) throw new Error(`${name}: ${what}`);
}

const opsPerSec = (limit: number) => ({ metric: 'opsPerSec', op: '>=', limit }) as const;

type Add = (r: Row) => void;

async function setRow(add: Add, name: string, durability: Durability, ttlMs: number, limit: number | null) {
  // Fresh keys for every op: the row writes into a new store, after the usual preload.
  const keys = uuids(config.hdd.setKeys);
  const values = uuids(config.hdd.setKeys);
  const measured = await withEngine(durability, async (engine) => {
    await fill((k, v) => engine.set(k, v), ...preload());
    const m = await measure((i) => engine.set(keys[i] as string, values[i] as string, ttlMs), keys.length);
    if (ttlMs === 0)
      check(name, (await engine.count()) >= config.preloadKeys + (m.ops ?? 0), 'a set did not add a key');
    return m;
  });
  add(row(name, measured, limit === null ? null : opsPerSec(limit), `durability ${durability}`));
}

async function readRows(add: Add): Promise<void> {
  await withEngine('no', async (engine) => {
    const [keys, values] = preload();
    await fill((k, v) => engine.set(k, v), keys, values);
    const order = randomOrder(keys);
    const key = (i: number) => order[i & ORDER_MASK] as string;
    let misses = 0;
    const get = await measure(async (i) => {
      if ((await engine.get(key(i))) === undefined) misses++;
    }, Number.MAX_SAFE_INTEGER);
    check('HddStorage_Get', misses === 0, `${misses} gets missed a preloaded key`);
    add(row('HddStorage_Get', get, opsPerSec(150_000), 'durability no'));
    const has = await measure(async (i) => {
      if (!(await engine.has(key(i)))) misses++;
    }, Number.MAX_SAFE_INTEGER);
    check('HddStorage_Has', misses === 0, `${misses} has missed a preloaded key`);
    add(row('HddStorage_Has', has, null, 'durability no'));
    let wrong = 0;
    const count = await measure(async () => {
      if ((await engine.count()) !== keys.length) wrong++;
    }, Number.MAX_SAFE_INTEGER);
    check('HddStorage_CountKeys', wrong === 0, `${wrong} counts were wrong`);
    add(row('HddStorage_CountKeys', count, null, 'durability no'));
  });
}

async function deleteRow(add: Add): Promise<void> {
  await withEngine('no', async (engine) => {
    // Every delete removes a live key: the pool is written first and each key deleted once.
    const pool = uuids(config.hdd.deletePool);
    await fill((k, v) => engine.set(k, v), pool, pool);
    let misses = 0;
    const del = await measure(async (i) => {
      if (!(await engine.delete(pool[i] as string))) misses++;
    }, pool.length);
    check('HddStorage_Delete', misses === 0, `${misses} deletes found no live key`);
    add(row('HddStorage_Delete', del, null, `durability no, ${pool.length} live keys, each deleted once`));
  });
}

/** The floor under the engine: LevelDB itself, one awaited call per op, no batching. */
async function withLevel<T>(fn: (db: ClassicLevel<string, string>) => Promise<T>): Promise<T> {
  return withDir(async (dir) => {
    const db = new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  });
}

async function levelPutRow(add: Add): Promise<void> {
  const keys = uuids(config.hdd.setKeys);
  const values = uuids(config.hdd.setKeys);
  const measured = await withLevel((db) => measure((i) => db.put(keys[i] as string, values[i] as string), keys.length));
  add(row('ClassicLevel_Put', measured, null, 'raw classic-level put, sync false'));
}

async function levelGetRow(add: Add): Promise<void> {
  const measured = await withLevel(async (db) => {
    const [keys, values] = preload();
    await fill((k, v) => db.put(k, v), keys, values);
    const order = randomOrder(keys);
    let misses = 0;
    const m = await measure(async (i) => {
      if ((await db.get(order[i & ORDER_MASK] as string)) === undefined) misses++;
    }, Number.MAX_SAFE_INTEGER);
    check('ClassicLevel_Get', misses === 0, `${misses} gets missed`);
    return m;
  });
  add(row('ClassicLevel_Get', measured, null, 'raw classic-level get'));
}

/**
 * CPU per SET against the shard count: 100,000 keys overwritten in random order, `inFlight` SETs
 * outstanding, for a store of one shard and one of `OTHER_SHARDS`, alternating, `shardRounds`
 * rounds each. CPU is the whole process's (`process.cpuUsage`: LevelDB's threads included), which
 * this shared machine moves far less than it moves time.
 */
const OTHER_SHARDS = 8;

async function shardRows(add: Add, durability: Durability): Promise<void> {
  const keyspace = 100_000;
  const keys = Array.from({ length: keyspace }, (_, i) => `key:${String(i).padStart(12, '0')}`);
  const value = 'v123456789abcdef';
  const cpu: Record<number, number[]> = { 1: [], [OTHER_SHARDS]: [] };
  for (let round = 0; round < config.hdd.shardRounds; round++) {
    for (const shards of [1, OTHER_SHARDS]) {
      await withDir(async (dataDir) => {
        const engine = await HddEngine.open({ dataDir, durability, shards });
        try {
          await fill((k, v) => engine.set(k, v), keys, keys);
          const order = randomOrder(keys);
          const n = config.hdd.shardSets;
          const before = process.cpuUsage();
          await closedLoop((i) => engine.set(order[i & ORDER_MASK] as string, value), 0, n, Number.POSITIVE_INFINITY);
          const used = process.cpuUsage(before);
          cpu[shards]?.push((used.user + used.system) / n);
          check(`shards ${shards}`, (await engine.count()) === keyspace, 'an overwrite changed the count');
        } finally {
          await engine.close();
        }
      });
    }
  }
  const note = (us: number[]) => `µs of CPU per SET, ${durability}; rounds ${us.map((x) => x.toFixed(2)).join(' ')}`;
  const one = cpu[1] as number[];
  const other = cpu[OTHER_SHARDS] as number[];
  add(valueRow(`HddStorage_Set_${durability}_1_shard_cpu`, Math.min(...one), 'µs', null, note(one)));
  add(valueRow(`HddStorage_Set_${durability}_${OTHER_SHARDS}_shards_cpu`, Math.min(...other), 'µs', null, note(other)));
}

/**
 * The hdd rows in groups. The storage benchmark runs each group in a process of its own: how
 * fast an engine writes depends on what the process ran before (see README), and a server
 * process holds one engine, so every group starts from the state a server starts from.
 */
export const hddGroups: Readonly<Record<string, (add: Add) => Promise<void>>> = {
  'set-ttl0': (add) => setRow(add, 'HddStorage_Set_Ttl0', 'no', 0, 300_000),
  'set-ttl10': (add) => setRow(add, 'HddStorage_Set_Ttl10', 'no', 10, 300_000),
  'set-everysec': (add) => setRow(add, 'HddStorage_Set_Ttl0_everysec', 'everysec', 0, null),
  'set-always': (add) => setRow(add, 'HddStorage_Set_Ttl0_always', 'always', 0, 20_000),
  read: readRows,
  delete: deleteRow,
  'level-put': levelPutRow,
  'level-get': levelGetRow,
  reopen: async (add) => add(await reopenRow()),
  'shards-everysec': (add) => shardRows(add, 'everysec'),
  'shards-always': (add) => shardRows(add, 'always'),
};

function preload(): [string[], string[]] {
  return [uuids(config.preloadKeys), uuids(config.preloadKeys)];
}

/** Time to open a store holding `reopenKeys` keys (LevelDB replays its logs, the engine reads counts). */
async function reopenRow(): Promise<Row> {
  const n = config.reopenKeys;
  const name = `HddStorage_Reopen_${n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n}`;
  return withDir(async (dataDir) => {
    const writer = await HddEngine.open({ dataDir, durability: 'no' });
    const start = performance.now();
    await closedLoop((i) => writer.set(`${i}:${randomUUID()}`, randomUUID()), 0, n, Number.POSITIVE_INFINITY);
    const writeMs = performance.now() - start;
    await writer.close();
    const t0 = performance.now();
    const engine = await HddEngine.open({ dataDir, durability: 'no' });
    const openMs = performance.now() - t0;
    try {
      check(name, (await engine.count()) === n, 'the reopened store has another key count');
    } finally {
      await engine.close();
    }
    const note = `${n} keys written at ${Math.round((n / writeMs) * 1000)} ops/s, then closed and reopened`;
    return valueRow(name, openMs, 'ms', { metric: 'value', op: '<', limit: 3000 }, note);
  });
}
