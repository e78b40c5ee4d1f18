import { statSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { ClassicLevel } from 'classic-level';
import { StorageError } from './errors.js';
import { copyBytes, keyBytes, valueBytes } from './input.js';
import type { Bytes } from './store.js';

// The on-disk layout of the hdd engine, in one place.
//
// <dataDir>/hati.lock/         a LevelDB held open only for its exclusive lock
// <dataDir>/hati.probe         briefly, while recovering from a failed write (see probeDisk)
// <dataDir>/db/hati.json       {"format":1,"shards":N}
// <dataDir>/db/kv_shard_<i>/   one LevelDB per shard (the seed's layout)
// <dataDir>/db/key_filter_<i>   the key filter of shard i, saved at close, taken at open
//
// Inside a shard every LevelDB key starts with one byte naming its kind:
//   0x01 <key>                  → <expiresAt: float64 BE, 0 = never><value>
//   0x02 <expiresAt BE><key>    → empty: the expiry index, in expiry order
//   0x00 'c'                    → live + not-yet-swept records, float64 BE (exact count)
//   0x00 'd'                    → present while the count cannot be trusted (flushAll running)
//   0x00 's'                    → written with fsync to make earlier writes durable
// Positive doubles compare like their big-endian bytes, so the index sorts by time.

export type Db = ClassicLevel<Buffer, Buffer>;

export const DATA = 0x01;
export const INDEX = 0x02;
export const HEADER_BYTES = 8;
export const COUNT_KEY = Buffer.from([0x00, 0x63]);
export const DIRTY_KEY = Buffer.from([0x00, 0x64]);
export const SYNC_KEY = Buffer.from([0x00, 0x73]);
export const DATA_START = Buffer.from([DATA]);
export const DATA_END = Buffer.from([DATA + 1]);
export const INDEX_START = Buffer.from([INDEX]);
export const INDEX_END = Buffer.from([INDEX + 1]);
const FORMAT = 1;

/** The LevelDB key of a user key (validated here). */
export function dataKeyOf(key: Bytes): Buffer {
  const out = keyBytes(key, 1);
  out[0] = DATA;
  return out;
}

/** The data key of the user key `key[start, end)`, a range checkKeyRange accepted. */
export function dataKeyOfRange(key: Uint8Array, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start + 1);
  out[0] = DATA;
  copyBytes(key, start, end, out, 1);
  return out;
}

/** The data key of the user key at `bytes[start..]`. */
export function dataKeyFrom(bytes: Buffer, start: number): Buffer {
  const out = Buffer.allocUnsafe(bytes.length - start + 1);
  out[0] = DATA;
  bytes.copy(out, 1, start);
  return out;
}

/** The expiry index key of a data key. */
export function indexKey(expiresAt: number, dataKey: Buffer): Buffer {
  const out = Buffer.allocUnsafe(dataKey.length + HEADER_BYTES);
  out[0] = INDEX;
  out.writeDoubleBE(expiresAt, 1);
  dataKey.copy(out, 1 + HEADER_BYTES, 1);
  return out;
}

/**
 * The index keys of every entry expired at `now` (expiring strictly before it, see isExpired)
 * sort below this: an entry expiring at `now` itself has this as a prefix, so it sorts after.
 */
export function indexBound(now: number): Buffer {
  const out = Buffer.allocUnsafe(1 + HEADER_BYTES);
  out[0] = INDEX;
  out.writeDoubleBE(now, 1);
  return out;
}

/** The stored record of a value (validated here). */
export function recordOf(expiresAt: number, value: Bytes): Buffer {
  const out = valueBytes(value, HEADER_BYTES);
  out.writeDoubleBE(expiresAt, 0);
  return out;
}

/** The record of the value `value[start, end)`, a range checkValueRange accepted. */
export function recordOfRange(expiresAt: number, value: Uint8Array, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + end - start);
  out.writeDoubleBE(expiresAt, 0);
  copyBytes(value, start, end, out, HEADER_BYTES);
  return out;
}

export function recordExpiry(rec: Buffer): number {
  return rec.readDoubleBE(0);
}

export function encodeNumber(n: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeDoubleBE(n, 0);
  return out;
}

/** How each LevelDB is tuned (see HddEngineOptions). */
export interface DbOptions {
  cacheSize: number;
  writeBufferSize: number;
  maxOpenFiles: number;
}

export function newDb(location: string, options: DbOptions, createIfMissing = true): Db {
  return new ClassicLevel<Buffer, Buffer>(location, {
    keyEncoding: 'buffer',
    valueEncoding: 'buffer',
    createIfMissing,
    cacheSize: options.cacheSize,
    writeBufferSize: options.writeBufferSize,
    maxOpenFiles: options.maxOpenFiles,
  });
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

/** Opens a LevelDB, turning its failures into the store's codes. */
export async function openDb(db: Db, what: string): Promise<void> {
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause ?? err;
    const code = errorCode(cause);
    const detail = cause instanceof Error ? cause.message : String(cause);
    if (code === 'LEVEL_LOCKED') {
      throw new StorageError('DATA_DIR_LOCKED', `${what} is locked by another process or store: ${detail}`, { cause });
    }
    if (code === 'LEVEL_CORRUPTION') {
      throw new StorageError('DATA_DIR_CORRUPT', `${what} is corrupt: ${detail}`, { cause });
    }
    throw new StorageError('DATA_DIR_NOT_WRITABLE', `${what} cannot be opened: ${detail}`, { cause });
  }
}

/** Creates the data directory, with a clear error when that is impossible. */
export async function ensureDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
    const info = await stat(path);
    if (!info.isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: 'ENOTDIR' });
  } catch (err) {
    throw new StorageError(
      'DATA_DIR_NOT_WRITABLE',
      `data directory ${path} cannot be created: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Which directory a path named when the store opened (a replaced directory has another). */
export interface DirIdentity {
  path: string;
  dev: bigint;
  ino: bigint;
}

export async function dirIdentity(path: string): Promise<DirIdentity> {
  const info = await stat(path, { bigint: true });
  return { path, dev: info.dev, ino: info.ino };
}

/**
 * Why `id.path` no longer names the directory it named at open (deleted, or replaced by another
 * one), or undefined when it still does. Synchronous on purpose: it runs between a batch's write
 * and its acknowledgement, and one stat costs microseconds.
 */
export function identityChange(id: DirIdentity): string | undefined {
  try {
    const now = statSync(id.path, { bigint: true, throwIfNoEntry: false });
    if (now === undefined) return `${id.path} was deleted`;
    if (now.dev !== id.dev || now.ino !== id.ino) return `${id.path} was replaced by another directory`;
    return undefined;
  } catch (err) {
    return `${id.path} cannot be checked: ${(err as Error).message}`;
  }
}

/**
 * Writes and fsyncs a small file in `dir`, then removes it: throws while the disk does not take
 * writes (full, failing). What it proves is limited (reopening a shard may need more room), but it
 * keeps a recovery from closing shards, and with them their reads, while the disk is still full.
 */
export async function probeDisk(dir: string): Promise<void> {
  const path = join(dir, 'hati.probe');
  try {
    const file = await open(path, 'w');
    try {
      await file.writeFile(Buffer.alloc(64 * 1024));
      await file.sync();
    } finally {
      await file.close();
    }
  } finally {
    await rm(path, { force: true });
  }
}

export function shardPath(dbDir: string, shard: number): string {
  return join(dbDir, `kv_shard_${shard}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The recorded shard count, or undefined for a directory that holds no store yet. */
export async function readShardCount(dbDir: string): Promise<number | undefined> {
  const metaPath = join(dbDir, 'hati.json');
  let text: string;
  try {
    text = await readFile(metaPath, 'utf8');
  } catch (err) {
    if (errorCode(err) !== 'ENOENT')
      throw new StorageError('DATA_DIR_CORRUPT', `cannot read ${metaPath}`, { cause: err });
    // No meta file: a store written by the seed has only kv_shard_<i> folders; count them.
    let names: string[] = [];
    try {
      names = await readdir(dbDir);
    } catch {}
    const shards = names.filter((name) => /^kv_shard_\d+$/.test(name)).length;
    return shards === 0 ? undefined : shards;
  }
  try {
    const meta = JSON.parse(text) as { format?: unknown; shards?: unknown };
    if (meta.format === FORMAT && Number.isInteger(meta.shards) && (meta.shards as number) > 0) {
      return meta.shards as number;
    }
  } catch {}
  throw new StorageError('DATA_DIR_CORRUPT', `${metaPath} is not a Hati store description`);
}

export async function writeShardCount(dbDir: string, shards: number): Promise<void> {
  const file = await open(join(dbDir, 'hati.json'), 'w');
  try {
    await file.writeFile(`${JSON.stringify({ format: FORMAT, shards })}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
}

/**
 * A reshard builds `db.reshard/` beside `db/`, then swaps the two by renaming `db` to `db.old`
 * and `db.reshard` to `db`. This finishes or undoes a reshard that a crash interrupted, so that
 * `db/` is always one complete store.
 */
export async function recoverReshard(dataDir: string): Promise<void> {
  const dbDir = join(dataDir, 'db');
  const building = join(dataDir, 'db.reshard');
  const old = join(dataDir, 'db.old');
  if (!(await exists(dbDir))) {
    if ((await exists(building)) && (await exists(join(building, 'hati.json')))) {
      await rename(building, dbDir);
    } else if (await exists(old)) {
      await rename(old, dbDir);
    }
  }
  await rm(building, { recursive: true, force: true });
  await rm(old, { recursive: true, force: true });
}

/** Swaps a fully built `db.reshard/` in place of `db/`. */
export async function swapReshard(dataDir: string): Promise<void> {
  const dbDir = join(dataDir, 'db');
  const old = join(dataDir, 'db.old');
  await rename(dbDir, old);
  await rename(join(dataDir, 'db.reshard'), dbDir);
  await rm(old, { recursive: true, force: true });
}

/** First bytes of a saved key filter: what it is, and the version of its format. */
const FILTER_MAGIC = Buffer.from('hati key filter 1\n');

/** Where the key filter of the shard at `location` (`<db>/kv_shard_<i>`) is saved: `<db>/key_filter_<i>`. */
function filterPath(location: string): string {
  return join(dirname(location), basename(location).replace(/^kv_shard_/, 'key_filter_'));
}

/**
 * The files of a shard's LevelDB, with their sizes, as one string. LevelDB makes a new log file
 * at every open, and a write grows one: while the string is the same, nothing opened or wrote the
 * LevelDB.
 */
async function listing(location: string): Promise<string> {
  const names = (await readdir(location)).sort();
  const sizes = await Promise.all(names.map(async (name) => (await stat(join(location, name))).size));
  return names.map((name, i) => `${name} ${sizes[i]}`).join('\n');
}

/**
 * Saves a shard's key filter (`parts`, see KeyFilter#serialize) beside its LevelDB, which must be
 * closed: with the LevelDB's listing, so that the next open uses it only if nothing opened the
 * LevelDB in between, and a checksum. Written to a temporary name, fsynced, then renamed, so a
 * crash leaves the whole file or none.
 */
export async function saveFilter(location: string, parts: Buffer[]): Promise<void> {
  const list = Buffer.from(await listing(location));
  const head = Buffer.alloc(8);
  head.writeUInt32LE(list.length, 0);
  let sum = crc32(list);
  for (const part of parts) sum = crc32(part, sum);
  head.writeUInt32LE(sum, 4);
  const path = filterPath(location);
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w');
  try {
    await file.writev([FILTER_MAGIC, head, list, ...parts]);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
}

/**
 * The key filter saved beside a shard (its `parts` joined), if the file is whole and the LevelDB
 * is as it was when it was saved; else undefined. Call before opening the LevelDB. The file is
 * removed either way: once the LevelDB is open it no longer matches.
 */
export async function takeFilter(location: string): Promise<Buffer | undefined> {
  const path = filterPath(location);
  try {
    const bytes = await readFile(path);
    const at = FILTER_MAGIC.length;
    if (bytes.length < at + 8 || !bytes.subarray(0, at).equals(FILTER_MAGIC)) return undefined;
    const listLength = bytes.readUInt32LE(at);
    const sum = bytes.readUInt32LE(at + 4);
    const rest = bytes.subarray(at + 8);
    if (listLength > rest.length || crc32(rest) !== sum) return undefined;
    if (rest.toString('utf8', 0, listLength) !== (await listing(location))) return undefined;
    return rest.subarray(listLength);
  } catch {
    // None saved, or unreadable: the filter is built again.
    return undefined;
  } finally {
    // Also a temporary file a crash during a save left behind. A file that cannot be removed is
    // harmless: the LevelDB's listing changes when it opens, so the file will not match again.
    await Promise.all([rm(path, { force: true }), rm(`${path}.tmp`, { force: true })]).catch(() => {});
  }
}
