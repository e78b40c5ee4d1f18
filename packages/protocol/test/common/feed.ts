// Feeding helpers: every frame is fed whole, one byte at a time and split at random points.
import {
  type ParserLimits,
  type ProtocolError,
  type Reply,
  ReplyError,
  ReplyMap,
  ReplyParser,
  ReplyPush,
  RequestParser,
} from '../../src/index.js';

/** A small seeded PRNG (mulberry32), so random splits are reproducible. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `input` cut at the given offsets (sorted, deduplicated, out-of-range ones dropped). */
export function split(input: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.filter((cut) => cut > 0 && cut < input.length))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of points) {
    chunks.push(input.subarray(from, point));
    from = point;
  }
  chunks.push(input.subarray(from));
  return chunks;
}

export function bytewise(input: Buffer): Buffer[] {
  return Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
}

export function randomSplit(input: Buffer, next: () => number): Buffer[] {
  const count = Math.floor(next() * Math.min(input.length, 20)) + 1;
  return split(
    input,
    Array.from({ length: count }, () => Math.floor(next() * input.length)),
  );
}

/** The ways every frame is fed: whole, byte by byte, and `randomRuns` random splits. */
export function chunkings(input: Buffer, randomRuns = 50, seed = 1): Array<{ name: string; chunks: Buffer[] }> {
  const next = random(seed);
  const ways = [
    { name: 'whole', chunks: [input] },
    { name: 'byte by byte', chunks: bytewise(input) },
  ];
  for (let i = 0; i < randomRuns; i++) ways.push({ name: `random split ${i}`, chunks: randomSplit(input, next) });
  return ways;
}

export interface Parsed<T> {
  results: T[];
  error: ProtocolError | undefined;
}

/**
 * Runs chunks through a RequestParser; each command comes back as its arguments decoded as
 * latin1 (one character per byte, so binary data compares exactly).
 */
export function parseRequests(chunks: Buffer[], limits?: Partial<ParserLimits>): Parsed<string[]> {
  const results: string[][] = [];
  const parser = new RequestParser(
    (request) => results.push(request.args().map((arg) => arg.toString('latin1'))),
    limits,
  );
  let error: ProtocolError | undefined;
  for (const chunk of chunks) {
    error = parser.push(chunk);
    if (error !== undefined) break;
  }
  return { results, error };
}

/**
 * A reply in a form `t.same` and JSON compare exactly: bulks as `{ bulk: latin1 }`, errors as
 * `{ error, message }`, and the RESP3 types as `{ bigint }`, `{ map: [key, value][] }`, `{ push }`.
 */
export type Plain =
  | string
  | number
  | boolean
  | null
  | { bulk: string }
  | { error: string; message: string }
  | { bigint: string }
  | { map: Array<[string, Plain]> }
  | { push: Plain[] }
  | Plain[];

export function plain(reply: Reply): Plain {
  if (reply === null || typeof reply === 'string' || typeof reply === 'number' || typeof reply === 'boolean') {
    return reply;
  }
  if (typeof reply === 'bigint') return { bigint: reply.toString() };
  if (Buffer.isBuffer(reply)) return { bulk: reply.toString('latin1') };
  if (reply instanceof ReplyError) return { error: reply.code, message: reply.message };
  if (reply instanceof ReplyMap) return { map: [...reply].map(([key, value]) => [key, plain(value)]) };
  if (reply instanceof ReplyPush) return { push: reply.items.map(plain) };
  return reply.map(plain);
}

export function parseReplies(chunks: Buffer[], limits?: Partial<ParserLimits>): Parsed<Plain> {
  const results: Plain[] = [];
  const parser = new ReplyParser((reply) => results.push(plain(reply)), limits);
  let error: ProtocolError | undefined;
  for (const chunk of chunks) {
    error = parser.push(chunk);
    if (error !== undefined) break;
  }
  return { results, error };
}
