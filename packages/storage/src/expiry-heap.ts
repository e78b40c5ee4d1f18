/**
 * A binary min-heap of (expiry time, key), kept as two parallel arrays so that times stay
 * unboxed doubles. Entries may be stale (the key was deleted or set again); whoever pops them
 * checks against the live expiry, and `rebuild` drops them when they pile up.
 */
export class ExpiryHeap {
  #times: number[] = [];
  #keys: string[] = [];

  get size(): number {
    return this.#times.length;
  }

  /** The earliest time in the heap, or Infinity when empty. */
  peekTime(): number {
    return this.#times.length === 0 ? Number.POSITIVE_INFINITY : (this.#times[0] as number);
  }

  push(time: number, key: string): void {
    const times = this.#times;
    const keys = this.#keys;
    let i = times.length;
    times.push(time);
    keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      const parentTime = times[parent] as number;
      if (parentTime <= time) break;
      times[i] = parentTime;
      keys[i] = keys[parent] as string;
      i = parent;
    }
    times[i] = time;
    keys[i] = key;
  }

  /** Removes the earliest entry and returns its key; call only when `size > 0`. */
  popKey(): string {
    const times = this.#times;
    const keys = this.#keys;
    const top = keys[0] as string;
    const lastTime = times.pop() as number;
    const lastKey = keys.pop() as string;
    const length = times.length;
    if (length > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= length) break;
        if (child + 1 < length && (times[child + 1] as number) < (times[child] as number)) child++;
        if ((times[child] as number) >= lastTime) break;
        times[i] = times[child] as number;
        keys[i] = keys[child] as string;
        i = child;
      }
      times[i] = lastTime;
      keys[i] = lastKey;
    }
    return top;
  }

  clear(): void {
    this.#times = [];
    this.#keys = [];
  }

  /** Replaces the content with exactly these live entries. */
  rebuild(live: Map<string, number>): void {
    this.clear();
    for (const [key, time] of live) this.push(time, key);
  }
}
