// The hot path (hot-path.ts) answers GET and SET of the memory store, and SET of the hdd store,
// from the request's ranges; everything else goes to the handlers. A request spread over several chunks always takes the
// handlers (its arguments are copies), so sending each request byte by byte is the reference:
// both ways must give the same replies, store the same values and publish the same events.
import { encodeCommand } from '@hati/test-helpers';
import t from 'tap';
import { RawClient, type Reply, ReplyError, startServer } from './common/harness.js';

/** A reply as the table above writes it: errors as `-CODE`, bulk strings as text. */
const shown = (reply: Reply): unknown =>
  reply instanceof ReplyError ? `-${reply.code}` : Buffer.isBuffer(reply) ? reply.toString('latin1') : reply;

/** The requests, each followed by a GET of the key it touched, and what they must answer. */
const cases: Array<{ name: string; request: string[]; reply: unknown; after?: unknown }> = [
  { name: 'plain SET', request: ['SET', 'memory', '0', 'k1', 'v1'], reply: 'OK', after: 'v1' },
  { name: 'storage type in any case', request: ['set', 'MeMoRy', '0', 'k2', 'v2'], reply: 'OK', after: 'v2' },
  { name: 'ttl with leading zeros', request: ['SET', 'memory', '0050000', 'k3', 'v3'], reply: 'OK', after: 'v3' },
  {
    name: 'ttl of 16 digits, the largest safe integer',
    request: ['SET', 'memory', '9007199254740991', 'k4', 'v4'],
    reply: 'OK',
    after: 'v4',
  },
  { name: 'negative ttl', request: ['SET', 'memory', '-1', 'k5', 'v5'], reply: '-TTL_INVALID', after: null },
  { name: 'ttl not a number', request: ['SET', 'memory', '1e3', 'k6', 'v6'], reply: '-TTL_INVALID', after: null },
  { name: 'empty ttl', request: ['SET', 'memory', '', 'k7', 'v7'], reply: '-TTL_INVALID', after: null },
  { name: 'empty key', request: ['SET', 'memory', '0', '', 'v'], reply: '-KEY_EMPTY' },
  { name: 'SET with NX (options go to the handler)', request: ['SET', 'memory', '0', 'k1', 'x', 'NX'], reply: null },
  { name: 'SET with XX', request: ['SET', 'memory', '0', 'k1', 'x2', 'XX'], reply: 'OK', after: 'x2' },
  { name: 'SET of an unknown storage type', request: ['SET', 'ram', '0', 'k8', 'v'], reply: '-STORAGE_TYPE_INVALID' },
  { name: 'SET of the hdd store', request: ['SET', 'hdd', '0', 'k9', 'v9'], reply: 'OK' },
  { name: 'hdd SET, type in any case', request: ['set', 'HdD', '0', 'h1', 'w1'], reply: 'OK', after: 'w1' },
  { name: 'hdd SET with a ttl', request: ['SET', 'hdd', '0050000', 'h2', 'w2'], reply: 'OK', after: 'w2' },
  { name: 'hdd SET, negative ttl', request: ['SET', 'hdd', '-1', 'h3', 'w3'], reply: '-TTL_INVALID', after: null },
  { name: 'hdd SET, ttl not a number', request: ['SET', 'hdd', '1e3', 'h4', 'w4'], reply: '-TTL_INVALID', after: null },
  { name: 'hdd SET, empty key', request: ['SET', 'hdd', '0', '', 'w'], reply: '-KEY_EMPTY' },
  { name: 'hdd SET, empty value', request: ['SET', 'hdd', '0', 'h5', ''], reply: 'OK', after: '' },
  { name: 'hdd SET overwrites', request: ['SET', 'hdd', '0', 'h1', 'w1b'], reply: 'OK', after: 'w1b' },
  { name: 'hdd SET with NX', request: ['SET', 'hdd', '0', 'h1', 'x', 'NX'], reply: null, after: 'w1b' },
  { name: 'hdd SET with XX', request: ['SET', 'hdd', '0', 'h1', 'x2', 'XX'], reply: 'OK', after: 'x2' },
  { name: 'GET of a missing key', request: ['GET', 'memory', 'nope'], reply: null },
  { name: 'GET of an empty key', request: ['GET', 'memory', ''], reply: '-KEY_EMPTY' },
  { name: 'GET of the hdd store', request: ['GET', 'hdd', 'k9'], reply: 'v9' },
  { name: 'GET with too many arguments', request: ['GET', 'memory', 'k1', 'extra'], reply: '-WRONG_ARITY' },
  { name: 'SET with too few arguments', request: ['SET', 'memory', '0', 'k1'], reply: '-WRONG_ARITY' },
];

/** Sends every case (one chunk per request, or byte by byte) and collects the replies. */
async function run(client: RawClient, bytewise: boolean): Promise<unknown[]> {
  const replies: unknown[] = [];
  for (const c of cases) {
    const request = encodeCommand(c.request);
    const from = client.replies.length;
    if (bytewise) for (let i = 0; i < request.length; i++) client.write(request.subarray(i, i + 1));
    else client.write(request);
    const [reply] = await client.next(1, from);
    replies.push(shown(reply as Reply));
    if (c.after !== undefined) {
      const type = c.request[1]?.toLowerCase() === 'hdd' ? 'hdd' : 'memory';
      replies.push(shown(await client.command('GET', type, c.request[3] as string)));
    }
  }
  // Both runs start from the same state.
  await client.command('FLUSHALL', 'memory');
  await client.command('FLUSHALL', 'hdd');
  return replies;
}

t.test('GET and SET answer the same in one chunk (hot path) and byte by byte (handlers)', async (t) => {
  const h = await startServer(t);
  const client = await RawClient.tcp(t, h);
  const whole = await run(client, false);
  const bytewise = await run(client, true);
  const expected: unknown[] = [];
  for (const c of cases) {
    expected.push(c.reply);
    if (c.after !== undefined) expected.push(c.after);
  }
  t.same(whole, expected, 'one chunk per request');
  t.same(bytewise, expected, 'byte by byte');
});

for (const type of ['memory', 'hdd']) {
  t.test(`a ${type} SET on the hot path publishes its keyspace events and keeps its ttl`, async (t) => {
    const h = await startServer(t);
    const listener = await RawClient.tcp(t, h);
    await listener.command('HELLO', '3');
    listener.write(encodeCommand(['PSUBSCRIBE', `__keyevent@${type}__:*`]));
    await listener.nextPushes(1);
    const from = listener.pushes.length;
    const client = await RawClient.tcp(t, h);
    t.equal(await client.command('SET', type, '5000', 'brief', 'v'), 'OK');
    t.same(
      (await listener.nextPushes(2, from)).map((push) => push.map(String)),
      [
        ['pmessage', `__keyevent@${type}__:*`, `__keyevent@${type}__:set`, 'brief'],
        ['pmessage', `__keyevent@${type}__:*`, `__keyevent@${type}__:expire`, 'brief'],
      ],
    );
    t.equal(await client.command('TTL', type, 'brief'), 5000);
    h.clock.now += 5_001;
    t.equal(await client.command('GET', type, 'brief'), null, 'expired');
  });
}

t.test('binary keys and values pass the hot path unchanged', async (t) => {
  const h = await startServer(t);
  const client = await RawClient.tcp(t, h);
  const key = Buffer.from([0xff, 0x00, 0x0d, 0x0a, 0xc3]);
  const value = Buffer.from([0x00, 0xfe, 0x0d, 0x0a]);
  for (const type of ['memory', 'hdd']) {
    t.equal(await client.command('SET', type, '0', key, value), 'OK');
    t.same(await client.command('GET', type, key), value, type);
    t.same(await client.command('KEYS', type, '*'), [key], `${type}: the key is its bytes`);
  }
});

t.test('pipelined hdd SETs of many keys, each read back as written', async (t) => {
  const h = await startServer(t);
  const client = await RawClient.tcp(t, h);
  const from = client.replies.length;
  const requests = Array.from({ length: 500 }, (_, i) => encodeCommand(['SET', 'hdd', '0', `key:${i}`, `value:${i}`]));
  client.write(Buffer.concat(requests));
  const replies = await client.next(500, from);
  t.equal(replies.filter((reply) => reply === 'OK').length, 500, 'every SET answered OK, in one chunk');
  t.equal(await client.command('COUNT', 'hdd'), 500);
  const wrong = [];
  for (let i = 0; i < 500; i += 7) {
    const got = await client.command('GET', 'hdd', `key:${i}`);
    if (!Buffer.isBuffer(got) || got.toString() !== `value:${i}`) wrong.push(i);
  }
  t.same(wrong, [], 'values intact after the input chunks were reused');
});
