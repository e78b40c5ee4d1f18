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
}
