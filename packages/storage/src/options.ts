import { StorageError } from './errors.js';
import type { ExpiredHook } from './store.js';

/** Milliseconds since the epoch; engines read time only through this, so tests can move it. */
export type Clock = () => number;

export interface MemoryEngineOptions {
  /**
   * Number of shards (independent maps). More shards keep each map small, so growing one
   * never pauses the process for long.
   * @default 8
   */
  shards?: number;
  /** @default Date.now */
  clock?: Clock;
  /**
   * How often active expiry runs, in ms. Each run removes at most `sweepLimit` expired keys
   * per shard and comes back sooner when it had to stop early.
   * @default 100
   */
  sweepIntervalMs?: number;
  /**
   * Most expired keys removed per shard per sweep; bounds the time one sweep blocks.
   * @default 1000
   */
  sweepLimit?: number;
  /**
   * Most scans open at once (see `scan`); past it the least recently used is dropped and its
   * cursor fails with CURSOR_INVALID.
   * @default 1024
   */
  maxOpenScans?: number;
}

export const Durability = {
  /** The write promise resolves after the batch holding it is fsynced (group commit). */
  always: 'always',
  /** Writes reach the OS at once and are fsynced about once a second. */
  everysec: 'everysec',
  /** Writes reach the OS at once (they survive the process dying, not the machine). */
  no: 'no',
} as const;

export type Durability = (typeof Durability)[keyof typeof Durability];

/**
 * The hdd engine's health, as `HddEngine#state` reports it:
 * - `ok`: reads and writes work;
 * - `suspended`: a disk write failed; reads work, writes fail with `WRITES_SUSPENDED` until the
 *   engine has reopened the failed shards and a synced probe write succeeded;
 * - `gone`: the data directory was deleted or replaced; everything fails with `DATA_DIR_GONE`
 *   until the process opens the store again (restart).
 */
export const HddState = {
  ok: 'ok',
  suspended: 'suspended',
  gone: 'gone',
} as const;

export type HddState = (typeof HddState)[keyof typeof HddState];

/** What `onStateChange` receives; `reason` is a sentence for the log. */
export interface HddStateEvent {
  state: 'suspended' | 'recovered' | 'gone';
  reason: string;
}

export interface HddEngineOptions {
  /**
   * Directory holding the store: the shards live in `<dataDir>/db/kv_shard_<i>`.
   * Created when missing.
   */
  dataDir: string;
  /**
   * Number of shards (one LevelDB each). Opening an existing store with another count
   * rebuilds it into the new layout, keeping every key and its expiry. Omitted, an existing
   * store opens with the count it was written with, and a new one gets one shard: each shard
   * writes, and with durability `always` fsyncs, its own log for every group commit, so more
   * shards cost CPU per write (benchmarks/README.md, "hdd shards").
   * @default the stored count; 1 for a new store
   */
  shards?: number;
  /** @default 'everysec' */
  durability?: Durability;
  /** @default Date.now */
  clock?: Clock;
  /** How often active expiry runs, in ms. @default 100 */
  sweepIntervalMs?: number;
  /** Most expired keys removed per shard per sweep. @default 1000 */
  sweepLimit?: number;
  /** Most scans open at once (see `MemoryEngineOptions.maxOpenScans`). @default 1024 */
  maxOpenScans?: number;
  /** LevelDB block cache per shard, in bytes. @default 8 MiB */
  cacheSize?: number;
  /** LevelDB write buffer (memtable) per shard, in bytes. @default 4 MiB */
  writeBufferSize?: number;
  /**
   * Files each shard's LevelDB may keep open (its table cache; LevelDB uses at least 74). Bounds
   * the descriptors the store needs: a server sizes it to fit the process's open-file limit.
   * @default 1000
   */
  maxOpenFiles?: number;
  /**
   * How often, in ms, the engine checks that its data directory is still the one it opened,
   * and, while writes are suspended after a failed disk write, tries to recover.
   * @default 1000
   */
  recoveryIntervalMs?: number;
  /**
   * Called (synchronously, errors ignored) when writes are suspended, when they resume, and when
   * the data directory is found gone; for the server to log loudly.
   * @default undefined
   */
  onStateChange?: (event: HddStateEvent) => void;
}

export interface StorageManagerOptions {
  /** Directory for the hdd engine. @default './data' */
  dataDir?: string;
  /**
   * Shard count of both engines. Omitted, the memory engine has 8 and the hdd engine the count
   * its store was written with (1 for a new one; see `HddEngineOptions.shards`).
   */
  shards?: number;
  /** @default 'everysec' */
  durability?: Durability;
  /** @default Date.now */
  clock?: Clock;
  /** See `HddEngineOptions.recoveryIntervalMs`. @default 1000 */
  recoveryIntervalMs?: number;
  /** See `HddEngineOptions.maxOpenFiles`. @default 1000 */
  maxOpenFiles?: number;
  /** See `HddEngineOptions.onStateChange`. @default undefined */
  onStateChange?: (event: HddStateEvent) => void;
}

export const defaults = {
  /** Memory shards; and hdd shards before a store records its own (see `hddShards`). */
  shards: 8,
  /** Shards of a new hdd store opened without a count. */
  hddShards: 1,
  durability: Durability.everysec,
  sweepIntervalMs: 100,
  sweepLimit: 1000,
  cacheSize: 8 * 1024 * 1024,
  writeBufferSize: 4 * 1024 * 1024,
  maxOpenFiles: 1000,
  recoveryIntervalMs: 1000,
  maxOpenScans: 1024,
  dataDir: './data',
} as const;

/** Most shards an engine accepts; each hdd shard is a LevelDB with its own files. */
export const MAX_SHARDS = 1024;

export function checkShards(shards: unknown): number {
  if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
    throw new StorageError(
      'OPTION_INVALID',
      `shards must be an integer from 1 to ${MAX_SHARDS}, got ${String(shards)}`,
    );
  }
  return shards;
}

export function checkPositiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new StorageError('OPTION_INVALID', `${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

export function checkDurability(durability: unknown): Durability {
  if (durability !== 'always' && durability !== 'everysec' && durability !== 'no') {
    throw new StorageError(
      'OPTION_INVALID',
      `durability must be 'always', 'everysec' or 'no', got ${JSON.stringify(durability)}`,
    );
  }
  return durability;
}

/** An `onExpired` hook: a function, or undefined for none. */
export function checkExpiredHook(hook: unknown): ExpiredHook | undefined {
  if (hook !== undefined && typeof hook !== 'function') {
    throw new StorageError('OPTION_INVALID', `onExpired must be a function or undefined, got ${typeof hook}`);
  }
  return hook as ExpiredHook | undefined;
}
