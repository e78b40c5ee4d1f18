import { StorageError } from './errors.js';
import { isExpired, remainingMs } from './expiry.js';
import { ExpiryHeap } from './expiry-heap.js';
import { shardOfString } from './hash.js';
import { checkTtl, keyString, keyStringBytes, memoryValue } from './input.js';
import { type Clock, checkPositiveInteger, checkShards, defaults, type MemoryEngineOptions } from './options.js';
import type { Bytes, KeyValueStore, StoredEntry } from './store.js';

class MemoryShard {
  /** Canonical key string → value (UTF-8 text as a string, other bytes as a Buffer). */
  values = new Map<string, string | Buffer>();
  /** Expiry time of every key that has one. Most keys have none, so this map is often empty. */
  expiries = new Map<string, number>();
  heap = new ExpiryHeap();
}

/**
 * The in-memory engine: sharded maps with lazy and active expiry. Every method answers
 * synchronously; nothing here allocates a promise.
 *
 * Expiry is exact for readers: an expired key is never returned, counted or iterated, even
 * before it is removed. Removal is lazy (on access) and active: a timer pops expired keys from
 * each shard's expiry heap, at most `sweepLimit` per shard per run, so the work per run is
 * bounded and a key that expires unread does not hold memory for long. No timer is set per
 * key, so any ttl up to Number.MAX_SAFE_INTEGER ms works.
 */
export class MemoryEngine implements KeyValueStore {
  readonly type = 'memory';
  readonly supports = { persistence: false } as const;
  readonly shards: number;
  readonly #shardList: MemoryShard[];
  readonly #clock: Clock;
  readonly #sweepLimit: number;
  readonly #sweepIntervalMs: number;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: MemoryEngineOptions = {}) {
    this.shards = checkShards(options.shards ?? defaults.shards);
    this.#clock = options.clock ?? Date.now;
    this.#sweepLimit = checkPositiveInteger('sweepLimit', options.sweepLimit ?? defaults.sweepLimit);
    this.#sweepIntervalMs = checkPositiveInteger(
      'sweepIntervalMs',
      options.sweepIntervalMs ?? defaults.sweepIntervalMs,
    );
    this.#shardList = Array.from({ length: this.shards }, () => new MemoryShard());
    this.#scheduleSweep(this.#sweepIntervalMs);
  }

  set(key: Bytes, value: Bytes, ttlMs = 0): void {
    this.#assertOpen();
    const k = keyString(key);
    const v = memoryValue(value);
    const ttl = checkTtl(ttlMs);
    const shard = this.#shard(k);
    shard.values.set(k, v);
    if (ttl === 0) {
      if (shard.expiries.size !== 0) shard.expiries.delete(k);
      return;
    }
    const expiresAt = this.#clock() + ttl;
    shard.expiries.set(k, expiresAt);
    shard.heap.push(expiresAt, k);
    // Overwriting keys with new ttls leaves stale heap entries; keep them bounded.
    if (shard.heap.size > 2 * shard.expiries.size + 1024) shard.heap.rebuild(shard.expiries);
  }

  get(key: Bytes): string | undefined {
    const value = this.#live(key);
    if (value === undefined || typeof value === 'string') return value;
    return value.toString('utf8');
  }

  getBuffer(key: Bytes): Buffer | undefined {
    const value = this.#live(key);
    if (value === undefined) return undefined;
    return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  }

  /**
   * The value as held, without a copy: a string when the value is UTF-8 text, otherwise a
   * Buffer that the caller must not modify. For servers that encode the value straight
   * into a reply.
   */
  getStored(key: Bytes): string | Buffer | undefined {
    return this.#live(key);
  }

  has(key: Bytes): boolean {
    return this.#live(key) !== undefined;
  }

  delete(key: Bytes): boolean {
    this.#assertOpen();
    const k = keyString(key);
    const shard = this.#shard(k);
    if (!shard.values.has(k)) return false;
    const live = !this.#expire(shard, k);
    if (live) {
      shard.values.delete(k);
      if (shard.expiries.size !== 0) shard.expiries.delete(k);
    }
    return live;
  }

  ttl(key: Bytes): number | undefined {
    this.#assertOpen();
    const k = keyString(key);
    const shard = this.#shard(k);
    if (!shard.values.has(k) || this.#expire(shard, k)) return undefined;
    const expiresAt = shard.expiries.get(k);
    return expiresAt === undefined ? 0 : remainingMs(expiresAt, this.#clock());
  }

  count(): number {
    this.#assertOpen();
    this.#sweepAllExpired();
    let total = 0;
    for (const shard of this.#shardList) total += shard.values.size;
    return total;
  }

  shardCounts(): number[] {
    this.#assertOpen();
    this.#sweepAllExpired();
    return this.#shardList.map((shard) => shard.values.size);
  }

  /**
   * Keys held in memory, including expired ones that the sweeper has not removed yet.
   * For monitoring memory use; `count()` is the number of live keys.
   */
  heldKeys(): number {
    let total = 0;
    for (const shard of this.#shardList) total += shard.values.size;
    return total;
  }

  flushAll(): void {
    this.#assertOpen();
    this.#dropAll();
  }

  async *entries(): AsyncIterableIterator<StoredEntry> {
    this.#assertOpen();
    for (const shard of this.#shardList) {
      for (const [k, value] of shard.values) {
        if (this.#closed) return;
        const expiresAt = shard.expiries.get(k) ?? 0;
        if (isExpired(expiresAt, this.#clock())) continue;
        yield {
          key: keyStringBytes(k),
          value: typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value),
          expiresAt,
        };
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    this.#dropAll();
  }

  /** Empties every shard. */
  #dropAll(): void {
    for (const shard of this.#shardList) {
      shard.values = new Map();
      shard.expiries = new Map();
      shard.heap.clear();
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError('STORAGE_CLOSED', 'the memory store is closed');
  }

  #shard(k: string): MemoryShard {
    return this.#shardList[shardOfString(k, this.shards)] as MemoryShard;
  }

  /** The live value of `key`, removing it first when it has expired. */
  #live(key: Bytes): string | Buffer | undefined {
    this.#assertOpen();
    const k = keyString(key);
    const shard = this.#shard(k);
    const value = shard.values.get(k);
    if (value === undefined) return undefined;
    if (shard.expiries.size !== 0 && this.#expire(shard, k)) return undefined;
    return value;
  }

  /** Removes `k` when its ttl has run out; true when it did. */
  #expire(shard: MemoryShard, k: string): boolean {
    const expiresAt = shard.expiries.get(k);
    if (expiresAt === undefined || !isExpired(expiresAt, this.#clock())) return false;
    shard.values.delete(k);
    shard.expiries.delete(k);
    return true;
  }

  /** Pops up to `limit` expired heap entries of one shard; true when it stopped at the limit. */
  #sweepShard(shard: MemoryShard, now: number, limit: number): boolean {
    const heap = shard.heap;
    let removed = 0;
    while (isExpired(heap.peekTime(), now)) {
      if (removed === limit) return true;
      const k = heap.popKey();
      const expiresAt = shard.expiries.get(k);
      // Stale entries (key deleted or given a later expiry) are dropped without effect.
      if (expiresAt !== undefined && isExpired(expiresAt, now)) {
        shard.values.delete(k);
        shard.expiries.delete(k);
      }
      removed++;
    }
    return false;
  }

  /** Before counting: every expired key goes, so the count is exact. Each key expires once. */
  #sweepAllExpired(): void {
    let now = -1;
    for (const shard of this.#shardList) {
      if (shard.heap.size === 0) continue;
      if (now === -1) now = this.#clock();
      this.#sweepShard(shard, now, Number.POSITIVE_INFINITY);
    }
  }

  #scheduleSweep(delayMs: number): void {
    this.#sweepTimer = setTimeout(() => this.#sweep(), delayMs);
    this.#sweepTimer.unref();
  }

  #sweep(): void {
    if (this.#closed) return;
    const now = this.#clock();
    let more = false;
    for (const shard of this.#shardList) {
      if (this.#sweepShard(shard, now, this.#sweepLimit)) more = true;
    }
    // When a shard had more expired keys than one run may remove, come back at once, but
    // through the timer queue so that requests are served in between.
    this.#scheduleSweep(more ? 0 : this.#sweepIntervalMs);
  }
}
