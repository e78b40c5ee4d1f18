import { isExpired } from './expiry.js';
import { copyBytes } from './input.js';
import { lengthBytes, readLength } from './memory-entry.js';
import type { Clock } from './options.js';
import type { StoredEntry } from './store.js';

/** Bytes per block of a snapshot's records. */
const BLOCK_BYTES = 1024 * 1024;
/** Bytes of a record's expiry, before the entry. */
const EXPIRY_BYTES = 8;

/**
 * What a memory snapshot holds: a copy of each live entry as a record, its expiry (a float64)
 * followed by the entry's bytes as the table keeps them (lengths, key, value; see
 * memory-entry.ts), packed into 1 MiB blocks. A record larger than a block gets a block of its
 * own. The engine writes entries in place, so a snapshot cannot keep references to them as it
 * could to immutable strings: it copies.
 * @internal Made by `MemoryEngine#snapshot`.
 */
export class SnapshotRecords {
  readonly blocks: Array<Buffer | undefined> = [];
  /** Bytes used in each block. */
  readonly ends: number[] = [];
  count = 0;
  #block: Buffer | undefined;
  #used = BLOCK_BYTES;

  /** Appends a record: `expiresAt`, then the entry bytes `source[start, start + length)`. */
  add(expiresAt: number, source: Buffer, start: number, length: number): void {
    const bytes = EXPIRY_BYTES + length;
    if (this.#used + bytes > BLOCK_BYTES) this.#newBlock(bytes);
    const block = this.#block as Buffer;
    block.writeDoubleLE(expiresAt, this.#used);
    copyBytes(source, start, start + length, block, this.#used + EXPIRY_BYTES);
    this.#used += bytes;
    this.ends[this.ends.length - 1] = this.#used;
    this.count++;
  }

  #newBlock(bytes: number): void {
    this.#block = Buffer.allocUnsafeSlow(Math.max(BLOCK_BYTES, bytes));
    this.#used = 0;
    this.blocks.push(this.#block);
    this.ends.push(0);
  }
}

/**
 * A point-in-time view of a memory engine (see `MemoryEngine#snapshot`): a copy of the entries
 * live when it was taken, read in bounded steps. Each block of the copy is let go as soon as it
 * has been read past.
 */
export class MemorySnapshot {
  #records: SnapshotRecords | undefined;
  readonly #clock: Clock;
  #block = 0;
  #at = 0;

  /** @internal Made by `MemoryEngine#snapshot`. */
  constructor(records: SnapshotRecords, clock: Clock) {
    this.#records = records;
    this.#clock = clock;
  }

  /** Keys in the snapshot, as taken (some may have expired since). */
  get size(): number {
    return this.#records?.count ?? 0;
  }

  /** True once every entry has been read or the snapshot was closed. */
  get done(): boolean {
    return this.#records === undefined;
  }

  /**
   * The next entries (copies the caller owns), at most `max`, stopping once they hold `maxBytes`
   * or more. Keys expired when read are skipped. An empty array: nothing is left (the snapshot
   * is closed).
   */
  read(max: number, maxBytes: number): StoredEntry[] {
    const records = this.#records;
    const out: StoredEntry[] = [];
    if (records === undefined) return out;
    const now = this.#clock();
    let bytes = 0;
    while (this.#block < records.blocks.length && out.length < max && bytes < maxBytes) {
      const block = records.blocks[this.#block] as Buffer;
      if (this.#at === records.ends[this.#block]) {
        // Read past: let the block go.
        records.blocks[this.#block++] = undefined;
        this.#at = 0;
        continue;
      }
      const expiresAt = block.readDoubleLE(this.#at);
      let pos = this.#at + EXPIRY_BYTES;
      const keyLength = readLength(block, pos);
      pos += lengthBytes(keyLength);
      const valueLength = readLength(block, pos);
      pos += lengthBytes(valueLength);
      this.#at = pos + keyLength + valueLength;
      if (isExpired(expiresAt, now)) continue;
      const key = Buffer.allocUnsafe(keyLength);
      block.copy(key, 0, pos, pos + keyLength);
      const value = Buffer.allocUnsafe(valueLength);
      block.copy(value, 0, pos + keyLength, this.#at);
      out.push({ key, value, expiresAt });
      bytes += keyLength + valueLength;
    }
    if (out.length === 0) this.close();
    return out;
  }

  /** Drops the copy. Safe to call twice. */
  close(): void {
    this.#records = undefined;
  }
}
