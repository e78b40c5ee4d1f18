/** A key or a value as callers pass it: bytes, or a string taken as its UTF-8 encoding. */
export type Bytes = string | Uint8Array;

export const StorageType = {
  memory: 'memory',
  hdd: 'hdd',
} as const;

export type StorageType = (typeof StorageType)[keyof typeof StorageType];

/** What `entries()` yields: one live key. */
export interface StoredEntry {
  key: Buffer;
  value: Buffer;
  /** When the key expires, in ms since the epoch; 0 when it never does. */
  expiresAt: number;
}

/** When `setIf` stores: `absent` as Redis `SET NX`, `present` as `SET XX`. */
export const SetCondition = {
  /** Only when the key is missing or expired. */
  absent: 'absent',
  /** Only when the key is live. */
  present: 'present',
} as const;

export type SetCondition = (typeof SetCondition)[keyof typeof SetCondition];

/** What `scan` takes besides the cursor. */
export interface ScanOptions {
  /** A Redis glob (see `globMatcher`); only keys matching it are returned. @default every key */
  match?: Bytes;
  /**
   * How many keys one call examines (a hint, as in Redis: matching and expiry are applied to
   * those, so a call may return fewer, even none, with a non-zero cursor). Values above 100000
   * count as 100000.
   * @default 10
   */
  count?: number;
}

/** One page of a scan. */
export interface ScanResult {
  /** Pass it to the next call; "0" when the scan is complete. */
  cursor: string;
  keys: Buffer[];
}

/**
 * Told about each key removed because its ttl ran out (see `KeyValueStore#onExpired`). Called
 * synchronously, after the key is gone; errors it throws are caught and ignored.
 */
export type ExpiredHook = (key: Buffer) => void;

/** What a store can do beyond the common interface; tests and callers branch on these, never on names. */
export interface StoreSupports {
  /** Data survives `close()` and a restart. */
  persistence: boolean;
}

/**
 * The interface both engines implement. The memory engine answers synchronously and the hdd
 * engine with promises, so generic callers `await` every result (awaiting a plain value is
 * free of I/O); the engines' own classes give the precise types.
 *
 * Setting a key always replaces its ttl: `set(k, v)` (ttl 0) makes a key that had a ttl
 * permanent, as Redis `SET` does without `KEEPTTL`.
 */
export interface KeyValueStore {
  readonly type: StorageType;
  readonly supports: StoreSupports;
  /** Number of shards. */
  readonly shards: number;
  /** Stores `value` under `key`; `ttlMs` 0 means no expiry. */
  set(key: Bytes, value: Bytes, ttlMs?: number): void | Promise<void>;
  /** The value decoded as UTF-8, or undefined when missing or expired. */
  get(key: Bytes): string | undefined | Promise<string | undefined>;
  /** The value's exact bytes (a copy the caller owns), or undefined. */
  getBuffer(key: Bytes): Buffer | undefined | Promise<Buffer | undefined>;
  has(key: Bytes): boolean | Promise<boolean>;
  /** True when a live key was removed. */
  delete(key: Bytes): boolean | Promise<boolean>;
  /** Remaining ms before `key` expires, 0 when it never does, undefined when missing. */
  ttl(key: Bytes): number | undefined | Promise<number | undefined>;
  /** Number of live keys. */
  count(): number | Promise<number>;
  /** Number of live keys in each shard. */
  shardCounts(): number[] | Promise<number[]>;
  /** Removes every key. */
  flushAll(): void | Promise<void>;
  /** Every live key with its value and expiry, shard by shard. */
  entries(): AsyncIterableIterator<StoredEntry>;
  close(): Promise<void>;

  /**
   * Stores `value` only when the key is absent (missing or expired; Redis `SET NX`) or present
   * (live; `SET XX`); replaces the ttl as `set` does. True when it stored.
   */
  setIf(key: Bytes, value: Bytes, ttlMs: number, condition: SetCondition): boolean | Promise<boolean>;
  /**
   * Gives a live key a new ttl (`0` makes it permanent). False, changing nothing, when the key is
   * missing or expired.
   */
  expire(key: Bytes, ttlMs: number): boolean | Promise<boolean>;
  /**
   * Adds `delta` to the 64-bit signed integer stored as decimal text under `key` (a missing key
   * counts as 0 and gets no ttl; an existing key keeps its ttl), atomically, and returns the result.
   * Fails with `NOT_INTEGER` or `INTEGER_OVERFLOW`, leaving the key unchanged.
   */
  incrBy(key: Bytes, delta: bigint): bigint | Promise<bigint>;
  /** Each key's value (exact bytes, copies the caller owns), or undefined, in the keys' order. */
  getMany(keys: readonly Bytes[]): Array<Buffer | undefined> | Promise<Array<Buffer | undefined>>;
  /**
   * Stores every entry with the same ttl (Redis `MSET`); every key and value is checked before
   * any is written, and a key listed twice gets its last value.
   */
  setMany(entries: ReadonlyArray<readonly [Bytes, Bytes]>, ttlMs?: number): void | Promise<void>;
  /**
   * Redis `SCAN`: start with cursor "0" and pass each returned cursor to the next call, until one
   * returns "0". Every key live for the whole scan is returned at least once; a key may come
   * twice; expired keys never come. Each call does a bounded amount of work (`count`). A cursor
   * is good for one call.
   */
  scan(cursor: string, options?: ScanOptions): ScanResult | Promise<ScanResult>;
  /** Every live key matching the glob `match` (Redis `KEYS`); visits the whole keyspace. */
  keys(match: Bytes): Buffer[] | Promise<Buffer[]>;
  /**
   * Called once for each key removed because its ttl ran out, by the active sweep or on access
   * (a read, write or count that finds it expired). Undefined (the default) costs nothing.
   */
  onExpired: ExpiredHook | undefined;
}
