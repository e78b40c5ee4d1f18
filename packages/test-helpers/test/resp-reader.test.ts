import t from 'tap';
import { encodeCommand, type Reply, ReplyError, RespReader, showReply } from '../src/index.js';

/** Reads `bytes` fed in the given pieces; returns the replies (pushes marked) and the error. */
function read(pieces: Buffer[]): { replies: Array<{ reply: Reply; push: boolean }>; error: Error | undefined } {
  const replies: Array<{ reply: Reply; push: boolean }> = [];
  const reader = new RespReader((reply, push) => replies.push({ reply, push }));
  let error: Error | undefined;
  for (const piece of pieces) error = reader.push(piece) ?? error;
  return { replies, error };
}

const wire = [
  '+OK\r\n',
  '-KEY_NOT_EXIST no such key here\r\n',
  '-ERR\r\n',
  ':42\r\n',
  ':-7\r\n',
  '$5\r\nhe\r\no\r\n',
  '$0\r\n\r\n',
  '$-1\r\n',
  '*-1\r\n',
  '*0\r\n',
  '*3\r\n:1\r\n$1\r\na\r\n*1\r\n+x\r\n',
  '_\r\n',
  '#t\r\n',
  '#f\r\n',
  ',3.25\r\n',
  ',-1e3\r\n',
  ',inf\r\n',
  ',-inf\r\n',
  '(3492890328409238509324850943850943825024385\r\n',
  '!21\r\nSYNTAX invalid syntax\r\n',
  '=15\r\ntxt:Some string\r\n',
  '%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n*2\r\n:2\r\n:3\r\n',
  '~2\r\n+a\r\n+b\r\n',
  '>3\r\n+message\r\n+chan\r\n$2\r\nhi\r\n',
  '|1\r\n+ttl\r\n:3600\r\n+after an attribute\r\n',
  '*2\r\n|1\r\n+key-popularity\r\n,0.5\r\n:1\r\n:2\r\n',
  '%0\r\n',
].join('');

const values: Reply[] = [
  'OK',
  new ReplyError('KEY_NOT_EXIST', 'no such key here'),
  new ReplyError('ERR', ''),
  42,
  -7,
  Buffer.from('he\r\no'),
  Buffer.alloc(0),
  null,
  null,
  [],
  [1, Buffer.from('a'), ['x']],
  null,
  true,
  false,
  3.25,
  -1000,
  Infinity,
  -Infinity,
  3492890328409238509324850943850943825024385n,
  new ReplyError('SYNTAX', 'invalid syntax'),
  Buffer.from('Some string'),
  { first: 1, second: [2, 3] },
  ['a', 'b'],
  'PUSH',
  'after an attribute',
  [1, 2],
  {},
];
const expected: Array<{ reply: Reply; push: boolean }> = values.map((reply) =>
  reply === 'PUSH' ? { reply: ['message', 'chan', Buffer.from('hi')], push: true } : { reply, push: false },
);

t.test('every RESP2 and RESP3 type, fed whole, one byte at a time and cut at every point', async (t) => {
  const bytes = Buffer.from(wire);
  const whole = read([bytes]);
  t.equal(whole.error, undefined);
  t.same(whole.replies, expected);
  const errors = whole.replies.filter((r) => r.reply instanceof ReplyError).map((r) => (r.reply as ReplyError).code);
  t.same(errors, ['KEY_NOT_EXIST', 'ERR', 'SYNTAX'], 'errors are ReplyErrors with their codes');
  t.same(read([...bytes].map((byte) => Buffer.from([byte]))).replies, expected, 'one byte at a time');
  const badCuts: string[] = [];
  for (let cut = 1; cut < bytes.length; cut++) {
    const { replies, error } = read([bytes.subarray(0, cut), bytes.subarray(cut)]);
    if (error !== undefined || replies.length !== expected.length) {
      badCuts.push(`cut at ${cut}: ${error?.message ?? `${replies.length} replies`}`);
    }
  }
  t.same(badCuts, [], 'the same replies wherever the input is cut');
});

t.test('a large bulk string in many chunks is read once complete, into a copy', async (t) => {
  const payload = Buffer.alloc(5 * 1024 * 1024, 'x');
  const bytes = Buffer.concat([Buffer.from(`$${payload.length}\r\n`), payload, Buffer.from('\r\n:1\r\n')]);
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 65536) pieces.push(bytes.subarray(i, i + 65536));
  const { replies, error } = read(pieces);
  t.equal(error, undefined);
  t.equal(replies.length, 2);
  t.ok(payload.equals(replies[0]?.reply as Buffer));
  t.equal(replies[1]?.reply, 1);
});

t.test('bytes that are not RESP are an error, for good', async (t) => {
  for (const bad of [
    '?what\r\n',
    ':12a\r\n',
    '$3\r\nabcd\r\n',
    '#x\r\n',
    ',1.2.3\r\n',
    '_x\r\n',
    '$-2\r\n',
    '=3\r\nabc\r\n',
  ]) {
    const replies: Reply[] = [];
    const reader = new RespReader((reply) => replies.push(reply));
    const error = reader.push(Buffer.from(`+before\r\n${bad}`));
    t.ok(error instanceof Error, `${JSON.stringify(bad)} is an error`);
    t.same(replies, ['before'], `${JSON.stringify(bad)}: what came before was read`);
    t.equal(reader.push(Buffer.from('+OK\r\n')), error, 'nothing is read after it');
  }
});

t.test('encodeCommand and showReply', async (t) => {
  t.equal(encodeCommand(['SET', Buffer.from('k'), 'é']).toString(), '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n');
  t.equal(showReply(new ReplyError('NOPE', 'no')), '-NOPE no');
  t.equal(showReply([Buffer.from('v'), 1, null, 2n]), '["v",1,null,"2n"]');
  t.equal(showReply(undefined), 'no reply');
});
