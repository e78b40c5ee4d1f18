import { StorageError } from './errors.js';
import { isExpired } from './expiry.js';
import { DATA_END, DATA_START, type Db, HEADER_BYTES, recordExpiry } from './hdd-layout.js';
import type { Clock } from './options.js';
import type { StoredEntry } from './store.js';

type Snapshot = ReturnType<Db['snapshot']>;
/** What a snapshot uses of a LevelDB iterator. */
interface Iterator {
  nextv(size: number): Promise<Array<[Buffer, Buffer]>>;
  close(): Promise<void>;
}

/**
 * How much one native read of an iterator may hold before it stops (classic-level's
 * `highWaterMarkBytes`): bounds what a step holds beside the caller's own limit.
 */
const READ_AHEAD_BYTES = 1024 * 1024;

/** One shard as a snapshot reads it. */
interface ShardSnapshot {
  readonly db: Db;
  readonly snapshot: Snapshot;
  readonly what: string;
}

/**
 * A point-in-time view of every shard of an hdd engine, read in bounded steps (see
 * `HddEngine#snapshot`). It holds one explicit LevelDB snapshot per shard, all taken in the same
 * synchronous run: writes made after it are not seen, and LevelDB keeps the versions it needs
 * (so a snapshot held for long under heavy writes costs disk until it is closed).
 */
export class HddSnapshot {
  readonly #shards: ShardSnapshot[];
  readonly #clock: Clock;
  #index = 0;
  #iterator: Iterator | undefined;
  /** Records read from LevelDB and not returned yet (a read stops at its byte budget). */
  #pending: Array<[Buffer, Buffer]> = [];
  #closed = false;

  /** @internal Made by `HddEngine#snapshot`. */
  constructor(shards: ShardSnapshot[], clock: Clock) {
    this.#shards = shards;
    this.#clock = clock;
  }

  /** True once every record has been read or the snapshot was closed. */
  get done(): boolean {
    return this.#closed || (this.#index >= this.#shards.length && this.#pending.length === 0);
  }

  /**
   * The next live keys (shard by shard, in key order within a shard): at most `max` of them,
   * and stopping once their keys and values hold `maxBytes` or more (so one large value still
   * comes alone). Keys expired when read are skipped. An empty array: nothing is left (the
   * snapshot is then closed).
   */
  async read(max: number, maxBytes: number): Promise<StoredEntry[]> {
    const out: StoredEntry[] = [];
    let bytes = 0;
    while (!this.#closed && out.length < max && bytes < maxBytes) {
      if (this.#pending.length === 0 && !(await this.#fill(max - out.length))) break;
      const now = this.#clock();
      while (this.#pending.length > 0 && out.length < max && bytes < maxBytes) {
        const [k, rec] = this.#pending.shift() as [Buffer, Buffer];
        const expiresAt = recordExpiry(rec);
        if (isExpired(expiresAt, now)) continue;
        out.push({ key: k.subarray(1), value: rec.subarray(HEADER_BYTES), expiresAt });
        bytes += k.length + rec.length;
      }
    }
    if (out.length === 0) await this.close();
    return out;
  }

  /** Reads the next records into #pending, moving on to the next shard at the end of one; false when none is left. */
  async #fill(size: number): Promise<boolean> {
    while (this.#index < this.#shards.length) {
      const shard = this.#shards[this.#index] as ShardSnapshot;
      let entries: Array<[Buffer, Buffer]>;
      try {
        this.#iterator ??= shard.db.iterator({
          gte: DATA_START,
          lt: DATA_END,
          snapshot: shard.snapshot,
          highWaterMarkBytes: READ_AHEAD_BYTES,
        });
        entries = await this.#iterator.nextv(size);
      } catch (err) {
        await this.close();
        throw new StorageError(
          'STORAGE_IO',
          `reading the snapshot of ${shard.what} failed: ${(err as Error)?.message ?? String(err)}`,
          { cause: err },
        );
      }
      if (entries.length > 0) {
        this.#pending = entries;
        return true;
      }
      await this.#iterator?.close();
      this.#iterator = undefined;
      await shard.snapshot.close();
      this.#index++;
    }
    return false;
  }

  /** Releases the LevelDB snapshots (and what they keep on disk). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    const iterator = this.#iterator;
    this.#iterator = undefined;
    const open = this.#shards.slice(this.#index);
    this.#index = this.#shards.length;
    await Promise.allSettled([iterator?.close(), ...open.map((shard) => shard.snapshot.close())]);
  }
}
