import { isUtf8 } from 'node:buffer';
import { StorageError } from './errors.js';
import type { Bytes } from './store.js';

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
