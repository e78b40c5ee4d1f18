// The backup file of `hati backup`: a versioned header, blocks of records compressed with
// Brotli and checksummed with CRC32, and an end marker with the counts. Pure: no files or
// sockets here, only bytes in and out, so the same code writes to a file or stdout and reads
// from a file or a pipe, and the tests feed it bytes. docs/backup.md describes the layout for
// anyone who writes a reader.
//
// Layout (integers big-endian):
//   magic        8 bytes  89 48 41 54 49 0D 0A 1A   ("\x89HATI\r\n\x1a", as PNG's: a file
//                                                   mangled by a text-mode copy no longer matches)
//   version      u16      1
//   header       u32 length, u32 CRC32 of the version and length (6 bytes), JSON (UTF-8),
//                u32 CRC32 of the JSON
//   blocks       'B' u8 codec, u32 records, u32 raw length, u32 stored length, u32 CRC32 of the
//                stored bytes, u32 CRC32 of the 18 bytes before it; then the stored bytes
//   end marker   'E' u32 length, u32 CRC32 of those 5 bytes, JSON (the counts), u32 CRC32 of
//                the JSON
// Every length is covered by a checksum before it is used: a damaged length is reported as
// damage, never mistaken for a file cut short.
// A block's raw bytes are its records one after another: u32 field count, then per field
// u32 length and the bytes (`recordToFields`, the kind word first).

import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants, crc32 } from 'node:zlib';
import { type BackupRecord, BackupRecordError, type BackupRecordKind, recordFromFields } from '@hati/protocol';

const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);

export const BACKUP_MAGIC = Buffer.from([0x89, 0x48, 0x41, 0x54, 0x49, 0x0d, 0x0a, 0x1a]);
/** The format version this code writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;

const BLOCK = 0x42; // 'B'
const END = 0x45; // 'E'
const BLOCK_HEAD = 22;
/** How a block's bytes are stored: as they are, or compressed with Brotli (RFC 7932). */
export const BlockCodec = { stored: 0, brotli: 1 } as const;
/** A header or end marker longer than this is damage, not a document. */
const MAX_JSON = 1 << 20;

/** What a file holds, as its header says. */
export interface BackupContents {
  /** hdd keys. */
  hdd: boolean;
  /** memory keys (`--memory`). */
  memory: boolean;
  /** Broker definitions, hdd queue messages and dead letters. */
  broker: boolean;
}

/** The header's JSON document. */
export interface BackupHeader {
  /** When the snapshot was taken (ISO 8601, UTC). */
  created: string;
  /** The version of the `hati` that wrote the file. */
  hati: string;
  /** The server's Hati version (from HELLO), or null when it did not say. */
  server: string | null;
  /** Where the snapshot came from: `host:port` or a socket path. */
  source: string;
  contents: BackupContents;
}

/** Records per kind. */
export type KindCounts = Record<BackupRecordKind, number>;

/** The end marker's JSON document. */
export interface BackupTrailer {
  records: number;
  blocks: number;
  counts: KindCounts;
  /** Key records per storage type. */
  keys: { hdd: number; memory: number };
  /** Bytes of the records before compression. */
  rawBytes: number;
}

export type BackupFileErrorCode = 'BACKUP_TRUNCATED' | 'BACKUP_CORRUPT' | 'BACKUP_VERSION';

/** Why a file cannot be read, and where: `offset` is the byte at which the damage was found. */
export class BackupFileError extends Error {
  override readonly name = 'BackupFileError';
  constructor(
    readonly code: BackupFileErrorCode,
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

export function emptyCounts(): KindCounts {
  return { key: 0, router: 0, queue: 0, binding: 0, message: 0, dead: 0 };
}

export interface EncoderOptions {
  /** Raw bytes of records per block before it is compressed and written. @default 1 MiB */
  blockBytes?: number;
  /**
   * Brotli quality, 0 (fastest) to 11 (smallest). Quality 1 compresses faster than deflate's
   * fastest level and smaller than its default one; from 4 up it is slower than a server streams.
   * @default 1
   */
  quality?: number;
}

/**
 * Writes a backup to `sink`, one block at a time: records are gathered until `blockBytes`, then
 * compressed (on the thread pool, while the next block fills) and handed to `sink`. At most one
 * block is being filled and one compressed or written, so memory stays bounded whatever the
 * size of the backup.
 */
export class BackupEncoder {
  readonly #sink: (chunk: Buffer) => Promise<void>;
  readonly #blockBytes: number;
  readonly #quality: number;
  #parts: Buffer[] = [];
  #rawInBlock = 0;
  #recordsInBlock = 0;
  /** The block being compressed and written, if any; a failure stays here for the next call to throw. */
  #writing: Promise<void> = Promise.resolve();
  #begun = false;
  #ended = false;
  readonly counts = emptyCounts();
  readonly keys = { hdd: 0, memory: 0 };
  records = 0;
  blocks = 0;
  rawBytes = 0;
  /** Bytes handed to the sink. */
  bytes = 0;

  constructor(sink: (chunk: Buffer) => Promise<void>, options: EncoderOptions = {}) {
    this.#sink = sink;
    this.#blockBytes = options.blockBytes ?? 1 << 20;
    this.#quality = options.quality ?? 1;
  }

  async begin(header: BackupHeader): Promise<void> {
    if (this.#begun) throw new Error('begin() was already called');
    this.#begun = true;
    const json = Buffer.from(JSON.stringify(header));
    const head = Buffer.alloc(18);
    BACKUP_MAGIC.copy(head, 0);
    head.writeUInt16BE(BACKUP_FORMAT_VERSION, 8);
    head.writeUInt32BE(json.length, 10);
    head.writeUInt32BE(crc32(head.subarray(8, 14)), 14);
    await this.#emit(Buffer.concat([head, json, crcOf(json)]));
  }

  /**
   * Adds a record given as its fields (the kind word first, as `BACKUP NEXT` replies), checked
   * with `recordFromFields`. Returns a promise only when the caller must wait (a full block
   * waits for the one before it to be written): `const wait = encoder.add(f); if (wait) await wait;`.
   * The fields are kept by reference until their block is compressed.
   */
  add(fields: readonly Uint8Array[]): Promise<void> | undefined {
    if (!this.#begun || this.#ended) throw new Error('add() before begin() or after end()');
    const record = recordFromFields(fields);
    this.counts[record.kind]++;
    if (record.kind === 'key') this.keys[record.type]++;
    const head = Buffer.allocUnsafe(4 + 4 * fields.length);
    head.writeUInt32BE(fields.length, 0);
    let size = head.length;
    fields.forEach((field, i) => {
      head.writeUInt32BE(field.byteLength, 4 + 4 * i);
      size += field.byteLength;
    });
    this.#parts.push(head);
    for (const field of fields) {
      this.#parts.push(Buffer.isBuffer(field) ? field : Buffer.from(field.buffer, field.byteOffset, field.byteLength));
    }
    this.#rawInBlock += size;
    this.#recordsInBlock++;
    this.records++;
    return this.#rawInBlock >= this.#blockBytes ? this.#flush() : undefined;
  }

  /** Writes the last block and the end marker; returns the end marker's counts. */
  async end(): Promise<BackupTrailer> {
    if (!this.#begun || this.#ended) throw new Error('end() before begin() or twice');
    await this.#flush();
    await this.#writing;
    this.#ended = true;
    const trailer: BackupTrailer = {
      records: this.records,
      blocks: this.blocks,
      counts: { ...this.counts },
      keys: { ...this.keys },
      rawBytes: this.rawBytes,
    };
    const json = Buffer.from(JSON.stringify(trailer));
    const head = Buffer.alloc(9);
    head[0] = END;
    head.writeUInt32BE(json.length, 1);
    head.writeUInt32BE(crc32(head.subarray(0, 5)), 5);
    await this.#emit(Buffer.concat([head, json, crcOf(json)]));
    return trailer;
  }

  /** Starts compressing the block filled so far, after the one before it is written. */
  async #flush(): Promise<void> {
    // The block before must be out first: the order of blocks, and one block in flight at most.
    await this.#writing;
    if (this.#recordsInBlock === 0) return;
    const raw = Buffer.concat(this.#parts, this.#rawInBlock);
    const records = this.#recordsInBlock;
    this.#parts = [];
    this.#rawInBlock = 0;
    this.#recordsInBlock = 0;
    this.blocks++;
    this.rawBytes += raw.length;
    this.#writing = this.#writeBlock(raw, records);
  }

  async #writeBlock(raw: Buffer, records: number): Promise<void> {
    const packed = await compress(raw, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: this.#quality,
        [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
      },
    });
    // Data that does not shrink (already compressed values) is stored as it is.
    const [codec, stored] = packed.length < raw.length ? [BlockCodec.brotli, packed] : [BlockCodec.stored, raw];
    const head = Buffer.alloc(BLOCK_HEAD);
    head[0] = BLOCK;
    head[1] = codec;
    head.writeUInt32BE(records, 2);
    head.writeUInt32BE(raw.length, 6);
    head.writeUInt32BE(stored.length, 10);
    head.writeUInt32BE(crc32(stored), 14);
    head.writeUInt32BE(crc32(head.subarray(0, 18)), 18);
    await this.#emit(head);
    await this.#emit(stored);
  }

  async #emit(chunk: Buffer): Promise<void> {
    await this.#sink(chunk);
    this.bytes += chunk.length;
  }
}

async function* fromSync(chunks: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

/**
 * Reads exact byte counts from an async iterable of chunks (a file stream, stdin), keeping only
 * what was asked for and the rest of the last chunk.
 */
class ByteReader {
  readonly #source: AsyncIterator<Uint8Array>;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #done = false;
  /** Bytes handed out so far: the offset of the next byte. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.#source = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : fromSync(source);
  }

  /** `n` bytes, or fewer when the input ends first. */
  async read(n: number): Promise<Buffer> {
    while (this.#buffered < n && !this.#done) {
      const next = await this.#source.next();
      if (next.done === true) {
        this.#done = true;
        break;
      }
      const chunk = next.value;
      if (chunk.byteLength === 0) continue;
      this.#chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.#buffered += chunk.byteLength;
    }
    const take = Math.min(n, this.#buffered);
    let out: Buffer;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= take) {
      out = first.subarray(0, take);
      if (first.length === take) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(take);
    } else {
      const all = Buffer.concat(this.#chunks, this.#buffered);
      out = all.subarray(0, take);
      this.#chunks = take < all.length ? [all.subarray(take)] : [];
    }
    this.#buffered -= take;
    this.offset += take;
    return out;
  }

  /** Whether the input has no byte left. */
  async atEnd(): Promise<boolean> {
    if (this.#buffered > 0) return false;
    const peek = await this.read(1);
    if (peek.length === 0) return true;
    // Put it back.
    this.#chunks.unshift(peek);
    this.#buffered += 1;
    this.offset -= 1;
    return false;
  }

  /** Stops the source (closes a file stream read part-way). */
  async close(): Promise<void> {
    await this.#source.return?.();
  }
}

/** One decoded block: its records, and where it lies in the file. */
export interface DecodedBlock {
  /** 1 for the first block. */
  index: number;
  /** Byte offset of its first byte, and of the byte after it. */
  offset: number;
  end: number;
  records: BackupRecord[];
}

/** A CRC32 as its 4 bytes. */
function crcOf(bytes: Buffer): Buffer {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(bytes));
  return crc;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * Reads a backup from `source` one block at a time: `header()`, then `next()` until it returns
 * undefined (the end marker was read and checked; `trailer` holds it). Every block's checksums
 * are checked and its records read before it is returned; damage throws a BackupFileError with
 * its offset. Only one block is held at a time.
 */
export class BackupDecoder {
  readonly #reader: ByteReader;
  #header: BackupHeader | undefined;
  trailer: BackupTrailer | undefined;
  readonly counts = emptyCounts();
  readonly keys = { hdd: 0, memory: 0 };
  records = 0;
  blocks = 0;

  /** `source`: a file stream, stdin, or chunks at hand (`[buffer]`). */
  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.#reader = new ByteReader(source);
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.#reader.offset;
  }

  async header(): Promise<BackupHeader> {
    if (this.#header !== undefined) return this.#header;
    const reader = this.#reader;
    const magic = await reader.read(10);
    const known = Math.min(magic.length, BACKUP_MAGIC.length);
    if (!magic.subarray(0, known).equals(BACKUP_MAGIC.subarray(0, known))) {
      throw new BackupFileError(
        'BACKUP_VERSION',
        0,
        `not a hati backup file: it starts with ${magic.subarray(0, 8).toString('hex')}, not ${BACKUP_MAGIC.toString('hex')}`,
      );
    }
    if (magic.length < 10) {
      throw new BackupFileError(
        'BACKUP_TRUNCATED',
        magic.length,
        magic.length === 0 ? 'the file is empty' : `the file ends at byte ${magic.length}, inside its header`,
      );
    }
    const version = magic.readUInt16BE(8);
    if (version !== BACKUP_FORMAT_VERSION) {
      throw new BackupFileError(
        'BACKUP_VERSION',
        8,
        `the file is in backup format version ${version}; this hati reads version ${BACKUP_FORMAT_VERSION}${version > BACKUP_FORMAT_VERSION ? ' (a newer hati wrote it)' : ''}`,
      );
    }
    const size = await this.#exact(8, 'inside its header');
    const damaged = (why: string) =>
      new BackupFileError('BACKUP_CORRUPT', 10, `the header at byte 10 is damaged: ${why}`);
    if (size.readUInt32BE(4) !== crc32(Buffer.concat([magic.subarray(8), size.subarray(0, 4)]))) {
      throw damaged('the checksum of its length does not match');
    }
    const length = size.readUInt32BE(0);
    if (length > MAX_JSON) throw damaged(`its length (${length}) is impossible`);
    const rest = await this.#exact(length + 4, 'inside its header');
    const json = rest.subarray(0, length);
    if (rest.readUInt32BE(length) !== crc32(json)) throw damaged('its checksum does not match');
    let header: BackupHeader;
    try {
      header = JSON.parse(json.toString('utf8')) as BackupHeader;
    } catch {
      throw damaged('it is not JSON');
    }
    this.#header = header;
    return header;
  }

  /** The next block, or undefined once the end marker is read (then nothing may follow it). */
  async next(): Promise<DecodedBlock | undefined> {
    if (this.#header === undefined) await this.header();
    if (this.trailer !== undefined) return undefined;
    const reader = this.#reader;
    const offset = reader.offset;
    const where = `after ${plural(this.blocks, 'block')}`;
    const type = await reader.read(1);
    if (type.length === 0) {
      throw new BackupFileError(
        'BACKUP_TRUNCATED',
        offset,
        `the file ends at byte ${offset}, ${where}, without its end marker: the export that wrote it did not finish`,
      );
    }
    if (type[0] === END) return this.#end(offset);
    if (type[0] !== BLOCK) {
      throw new BackupFileError(
        'BACKUP_CORRUPT',
        offset,
        `byte ${offset} (${where}) starts neither a block nor the end marker: the file is damaged`,
      );
    }
    const index = this.blocks + 1;
    const inBlock = `inside block ${index}, which starts at byte ${offset}`;
    const rest = await this.#exact(BLOCK_HEAD - 1, inBlock);
    const head = Buffer.concat([type, rest]);
    if (head.readUInt32BE(18) !== crc32(head.subarray(0, 18))) {
      throw new BackupFileError(
        'BACKUP_CORRUPT',
        offset,
        `block ${index} at byte ${offset} is damaged: the checksum of its header does not match`,
      );
    }
    const codec = head[1];
    const count = head.readUInt32BE(2);
    const rawLength = head.readUInt32BE(6);
    const storedLength = head.readUInt32BE(10);
    const stored = await this.#exact(storedLength, inBlock);
    const damaged = (why: string) =>
      new BackupFileError('BACKUP_CORRUPT', offset, `block ${index} at byte ${offset} is damaged: ${why}`);
    if (crc32(stored) !== head.readUInt32BE(14)) throw damaged('the checksum of its data does not match');
    let raw: Buffer;
    if (codec === BlockCodec.stored) {
      raw = stored;
    } else if (codec === BlockCodec.brotli) {
      try {
        // Never more than the block says: damage cannot make it inflate without bound.
        raw = await decompress(stored, { maxOutputLength: Math.max(rawLength, 1) });
      } catch (err) {
        throw damaged(`it does not decompress (${(err as Error).message})`);
      }
    } else {
      throw damaged(`unknown codec ${codec}`);
    }
    if (raw.length !== rawLength) throw damaged(`it decompresses to ${raw.length} bytes, not ${rawLength}`);
    let records: BackupRecord[];
    try {
      records = readRecords(raw, count);
    } catch (err) {
      throw damaged((err as Error).message);
    }
    this.blocks = index;
    this.records += records.length;
    for (const record of records) {
      this.counts[record.kind]++;
      if (record.kind === 'key') this.keys[record.type]++;
    }
    return { index, offset, end: reader.offset, records };
  }

  /** Stops reading (a file stream read part-way is closed). */
  close(): Promise<void> {
    return this.#reader.close();
  }

  async #end(offset: number): Promise<undefined> {
    const inEnd = `inside the end marker, which starts at byte ${offset}`;
    const size = await this.#exact(8, inEnd);
    const length = size.readUInt32BE(0);
    const damaged = (why: string) =>
      new BackupFileError('BACKUP_CORRUPT', offset, `the end marker at byte ${offset} is damaged: ${why}`);
    if (size.readUInt32BE(4) !== crc32(Buffer.concat([Buffer.from([END]), size.subarray(0, 4)]))) {
      throw damaged('the checksum of its length does not match');
    }
    if (length > MAX_JSON) throw damaged(`its length (${length}) is impossible`);
    const rest = await this.#exact(length + 4, inEnd);
    const json = rest.subarray(0, length);
    if (rest.readUInt32BE(length) !== crc32(json)) throw damaged('its checksum does not match');
    let trailer: BackupTrailer;
    try {
      trailer = JSON.parse(json.toString('utf8')) as BackupTrailer;
    } catch {
      throw damaged('it is not JSON');
    }
    const counted = JSON.stringify([this.records, this.blocks, this.counts]);
    const said = JSON.stringify([trailer.records, trailer.blocks, { ...emptyCounts(), ...trailer.counts }]);
    if (counted !== said) {
      throw damaged(
        `it counts ${plural(trailer.records, 'record')} in ${plural(trailer.blocks, 'block')}, the file holds ${plural(this.records, 'record')} in ${plural(this.blocks, 'block')}`,
      );
    }
    const after = this.#reader.offset;
    if (!(await this.#reader.atEnd())) {
      throw new BackupFileError(
        'BACKUP_CORRUPT',
        after,
        `bytes follow the end marker at byte ${after}: the file is damaged or two files were joined`,
      );
    }
    this.trailer = trailer;
    return undefined;
  }

  /** Exactly `n` bytes; fewer means the file was cut short `inside` a part of it. */
  async #exact(n: number, inside: string): Promise<Buffer> {
    const bytes = await this.#reader.read(n);
    if (bytes.length < n) {
      const end = this.#reader.offset;
      throw new BackupFileError(
        'BACKUP_TRUNCATED',
        end,
        `the file ends at byte ${end}, ${inside} (${n - bytes.length} more bytes expected): it was cut short`,
      );
    }
    return bytes;
  }
}

/** The records of a block's raw bytes. */
function readRecords(raw: Buffer, count: number): BackupRecord[] {
  const records: BackupRecord[] = [];
  let at = 0;
  const need = (n: number) => {
    if (at + n > raw.length) throw new Error(`record ${records.length + 1} runs past the end of the block`);
  };
  for (let i = 0; i < count; i++) {
    need(4);
    const fields = raw.readUInt32BE(at);
    at += 4;
    if (fields > 64) throw new Error(`record ${i + 1} claims ${fields} fields`);
    need(4 * fields);
    const lengths: number[] = [];
    for (let f = 0; f < fields; f++) lengths.push(raw.readUInt32BE(at + 4 * f));
    at += 4 * fields;
    const parts: Buffer[] = [];
    for (const length of lengths) {
      need(length);
      parts.push(raw.subarray(at, at + length));
      at += length;
    }
    try {
      records.push(recordFromFields(parts));
    } catch (err) {
      if (err instanceof BackupRecordError) throw new Error(`record ${i + 1}: ${err.message}`);
      throw err;
    }
  }
  if (at !== raw.length) throw new Error(`${raw.length - at} bytes follow its ${plural(count, 'record')}`);
  return records;
}
