// Where the memory engine keeps the bytes of its entries: chunks cut from 64 KiB pages, and a
// Buffer of its own for each chunk too large for a page. A chunk is named by one int32, its
// address, so that the table keeps a number per entry and no JS object.
//
// Chunk sizes are rounded up to a size class: 4-byte steps up to 128 bytes (an entry of a 16-byte
// key and value takes 36), then four classes per power of two up to MAX_SMALL_CHUNK. A freed chunk
// goes on the free list of its class and the next chunk of that class takes it, so that deletes
// and overwrites reuse space. Pages are never given back, as in a malloc: memory freed by deletes
// is reused by later writes, and `flushAll` drops it all.

/** Bytes per page; small enough that the half-filled last page of each shard costs little. */
const PAGE_BYTES = 64 * 1024;
/** Chunks larger than this get a Buffer of their own: a page would waste too much of its tail. */
export const MAX_SMALL_CHUNK = 4096;
/** A small chunk's address: page index in the high bits, offset in 4-byte units in the low 14. */
const OFFSET_BITS = 14;
const OFFSET_MASK = (1 << OFFSET_BITS) - 1;
/** Page indexes must leave the sign bit clear: negative addresses name large chunks. */
const MAX_PAGES = 2 ** (31 - OFFSET_BITS);
/** Size classes up to this are 4 bytes apart. */
const FINE_CLASSES_UP_TO = 128;

/** The size class holding `size` bytes (1 <= size <= MAX_SMALL_CHUNK): the chunk size it gets. */
export function chunkSize(size: number): number {
  if (size <= FINE_CLASSES_UP_TO) return (size + 3) & ~3;
  // For size in (2^k, 2^(k+1)]: classes 2^(k-2) apart.
  const step = 1 << (29 - Math.clz32(size - 1));
  return (size + step - 1) & -step;
}

/** The largest size class that fits in `bytes` (0 when none does). */
function floorChunkSize(bytes: number): number {
  if (bytes <= FINE_CLASSES_UP_TO) return bytes & ~3;
  const step = 1 << (29 - Math.clz32(bytes));
  return bytes & -step;
}

function tooMuchMemory(): RangeError {
  return new RangeError(
    `a memory store shard holds at most ${(MAX_PAGES * PAGE_BYTES) / 2 ** 30} GiB of small entries; use more shards`,
  );
}

export class MemorySlabs {
  #pages: Buffer[] = [];
  /** The page new chunks are cut from, and where its free space starts. */
  #pageIndex = -1;
  #pageUsed = PAGE_BYTES;
  /** Free chunk addresses, by chunk size / 4. */
  #free: Array<number[] | undefined> = [];
  /** Large chunks by index; address -1 - index. */
  #large: Array<Buffer | undefined> = [];
  #freeLarge: number[] = [];
  /** The memory of every page and large chunk held, for `holds`. */
  #arrays = new Set<ArrayBufferLike>();
  #bytes = 0;

  /** Bytes of memory held: every page, free chunks included, and every large chunk. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The address of a new chunk of at least `size` bytes (size >= 1). */
  alloc(size: number): number {
    if (size > MAX_SMALL_CHUNK) return this.#allocLarge(size);
    const chunk = chunkSize(size);
    const free = this.#free[chunk >>> 2];
    if (free !== undefined && free.length !== 0) return free.pop() as number;
    if (this.#pageUsed + chunk > PAGE_BYTES) this.#newPage();
    const offset = this.#pageUsed;
    this.#pageUsed = offset + chunk;
    return (this.#pageIndex << OFFSET_BITS) | (offset >>> 2);
  }

  /** Gives back the chunk at `addr`, allocated for `size` bytes. */
  free(addr: number, size: number): void {
    if (addr < 0) {
      const index = -1 - addr;
      const chunk = this.#large[index] as Buffer;
      this.#bytes -= chunk.length;
      this.#arrays.delete(chunk.buffer);
      this.#large[index] = undefined;
      this.#freeLarge.push(index);
      return;
    }
    this.#freeChunk(addr, chunkSize(size));
  }

  /**
   * True when the chunk at `addr`, allocated for `oldSize` bytes, can take `newSize` bytes in its
   * place: both sizes are of one small size class. A large chunk is always replaced, so that it
   * never keeps more memory than its entry needs.
   */
  fits(addr: number, oldSize: number, newSize: number): boolean {
    return addr >= 0 && newSize <= MAX_SMALL_CHUNK && chunkSize(newSize) === chunkSize(oldSize);
  }

  /** The Buffer holding the chunk at `addr`. */
  buffer(addr: number): Buffer {
    return (addr < 0 ? this.#large[-1 - addr] : this.#pages[addr >>> OFFSET_BITS]) as Buffer;
  }

  /** True when `memory` is that of a page or a large chunk held now. */
  holds(memory: ArrayBufferLike): boolean {
    return this.#arrays.has(memory);
  }

  /** Where in `buffer(addr)` the chunk starts. */
  offset(addr: number): number {
    return addr < 0 ? 0 : (addr & OFFSET_MASK) << 2;
  }

  #allocLarge(size: number): number {
    // allocUnsafeSlow: a pooled Buffer would keep its whole pool alive, and the engine writes
    // every byte of the chunk before anyone reads it.
    const buffer = Buffer.allocUnsafeSlow(size);
    this.#bytes += size;
    const index = this.#freeLarge.pop() ?? this.#large.length;
    this.#large[index] = buffer;
    this.#arrays.add(buffer.buffer);
    return -1 - index;
  }

  #freeChunk(addr: number, chunk: number): void {
    const index = chunk >>> 2;
    const free = this.#free[index];
    if (free === undefined) this.#free[index] = [addr];
    else free.push(addr);
  }

  #newPage(): void {
    // The tail of the full page becomes a free chunk, so that only a few bytes are lost.
    const tail = floorChunkSize(PAGE_BYTES - this.#pageUsed);
    if (tail !== 0) this.#freeChunk((this.#pageIndex << OFFSET_BITS) | (this.#pageUsed >>> 2), tail);
    if (this.#pages.length === MAX_PAGES) throw tooMuchMemory();
    const page = Buffer.allocUnsafeSlow(PAGE_BYTES);
    this.#pages.push(page);
    this.#arrays.add(page.buffer);
    this.#bytes += PAGE_BYTES;
    this.#pageIndex = this.#pages.length - 1;
    this.#pageUsed = 0;
  }
}
