import { isExpired } from './expiry.js';
import { keyStringBytes } from './input.js';
import type { Clock } from './options.js';
import type { StoredEntry } from './store.js';

/**
 * What a memory snapshot holds: per key its canonical key string, its value as the engine held it
 * (a string or a Buffer the engine never changes: a write replaces the reference), and its expiry.
 * Three flat arrays rather than an object per key, so the copy costs three references a key.
 */
export interface MemoryRefs {
  readonly keys: string[];
  readonly values: Array<string | Buffer>;
  readonly expiries: number[];
}

/**
 * A point-in-time view of a memory engine (see `MemoryEngine#snapshot`): the references of the
 * entries live when it was taken, read in bounded steps. It costs no copy of any value; the
 * values it references stay in memory until it is read past them or closed.
 */
export class MemorySnapshot {
  #refs: MemoryRefs | undefined;
  readonly #clock: Clock;
  #at = 0;

  /** @internal Made by `MemoryEngine#snapshot`. */
  constructor(refs: MemoryRefs, clock: Clock) {
    this.#refs = refs;
    this.#clock = clock;
  }

  /** Keys in the snapshot, as taken (some may have expired since). */
  get size(): number {
    return this.#refs?.keys.length ?? 0;
  }

  /** True once every entry has been read or the snapshot was closed. */
  get done(): boolean {
    return this.#refs === undefined;
  }

  /**
   * The next entries (values copied), at most `max`, stopping once they hold `maxBytes` or more.
   * Keys expired when read are skipped. An empty array: nothing is left (the snapshot is closed).
   */
  read(max: number, maxBytes: number): StoredEntry[] {
    const refs = this.#refs;
    const out: StoredEntry[] = [];
    if (refs === undefined) return out;
    const now = this.#clock();
    let bytes = 0;
    while (this.#at < refs.keys.length && out.length < max && bytes < maxBytes) {
      const i = this.#at++;
      const expiresAt = refs.expiries[i] as number;
      if (isExpired(expiresAt, now)) continue;
      const held = refs.values[i] as string | Buffer;
      const key = keyStringBytes(refs.keys[i] as string);
      const value = typeof held === 'string' ? Buffer.from(held, 'utf8') : Buffer.from(held);
      out.push({ key, value, expiresAt });
      bytes += key.length + value.length;
      // Read past: let the value go as soon as the caller is done with its copy.
      refs.values[i] = '';
    }
    if (out.length === 0) this.close();
    return out;
  }

  /** Drops the references. Safe to call twice. */
  close(): void {
    this.#refs = undefined;
  }
}
