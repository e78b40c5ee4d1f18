import { randomBytes } from 'node:crypto';
import { endianness } from 'node:os';

// What a shard knows about its keys without reading LevelDB, so that a write can skip the read
// of the key's previous record. That read exists to keep the count and the expiry index exact:
// a write must know whether its key is stored, and whether the old record has an index entry
// to remove. Two sources answer for free:
// - KeyFilter: a Bloom filter holding every stored key (and some that are not: deleted keys
//   stay in it until the next open). "Not in the filter" proves a key is new.
// - KeyStates: the exact state of the keys written lately (absent, or stored with this expiry).
// Both hash the key's bytes where they are; neither makes a string or an object per key.

/**
 * A seed mixed into the hashes, random for each table and filter: keys crafted to collide (making
 * every write read, or a table's probe sequences long) collide in no other. A filter saved at close
 * keeps its seed.
 */
function randomSeed(): number {
  return randomBytes(4).readInt32LE(0);
}

// The two hashes of the key last passed to hashKey (the filter probes h1 + i * h2); KeyStates
// uses h1 alone, from hashKey1.
let h1 = 0;
let h2 = 0;

/** h1's FNV-1a, shared by hashKey and hashKey1 so that both give the same h1. */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * Sets h1 and h2 from `seed` and the bytes of `key`: FNV-1a and a murmur-style multiply, each
 * finalized. Saved filters depend on it: a change must come with a new FILTER_MAGIC (hdd-layout.ts).
 */
function hashKey(key: Uint8Array, seed: number): void {
  let a = FNV_OFFSET ^ seed;
  let b = 0x9747b28c ^ seed;
  for (let i = 0; i < key.length; i++) {
    const c = key[i] as number;
    a = Math.imul(a ^ c, FNV_PRIME);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  h1 = fmix(a);
  // Odd, so that the probes of one key never repeat within a power-of-two table.
  h2 = fmix(b) | 1;
}

/**
 * Sets h1 alone, as hashKey does (h2 is left as it was): a KeyStates lookup, once per write of
 * a batch, needs no second hash.
 */
function hashKey1(key: Uint8Array, seed: number): void {
  let a = FNV_OFFSET ^ seed;
  for (let i = 0; i < key.length; i++) a = Math.imul(a ^ (key[i] as number), FNV_PRIME);
  h1 = fmix(a);
}

/** murmur3's finalizer: every bit of the result depends on every bit of the input. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Bits per key of a filter layer at its capacity: with 7 probes, about 1% of new keys look stored. */
const BITS_PER_KEY = 10;
const PROBES = 7;
/** Keys the first filter layer holds before a larger one is added; a small shard's costs 128 KiB. */
const MIN_FILTER_KEYS = 64 * 1024;

/** One Bloom filter over a power-of-two number of bits, holding `capacity` keys. */
interface Layer {
  bits: Uint32Array;
  mask: number;
  capacity: number;
  added: number;
}

/** A layer of at least `wanted` keys: as many as its (power of two) bits allow. */
function newLayer(wanted: number): Layer {
  let size = 1024;
  while (size < wanted * BITS_PER_KEY) size *= 2;
  return { bits: new Uint32Array(size / 32), mask: size - 1, capacity: Math.floor(size / BITS_PER_KEY), added: 0 };
}

/** Whether every probe bit of the last hashed key is set in `layer`. */
function layerHas(layer: Layer): boolean {
  const { bits, mask } = layer;
  let at = h1;
  for (let i = 0; i < PROBES; i++) {
    const bit = at & mask;
    if (((bits[bit >>> 5] as number) & (1 << (bit & 31))) === 0) return false;
    at = (at + h2) | 0;
  }
  return true;
}

function layerAdd(layer: Layer): void {
  const { bits, mask } = layer;
  let at = h1;
  for (let i = 0; i < PROBES; i++) {
    const bit = at & mask;
    bits[bit >>> 5] = (bits[bit >>> 5] as number) | (1 << (bit & 31));
    at = (at + h2) | 0;
  }
  layer.added++;
}

/**
 * The keys a shard may hold, as a Bloom filter: once `ready`, a key never added is certainly not
 * stored. It only grows (a deleted key stays until the filter is built anew at the next open);
 * when its newest layer is full it adds one twice as large, so a growing store keeps about the
 * same share of false "maybe"s without a rebuild.
 *
 * Correctness rests on one rule, kept by the shard: a key is added before the batch that stores
 * it is written, so even a batch whose write failed (and may yet be replayed from LevelDB's log)
 * is covered.
 */
export class KeyFilter {
  #layers: Layer[];
  readonly #seed: number;
  /** Every key stored when the filter was made has been added (see HddShard#buildFilter). */
  ready = false;

  /** Sized for `expected` keys (what the shard holds now); it grows past them. */
  constructor(expected: number, seed = randomSeed(), layers?: Layer[]) {
    this.#seed = seed;
    this.#layers = layers ?? [newLayer(Math.max(MIN_FILTER_KEYS, expected))];
  }

  /** False only when `key` is certainly not stored; always true until the filter is ready. */
  mayHold(key: Uint8Array): boolean {
    if (!this.ready) return true;
    hashKey(key, this.#seed);
    return this.#has();
  }

  add(key: Uint8Array): void {
    hashKey(key, this.#seed);
    // Already a "maybe": its bits are set, and bits are never cleared.
    if (this.#has()) return;
    let layer = this.#layers[this.#layers.length - 1] as Layer;
    if (layer.added >= layer.capacity) {
      layer = newLayer(layer.capacity * 2);
      this.#layers.push(layer);
    }
    layerAdd(layer);
  }

  /** Bytes of memory the filter holds. */
  get bytes(): number {
    let total = 0;
    for (const layer of this.#layers) total += layer.bits.byteLength;
    return total;
  }

  /**
   * The filter as bytes (see `KeyFilter.parse`): a JSON header of its seed and layers, its length
   * before it as a uint32, then each layer's bits (as the machine orders a uint32's bytes, which
   * the header names).
   */
  serialize(): Buffer[] {
    const header = Buffer.from(
      JSON.stringify({
        endianness: endianness(),
        seed: this.#seed,
        layers: this.#layers.map((layer) => ({
          words: layer.bits.length,
          capacity: layer.capacity,
          added: layer.added,
        })),
      }),
    );
    const length = Buffer.alloc(4);
    length.writeUInt32LE(header.length, 0);
    return [
      length,
      header,
      ...this.#layers.map((layer) => Buffer.from(layer.bits.buffer, layer.bits.byteOffset, layer.bits.byteLength)),
    ];
  }

  /** A ready filter from what `serialize` wrote, or undefined when `bytes` are not that. */
  static parse(bytes: Buffer): KeyFilter | undefined {
    try {
      const length = bytes.readUInt32LE(0);
      const header = JSON.parse(bytes.toString('utf8', 4, 4 + length)) as {
        endianness: string;
        seed: number;
        layers: Array<{ words: number; capacity: number; added: number }>;
      };
      // Saved on a machine that orders bytes the other way (a data directory moved): built anew.
      if (header.endianness !== endianness()) return undefined;
      let at = 4 + length;
      const layers: Layer[] = [];
      for (const { words, capacity, added } of header.layers) {
        if (!Number.isInteger(words) || words <= 0 || (words & (words - 1)) !== 0) return undefined;
        if (at + words * 4 > bytes.length) return undefined;
        // Copied out: the bits must be aligned, and the file's buffer is not kept.
        const bits = new Uint32Array(words);
        Buffer.from(bits.buffer).set(bytes.subarray(at, at + words * 4));
        at += words * 4;
        layers.push({ bits, mask: words * 32 - 1, capacity, added });
      }
      if (at !== bytes.length || layers.length === 0 || !Number.isInteger(header.seed)) return undefined;
      const filter = new KeyFilter(0, header.seed, layers);
      filter.ready = true;
      return filter;
    } catch {
      return undefined;
    }
  }

  #has(): boolean {
    for (const layer of this.#layers) if (layerHas(layer)) return true;
    return false;
  }
}

/** A key's state: not stored. */
export const ABSENT = -1;
/** A key's state: not known (it must be read). A state ≥ 0 is the stored record's expiry (0: none). */
export const UNKNOWN = -2;

// A KeyStates generation is one open-addressing hash table (linear probing) whose cells are rows
// of CELL_INTS int32s: everything a lookup needs but the key's bytes sits in one cache line. The
// state is a float64 (an expiry does not fit an int32), the row's last 8 bytes.
const HASH = 0;
/** The key's length + 1; 0 marks an empty cell. */
const KEY_LENGTH = 1;
/** Where the key's bytes start in the slab. */
const KEY_AT = 2;
const BATCH = 3;
const SLOT = 4;
const CELL_INTS = 8;
/** The state's index in a row seen as float64s. */
const STATE = CELL_INTS / 2 - 1;
/** Cells are at most this full, so that probe sequences stay short. */
const MAX_LOAD = 0.7;

/**
 * One generation of KeyStates. An entry is the number of its cell; cells move only when the table
 * grows, which `reserve` makes happen before a batch takes entry numbers rather than while.
 */
class Generation {
  cells = new Int32Array(CELL_INTS * 1024);
  /** The same bytes as `cells`, for the states. */
  states = new Float64Array(this.cells.buffer);
  mask = 1023;
  entries = 0;
  slab = new Uint8Array(4096);
  slabUsed = 0;

  /** The cell of `key` (whose hash is h1), or -1. */
  find(key: Uint8Array): number {
    const cells = this.cells;
    const mask = this.mask;
    for (let cell = h1 & mask; ; cell = (cell + 1) & mask) {
      const row = cell * CELL_INTS;
      const length = cells[row + KEY_LENGTH] as number;
      if (length === 0) return -1;
      if (cells[row + HASH] === h1 && length === key.length + 1 && this.#keyIs(cells[row + KEY_AT] as number, key)) {
        return cell;
      }
    }
  }

  /** Room for `more` entries without the table growing (and its cells moving). */
  reserve(more: number): void {
    let size = this.mask + 1;
    while (this.entries + more > size * MAX_LOAD) size *= 2;
    if (size > this.mask + 1) this.#resize(size);
  }

  /** A new entry for `key` (whose hash is h1, and which has none here) in state `state`. */
  add(key: Uint8Array, state: number): number {
    this.reserve(1);
    if (this.slabUsed + key.length > this.slab.length) this.#growSlab(key.length);
    const cell = this.#free(h1);
    const row = cell * CELL_INTS;
    this.cells[row + HASH] = h1;
    this.cells[row + KEY_LENGTH] = key.length + 1;
    this.cells[row + KEY_AT] = this.slabUsed;
    this.cells[row + BATCH] = -1;
    this.states[cell * (CELL_INTS / 2) + STATE] = state;
    this.slab.set(key, this.slabUsed);
    this.slabUsed += key.length;
    this.entries++;
    return cell;
  }

  state(cell: number): number {
    return this.states[cell * (CELL_INTS / 2) + STATE] as number;
  }

  setState(cell: number, state: number): void {
    this.states[cell * (CELL_INTS / 2) + STATE] = state;
  }

  /** Bytes of memory held. */
  get bytes(): number {
    return this.cells.byteLength + this.slab.byteLength;
  }

  #keyIs(at: number, key: Uint8Array): boolean {
    const slab = this.slab;
    for (let i = 0; i < key.length; i++) if (slab[at + i] !== key[i]) return false;
    return true;
  }

  /** The first empty cell of the probe sequence of `hash`. */
  #free(hash: number): number {
    const cells = this.cells;
    const mask = this.mask;
    let cell = hash & mask;
    while (cells[cell * CELL_INTS + KEY_LENGTH] !== 0) cell = (cell + 1) & mask;
    return cell;
  }

  #resize(size: number): void {
    const from = this.cells;
    this.cells = new Int32Array(size * CELL_INTS);
    this.states = new Float64Array(this.cells.buffer);
    this.mask = size - 1;
    for (let row = 0; row < from.length; row += CELL_INTS) {
      if (from[row + KEY_LENGTH] === 0) continue;
      const to = this.#free(from[row + HASH] as number) * CELL_INTS;
      this.cells.set(from.subarray(row, row + CELL_INTS), to);
    }
  }

  #growSlab(needed: number): void {
    let size = this.slab.length * 2;
    while (size < this.slabUsed + needed) size *= 2;
    const slab = new Uint8Array(size);
    slab.set(this.slab);
    this.slab = slab;
  }
}

/**
 * The exact state of the keys a shard wrote lately, each as an entry number (valid until the next
 * `trim`): what a batch wrote is recorded once LevelDB has taken it, so a later write of the same
 * key knows what it replaces without reading it. The entry also tells a batch being built which
 * of its jobs share a key (`batch`, `slot`).
 *
 * Bounded to about `maxKeys` keys and `maxBytes` bytes of keys by two generations: entries go to
 * the young one; between batches, once it holds half of either bound it becomes the old one (the
 * previous old one is dropped); a key found in the old generation is copied back to the young
 * one. A working set of up to half the bounds stays known, with no bookkeeping per access.
 * Rotating only between batches keeps the entries a batch uses valid while it is built.
 */
export class KeyStates {
  readonly #seed = randomSeed();
  #young = new Generation();
  #old = new Generation();
  readonly #maxEntries: number;
  readonly #maxBytes: number;

  constructor(maxKeys: number, maxBytes: number) {
    this.#maxEntries = Math.max(1, Math.ceil(maxKeys / 2));
    this.#maxBytes = Math.max(1, Math.ceil(maxBytes / 2));
  }

  /**
   * Room for `more` new keys: the entry numbers taken until the next `trim` stay valid only if
   * they are not more than that (an unreserved new key may move every entry).
   */
  reserve(more: number): void {
    this.#young.reserve(more);
  }

  /** The entry of `key`, made in state UNKNOWN when the key is not known (see `reserve`). */
  entry(key: Uint8Array): number {
    hashKey1(key, this.#seed);
    const young = this.#young;
    const entry = young.find(key);
    if (entry !== -1) return entry;
    const old = this.#old.find(key);
    return young.add(key, old === -1 ? UNKNOWN : this.#old.state(old));
  }

  /** The entry's state: ABSENT, UNKNOWN, or the stored record's expiry. */
  state(entry: number): number {
    return this.#young.state(entry);
  }

  setState(entry: number, state: number): void {
    this.#young.setState(entry, state);
  }

  /** The last batch that used the entry (-1: none), and its slot there. */
  batch(entry: number): number {
    return this.#young.cells[entry * CELL_INTS + BATCH] as number;
  }

  slot(entry: number): number {
    return this.#young.cells[entry * CELL_INTS + SLOT] as number;
  }

  setBatch(entry: number, batch: number, slot: number): void {
    const cells = this.#young.cells;
    cells[entry * CELL_INTS + BATCH] = batch;
    cells[entry * CELL_INTS + SLOT] = slot;
  }

  /** Between batches: starts a new generation once the young one is full. */
  trim(): void {
    const young = this.#young;
    if (young.entries < this.#maxEntries && young.slabUsed < this.#maxBytes) return;
    // One huge batch (a setMany of many keys) can fill it far beyond: then it is not kept.
    const huge = young.entries > 2 * this.#maxEntries || young.slabUsed > 2 * this.#maxBytes;
    this.#old = huge ? new Generation() : young;
    this.#young = new Generation();
  }

  /** Forgets every key: after a failed write, what is on disk is known only by reading it. */
  clear(): void {
    this.#young = new Generation();
    this.#old = new Generation();
  }

  /** Entries held in both generations (a key in both counts twice). */
  get size(): number {
    return this.#young.entries + this.#old.entries;
  }

  /** Bytes of memory held. */
  get bytes(): number {
    return this.#young.bytes + this.#old.bytes;
  }
}
