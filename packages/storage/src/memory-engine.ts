import { CursorTable, isStartCursor } from './cursors.js';
import { StorageError } from './errors.js';
import { isExpired, remainingMs } from './expiry.js';
import { globMatcher } from './glob.js';
import { hashBytes, shardOfHash } from './hash.js';
import {
  checkArray,
  checkCondition,
  checkDelta,
  checkEntry,
  checkExpiresAt,
  checkKey,
  checkKeyRange,
  checkTtl,
  checkValue,
  checkValueRange,
  encodeText,
  scanOptionsOf,
} from './input.js';
import { addInteger, notIntegerError, parseInteger } from './integer.js';
import { MemorySnapshot, SnapshotRecords } from './memory-snapshot.js';
import { MemoryTable, NO_ENTRY } from './memory-table.js';
import {
  type Clock,
  checkExpiredHook,
  checkPositiveInteger,
  checkShards,
  defaults,
  type MemoryEngineOptions,
} from './options.js';
import type { Bytes, ExpiredHook, KeyValueStore, ScanOptions, ScanResult, SetCondition, StoredEntry } from './store.js';

/** Strings up to this many UTF-16 units are encoded into a scratch buffer; longer ones into a new one. */
const SCRATCH_CHARS = 4096;
/** Longest canonical int64 text ('-9223372036854775808'): longer values are not integers. */
const LONGEST_INTEGER = 20;
/** Free slots a scan call may pass over per key it may examine, as Redis bounds its empty visits. */
const SCAN_SKIPS_PER_KEY = 10;

/**
 * Where an open scan is: a shard, and the next entry id in it. Ids are stable for as long as an
 * entry lives, however the table grows, so every key present throughout the scan is returned
 * exactly once; a key added meanwhile is returned or not, as the id it gets falls.
 */
interface MemoryScan {
  shard: number;
  id: number;
}

/**
 * The in-memory engine: one hash table per shard, each keeping its keys and values as bytes in
 * slabs (see memory-table.ts), with lazy and active expiry. Every method answers synchronously;
 * nothing here allocates a promise, and a read allocates only what it returns.
 *
 * A key is its bytes: a string key is its UTF-8 encoding, so 'é' and the bytes c3 a9 are one
 * key. Values are bytes too: `get` decodes them as UTF-8, `getBuffer` copies them.
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
  readonly #tables: MemoryTable[];
  readonly #clock: Clock;
  readonly #sweepLimit: number;
  readonly #sweepIntervalMs: number;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #onExpired: ExpiredHook | undefined;
  readonly #scans: CursorTable<MemoryScan>;
  /** Where string keys are encoded (see #keyOf), and the length of the last one. */
  readonly #keyScratch = Buffer.allocUnsafeSlow(3 * SCRATCH_CHARS);
  #keyLength = 0;
  /** onExpired calls in progress: calls they make must not encode keys into #keyScratch. */
  #inHook = 0;
  /** Where string values are encoded (see #valueOf), and the length of the last one. */
  readonly #valueScratch = Buffer.allocUnsafeSlow(3 * SCRATCH_CHARS);
  #valueLength = 0;

  constructor(options: MemoryEngineOptions = {}) {
    this.shards = checkShards(options.shards ?? defaults.shards);
    this.#clock = options.clock ?? Date.now;
    this.#sweepLimit = checkPositiveInteger('sweepLimit', options.sweepLimit ?? defaults.sweepLimit);
    this.#sweepIntervalMs = checkPositiveInteger(
      'sweepIntervalMs',
      options.sweepIntervalMs ?? defaults.sweepIntervalMs,
    );
    this.#scans = new CursorTable(checkPositiveInteger('maxOpenScans', options.maxOpenScans ?? defaults.maxOpenScans));
    this.#tables = Array.from({ length: this.shards }, () => new MemoryTable());
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
    const k = this.#keyOf(key);
    const length = this.#keyLength;
    checkValue(value);
    const ttl = checkTtl(ttlMs);
    this.#put(k, 0, length, value, 0, value.length, this.#expiryOf(ttl));
  }

  /**
   * `set` of the key `key[keyStart, keyEnd)` and the value `value[valueStart, valueEnd)`, for a
   * server that has both in its input buffer: nothing is copied but into the table. Checked as
   * `set` checks (an empty key is KEY_EMPTY); a range outside its array is ARGUMENT_INVALID.
   */
  setRange(
    key: Uint8Array,
    keyStart: number,
    keyEnd: number,
    value: Uint8Array,
    valueStart: number,
    valueEnd: number,
    ttlMs: number,
  ): void {
    this.#assertOpen();
    checkKeyRange(key, keyStart, keyEnd);
    checkValueRange(value, valueStart, valueEnd);
    const ttl = checkTtl(ttlMs);
    this.#put(key, keyStart, keyEnd, value, valueStart, valueEnd, this.#expiryOf(ttl));
  }

  setIf(key: Bytes, value: Bytes, ttlMs: number, condition: SetCondition): boolean {
    this.#assertOpen();
    const k = this.#keyOf(key);
    const length = this.#keyLength;
    checkValue(value);
    const ttl = checkTtl(ttlMs);
    const present = checkCondition(condition) === 'present';
    const hash = hashBytes(k, 0, length);
    if ((this.#liveId(this.#tableOf(hash), hash, k, 0, length) !== NO_ENTRY) !== present) return false;
    this.#put(k, 0, length, value, 0, value.length, this.#expiryOf(ttl));
    return true;
  }

  expire(key: Bytes, ttlMs: number): boolean {
    this.#assertOpen();
    const k = this.#keyOf(key);
    const length = this.#keyLength;
    const ttl = checkTtl(ttlMs);
    const hash = hashBytes(k, 0, length);
    const table = this.#tableOf(hash);
    const id = this.#liveId(table, hash, k, 0, length);
    if (id === NO_ENTRY) return false;
    table.setExpiry(id, this.#expiryOf(ttl));
    return true;
  }

  incrBy(key: Bytes, delta: bigint): bigint {
    this.#assertOpen();
    const k = this.#keyOf(key);
    const length = this.#keyLength;
    const d = checkDelta(delta);
    const hash = hashBytes(k, 0, length);
    const table = this.#tableOf(hash);
    const id = this.#liveId(table, hash, k, 0, length);
    let current: number | bigint = 0;
    if (id !== NO_ENTRY) {
      if (table.valueLength(id) > LONGEST_INTEGER) throw notIntegerError();
      // Latin1 maps each byte to one character, so bytes that are not ASCII digits fail the parse.
      current = parseInteger(table.valueLatin1(id));
    }
    const text = String(addInteger(current, d));
    const v = this.#valueOf(text);
    // The expiry, if any, stays as it is.
    if (id === NO_ENTRY) table.insert(hash, k, 0, length, v, 0, this.#valueLength);
    else table.update(id, k, 0, length, v, 0, this.#valueLength);
    return BigInt(text);
  }

  /**
   * Stores `value` under `key` expiring at the absolute time `expiresAt` (ms since the epoch; 0 =
   * never), as a restore from a backup does. False, storing nothing, when that time has passed.
   */
  restore(key: Bytes, value: Bytes, expiresAt: number): boolean {
    this.#assertOpen();
    const k = this.#keyOf(key);
    const length = this.#keyLength;
    checkValue(value);
    const at = checkExpiresAt(expiresAt);
    if (isExpired(at, this.#clock())) return false;
    this.#put(k, 0, length, value, 0, value.length, at);
    return true;
  }

  /**
   * A point-in-time view of every live key, for a backup: a copy of each live entry, made
   * synchronously in one pass, read with `read()` in bounded steps. It costs memory: about the
   * bytes of every key and value plus 10 bytes a key (42 MB for 1M keys of 16 + 16 bytes), until
   * it is read past or closed. Entries are written in place, so there is nothing to share.
   */
  snapshot(): MemorySnapshot {
    this.#assertOpen();
    const now = this.#clock();
    const records = new SnapshotRecords();
    for (const table of this.#tables) {
      for (let id = 0; id < table.top; id++) {
        if (!table.holds(id)) continue;
        const expiresAt = table.expiresAt(id);
        if (isExpired(expiresAt, now)) continue;
        records.add(expiresAt, table.slab(id), table.entryStart(id), table.entryLength(id));
      }
    }
    return new MemorySnapshot(records, this.#clock);
  }

  getMany(keys: readonly Bytes[]): Array<Buffer | undefined> {
    this.#assertOpen();
    const list = checkArray('keys', keys);
    // Every key is checked before any is read.
    for (const key of list) checkKey(key);
    return list.map((key) => {
      const handle = this.#handleOf(key);
      return handle === NO_ENTRY ? undefined : this.#tableOfHandle(handle).valueCopy(this.#idOfHandle(handle));
    });
  }

  setMany(entries: ReadonlyArray<readonly [Bytes, Bytes]>, ttlMs = 0): void {
    this.#assertOpen();
    const list = checkArray('entries', entries);
    const ttl = checkTtl(ttlMs);
    // Everything is checked before anything is stored, so a bad entry stores nothing.
    for (let i = 0; i < list.length; i++) {
      const [key, value] = checkEntry(list[i], i);
      checkKey(key);
      checkValue(value);
    }
    // Expired keys about to be replaced are announced first, so that a hook never sees half an MSET.
    if (this.#onExpired !== undefined) for (const [key] of list) this.#handleOf(key);
    const expiresAt = this.#expiryOf(ttl);
    for (const [key, value] of list) {
      const k = this.#keyOf(key);
      this.#put(k, 0, this.#keyLength, value, 0, value.length, expiresAt);
    }
  }

  scan(cursor: string, options?: ScanOptions): ScanResult {
    this.#assertOpen();
    const start = isStartCursor(cursor);
    const { count, matches } = scanOptionsOf(options);
    let state: MemoryScan;
    if (start) {
      state = { shard: 0, id: 0 };
    } else {
      state = this.#scans.get(cursor);
      this.#scans.delete(cursor);
    }
    const now = this.#clock();
    const keys: Buffer[] = [];
    const maxSkipped = count * SCAN_SKIPS_PER_KEY;
    let examined = 0;
    let skipped = 0;
    while (state.shard < this.shards) {
      const table = this.#tables[state.shard] as MemoryTable;
      if (table.size === 0 || state.id >= table.top) {
        // Shards left that hold nothing need no further call.
        state.shard++;
        state.id = 0;
        continue;
      }
      const id = state.id;
      if (!table.holds(id)) {
        if (skipped === maxSkipped) break;
        skipped++;
        state.id++;
        continue;
      }
      if (examined === count) break;
      examined++;
      state.id++;
      if (isExpired(table.expiresAt(id), now)) continue;
      const key = table.keyCopy(id);
      if (matches === undefined || matches(key)) keys.push(key);
    }
    return { cursor: state.shard < this.shards ? this.#scans.add(state) : '0', keys };
  }

  keys(match: Bytes): Buffer[] {
    this.#assertOpen();
    const matches = globMatcher(match);
    const now = this.#clock();
    const keys: Buffer[] = [];
    for (const table of this.#tables) {
      for (let id = 0; id < table.top; id++) {
        if (!table.holds(id) || isExpired(table.expiresAt(id), now)) continue;
        const key = table.keyCopy(id);
        if (matches(key)) keys.push(key);
      }
    }
    return keys;
  }

  get(key: Bytes): string | undefined {
    const handle = this.#handleOf(key);
    if (handle === NO_ENTRY) return undefined;
    return this.#tableOfHandle(handle).valueText(this.#idOfHandle(handle));
  }

  getBuffer(key: Bytes): Buffer | undefined {
    const handle = this.#handleOf(key);
    if (handle === NO_ENTRY) return undefined;
    return this.#tableOfHandle(handle).valueCopy(this.#idOfHandle(handle));
  }

  /**
   * The value's bytes, as `getBuffer` gives them (a copy the caller owns). Kept for servers
   * written against the engine that held values as strings; `lookup` reads without a copy.
   */
  getStored(key: Bytes): Buffer | undefined {
    return this.getBuffer(key);
  }

  /**
   * The handle of the live entry whose key is `key[start, end)`, or -1 when there is none (an
   * expired entry is removed, and `onExpired` told, as any read does). Read the value's bytes
   * with `valueSlab`, `valueStart` and `valueLength`: a server copies them into its reply
   * without any allocation. A handle and the bytes it names are valid until the next write to
   * the engine: a call that stores or deletes a key, a read that finds a key expired (it removes
   * it), a `count()`, or a sweep (a timer, so never within one synchronous run of code).
   */
  lookup(key: Uint8Array, start: number, end: number): number {
    this.#assertOpen();
    checkKeyRange(key, start, end);
    return this.#handle(key, start, end);
  }

  /** The Buffer holding the value of the entry `handle` names (see `lookup`). */
  valueSlab(handle: number): Buffer {
    return this.#tableOfHandle(handle).slab(this.#idOfHandle(handle));
  }

  /** Where the value starts in `valueSlab(handle)`. */
  valueStart(handle: number): number {
    return this.#tableOfHandle(handle).valueStart(this.#idOfHandle(handle));
  }

  /** The value's length in bytes. */
  valueLength(handle: number): number {
    return this.#tableOfHandle(handle).valueLength(this.#idOfHandle(handle));
  }

  has(key: Bytes): boolean {
    return this.#handleOf(key) !== NO_ENTRY;
  }

  delete(key: Bytes): boolean {
    this.#assertOpen();
    const k = this.#keyOf(key);
    const length = this.#keyLength;
    const hash = hashBytes(k, 0, length);
    const table = this.#tableOf(hash);
    const id = table.find(hash, k, 0, length);
    if (id === NO_ENTRY) return false;
    if (this.#isExpiredEntry(table, id)) {
      this.#removeExpired(table, id);
      return false;
    }
    table.remove(id);
    return true;
  }

  ttl(key: Bytes): number | undefined {
    const handle = this.#handleOf(key);
    if (handle === NO_ENTRY) return undefined;
    const expiresAt = this.#tableOfHandle(handle).expiresAt(this.#idOfHandle(handle));
    return expiresAt === 0 ? 0 : remainingMs(expiresAt, this.#clock());
  }

  count(): number {
    this.#assertOpen();
    this.#sweepAllExpired();
    return this.heldKeys();
  }

  shardCounts(): number[] {
    this.#assertOpen();
    this.#sweepAllExpired();
    return this.#tables.map((table) => table.size);
  }

  /**
   * Keys held in memory, including expired ones that the sweeper has not removed yet.
   * For monitoring memory use; `count()` is the number of live keys.
   */
  heldKeys(): number {
    let total = 0;
    for (const table of this.#tables) total += table.size;
    return total;
  }

  flushAll(): void {
    this.#assertOpen();
    this.#dropAll();
  }

  async *entries(): AsyncIterableIterator<StoredEntry> {
    this.#assertOpen();
    for (const table of this.#tables) {
      // The table may change at each yield: `top` and `holds` are read again every step.
      for (let id = 0; id < table.top; id++) {
        if (this.#closed) return;
        if (!table.holds(id)) continue;
        const expiresAt = table.expiresAt(id);
        if (isExpired(expiresAt, this.#clock())) continue;
        yield { key: table.keyCopy(id), value: table.valueCopy(id), expiresAt };
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

  /**
   * Empties every shard. Tables are cleared in place, never replaced, so that a call interrupted
   * by an onExpired hook that flushes goes on with the table it holds. Open scans go on: their
   * ids are past the top of an empty table, and keys they had passed are gone.
   */
  #dropAll(): void {
    for (const table of this.#tables) table.clear();
  }

  /**
   * Stores `value[valueStart, valueEnd)` (a string value: all of it) under `key[keyStart, keyEnd)`,
   * expiring at `expiresAt` (0: never), as `set` does.
   */
  #put(
    key: Uint8Array,
    keyStart: number,
    keyEnd: number,
    value: Bytes,
    valueStart: number,
    valueEnd: number,
    expiresAt: number,
  ): void {
    const hash = hashBytes(key, keyStart, keyEnd);
    const table = this.#tableOf(hash);
    const found = this.#idForWrite(table, hash, key, keyStart, keyEnd);
    // Encoded after any onExpired call above, which may have set values through the scratch buffer.
    let bytes: Uint8Array;
    let start = valueStart;
    let end = valueEnd;
    if (typeof value === 'string') {
      bytes = this.#valueOf(value);
      start = 0;
      end = this.#valueLength;
    } else {
      bytes = value;
    }
    let id = found;
    if (id === NO_ENTRY) id = table.insert(hash, key, keyStart, keyEnd, bytes, start, end);
    else table.update(id, key, keyStart, keyEnd, bytes, start, end);
    table.setExpiry(id, expiresAt);
  }

  /**
   * The id of the entry a write of the key replaces, or NO_ENTRY. An expired entry is returned
   * as it is, to be overwritten, unless there is an onExpired hook to tell first: a key replaced
   * after its ttl ran out is a key that expired.
   */
  #idForWrite(table: MemoryTable, hash: number, key: Uint8Array, start: number, end: number): number {
    for (;;) {
      const id = table.find(hash, key, start, end);
      if (id === NO_ENTRY || this.#onExpired === undefined || !this.#isExpiredEntry(table, id)) return id;
      // The hook may write to the store; look again once it has run.
      this.#removeExpired(table, id);
    }
  }

  /** The id of the live entry of `key[start, end)`, removing it first when it has expired. */
  #liveId(table: MemoryTable, hash: number, key: Uint8Array, start: number, end: number): number {
    const id = table.find(hash, key, start, end);
    if (id === NO_ENTRY || !this.#isExpiredEntry(table, id)) return id;
    this.#removeExpired(table, id);
    return NO_ENTRY;
  }

  #isExpiredEntry(table: MemoryTable, id: number): boolean {
    if (!table.hasExpiries) return false;
    const expiresAt = table.expiresAt(id);
    return expiresAt !== 0 && isExpired(expiresAt, this.#clock());
  }

  /** A handle (see `lookup`) of the live entry of a key given as `Bytes`, or NO_ENTRY. */
  #handleOf(key: Bytes): number {
    this.#assertOpen();
    const k = this.#keyOf(key);
    return this.#handle(k, 0, this.#keyLength);
  }

  /** The handle of the live entry of `key[start, end)`: its id and its shard in one number. */
  #handle(key: Uint8Array, start: number, end: number): number {
    const hash = hashBytes(key, start, end);
    const shard = shardOfHash(hash, this.shards);
    const id = this.#liveId(this.#tables[shard] as MemoryTable, hash, key, start, end);
    // A small integer as long as the store holds fewer than 2^31 / shards keys a shard.
    return id === NO_ENTRY ? NO_ENTRY : id * this.shards + shard;
  }

  #tableOfHandle(handle: number): MemoryTable {
    return this.#tables[handle % this.shards] as MemoryTable;
  }

  #idOfHandle(handle: number): number {
    return Math.floor(handle / this.shards);
  }

  #tableOf(hash: number): MemoryTable {
    return this.#tables[shardOfHash(hash, this.shards)] as MemoryTable;
  }

  /**
   * A checked key's bytes: the array itself, or its UTF-8 encoding in the scratch buffer (in a
   * new buffer when long, or when called from an onExpired hook). Their length is left in
   * #keyLength; read it before the next call.
   */
  #keyOf(key: Bytes): Uint8Array {
    checkKey(key);
    if (typeof key !== 'string') {
      this.#keyLength = key.length;
      return key;
    }
    const scratch = key.length <= SCRATCH_CHARS && this.#inHook === 0;
    const into = scratch ? this.#keyScratch : Buffer.allocUnsafe(3 * key.length);
    this.#keyLength = encodeText(key, into);
    return into;
  }

  /** A string value's UTF-8 bytes, as #keyOf makes a key's; the length is left in #valueLength. */
  #valueOf(value: string): Uint8Array {
    const into = value.length <= SCRATCH_CHARS ? this.#valueScratch : Buffer.allocUnsafe(3 * value.length);
    this.#valueLength = encodeText(value, into);
    return into;
  }

  /** The absolute expiry of a ttl from now (0: never). */
  #expiryOf(ttl: number): number {
    return ttl === 0 ? 0 : this.#clock() + ttl;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError('STORAGE_CLOSED', 'the memory store is closed');
  }

  /** Removes entry `id` because its ttl ran out, and tells the onExpired hook. */
  #removeExpired(table: MemoryTable, id: number): void {
    const hook = this.#onExpired;
    if (hook === undefined) {
      table.remove(id);
      return;
    }
    const key = table.keyCopy(id);
    table.remove(id);
    // The hook may call the engine; the call in progress may still be reading its key from the
    // scratch buffer, so calls made by the hook encode theirs elsewhere (see #keyOf).
    this.#inHook++;
    try {
      hook(key);
    } catch {
      // Ignored: the key is removed either way, and the hook's owner has its own error handling.
    } finally {
      this.#inHook--;
    }
  }

  /** Pops up to `limit` expired heap entries of one shard; true when it stopped at the limit. */
  #sweepTable(table: MemoryTable, now: number, limit: number): boolean {
    let removed = 0;
    while (isExpired(table.nextExpiry(), now)) {
      if (removed === limit) return true;
      // Stale heap pairs (key deleted or given a later expiry) are dropped without effect.
      const id = table.popExpiry();
      if (id !== NO_ENTRY) this.#removeExpired(table, id);
      removed++;
    }
    return false;
  }

  /** Before counting: every expired key goes, so the count is exact. Each key expires once. */
  #sweepAllExpired(): void {
    let now = -1;
    for (const table of this.#tables) {
      if (!table.hasExpiries) continue;
      if (now === -1) now = this.#clock();
      this.#sweepTable(table, now, Number.POSITIVE_INFINITY);
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
    for (const table of this.#tables) {
      if (this.#sweepTable(table, now, this.#sweepLimit)) more = true;
    }
    // When a shard had more expired keys than one run may remove, come back at once, but
    // through the timer queue so that requests are served in between.
    this.#scheduleSweep(more ? 0 : this.#sweepIntervalMs);
  }
}
