import { hashBytes } from './hash.js';
import { copyBytes } from './input.js';
import { entryBytes, entryBytesAt, keyStartAt, lengthBytes, readLength, writeEntry } from './memory-entry.js';
import { MemorySlabs } from './memory-slabs.js';
import { TimeHeap } from './time-heap.js';

// One shard of the memory engine: a chained hash table over typed arrays, with each entry in a
// chunk of the shard's slabs (see memory-slabs.ts). Nothing here allocates a JS object or string
// per key.
//
// A chunk is a header of two little-endian int32s, then the entry's bytes (memory-entry.ts):
//   NEXT  the address of the next chunk in the same bucket, or NO_ADDR,
//   ID    the entry's id.
// A bucket holds the address of its first chunk, so that a lookup reads the bucket, then the
// chunk, whose header and key share a cache line: two dependent reads from memory where a table
// of its own for the chain (bucket, then slot, then chunk) took three. At 100,000 keys and more
// none of the three arrays fits in the cache, and each read waits for memory.
//
// An entry is also named by its id, which it keeps from insert to removal, whatever is written
// to it and however the table grows, so that the expiry heap and open scans can hold ids.
// `#addrs` maps ids to chunk addresses (NO_ADDR for a free id); freed ids are reused first.
//
// There are as many buckets as ids, a power of two, so the load stays at most 1; both double
// together when every id is taken. Nothing shrinks until `clear`. Chunks do not keep their key's
// hash: removal and growth hash the key again (a write of a new chunk size class, a delete, an
// expiry, and every key once per doubling).
//
// Growing moves the chains into the new buckets a few old buckets at a time, with each insert, as
// Redis's dict does: moving them all at once would stop the server while it reads every chunk
// (over a second at 8M keys in one shard). Until the move is done, a key's chain is in the old
// buckets if its old bucket has not been moved yet, else in the new ones: a lookup still reads
// one bucket.
//
// Expiry times live in a Float64Array allocated when the first key with a ttl arrives: most
// stores have few or none, and those pay nothing per key. The expiry heap holds (time, id) and
// may hold stale pairs (a key deleted or given another expiry); `popExpiry` tells them apart by
// comparing the time with the entry's current expiry.

/** A chunk's header: where its int32 fields start, and its size in bytes. */
const NEXT = 0;
const ID = 4;
const HEADER_BYTES = 8;

/** No entry: a key not found. */
export const NO_ENTRY = -1;
/** No chunk: an empty bucket, the end of a chain, a free id. No chunk address is this low. */
const NO_ADDR = -0x80000000;
const INITIAL_CAPACITY = 16;
/** Keys longer than this are compared natively; shorter ones in a loop, cheaper than the call. */
const LONG_KEY = 64;
/**
 * Old buckets each insert moves while the table grows: the move ends after a quarter of the
 * inserts that fill the new table, and costs an insert about two chunk reads meanwhile.
 */
const MOVE_STEP = 2;
/** Stale heap pairs tolerated beyond twice the keys with an expiry, before the heap is rebuilt. */
const HEAP_SLACK = 1024;

export class MemoryTable {
  #slabs = new MemorySlabs();
  #capacity = INITIAL_CAPACITY;
  #mask = INITIAL_CAPACITY - 1;
  #buckets = new Int32Array(INITIAL_CAPACITY).fill(NO_ADDR);
  /** While the table grows: the buckets before it did, those below `#moved` moved already. */
  #oldBuckets: Int32Array | undefined;
  #oldMask = 0;
  #moved = 0;
  /** The index in the array `#bucketsOf` returned last. */
  #bucket = 0;
  #addrs = new Int32Array(INITIAL_CAPACITY).fill(NO_ADDR);
  #expiries: Float64Array | undefined;
  /** Ids ever used: ids below it are entries or free. */
  #top = 0;
  /** Freed ids, the last freed on top. */
  #freeIds: number[] = [];
  #size = 0;
  /** Entries with a non-zero expiry. */
  #expiring = 0;
  #heap = new TimeHeap<number>();
  /**
   * The entry `find` found last and its chunk address: a read that follows a lookup takes the
   * address from here, not from `#addrs`, which would be a third read from memory.
   */
  #foundId = NO_ENTRY;
  #foundAddr = NO_ADDR;
  /** The value `update` was given last, and whether its bytes may be in the slabs (`#mayBeStored`). */
  #lastValue: Uint8Array | undefined;
  #lastValueStored = false;

  /** Entries held, expired ones not yet removed included. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of memory held: the slabs and the typed arrays. */
  get bytes(): number {
    const expiries = this.#expiries === undefined ? 0 : this.#expiries.byteLength;
    const old = this.#oldBuckets === undefined ? 0 : this.#oldBuckets.byteLength;
    return this.#slabs.bytes + this.#buckets.byteLength + old + this.#addrs.byteLength + expiries;
  }

  /** One past the highest id in use; iterate ids below it and skip those `holds` says are free. */
  get top(): number {
    return this.#top;
  }

  /** True when some entry has an expiry, so that reads of a store without ttls never read the clock. */
  get hasExpiries(): boolean {
    return this.#expiring !== 0;
  }

  /** True when `id` (below `top`) is an entry, not a free id. */
  holds(id: number): boolean {
    return this.#addrs[id] !== NO_ADDR;
  }

  /** The id of the entry whose key is `key[start, end)` with this hash, or NO_ENTRY. */
  find(hash: number, key: Uint8Array, start: number, end: number): number {
    const slabs = this.#slabs;
    const buckets = this.#bucketsOf(hash);
    let addr = buckets[this.#bucket] as number;
    while (addr !== NO_ADDR) {
      const slab = slabs.buffer(addr);
      const at = slabs.offset(addr);
      if (this.#hasKey(slab, at + HEADER_BYTES, key, start, end)) {
        const id = readInt(slab, at + ID);
        this.#foundId = id;
        this.#foundAddr = addr;
        return id;
      }
      addr = readInt(slab, at + NEXT);
    }
    return NO_ENTRY;
  }

  /** Adds an entry for a key that `find` did not find; returns its id. */
  insert(
    hash: number,
    key: Uint8Array,
    keyStart: number,
    keyEnd: number,
    value: Uint8Array,
    valueStart: number,
    valueEnd: number,
  ): number {
    // The chunk first: when memory runs out, it throws with the table unchanged.
    const addr = this.#store(key, keyStart, keyEnd, value, valueStart, valueEnd);
    const id = this.#takeId();
    const slab = this.#slabs.buffer(addr);
    const at = this.#slabs.offset(addr);
    const buckets = this.#bucketsOf(hash);
    writeInt(slab, at + ID, id);
    writeInt(slab, at + NEXT, buckets[this.#bucket] as number);
    buckets[this.#bucket] = addr;
    this.#addrs[id] = addr;
    this.#size++;
    if (this.#oldBuckets !== undefined) this.#move(MOVE_STEP);
    return id;
  }

  /** Replaces the value of entry `id`, whose key is `key[keyStart, keyEnd)`. Its expiry stays. */
  update(
    id: number,
    key: Uint8Array,
    keyStart: number,
    keyEnd: number,
    value: Uint8Array,
    valueStart: number,
    valueEnd: number,
  ): void {
    const slabs = this.#slabs;
    const addr = this.#addrOf(id);
    const slab = slabs.buffer(addr);
    const offset = slabs.offset(addr) + HEADER_BYTES;
    const size = HEADER_BYTES + entryBytes(keyEnd - keyStart, valueEnd - valueStart);
    const oldSize = HEADER_BYTES + entryBytesAt(slab, offset);
    if (slabs.fits(addr, oldSize, size)) {
      // A value read from this very chunk (the caller passed valueSlab's bytes) would be
      // overwritten while it is copied: copy it out first.
      const own = this.#mayBeStored(value) && value.buffer === slab.buffer;
      const source = own ? copyOut(value, valueStart, valueEnd) : value;
      const start = own ? 0 : valueStart;
      writeEntry(slab, offset, key, keyStart, keyEnd, source, start, start + valueEnd - valueStart);
      return;
    }
    // The new chunk is written before the old one is freed, so a value read from it stays intact.
    const moved = this.#store(key, keyStart, keyEnd, value, valueStart, valueEnd);
    const movedSlab = slabs.buffer(moved);
    const at = slabs.offset(moved);
    writeInt(movedSlab, at + ID, id);
    writeInt(movedSlab, at + NEXT, readInt(slab, offset - HEADER_BYTES + NEXT));
    this.#relink(hashBytes(key, keyStart, keyEnd), addr, moved);
    this.#addrs[id] = moved;
    if (this.#foundId === id) this.#foundAddr = moved;
    slabs.free(addr, oldSize);
  }

  /** Removes entry `id`. */
  remove(id: number): void {
    const slabs = this.#slabs;
    const addr = this.#addrOf(id);
    const slab = slabs.buffer(addr);
    const offset = slabs.offset(addr) + HEADER_BYTES;
    this.#relink(hashOfEntry(slab, offset), addr, readInt(slab, offset - HEADER_BYTES + NEXT));
    slabs.free(addr, HEADER_BYTES + entryBytesAt(slab, offset));
    this.#addrs[id] = NO_ADDR;
    this.#freeIds.push(id);
    if (this.#foundId === id) this.#foundId = NO_ENTRY;
    this.#size--;
    const expiries = this.#expiries;
    if (expiries !== undefined && expiries[id] !== 0) {
      expiries[id] = 0;
      this.#expiring--;
    }
  }

  /** When entry `id` expires, in ms since the epoch; 0 for never. */
  expiresAt(id: number): number {
    return this.#expiries === undefined ? 0 : (this.#expiries[id] as number);
  }

  /** Sets when entry `id` expires (0: never). */
  setExpiry(id: number, expiresAt: number): void {
    let expiries = this.#expiries;
    if (expiresAt === 0) {
      if (expiries !== undefined && expiries[id] !== 0) {
        expiries[id] = 0;
        this.#expiring--;
      }
      return;
    }
    if (expiries === undefined) {
      expiries = new Float64Array(this.#capacity);
      this.#expiries = expiries;
    }
    if (expiries[id] === 0) this.#expiring++;
    expiries[id] = expiresAt;
    const heap = this.#heap;
    heap.push(expiresAt, id);
    // Overwriting keys with new ttls leaves stale heap pairs; keep them bounded.
    if (heap.size > 2 * this.#expiring + HEAP_SLACK) this.#rebuildHeap();
  }

  /** The earliest time in the expiry heap (maybe stale); Infinity when it is empty. */
  nextExpiry(): number {
    return this.#heap.peekTime();
  }

  /**
   * Pops the earliest pair of the expiry heap: the id of its entry when that entry still expires
   * at that time, NO_ENTRY when the pair is stale. Call only when `nextExpiry()` is finite.
   */
  popExpiry(): number {
    const time = this.#heap.peekTime();
    const id = this.#heap.pop();
    return this.expiresAt(id) === time ? id : NO_ENTRY;
  }

  /** The Buffer holding entry `id`'s bytes (valid until the next write to this table). */
  slab(id: number): Buffer {
    return this.#slabs.buffer(this.#addrOf(id));
  }

  /** Where entry `id`'s bytes (lengths, key, value) start in `slab(id)`. */
  entryStart(id: number): number {
    return this.#slabs.offset(this.#addrOf(id)) + HEADER_BYTES;
  }

  /** Bytes of entry `id`, lengths included. */
  entryLength(id: number): number {
    return entryBytesAt(this.slab(id), this.entryStart(id));
  }

  keyStart(id: number): number {
    return keyStartAt(this.slab(id), this.entryStart(id));
  }

  keyLength(id: number): number {
    return readLength(this.slab(id), this.entryStart(id));
  }

  valueStart(id: number): number {
    const slab = this.slab(id);
    const start = this.entryStart(id);
    return keyStartAt(slab, start) + readLength(slab, start);
  }

  valueLength(id: number): number {
    const slab = this.slab(id);
    const start = this.entryStart(id);
    return readLength(slab, start + lengthBytes(readLength(slab, start)));
  }

  /** A copy of entry `id`'s key. */
  keyCopy(id: number): Buffer {
    const start = this.keyStart(id);
    return copyOut(this.slab(id), start, start + this.keyLength(id));
  }

  /** A copy of entry `id`'s value. */
  valueCopy(id: number): Buffer {
    const start = this.valueStart(id);
    return copyOut(this.slab(id), start, start + this.valueLength(id));
  }

  /** Entry `id`'s value decoded as UTF-8 (bytes that are not UTF-8 become U+FFFD). */
  valueText(id: number): string {
    // The lengths are read once here: `get` of a string is the embedder's hot path.
    const addr = this.#addrOf(id);
    const slab = this.#slabs.buffer(addr);
    const offset = this.#slabs.offset(addr) + HEADER_BYTES;
    const keyLength = readLength(slab, offset);
    const valueAt = offset + lengthBytes(keyLength);
    const valueLength = readLength(slab, valueAt);
    const start = valueAt + lengthBytes(valueLength) + keyLength;
    return slab.toString('utf8', start, start + valueLength);
  }

  /** Entry `id`'s value as latin1 text: one character per byte. */
  valueLatin1(id: number): string {
    const start = this.valueStart(id);
    return this.slab(id).toString('latin1', start, start + this.valueLength(id));
  }

  /** Drops every entry and the memory they held. */
  clear(): void {
    this.#slabs = new MemorySlabs();
    this.#capacity = INITIAL_CAPACITY;
    this.#mask = INITIAL_CAPACITY - 1;
    this.#buckets = new Int32Array(INITIAL_CAPACITY).fill(NO_ADDR);
    this.#oldBuckets = undefined;
    this.#addrs = new Int32Array(INITIAL_CAPACITY).fill(NO_ADDR);
    this.#expiries = undefined;
    this.#top = 0;
    this.#freeIds = [];
    this.#foundId = NO_ENTRY;
    this.#lastValue = undefined;
    this.#size = 0;
    this.#expiring = 0;
    this.#heap.clear();
  }

  /**
   * False when `value`'s bytes are certainly not in this table's slabs. Reading a typed array's
   * `buffer` costs about 30 ns here (two of them were a sixth of a SET over 100,000 keys, in
   * process), and a server passes the same input chunk as the value of every SET in it: the
   * answer is kept for the last value seen, and so is a reference to that value (one per table,
   * until the next overwrite). A kept false stays true to the fact: slabs take fresh memory, never
   * a caller's. A kept true may outlive a large chunk that was freed, and then only costs a copy.
   */
  #mayBeStored(value: Uint8Array): boolean {
    if (value !== this.#lastValue) {
      this.#lastValue = value;
      this.#lastValueStored = this.#slabs.holds(value.buffer);
    }
    return this.#lastValueStored;
  }

  /** The chunk address of entry `id`. */
  #addrOf(id: number): number {
    return id === this.#foundId ? this.#foundAddr : (this.#addrs[id] as number);
  }

  /** True when the entry at `slab[offset]` has the key `key[start, end)`. */
  #hasKey(slab: Buffer, offset: number, key: Uint8Array, start: number, end: number): boolean {
    const length = end - start;
    if (readLength(slab, offset) !== length) return false;
    const lengthsEnd = offset + lengthBytes(length);
    let at = lengthsEnd + lengthBytes(readLength(slab, lengthsEnd));
    if (length > LONG_KEY) return slab.compare(key, start, end, at, at + length) === 0;
    for (let i = start; i < end; i++, at++) {
      if (slab[at] !== key[i]) return false;
    }
    return true;
  }

  /** The bucket array holding the chain of keys with this hash; the index there is `#bucket`. */
  #bucketsOf(hash: number): Int32Array {
    const old = this.#oldBuckets;
    if (old !== undefined) {
      const bucket = hash & this.#oldMask;
      if (bucket >= this.#moved) {
        this.#bucket = bucket;
        return old;
      }
    }
    this.#bucket = hash & this.#mask;
    return this.#buckets;
  }

  /**
   * Makes whatever links to chunk `addr` in the chain of `hash` (its bucket or a chunk's NEXT)
   * link to `to`.
   */
  #relink(hash: number, addr: number, to: number): void {
    const slabs = this.#slabs;
    const buckets = this.#bucketsOf(hash);
    let at = buckets[this.#bucket] as number;
    if (at === addr) {
      buckets[this.#bucket] = to;
      return;
    }
    for (;;) {
      const slab = slabs.buffer(at);
      const next = slabs.offset(at) + NEXT;
      at = readInt(slab, next);
      if (at === addr) {
        writeInt(slab, next, to);
        return;
      }
    }
  }

  /** A chunk holding the entry, written; its header is the caller's to write. */
  #store(
    key: Uint8Array,
    keyStart: number,
    keyEnd: number,
    value: Uint8Array,
    valueStart: number,
    valueEnd: number,
  ): number {
    const slabs = this.#slabs;
    const addr = slabs.alloc(HEADER_BYTES + entryBytes(keyEnd - keyStart, valueEnd - valueStart));
    const offset = slabs.offset(addr) + HEADER_BYTES;
    writeEntry(slabs.buffer(addr), offset, key, keyStart, keyEnd, value, valueStart, valueEnd);
    return addr;
  }

  /** An id for a new entry: a freed one, else the next unused one, growing the table when full. */
  #takeId(): number {
    const free = this.#freeIds.pop();
    if (free !== undefined) return free;
    if (this.#top === this.#capacity) this.#grow();
    return this.#top++;
  }

  /**
   * Doubles the ids and the buckets. The chains stay in the old buckets, for inserts to move
   * (`#move`); a move still under way is finished first.
   */
  #grow(): void {
    if (this.#oldBuckets !== undefined) this.#move(this.#oldBuckets.length);
    const capacity = this.#capacity * 2;
    const addrs = new Int32Array(capacity).fill(NO_ADDR);
    addrs.set(this.#addrs);
    if (this.#expiries !== undefined) {
      const expiries = new Float64Array(capacity);
      expiries.set(this.#expiries);
      this.#expiries = expiries;
    }
    this.#oldBuckets = this.#buckets;
    this.#oldMask = this.#mask;
    this.#moved = 0;
    this.#capacity = capacity;
    this.#mask = capacity - 1;
    this.#addrs = addrs;
    this.#buckets = new Int32Array(capacity).fill(NO_ADDR);
  }

  /** Moves the chains of up to `count` more old buckets into the new ones. */
  #move(count: number): void {
    const old = this.#oldBuckets as Int32Array;
    const slabs = this.#slabs;
    const buckets = this.#buckets;
    const mask = this.#mask;
    const end = Math.min(old.length, this.#moved + count);
    for (let bucket = this.#moved; bucket < end; bucket++) {
      let addr = old[bucket] as number;
      while (addr !== NO_ADDR) {
        const slab = slabs.buffer(addr);
        const at = slabs.offset(addr);
        const next = readInt(slab, at + NEXT);
        const to = hashOfEntry(slab, at + HEADER_BYTES) & mask;
        writeInt(slab, at + NEXT, buckets[to] as number);
        buckets[to] = addr;
        addr = next;
      }
    }
    this.#moved = end;
    if (end === old.length) this.#oldBuckets = undefined;
  }

  #rebuildHeap(): void {
    const heap = this.#heap;
    const expiries = this.#expiries as Float64Array;
    heap.clear();
    for (let id = 0; id < this.#top; id++) {
      const expiresAt = expiries[id] as number;
      if (expiresAt !== 0) heap.push(expiresAt, id);
    }
  }
}

/** The hash of the key of the entry at `slab[offset]`: chunks do not keep it. */
function hashOfEntry(slab: Uint8Array, offset: number): number {
  const keyStart = keyStartAt(slab, offset);
  return hashBytes(slab, keyStart, keyStart + readLength(slab, offset));
}

/** The int32 at `bytes[pos]`, little-endian: a chunk header's field. */
function readInt(bytes: Uint8Array, pos: number): number {
  return (
    (bytes[pos] as number) |
    ((bytes[pos + 1] as number) << 8) |
    ((bytes[pos + 2] as number) << 16) |
    ((bytes[pos + 3] as number) << 24)
  );
}

function writeInt(bytes: Uint8Array, pos: number, n: number): void {
  bytes[pos] = n;
  bytes[pos + 1] = n >>> 8;
  bytes[pos + 2] = n >>> 16;
  bytes[pos + 3] = n >>> 24;
}

/** A Buffer the caller owns holding `source[start, end)`. */
function copyOut(source: Uint8Array, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  copyBytes(source, start, end, out, 0);
  return out;
}
