import { randomUUID } from 'node:crypto';

/**
 * `n` fresh UUID strings, made before a row so that generating them is never timed.
 * randomUUID() builds its result by concatenation, and V8 keeps such a string as a rope that
 * the first Map lookup must flatten (a copy, several hundred ns on this machine). A server's
 * keys come flat out of a socket buffer, so the keys here are flattened once, untimed.
 */
export function uuids(n: number): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = Buffer.from(randomUUID(), 'latin1').toString('latin1');
  return out;
}

/** Size of the pre-chosen read order; a power of two so the cursor wraps with a mask. */
export const ORDER_SIZE = 1 << 16;
export const ORDER_MASK = ORDER_SIZE - 1;

/**
 * ORDER_SIZE keys picked at random from `keys`: the order in which the read rows ask for them.
 * Each is a copy, not the stored string itself, so a lookup compares characters as it does for
 * a key parsed from a request (the same string object would match on identity alone). A copy
 * caches its hash after its first use, so hashing is not in the read rows.
 */
export function randomOrder(keys: readonly string[]): string[] {
  const out = new Array<string>(ORDER_SIZE);
  for (let i = 0; i < ORDER_SIZE; i++) {
    const key = keys[Math.floor(Math.random() * keys.length)] as string;
    out[i] = Buffer.from(key, 'utf8').toString('utf8');
  }
  return out;
}
