import { randomBytes } from 'node:crypto';
import { StorageError } from './errors.js';

// Open scans of one engine. Redis cursors are positions in its hash table, so they cost the
// server nothing; a Hati scan needs state (a Map iterator, or where an hdd shard left off), kept
// here under a number that clients pass back as Redis cursors are: decimal text that redis-cli
// parses with strtoull. The table is bounded: the least recently used scan is dropped, and its
// cursor then fails with CURSOR_INVALID, telling the client to start again.
//
// Cursors are random 64-bit numbers, not a counter, so that a cursor kept across a server
// restart does not name some other client's scan in the new process, and each is good for one
// call (the reply carries the next), so that a client that reuses one is told rather than given
// a page it already had.

const DECIMAL = /^[0-9]{1,20}$/;

function invalid(cursor: string, why: string): StorageError {
  return new StorageError(
    'CURSOR_INVALID',
    `invalid cursor ${JSON.stringify(cursor)}: ${why}; start the scan again from cursor 0`,
  );
}

/** Where a scan starts: "0" (any number of zeros). */
export function isStartCursor(cursor: unknown): boolean {
  if (cursor === '0') return true;
  if (typeof cursor !== 'string' || !DECIMAL.test(cursor)) {
    throw new StorageError(
      'CURSOR_INVALID',
      `a cursor must be the decimal string of an unsigned integer, got ${typeof cursor === 'string' ? JSON.stringify(cursor) : String(cursor)}`,
    );
  }
  return /^0+$/.test(cursor);
}

export class CursorTable<State> {
  readonly #max: number;
  /** Insertion order is use order: the first entry is the least recently used. */
  #open = new Map<string, State>();

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#open.size;
  }

  /** The state of an open scan (`cursor` is not "0"); throws CURSOR_INVALID when there is none. */
  get(cursor: string): State {
    const state = this.#open.get(cursor);
    if (state === undefined) {
      throw invalid(
        cursor,
        'it is not an open scan (it was completed, already used, or dropped as one of the least recently used)',
      );
    }
    return state;
  }

  /** Ends the scan under `cursor` (used, or finished). */
  delete(cursor: string): void {
    this.#open.delete(cursor);
  }

  /** Opens a scan at `state` and returns its cursor, dropping the least recently used scan when full. */
  add(state: State): string {
    let cursor: string;
    do cursor = randomBytes(8).readBigUInt64BE(0).toString();
    while (cursor === '0' || this.#open.has(cursor));
    this.#open.set(cursor, state);
    if (this.#open.size > this.#max) this.#open.delete(this.#open.keys().next().value as string);
    return cursor;
  }

  values(): IterableIterator<State> {
    return this.#open.values();
  }

  clear(): void {
    this.#open.clear();
  }
}
