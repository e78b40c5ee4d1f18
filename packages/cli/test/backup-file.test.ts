// The backup file format (src/backup-file.ts): round trips of every record kind, read whole,
// one byte at a time and split at random points; a file cut at every byte and a file with every
// byte flipped are refused with the code and the offset of the damage; blocks leave the encoder
// while records still come (bounded memory).
import { randomBytes } from 'node:crypto';
import type { BackupRecord } from '@hati/protocol';
import { recordToFields } from '@hati/protocol';
import t from 'tap';
import {
  BACKUP_MAGIC,
  BackupDecoder,
  BackupEncoder,
  BackupFileError,
  type BackupHeader,
  type BackupTrailer,
  type DecodedBlock,
} from '../src/backup-file.js';

const HEADER: BackupHeader = {
  created: '2025-01-02T03:04:05.000Z',
  hati: '0.1.0',
  server: '0.1.0',
  source: '127.0.0.1:4242',
  contents: { hdd: true, memory: true, broker: true },
};

const SAMPLE: BackupRecord[] = [
  { kind: 'router', name: 'orders', routerKind: 'topic' },
  { kind: 'queue', name: 'jobs', type: 'hdd', settings: { maxDeliveries: 5, ackTimeoutMs: 30000 } },
  { kind: 'binding', queue: 'jobs', router: 'orders', bindingKey: 'eu.*' },
  { kind: 'key', type: 'hdd', key: Buffer.from('user:1'), value: Buffer.from('{"name":"Ada"}'), expiresAt: 0 },
  { kind: 'key', type: 'hdd', key: Buffer.from([0, 255, 13, 10]), value: Buffer.alloc(0), expiresAt: 1893456000000 },
  { kind: 'key', type: 'memory', key: Buffer.from('session'), value: Buffer.from('x'.repeat(300)), expiresAt: 42 },
  {
    kind: 'message',
    queue: 'jobs',
    routingKey: 'eu.paris',
    body: Buffer.from('hello'),
    deliveries: 3,
    readyAt: 0,
    expiresAt: 0,
    dedupId: 'd-1',
  },
  {
    kind: 'dead',
    queue: 'jobs',
    routingKey: 'eu.rome',
    body: Buffer.from('bye'),
    reason: 'delivery-limit',
    source: 'jobs',
    deliveries: 5,
  },
];

/** Encodes records; returns the file's bytes and the chunks as the sink got them. */
async function encode(
  records: readonly BackupRecord[],
  options: { blockBytes?: number } = {},
): Promise<{ file: Buffer; chunks: Buffer[]; trailer: BackupTrailer }> {
  const chunks: Buffer[] = [];
  const encoder = new BackupEncoder(async (chunk) => {
    chunks.push(Buffer.from(chunk));
  }, options);
  await encoder.begin(HEADER);
  for (const record of records) {
    const wait = encoder.add(recordToFields(record));
    if (wait) await wait;
  }
  const trailer = await encoder.end();
  return { file: Buffer.concat(chunks), chunks, trailer };
}

async function* pieces(file: Buffer, sizes: () => number): AsyncGenerator<Buffer> {
  for (let at = 0; at < file.length; ) {
    const n = Math.max(1, sizes());
    yield file.subarray(at, at + n);
    at += n;
  }
}

/** Decodes a whole file; returns the header, blocks and trailer, or throws the decoder's error. */
async function decode(source: AsyncIterable<Uint8Array>) {
  const decoder = new BackupDecoder(source);
  const header = await decoder.header();
  const blocks: DecodedBlock[] = [];
  for (let block = await decoder.next(); block !== undefined; block = await decoder.next()) blocks.push(block);
  return { header, blocks, records: blocks.flatMap((b) => b.records), trailer: decoder.trailer };
}

async function failure(file: Buffer): Promise<BackupFileError> {
  try {
    await decode(pieces(file, () => 4096));
  } catch (err) {
    if (err instanceof BackupFileError) return err;
    throw err;
  }
  throw new Error('the file was read without an error');
}

t.test('every record kind comes back field for field, with the header and the counts', async (t) => {
  const { file, trailer } = await encode(SAMPLE);
  t.same(file.subarray(0, 8), BACKUP_MAGIC);
  t.equal(file.readUInt16BE(8), 1, 'format version 1');
  const read = await decode(pieces(file, () => file.length));
  t.same(read.header, HEADER);
  t.same(read.records, SAMPLE);
  const counts = { key: 3, router: 1, queue: 1, binding: 1, message: 1, dead: 1 };
  t.same(trailer, { records: 8, blocks: 1, counts, keys: { hdd: 2, memory: 1 }, rawBytes: trailer.rawBytes });
  t.same(read.trailer, trailer);
  t.same(read.blocks[0]?.offset, 18 + Buffer.byteLength(JSON.stringify(HEADER)) + 4, 'the block after the header');
});

t.test('an empty backup is a header and an end marker', async (t) => {
  const { file } = await encode([]);
  const read = await decode(pieces(file, () => file.length));
  t.same(read.records, []);
  t.same(read.trailer?.counts, { key: 0, router: 0, queue: 0, binding: 0, message: 0, dead: 0 });
});

t.test('many blocks, read one byte at a time and split at random points', async (t) => {
  const records: BackupRecord[] = Array.from({ length: 2000 }, (_, i) => ({
    kind: 'key',
    type: 'hdd',
    key: Buffer.from(`key-${i}`),
    value: Buffer.from(`value ${i} `.repeat(i % 7)),
    expiresAt: i % 3 === 0 ? 1_900_000_000_000 + i : 0,
  }));
  // A value larger than a block, and incompressible: stored as it is, in a block of its own.
  const big = randomBytes(40_000);
  records.splice(1000, 0, { kind: 'key', type: 'memory', key: Buffer.from('big'), value: big, expiresAt: 0 });
  const { file, trailer } = await encode(records, { blockBytes: 8192 });
  t.ok(trailer.blocks > 5, `${trailer.blocks} blocks`);
  t.equal(trailer.records, 2001);
  t.ok(file.length < trailer.rawBytes, 'compressed');
  // Compared as text: a deep comparison of 2,001 records of buffers costs seconds.
  const text = (list: readonly BackupRecord[]) =>
    list.map((record) =>
      Object.entries(record)
        .map(([name, v]) => `${name}=${Buffer.isBuffer(v) ? v.toString('hex') : JSON.stringify(v)}`)
        .join(' '),
    );
  t.same(text((await decode(pieces(file, () => 1))).records), text(records), 'one byte at a time');
  const random = () => Math.floor(Math.random() * 3000);
  t.same(text((await decode(pieces(file, random))).records), text(records), 'random splits');
});

t.test('blocks reach the sink while records still come: one block held at a time', async (t) => {
  const chunks: Buffer[] = [];
  const encoder = new BackupEncoder(
    async (chunk) => {
      chunks.push(chunk);
    },
    { blockBytes: 4096 },
  );
  await encoder.begin(HEADER);
  const seen: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const value = Buffer.from(`${i}:`.repeat(20));
    const wait = encoder.add(
      recordToFields({ kind: 'key', type: 'hdd', key: Buffer.from(`k${i}`), value, expiresAt: 0 }),
    );
    if (wait) await wait;
    if (i % 100 === 99) seen.push(encoder.bytes);
  }
  // Written bytes grow along the way (not all at end()).
  t.ok(
    seen.every((bytes, i) => i === 0 || bytes > (seen[i - 1] as number)),
    `bytes written after each 100 records: ${seen.join(', ')}`,
  );
  await encoder.end();
});

t.test('a file cut at any byte is refused as BACKUP_TRUNCATED at the byte where it ends', async (t) => {
  const { file } = await encode(SAMPLE, { blockBytes: 64 });
  for (let cut = 0; cut < file.length; cut++) {
    const err = await failure(file.subarray(0, cut));
    if (err.code !== 'BACKUP_TRUNCATED' || err.offset !== cut) {
      t.fail(`cut at ${cut}: ${err.code} at ${err.offset}: ${err.message}`);
      return;
    }
  }
  const err = await failure(file.subarray(0, file.length - 3));
  t.match(
    err.message,
    /^the file ends at byte \d+, inside the end marker, which starts at byte \d+ \(3 more bytes expected\)/,
  );
  const blockStart = (await decode(pieces(file, () => file.length))).blocks[2]?.offset as number;
  t.equal(
    (await failure(file.subarray(0, blockStart))).message,
    `the file ends at byte ${blockStart}, after 2 blocks, without its end marker: the export that wrote it did not finish`,
  );
  t.equal((await failure(Buffer.alloc(0))).message, 'the file is empty');
});

t.test('a flipped byte anywhere is refused with the offset of the part it damaged', async (t) => {
  const { file } = await encode(SAMPLE, { blockBytes: 64 });
  const { blocks } = await decode(pieces(file, () => file.length));
  const endMarker = (blocks.at(-1) as DecodedBlock).end;
  // The part each byte belongs to: the magic and version (0..9), the header (10), a block, the end marker.
  const partOf = (at: number): number =>
    at < 10
      ? at
      : at < (blocks[0] as DecodedBlock).offset
        ? 10
        : at >= endMarker
          ? endMarker
          : (blocks.find((b) => at < b.end) as DecodedBlock).offset;
  for (let at = 0; at < file.length; at++) {
    const damaged = Buffer.from(file);
    damaged[at] = (damaged[at] as number) ^ 0x10;
    const err = await failure(damaged);
    const want = at < 8 ? ['BACKUP_VERSION', 0] : at < 10 ? ['BACKUP_VERSION', 8] : ['BACKUP_CORRUPT', partOf(at)];
    if (err.code !== want[0] || err.offset !== want[1]) {
      t.fail(`byte ${at}: ${err.code} at ${err.offset} (${err.message}), wanted ${want.join(' at ')}`);
      return;
    }
  }
  const block = blocks[1] as DecodedBlock;
  const damaged = Buffer.from(file);
  damaged[block.offset + 30] = (damaged[block.offset + 30] as number) ^ 1;
  t.equal(
    (await failure(damaged)).message,
    `block 2 at byte ${block.offset} is damaged: the checksum of its data does not match`,
  );
});

t.test('not a backup, another version, and bytes after the end marker', async (t) => {
  const text = await failure(Buffer.from('SET hdd 0 k v\n'));
  t.same([text.code, text.offset], ['BACKUP_VERSION', 0]);
  t.match(text.message, /^not a hati backup file: it starts with 5345542068646420/);
  const { file } = await encode(SAMPLE);
  const v2 = Buffer.from(file);
  v2.writeUInt16BE(2, 8);
  const newer = await failure(v2);
  t.same(
    [newer.code, newer.offset, newer.message],
    ['BACKUP_VERSION', 8, 'the file is in backup format version 2; this hati reads version 1 (a newer hati wrote it)'],
  );
  const joined = await failure(Buffer.concat([file, file]));
  t.same([joined.code, joined.offset], ['BACKUP_CORRUPT', file.length]);
  t.match(joined.message, /bytes follow the end marker/);
});

t.test('a record that is not one, under a good checksum, is refused as damage', async (t) => {
  const encoder = new BackupEncoder(async () => {});
  await encoder.begin(HEADER);
  t.throws(() => encoder.add([Buffer.from('key'), Buffer.from('disk')]), {
    code: 'BACKUP_RECORD_INVALID',
    message: 'a key record has 5 fields, got 2',
  });
});
