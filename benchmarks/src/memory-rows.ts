import { setImmediate as nextTurn } from 'node:timers/promises';
import { MemoryEngine } from '@hati/storage';
import { Bench } from 'tinybench';
import { config } from './config.js';
import { ORDER_MASK, randomOrder, uuids } from './keys.js';
import { type Measured, type Row, row, valueRow } from './report.js';

// The synchronous rows: the memory engine and a bare Map, the limit for any in-memory engine.
// Every tinybench iteration runs `config.batch` ops and the mean is divided by the batch, so
// the timer's own cost (tens of ns) is spread over a thousand ops.

const B = config.batch;

/** Keeps results alive so that the JIT cannot drop the calls that produce them. */
let sink = 0;

interface Plan {
  /** Fixed iteration counts (the set rows); otherwise tinybench's time budget applies. */
  batches?: { warmup: number; run: number };
  /** Runs after every iteration, outside the timed region. */
  afterEach?: () => void;
}

async function measure(name: string, fn: () => void, plan: Plan = {}): Promise<Measured> {
  const fixed = plan.batches;
  const bench = new Bench({
    time: fixed === undefined ? config.memory.timeMs : 0,
    iterations: fixed?.run ?? 64,
    warmupTime: fixed === undefined ? config.memory.warmupMs : 0,
    warmupIterations: fixed?.warmup ?? 16,
    throws: true,
  });
  const afterEach = plan.afterEach;
  bench.add(name, fn, {
    async: false,
    // Between batches the event loop turns, so the engine's expiry timer runs as it would in
    // a server; its work is not in the timed region.
    afterEach: async () => {
      afterEach?.();
      await nextTurn();
    },
  });
  await bench.run();
  const result = bench.getTask(name)?.result;
  if (result === undefined || result.state !== 'completed') {
    throw new Error(`${name}: tinybench finished in state ${result?.state ?? 'missing'}`);
  }
  const nsPerOp = (result.latency.mean * 1e6) / B;
  return {
    nsPerOp,
    opsPerSec: 1e9 / nsPerOp,
    rmePercent: Number(result.latency.rme.toFixed(2)),
    ops: result.latency.samplesCount * B,
  };
}

/** The interface both subjects share here: the memory engine and a Map adapted to it. */
interface Subject {
  set(key: string, value: string, ttlMs: number): void;
  get(key: string): unknown;
  has(key: string): boolean;
  delete(key: string): boolean;
  count(): number;
  close?(): Promise<void>;
}

function check(name: string, ok: boolean, what: string): void {
  if (!ok) throw new Error(`${name}: ${what}`);
}

function preload(subject: Subject, keys: readonly string[], values: readonly string[]): void {
  for (let i = 0; i < keys.length; i++) subject.set(keys[i] as string, values[i] as string, 0);
}

/** Sets a fresh key (not in the store) with a fresh value per op. */
async function setRow(prefix: string, subject: () => Subject, ttlMs: number): Promise<Measured> {
  const name = `${prefix}_Set_Ttl${ttlMs}`;
  const { setWarmupBatches: warmup, setBatches: run } = config.memory;
  const keys = uuids((warmup + run) * B);
  const values = uuids((warmup + run) * B);
  const store = subject();
  preload(store, uuids(config.preloadKeys), uuids(config.preloadKeys));
  let cursor = 0;
  const measured = await measure(
    name,
    () => {
      const end = cursor + B;
      for (let i = cursor; i < end; i++) store.set(keys[i] as string, values[i] as string, ttlMs);
      cursor = end;
    },
    { batches: { warmup, run } },
  );
  check(name, cursor === keys.length, `used ${cursor} of ${keys.length} fresh keys`);
  if (ttlMs === 0) check(name, store.count() === config.preloadKeys + keys.length, 'a set did not add a key');
  // Closing also stops the engine's expiry timer, which would keep the store from being collected.
  await store.close?.();
  return measured;
}

async function readRow(name: string, order: readonly string[], read: (key: string) => boolean): Promise<Measured> {
  let c = 0;
  let misses = 0;
  const measured = await measure(name, () => {
    for (let i = 0; i < B; i++) {
      if (!read(order[c++ & ORDER_MASK] as string)) misses++;
    }
  });
  check(name, misses === 0, `${misses} reads missed a preloaded key`);
  return measured;
}

/**
 * Deletes live keys only: the preloaded keys form batches; each iteration deletes one whole
 * batch, and the key set back right after (untimed), so a key is deleted again only after
 * every other batch has been, and the store stays at about `preloadKeys`.
 */
async function deleteRow(name: string, store: Subject, keys: readonly string[], values: readonly string[]) {
  const batches = Math.floor(keys.length / B);
  let next = 0;
  let misses = 0;
  let last = -1;
  const measured = await measure(
    name,
    () => {
      const start = next * B;
      for (let i = start; i < start + B; i++) {
        if (!store.delete(keys[i] as string)) misses++;
      }
      last = next;
      next = (next + 1) % batches;
    },
    {
      afterEach: () => {
        const start = last * B;
        for (let i = start; i < start + B; i++) store.set(keys[i] as string, values[i] as string, 0);
      },
    },
  );
  check(name, misses === 0, `${misses} deletes found no live key`);
  check(name, store.count() === keys.length, 'the store lost keys');
  return measured;
}

function countRow(name: string, store: Subject): Promise<Measured> {
  return measure(name, () => {
    for (let i = 0; i < B; i++) sink += store.count();
  });
}

function mapSubject(map = new Map<string, string>()): Subject {
  return {
    set: (k, v) => void map.set(k, v),
    get: (k) => map.get(k),
    has: (k) => map.has(k),
    delete: (k) => map.delete(k),
    count: () => map.size,
  };
}

/** Rows for the memory engine and the Map baseline, run in pairs so both see the same machine state. */
export async function memoryRows(log: (line: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const add = (r: Row) => {
    rows.push(r);
    log(`  ${r.name}: ${r.nsPerOp === null ? `${r.value?.toFixed(2)} ${r.unit}` : `${r.nsPerOp.toFixed(1)} ns/op`}`);
  };
  const keys = uuids(config.preloadKeys);
  const values = uuids(config.preloadKeys);
  const order = randomOrder(keys);

  const engine = new MemoryEngine();
  const map = new Map<string, string>();
  preload(engine, keys, values);
  for (let i = 0; i < keys.length; i++) map.set(keys[i] as string, values[i] as string);

  add(row('MemoryStorage_Set_Ttl0', await setRow('MemoryStorage', () => new MemoryEngine(), 0), ns('<=', 1000)));
  add(row('Map_Set', await setRow('Map', () => mapSubject(), 0), null));
  add(row('MemoryStorage_Set_Ttl10', await setRow('MemoryStorage', () => new MemoryEngine(), 10), ns('<=', 1200)));

  const get = await readRow('MemoryStorage_Get', order, (k) => engine.get(k) !== undefined);
  add(row('MemoryStorage_Get', get, ns('<=', 150)));
  const mapGet = await readRow('Map_Get', order, (k) => map.get(k) !== undefined);
  add(row('Map_Get', mapGet, null));
  add(
    row('MemoryStorage_GetBuffer', await readRow('MemoryStorage_GetBuffer', order, (k) => getBuffer(engine, k)), null),
  );
  add(row('MemoryStorage_Has', await readRow('MemoryStorage_Has', order, (k) => engine.has(k)), ns('<=', 150)));
  add(row('Map_Has', await readRow('Map_Has', order, (k) => map.has(k)), null));
  add(row('MemoryStorage_CountKeys', await countRow('MemoryStorage_CountKeys', engine), ns('<=', 50)));
  add(row('Map_Size', await countRow('Map_Size', mapSubject(map)), null));
  add(row('MemoryStorage_Delete', await deleteRow('MemoryStorage_Delete', engine, keys, values), ns('<=', 200)));
  add(row('Map_Delete', await deleteRow('Map_Delete', mapSubject(map), keys, values), null));

  const ratio = (get.nsPerOp as number) / (mapGet.nsPerOp as number);
  add(valueRow('MemoryStorage_Get/Map_Get', ratio, 'ratio', { metric: 'value', op: '<=', limit: 3 }, 'ns/op ratio'));
  await engine.close();
  if (sink === -1) log('unreachable');
  return rows;
}

function getBuffer(engine: MemoryEngine, key: string): boolean {
  const buffer = engine.getBuffer(key);
  if (buffer === undefined) return false;
  sink += buffer.length;
  return true;
}

function ns(op: '<=' | '>=', limit: number) {
  return { metric: 'nsPerOp', op, limit } as const;
}
