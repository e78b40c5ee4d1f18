import t from 'tap';
import { encodeCommand, encodeReply, ReplyError, ReplyWriter } from '../src/index.js';

const text = (buf: Buffer) => buf.toString('latin1');

t.test('each method writes its RESP2 frame', async (t) => {
  const cases: Array<[(w: ReplyWriter) => void, string]> = [
    [(w) => w.ok(), '+OK\r\n'],
    [(w) => w.simple('PONG'), '+PONG\r\n'],
    [(w) => w.simple('a\r\nb\nc'), '+a  b c\r\n'],
    [(w) => w.simple(''), '+\r\n'],
    [(w) => w.simple('é'), '+\xc3\xa9\r\n'],
    [(w) => w.error('WRONG_ARITY', "'GET' takes 2 arguments"), "-WRONG_ARITY 'GET' takes 2 arguments\r\n"],
    [(w) => w.error('ERR', 'two\r\nlines'), '-ERR two  lines\r\n'],
    [(w) => w.error('ERR', ''), '-ERR\r\n'],
    [(w) => w.integer(0), ':0\r\n'],
    [(w) => w.integer(1), ':1\r\n'],
    [(w) => w.integer(-12), ':-12\r\n'],
    [(w) => w.integer(1234567890), ':1234567890\r\n'],
    [(w) => w.integer(Number.MAX_SAFE_INTEGER), ':9007199254740991\r\n'],
    [(w) => w.integer(-Number.MAX_SAFE_INTEGER), ':-9007199254740991\r\n'],
    [(w) => w.bulk('hello'), '$5\r\nhello\r\n'],
    [(w) => w.bulk(''), '$0\r\n\r\n'],
    [(w) => w.bulk('é€😀'), '$9\r\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\r\n'],
    [(w) => w.bulk('x'.repeat(100)), `$100\r\n${'x'.repeat(100)}\r\n`],
    [(w) => w.bulk(`${'x'.repeat(100)}é`), `$102\r\n${'x'.repeat(100)}\xc3\xa9\r\n`],
    [(w) => w.bulk(Buffer.from([0, 13, 10, 255])), '$4\r\n\x00\r\n\xff\r\n'],
    [(w) => w.bulk(new Uint8Array([65, 66])), '$2\r\nAB\r\n'],
    [(w) => w.nil(), '$-1\r\n'],
    [(w) => w.arrayHeader(3), '*3\r\n'],
    [(w) => w.arrayHeader(0), '*0\r\n'],
    [(w) => w.arrayHeader(-1), '*-1\r\n'],
    [(w) => w.raw(Buffer.from(':7\r\n')), ':7\r\n'],
  ];
  for (const [write, expected] of cases) {
    const writer = new ReplyWriter();
    write(writer);
    t.equal(writer.length, expected.length);
    t.equal(text(writer.take()), expected, JSON.stringify(expected));
    t.equal(writer.length, 0);
  }
});

t.test('integers must be safe integers', async (t) => {
  const writer = new ReplyWriter();
  t.throws(() => writer.integer(1.5), RangeError);
  t.throws(() => writer.integer(Number.NaN), RangeError);
  t.throws(() => writer.integer(2 ** 60), RangeError);
  t.throws(() => writer.arrayHeader(-2), RangeError);
  t.equal(writer.length, 0, 'nothing written');
});

t.test('writer output equals encodeReply for the same replies', async (t) => {
  const replies = [
    'OK',
    42,
    -7,
    Buffer.from('value'),
    null,
    new ReplyError('KEY_NOT_EXIST', 'no such key'),
    [1, [Buffer.from('x'), null], 'y', []],
  ];
  const writer = new ReplyWriter();
  writer.simple('OK');
  writer.integer(42);
  writer.integer(-7);
  writer.bulk('value');
  writer.nil();
  writer.error('KEY_NOT_EXIST', 'no such key');
  writer.arrayHeader(4);
  writer.integer(1);
  writer.arrayHeader(2);
  writer.bulk(Buffer.from('x'));
  writer.nil();
  writer.simple('y');
  writer.arrayHeader(0);
  t.equal(text(writer.take()), text(Buffer.concat(replies.map(encodeReply))));
  for (const reply of replies) writer.reply(reply);
  t.equal(text(writer.take()), text(Buffer.concat(replies.map(encodeReply))));
});

t.test('take() hands over ownership', async (t) => {
  const writer = new ReplyWriter();
  writer.bulk('first');
  const first = writer.take();
  const firstCopy = Buffer.from(first);
  writer.ok();
  writer.integer(5);
  const second = writer.take();
  t.equal(text(second), '+OK\r\n:5\r\n');
  // Enough to outgrow the buffer several times over.
  for (let i = 0; i < 10_000; i++) writer.bulk(`value number ${i}`);
  const third = writer.take();
  t.ok(first.equals(firstCopy), 'writing after take does not change the taken buffer');
  t.equal(text(second), '+OK\r\n:5\r\n');
  t.equal(
    third.length,
    Buffer.concat(Array.from({ length: 10_000 }, (_, i) => encodeReply(Buffer.from(`value number ${i}`)))).length,
  );
  t.equal(writer.take().length, 0, 'nothing written since');
  // Partly written, then grown: the untaken part moves, the taken part stays.
  writer.bulk('a');
  const kept = writer.take();
  writer.bulk('b');
  writer.bulk(Buffer.alloc(100_000, 'z'));
  const grown = writer.take();
  t.equal(text(kept), '$1\r\na\r\n');
  t.equal(text(grown.subarray(0, 7)), '$1\r\nb\r\n');
  t.equal(grown.length, 7 + encodeReply(Buffer.alloc(100_000, 'z')).length);
});

t.test('a large bulk is written whole', async (t) => {
  const writer = new ReplyWriter();
  const value = Buffer.alloc(5 * 1024 * 1024, 'q');
  writer.simple('before');
  writer.bulk(value);
  const out = writer.take();
  t.equal(text(out.subarray(0, 9)), '+before\r\n');
  t.equal(text(out.subarray(9, 19)), '$5242880\r\n');
  t.ok(out.subarray(19, 19 + value.length).equals(value));
  t.equal(text(out.subarray(out.length - 2)), '\r\n');
  writer.ok();
  t.equal(text(writer.take()), '+OK\r\n', 'after a large batch a fresh buffer is used');
});

t.test('encodeCommand writes a RESP array of bulk strings', async (t) => {
  t.equal(text(encodeCommand(['GET', 'memory', 'greeting'])), '*3\r\n$3\r\nGET\r\n$6\r\nmemory\r\n$8\r\ngreeting\r\n');
  t.equal(
    text(encodeCommand(['SET', 'é', Buffer.from([0, 13])])),
    '*3\r\n$3\r\nSET\r\n$2\r\n\xc3\xa9\r\n$2\r\n\x00\r\r\n',
  );
  t.equal(text(encodeCommand([])), '*0\r\n');
  t.equal(text(encodeCommand(['', 'x'.repeat(12)])), `*2\r\n$0\r\n\r\n$12\r\n${'x'.repeat(12)}\r\n`);
  const encoded = encodeCommand(['PING']);
  t.equal(encoded.buffer.byteLength >= encoded.length, true);
});

t.test('encodeReply', async (t) => {
  t.equal(text(encodeReply('PONG')), '+PONG\r\n');
  t.equal(text(encodeReply(3)), ':3\r\n');
  t.equal(text(encodeReply(Buffer.from('v'))), '$1\r\nv\r\n');
  t.equal(text(encodeReply(null)), '$-1\r\n');
  t.equal(text(encodeReply(new ReplyError('TTL_INVALID', 'bad ttl'))), '-TTL_INVALID bad ttl\r\n');
  t.equal(text(encodeReply([1, ['a'], []])), '*3\r\n:1\r\n*1\r\n+a\r\n*0\r\n');
});

t.test('RESP2 is the default; switching to RESP3 and back leaves RESP2 frames as they were', async (t) => {
  const writer = new ReplyWriter();
  t.equal(writer.resp3, false);
  const write = (w: ReplyWriter) => {
    w.ok();
    w.simple('PONG');
    w.error('ERR', 'x');
    w.integer(-12);
    w.bulk('hello');
    w.bulk(Buffer.from([0, 255]));
    w.nil();
    w.arrayHeader(2);
    w.arrayHeader(-1);
    w.reply([1, 'a', null, Buffer.from('b'), new ReplyError('E', 'm'), []]);
  };
  const expected =
    '+OK\r\n+PONG\r\n-ERR x\r\n:-12\r\n$5\r\nhello\r\n$2\r\n\x00\xff\r\n$-1\r\n*2\r\n*-1\r\n' +
    '*6\r\n:1\r\n+a\r\n$-1\r\n$1\r\nb\r\n-E m\r\n*0\r\n';
  write(writer);
  t.equal(text(writer.take()), expected);
  writer.resp3 = true;
  write(writer);
  t.not(text(writer.take()), expected, 'RESP3 differs');
  writer.resp3 = false;
  write(writer);
  t.equal(text(writer.take()), expected, 'RESP2 again');
});

t.test('the RESP3 types in RESP2, as Redis writes them there', async (t) => {
  const cases: Array<[(w: ReplyWriter) => void, string]> = [
    [(w) => w.nullArray(), '*-1\r\n'],
    [(w) => w.mapHeader(2), '*4\r\n'],
    [(w) => w.setHeader(2), '*2\r\n'],
    [(w) => w.pushHeader(3), '*3\r\n'],
    [(w) => w.boolean(true), ':1\r\n'],
    [(w) => w.boolean(false), ':0\r\n'],
    [(w) => w.double(3.25), '$4\r\n3.25\r\n'],
    [(w) => w.double(Number.NEGATIVE_INFINITY), '$4\r\n-inf\r\n'],
    [(w) => w.bigNumber(2n ** 64n), '$20\r\n18446744073709551616\r\n'],
    [(w) => w.verbatim('report'), '$6\r\nreport\r\n'],
    [(w) => w.bulkError('ERR', 'a\nb'), '-ERR a b\r\n'],
    [(w) => w.integer(2n ** 63n - 1n), ':9223372036854775807\r\n'],
  ];
  for (const [write, expected] of cases) {
    const writer = new ReplyWriter();
    write(writer);
    t.equal(text(writer.take()), expected, JSON.stringify(expected));
  }
});

t.test('bulkRange writes a range of a buffer as a bulk string, as bulk() writes its view', async (t) => {
  const source = Buffer.from('xxhello\r\nworldyy', 'latin1');
  const ranged = new ReplyWriter();
  const viewed = new ReplyWriter();
  for (const [start, end] of [
    [2, 14],
    [0, 0],
    [5, 6],
    [0, source.length],
  ] as const) {
    ranged.bulkRange(source, start, end);
    viewed.bulk(source.subarray(start, end));
  }
  const bytes = ranged.take();
  t.same(bytes, viewed.take());
  t.equal(bytes.toString('latin1').slice(0, 19), '$12\r\nhello\r\nworld\r\n');
  // A range larger than the writer's first buffer.
  const large = Buffer.alloc(100_000, 0x61);
  ranged.bulkRange(large, 10, 90_010);
  const out = ranged.take();
  t.equal(out.length, '$90000\r\n'.length + 90_000 + 2);
  t.equal(out.toString('latin1', 0, 8), '$90000\r\n');
});
