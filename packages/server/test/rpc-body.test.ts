// RpcBody: a call in one small chunk is checked without a scan; anything else is scanned as it
// arrives. Either way the server must see the same thing: the calls of a batch, whether a
// request is too deeply nested or holds too many values, and the limits on body and batch size.
import { holds } from '@hati/test-helpers';
import fc from 'fast-check';
import t from 'tap';
import {
  BodyScanner,
  MAX_REQUEST_DEPTH,
  MAX_REQUEST_VALUES,
  type ScannedBody,
  smallSingleRequest,
} from '../src/json-body-scanner.js';
import { RpcBody } from '../src/rpc-body.js';

/**
 * What the server goes by: batch or not, invalid, and each call's bounds and verdicts (`blank`
 * only for the calls of a batch: a single request that is not JSON fails to parse either way).
 */
function seen(scanned: ScannedBody | string): unknown {
  if (typeof scanned === 'string') return scanned;
  return {
    batch: scanned.batch,
    invalid: scanned.invalid,
    elements: scanned.elements.map(({ start, end, blank, tooComplex }) =>
      scanned.batch ? { start, end, blank, tooComplex } : { start, end, tooComplex },
    ),
  };
}

/** The body through a BodyScanner in one piece: what the server saw before RpcBody. */
function scannedWhole(body: Buffer, maxBatch = 1_000_000): unknown {
  const scanner = new BodyScanner(maxBatch);
  if (!scanner.push(body)) return 'batch too large';
  scanner.finish();
  return seen(scanner);
}

/** The body through an RpcBody, cut at `cuts`; the first refusal, or what its end tells. */
function readInPieces(body: Buffer, cuts: number[], maxBatch = 1_000_000): { seen: unknown; bytes?: Buffer } {
  const reader = new RpcBody(64 * 1024 * 1024, maxBatch);
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < body.length).sort((a, b) => a - b), body.length]) {
    if (cut === from) continue;
    const refusal = reader.add(body.subarray(from, cut));
    if (refusal !== undefined) return { seen: refusal };
    from = cut;
  }
  const end = reader.end();
  return typeof end === 'string' ? { seen: end } : { seen: seen(end), bytes: reader.bytes };
}

const CALL = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'Storage.Get',
  params: { type: 'memory', key: 'key:000000000001' },
});

t.test('a call in one chunk: one element over the whole body, and the chunk itself as the bytes', async (t) => {
  const body = Buffer.from(` ${CALL}\n`);
  const reader = new RpcBody(1024, 10);
  t.equal(reader.add(body), undefined);
  t.same(seen(reader.end()), {
    batch: false,
    invalid: false,
    elements: [{ start: 0, end: body.length, tooComplex: false }],
  });
  t.equal(reader.bytes, body, 'the chunk as it came, not a copy');
  t.same(readInPieces(body, []).seen, scannedWhole(body), 'as the scanner sees it');
});

t.test('smallSingleRequest leaves to the scanner what it cannot tell by counting', async (t) => {
  t.equal(smallSingleRequest(Buffer.from(' [1]')), undefined, 'a batch');
  t.equal(smallSingleRequest(Buffer.from(' \r\n\t')), undefined, 'only whitespace');
  t.equal(smallSingleRequest(Buffer.alloc(0)), undefined, 'nothing');
  const deepString = JSON.stringify({ method: 'Storage.Get', params: { key: '['.repeat(MAX_REQUEST_DEPTH + 1) } });
  t.equal(smallSingleRequest(Buffer.from(deepString)), undefined, 'more brackets than the depth limit, in a string');
  const exactly = `${'['.repeat(MAX_REQUEST_DEPTH - 1)}${']'.repeat(MAX_REQUEST_DEPTH - 1)}`;
  t.ok(smallSingleRequest(Buffer.from(`{"a":${exactly}}`)), 'as many brackets as the depth limit: no scan');
  const long = JSON.stringify({ method: 'Storage.Set', params: { value: 'x'.repeat(MAX_REQUEST_VALUES) } });
  t.equal(smallSingleRequest(Buffer.from(long)), undefined, 'more bytes than the values limit');
});

t.test('nesting and values: refused whether the body was counted or scanned', async (t) => {
  // Two levels for the request and its params, then `depth` more.
  const nested = (depth: number) =>
    `{"method":"Storage.FlushAll","params":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
  // The request, the comma after its method and the params' bracket, then a comma per value more.
  const values = (count: number) => `{"method":"x","params":[${'1,'.repeat(count - 3)}1]}`;
  for (const [name, text, tooComplex] of [
    ['nested to the limit', nested(MAX_REQUEST_DEPTH - 2), false],
    ['nested one past the limit', nested(MAX_REQUEST_DEPTH - 1), true],
    ['brackets in a string', JSON.stringify({ method: 'x', params: { key: '['.repeat(100) } }), false],
    ['values to the limit', values(MAX_REQUEST_VALUES), false],
    ['one value past the limit', values(MAX_REQUEST_VALUES + 1), true],
  ] as const) {
    const body = Buffer.from(text);
    const whole = readInPieces(body, []).seen as { elements: Array<{ tooComplex: boolean }> };
    t.equal(whole.elements[0]?.tooComplex, tooComplex, `${name}: one chunk`);
    t.same(whole, scannedWhole(body), `${name}: as the scanner sees it`);
    const halves = readInPieces(body, [body.length >> 1]).seen;
    t.same(halves, scannedWhole(body), `${name}: in two chunks`);
  }
});

t.test('limits: a body over maxBody, a batch over maxBatch, in one chunk or in many', async (t) => {
  const reader = new RpcBody(100, 10);
  t.equal(reader.add(Buffer.alloc(60, 0x20)), undefined);
  t.equal(reader.add(Buffer.alloc(41, 0x20)), 'body too large', 'the chunk that crosses maxBody');
  t.equal(reader.skip(Buffer.alloc(0)), true, 'past maxBody, every chunk counts it so');
  t.equal(new RpcBody(100, 10).skip(Buffer.alloc(100)), false, 'maxBody itself is allowed');

  const batch = Buffer.from(JSON.stringify([1, 2, 3, 4]));
  t.equal(readInPieces(batch, [], 3).seen, 'batch too large', 'a small batch in one chunk: refused at its end');
  t.same(readInPieces(batch, [], 4).seen, scannedWhole(batch, 4), 'a batch of exactly maxBatch');
  t.equal((readInPieces(batch, [], 4).seen as { elements: unknown[] }).elements.length, 4);
  const pieces = new RpcBody(1024, 3);
  t.equal(pieces.add(batch.subarray(0, 4)), undefined, '[1,2');
  t.equal(pieces.add(batch.subarray(4)), 'batch too large', 'refused by the chunk that brings the fourth call');

  // A first chunk too large to be counted is scanned as it comes: a long batch is refused before its end.
  const long = Buffer.from(`[${'1,'.repeat(MAX_REQUEST_VALUES)}`);
  t.equal(new RpcBody(1024 * 1024, 100).add(long), 'batch too large', 'refused before the body has ended');
});

t.test('RpcBody sees any body as the scanner does, however it is cut', async (t) => {
  const check = (text: string, cuts: number[]) => {
    const body = Buffer.from(text);
    const read = readInPieces(body, cuts);
    const same = isSame(read.seen, scannedWhole(body));
    return same && (read.bytes === undefined || read.bytes.equals(body));
  };
  holds(
    t,
    fc.property(
      fc.oneof(fc.jsonValue({ maxDepth: 6 }), fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 10 })),
      fc.constantFrom(undefined, 0, 1, '\t', ' \r\n'),
      fc.array(fc.nat({ max: 2000 }), { maxLength: 4 }),
      (value, space, cuts) => check(JSON.stringify(value, null, space), cuts),
    ),
    300,
    'JSON values and batches, cut anywhere',
  );
  // Token soup, mostly not JSON, with brackets in and out of strings.
  const tokens = ['[', ']', '{', '}', ',', ':', '"', '\\', '"a"', '"[["', '"\\""', '1', ' ', 'null', '"é"'];
  holds(
    t,
    fc.property(
      fc.array(fc.constantFrom(...tokens), { maxLength: 60 }),
      fc.array(fc.nat({ max: 80 }), { maxLength: 3 }),
      (parts, cuts) => check(parts.join(''), cuts),
    ),
    3000,
    'token soup',
  );
});

function isSame(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
