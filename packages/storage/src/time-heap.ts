/**
 * A binary min-heap of (time, item), kept as two parallel arrays so that times stay unboxed
 * doubles. Entries may be stale (a key deleted or set again, a lease acknowledged or extended);
 * whoever pops them checks, and rebuilds the heap from the live entries when they pile up. The
 * memory engine keeps its expiries in one; @hati/broker its leases, delays and redeliveries.
 */
export class TimeHeap<T> {
  #times: number[] = [];
  #items: T[] = [];

  get size(): number {
    return this.#times.length;
  }

  /** The earliest time, or Infinity when empty. */
  peekTime(): number {
    return this.#times.length === 0 ? Number.POSITIVE_INFINITY : (this.#times[0] as number);
  }

  push(time: number, item: T): void {
    const times = this.#times;
    const items = this.#items;
    let i = times.length;
    times.push(time);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      const parentTime = times[parent] as number;
      if (parentTime <= time) break;
      times[i] = parentTime;
      items[i] = items[parent] as T;
      i = parent;
    }
    times[i] = time;
    items[i] = item;
  }

  /** Removes the earliest entry and returns its item; call only when `size > 0`. */
  pop(): T {
    const times = this.#times;
    const items = this.#items;
    const top = items[0] as T;
    const lastTime = times.pop() as number;
    const lastItem = items.pop() as T;
    const length = times.length;
    if (length > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= length) break;
        if (child + 1 < length && (times[child + 1] as number) < (times[child] as number)) child++;
        if ((times[child] as number) >= lastTime) break;
        times[i] = times[child] as number;
        items[i] = items[child] as T;
        i = child;
      }
      times[i] = lastTime;
      items[i] = lastItem;
    }
    return top;
  }

  clear(): void {
    this.#times = [];
    this.#items = [];
  }
}
