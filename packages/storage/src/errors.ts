/**
 * Stable error codes of @hati/storage. The same strings travel on the wire (`-CODE message`),
 * in JSON-RPC `error.data.code` and on `StorageError#code`. Messages may change; codes may not.
 * Every code is documented in docs/errors.md (a test keeps the two in step).
 */
export const StorageErrorCode = {
  /** A storage type other than `memory` or `hdd` was named. */
  STORAGE_TYPE_INVALID: 'STORAGE_TYPE_INVALID',
  /** A key was empty. */
  KEY_EMPTY: 'KEY_EMPTY',
  /** A key was neither a string nor a Uint8Array. */
  KEY_INVALID: 'KEY_INVALID',
  /** A value was neither a string nor a Uint8Array. */
  VALUE_INVALID: 'VALUE_INVALID',
  /** A ttl was negative, fractional, too large or not a number. */
  TTL_INVALID: 'TTL_INVALID',
  /** An engine option (shard count, durability, ...) was out of range. */
  OPTION_INVALID: 'OPTION_INVALID',
  /** The store was used after `close()` (or before `open()` finished). */
  STORAGE_CLOSED: 'STORAGE_CLOSED',
  /** The data directory is open in another process or another store in this one. */
  DATA_DIR_LOCKED: 'DATA_DIR_LOCKED',
  /** The data directory could not be created or written. */
  DATA_DIR_NOT_WRITABLE: 'DATA_DIR_NOT_WRITABLE',
  /** The data directory holds files that cannot be read as a Hati store. */
  DATA_DIR_CORRUPT: 'DATA_DIR_CORRUPT',
  /** The disk store failed in a way not covered above (I/O error); see `cause`. */
  STORAGE_IO: 'STORAGE_IO',
  /**
   * A disk write failed earlier (disk full, I/O error), so the hdd store takes no writes until
   * it has reopened its shards and proved that the disk takes writes again. Reads still work.
   */
  WRITES_SUSPENDED: 'WRITES_SUSPENDED',
  /**
   * The data directory was deleted or replaced while the store was open: what is on disk is no
   * longer what this store holds, so it answers nothing until the server is restarted.
   */
  DATA_DIR_GONE: 'DATA_DIR_GONE',
  /** `incrBy` found a value that is not the canonical decimal text of a 64-bit signed integer, or got a delta that is not a bigint. */
  NOT_INTEGER: 'NOT_INTEGER',
  /** `incrBy`'s delta, or its result, is outside the 64-bit signed range; the key is unchanged. */
  INTEGER_OVERFLOW: 'INTEGER_OVERFLOW',
  /** A `scan` cursor is malformed, was already used, or was dropped from the table of open scans; start again from "0". */
  CURSOR_INVALID: 'CURSOR_INVALID',
  /** A call argument other than a key, value or ttl is invalid (a `setIf` condition, a scan `count` or `match`, a list that is not an array). */
  ARGUMENT_INVALID: 'ARGUMENT_INVALID',
} as const;

export type StorageErrorCode = (typeof StorageErrorCode)[keyof typeof StorageErrorCode];

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
