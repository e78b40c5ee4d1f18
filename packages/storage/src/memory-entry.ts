// The bytes of one memory entry, as a table chunk holds them and a snapshot copies them:
//
//   key length | value length | key bytes | value bytes
//
// Lengths are varints (7 bits a byte, low bits first, high bit set on every byte but the last),
// so a short key or value costs one byte of header each.
import { copyBytes } from './input.js';

/** Bytes of `n` as a varint. */
export function lengthBytes(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  return 5;
}

/** The varint at `bytes[pos]`. */
export function readLength(bytes: Uint8Array, pos: number): number {
  let byte = bytes[pos] as number;
  if (byte < 0x80) return byte;
  // Multiplication rather than shifts: a length may pass 2^31.
  let n = byte & 0x7f;
  let scale = 0x80;
  for (;;) {
    byte = bytes[++pos] as number;
    n += (byte & 0x7f) * scale;
    if (byte < 0x80) return n;
    scale *= 0x80;
  }
}

/** Writes `n` as a varint at `bytes[pos]`; returns the position after it. */
function writeLength(bytes: Uint8Array, pos: number, n: number): number {
  let rest = n;
  while (rest >= 0x80) {
    bytes[pos++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  bytes[pos++] = rest;
  return pos;
}

/** Bytes of an entry with a key and a value of these lengths. */
export function entryBytes(keyLength: number, valueLength: number): number {
  return lengthBytes(keyLength) + lengthBytes(valueLength) + keyLength + valueLength;
}

/** Bytes of the entry at `bytes[pos]`. */
export function entryBytesAt(bytes: Uint8Array, pos: number): number {
  const keyLength = readLength(bytes, pos);
  return entryBytes(keyLength, readLength(bytes, pos + lengthBytes(keyLength)));
}

/** Where the key of the entry at `bytes[pos]` starts. */
export function keyStartAt(bytes: Uint8Array, pos: number): number {
  const keyLength = readLength(bytes, pos);
  const valueAt = pos + lengthBytes(keyLength);
  return valueAt + lengthBytes(readLength(bytes, valueAt));
}

/** Writes an entry at `target[pos]`; `value` must not overlap the bytes written. */
export function writeEntry(
  target: Uint8Array,
  pos: number,
  key: Uint8Array,
  keyStart: number,
  keyEnd: number,
  value: Uint8Array,
  valueStart: number,
  valueEnd: number,
): void {
  const keyLength = keyEnd - keyStart;
  let at = writeLength(target, pos, keyLength);
  at = writeLength(target, at, valueEnd - valueStart);
  copyBytes(key, keyStart, keyEnd, target, at);
  copyBytes(value, valueStart, valueEnd, target, at + keyLength);
}
