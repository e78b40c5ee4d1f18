import { StorageError } from './errors.js';
import { isExpired, remainingMs } from './expiry.js';
import { ABSENT, KeyFilter, KeyStates, UNKNOWN } from './hdd-known-keys.js';
import {
  COUNT_KEY,
  DATA_END,
  DATA_START,
  type Db,
  type DbOptions,
  DIRTY_KEY,
  dataKeyFrom,
  encodeNumber,
  HEADER_BYTES,
  INDEX_END,
  INDEX_START,
  indexBound,
  indexKey,
  newDb,
  openDb,
  recordExpiry,
  SYNC_KEY,
  saveFilter,
  takeFilter,
} from './hdd-layout.js';
import type { Clock } from './options.js';

const EMPTY = Buffer.alloc(0);
/**
 * Written with fsync by a recovery before writes resume. A fresh log file has no page yet, so on a
 * still-full disk this fails; a few KiB make it fail where a one-byte record might still fit.
 */
const PROBE = Buffer.alloc(4096);
/** Index entries checked per step when counting without writing (writes suspended). */
const COUNT_STEP = 10_000;
/** Keys read per step while building the key filter at open. */
const FILTER_STEP = 1000;

/**
 * What a shard needs from its engine. The engine decides, for all shards at once, whether writes
 * are taken and whether the data directory is still the one it opened.
 */
export interface ShardHooks {
  /** Why writes are refused now (suspended, gone), or undefined when they are taken. */
  refusal(): StorageError | undefined;
  /**
   * A LevelDB write of `shard` failed: its handle must take no more writes. Returns the error
   * the write rejects with.
   */
  failed(shard: HddShard, what: string, cause: unknown): StorageError;
  /**
   * Called after a batch is written and before its writers are told: an error when the data
   * directory is gone (the batch went to files nobody will open again), else undefined.
   */
  verify(shard: HddShard): StorageError | undefined;
  /** Test seam (see `faultsKey` in hdd-engine.ts). */
  faults: ShardFaults | undefined;
  /**
   * Whom to tell about records removed because their ttl ran out, called with each one's data
   * key once the removal is written; undefined when nobody listens (then nothing is collected).
   */
  onExpired(): ((dataKey: Buffer) => void) | undefined;
  /** Whom to tell how long each batch write and fsync took (see `HddEngine#ioObserver`); undefined: nobody. */
  observer(): IoObserver | undefined;
}

/**
 * Told about each LevelDB write batch (`ops`: the records written in it) and each fsync (`ops` 0),
 * with how long it took in ms. Called synchronously once the write has finished; errors it throws
 * are ignored.
 */
export type IoObserver = (event: 'write' | 'fsync', ms: number, ops: number) => void;

/** Tells `observer` about one I/O that started at `began` (performance.now()), shielding the caller from its throws. */
function observe(observer: IoObserver | undefined, event: 'write' | 'fsync', began: number, ops: number): void {
  if (observer === undefined) return;
  try {
    observer(event, performance.now() - began, ops);
  } catch {
    // Ignored: metrics must never fail a write that succeeded.
  }
}

/** Test seam: a throw from these fails the LevelDB call as a failing disk would. */
export interface ShardFaults {
  beforeWrite?(shard: number, what: string): void;
  /** After LevelDB took the write: a failure that leaves the batch on disk (as a failed fsync can). */
  afterWrite?(shard: number, what: string): void;
  /** Before a write batch reads the previous records of `keys` keys (see HddShard#readSlots). */
  beforeRead?(shard: number, keys: number): void;
  beforeOpen?(shard: number): void;
  /** Before a recovery's first probe, the file written beside the shards. */
  beforeProbe?(): void;
}

export interface ShardConfig {
  index: number;
  location: string;
  /** Names the shard in messages. */
  what: string;
  db: DbOptions;
  clock: Clock;
  sync: boolean;
  /** Keys, and bytes of keys, whose state the shard remembers after writing them (see KeyStates). */
  knownKeys: number;
  knownKeyBytes: number;
}

/** What a queued write does. */
export const WriteKind = {
  set: 0,
  delete: 1,
  /** Delete only if the key is still expired when the write runs (lazy expiry after a read). */
  expire: 2,
  /** Not a key write: run a function alone, after every write queued before it. */
  barrier: 3,
  /** A read that must see the writes queued before it. */
  read: 4,
  /** A read-modify-write of one key (see `Update`). */
  update: 5,
} as const;

/**
 * A read-modify-write of one key. It runs inside a batch, in queue order, so no other write of
 * the shard comes between its read and its write: given the key's live record (undefined when
 * missing or expired), it returns the record to store (with its expiry in the header), or
 * undefined to leave the key as it is, and what the call resolves with. A StorageError it throws
 * rejects that call only.
 */
export type Update = (live: Buffer | undefined) => UpdateOutcome;

export interface UpdateOutcome {
  record: Buffer | undefined;
  result: unknown;
}

/** One step of a scan of a shard (see `HddShard#scan`). */
export interface ShardScan {
  /** Data keys of the live records read, in key order. */
  live: Buffer[];
  /** Records read, live or not. */
  read: number;
  /** The last data key read: where the next step starts (after it). */
  last: Buffer | undefined;
  /** No record follows. */
  done: boolean;
}

/** What a batched read answers. */
export const ReadKind = { text: 0, bytes: 1, has: 2, ttl: 3 } as const;
type ReadKind = (typeof ReadKind)[keyof typeof ReadKind];

interface Job {
  kind: number;
  dataKey: Buffer;
  record: Buffer | undefined;
  expiresAt: number;
  readKind: ReadKind;
  run: (() => Promise<unknown>) | undefined;
  update: Update | undefined;
  resolve: (value: never) => void;
  reject: (err: unknown) => void;
}

/** See HddShard#slotsOf. */
interface Slots {
  /** The slot of each job of the batch. */
  of: Int32Array;
  /**
   * Per slot: the data key, its KeyStates entry, its record's expiry at this point of the batch
   * (ABSENT, or UNKNOWN until read) and the record (when read or set).
   */
  keys: Buffer[];
  entries: number[];
  ats: number[];
  recs: Array<Buffer | undefined>;
  /** The slots read before the batch runs. */
  toRead: number[];
}

interface Read {
  kind: ReadKind;
  dataKey: Buffer;
  resolve: (value: never) => void;
  reject: (err: unknown) => void;
}

function ioError(what: string, cause: unknown): StorageError {
  return new StorageError('STORAGE_IO', `${what} failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
}

/**
 * One shard of the hdd engine: a LevelDB, its exact key count, and two queues.
 *
 * Writes are group-committed: every write queued while the previous batch was being written
 * goes into the next batch, and one LevelDB batch writes them with the new count. To keep the
 * count and the expiry index exact, a write must know whether its key is stored, and with what
 * expiry: the shard knows that without reading for keys it wrote lately (KeyStates) and for keys
 * its filter has never seen (KeyFilter); the batch reads the others' previous records with one
 * `getMany`. Batches run one at a time per shard, so each sees the one before it. Reads issued in
 * the same tick are answered by one `getMany`.
 */
export class HddShard {
  readonly index: number;
  readonly location: string;
  /** Replaced when the shard is reopened after a failed write. */
  db: Db;
  /** Records in the shard: live keys plus expired ones not yet swept. */
  count = 0;
  /** No index entry expires before this (Infinity when the index is empty). */
  nextExpiry = Number.POSITIVE_INFINITY;
  /** Written since the last fsync (for durability `everysec`). */
  unsynced = false;
  /** A sweep is queued; the sweeper does not queue another. */
  sweeping = false;
  readonly #config: ShardConfig;
  readonly #clock: Clock;
  readonly #sync: boolean;
  readonly #hooks: ShardHooks;
  #jobs: Job[] = [];
  #writing = false;
  #reads: Read[] = [];
  #readsInFlight = 0;
  #readsDrained: Array<() => void> = [];
  /** False while a failed flushAll may have removed records that `count` still includes. */
  #countExact = true;
  /** Every stored key is in it (once ready): saved at close, taken or rebuilt at open. */
  #filter = new KeyFilter(0);
  /**
   * Settles when the filter build started by the last open or reopen has ended (when it failed,
   * writes keep reading their keys until a reopen builds it again). For tests and benchmarks.
   */
  filterBuilt: Promise<void> = Promise.resolve();
  /** The state of keys written lately, exactly as the last batches left them on disk. */
  readonly #states: KeyStates;
  /** Numbers the batches, so that a KeyStates entry tells whether the batch being built has the key. */
  #batches = 0;

  private constructor(config: ShardConfig, hooks: ShardHooks) {
    this.index = config.index;
    this.location = config.location;
    this.#config = config;
    this.#clock = config.clock;
    this.#sync = config.sync;
    this.#hooks = hooks;
    this.#states = new KeyStates(config.knownKeys, config.knownKeyBytes);
    this.db = newDb(config.location, config.db);
  }

  /**
   * Opens a shard: its LevelDB, its count, and its key filter, the one saved at the last close
   * when nothing touched the LevelDB since, else one built in the background.
   */
  static async open(config: ShardConfig, hooks: ShardHooks): Promise<HddShard> {
    // Before the LevelDB object is made: abstract-level starts opening a database as soon as it
    // exists, and an opened LevelDB no longer matches the saved filter.
    const saved = await takeFilter(config.location);
    const shard = new HddShard(config, hooks);
    try {
      await openDb(shard.db, config.what);
      await shard.load();
    } catch (err) {
      await shard.db.close().catch(() => {});
      throw err;
    }
    const filter = saved === undefined ? undefined : KeyFilter.parse(saved);
    if (filter !== undefined) {
      shard.#filter = filter;
    } else {
      shard.#filter = new KeyFilter(shard.count);
      shard.filterBuilt = shard.#buildFilter(shard.#filter);
    }
    return shard;
  }

  /**
   * After the LevelDB is closed: saves the key filter for the next open, when it holds every key.
   * Only to save the next open a rebuild, so a failure is ignored (the file is then not used).
   */
  async saveFilter(): Promise<void> {
    if (!this.#filter.ready || this.db.status !== 'closed') return;
    try {
      await saveFilter(this.location, this.#filter.serialize());
    } catch {
      // The next open builds the filter instead.
    }
  }

  /** The key filter can answer (for tests). */
  get filterReady(): boolean {
    return this.#filter.ready;
  }

  /**
   * Adds every stored key to `filter` from a LevelDB iterator (and so its implicit snapshot):
   * keys written after the snapshot are added by their batches, so once this is done the filter
   * holds every stored key. Until then writes read their keys as before. Runs beside the shard's
   * work; a close or reopen ends it (the LevelDB closes the iterator), and a reopen starts it again.
   */
  async #buildFilter(filter: KeyFilter): Promise<void> {
    try {
      const keys = this.db.keys<Buffer>({ gte: DATA_START, lt: DATA_END });
      try {
        for (;;) {
          const step = await keys.nextv(FILTER_STEP);
          if (step.length === 0) break;
          for (const key of step) filter.add(key);
        }
        filter.ready = true;
      } finally {
        await keys.close();
      }
    } catch {
      // Closed, or a read failed: the filter stays not ready, which is only slower.
    }
  }

  /**
   * After a failed write the handle cannot be trusted (LevelDB's log may end in a torn record,
   * after which replay drops everything; a failed compaction poisons it for good). Run as a
   * barrier: waits for reads in flight, closes the LevelDB, opens it again (LevelDB replays its
   * log into fresh files), reloads the count and next expiry, then proves with a synced write
   * that the disk takes writes. Throws when any step fails; the engine retries later.
   */
  async reopen(): Promise<void> {
    await this.#readsSettled();
    await this.db.close();
    // Never createIfMissing here: a missing shard means the directory went away, and an empty
    // store in its place would silently answer "no such key" for every acknowledged one.
    this.#hooks.faults?.beforeOpen?.(this.index);
    this.db = newDb(this.location, this.#config.db, false);
    await openDb(this.db, this.#config.what);
    await this.load();
    // The failed batch may or may not have been replayed: what is on disk is known by reading it.
    // The filter still holds every key (batches add theirs before writing).
    this.#states.clear();
    if (!this.#filter.ready) this.filterBuilt = this.#buildFilter(this.#filter);
    await this.db.put(SYNC_KEY, PROBE, { sync: true });
    this.unsynced = false;
  }

  /** Reads the stored count and first expiry; recounts when the count cannot be trusted. */
  async load(): Promise<void> {
    const [count, dirty] = await this.db.getMany([COUNT_KEY, DIRTY_KEY]);
    if (count === undefined || dirty !== undefined) {
      let n = 0;
      for await (const _ of this.db.keys({ gte: DATA_START, lt: DATA_END })) n++;
      await this.db.batch().put(COUNT_KEY, encodeNumber(n)).del(DIRTY_KEY).write();
      this.count = n;
    } else {
      this.count = count.readDoubleBE(0);
    }
    this.#countExact = true;
    this.nextExpiry = await this.#firstExpiry();
  }

  write(kind: number, dataKey: Buffer, record: Buffer | undefined, expiresAt: number): Promise<never> {
    return new Promise((resolve, reject) => {
      this.#enqueue({
        kind,
        dataKey,
        record,
        expiresAt,
        readKind: ReadKind.text,
        run: undefined,
        update: undefined,
        resolve,
        reject,
      });
    });
  }

  /**
   * Queues a read-modify-write of one key: atomic with every other write of the shard, and
   * group-committed with them (200 concurrent increments of one key are one batch).
   */
  update<T>(dataKey: Buffer, update: Update): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#enqueue({
        kind: WriteKind.update,
        dataKey,
        record: undefined,
        expiresAt: 0,
        readKind: ReadKind.text,
        run: undefined,
        update,
        resolve: resolve as (value: never) => void,
        reject,
      });
    });
  }

  /** Runs `run` after every write queued so far, and before any queued later. */
  barrier<T>(run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#enqueue({
        kind: WriteKind.barrier,
        dataKey: EMPTY,
        record: undefined,
        expiresAt: 0,
        readKind: ReadKind.text,
        run,
        update: undefined,
        resolve: resolve as (value: never) => void,
        reject,
      });
    });
  }

  /**
   * Reads a key. A read sees every write queued before it: while writes are queued or being
   * written it joins their queue and is answered from the batch's view of the key; otherwise
   * it joins the reads of this event-loop turn, answered by one `getMany`.
   */
  read(kind: ReadKind, dataKey: Buffer): Promise<never> {
    return new Promise((resolve, reject) => {
      if (this.busy) {
        this.#enqueue({
          kind: WriteKind.read,
          dataKey,
          record: undefined,
          expiresAt: 0,
          readKind: kind,
          run: undefined,
          update: undefined,
          resolve,
          reject,
        });
        return;
      }
      if (this.#reads.length === 0) setImmediate(() => this.#flushReads());
      this.#reads.push({ kind, dataKey, resolve, reject });
    });
  }

  /** Writes are queued or being written: a read or count now must wait behind them. */
  get busy(): boolean {
    return this.#writing || this.#jobs.length > 0;
  }

  /** Resolves when every queued write and read has finished. */
  async idle(): Promise<void> {
    await this.barrier(async () => undefined);
    await this.#readsSettled();
  }

  async #readsSettled(): Promise<void> {
    if (this.#readsInFlight > 0 || this.#reads.length > 0) {
      await new Promise<void>((resolve) => {
        this.#readsDrained.push(resolve);
      });
    }
  }

  /**
   * Live keys at `now`, without removing the expired ones (while writes are suspended a count
   * must not write, and must still be exact).
   */
  async liveCount(now: number): Promise<number> {
    this.#assertReadable();
    try {
      return await this.#liveCount(now);
    } catch (err) {
      throw ioError('count', err);
    }
  }

  async #liveCount(now: number): Promise<number> {
    if (!this.#countExact) {
      // A flushAll failed half-way: only the records themselves can say how many there are.
      let live = 0;
      for await (const rec of this.db.values({ gte: DATA_START, lt: DATA_END })) {
        if (!isExpired(recordExpiry(rec), now)) live++;
      }
      return live;
    }
    if (!isExpired(this.nextExpiry, now)) return this.count;
    let expired = 0;
    let from = INDEX_START;
    for (;;) {
      const indexKeys = await this.db.keys({ gte: from, lt: indexBound(now), limit: COUNT_STEP }).all();
      if (indexKeys.length === 0) return this.count - expired;
      const dataKeys = indexKeys.map((ik) => dataKeyFrom(ik, 1 + HEADER_BYTES));
      const records = await this.db.getMany(dataKeys);
      for (let i = 0; i < indexKeys.length; i++) {
        const rec = records[i];
        if (rec !== undefined && recordExpiry(rec) === (indexKeys[i] as Buffer).readDoubleBE(1)) expired++;
      }
      if (indexKeys.length < COUNT_STEP) return this.count - expired;
      // Just past the last key seen: the same bytes with a zero byte appended.
      from = Buffer.concat([indexKeys[indexKeys.length - 1] as Buffer, Buffer.alloc(1)]);
    }
  }

  /**
   * Reads up to `limit` records in key order after the data key `after` (from the first when
   * undefined) with a fresh iterator, after the writes queued before. Nothing is held between
   * steps, so a scan resumed later sees the writes (and flushes) made in between.
   */
  scan(after: Buffer | undefined, limit: number, now: number): Promise<ShardScan> {
    const step = async (): Promise<ShardScan> => {
      this.#assertReadable();
      const range = after === undefined ? { gte: DATA_START, lt: DATA_END, limit } : { gt: after, lt: DATA_END, limit };
      try {
        if (!isExpired(this.nextExpiry, now)) {
          // Nothing has expired yet: the keys alone will do, without reading values.
          const keys = await this.db.keys(range).all();
          return { live: keys, read: keys.length, last: keys[keys.length - 1], done: keys.length < limit };
        }
        const entries = await this.db.iterator(range).all();
        const live: Buffer[] = [];
        for (const [k, rec] of entries) if (!isExpired(recordExpiry(rec), now)) live.push(k);
        const last = entries[entries.length - 1];
        return { live, read: entries.length, last: last?.[0], done: entries.length < limit };
      } catch (err) {
        throw ioError(`reading ${this.#config.what}`, err);
      }
    };
    return this.busy ? this.barrier(step) : step();
  }

  /**
   * Runs one LevelDB write: refused while the engine refuses writes, and on failure reported to
   * the engine (which stops taking writes) before the caller sees the error.
   */
  async #write<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const refused = this.#hooks.refusal();
    if (refused !== undefined) throw refused;
    try {
      this.#hooks.faults?.beforeWrite?.(this.index, what);
      const done = await fn();
      this.#hooks.faults?.afterWrite?.(this.index, what);
      return done;
    } catch (err) {
      throw this.#hooks.failed(this, what, err);
    }
  }

  /** Removes up to `limit` keys expired at `now`; true when more may remain. */
  async sweep(now: number, limit: number): Promise<boolean> {
    const indexKeys = await this.db.keys({ gte: INDEX_START, lt: indexBound(now), limit }).all();
    if (indexKeys.length > 0) {
      const dataKeys = indexKeys.map((ik) => dataKeyFrom(ik, 1 + HEADER_BYTES));
      const records = await this.db.getMany(dataKeys);
      const batch = this.db.batch();
      const onExpired = this.#hooks.onExpired();
      const expired: Buffer[] = [];
      for (let i = 0; i < indexKeys.length; i++) {
        const ik = indexKeys[i] as Buffer;
        batch.del(ik);
        const rec = records[i];
        if (rec !== undefined && recordExpiry(rec) === ik.readDoubleBE(1)) {
          batch.del(dataKeys[i] as Buffer);
          expired.push(dataKeys[i] as Buffer);
        }
      }
      batch.put(COUNT_KEY, encodeNumber(this.count - expired.length));
      const observer = this.#hooks.observer();
      const ops = batch.length;
      const began = observer === undefined ? 0 : performance.now();
      try {
        await this.#write('sweep', () => batch.write({ sync: this.#sync }));
      } finally {
        await batch.close();
      }
      observe(observer, 'write', began, ops);
      this.count -= expired.length;
      this.unsynced = true;
      for (const dataKey of expired) this.#states.setState(this.#states.entry(dataKey), ABSENT);
      this.#states.trim();
      if (onExpired !== undefined) for (const dataKey of expired) onExpired(dataKey);
    }
    this.nextExpiry = await this.#firstExpiry();
    return indexKeys.length === limit;
  }

  /** Removes every key. The dirty mark makes a crash half-way recount on the next open. */
  async clear(): Promise<void> {
    // Half-way through, which keys are left is known only by reading them.
    this.#states.clear();
    await this.#write('clear', async () => {
      this.#countExact = false;
      await this.db.put(DIRTY_KEY, EMPTY);
      await this.db.clear({ gte: DATA_START, lt: INDEX_END });
      await this.db.batch().put(COUNT_KEY, encodeNumber(0)).del(DIRTY_KEY).write({ sync: this.#sync });
    });
    this.count = 0;
    this.#countExact = true;
    this.nextExpiry = Number.POSITIVE_INFINITY;
    this.unsynced = true;
    // An empty shard: a filter that holds no key is exact.
    this.#filter = new KeyFilter(0);
    this.#filter.ready = true;
  }

  /** Makes every earlier write durable. */
  async fsync(): Promise<void> {
    const observer = this.#hooks.observer();
    const began = observer === undefined ? 0 : performance.now();
    await this.#write('fsync', () => this.db.put(SYNC_KEY, EMPTY, { sync: true }));
    observe(observer, 'fsync', began, 0);
  }

  async #firstExpiry(): Promise<number> {
    const [first] = await this.db.keys({ gte: INDEX_START, lt: INDEX_END, limit: 1 }).all();
    return first === undefined ? Number.POSITIVE_INFINITY : first.readDoubleBE(1);
  }

  #enqueue(job: Job): void {
    this.#jobs.push(job);
    // setImmediate rather than a microtask: writes issued by the continuations of the batch
    // that just finished get to join the next one.
    if (!this.#writing && this.#jobs.length === 1) setImmediate(() => this.#drain());
  }

  async #drain(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    while (this.#jobs.length > 0) {
      const jobs = this.#jobs;
      this.#jobs = [];
      let start = 0;
      while (start < jobs.length) {
        const job = jobs[start] as Job;
        if (job.kind === WriteKind.barrier) {
          try {
            job.resolve((await (job.run as () => Promise<unknown>)()) as never);
          } catch (err) {
            job.reject(err);
          }
          start++;
          continue;
        }
        let end = start + 1;
        while (end < jobs.length && (jobs[end] as Job).kind !== WriteKind.barrier) end++;
        await this.#commit(jobs, start, end);
        start = end;
      }
    }
    this.#writing = false;
  }

  /**
   * What the batch of jobs[start, end) knows of each distinct key it touches (its "slot"): the
   * state the shard remembers, ABSENT when the filter has never seen the key, else UNKNOWN. The
   * slots to read before the batch runs are the UNKNOWN ones, and those whose record a job needs
   * (a read of the value, an update) before a job of the batch sets it.
   */
  #slotsOf(jobs: Job[], start: number, end: number): Slots {
    const batch = ++this.#batches;
    const states = this.#states;
    // Each job may bring a new key: the entries taken below must not move while the batch runs.
    states.reserve(end - start);
    const of = new Int32Array(end - start);
    const keys: Buffer[] = [];
    const entries: number[] = [];
    const ats: number[] = [];
    const recs: Array<Buffer | undefined> = [];
    const toRead: number[] = [];
    // Whether the jobs so far of a slot leave its record known without reading it.
    const valueKnown: boolean[] = [];
    for (let i = start; i < end; i++) {
      const job = jobs[i] as Job;
      const entry = states.entry(job.dataKey);
      let slot: number;
      if (states.batch(entry) === batch) {
        slot = states.slot(entry);
      } else {
        slot = keys.length;
        states.setBatch(entry, batch, slot);
        keys.push(job.dataKey);
        entries.push(entry);
        let at = states.state(entry);
        if (at === UNKNOWN && !this.#filter.mayHold(job.dataKey)) at = ABSENT;
        ats.push(at);
        recs.push(undefined);
        if (at === UNKNOWN) toRead.push(slot);
        valueKnown.push(at === UNKNOWN || at === ABSENT);
      }
      of[i - start] = slot;
      if (valueKnown[slot]) continue;
      if (job.kind === WriteKind.update || (job.kind === WriteKind.read && needsValue(job.readKind))) {
        toRead.push(slot);
        valueKnown[slot] = true;
      } else if (job.kind === WriteKind.set || job.kind === WriteKind.delete) {
        valueKnown[slot] = true;
      }
    }
    return { of, keys, entries, ats, recs, toRead };
  }

  /** Reads the records of `slots.toRead`. */
  async #readSlots(slots: Slots): Promise<void> {
    const { toRead, keys, ats, recs } = slots;
    if (toRead.length === 0) return;
    this.#hooks.faults?.beforeRead?.(this.index, toRead.length);
    const records = await this.db.getMany(toRead.map((slot) => keys[slot] as Buffer));
    for (let j = 0; j < toRead.length; j++) {
      const slot = toRead[j] as number;
      const rec = records[j];
      recs[slot] = rec;
      ats[slot] = rec === undefined ? ABSENT : recordExpiry(rec);
    }
  }

  /** Writes jobs[start, end) as one batch and settles them. */
  async #commit(jobs: Job[], start: number, end: number): Promise<void> {
    const slots = this.#slotsOf(jobs, start, end);
    const { of, ats, recs } = slots;
    const results: unknown[] = new Array(end - start);
    // Writes queued before the engine stopped taking writes are refused here, not written: after
    // a failed write, anything written to the same handle may be lost on replay.
    const refused = this.#hooks.refusal();
    let error: StorageError | undefined;
    // A chained batch: abstract-level copies an options object into every operation of an
    // array batch, which costs more than the write itself.
    let batch: ReturnType<Db['batch']> | undefined;
    try {
      this.#assertReadable();
      await this.#readSlots(slots);
      const now = this.#clock();
      batch = this.db.batch();
      let delta = 0;
      let nextExpiry = this.nextExpiry;
      // Keys whose ttl had run out and that this batch removes or replaces, for the hook.
      const onExpired = this.#hooks.onExpired();
      const expired: Buffer[] | undefined = onExpired === undefined ? undefined : [];
      for (let i = start; i < end; i++) {
        const job = jobs[i] as Job;
        const slot = of[i - start] as number;
        // The expiry of the record the key has at this point of the batch, or ABSENT.
        const at = ats[slot] as number;
        const stored = at !== ABSENT;
        const live = stored && !isExpired(at, now);
        if (job.kind === WriteKind.read) {
          results[i - start] = answerOf(job.readKind, live ? recs[slot] : undefined, live, at, now);
          continue;
        }
        if (refused !== undefined) {
          results[i - start] = refused;
          continue;
        }
        if (job.kind === WriteKind.set || job.kind === WriteKind.update) {
          let record = job.record as Buffer;
          let expiresAt = job.expiresAt;
          if (job.kind === WriteKind.update) {
            let outcome: UpdateOutcome;
            try {
              outcome = (job.update as Update)(live ? recs[slot] : undefined);
            } catch (err) {
              results[i - start] = err instanceof Error ? err : new Error(String(err));
              continue;
            }
            results[i - start] = outcome.result;
            if (outcome.record === undefined) continue;
            record = outcome.record;
            expiresAt = recordExpiry(record);
          }
          if (!stored) {
            delta++;
            // Before the write, so that the filter holds the key even if the write fails half-way.
            this.#filter.add(job.dataKey);
          } else {
            if (at !== 0) batch.del(indexKey(at, job.dataKey));
            if (!live) expired?.push(job.dataKey);
          }
          batch.put(job.dataKey, record);
          if (expiresAt !== 0) {
            batch.put(indexKey(expiresAt, job.dataKey), EMPTY);
            if (expiresAt < nextExpiry) nextExpiry = expiresAt;
          }
          recs[slot] = record;
          ats[slot] = expiresAt;
          continue;
        }
        if (job.kind === WriteKind.delete) results[i - start] = live;
        if (stored && (job.kind === WriteKind.delete || !live)) {
          batch.del(job.dataKey);
          if (at !== 0) batch.del(indexKey(at, job.dataKey));
          delta--;
          recs[slot] = undefined;
          ats[slot] = ABSENT;
          if (!live) expired?.push(job.dataKey);
        }
      }
      if (batch.length > 0) {
        const written = batch;
        // Overwrites leave the count as it is: no need to store it again.
        if (delta !== 0) batch.put(COUNT_KEY, encodeNumber(this.count + delta));
        const observer = this.#hooks.observer();
        const ops = batch.length;
        const began = observer === undefined ? 0 : performance.now();
        try {
          await this.#write('write', () => written.write({ sync: this.#sync }));
        } catch (err) {
          // Whether the batch is on disk is unknown until the shard is reopened and read.
          this.#states.clear();
          throw err;
        }
        observe(observer, 'write', began, ops);
        this.count += delta;
        this.nextExpiry = nextExpiry;
        this.unsynced = true;
        // The data directory may have been deleted or replaced since open: then this batch went
        // to files no one will read again, and its writers must not hear "stored".
        error = this.#hooks.verify(this);
        if (error === undefined && onExpired !== undefined && expired !== undefined) {
          for (const dataKey of expired) onExpired(dataKey);
        }
      } else {
        await batch.close();
      }
      // What the batch leaves on disk (refused jobs changed nothing, so their keys are as read).
      this.#remember(slots);
    } catch (err) {
      error = err instanceof StorageError ? err : ioError('write', err);
      if (batch !== undefined) await batch.close();
    }
    for (let i = start; i < end; i++) {
      const job = jobs[i] as Job;
      const result = results[i - start];
      if (error !== undefined) job.reject(error);
      else if (result instanceof Error) job.reject(result);
      else job.resolve(result as never);
    }
  }

  /** Remembers the state a batch left each of its keys in. */
  #remember(slots: Slots): void {
    const { entries, ats } = slots;
    for (let slot = 0; slot < entries.length; slot++)
      this.#states.setState(entries[slot] as number, ats[slot] as number);
    this.#states.trim();
  }

  /** A shard whose reopen failed has no open LevelDB until a retry succeeds. */
  #assertReadable(): void {
    if (this.db.status !== 'open') {
      throw new StorageError(
        'STORAGE_IO',
        `${this.#config.what} cannot be read: it was closed to recover from a failed write and could not be opened again yet (retried periodically)`,
      );
    }
  }

  #flushReads(): void {
    const reads = this.#reads;
    this.#reads = [];
    this.#readsInFlight++;
    let records: Promise<Array<Buffer | undefined>>;
    try {
      this.#assertReadable();
      records = this.db.getMany(reads.map((read) => read.dataKey));
    } catch (err) {
      records = Promise.reject(err);
    }
    records.then(
      (records) => {
        const now = this.#clock();
        for (let i = 0; i < reads.length; i++) this.#answer(reads[i] as Read, records[i], now);
        this.#readDone();
      },
      (err) => {
        const error = err instanceof StorageError ? err : ioError('read', err);
        for (const read of reads) read.reject(error);
        this.#readDone();
      },
    );
  }

  #readDone(): void {
    this.#readsInFlight--;
    if (this.#readsInFlight === 0 && this.#reads.length === 0 && this.#readsDrained.length > 0) {
      const waiters = this.#readsDrained;
      this.#readsDrained = [];
      for (const resolve of waiters) resolve();
    }
  }

  #answer(read: Read, rec: Buffer | undefined, now: number): void {
    const expiresAt = rec === undefined ? 0 : recordExpiry(rec);
    if (isExpired(expiresAt, now)) {
      // Expired but not swept yet: answer as missing and remove it (if still expired then).
      this.write(WriteKind.expire, read.dataKey, undefined, 0).catch(() => {});
      rec = undefined;
    }
    read.resolve(answerOf(read.kind, rec, rec !== undefined, expiresAt, now) as never);
  }
}

/** A read of this kind needs the record's value, not only whether the key is live and its expiry. */
function needsValue(kind: ReadKind): boolean {
  return kind === ReadKind.text || kind === ReadKind.bytes;
}

/**
 * What a read answers for a key that is `live` with expiry `at`; `rec` is its record, needed only
 * by the kinds that read the value.
 */
function answerOf(kind: ReadKind, rec: Buffer | undefined, live: boolean, at: number, now: number): unknown {
  if (kind === ReadKind.has) return live;
  if (!live) return undefined;
  if (kind === ReadKind.text) return (rec as Buffer).toString('utf8', HEADER_BYTES);
  if (kind === ReadKind.bytes) return (rec as Buffer).subarray(HEADER_BYTES);
  return remainingMs(at, now);
}
