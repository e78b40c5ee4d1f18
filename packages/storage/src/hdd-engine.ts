import { join } from 'node:path';
import { CursorTable, isStartCursor } from './cursors.js';
import { StorageError } from './errors.js';
import { isExpired } from './expiry.js';
import { globMatcher } from './glob.js';
import { shardOfBytes } from './hash.js';
import {
  COUNT_KEY,
  DATA_END,
  DATA_START,
  type Db,
  type DbOptions,
  type DirIdentity,
  dataKeyOf,
  dataKeyOfRange,
  dirIdentity,
  encodeNumber,
  ensureDir,
  HEADER_BYTES,
  identityChange,
  indexKey,
  newDb,
  openDb,
  probeDisk,
  readShardCount,
  recordExpiry,
  recordOf,
  recordOfRange,
  recoverReshard,
  shardPath,
  swapReshard,
  writeShardCount,
} from './hdd-layout.js';
import {
  HddShard,
  type IoObserver,
  ReadKind,
  type ShardFaults,
  type ShardHooks,
  type UpdateOutcome,
  WriteKind,
} from './hdd-shard.js';
import { HddSnapshot } from './hdd-snapshot.js';
import {
  checkArray,
  checkCondition,
  checkDelta,
  checkEntry,
  checkExpiresAt,
  checkKeyRange,
  checkTtl,
  checkValueRange,
  scanOptionsOf,
} from './input.js';
import { addInteger, notIntegerError, parseInteger } from './integer.js';
import {
  type Clock,
  checkDurability,
  checkExpiredHook,
  checkPositiveInteger,
  checkShards,
  type Durability,
  defaults,
  type HddEngineOptions,
  HddState,
  type HddStateEvent,
} from './options.js';
import type { Bytes, ExpiredHook, KeyValueStore, ScanOptions, ScanResult, SetCondition, StoredEntry } from './store.js';

const EMPTY = Buffer.alloc(0);
/** Records read per step of `keys()`: each step is a fresh iterator, so none is held for long. */
const KEYS_STEP = 10_000;
/** Longest stored value that can be an int64's decimal text. */
const MAX_INTEGER_TEXT = 20;
const UNCHANGED_FALSE: UpdateOutcome = Object.freeze({ record: undefined, result: false });

/** Where an open scan is: a shard, and the last data key it read there (undefined: none yet). */
interface HddScan {
  shard: number;
  after: Buffer | undefined;
}
const EVERYSEC_MS = 1000;
/** Entries copied per batch while resharding. */
const RESHARD_BATCH = 1000;
/** Keys removed per step when a count or open must clear every expired key. */
const SWEEP_ALL_STEP = 10_000;
/**
 * Keys, and bytes of keys, whose state (absent, or stored with this expiry) the engine remembers
 * after writing them, split between its shards: an overwrite of one of them needs no read (see
 * KeyStates). About 80 bytes per key of 17 bytes, so at most some 50 MiB.
 */
const KNOWN_KEYS = 512 * 1024;
const KNOWN_KEY_BYTES = 16 * 1024 * 1024;

/**
 * Test seam, not exported from the package: an options property under this key holds
 * `ShardFaults`, whose throws fail a shard's LevelDB write or reopen as a failing disk would.
 */
export const faultsKey = Symbol('hati.storage.faults');

/**
 * Test seam, not exported from the package: `engine[filtersBuiltKey]()` settles once every shard's
 * key filter build (started by open, or by a reopen after a failed write) has ended, with whether
 * each filter is ready.
 */
export const filtersBuiltKey = Symbol('hati.storage.filtersBuilt');

interface Settings {
  dataDir: string;
  shards: number;
  durability: Durability;
  clock: Clock;
  sweepIntervalMs: number;
  sweepLimit: number;
  recoveryIntervalMs: number;
  maxOpenScans: number;
  onStateChange: ((event: HddStateEvent) => void) | undefined;
  faults: ShardFaults | undefined;
  db: DbOptions;
}

/** The settings before the store is read: `shards` is undefined when the caller gave none. */
type Requested = Omit<Settings, 'shards'> & { shards: number | undefined };

function settingsOf(options: HddEngineOptions): Requested {
  if (typeof options?.dataDir !== 'string' || options.dataDir.length === 0) {
    throw new StorageError('OPTION_INVALID', 'dataDir must be a non-empty path');
  }
  if (options.onStateChange !== undefined && typeof options.onStateChange !== 'function') {
    throw new StorageError('OPTION_INVALID', 'onStateChange must be a function');
  }
  return {
    dataDir: options.dataDir,
    shards: options.shards === undefined ? undefined : checkShards(options.shards),
    durability: checkDurability(options.durability ?? defaults.durability),
    clock: options.clock ?? Date.now,
    sweepIntervalMs: checkPositiveInteger('sweepIntervalMs', options.sweepIntervalMs ?? defaults.sweepIntervalMs),
    sweepLimit: checkPositiveInteger('sweepLimit', options.sweepLimit ?? defaults.sweepLimit),
    recoveryIntervalMs: checkPositiveInteger(
      'recoveryIntervalMs',
      options.recoveryIntervalMs ?? defaults.recoveryIntervalMs,
    ),
    maxOpenScans: checkPositiveInteger('maxOpenScans', options.maxOpenScans ?? defaults.maxOpenScans),
    onStateChange: options.onStateChange,
    faults: (options as { [faultsKey]?: ShardFaults })[faultsKey],
    db: {
      cacheSize: checkPositiveInteger('cacheSize', options.cacheSize ?? defaults.cacheSize),
      writeBufferSize: checkPositiveInteger('writeBufferSize', options.writeBufferSize ?? defaults.writeBufferSize),
      maxOpenFiles: checkPositiveInteger('maxOpenFiles', options.maxOpenFiles ?? defaults.maxOpenFiles),
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
 * - After a failed disk write the whole engine stops taking writes (`WRITES_SUSPENDED`) until it
 *   has reopened the failed shards and a synced probe write succeeded; reads keep working. The
 *   whole engine rather than the one shard: a full disk is full for every shard, and a store
 *   that takes some keys and refuses others is harder to reason about.
 * - When the data directory is deleted or replaced under it, the engine answers nothing more
 *   (`DATA_DIR_GONE`): what is on disk is no longer what it holds. Only a restart helps.
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
  /** The data directory, `db/`, then each shard's directory, as they were at open. */
  readonly #dirs: DirIdentity[];
  /** Per shard, what its batches check (see #dirsOf). */
  readonly #shardDirs: DirIdentity[][];
  #sweepTimer: NodeJS.Timeout | undefined;
  #syncTimer: NodeJS.Timeout | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #state: HddState = HddState.ok;
  #reason = '';
  /** Why the last recovery attempt failed, if it did. */
  #retryFailure = '';
  /** Shards whose LevelDB handle saw a failed write and must be reopened before writes resume. */
  readonly #failed = new Set<HddShard>();
  #recovering = false;
  /** See #checkDirsThisTurn. */
  #dirsCheckedThisTurn = false;
  #onExpired: ExpiredHook | undefined;
  /** #onExpired, taking data keys and guarded, for the shards (undefined while there is none). */
  #expiredHook: ((dataKey: Buffer) => void) | undefined;
  readonly #scans: CursorTable<HddScan>;
  /**
   * Told about every LevelDB write batch of a shard (`'write'`, `ops` = the records written in it,
   * `ms` = how long the write took) and every fsync (`'fsync'`, `ops` 0), synchronously once it has
   * finished, for metrics. With durability `always` each batch is written synced, so its `'write'`
   * time includes the fsync and there is no separate `'fsync'` event; with `everysec` the fsyncs
   * are the timer's and close's. Undefined (the default) costs nothing; errors it throws are ignored.
   */
  ioObserver: IoObserver | undefined;

  private constructor(settings: Settings, lock: Db, shards: HddShard[], dirs: DirIdentity[]) {
    this.#settings = settings;
    this.#scans = new CursorTable(settings.maxOpenScans);
    this.shards = settings.shards;
    this.durability = settings.durability;
    this.dataDir = settings.dataDir;
    this.#lock = lock;
    this.#shardList = shards;
    this.#dirs = dirs;
    this.#shardDirs = dirs.slice(2).map((dir) => [dir]);
  }

  static async open(options: HddEngineOptions): Promise<HddEngine> {
    const requested = settingsOf(options);
    await ensureDir(requested.dataDir);
    // The lock is taken before anything in the directory is touched.
    const lock = newDb(join(requested.dataDir, 'hati.lock'), {
      cacheSize: 1024,
      writeBufferSize: 4096,
      maxOpenFiles: 16,
    });
    await openDb(lock, `data directory ${requested.dataDir}`);
    const shards: HddShard[] = [];
    try {
      await recoverReshard(requested.dataDir);
      const dbDir = join(requested.dataDir, 'db');
      await ensureDir(dbDir);
      const recorded = await readShardCount(dbDir);
      const settings: Settings = { ...requested, shards: requested.shards ?? recorded ?? defaults.hddShards };
      if (recorded !== undefined && recorded !== settings.shards) {
        await reshard(settings, recorded);
      } else if (recorded === undefined) {
        await writeShardCount(dbDir, settings.shards);
      }
      // The engine does not exist yet; the hooks reach it once it does.
      let engine: HddEngine | undefined;
      const hooks: ShardHooks = {
        refusal: () => (engine === undefined ? undefined : engine.#refusal()),
        failed: (shard, what, cause) =>
          engine === undefined
            ? new StorageError('STORAGE_IO', `${what} on shard ${shard.index} failed`, { cause })
            : engine.#writeFailed(shard, what, cause),
        verify: (shard) => (engine === undefined ? undefined : engine.#verify(shard)),
        faults: settings.faults,
        // Keys found expired while opening are removed before anyone could set a hook.
        onExpired: () => (engine === undefined ? undefined : engine.#expiredHook),
        observer: () => engine?.ioObserver,
      };
      for (let i = 0; i < settings.shards; i++) {
        const what = `shard ${i} of ${settings.dataDir}`;
        const shard = await HddShard.open(
          {
            index: i,
            location: shardPath(dbDir, i),
            what,
            db: settings.db,
            clock: settings.clock,
            sync: settings.durability === 'always',
            knownKeys: Math.ceil(KNOWN_KEYS / settings.shards),
            knownKeyBytes: Math.ceil(KNOWN_KEY_BYTES / settings.shards),
          },
          hooks,
        );
        shards.push(shard);
      }
      const dirs = await Promise.all(
        [settings.dataDir, dbDir, ...shards.map((shard) => shard.location)].map(dirIdentity),
      );
      engine = new HddEngine(settings, lock, shards, dirs);
      await engine.#sweepAll();
      engine.#startTimers();
      return engine;
    } catch (err) {
      await Promise.allSettled([...shards.map((shard) => shard.db.close()), lock.close()]);
      throw err;
    }
  }

  /**
   * The shard count the store in `dataDir` was written with, or undefined when there is none yet:
   * what a tool opening a stopped server's data must pass to avoid rebuilding it into another.
   */
  static async storedShards(dataDir: string): Promise<number | undefined> {
    return readShardCount(join(dataDir, 'db'));
  }

  /**
   * `ok`; `suspended` while writes are refused after a failed disk write (reads work); `gone`
   * once the data directory was deleted or replaced (nothing works until a restart).
   */
  get state(): HddState {
    return this.#state;
  }

  /** See `filtersBuiltKey`. */
  async [filtersBuiltKey](): Promise<boolean[]> {
    const ready: boolean[] = [];
    for (const shard of this.#shardList) {
      await shard.filterBuilt;
      ready.push(shard.filterReady);
    }
    return ready;
  }

  /** Why the store is suspended or gone (empty while `ok`), with the last recovery failure. */
  get stateReason(): string {
    return this.#retryFailure === '' ? this.#reason : `${this.#reason}; last try: ${this.#retryFailure}`;
  }

  /**
   * Called once for each key removed because its ttl ran out (by the sweeper, or by a call that
   * found it expired), synchronously, once the removal is written. Keep it short; errors it throws
   * are ignored. Keys that expired while the store was closed are removed by `open`, unannounced.
   * Setting anything but a function or undefined throws OPTION_INVALID.
   */
  get onExpired(): ExpiredHook | undefined {
    return this.#onExpired;
  }

  set onExpired(hook: ExpiredHook | undefined) {
    const checked = checkExpiredHook(hook);
    this.#onExpired = checked;
    this.#expiredHook =
      checked === undefined
        ? undefined
        : (dataKey) => {
            try {
              checked(dataKey.subarray(1));
            } catch {
              // Ignored: the key is removed either way, and the hook's owner has its own error handling.
            }
          };
  }

  set(key: Bytes, value: Bytes, ttlMs = 0): Promise<void> {
    return attempt(() => {
      this.#assertOpen();
      const dataKey = dataKeyOf(key);
      const expiresAt = this.#expiryOf(ttlMs);
      const record = recordOf(expiresAt, value);
      this.#assertWritable();
      return this.#shard(dataKey).write(WriteKind.set, dataKey, record, expiresAt);
    });
  }

  /**
   * `set` of the key `key[keyStart, keyEnd)` and the value `value[valueStart, valueEnd)`, ranges
   * of buffers the caller already holds (a server's input chunk): each is copied once, into the
   * record written, with no Buffer view made per argument. Same errors as `set`, and a range
   * outside its buffer is `ARGUMENT_INVALID`.
   */
  setRange(
    key: Uint8Array,
    keyStart: number,
    keyEnd: number,
    value: Uint8Array,
    valueStart: number,
    valueEnd: number,
    ttlMs: number,
  ): Promise<void> {
    return attempt(() => {
      this.#assertOpen();
      checkKeyRange(key, keyStart, keyEnd);
      checkValueRange(value, valueStart, valueEnd);
      const dataKey = dataKeyOfRange(key, keyStart, keyEnd);
      const expiresAt = this.#expiryOf(ttlMs);
      const record = recordOfRange(expiresAt, value, valueStart, valueEnd);
      this.#assertWritable();
      return this.#shard(dataKey).write(WriteKind.set, dataKey, record, expiresAt);
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
      this.#assertWritable();
      return this.#shard(dataKey).write(WriteKind.delete, dataKey, undefined, 0);
    });
  }

  setIf(key: Bytes, value: Bytes, ttlMs: number, condition: SetCondition): Promise<boolean> {
    return attempt(() => {
      this.#assertOpen();
      const dataKey = dataKeyOf(key);
      const expiresAt = this.#expiryOf(ttlMs);
      const absent = checkCondition(condition) === 'absent';
      const stored: UpdateOutcome = { record: recordOf(expiresAt, value), result: true };
      this.#assertWritable();
      return this.#shard(dataKey).update(dataKey, (live) =>
        (live === undefined) === absent ? stored : UNCHANGED_FALSE,
      );
    });
  }

  expire(key: Bytes, ttlMs: number): Promise<boolean> {
    return attempt(() => {
      this.#assertOpen();
      const dataKey = dataKeyOf(key);
      const expiresAt = this.#expiryOf(ttlMs);
      this.#assertWritable();
      return this.#shard(dataKey).update(dataKey, (live) => {
        if (live === undefined) return UNCHANGED_FALSE;
        // A copy: the record read may be one a reader of this batch was given.
        const record = Buffer.from(live);
        record.writeDoubleBE(expiresAt, 0);
        return { record, result: true };
      });
    });
  }

  incrBy(key: Bytes, delta: bigint): Promise<bigint> {
    return attempt(() => {
      this.#assertOpen();
      const dataKey = dataKeyOf(key);
      const d = checkDelta(delta);
      this.#assertWritable();
      return this.#shard(dataKey).update(dataKey, (live) => {
        let current: number | bigint = 0;
        if (live !== undefined) {
          if (live.length - HEADER_BYTES > MAX_INTEGER_TEXT) throw notIntegerError();
          // latin1 maps each byte to one character, so anything but ASCII digits fails the parse.
          current = parseInteger(live.toString('latin1', HEADER_BYTES));
        }
        const sum = addInteger(current, d);
        // A missing key gets no ttl; an existing one keeps its own.
        return { record: recordOf(live === undefined ? 0 : recordExpiry(live), String(sum)), result: BigInt(sum) };
      });
    });
  }

  /**
   * Stores `value` under `key` expiring at the absolute time `expiresAt` (ms since the epoch; 0 =
   * never), as a restore from a backup does. False, storing nothing, when that time has passed.
   */
  restore(key: Bytes, value: Bytes, expiresAt: number): Promise<boolean> {
    return attempt(async () => {
      this.#assertOpen();
      const dataKey = dataKeyOf(key);
      const at = checkExpiresAt(expiresAt);
      const record = recordOf(at, value);
      if (isExpired(at, this.#settings.clock())) return false;
      this.#assertWritable();
      await this.#shard(dataKey).write(WriteKind.set, dataKey, record, at);
      return true;
    });
  }

  /**
   * A consistent point-in-time view of every key, for a backup: one LevelDB snapshot per shard,
   * all taken now, in this synchronous call. Every write acknowledged before the call is in it
   * (a write is acknowledged only once its batch is in LevelDB) and nothing written after; a
   * batch being written meanwhile is in it whole or not at all. Read it with `read()` in bounded
   * steps; close it when done (reading to the end closes it; closing the engine does too).
   */
  snapshot(): HddSnapshot {
    this.#assertOpen();
    this.#assertPresent();
    for (const shard of this.#shardList) {
      if (shard.db.status !== 'open') {
        throw new StorageError(
          'STORAGE_IO',
          `shard ${shard.index} of ${this.dataDir} cannot be read: it was closed to recover from a failed write and could not be opened again yet`,
        );
      }
    }
    return new HddSnapshot(
      this.#shardList.map((shard) => ({
        db: shard.db,
        snapshot: shard.db.snapshot(),
        what: `shard ${shard.index} of ${this.dataDir}`,
      })),
      this.#settings.clock,
    );
  }

  /** Each key's value, read as `getBuffer` reads it (all in the same turn, so one read per shard). */
  getMany(keys: readonly Bytes[]): Promise<Array<Buffer | undefined>> {
    return attempt(() => {
      this.#assertOpen();
      const dataKeys = checkArray('keys', keys).map(dataKeyOf);
      this.#assertPresent();
      return Promise.all(
        dataKeys.map((dataKey) => this.#shard(dataKey).read(ReadKind.bytes, dataKey) as Promise<Buffer | undefined>),
      );
    });
  }

  /**
   * Stores every entry: each shard's part goes into one batch (so it is stored whole or not at
   * all, and durable as `durability` says), and the promise resolves when every part is stored.
   * A disk failure can leave some shards' parts stored and others not; the promise then rejects.
   */
  setMany(entries: ReadonlyArray<readonly [Bytes, Bytes]>, ttlMs = 0): Promise<void> {
    return attempt(async () => {
      this.#assertOpen();
      const list = checkArray('entries', entries);
      const expiresAt = this.#expiryOf(ttlMs);
      // Everything is checked before anything is queued, so a bad entry stores nothing.
      const dataKeys = new Array<Buffer>(list.length);
      const records = new Array<Buffer>(list.length);
      for (let i = 0; i < list.length; i++) {
        const [key, value] = checkEntry(list[i], i);
        dataKeys[i] = dataKeyOf(key);
        records[i] = recordOf(expiresAt, value);
      }
      this.#assertWritable();
      // Queued in one synchronous run, each shard's writes land in the same batch.
      await Promise.all(
        dataKeys.map((dataKey, i) =>
          this.#shard(dataKey).write(WriteKind.set, dataKey, records[i] as Buffer, expiresAt),
        ),
      );
    });
  }

  /**
   * Redis SCAN (see `KeyValueStore#scan`). A cursor remembers a shard and the last key read in it;
   * each call reads on from there with a fresh iterator, after the writes queued before it, so no
   * LevelDB iterator or snapshot is held between calls and writes and `flushAll` in between are
   * fine. A failed call leaves its cursor usable.
   */
  scan(cursor: string, options?: ScanOptions): Promise<ScanResult> {
    return attempt(async () => {
      this.#assertOpen();
      const start = isStartCursor(cursor);
      const { count, matches } = scanOptionsOf(options);
      const from = start ? { shard: 0, after: undefined } : this.#scans.get(cursor);
      this.#assertPresent();
      const now = this.#settings.clock();
      const state: HddScan = { shard: from.shard, after: from.after };
      const keys: Buffer[] = [];
      // Records read, plus one per shard finished (an empty shard still costs an iterator).
      let budget = count;
      while (state.shard < this.shards && budget > 0) {
        const step = await (this.#shardList[state.shard] as HddShard).scan(state.after, budget, now);
        for (const dataKey of step.live) {
          const key = dataKey.subarray(1);
          if (matches === undefined || matches(key)) keys.push(key);
        }
        budget -= step.read;
        if (step.done) {
          state.shard++;
          state.after = undefined;
          budget--;
        } else {
          state.after = step.last;
        }
      }
      this.#assertPresent();
      if (!start) this.#scans.delete(cursor);
      return { cursor: state.shard < this.shards ? this.#scans.add(state) : '0', keys };
    });
  }

  /** Every live key matching `match`, read shard by shard in bounded steps. */
  keys(match: Bytes): Promise<Buffer[]> {
    return attempt(async () => {
      this.#assertOpen();
      const matches = globMatcher(match);
      this.#assertPresent();
      const now = this.#settings.clock();
      const keys: Buffer[] = [];
      for (const shard of this.#shardList) {
        let after: Buffer | undefined;
        for (;;) {
          const step = await shard.scan(after, KEYS_STEP, now);
          for (const dataKey of step.live) {
            const key = dataKey.subarray(1);
            if (matches(key)) keys.push(key);
          }
          if (step.done) break;
          after = step.last;
        }
      }
      this.#assertPresent();
      return keys;
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
    return attempt(async () => {
      this.#assertOpen();
      // A count must never disagree with the keys present: check the directory, not only the
      // state the last batch or timer left.
      this.#checkDirsThisTurn();
      this.#assertPresent();
      const counts = await this.#sweepAll();
      this.#assertPresent();
      return counts;
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
      this.#assertWritable();
      // Every shard settles before the promise does, so that a failure leaves nothing running.
      const results = await Promise.allSettled(this.#shardList.map((shard) => shard.barrier(() => shard.clear())));
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      // The failure itself rather than the refusals it caused on the other shards.
      if (failures.length > 0) {
        throw failures.find((err) => (err as StorageError).code !== 'WRITES_SUSPENDED') ?? failures[0];
      }
      // Clearing is not a batch of writers, so the directory is checked here before "done".
      this.#checkDirs(this.#dirs);
      this.#assertPresent();
    });
  }

  async *entries(): AsyncIterableIterator<StoredEntry> {
    this.#assertOpen();
    this.#assertPresent();
    for (const shard of this.#shardList) {
      try {
        for await (const [k, rec] of shard.db.iterator({ gte: DATA_START, lt: DATA_END })) {
          const expiresAt = recordExpiry(rec);
          if (isExpired(expiresAt, this.#settings.clock())) continue;
          yield { key: k.subarray(1), value: rec.subarray(HEADER_BYTES), expiresAt };
        }
      } catch (err) {
        // E.g. a shard closed to recover from a failed write, whose reopen has failed so far.
        throw new StorageError(
          'STORAGE_IO',
          `reading shard ${shard.index} of ${this.dataDir} failed: ${(err as Error)?.message ?? String(err)}`,
          { cause: err },
        );
      }
    }
  }

  /**
   * Finishes every queued write, makes it durable (unless durability is `no`), and closes.
   * Also when suspended or gone: then nothing more is written, and closing does not throw.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#scans.clear();
    clearTimeout(this.#sweepTimer);
    clearInterval(this.#syncTimer);
    clearInterval(this.#healthTimer);
    let failure: unknown;
    await Promise.all(
      this.#shardList.map(async (shard) => {
        await shard.idle();
        if (this.durability === 'everysec' && shard.unsynced && this.#state === HddState.ok) {
          try {
            await shard.fsync();
          } catch (err) {
            failure ??= err;
          }
        }
        await shard.db.close();
        // A store that failed a write or lost its directory starts the next open afresh.
        if (this.#state === HddState.ok) await shard.saveFilter();
      }),
    );
    await this.#lock.close();
    // Everything is closed; a failed final fsync still has to be told.
    if (failure !== undefined) throw failure;
  }

  /** The absolute expiry of a ttl in ms from now (0: never), after checking the ttl. */
  #expiryOf(ttlMs: number): number {
    const ttl = checkTtl(ttlMs);
    return ttl === 0 ? 0 : this.#settings.clock() + ttl;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError('STORAGE_CLOSED', `the hdd store in ${this.dataDir} is closed`);
  }

  #assertPresent(): void {
    if (this.#state === HddState.gone) throw this.#goneError();
  }

  #assertWritable(): void {
    const refused = this.#refusal();
    if (refused !== undefined) throw refused;
  }

  #refusal(): StorageError | undefined {
    if (this.#state === HddState.ok) return undefined;
    if (this.#state === HddState.gone) return this.#goneError();
    return new StorageError(
      'WRITES_SUSPENDED',
      `writes to the hdd store in ${this.dataDir} are suspended: ${this.#reason}; ` +
        `they resume once the store has recovered (retried every ${this.#settings.recoveryIntervalMs} ms` +
        `${this.#retryFailure === '' ? '' : `; last try: ${this.#retryFailure}`})`,
    );
  }

  #goneError(): StorageError {
    return new StorageError(
      'DATA_DIR_GONE',
      `the data directory ${this.dataDir} was deleted or replaced while the store was open (${this.#reason}); ` +
        'this store no longer matches what is on disk: restart the server',
    );
  }

  /** A shard's LevelDB write failed (see HddShard#write): stop taking writes everywhere. */
  #writeFailed(shard: HddShard, what: string, cause: unknown): StorageError {
    // A write that failed because the directory went away is the directory's fault.
    this.#checkDirs(this.#dirsOf(shard));
    if (this.#state === HddState.gone) return this.#goneError();
    this.#failed.add(shard);
    const detail = (cause as Error)?.message ?? String(cause);
    if (this.#state === HddState.ok) {
      this.#reason = `a ${what} on shard ${shard.index} failed (${detail})`;
      this.#setState(HddState.suspended, 'suspended', this.#reason);
    }
    return new StorageError('STORAGE_IO', `${what} on shard ${shard.index} of ${this.dataDir} failed: ${detail}`, {
      cause,
    });
  }

  /** After a batch is written and before it is acknowledged. */
  #verify(shard: HddShard): StorageError | undefined {
    this.#checkDirs(this.#dirsOf(shard));
    return this.#state === HddState.gone ? this.#goneError() : undefined;
  }

  /**
   * What a batch checks: its shard's directory. Resolving its path walks the data directory and
   * `db/`, so deleting or replacing either shows too (as a missing or different directory), for
   * the price of one stat. The timer and `count()` check every directory.
   */
  #dirsOf(shard: HddShard): DirIdentity[] {
    return this.#shardDirs[shard.index] as DirIdentity[];
  }

  /**
   * Checks every directory once per synchronous run: counts issued together (a pipelined batch
   * of COUNTs) share one check, which costs a stat per shard. Nothing else in this process
   * runs in between, so each still sees the directories as they are when it is called.
   */
  #checkDirsThisTurn(): void {
    if (this.#dirsCheckedThisTurn) return;
    this.#checkDirs(this.#dirs);
    this.#dirsCheckedThisTurn = true;
    queueMicrotask(() => {
      this.#dirsCheckedThisTurn = false;
    });
  }

  /** Moves to `gone` when one of `dirs` is no longer the directory it was at open. */
  #checkDirs(dirs: DirIdentity[]): void {
    if (this.#state === HddState.gone) return;
    for (const dir of dirs) {
      let change = identityChange(dir);
      if (change === undefined) continue;
      // Name the outermost directory that changed: a data directory renamed away and recreated
      // leaves its shards missing, but what happened is that it was replaced.
      for (const outer of this.#dirs) {
        const outerChange = identityChange(outer);
        if (outerChange !== undefined) {
          change = outerChange;
          break;
        }
      }
      this.#reason = change;
      this.#failed.clear();
      this.#setState(HddState.gone, 'gone', change);
      return;
    }
  }

  #setState(state: HddState, event: HddStateEvent['state'], reason: string): void {
    this.#state = state;
    try {
      this.#settings.onStateChange?.({ state: event, reason });
    } catch {
      // A listener's bug must not break the store's own bookkeeping.
    }
  }

  /** Every `recoveryIntervalMs`: is the directory still there, and can writes resume? */
  #health(): void {
    if (this.#closed || this.#state === HddState.gone) return;
    this.#checkDirs(this.#dirs);
    if (this.#state === HddState.suspended && !this.#recovering) {
      this.#recovering = true;
      this.#recover().finally(() => {
        this.#recovering = false;
      });
    }
  }

  /**
   * Proves the disk takes a synced write, then reopens each failed shard; writes resume when all
   * of them reopened and took a synced probe write of their own. The first probe is a plain file,
   * so that while the disk is still full the shards keep their handles, and with them their reads.
   */
  async #recover(): Promise<void> {
    try {
      this.#settings.faults?.beforeProbe?.();
      await probeDisk(this.dataDir);
    } catch (err) {
      this.#retryFailure = `probing the disk failed (${(err as Error)?.message ?? String(err)})`;
      return;
    }
    const reopened: number[] = [];
    for (const shard of [...this.#failed]) {
      // Never reopen into a directory that is not the one opened (reopen would find no store).
      this.#checkDirs(this.#dirs);
      if (this.#closed || this.#state !== HddState.suspended) return;
      try {
        await shard.barrier(() => shard.reopen());
        this.#failed.delete(shard);
        reopened.push(shard.index);
      } catch (err) {
        this.#checkDirs(this.#dirs);
        this.#retryFailure = `reopening shard ${shard.index} failed (${(err as Error)?.message ?? String(err)})`;
        return;
      }
    }
    if (this.#closed || this.#state !== HddState.suspended || this.#failed.size > 0) return;
    const was = this.#reason;
    this.#reason = '';
    this.#retryFailure = '';
    this.#setState(
      HddState.ok,
      'recovered',
      `writes resume: shard ${reopened.join(', ')} reopened and a synced probe write succeeded (after ${was})`,
    );
  }

  #shard(dataKey: Buffer): HddShard {
    return this.#shardList[shardOfBytes(dataKey, 1, this.shards)] as HddShard;
  }

  #read<T>(kind: (typeof ReadKind)[keyof typeof ReadKind], key: Bytes): Promise<T> {
    return attempt(() => {
      this.#assertOpen();
      const dataKey = dataKeyOf(key);
      this.#assertPresent();
      return this.#shard(dataKey).read(kind, dataKey);
    });
  }

  /**
   * Removes every key that has expired by now, after the writes queued before, and returns
   * each shard's count, which is then exact. While writes are refused, counts the expired keys
   * instead of removing them.
   */
  #sweepAll(): Promise<number[]> {
    const now = this.#settings.clock();
    if (this.#state !== HddState.ok) {
      return Promise.all(this.#shardList.map((shard) => shard.barrier(() => shard.liveCount(now))));
    }
    return Promise.all(
      this.#shardList.map((shard) =>
        // Nothing queued and nothing expired: the stored count is exact now, no need to queue.
        !shard.busy && !isExpired(shard.nextExpiry, now)
          ? shard.count
          : shard.barrier(async () => {
              // Writes may have been suspended while this waited in the queue.
              if (this.#state !== HddState.ok) return shard.liveCount(now);
              while (isExpired(shard.nextExpiry, now) && (await shard.sweep(now, SWEEP_ALL_STEP)));
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
        // While writes are refused, expired keys stay on disk; reads and counts skip them.
        if (this.#state !== HddState.ok) break;
        if (shard.sweeping || !isExpired(shard.nextExpiry, now)) continue;
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
        if (this.#state !== HddState.ok) return;
        for (const shard of this.#shardList) {
          if (!shard.unsynced) continue;
          shard.unsynced = false;
          // A refused or failed fsync leaves the shard's writes unsynced: the next tick (or close) tries again.
          shard
            .barrier(() => shard.fsync())
            .catch(() => {
              shard.unsynced = true;
            });
        }
      }, EVERYSEC_MS);
      this.#syncTimer.unref();
    }
    this.#healthTimer = setInterval(() => this.#health(), this.#settings.recoveryIntervalMs);
    this.#healthTimer.unref();
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
        if (isExpired(expiresAt, now)) continue;
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
