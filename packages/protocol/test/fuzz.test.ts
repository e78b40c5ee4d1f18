// Property-based tests: serialise → parse round trips under arbitrary chunking, and arbitrary
// bytes into both parsers.

import { holds } from '@hati/test-helpers';
import fc from 'fast-check';
import t from 'tap';
import {
  encodeCommand,
  encodeReply,
  type ParserLimits,
  ProtocolError,
  type Reply,
  ReplyError,
  ReplyWriter,
} from '../src/index.js';
import { parseReplies, parseRequests, plain, split } from './common/feed.js';

const RUNS = 300;
// CROSS_PROTOCOL: random lines can look like HTTP headers (`x: y`); only the request parser says so.
const codes = new Set(['PROTOCOL', 'TOO_LARGE', 'CROSS_PROTOCOL']);

/** Cut points as fractions, so they apply to an input of any length. */
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 });
const chunked = (input: Buffer, fractions: number[]) =>
  split(
    input,
    fractions.map((f) => Math.floor(f * input.length)),
  );

const bytes = (max = 64) => fc.uint8Array({ maxLength: max }).map((array) => Buffer.from(array));
const command = fc.array(bytes(), { minLength: 1, maxLength: 6 });

/** Fragments that reach deep into the parsers' states, mixed with arbitrary bytes. */
const fragment = fc.oneof(
  command.map((args) => encodeCommand(args)),
  fc
    .constantFrom(
      '*',
      '$',
      '+',
      '-',
      ':',
      '\r\n',
      '\r',
      '\n',
      ' ',
      '\t',
      '*1\r\n',
      '*2\r\n',
      '*0\r\n',
      '*-1\r\n',
      '$3\r\n',
      '$0\r\n',
      '$-1\r\n',
      'SET memory 0 k v a l\n',
      'GET memory k\r\n',
      'SET',
      '0',
      '-1',
      '99999999999999999999',
      '0000000000000000000000000000000000',
      'abc',
      '+OK\r\n',
      ':12\r\n',
      '-ERR x\r\n',
    )
    .map((text) => Buffer.from(text, 'latin1')),
  bytes(16),
);
const stream = fc.array(fragment, { maxLength: 30 }).map((parts) => Buffer.concat(parts));
const smallLimits: Partial<ParserLimits> = { maxInlineLength: 40, maxBulkLength: 50, maxArrayLength: 5 };

t.test('encodeCommand → RequestParser round trip, under arbitrary chunking', async (t) => {
  await holds(
    t,
    fc.property(fc.array(command, { minLength: 1, maxLength: 10 }), cuts, (commands, fractions) => {
      const input = Buffer.concat(commands.map((args) => encodeCommand(args)));
      const { results, error } = parseRequests(chunked(input, fractions));
      return (
        error === undefined &&
        JSON.stringify(results) === JSON.stringify(commands.map((args) => args.map((arg) => arg.toString('latin1'))))
      );
    }),
    RUNS,
    `${RUNS} runs`,
  );
});

t.test('inline requests round trip: tokens without blanks, the SET value verbatim', async (t) => {
  const token = fc.stringMatching(/^[!-~]{1,12}$/);
  const value = fc.stringMatching(/^[ -~\t]{0,30}$/);
  await holds(
    t,
    fc.property(fc.array(fc.tuple(token, token, value), { minLength: 1, maxLength: 10 }), cuts, (lines, fractions) => {
      const input = Buffer.from(lines.map(([key, ttl, v]) => `SET memory ${ttl} ${key} ${v}\r\n`).join(''), 'latin1');
      const { results, error } = parseRequests(chunked(input, fractions));
      const expected = lines.map(([key, ttl, v]) => ['SET', 'memory', ttl, key, v]);
      return error === undefined && JSON.stringify(results) === JSON.stringify(expected);
    }),
    RUNS,
    `${RUNS} runs`,
  );
});

const line = (unit: 'grapheme' | 'grapheme-ascii') =>
  fc.string({ unit, maxLength: 20 }).filter((text) => !text.includes('\r') && !text.includes('\n'));

const reply: fc.Arbitrary<Reply> = fc.letrec<{ reply: Reply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    line('grapheme'),
    fc.maxSafeInteger(),
    bytes(40),
    fc.constant(null),
    fc
      .tuple(fc.stringMatching(/^[A-Z_]{0,12}$/), line('grapheme'))
      .map(([code, message]) => new ReplyError(code, message)),
    fc.array(tie('reply'), { maxLength: 5 }),
  ),
})).reply;

t.test('encodeReply → ReplyParser round trip for arbitrary nested replies', async (t) => {
  await holds(
    t,
    fc.property(fc.array(reply, { minLength: 1, maxLength: 8 }), cuts, (replies, fractions) => {
      const input = Buffer.concat(replies.map(encodeReply));
      const { results, error } = parseReplies(chunked(input, fractions));
      return error === undefined && JSON.stringify(results) === JSON.stringify(replies.map(plain));
    }),
    RUNS,
    `${RUNS} runs`,
  );
});

t.test('ReplyWriter writes what encodeReply encodes', async (t) => {
  await holds(
    t,
    fc.property(fc.array(reply, { maxLength: 8 }), (replies) => {
      const writer = new ReplyWriter();
      const taken: Buffer[] = [];
      for (const [i, r] of replies.entries()) {
        writer.reply(r);
        if (i % 3 === 0) taken.push(writer.take());
      }
      taken.push(writer.take());
      return Buffer.concat(taken).equals(Buffer.concat(replies.map(encodeReply)));
    }),
    RUNS,
    `${RUNS} runs`,
  );
});

function isResult(result: ProtocolError | undefined): boolean {
  return result === undefined || (result instanceof ProtocolError && codes.has(result.code));
}

t.test('arbitrary bytes into both parsers never throw, and chunking never changes the outcome', async (t) => {
  for (const [name, input] of [
    ['random bytes', fc.uint8Array({ maxLength: 300 }).map((array) => Buffer.from(array))],
    ['protocol-like fragments', stream],
  ] as const) {
    for (const limits of [undefined, smallLimits]) {
      await holds(
        t,
        fc.property(input, cuts, (data, fractions) => {
          const whole = parseRequests([data], limits);
          const pieces = parseRequests(chunked(data, fractions), limits);
          const replyWhole = parseReplies([data], limits);
          const replyPieces = parseReplies(chunked(data, fractions), limits);
          return (
            isResult(whole.error) &&
            isResult(pieces.error) &&
            isResult(replyWhole.error) &&
            isResult(replyPieces.error) &&
            whole.error?.code === pieces.error?.code &&
            JSON.stringify(whole.results) === JSON.stringify(pieces.results) &&
            replyWhole.error?.code === replyPieces.error?.code &&
            JSON.stringify(replyWhole.results) === JSON.stringify(replyPieces.results)
          );
        }),
        RUNS * 3,
        `${name}, ${limits === undefined ? 'default' : 'small'} limits: ${RUNS * 3} runs`,
      );
    }
  }
});
