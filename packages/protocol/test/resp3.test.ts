// RESP3: every new frame through the ReplyParser (whole, byte by byte, split at random points),
// the ReplyWriter's frames in both versions, and writer → parser round trips for nested values.
import { holds } from '@hati/test-helpers';
import fc from 'fast-check';
import t from 'tap';
import { encodeReply, type ProtocolError, ProtocolErrorCode, ReplyError, ReplyParser } from '../src/index.js';
// Imported from their modules: whether index.ts re-exports them is another file's business.
import { type Reply, ReplyMap, type ReplyParserOptions, ReplyPush } from '../src/reply-parser.js';
import { ReplyWriter } from '../src/reply-writer.js';
import { chunkings, split } from './common/feed.js';

const bin = (text: string) => Buffer.from(text, 'latin1');
const text = (buf: Buffer) => buf.toString('latin1');

/** A reply in a form `t.same` and JSON compare exactly, every RESP3 type told apart. */
type Shown =
  | string
  | number
  | boolean
  | null
  | { bulk: string }
  | { error: string; message: string }
  | { double: string }
  | { bigint: string }
  | { map: Array<[string, Shown]> }
  | { push: Shown[] }
  | Shown[];

function show(reply: Reply): Shown {
  if (reply === null || typeof reply === 'string' || typeof reply === 'boolean') return reply;
  if (typeof reply === 'number') {
    // NaN, the infinities and -0 do not survive JSON; safe integers stand for themselves.
    return Number.isSafeInteger(reply) && !Object.is(reply, -0)
      ? reply
      : { double: Object.is(reply, -0) ? '-0' : String(reply) };
  }
  if (typeof reply === 'bigint') return { bigint: reply.toString() };
  if (Buffer.isBuffer(reply)) return { bulk: reply.toString('latin1') };
  if (reply instanceof ReplyError) return { error: reply.code, message: reply.message };
  if (reply instanceof ReplyMap) return { map: [...reply].map(([key, value]) => [key, show(value)]) };
  if (reply instanceof ReplyPush) return { push: reply.items.map(show) };
  return reply.map(show);
}

interface Parsed {
  results: Shown[];
  error: ProtocolError | undefined;
}

/** Runs chunks through a ReplyParser; pushes come back as `{ push }` (via onPush when `viaOnPush`). */
function parse(chunks: Buffer[], options?: ReplyParserOptions, viaOnPush = false): Parsed {
  const results: Shown[] = [];
  const parser = new ReplyParser((reply) => results.push(show(reply)), {
    ...options,
    ...(viaOnPush ? { onPush: (items: Reply[]) => results.push({ push: items.map(show) }) } : {}),
  });
  let error: ProtocolError | undefined;
  for (const chunk of chunks) {
    error = parser.push(chunk);
    if (error !== undefined) break;
  }
  return { results, error };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

t.test('every RESP3 frame, fed whole, byte by byte and split at random points', async (t) => {
  const cases: Array<[string, Shown]> = [
    ['_\r\n', null],
    ['#t\r\n', true],
    ['#f\r\n', false],
    [',1.5\r\n', { double: '1.5' }],
    [',1.23\r\n', { double: '1.23' }],
    [',10\r\n', 10],
    [',-2\r\n', -2],
    [',-0\r\n', { double: '-0' }],
    [',1e+300\r\n', { double: '1e+300' }],
    [',1.5E-7\r\n', { double: '1.5e-7' }],
    [',12e3\r\n', 12000],
    [',inf\r\n', { double: 'Infinity' }],
    [',-inf\r\n', { double: '-Infinity' }],
    [',nan\r\n', { double: 'NaN' }],
    // What Redis before 7.2 may send for NaN.
    [',-nan\r\n', { double: 'NaN' }],
    [',NAN\r\n', { double: 'NaN' }],
    [',nan(123)\r\n', { double: 'NaN' }],
    ['(3492890328409238509324850943850943825024385\r\n', { bigint: '3492890328409238509324850943850943825024385' }],
    ['(-12\r\n', { bigint: '-12' }],
    ['(0\r\n', { bigint: '0' }],
    ['!21\r\nSYNTAX invalid syntax\r\n', { error: 'SYNTAX', message: 'invalid syntax' }],
    ['!0\r\n\r\n', { error: '', message: '' }],
    ['!14\r\nERR two\r\nlines\r\n', { error: 'ERR', message: 'two\r\nlines' }],
    ['!10\r\nERR h\xc3\xa9llo\r\n', { error: 'ERR', message: 'héllo' }],
    ['=15\r\ntxt:Some string\r\n', { bulk: 'Some string' }],
    ['=4\r\nmkd:\r\n', { bulk: '' }],
    ['=9\r\ntxt:\r\n\x00\xff\n\r\n', { bulk: '\r\n\x00\xff\n' }],
    [
      '%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n,2.5\r\n',
      {
        map: [
          ['first', 1],
          ['second', { double: '2.5' }],
        ],
      },
    ],
    ['%0\r\n', { map: [] }],
    ['%1\r\n$2\r\n\xc3\xa9\r\n_\r\n', { map: [['é', null]] }],
    ['%1\r\n:42\r\n+n\r\n', { map: [['42', 'n']] }],
    [
      '%2\r\n+a\r\n%1\r\n+b\r\n~2\r\n#t\r\n#f\r\n+c\r\n*0\r\n',
      {
        map: [
          ['a', { map: [['b', [true, false]]] }],
          ['c', []],
        ],
      },
    ],
    ['~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n', ['orange', 'apple', true, 100, 999]],
    ['~0\r\n', []],
    // Attributes are read and dropped; the reply they annotate comes through as usual.
    ['|1\r\n+ttl\r\n:3600\r\n:3\r\n', 3],
    ['|0\r\n+OK\r\n', 'OK'],
    ['*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n', [1, 2, 3]],
    [
      '|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n',
      [2039123, 9543892],
    ],
    ['%1\r\n|1\r\n+x\r\n+y\r\n+k\r\n|1\r\n|1\r\n+p\r\n+q\r\n+x\r\n+y\r\n+v\r\n', { map: [['k', 'v']] }],
    [
      '>3\r\n+message\r\n+somechannel\r\n+this is the message\r\n',
      { push: ['message', 'somechannel', 'this is the message'] },
    ],
    ['>0\r\n', { push: [] }],
    [
      '|1\r\n+a\r\n+b\r\n>2\r\n$7\r\nmessage\r\n%1\r\n+k\r\n#t\r\n',
      { push: [{ bulk: 'message' }, { map: [['k', true]] }] },
    ],
    [
      '*4\r\n_\r\n~1\r\n(1\r\n=5\r\ntxt:x\r\n!3\r\nE m\r\n',
      [null, [{ bigint: '1' }], { bulk: 'x' }, { error: 'E', message: 'm' }],
    ],
    // RESP2 frames read as before, next to RESP3 ones.
    ['*2\r\n$-1\r\n*-1\r\n', [null, null]],
  ];
  for (const [input, expected] of cases) {
    for (const viaOnPush of [false, true]) {
      for (const { name, chunks } of chunkings(bin(input), 20)) {
        const { results, error } = parse(chunks, undefined, viaOnPush);
        if (error !== undefined || !same(results, [expected])) {
          t.same({ results, error: error?.message }, { results: [expected], error: undefined }, `${input}: ${name}`);
        }
      }
    }
    t.same(parse([bin(input)]).results, [expected], JSON.stringify(input));
  }
  const all = bin(cases.map(([input]) => input).join(''));
  for (const { name, chunks } of chunkings(all, 100)) {
    const { results, error } = parse(chunks);
    if (
      error !== undefined ||
      !same(
        results,
        cases.map(([, expected]) => expected),
      )
    )
      t.fail(`pipelined, ${name}`);
  }
  t.same(
    parse([all]).results,
    cases.map(([, expected]) => expected),
    'pipelined, whole',
  );
});

t.test('parsed RESP3 values have the documented types', async (t) => {
  const replies: Reply[] = [];
  const parser = new ReplyParser((reply) => replies.push(reply));
  const chunk = bin(
    '%2\r\n$5\r\nfield\r\n=7\r\ntxt:abc\r\n+n\r\n(9223372036854775808\r\n>1\r\n+message\r\n#t\r\n,1.5\r\n',
  );
  t.equal(parser.push(chunk), undefined);
  const [map, push, yes, double] = replies;
  t.ok(map instanceof ReplyMap);
  t.ok(map instanceof Map, 'a ReplyMap is a Map');
  const verbatim = (map as ReplyMap).get('field');
  t.ok(Buffer.isBuffer(verbatim), 'a verbatim string is a Buffer');
  chunk.fill(0);
  t.equal((verbatim as Buffer).toString(), 'abc', 'a verbatim string is a copy, without its format prefix');
  t.equal((map as ReplyMap).get('n'), 2n ** 63n, 'a big number is an exact bigint');
  t.ok(push instanceof ReplyPush);
  t.same((push as ReplyPush).items, ['message']);
  t.equal(yes, true);
  t.equal(double, 1.5);
  t.equal(parser.buffered, 0);
});

t.test('integers outside the safe range stay (rounded) numbers, as in RESP2', async (t) => {
  const replies: Reply[] = [];
  const parser = new ReplyParser((reply) => replies.push(reply));
  t.equal(parser.push(bin(':9223372036854775807\r\n:-9223372036854775808\r\n')), undefined);
  t.same(replies, [2 ** 63, -(2 ** 63)]);
});

t.test('pushes go to onPush, in order with the replies; without it, to onReply as ReplyPush', async (t) => {
  // The spec's example: a push may come before or after the reply to a command.
  const input = bin(
    '>3\r\n+message\r\n+somechannel\r\n+this is the message\r\n$9\r\nGet-Reply\r\n>2\r\n+message\r\n:1\r\n:7\r\n',
  );
  for (const { name, chunks } of chunkings(input, 30)) {
    const events: Array<[string, Shown]> = [];
    const parser = new ReplyParser((reply) => events.push(['reply', show(reply)]), {
      onPush: (items) => events.push(['push', items.map(show)]),
    });
    for (const chunk of chunks) {
      const error = parser.push(chunk);
      if (error !== undefined) t.fail(`${name}: ${error.message}`);
    }
    const expected = [
      ['push', ['message', 'somechannel', 'this is the message']],
      ['reply', { bulk: 'Get-Reply' }],
      ['push', ['message', 1]],
      ['reply', 7],
    ];
    if (!same(events, expected)) t.same(events, expected, name);
  }
  const replies: Reply[] = [];
  t.equal(new ReplyParser((reply) => replies.push(reply)).push(input), undefined);
  t.equal(replies.length, 4);
  t.ok(replies[0] instanceof ReplyPush);
  t.ok(replies[2] instanceof ReplyPush);
  t.same((replies[2] as ReplyPush).items, ['message', 1]);
  // Limits and onPush live in one options object.
  const pushes: Reply[][] = [];
  const limited = new ReplyParser(() => t.fail('no reply'), {
    maxArrayLength: 2,
    onPush: (items) => pushes.push(items),
  });
  t.equal(limited.push(bin('>2\r\n+a\r\n+b\r\n')), undefined);
  t.same(pushes, [['a', 'b']]);
  t.equal(limited.push(bin('>3\r\n'))?.code, 'TOO_LARGE');
});

t.test('map keys are text', async (t) => {
  const keys: Array<[string, string]> = [
    ['+k\r\n', 'k'],
    ['$3\r\nk\xc3\xa9\r\n', 'ké'],
    [':-5\r\n', '-5'],
    [',1.5\r\n', '1.5'],
    [',inf\r\n', 'Infinity'],
    ['(123456789012345678901234567890\r\n', '123456789012345678901234567890'],
    ['#t\r\n', 'true'],
    ['_\r\n', 'null'],
    ['$-1\r\n', 'null'],
    ['-ERR x y\r\n', 'ERR x y'],
    ['-ERR\r\n', 'ERR'],
    ['=7\r\ntxt:abc\r\n', 'abc'],
    ['*0\r\n', '[]'],
    ['*2\r\n:1\r\n$1\r\na\r\n', '[1, a]'],
    ['~2\r\n*1\r\n#f\r\n*0\r\n', '[[false], []]'],
    ['%0\r\n', '{}'],
    ['%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n%1\r\n+c\r\n_\r\n', '{a: 1, b: [{c: null}]}'],
  ];
  for (const [key, expected] of keys) {
    const { results, error } = parse([bin(`%1\r\n${key}+v\r\n`)]);
    t.equal(error, undefined);
    t.same(results, [{ map: [[expected, 'v']] }], JSON.stringify(key));
  }
  t.same(
    parse([bin('%3\r\n+a\r\n:1\r\n+b\r\n:2\r\n$1\r\na\r\n:3\r\n')]).results,
    [
      {
        map: [
          ['a', 3],
          ['b', 2],
        ],
      },
    ],
    'keys equal as text: the last value wins',
  );
  // A key nested far deeper than the call stack allows: rendered without recursion.
  const depth = 100_000;
  const deep = bin(`%1\r\n${'*1\r\n'.repeat(depth)}:1\r\n+v\r\n`);
  const replies: Reply[] = [];
  t.equal(new ReplyParser((reply) => replies.push(reply)).push(deep), undefined);
  const [map] = replies as [ReplyMap];
  t.same([...map.keys()], [`${'['.repeat(128)}…`], 'an aggregate key is cut at 128 characters');
  // Maps keyed by arrays holding maps keyed by arrays...: each key's text holds the one nested
  // in it, so uncut it would grow with the square of the input.
  const levels = 50_000;
  const chain = bin(`${'%1\r\n*1\r\n'.repeat(levels)}%1\r\n:1\r\n+v\r\n${'+v\r\n'.repeat(levels)}`);
  const started = performance.now();
  const chained: Reply[] = [];
  t.equal(new ReplyParser((reply) => chained.push(reply)).push(chain), undefined);
  t.ok(performance.now() - started < 10_000, 'in linear time');
  const [[key]] = [...(chained[0] as ReplyMap)] as [[string, Reply]];
  t.equal(key.length, 129, 'the outermost key is cut');
  t.ok(key.startsWith('[{[{'), key);
  t.ok(key.endsWith('…'));
  t.same(parse([bin(`%1\r\n*3\r\n$300\r\n${'x'.repeat(300)}\r\n:1\r\n:2\r\n+v\r\n`)]).results, [
    { map: [[`[${'x'.repeat(127)}…`, 'v']] },
  ]);
  t.same(
    parse([bin(`%1\r\n$300\r\n${'x'.repeat(300)}\r\n+v\r\n`)]).results,
    [{ map: [['x'.repeat(300), 'v']] }],
    'a string key is never cut',
  );
});

t.test('malformed RESP3 is a ProtocolError with code PROTOCOL; over a limit, TOO_LARGE', async (t) => {
  const cases: Array<[string, string, ReplyParserOptions?]> = [
    ['#x\r\n', 'PROTOCOL'],
    ['#\r\n', 'PROTOCOL'],
    ['#T\r\n', 'PROTOCOL'],
    ['#tt\r\n', 'PROTOCOL'],
    ['#t\n', 'PROTOCOL'],
    ['_x\r\n', 'PROTOCOL'],
    ['_ \r\n', 'PROTOCOL'],
    [`_${'x'.repeat(40)}\r\n`, 'PROTOCOL'],
    [',\r\n', 'PROTOCOL'],
    [',abc\r\n', 'PROTOCOL'],
    [',1.\r\n', 'PROTOCOL'],
    [',.5\r\n', 'PROTOCOL'],
    [',1e\r\n', 'PROTOCOL'],
    [',1.5x\r\n', 'PROTOCOL'],
    [', 1\r\n', 'PROTOCOL'],
    [',+1\r\n', 'PROTOCOL'],
    [',0x10\r\n', 'PROTOCOL'],
    [',infinite\r\n', 'PROTOCOL'],
    [',nan(\r\n', 'PROTOCOL'],
    ['(\r\n', 'PROTOCOL'],
    ['(-\r\n', 'PROTOCOL'],
    ['(1.5\r\n', 'PROTOCOL'],
    ['(12a\r\n', 'PROTOCOL'],
    ['%-1\r\n', 'PROTOCOL'],
    ['%-2\r\n', 'PROTOCOL'],
    ['%x\r\n', 'PROTOCOL'],
    ['%\r\n', 'PROTOCOL'],
    ['~-1\r\n', 'PROTOCOL'],
    ['|-1\r\n', 'PROTOCOL'],
    ['>-1\r\n', 'PROTOCOL'],
    ['!-1\r\n', 'PROTOCOL'],
    ['=-1\r\n', 'PROTOCOL'],
    ['!x\r\n', 'PROTOCOL'],
    ['!3\r\nabcd\r\n', 'PROTOCOL'],
    ['=3\r\nabc\r\n', 'PROTOCOL'],
    ['=5\r\ntxtx:\r\n', 'PROTOCOL'],
    ['=4\r\ntxt:x\r\n', 'PROTOCOL'],
    // A push only ever comes at the top level.
    ['*1\r\n>1\r\n+x\r\n', 'PROTOCOL'],
    ['*2\r\n:1\r\n>0\r\n', 'PROTOCOL'],
    ['%1\r\n>1\r\n+x\r\n+v\r\n', 'PROTOCOL'],
    ['%1\r\n+k\r\n>1\r\n+x\r\n', 'PROTOCOL'],
    ['~1\r\n>0\r\n', 'PROTOCOL'],
    ['>1\r\n>0\r\n', 'PROTOCOL'],
    ['|1\r\n+a\r\n>1\r\n+x\r\n', 'PROTOCOL'],
    // Streamed strings and aggregates are not supported.
    ['$?\r\n', 'PROTOCOL'],
    ['*?\r\n', 'PROTOCOL'],
    ['%?\r\n', 'PROTOCOL'],
    ['.\r\n', 'PROTOCOL'],
    [';4\r\n', 'PROTOCOL'],
    // Limits: a map or attribute of n pairs is 2n elements.
    ['%3\r\n', 'TOO_LARGE', { maxArrayLength: 5 }],
    ['|3\r\n', 'TOO_LARGE', { maxArrayLength: 5 }],
    ['~6\r\n', 'TOO_LARGE', { maxArrayLength: 5 }],
    ['>6\r\n', 'TOO_LARGE', { maxArrayLength: 5 }],
    ['%1\r\n+k\r\n%3\r\n', 'TOO_LARGE', { maxArrayLength: 5 }],
    ['%600000\r\n', 'TOO_LARGE'],
    ['!6\r\n', 'TOO_LARGE', { maxBulkLength: 5 }],
    ['=10\r\n', 'TOO_LARGE', { maxBulkLength: 5 }],
    [`(${'1'.repeat(41)}\r\n`, 'TOO_LARGE', { maxInlineLength: 40 }],
    [`,${'1'.repeat(41)}\r\n`, 'TOO_LARGE', { maxInlineLength: 40 }],
    [`(${'1'.repeat(41)}`, 'TOO_LARGE', { maxInlineLength: 40 }],
  ];
  for (const [input, code, options] of cases) {
    for (const { name, chunks } of chunkings(bin(input), 10)) {
      const { error } = parse(chunks, options);
      if (error?.code !== code) t.fail(`${JSON.stringify(input)} ${name}: expected ${code}, got ${error?.code}`);
    }
    const { error } = parse([bin(input)], options);
    t.equal(error?.code, code, `${JSON.stringify(input)}: ${error?.message}`);
  }
  // Just within the limits.
  for (const [input, options] of [
    ['%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n', { maxArrayLength: 4 }],
    ['|2\r\n+a\r\n:1\r\n+b\r\n:2\r\n+OK\r\n', { maxArrayLength: 4 }],
    ['%500000\r\n', {}],
    [`(${'1'.repeat(40)}\r\n`, { maxInlineLength: 40 }],
    ['!5\r\nE abc\r\n', { maxBulkLength: 5 }],
  ] as const) {
    t.equal(parse([bin(input)], options).error, undefined, JSON.stringify(input));
  }
  const parser = new ReplyParser(() => {});
  const error = parser.push(bin('#?\r\n'));
  t.equal(error?.code, ProtocolErrorCode.PROTOCOL);
  t.equal(parser.push(bin('+OK\r\n')), error, 'the error sticks');
});

t.test('ReplyWriter: the frames that differ by version', async (t) => {
  const cases: Array<[string, (w: ReplyWriter) => void, string, string]> = [
    ['nil', (w) => w.nil(), '$-1\r\n', '_\r\n'],
    ['nullArray', (w) => w.nullArray(), '*-1\r\n', '_\r\n'],
    ['arrayHeader(-1)', (w) => w.arrayHeader(-1), '*-1\r\n', '_\r\n'],
    ['mapHeader(2)', (w) => w.mapHeader(2), '*4\r\n', '%2\r\n'],
    ['mapHeader(0)', (w) => w.mapHeader(0), '*0\r\n', '%0\r\n'],
    ['setHeader(3)', (w) => w.setHeader(3), '*3\r\n', '~3\r\n'],
    ['setHeader(0)', (w) => w.setHeader(0), '*0\r\n', '~0\r\n'],
    ['pushHeader(3)', (w) => w.pushHeader(3), '*3\r\n', '>3\r\n'],
    ['boolean(true)', (w) => w.boolean(true), ':1\r\n', '#t\r\n'],
    ['boolean(false)', (w) => w.boolean(false), ':0\r\n', '#f\r\n'],
    ['double(1.5)', (w) => w.double(1.5), '$3\r\n1.5\r\n', ',1.5\r\n'],
    ['double(10)', (w) => w.double(10), '$2\r\n10\r\n', ',10\r\n'],
    ['double(-0.25)', (w) => w.double(-0.25), '$5\r\n-0.25\r\n', ',-0.25\r\n'],
    ['double(-0)', (w) => w.double(-0), '$2\r\n-0\r\n', ',-0\r\n'],
    ['double(1e300)', (w) => w.double(1e300), '$6\r\n1e+300\r\n', ',1e+300\r\n'],
    ['double(-2.5e-7)', (w) => w.double(-2.5e-7), '$7\r\n-2.5e-7\r\n', ',-2.5e-7\r\n'],
    ['double(0.1)', (w) => w.double(0.1), '$3\r\n0.1\r\n', ',0.1\r\n'],
    ['double(inf)', (w) => w.double(Number.POSITIVE_INFINITY), '$3\r\ninf\r\n', ',inf\r\n'],
    ['double(-inf)', (w) => w.double(Number.NEGATIVE_INFINITY), '$4\r\n-inf\r\n', ',-inf\r\n'],
    ['double(nan)', (w) => w.double(Number.NaN), '$3\r\nnan\r\n', ',nan\r\n'],
    ['bigNumber(123n)', (w) => w.bigNumber(123n), '$3\r\n123\r\n', '(123\r\n'],
    [
      'bigNumber(-10n ** 30n)',
      (w) => w.bigNumber(-(10n ** 30n)),
      `$32\r\n-1${'0'.repeat(30)}\r\n`,
      `(-1${'0'.repeat(30)}\r\n`,
    ],
    ['verbatim', (w) => w.verbatim('Some string'), '$11\r\nSome string\r\n', '=15\r\ntxt:Some string\r\n'],
    ['verbatim mkd', (w) => w.verbatim('# hi\r\n', 'mkd'), '$6\r\n# hi\r\n\r\n', '=10\r\nmkd:# hi\r\n\r\n'],
    ['verbatim utf-8', (w) => w.verbatim('é'), '$2\r\n\xc3\xa9\r\n', '=6\r\ntxt:\xc3\xa9\r\n'],
    ['verbatim empty', (w) => w.verbatim(''), '$0\r\n\r\n', '=4\r\ntxt:\r\n'],
    [
      'verbatim bytes',
      (w) => w.verbatim(Buffer.from([0, 13, 10, 255])),
      '$4\r\n\x00\r\n\xff\r\n',
      '=8\r\ntxt:\x00\r\n\xff\r\n',
    ],
    [
      'bulkError',
      (w) => w.bulkError('SYNTAX', 'invalid syntax'),
      '-SYNTAX invalid syntax\r\n',
      '!21\r\nSYNTAX invalid syntax\r\n',
    ],
    ['bulkError, line breaks', (w) => w.bulkError('ERR', 'a\r\nb'), '-ERR a  b\r\n', '!8\r\nERR a\r\nb\r\n'],
    ['bulkError, no message', (w) => w.bulkError('ERR', ''), '-ERR\r\n', '!3\r\nERR\r\n'],
  ];
  for (const [name, write, resp2, resp3] of cases) {
    for (const [version, expected] of [
      [false, resp2],
      [true, resp3],
    ] as const) {
      const writer = new ReplyWriter();
      writer.resp3 = version;
      write(writer);
      t.equal(writer.length, expected.length);
      t.equal(text(writer.take()), expected, `${name}, ${version ? 'RESP3' : 'RESP2'}`);
    }
  }
});

t.test('ReplyWriter: the frames that are the same in both versions', async (t) => {
  const cases: Array<[(w: ReplyWriter) => void, string]> = [
    [(w) => w.ok(), '+OK\r\n'],
    [(w) => w.simple('PONG'), '+PONG\r\n'],
    [(w) => w.error('ERR', 'two\r\nlines'), '-ERR two  lines\r\n'],
    [(w) => w.integer(-12), ':-12\r\n'],
    [(w) => w.integer(0n), ':0\r\n'],
    [(w) => w.integer(-12n), ':-12\r\n'],
    [(w) => w.integer(2n ** 63n - 1n), ':9223372036854775807\r\n'],
    [(w) => w.integer(-(2n ** 63n)), ':-9223372036854775808\r\n'],
    [(w) => w.integer(2n ** 53n + 1n), ':9007199254740993\r\n'],
    [(w) => w.bulk('hello'), '$5\r\nhello\r\n'],
    [(w) => w.arrayHeader(3), '*3\r\n'],
    [(w) => w.raw(Buffer.from(':7\r\n')), ':7\r\n'],
  ];
  for (const [write, expected] of cases) {
    for (const version of [false, true]) {
      const writer = new ReplyWriter();
      writer.resp3 = version;
      write(writer);
      t.equal(text(writer.take()), expected, `${JSON.stringify(expected)}, ${version ? 'RESP3' : 'RESP2'}`);
    }
  }
});

t.test('ReplyWriter: bad arguments are RangeErrors and write nothing', async (t) => {
  for (const version of [false, true]) {
    const writer = new ReplyWriter();
    writer.resp3 = version;
    t.throws(() => writer.integer(2n ** 63n), RangeError);
    t.throws(() => writer.integer(-(2n ** 63n) - 1n), RangeError);
    t.throws(() => writer.mapHeader(-1), RangeError);
    t.throws(() => writer.mapHeader(1.5), RangeError);
    t.throws(() => writer.setHeader(-1), RangeError);
    t.throws(() => writer.pushHeader(-1), RangeError);
    t.throws(() => writer.pushHeader(Number.NaN), RangeError);
    t.throws(() => writer.arrayHeader(-2), RangeError);
    t.throws(() => writer.verbatim('x', 'text'), RangeError);
    t.throws(() => writer.verbatim('x', 'tx'), RangeError);
    t.throws(() => writer.verbatim('x', 'té:'), RangeError);
    t.equal(writer.length, 0, `nothing written, ${version ? 'RESP3' : 'RESP2'}`);
  }
  t.equal(new ReplyWriter().resp3, false, 'RESP2 by default');
});

t.test('reply() and encodeReply() in both versions', async (t) => {
  const map = new ReplyMap([
    ['a', 1],
    ['b', [true, null]],
  ]);
  const cases: Array<[Reply, string, string]> = [
    ['OK', '+OK\r\n', '+OK\r\n'],
    [3, ':3\r\n', ':3\r\n'],
    [1.5, '$3\r\n1.5\r\n', ',1.5\r\n'],
    [2 ** 60, '$19\r\n1152921504606847000\r\n', ',1152921504606847000\r\n'],
    [-0, '$2\r\n-0\r\n', ',-0\r\n'],
    [Number.NaN, '$3\r\nnan\r\n', ',nan\r\n'],
    [12n, '$2\r\n12\r\n', '(12\r\n'],
    [true, ':1\r\n', '#t\r\n'],
    [null, '$-1\r\n', '_\r\n'],
    [Buffer.from('v'), '$1\r\nv\r\n', '$1\r\nv\r\n'],
    [new ReplyError('E', 'm'), '-E m\r\n', '-E m\r\n'],
    [new ReplyError('E', 'a\nb'), '-E a b\r\n', '!5\r\nE a\nb\r\n'],
    [
      map,
      '*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*2\r\n:1\r\n$-1\r\n',
      '%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*2\r\n#t\r\n_\r\n',
    ],
    [new ReplyPush(['message', Buffer.from('c')]), '*2\r\n+message\r\n$1\r\nc\r\n', '>2\r\n+message\r\n$1\r\nc\r\n'],
    // RESP3 has no nested push: inside another reply it is written as an array.
    [[new ReplyPush([1])], '*1\r\n*1\r\n:1\r\n', '*1\r\n*1\r\n:1\r\n'],
    [[1, ['a'], []], '*3\r\n:1\r\n*1\r\n+a\r\n*0\r\n', '*3\r\n:1\r\n*1\r\n+a\r\n*0\r\n'],
  ];
  for (const [reply, resp2, resp3] of cases) {
    t.equal(text(encodeReply(reply)), resp2, `${JSON.stringify(resp2)}, RESP2`);
    t.equal(text(encodeReply(reply, false)), resp2);
    t.equal(text(encodeReply(reply, true)), resp3, `${JSON.stringify(resp3)}, RESP3`);
    const writer = new ReplyWriter();
    writer.resp3 = true;
    writer.reply(reply);
    t.equal(text(writer.take()), resp3);
  }
  // Only `true` selects RESP3: `replies.map(encodeReply)` passes indexes.
  t.same([null, null].map(encodeReply).map(text), ['$-1\r\n', '$-1\r\n']);
});

// Property-based: nested RESP3 values written and read back, under arbitrary chunking.

const RUNS = 300;
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 });
const chunked = (input: Buffer, fractions: number[]) =>
  split(
    input,
    fractions.map((f) => Math.floor(f * input.length)),
  );
const bytes = (max = 40) => fc.uint8Array({ maxLength: max }).map((array) => Buffer.from(array));
const line = fc.string({ unit: 'grapheme', maxLength: 20 }).filter((s) => !s.includes('\r') && !s.includes('\n'));
const anyText = fc.string({ unit: 'grapheme', maxLength: 20 });

const value: fc.Arbitrary<Reply> = fc.letrec<{ reply: Reply }>((tie) => ({
  reply: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    line,
    fc.maxSafeInteger(),
    fc.double(),
    fc.bigInt(),
    fc.boolean(),
    bytes(),
    fc.constant(null),
    fc.tuple(fc.stringMatching(/^[A-Z_]{0,12}$/), anyText).map(([code, message]) => new ReplyError(code, message)),
    fc.array(fc.tuple(anyText, tie('reply')), { maxLength: 4 }).map((entries) => new ReplyMap(entries)),
    fc.array(tie('reply'), { maxLength: 5 }),
  ),
})).reply;
/** A top-level reply: any value, or a push. */
const topLevel = fc.oneof(
  { weight: 4, arbitrary: value },
  { weight: 1, arbitrary: fc.array(value, { maxLength: 4 }).map((items): Reply => new ReplyPush(items)) },
);

const oneLine = (s: string) => s.replace(/[\r\n]/g, ' ');
const bulkOf = (s: string): Shown => ({ bulk: Buffer.from(s, 'utf8').toString('latin1') });

/** What a RESP2 reader gets back for `reply`: the RESP3 types as Redis writes them in RESP2. */
function inResp2(reply: Reply): Shown {
  if (typeof reply === 'number') {
    if (Number.isSafeInteger(reply) && !Object.is(reply, -0)) return reply;
    const shown = Number.isNaN(reply) ? 'nan' : Object.is(reply, -0) ? '-0' : String(reply);
    return bulkOf(shown.replace('Infinity', 'inf'));
  }
  if (typeof reply === 'bigint') return bulkOf(reply.toString());
  if (typeof reply === 'boolean') return reply ? 1 : 0;
  if (reply instanceof ReplyError) return { error: oneLine(reply.code), message: oneLine(reply.message) };
  if (reply instanceof ReplyMap) return [...reply].flatMap(([key, item]) => [bulkOf(key), inResp2(item)]);
  if (reply instanceof ReplyPush) return reply.items.map(inResp2);
  if (Array.isArray(reply)) return reply.map(inResp2);
  return show(reply);
}

t.test('ReplyWriter (RESP3) → ReplyParser round trip for arbitrary nested values', async (t) => {
  await holds(
    t,
    fc.property(
      fc.array(topLevel, { minLength: 1, maxLength: 8 }),
      cuts,
      fc.boolean(),
      (replies, fractions, viaOnPush) => {
        const input = Buffer.concat(replies.map((reply) => encodeReply(reply, true)));
        const { results, error } = parse(chunked(input, fractions), undefined, viaOnPush);
        return error === undefined && same(results, replies.map(show));
      },
    ),
    RUNS,
    `${RUNS} runs`,
  );
});

t.test(
  'ReplyWriter (RESP2) → ReplyParser round trip: RESP3 types come back as Redis writes them in RESP2',
  async (t) => {
    await holds(
      t,
      fc.property(fc.array(topLevel, { minLength: 1, maxLength: 8 }), cuts, (replies, fractions) => {
        const input = Buffer.concat(replies.map((reply) => encodeReply(reply)));
        const { results, error } = parse(chunked(input, fractions));
        return error === undefined && same(results, replies.map(inResp2));
      }),
      RUNS,
      `${RUNS} runs`,
    );
  },
);

t.test('a RESP3 ReplyWriter batch equals the encodeReply of each reply', async (t) => {
  await holds(
    t,
    fc.property(fc.array(topLevel, { maxLength: 8 }), (replies) => {
      const writer = new ReplyWriter();
      writer.resp3 = true;
      const taken: Buffer[] = [];
      for (const [i, reply] of replies.entries()) {
        writer.reply(reply);
        if (i % 3 === 0) taken.push(writer.take());
      }
      taken.push(writer.take());
      return Buffer.concat(taken).equals(Buffer.concat(replies.map((reply) => encodeReply(reply, true))));
    }),
    RUNS,
    `${RUNS} runs`,
  );
});

const fragment = fc.oneof(
  topLevel.map((reply) => encodeReply(reply, true)),
  fc
    .constantFrom(
      '_',
      '#',
      ',',
      '(',
      '!',
      '=',
      '%',
      '~',
      '|',
      '>',
      '*',
      '$',
      '+',
      '-',
      ':',
      '\r\n',
      '\r',
      't',
      'f',
      'txt:',
      'inf',
      'nan',
      '1.5',
      '1e5',
      '-1',
      '0',
      '2',
      '99999999999999999999',
      '%1\r\n',
      '~2\r\n',
      '|1\r\n',
      '>1\r\n',
      '*1\r\n',
      '!3\r\n',
      '=5\r\n',
      '_\r\n',
      '#t\r\n',
      ',-inf\r\n',
      '(12\r\n',
    )
    .map((s) => bin(s)),
  bytes(16),
);
const stream = fc.array(fragment, { maxLength: 30 }).map((parts) => Buffer.concat(parts));

t.test('arbitrary RESP3-like input never throws, and chunking never changes the outcome', async (t) => {
  for (const options of [undefined, { maxInlineLength: 40, maxBulkLength: 50, maxArrayLength: 5 }]) {
    await holds(
      t,
      fc.property(stream, cuts, fc.boolean(), (data, fractions, viaOnPush) => {
        const whole = parse([data], options, viaOnPush);
        const pieces = parse(chunked(data, fractions), options, viaOnPush);
        const codeOk = (error: ProtocolError | undefined) =>
          error === undefined || error.code === 'PROTOCOL' || error.code === 'TOO_LARGE';
        return (
          codeOk(whole.error) &&
          whole.error?.code === pieces.error?.code &&
          whole.error?.message === pieces.error?.message &&
          same(whole.results, pieces.results)
        );
      }),
      RUNS * 3,
      `${options === undefined ? 'default' : 'small'} limits: ${RUNS * 3} runs`,
    );
  }
});
