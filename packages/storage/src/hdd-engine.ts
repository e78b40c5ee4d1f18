import { join } from 'node:path';
import { StorageError } from './errors.js';
import { shardOfBytes } from './hash.js';
import {
  COUNT_KEY,
  DATA_END,
  DATA_START,
  type Db,
  dataKeyOf,
  encodeNumber,
  ensureDir,
  HEADER_BYTES,
  indexKey,
  newDb,
  openDb,
  readShardCount,
  recordExpiry,
  recordOf,
  recoverReshard,
  shardPath,
  swapReshard,
  writeShardCount,
} from './hdd-layout.js';
import { HddShard, ReadKind, WriteKind } from './hdd-shard.js';
import { checkTtl } from './input.js';
import {
  type Clock,
  checkDurability,
  checkPositiveInteger,
  checkShards,
  type Durability,
  defaults,
  type HddEngineOptions,
} from './options.js';
import type { Bytes, KeyValueStore, StoredEntry } from './store.js';

const EMPTY = Buffer.alloc(0);
const EVERYSEC_MS = 1000;
/** Entries copied per batch while resharding. */
const RESHARD_BATCH = 1000;
/** Keys removed per step when a count or open must clear every expired key. */
const SWEEP_ALL_STEP = 10_000;

interface Settings {
  dataDir: string;
  shards: number;
  durability: Durability;
  clock: Clock;
  sweepIntervalMs: number;
  sweepLimit: number;
  db: { cacheSize: number; writeBufferSize: number };
}

function settingsOf(options: HddEngineOptions): Settings {
  if (typeof options?.dataDir !== 'string' || options.dataDir.length === 0) {
    throw new StorageError('OPTION_INVALID', 'dataDir must be a non-empty path');
  }
  return {
    dataDir: options.dataDir,
    shards: checkShards(options.shards ?? defaults.shards),
    durability: checkDurability(options.durability ?? defaults.durability),
    clock: options.clock ?? Date.now,
    sweepIntervalMs: checkPositiveInteger('sweepIntervalMs', options.sweepIntervalMs ?? defaults.sweepIntervalMs),
    sweepLimit: checkPositiveInteger('sweepLimit', options.sweepLimit ?? defaults.sweepLimit),
    db: {
      cacheSize: checkPositiveInteger('cacheSize', options.cacheSize ?? defaults.cacheSize),
      writeBufferSize: checkPositiveInteger('writeBufferSize', options.writeBufferSize ?? defaults.writeBufferSize),
    },
  };
}

/** Runs `fn`, turning a synchronous throw (bad input, closed store) into a rejection. */
function attempt<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * The persistent engine: one LevelDB per shard under `<dataDir>/db/kv_shard_<i>`.
 *
 * - Each value is stored with its expiry, and an expiry index orders keys by expiry, so ttls
 *   survive a restart, keys that expired while the store was closed are gone once `open`
 *   resolves, and active expiry reads only what has expired.
 * - `count()` is exact and costs O(shards): each shard keeps its count in the same LevelDB
 *   batch as the writes that change it.
 * - Writes are group-committed per shard; `durability` decides when their promise resolves
 *   (see `Durability`).
 * - Opening with another shard count than the store was written with rebuilds the store into
 *   the new layout first; a crash during that leaves the old or the new store, whole.
 *
 * Create one with `await HddEngine.open(options)`.
 */
export class HddEngine implements KeyValueStore {
  readonly type = 'hdd';
  readonly supports = { persistence: true } as const;
  readonly shards: number;
  readonly durability: Durability;
  readonly dataDir: string;
  readonly #settings: Settings;
  readonly #lock: Db;
  readonly #shardList: HddShard[];
  #sweepTimer: NodeJS.Timeout | undefined;
  #syncTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(settings: Settings, lock: Db, shards: HddShard[]) {
    this.#settings = settings;
    this.shards = settings.shards;
    this.durability = settings.durability;
    this.dataDir = settings.dataDir;
    this.#lock = lock;
    this.#shardList = shards;
  }

  static async open(options: HddEngineOptions): Promise<HddEngine> {
    const settings = settingsOf(options);
    await ensureDir(settings.dataDir);
    // The lock is taken before anything in the directory is touched.
    const lock = newDb(join(settings.dataDir, 'hati.lock'), { cacheSize: 1024, writeBufferSize: 4096 });
    await openDb(lock, `data directory ${settings.dataDir}`);
    const opened: Db[] = [];
    try {
      await recoverReshard(settings.dataDir);
      const dbDir = join(settings.dataDir, 'db');
      await ensureDir(dbDir);
      const recorded = await readShardCount(dbDir);
      if (recorded !== undefined && recorded !== settings.shards) {
        await reshard(settings, recorded);
      } else if (recorded === undefined) {
        await writeShardCount(dbDir, settings.shards);
      }
      const shards: HddShard[] = [];
      for (let i = 0; i < settings.shards; i++) {
        const db = newDb(shardPath(dbDir, i), settings.db);
        await openDb(db, `shard ${i} of ${settings.dataDir}`);
        opened.push(db);
        const shard = new HddShard(db, settings.clock, settings.durability === 'always');
        await shard.load();
        shards.push(shard);
      }
      const engine = new HddEngine(settings, lock, shards);
      await engine.#sweepAll();
      engine.#startTimers();
      return engine;
    } catch (err) {
      await Promise.allSettled([...opened.map((db) => db.close()), lock.close()]);
      throw err;
    }
  }

  set(key: Bytes, value: Bytes, ttlMs = 0): Promise<void> {
    return attempt(() => {
      this.#assertOpen();
      const dataKey = dataKeyOf(key);
      const ttl = checkTtl(ttlMs);
      const expiresAt = ttl === 0 ? 0 : this.#settings.clock() + ttl;
      return this.#shard(dataKey).write(WriteKind.set, dataKey, recordOf(expiresAt, value), expiresAt);
    });
  }

  get(key: Bytes): Promise<string | undefined> {
    return this.#read(ReadKind.text, key);
  }

  getBuffer(key: Bytes): Promise<Buffer | undefined> {
    return this.#read(ReadKind.bytes, key);
  }

  has(key: Bytes): Promise<boolean> {
    return this.#read(ReadKind.has, key);
  }

  ttl(key: Bytes): Promise<number | undefined> {
    return this.#read(ReadKind.ttl, key);
  }

  delete(key: Bytes): Promise<boolean> {
    return attempt(() => {
      this.#assertOpen();
      const dataKey = dataKeyOf(key);
      return this.#shard(dataKey).write(WriteKind.delete, dataKey, undefined, 0);
    });
  }

  count(): Promise<number> {
    return attempt(async () => {
      const counts = await this.shardCounts();
      return counts.reduce((sum, n) => sum + n, 0);
    });
  }

  /** Live keys per shard, after every write queued before this call. */
  shardCounts(): Promise<number[]> {
    return attempt(() => {
      this.#assertOpen();
      return this.#sweepAll();
    });
  }

  /**
   * Records on disk, including expired ones that the sweeper has not removed yet.
   * For monitoring; `count()` is the number of live keys.
   */
  heldKeys(): number {
    let total = 0;
    for (const shard of this.#shardList) total += shard.count;
    return total;
  }

  flushAll(): Promise<void> {
    return attempt(async () => {
      this.#assertOpen();
      await Promise.all(this.#shardList.map((shard) => shard.barrier(() => shard.clear())));
    });
  }

  async *entries(): AsyncIterableIterator<StoredEntry> {
    this.#assertOpen();
    for (const shard of this.#shardList) {
      for await (const [k, rec] of shard.db.iterator({ gte: DATA_START, lt: DATA_END })) {
        const expiresAt = recordExpiry(rec);
        if (expiresAt !== 0 && expiresAt <= this.#settings.clock()) continue;
        yield { key: k.subarray(1), value: rec.subarray(HEADER_BYTES), expiresAt };
      }
    }
  }

  /** Finishes every queued write, makes it durable (unless durability is `no`), and closes. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    clearInterval(this.#syncTimer);
    await Promise.all(
      this.#shardList.map(async (shard) => {
        await shard.idle();
        if (this.durability === 'everysec' && shard.unsynced) await shard.fsync();
        await shard.db.close();
      }),
    );
    await this.#lock.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError('STORAGE_CLOSED', `the hdd store in ${this.dataDir} is closed`);
  }

  #shard(dataKey: Buffer): HddShard {
    return this.#shardList[shardOfBytes(dataKey, 1, this.shards)] as HddShard;
  }

  #read<T>(kind: (typeof ReadKind)[keyof typeof ReadKind], key: Bytes): Promise<T> {
    return attempt(() => {
      this.#assertOpen();
      const dataKey = dataKeyOf(key);
      return this.#shard(dataKey).read(kind, dataKey);
    });
  }

  /**
   * Removes every key that has expired by now, after the writes queued before, and returns
   * each shard's count, which is then exact.
   */
  #sweepAll(): Promise<number[]> {
    const now = this.#settings.clock();
    return Promise.all(
      this.#shardList.map((shard) =>
        // Nothing queued and nothing expired: the stored count is exact now, no need to queue.
        !shard.busy && shard.nextExpiry > now
          ? shard.count
          : shard.barrier(async () => {
              while (shard.nextExpiry <= now && (await shard.sweep(now, SWEEP_ALL_STEP)));
              return shard.count;
            }),
      ),
    );
  }

  #startTimers(): void {
    const { sweepIntervalMs, sweepLimit, clock } = this.#settings;
    const sweep = () => {
      if (this.#closed) return;
      const now = clock();
      let pending = 0;
      let more = false;
      for (const shard of this.#shardList) {
        if (shard.sweeping || shard.nextExpiry > now) continue;
        shard.sweeping = true;
        pending++;
        shard
          .barrier(() => shard.sweep(now, sweepLimit))
          .then(
            (m) => {
              more ||= m;
            },
            () => {},
          )
          .finally(() => {
            shard.sweeping = false;
            if (--pending === 0) schedule(more ? 0 : sweepIntervalMs);
          });
      }
      if (pending === 0) schedule(sweepIntervalMs);
    };
    const schedule = (delay: number) => {
      if (this.#closed) return;
      this.#sweepTimer = setTimeout(sweep, delay);
      this.#sweepTimer.unref();
    };
    schedule(sweepIntervalMs);
    if (this.durability === 'everysec') {
      this.#syncTimer = setInterval(() => {
        for (const shard of this.#shardList) {
          if (!shard.unsynced) continue;
          shard.unsynced = false;
          shard.barrier(() => shard.fsync()).catch(() => {});
        }
      }, EVERYSEC_MS);
      this.#syncTimer.unref();
    }
  }
}

/**
 * Rebuilds the store written with `from` shards into `settings.shards` shards: copies every
 * live key (with its expiry) into `db.reshard/`, fsyncs it, then swaps it in.
 */
async function reshard(settings: Settings, from: number): Promise<void> {
  const dbDir = join(settings.dataDir, 'db');
  const buildDir = join(settings.dataDir, 'db.reshard');
  const now = settings.clock();
  const sources: Db[] = [];
  const targets: Db[] = [];
  try {
    for (let i = 0; i < from; i++) {
      const db = newDb(shardPath(dbDir, i), settings.db);
      await openDb(db, `shard ${i} of ${settings.dataDir}`);
      sources.push(db);
    }
    await ensureDir(buildDir);
    for (let i = 0; i < settings.shards; i++) {
      const db = newDb(shardPath(buildDir, i), settings.db);
      await openDb(db, `new shard ${i} of ${settings.dataDir}`);
      targets.push(db);
    }
    const counts = new Array<number>(settings.shards).fill(0);
    const batches: Array<Array<{ type: 'put'; key: Buffer; value: Buffer }>> = targets.map(() => []);
    const flush = async (i: number) => {
      const batch = batches[i] as Array<{ type: 'put'; key: Buffer; value: Buffer }>;
      batches[i] = [];
      await (targets[i] as Db).batch(batch);
    };
    for (const source of sources) {
      for await (const [k, rec] of source.iterator({ gte: DATA_START, lt: DATA_END })) {
        const expiresAt = recordExpiry(rec);
        if (expiresAt !== 0 && expiresAt <= now) continue;
        const target = shardOfBytes(k, 1, settings.shards);
        const batch = batches[target] as Array<{ type: 'put'; key: Buffer; value: Buffer }>;
        batch.push({ type: 'put', key: k, value: rec });
        if (expiresAt !== 0) batch.push({ type: 'put', key: indexKey(expiresAt, k), value: EMPTY });
        counts[target] = (counts[target] as number) + 1;
        if (batch.length >= RESHARD_BATCH) await flush(target);
      }
    }
    for (let i = 0; i < targets.length; i++) {
      await flush(i);
      await (targets[i] as Db).put(COUNT_KEY, encodeNumber(counts[i] as number), { sync: true });
    }
  } finally {
    await Promise.allSettled([...sources, ...targets].map((db) => db.close()));
  }
  // The description written last marks the new store complete (see recoverReshard).
  await writeShardCount(buildDir, settings.shards);
  await swapReshard(settings.dataDir);
}
