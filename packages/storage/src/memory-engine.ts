import { CursorTable, isStartCursor } from './cursors.js';
import { StorageError } from './errors.js';
import { isExpired, remainingMs } from './expiry.js';
import { globMatcher } from './glob.js';
import { shardOfString } from './hash.js';
import {
  checkArray,
  checkCondition,
  checkDelta,
  checkEntry,
  checkExpiresAt,
  checkTtl,
  keyString,
  keyStringBytes,
  memoryValue,
  scanOptionsOf,
} from './input.js';
import { addInteger, notIntegerError, parseInteger } from './integer.js';
import { type MemoryRefs, MemorySnapshot } from './memory-snapshot.js';
import {
  type Clock,
  checkExpiredHook,
  checkPositiveInteger,
  checkShards,
  defaults,
  type MemoryEngineOptions,
} from './options.js';
import type { Bytes, ExpiredHook, KeyValueStore, ScanOptions, ScanResult, SetCondition, StoredEntry } from './store.js';
import { TimeHeap } from './time-heap.js';

class MemoryShard {
  /** Canonical key string → value (UTF-8 text as a string, other bytes as a Buffer). */
  values = new Map<string, string | Buffer>();
  /** Expiry time of every key that has one. Most keys have none, so this map is often empty. */
  expiries = new Map<string, number>();
  heap = new TimeHeap<string>();
}

/**
 * Where an open scan is: a shard, and an iterator over its map once started on it. Map iterators
 * survive inserts and deletes, so every key present throughout is visited once. The price: an
 * iterator left waiting keeps alive the hash table it was on if the map has since been resized
 * (V8 moves it to the new table when it next advances); the bound on open scans bounds that too.
 */
interface MemoryScan {
  shard: number;
  keys: MapIterator<string> | undefined;
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
  #onExpired: ExpiredHook | undefined;
  readonly #scans: CursorTable<MemoryScan>;

  constructor(options: MemoryEngineOptions = {}) {
    this.shards = checkShards(options.shards ?? defaults.shards);
    this.#clock = options.clock ?? Date.now;
    this.#sweepLimit = checkPositiveInteger('sweepLimit', options.sweepLimit ?? defaults.sweepLimit);
    this.#sweepIntervalMs = checkPositiveInteger(
      'sweepIntervalMs',
      options.sweepIntervalMs ?? defaults.sweepIntervalMs,
    );
    this.#scans = new CursorTable(checkPositiveInteger('maxOpenScans', options.maxOpenScans ?? defaults.maxOpenScans));
    this.#shardList = Array.from({ length: this.shards }, () => new MemoryShard());
    this.#scheduleSweep(this.#sweepIntervalMs);
  }

  /**
   * Called once for each key removed because its ttl ran out (by the sweeper, or by a call that
   * found it expired), synchronously, after the key is gone. Keep it short; errors it throws are
   * ignored. Setting anything but a function or undefined throws OPTION_INVALID.
   */
  get onExpired(): ExpiredHook | undefined {
    return this.#onExpired;
  }

  set onExpired(hook: ExpiredHook | undefined) {
    this.#onExpired = checkExpiredHook(hook);
  }

  set(key: Bytes, value: Bytes, ttlMs = 0): void {
    this.#assertOpen();
    const k = keyString(key);
    const v = memoryValue(value);
    const ttl = checkTtl(ttlMs);
    this.#put(this.#shard(k), k, v, ttl);
  }

  setIf(key: Bytes, value: Bytes, ttlMs: number, condition: SetCondition): boolean {
    this.#assertOpen();
    const k = keyString(key);
    const v = memoryValue(value);
    const ttl = checkTtl(ttlMs);
    const present = checkCondition(condition) === 'present';
    const shard = this.#shard(k);
    if ((this.#liveIn(shard, k) !== undefined) !== present) return false;
    this.#put(shard, k, v, ttl);
    return true;
  }

  expire(key: Bytes, ttlMs: number): boolean {
    this.#assertOpen();
    const k = keyString(key);
    const ttl = checkTtl(ttlMs);
    const shard = this.#shard(k);
    if (this.#liveIn(shard, k) === undefined) return false;
    this.#setExpiry(shard, k, ttl);
    return true;
  }

  incrBy(key: Bytes, delta: bigint): bigint {
    this.#assertOpen();
    const k = keyString(key);
    const d = checkDelta(delta);
    const shard = this.#shard(k);
    const value = this.#liveIn(shard, k);
    let current: number | bigint = 0;
    if (value !== undefined) {
      // A Buffer holds bytes that are not UTF-8, so never decimal digits.
      if (typeof value !== 'string') throw notIntegerError();
      current = parseInteger(value);
    }
    const sum = addInteger(current, d);
    // The expiry, if any, stays as it is.
    shard.values.set(k, String(sum));
    return BigInt(sum);
  }

  /**
   * Stores `value` under `key` expiring at the absolute time `expiresAt` (ms since the epoch; 0 =
   * never), as a restore from a backup does. False, storing nothing, when that time has passed.
   */
  restore(key: Bytes, value: Bytes, expiresAt: number): boolean {
    this.#assertOpen();
    const k = keyString(key);
    const v = memoryValue(value);
    const at = checkExpiresAt(expiresAt);
    if (isExpired(at, this.#clock())) return false;
    const shard = this.#shard(k);
    // A key replaced after its ttl ran out is a key that expired: tell the hook first.
    if (this.#onExpired !== undefined && shard.expiries.size !== 0) this.#dropIfExpired(shard, k);
    shard.values.set(k, v);
    if (at === 0) {
      if (shard.expiries.size !== 0) shard.expiries.delete(k);
    } else {
      shard.expiries.set(k, at);
      shard.heap.push(at, k);
    }
    return true;
  }

  /**
   * A point-in-time view of every live key, for a backup: copies the references of the entries
   * (values are never changed in place, only replaced, so a reference keeps the value of now),
   * synchronously, in one pass. Read it with `read()` in bounded steps.
   */
  snapshot(): MemorySnapshot {
    this.#assertOpen();
    const now = this.#clock();
    const refs: MemoryRefs = { keys: [], values: [], expiries: [] };
    for (const shard of this.#shardList) {
      const expiries = shard.expiries;
      for (const [k, value] of shard.values) {
        const expiresAt = expiries.size === 0 ? 0 : (expiries.get(k) ?? 0);
        if (isExpired(expiresAt, now)) continue;
        refs.keys.push(k);
        refs.values.push(value);
        refs.expiries.push(expiresAt);
      }
    }
    return new MemorySnapshot(refs, this.#clock);
  }

  getMany(keys: readonly Bytes[]): Array<Buffer | undefined> {
    this.#assertOpen();
    const ks = checkArray('keys', keys).map(keyString);
    return ks.map((k) => {
      const value = this.#liveIn(this.#shard(k), k);
      if (value === undefined) return undefined;
      return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    });
  }

  setMany(entries: ReadonlyArray<readonly [Bytes, Bytes]>, ttlMs = 0): void {
    this.#assertOpen();
    const list = checkArray('entries', entries);
    const ttl = checkTtl(ttlMs);
    // Everything is checked before anything is stored, so a bad entry stores nothing.
    const ks = new Array<string>(list.length);
    const vs = new Array<string | Buffer>(list.length);
    for (let i = 0; i < list.length; i++) {
      const [key, value] = checkEntry(list[i], i);
      ks[i] = keyString(key);
      vs[i] = memoryValue(value);
    }
    // Expired keys about to be replaced are announced first, so that a hook never sees half an MSET.
    if (this.#onExpired !== undefined) for (const k of ks) this.#liveIn(this.#shard(k), k);
    for (let i = 0; i < ks.length; i++) {
      const k = ks[i] as string;
      this.#put(this.#shard(k), k, vs[i] as string | Buffer, ttl);
    }
  }

  scan(cursor: string, options?: ScanOptions): ScanResult {
    this.#assertOpen();
    const start = isStartCursor(cursor);
    const { count, matches } = scanOptionsOf(options);
    let state: MemoryScan;
    if (start) {
      state = { shard: 0, keys: undefined };
    } else {
      state = this.#scans.get(cursor);
      this.#scans.delete(cursor);
    }
    const now = this.#clock();
    const keys: Buffer[] = [];
    let examined = 0;
    while (state.shard < this.shards && examined < count) {
      const shard = this.#shardList[state.shard] as MemoryShard;
      state.keys ??= shard.values.keys();
      for (;;) {
        if (examined === count) break;
        const next = state.keys.next();
        if (next.done === true) {
          state.shard++;
          state.keys = undefined;
          break;
        }
        examined++;
        const k = next.value;
        if (shard.expiries.size !== 0 && isExpired(shard.expiries.get(k) ?? 0, now)) continue;
        const bytes = keyStringBytes(k);
        if (matches === undefined || matches(bytes)) keys.push(bytes);
      }
    }
    // Shards left that hold nothing need no further call.
    while (state.keys === undefined && state.shard < this.shards) {
      if ((this.#shardList[state.shard] as MemoryShard).values.size !== 0) break;
      state.shard++;
    }
    return { cursor: state.shard < this.shards ? this.#scans.add(state) : '0', keys };
  }

  keys(match: Bytes): Buffer[] {
    this.#assertOpen();
    const matches = globMatcher(match);
    const now = this.#clock();
    const keys: Buffer[] = [];
    for (const shard of this.#shardList) {
      const expiries = shard.expiries;
      for (const k of shard.values.keys()) {
        if (expiries.size !== 0 && isExpired(expiries.get(k) ?? 0, now)) continue;
        const bytes = keyStringBytes(k);
        if (matches(bytes)) keys.push(bytes);
      }
    }
    return keys;
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
    const live = !this.#dropIfExpired(shard, k);
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
    if (!shard.values.has(k) || this.#dropIfExpired(shard, k)) return undefined;
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
    this.#scans.clear();
  }

  /** Empties every shard. */
  #dropAll(): void {
    for (const shard of this.#shardList) {
      shard.values = new Map();
      shard.expiries = new Map();
      shard.heap.clear();
    }
    // An open scan's iterator would walk (and keep in memory) a dropped map: restart it on the
    // new one. Keys the scan had passed are gone, so nothing it must return is lost.
    for (const state of this.#scans.values()) state.keys = undefined;
  }

  /** Stores `v` under `k` with a ttl (0: none), as `set` does. */
  #put(shard: MemoryShard, k: string, v: string | Buffer, ttl: number): void {
    // A key replaced after its ttl ran out is a key that expired: tell the hook first.
    if (this.#onExpired !== undefined && shard.expiries.size !== 0) this.#dropIfExpired(shard, k);
    shard.values.set(k, v);
    this.#setExpiry(shard, k, ttl);
  }

  /** Gives the stored key `k` a ttl from now (0: none). */
  #setExpiry(shard: MemoryShard, k: string, ttl: number): void {
    if (ttl === 0) {
      if (shard.expiries.size !== 0) shard.expiries.delete(k);
      return;
    }
    const expiresAt = this.#clock() + ttl;
    shard.expiries.set(k, expiresAt);
    shard.heap.push(expiresAt, k);
    // Overwriting keys with new ttls leaves stale heap entries; keep them bounded.
    if (shard.heap.size > 2 * shard.expiries.size + 1024) {
      shard.heap.clear();
      for (const [key, time] of shard.expiries) shard.heap.push(time, key);
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
    if (shard.expiries.size !== 0 && this.#dropIfExpired(shard, k)) return undefined;
    return value;
  }

  /** Like #live, for a checked key whose shard is known. */
  #liveIn(shard: MemoryShard, k: string): string | Buffer | undefined {
    const value = shard.values.get(k);
    if (value === undefined) return undefined;
    if (shard.expiries.size !== 0 && this.#dropIfExpired(shard, k)) return undefined;
    return value;
  }

  /** Removes `k` when its ttl has run out; true when it did. */
  #dropIfExpired(shard: MemoryShard, k: string): boolean {
    const expiresAt = shard.expiries.get(k);
    if (expiresAt === undefined || !isExpired(expiresAt, this.#clock())) return false;
    shard.values.delete(k);
    shard.expiries.delete(k);
    if (this.#onExpired !== undefined) this.#announce(k);
    return true;
  }

  /** Tells the onExpired hook; a throwing hook must not break the caller's operation. */
  #announce(k: string): void {
    try {
      this.#onExpired?.(keyStringBytes(k));
    } catch {
      // Ignored: the key is removed either way, and the hook's owner has its own error handling.
    }
  }

  /** Pops up to `limit` expired heap entries of one shard; true when it stopped at the limit. */
  #sweepShard(shard: MemoryShard, now: number, limit: number): boolean {
    const heap = shard.heap;
    let removed = 0;
    while (isExpired(heap.peekTime(), now)) {
      if (removed === limit) return true;
      const k = heap.pop();
      const expiresAt = shard.expiries.get(k);
      // Stale entries (key deleted or given a later expiry) are dropped without effect.
      if (expiresAt !== undefined && isExpired(expiresAt, now)) {
        shard.values.delete(k);
        shard.expiries.delete(k);
        if (this.#onExpired !== undefined) this.#announce(k);
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
