import { copyBytes } from './input.js';
import { entryBytes, entryBytesAt, keyStartAt, lengthBytes, readLength, writeEntry } from './memory-entry.js';
import { MemorySlabs } from './memory-slabs.js';
import { TimeHeap } from './time-heap.js';

// One shard of the memory engine: a chained hash table over typed arrays, with each entry's key
// and value bytes in a chunk of the shard's slabs (see memory-slabs.ts and memory-entry.ts).
// Nothing here allocates a JS object or string per key.
//
// An entry is named by its id, the index of its slot in `#entries`; three int32 fields a slot,
// side by side so that a probe reads one cache line:
//   HASH  the key's hash (hashBytes),
//   NEXT  the next entry of the same bucket, or of the free list when the slot is free,
//   ADDR  the slab address of the entry's bytes, or FREE_SLOT.
// An entry keeps its id from insert to removal, whatever is written to it and however the table
// grows, so that the expiry heap and open scans can hold ids. Freed slots are reused first.
//
// There are as many buckets as slots, a power of two, so the load stays at most 1; both double
// together when every slot is taken. Nothing shrinks until `clear`.
//
// Expiry times live in a Float64Array allocated when the first key with a ttl arrives: most
// stores have few or none, and those pay nothing per key. The expiry heap holds (time, id) and
// may hold stale pairs (a key deleted or given another expiry); `popExpiry` tells them apart by
// comparing the time with the entry's current expiry.

const HASH = 0;
const NEXT = 1;
const ADDR = 2;
const FIELDS = 3;

/** No entry: the end of a bucket's chain or of the free list, or a key not found. */
export const NO_ENTRY = -1;
/** ADDR of a free slot; no chunk address is this low. */
const FREE_SLOT = -0x80000000;
const INITIAL_CAPACITY = 16;
/** Keys longer than this are compared natively; shorter ones in a loop, cheaper than the call. */
const LONG_KEY = 64;
/** Stale heap pairs tolerated beyond twice the keys with an expiry, before the heap is rebuilt. */
const HEAP_SLACK = 1024;

export class MemoryTable {
  #slabs = new MemorySlabs();
  #capacity = INITIAL_CAPACITY;
  #mask = INITIAL_CAPACITY - 1;
  #buckets = new Int32Array(INITIAL_CAPACITY).fill(NO_ENTRY);
  #entries = new Int32Array(INITIAL_CAPACITY * FIELDS);
  #expiries: Float64Array | undefined;
  /** Slots ever used: ids below it are entries or free slots. */
  #top = 0;
  #freeSlot = NO_ENTRY;
  #size = 0;
  /** Entries with a non-zero expiry. */
  #expiring = 0;
  #heap = new TimeHeap<number>();

  /** Entries held, expired ones not yet removed included. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of memory held: the slabs and the typed arrays. */
  get bytes(): number {
    const expiries = this.#expiries === undefined ? 0 : this.#expiries.byteLength;
    return this.#slabs.bytes + this.#buckets.byteLength + this.#entries.byteLength + expiries;
  }

  /** One past the highest id in use; iterate ids below it and skip those `holds` says are free. */
  get top(): number {
    return this.#top;
  }

  /** True when some entry has an expiry, so that reads of a store without ttls never read the clock. */
  get hasExpiries(): boolean {
    return this.#expiring !== 0;
  }

  /** True when `id` (below `top`) is an entry, not a free slot. */
  holds(id: number): boolean {
    return this.#entries[id * FIELDS + ADDR] !== FREE_SLOT;
  }

  /** The id of the entry whose key is `key[start, end)` with this hash, or NO_ENTRY. */
  find(hash: number, key: Uint8Array, start: number, end: number): number {
    const entries = this.#entries;
    let id = this.#buckets[hash & this.#mask] as number;
    while (id !== NO_ENTRY) {
      const base = id * FIELDS;
      if (entries[base + HASH] === hash && this.#hasKey(entries[base + ADDR] as number, key, start, end)) return id;
      id = entries[base + NEXT] as number;
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
    const id = this.#takeSlot();
    const entries = this.#entries;
    const base = id * FIELDS;
    const bucket = hash & this.#mask;
    entries[base + HASH] = hash;
    entries[base + ADDR] = addr;
    entries[base + NEXT] = this.#buckets[bucket] as number;
    this.#buckets[bucket] = id;
    this.#size++;
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
    const base = id * FIELDS + ADDR;
    const addr = this.#entries[base] as number;
    const slab = slabs.buffer(addr);
    const offset = slabs.offset(addr);
    const size = entryBytes(keyEnd - keyStart, valueEnd - valueStart);
    if (slabs.fits(addr, entryBytesAt(slab, offset), size)) {
      // A value read from this very chunk (the caller passed valueSlab's bytes) would be
      // overwritten while it is copied: copy it out first.
      const own = value.buffer === slab.buffer;
      const source = own ? copyOut(value, valueStart, valueEnd) : value;
      const start = own ? 0 : valueStart;
      writeEntry(slab, offset, key, keyStart, keyEnd, source, start, start + valueEnd - valueStart);
      return;
    }
    // The new chunk is written before the old one is freed, so a value read from it stays intact.
    this.#entries[base] = this.#store(key, keyStart, keyEnd, value, valueStart, valueEnd);
    slabs.free(addr, entryBytesAt(slab, offset));
  }

  /** Removes entry `id`. */
  remove(id: number): void {
    const entries = this.#entries;
    const base = id * FIELDS;
    const next = entries[base + NEXT] as number;
    const bucket = (entries[base + HASH] as number) & this.#mask;
    let at = this.#buckets[bucket] as number;
    if (at === id) {
      this.#buckets[bucket] = next;
    } else {
      while (entries[at * FIELDS + NEXT] !== id) at = entries[at * FIELDS + NEXT] as number;
      entries[at * FIELDS + NEXT] = next;
    }
    const addr = entries[base + ADDR] as number;
    this.#slabs.free(addr, entryBytesAt(this.#slabs.buffer(addr), this.#slabs.offset(addr)));
    entries[base + ADDR] = FREE_SLOT;
    entries[base + NEXT] = this.#freeSlot;
    this.#freeSlot = id;
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
    return this.#slabs.buffer(this.#entries[id * FIELDS + ADDR] as number);
  }

  /** Where entry `id`'s bytes (lengths, key, value) start in `slab(id)`. */
  entryStart(id: number): number {
    return this.#slabs.offset(this.#entries[id * FIELDS + ADDR] as number);
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
    const addr = this.#entries[id * FIELDS + ADDR] as number;
    const slab = this.#slabs.buffer(addr);
    const offset = this.#slabs.offset(addr);
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
    this.#buckets = new Int32Array(INITIAL_CAPACITY).fill(NO_ENTRY);
    this.#entries = new Int32Array(INITIAL_CAPACITY * FIELDS);
    this.#expiries = undefined;
    this.#top = 0;
    this.#freeSlot = NO_ENTRY;
    this.#size = 0;
    this.#expiring = 0;
    this.#heap.clear();
  }

  /** True when the chunk at `addr` holds the key `key[start, end)`. */
  #hasKey(addr: number, key: Uint8Array, start: number, end: number): boolean {
    const slab = this.#slabs.buffer(addr);
    const offset = this.#slabs.offset(addr);
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

  /** A chunk holding the entry, written. */
  #store(
    key: Uint8Array,
    keyStart: number,
    keyEnd: number,
    value: Uint8Array,
    valueStart: number,
    valueEnd: number,
  ): number {
    const addr = this.#slabs.alloc(entryBytes(keyEnd - keyStart, valueEnd - valueStart));
    writeEntry(this.#slabs.buffer(addr), this.#slabs.offset(addr), key, keyStart, keyEnd, value, valueStart, valueEnd);
    return addr;
  }

  /** A free slot for a new entry: a freed one, else the next unused one, growing the table when full. */
  #takeSlot(): number {
    const free = this.#freeSlot;
    if (free !== NO_ENTRY) {
      this.#freeSlot = this.#entries[free * FIELDS + NEXT] as number;
      return free;
    }
    if (this.#top === this.#capacity) this.#grow();
    return this.#top++;
  }

  /** Doubles the slots and the buckets, and chains every entry into its new bucket. */
  #grow(): void {
    const capacity = this.#capacity * 2;
    const entries = new Int32Array(capacity * FIELDS);
    entries.set(this.#entries);
    if (this.#expiries !== undefined) {
      const expiries = new Float64Array(capacity);
      expiries.set(this.#expiries);
      this.#expiries = expiries;
    }
    const mask = capacity - 1;
    const buckets = new Int32Array(capacity).fill(NO_ENTRY);
    for (let id = 0; id < this.#top; id++) {
      const base = id * FIELDS;
      // Free slots keep their NEXT: it chains the free list.
      if (entries[base + ADDR] === FREE_SLOT) continue;
      const bucket = (entries[base + HASH] as number) & mask;
      entries[base + NEXT] = buckets[bucket] as number;
      buckets[bucket] = id;
    }
    this.#capacity = capacity;
    this.#mask = mask;
    this.#entries = entries;
    this.#buckets = buckets;
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

/** A Buffer the caller owns holding `source[start, end)`. */
function copyOut(source: Uint8Array, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  copyBytes(source, start, end, out, 0);
  return out;
}
