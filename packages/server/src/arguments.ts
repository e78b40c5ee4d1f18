// One parser per argument kind of the command table (`ArgKind`): every command reads its
// arguments through these, whichever front end (TCP, UNIX socket, JSON-RPC) sent them.
import { type HddEngine, type MemoryEngine, StorageError, type StorageManager } from '@hati/storage';
import { ServerError } from './errors.js';

const MEMORY = Buffer.from('memory');
const HDD = Buffer.from('hdd');

/** ASCII case-insensitive comparison with a lower-case constant, without allocating. */
export function isWord(arg: Buffer, lower: Buffer): boolean {
  if (arg.length !== lower.length) return false;
  for (let i = 0; i < arg.length; i++) {
    if (((arg[i] as number) | 0x20) !== lower[i]) return false;
  }
  return true;
}

/** For messages: at most 64 bytes of an argument, as text. */
function shown(arg: Buffer): string {
  return arg.toString('utf8', 0, 64);
}

/** `storageType`: the engine named (`memory` or `hdd`, any case), or STORAGE_TYPE_INVALID. */
export function engineArg(storage: StorageManager, arg: Buffer): MemoryEngine | HddEngine {
  if (isWord(arg, MEMORY)) return storage.memory;
  if (isWord(arg, HDD)) return storage.hdd;
  throw new StorageError('STORAGE_TYPE_INVALID', `unknown storage type '${shown(arg)}' (expected memory or hdd)`);
}

/** Whether `arg` names a storage type (SCAN's two forms are told apart by it). */
export function isStorageType(arg: Buffer): boolean {
  return isWord(arg, MEMORY) || isWord(arg, HDD);
}

/**
 * The ttl written as the decimal digits `bytes[start..end)`, or -1 when they are not a
 * non-negative safe integer. Read in place, so the hot path needs no Buffer for it.
 */
export function ttlIn(bytes: Uint8Array, start: number, end: number): number {
  if (end === start || end - start > 16) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = (bytes[i] as number) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return Number.isSafeInteger(n) ? n : -1;
}

/** `ttl`: a non-negative safe integer of milliseconds from its decimal digits, or TTL_INVALID. */
export function ttlArg(arg: Buffer): number {
  const n = ttlIn(arg, 0, arg.length);
  if (n < 0) {
    throw new StorageError(
      'TTL_INVALID',
      `ttl must be a non-negative integer number of milliseconds, got '${shown(arg)}'`,
    );
  }
  return n;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * `integer`: a 64-bit signed integer in canonical decimal (no `+`, spaces or leading zeros), or
 * NOT_INTEGER, as Redis reads integers.
 */
export function integerArg(arg: Buffer, what: string): bigint {
  const text = arg.toString('latin1');
  if (/^(0|-?[1-9][0-9]{0,18})$/.test(text)) {
    const n = BigInt(text);
    if (n >= INT64_MIN && n <= INT64_MAX) return n;
  }
  throw new StorageError('NOT_INTEGER', `${what} must be a 64-bit integer, got '${shown(arg)}'`);
}

/** A small integer within `min..max` (SCAN's COUNT): a number, or ARGUMENT_INVALID. */
export function countArg(arg: Buffer, what: string, min: number, max: number): number {
  const text = arg.toString('latin1');
  const n = /^[0-9]{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max)) {
    throw new ServerError('ARGUMENT_INVALID', `${what} must be an integer from ${min} to ${max}, got '${shown(arg)}'`);
  }
  return n;
}

/** `cursor`: a SCAN cursor, decimal digits. */
export function cursorArg(arg: Buffer): string {
  const text = arg.toString('latin1');
  if (/^[0-9]{1,20}$/.test(text)) return text;
  throw new StorageError(
    'CURSOR_INVALID',
    `a cursor is the decimal number the previous SCAN replied, or 0; got '${shown(arg)}'`,
  );
}

/** `name`: a connection name; printable, no spaces (they would break CLIENT LIST's lines). */
export function nameArg(arg: Buffer): string | null {
  for (const byte of arg) {
    if (byte <= 0x20 || byte === 0x7f) {
      throw new ServerError(
        'NAME_INVALID',
        'a connection name may not contain spaces, line breaks or control characters',
      );
    }
  }
  return arg.length === 0 ? null : arg.toString('utf8');
}

/** `router`, `queue`, `routingKey`, `messageId`: text (the broker checks names and keys). */
export function textArg(arg: Buffer): string {
  return arg.toString('utf8');
}

/** `ms`: whole milliseconds, 0 up to Node's timer limit, or ARGUMENT_INVALID. */
export function msArg(arg: Buffer, what: string): number {
  return countArg(arg, what, 0, 2 ** 31 - 1);
}
