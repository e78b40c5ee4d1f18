import { isUtf8 } from 'node:buffer';
import { StorageError } from './errors.js';
import { globMatcher } from './glob.js';
import { INT64_MAX, INT64_MIN } from './integer.js';
import type { Bytes, ScanOptions, SetCondition } from './store.js';

// Normalisation of what callers pass, in one place for both engines.
//
// The memory engine keys its maps by string. A key's canonical string is its UTF-8 text when
// its bytes are valid UTF-8 (so the string 'é' and the bytes c3 a9 are the same key), and
// otherwise a lone surrogate followed by the bytes as latin1: a lone surrogate never occurs
// in a well-formed string, so the two forms cannot collide.
const BINARY_MARK = '\ud800';

function emptyKey(): StorageError {
  return new StorageError('KEY_EMPTY', 'key must not be empty');
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The memory engine's canonical string for a key. */
export function keyString(key: Bytes): string {
  if (typeof key === 'string') {
    if (key.length === 0) throw emptyKey();
    // Strings with lone surrogates encode to U+FFFD in UTF-8; normalise so the key is its bytes.
    return key.isWellFormed() ? key : key.toWellFormed();
  }
  if (!(key instanceof Uint8Array)) {
    throw new StorageError('KEY_INVALID', `key must be a string or a Uint8Array, got ${typeof key}`);
  }
  if (key.byteLength === 0) throw emptyKey();
  const buffer = asBuffer(key);
  return isUtf8(buffer) ? buffer.toString('utf8') : BINARY_MARK + buffer.toString('latin1');
}

/** The bytes of a canonical key string made by `keyString`. */
export function keyStringBytes(key: string): Buffer {
  return key.startsWith(BINARY_MARK) ? Buffer.from(key.slice(1), 'latin1') : Buffer.from(key, 'utf8');
}

/**
 * A key's bytes in a new buffer, after `offset` bytes left for the caller (the hdd engine
 * writes its prefix there), so that the key is copied once.
 */
export function keyBytes(key: Bytes, offset: number): Buffer {
  if (typeof key === 'string') {
    if (key.length === 0) throw emptyKey();
    const out = Buffer.allocUnsafe(offset + Buffer.byteLength(key, 'utf8'));
    out.write(key, offset, 'utf8');
    return out;
  }
  if (!(key instanceof Uint8Array)) {
    throw new StorageError('KEY_INVALID', `key must be a string or a Uint8Array, got ${typeof key}`);
  }
  if (key.byteLength === 0) throw emptyKey();
  const out = Buffer.allocUnsafe(offset + key.byteLength);
  out.set(key, offset);
  return out;
}

/**
 * A value as the memory engine keeps it: a string when the bytes are UTF-8 text (compact, and
 * `get` returns it without copying), otherwise a private copy of the bytes.
 */
export function memoryValue(value: Bytes): string | Buffer {
  if (typeof value === 'string') return value.isWellFormed() ? value : value.toWellFormed();
  if (!(value instanceof Uint8Array)) {
    throw new StorageError('VALUE_INVALID', `value must be a string or a Uint8Array, got ${typeof value}`);
  }
  const buffer = asBuffer(value);
  return isUtf8(buffer) ? buffer.toString('utf8') : Buffer.from(buffer);
}

/** A value's bytes in a new buffer, after `offset` bytes left for the caller (see `keyBytes`). */
export function valueBytes(value: Bytes, offset: number): Buffer {
  if (typeof value === 'string') {
    const out = Buffer.allocUnsafe(offset + Buffer.byteLength(value, 'utf8'));
    out.write(value, offset, 'utf8');
    return out;
  }
  if (!(value instanceof Uint8Array)) {
    throw new StorageError('VALUE_INVALID', `value must be a string or a Uint8Array, got ${typeof value}`);
  }
  const out = Buffer.allocUnsafe(offset + value.byteLength);
  out.set(value, offset);
  return out;
}

/** A ttl in ms: a non-negative safe integer; 0 means no expiry. */
export function checkTtl(ttl: unknown): number {
  if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 0) {
    throw new StorageError(
      'TTL_INVALID',
      `ttl must be a non-negative integer number of milliseconds, got ${typeof ttl === 'string' ? JSON.stringify(ttl) : String(ttl)}`,
    );
  }
  return ttl;
}

/** An absolute expiry (`restore`): ms since the epoch, 0 for none. */
export function checkExpiresAt(expiresAt: unknown): number {
  if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt < 0) {
    throw new StorageError(
      'TTL_INVALID',
      `an expiry time must be a non-negative integer number of ms since the epoch (0: none), got ${String(expiresAt)}`,
    );
  }
  return expiresAt;
}

/** A `setIf` condition. */
export function checkCondition(condition: unknown): SetCondition {
  if (condition !== 'absent' && condition !== 'present') {
    throw new StorageError(
      'ARGUMENT_INVALID',
      `condition must be 'absent' or 'present', got ${typeof condition === 'string' ? JSON.stringify(condition) : String(condition)}`,
    );
  }
  return condition;
}

/** An `incrBy` delta: a bigint within the 64-bit signed range. */
export function checkDelta(delta: unknown): bigint {
  if (typeof delta !== 'bigint') {
    throw new StorageError('NOT_INTEGER', `delta must be a bigint, got ${typeof delta}`);
  }
  if (delta < INT64_MIN || delta > INT64_MAX) {
    throw new StorageError('INTEGER_OVERFLOW', `delta ${delta} is outside the 64-bit signed range`);
  }
  return delta;
}

/** A list argument (keys of `getMany`, entries of `setMany`). */
export function checkArray<T>(what: string, list: readonly T[]): readonly T[] {
  if (!Array.isArray(list)) throw new StorageError('ARGUMENT_INVALID', `${what} must be an array, got ${typeof list}`);
  return list;
}

/** One `setMany` entry: a [key, value] pair. */
export function checkEntry(entry: unknown, index: number): readonly [Bytes, Bytes] {
  if (!Array.isArray(entry) || entry.length !== 2) {
    throw new StorageError('ARGUMENT_INVALID', `entry ${index} must be a [key, value] pair`);
  }
  return entry as unknown as readonly [Bytes, Bytes];
}

/** Keys examined per `scan` call when the caller does not say. */
export const SCAN_COUNT_DEFAULT = 10;
/** Most keys examined per `scan` call: bounds how long one call takes, whatever it asks. */
export const SCAN_COUNT_MAX = 100_000;

/** A scan's `count`: a positive integer, clamped to SCAN_COUNT_MAX. */
export function checkScanCount(count: unknown): number {
  if (count === undefined) return SCAN_COUNT_DEFAULT;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
    throw new StorageError('ARGUMENT_INVALID', `scan count must be a positive integer, got ${String(count)}`);
  }
  return Math.min(count, SCAN_COUNT_MAX);
}

/** A scan call's options, checked: keys examined per call, and the glob test (undefined: every key). */
export function scanOptionsOf(options: ScanOptions | undefined): {
  count: number;
  matches: ((key: Buffer) => boolean) | undefined;
} {
  if (options === undefined) return { count: SCAN_COUNT_DEFAULT, matches: undefined };
  if (typeof options !== 'object' || options === null) {
    throw new StorageError('ARGUMENT_INVALID', `scan options must be an object, got ${String(options)}`);
  }
  return {
    count: checkScanCount(options.count),
    matches: options.match === undefined ? undefined : globMatcher(options.match),
  };
}
