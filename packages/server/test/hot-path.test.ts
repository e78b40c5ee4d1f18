// The hot path (hot-path.ts) answers GET and SET of the memory store from the request's ranges;
// everything else goes to the handlers. A request spread over several chunks always takes the
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

t.test('a SET on the hot path publishes its keyspace events and keeps its ttl', async (t) => {
  const h = await startServer(t);
  const listener = await RawClient.tcp(t, h);
  await listener.command('HELLO', '3');
  listener.write(encodeCommand(['PSUBSCRIBE', '__keyevent@memory__:*']));
  await listener.nextPushes(1);
  const from = listener.pushes.length;
  const client = await RawClient.tcp(t, h);
  t.equal(await client.command('SET', 'memory', '5000', 'brief', 'v'), 'OK');
  t.same(
    (await listener.nextPushes(2, from)).map((push) => push.map(String)),
    [
      ['pmessage', '__keyevent@memory__:*', '__keyevent@memory__:set', 'brief'],
      ['pmessage', '__keyevent@memory__:*', '__keyevent@memory__:expire', 'brief'],
    ],
  );
  t.equal(await client.command('TTL', 'memory', 'brief'), 5000);
  h.clock.now += 5_001;
  t.equal(await client.command('GET', 'memory', 'brief'), null, 'expired');
});

t.test('binary keys and values pass the hot path unchanged', async (t) => {
  const h = await startServer(t);
  const client = await RawClient.tcp(t, h);
  const key = Buffer.from([0xff, 0x00, 0x0d, 0x0a, 0xc3]);
  const value = Buffer.from([0x00, 0xfe, 0x0d, 0x0a]);
  t.equal(await client.command('SET', 'memory', '0', key, value), 'OK');
  t.same(await client.command('GET', 'memory', key), value);
  t.same(await client.command('KEYS', 'memory', '*'), [key], 'the key is its bytes');
});
