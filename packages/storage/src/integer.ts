import { StorageError } from './errors.js';

// The integers `incrBy` works on: 64-bit signed, stored as canonical decimal text, exactly as
// Redis's string2ll accepts them. Short values (the usual counters) are parsed and added as
// doubles, which are exact up to 2^53; BigInt is used only past that.

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
/** Longest canonical int64 text: '-9223372036854775808'. */
const MAX_TEXT = 20;
/** Digits that always fit a double exactly (10^15 < 2^53). */
const SHORT_DIGITS = 15;
const ZERO = 48;
const NINE = 57;
const MINUS = 45;

export function notIntegerError(): StorageError {
  return new StorageError('NOT_INTEGER', 'value is not an integer or out of range');
}

function overflow(): StorageError {
  return new StorageError('INTEGER_OVERFLOW', 'increment or decrement would overflow a 64-bit signed integer');
}

/**
 * The int64 a stored value holds: a number when it has at most 15 digits, else a bigint. Throws
 * NOT_INTEGER unless `text` is canonical: an optional '-', no '+', no leading zeros (but "0"),
 * no spaces, not "-0", within the int64 range. Other characters (non-ASCII included) fail the
 * digit check, so `text` may be a latin1 view of arbitrary bytes.
 */
export function parseInteger(text: string): number | bigint {
  const length = text.length;
  if (length === 0 || length > MAX_TEXT) throw notIntegerError();
  const negative = text.charCodeAt(0) === MINUS;
  if (negative && length === 1) throw notIntegerError();
  const start = negative ? 1 : 0;
  if (text.charCodeAt(start) === ZERO) {
    // "0" alone is canonical; "-0" and leading zeros are not.
    if (length === 1) return 0;
    throw notIntegerError();
  }
  let n = 0;
  for (let i = start; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c < ZERO || c > NINE) throw notIntegerError();
    n = n * 10 + (c - ZERO);
  }
  if (length - start <= SHORT_DIGITS) return negative ? -n : n;
  const big = BigInt(text);
  if (big < INT64_MIN || big > INT64_MAX) throw notIntegerError();
  return big;
}

/** `current + delta`; a number when exact as one, else a bigint. Throws INTEGER_OVERFLOW past int64. */
export function addInteger(current: number | bigint, delta: bigint): number | bigint {
  if (typeof current === 'number' && delta >= SAFE_MIN && delta <= SAFE_MAX) {
    const sum = current + Number(delta);
    // Both operands are exact; a sum that is a safe integer is the exact sum.
    if (Number.isSafeInteger(sum)) return sum;
  }
  const sum = BigInt(current) + delta;
  if (sum < INT64_MIN || sum > INT64_MAX) throw overflow();
  return sum;
}
