import t from 'tap';
import { encodeReply, ProtocolErrorCode, type Reply, ReplyError, ReplyParser } from '../src/index.js';
import { chunkings, type Plain, parseReplies } from './common/feed.js';

const bin = (text: string) => Buffer.from(text, 'latin1');

t.test('every reply kind, fed whole, byte by byte and split at random points', async (t) => {
  const cases: Array<[string, Plain]> = [
    ['+OK\r\n', 'OK'],
    ['+\r\n', ''],
    ['+h\xc3\xa9llo w\xc3\xb6rld\r\n', 'héllo wörld'],
    ['-WRONG_ARITY wrong number of arguments\r\n', { error: 'WRONG_ARITY', message: 'wrong number of arguments' }],
    ['-ERR\r\n', { error: 'ERR', message: '' }],
    [':0\r\n', 0],
    [':-42\r\n', -42],
    [':9007199254740991\r\n', Number.MAX_SAFE_INTEGER],
    ['$5\r\nhello\r\n', { bulk: 'hello' }],
    ['$0\r\n\r\n', { bulk: '' }],
    ['$6\r\na\r\n\x00\xff\n\r\n', { bulk: 'a\r\n\x00\xff\n' }],
    ['$-1\r\n', null],
    ['*-1\r\n', null],
    ['*0\r\n', []],
    ['*3\r\n:1\r\n$1\r\nx\r\n+y\r\n', [1, { bulk: 'x' }, 'y']],
    ['*2\r\n*1\r\n*0\r\n$-1\r\n', [[[]], null]],
    ['*2\r\n*2\r\n:1\r\n-E m\r\n*1\r\n$0\r\n\r\n', [[1, { error: 'E', message: 'm' }], [{ bulk: '' }]]],
  ];
  for (const [input, expected] of cases) {
    for (const { name, chunks } of chunkings(bin(input), 20)) {
      const { results, error } = parseReplies(chunks);
      if (error !== undefined || JSON.stringify(results) !== JSON.stringify([expected])) {
        t.same({ results, error: error?.message }, { results: [expected], error: undefined }, `${input}: ${name}`);
      }
    }
    t.same(parseReplies([bin(input)]).results, [expected], JSON.stringify(input));
  }
  // All of them pipelined.
  const all = bin(cases.map(([input]) => input).join(''));
  for (const { name, chunks } of chunkings(all, 100)) {
    const { results } = parseReplies(chunks);
    if (JSON.stringify(results) !== JSON.stringify(cases.map(([, expected]) => expected))) {
      t.fail(`pipelined, ${name}`);
    }
  }
});

t.test('parsed values have the documented types', async (t) => {
  const replies: Reply[] = [];
  const parser = new ReplyParser((reply) => replies.push(reply));
  const chunk = bin('$3\r\nabc\r\n-NOPE no such key\r\n');
  t.equal(parser.push(chunk), undefined);
  const [bulk, error] = replies;
  t.ok(Buffer.isBuffer(bulk));
  chunk.fill(0);
  t.equal((bulk as Buffer).toString(), 'abc', 'a bulk is a copy');
  t.ok(error instanceof ReplyError);
  t.equal((error as ReplyError).name, 'ReplyError');
  t.equal((error as ReplyError).code, 'NOPE');
  t.equal((error as ReplyError).message, 'no such key');
});

t.test('malformed replies are errors with the right code', async (t) => {
  const cases: Array<[string, string]> = [
    ['?\r\n', 'PROTOCOL'],
    ['\x00', 'PROTOCOL'],
    [':abc\r\n', 'PROTOCOL'],
    [':\r\n', 'PROTOCOL'],
    [':1.5\r\n', 'PROTOCOL'],
    ['$-2\r\n', 'PROTOCOL'],
    ['$x\r\n', 'PROTOCOL'],
    ['*-5\r\n', 'PROTOCOL'],
    ['*a\r\n', 'PROTOCOL'],
    ['+OK\n', 'PROTOCOL'],
    ['$3\r\nabcd\r\n', 'PROTOCOL'],
    ['$3\r\nabc\n', 'PROTOCOL'],
    [`:${'1'.repeat(40)}\r\n`, 'PROTOCOL'],
    [`$${'0'.repeat(40)}`, 'PROTOCOL'],
    ['$2000000000\r\n', 'TOO_LARGE'],
    ['*2000000\r\n', 'TOO_LARGE'],
  ];
  for (const [input, code] of cases) {
    for (const { name, chunks } of chunkings(bin(input), 10)) {
      const { error } = parseReplies(chunks);
      if (error?.code !== code) t.fail(`${JSON.stringify(input)} ${name}: expected ${code}, got ${error?.code}`);
    }
    const { error } = parseReplies([bin(input)]);
    t.equal(error?.code, code, `${JSON.stringify(input)}: ${error?.message}`);
  }
  t.equal(parseReplies([bin('+toolong\r\n')], { maxInlineLength: 5 }).error?.code, ProtocolErrorCode.TOO_LARGE);
  t.equal(parseReplies([bin('+12345\r\n')], { maxInlineLength: 5 }).error, undefined);
  t.equal(parseReplies([bin('*3\r\n')], { maxArrayLength: 2 }).error?.code, ProtocolErrorCode.TOO_LARGE);
  t.equal(parseReplies([bin('$3\r\n')], { maxBulkLength: 2 }).error?.code, ProtocolErrorCode.TOO_LARGE);
});

t.test('a line over the limit is detected before its end arrives', async (t) => {
  const parser = new ReplyParser(() => t.fail('no reply'), { maxInlineLength: 1000 });
  t.equal(parser.push(bin('+')), undefined);
  let error: ReturnType<ReplyParser['push']>;
  let fed = 0;
  while (error === undefined && fed < 100_000) {
    error = parser.push(Buffer.alloc(100, 'a'));
    fed += 100;
    if (parser.buffered > 1001) t.fail(`buffered ${parser.buffered}`);
  }
  t.equal(error?.code, 'TOO_LARGE');
  t.ok(fed <= 1100, `after ${fed} bytes`);
  t.equal(parser.push(bin('+OK\r\n')), error, 'the error sticks');
});

t.test('a large bulk reply in many chunks', async (t) => {
  const value = Buffer.alloc(4 * 1024 * 1024, 'v');
  const input = encodeReply([value, 'after']);
  const replies: Reply[] = [];
  const parser = new ReplyParser((reply) => replies.push(reply));
  for (let pos = 0; pos < input.length; pos += 4096) {
    const error = parser.push(input.subarray(pos, pos + 4096));
    if (error !== undefined) t.fail(error.message);
  }
  t.equal(replies.length, 1);
  const [array] = replies as [Reply[]];
  t.ok((array[0] as Buffer).equals(value));
  t.equal(array[1], 'after');
  t.equal(parser.buffered, 0);
});

t.test('where the chunks split never changes the error of an overlong line', async (t) => {
  // A line of limit + 1 bytes ended by a bare LF: over the limit whether or not its LF came
  // with it.
  const cases: Array<[string, string, number]> = [
    [`+${'a'.repeat(41)}\n`, 'TOO_LARGE', 40],
    [`+${'a'.repeat(41)}\r\n`, 'TOO_LARGE', 40],
    [`+${'a'.repeat(40)}\n`, 'PROTOCOL', 40],
    [`:${'1'.repeat(32)}\n`, 'PROTOCOL', 40],
  ];
  for (const [input, code, maxInlineLength] of cases) {
    for (const { name, chunks } of chunkings(bin(input), 30)) {
      const { error } = parseReplies(chunks, { maxInlineLength });
      if (error?.code !== code) t.fail(`${JSON.stringify(input)} ${name}: expected ${code}, got ${error?.code}`);
    }
    t.equal(parseReplies([bin(input)], { maxInlineLength }).error?.code, code, JSON.stringify(input));
  }
});

t.test('limits and the other options are one object', async (t) => {
  const replies: Reply[] = [];
  const parser = new ReplyParser((reply) => replies.push(reply), {
    maxArrayLength: 2,
    onPush: () => t.fail('no push'),
  });
  t.equal(parser.push(bin('*2\r\n:1\r\n:2\r\n')), undefined);
  t.same(replies, [[1, 2]]);
  t.equal(parser.push(bin('*3\r\n'))?.code, ProtocolErrorCode.TOO_LARGE);
  t.throws(() => new ReplyParser(() => {}, { maxBulkLength: -1 }), RangeError);
});
