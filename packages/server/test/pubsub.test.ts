// SUBSCRIBE / PSUBSCRIBE and keyspace events, as Redis clients see them.

import { encodeCommand } from '@hati/test-helpers';
import t from 'tap';
import { call, RawClient, type ReplyError, startServer } from './common/harness.js';

const b = (text: string) => Buffer.from(text);

/** RESP3: (P)SUBSCRIBE's confirmations are pushes, not replies; waits for one per name. */
async function subscribe3(c: RawClient, command: string, ...names: string[]): Promise<void> {
  const from = c.pushes.length;
  c.write(encodeCommand([command, ...names]));
  await c.nextPushes(names.length, from);
}

t.test('RESP2: confirmations and messages are arrays, byte for byte as Redis writes them', async (t) => {
  const h = await startServer(t);
  const sub = await RawClient.tcp(t, h);
  const raw: Buffer[] = [];
  sub.socket.on('data', (chunk: Buffer) => raw.push(chunk));
  sub.write(encodeCommand(['SUBSCRIBE', '__keyspace@memory__:greeting', '__keyevent@memory__:set']));
  await sub.next(2, 0);
  t.equal(
    Buffer.concat(raw).toString(),
    '*3\r\n$9\r\nsubscribe\r\n$28\r\n__keyspace@memory__:greeting\r\n:1\r\n' +
      '*3\r\n$9\r\nsubscribe\r\n$23\r\n__keyevent@memory__:set\r\n:2\r\n',
  );
  raw.length = 0;
  const writer = await RawClient.tcp(t, h);
  const before = sub.replies.length;
  t.equal(await writer.command('SET', 'memory', '0', 'greeting', 'hi'), 'OK');
  const messages = await sub.next(2, before);
  t.same(messages, [
    [b('message'), b('__keyspace@memory__:greeting'), b('set')],
    [b('message'), b('__keyevent@memory__:set'), b('greeting')],
  ]);
  t.equal(
    Buffer.concat(raw).toString(),
    '*3\r\n$7\r\nmessage\r\n$28\r\n__keyspace@memory__:greeting\r\n$3\r\nset\r\n' +
      '*3\r\n$7\r\nmessage\r\n$23\r\n__keyevent@memory__:set\r\n$8\r\ngreeting\r\n',
  );
});

t.test('RESP3: events are pushes, between replies, on both storage types', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  await c.command('HELLO', '3');
  await subscribe3(c, 'PSUBSCRIBE', '__keyspace@*__:user:*');
  t.same(c.pushes.at(-1), [b('psubscribe'), b('__keyspace@*__:user:*'), 1]);
  const writer = await RawClient.tcp(t, h);
  const from = c.pushes.length;
  await writer.send([
    ['SET', 'hdd', '0', 'user:1', 'ann'],
    ['SET', 'memory', '0', 'other', 'x'],
    ['DELETE', 'hdd', 'user:1'],
    ['INCR', 'memory', 'user:n'],
    ['EXPIRE', 'memory', 'user:n', '1000'],
  ]);
  // hdd events come once the disk has answered: the order between storage types may vary.
  const pushes = await c.nextPushes(4, from);
  t.same(
    pushes.map((push) => push.map(String)).sort(),
    [
      ['pmessage', '__keyspace@*__:user:*', '__keyspace@hdd__:user:1', 'set'],
      ['pmessage', '__keyspace@*__:user:*', '__keyspace@hdd__:user:1', 'del'],
      ['pmessage', '__keyspace@*__:user:*', '__keyspace@memory__:user:n', 'incrby'],
      ['pmessage', '__keyspace@*__:user:*', '__keyspace@memory__:user:n', 'expire'],
    ].sort(),
  );
  // Replies still match their commands while pushes arrive.
  t.same(
    await c.send([
      ['GET', 'hdd', 'user:1'],
      ['TTL', 'memory', 'user:n'],
    ]),
    [null, 1000],
  );
});

t.test('expired keys are published when they expire, by the sweep or on access', async (t) => {
  const h = await startServer(t);
  const sub = await RawClient.tcp(t, h);
  await sub.command('HELLO', '3');
  await subscribe3(sub, 'SUBSCRIBE', '__keyevent@memory__:expired', '__keyevent@hdd__:expired');
  const writer = await RawClient.tcp(t, h);
  await writer.send([
    ['SET', 'memory', '100', 'session:1', 'x'],
    ['SET', 'hdd', '100', 'session:2', 'y'],
  ]);
  const from = sub.pushes.length;
  h.clock.now += 1_000;
  // An access removes the memory key at once; the hdd store's sweep finds its key.
  t.equal(await writer.command('GET', 'memory', 'session:1'), null);
  t.equal(await writer.command('COUNT', 'hdd'), 0);
  const pushes = (await sub.nextPushes(2, from)).map((push) => push.map(String));
  t.same(
    pushes.sort(),
    [
      ['message', '__keyevent@hdd__:expired', 'session:2'],
      ['message', '__keyevent@memory__:expired', 'session:1'],
    ].sort(),
  );
});

t.test('FLUSHALL, MSET, SET NX, and JSON-RPC writes are published too', async (t) => {
  const h = await startServer(t);
  const sub = await RawClient.tcp(t, h);
  await sub.command('HELLO', '3');
  await subscribe3(sub, 'PSUBSCRIBE', '__keyevent@memory__:*');
  const from = sub.pushes.length;
  const writer = await RawClient.tcp(t, h);
  await writer.send([
    ['MSET', 'memory', 'a', '1', 'b', '2'],
    ['SET', 'memory', '0', 'a', 'x', 'NX'],
    ['SET', 'memory', '0', 'c', 'x', 'NX'],
  ]);
  await call(h, 'Storage.Delete', { type: 'memory', key: 'c' });
  await writer.command('FLUSHALL', 'memory');
  const pushes = (await sub.nextPushes(5, from)).map((push) => push.slice(2).map(String));
  t.same(pushes, [
    ['__keyevent@memory__:set', 'a'],
    ['__keyevent@memory__:set', 'b'],
    ['__keyevent@memory__:set', 'c'],
    ['__keyevent@memory__:del', 'c'],
    ['__keyevent@memory__:flushall', 'memory'],
  ]);
});

t.test('subscriptions end with their connection; UNSUBSCRIBE without channels leaves all', async (t) => {
  const h = await startServer(t);
  const a = await RawClient.tcp(t, h);
  a.write(encodeCommand(['SUBSCRIBE', 'x', 'y']));
  await a.next(2, 0);
  await a.command('PSUBSCRIBE', 'z*');
  let stats = JSON.parse(String(await call(h, 'Server.Stats').then((r) => JSON.stringify(r.result))));
  t.same(stats.pubsub, { channels: 2, patterns: 1, delivered: 0 });
  const replies = await a.send([['PUNSUBSCRIBE']]);
  t.same(replies[0], [b('punsubscribe'), b('z*'), 2]);
  a.close();
  await a.closed();
  await new Promise((resolve) => setTimeout(resolve, 50));
  stats = (await call(h, 'Server.Stats')).result as { pubsub: unknown };
  t.same(stats.pubsub, { channels: 0, patterns: 0, delivered: 0 }, 'the close hook dropped them');
  const c = await RawClient.tcp(t, h);
  t.same(await c.command('UNSUBSCRIBE'), [b('unsubscribe'), null, 0], 'none to leave: one frame, as Redis');
  t.equal(((await c.command('SUBSCRIBE')) as ReplyError).code, 'WRONG_ARITY');
});

t.test('a subscriber that never reads is disconnected, and writers are not held up', async (t) => {
  const h = await startServer(t, { maxOutputBuffer: 256 * 1024 });
  const slow = await RawClient.tcp(t, h);
  await slow.command('SUBSCRIBE', '__keyevent@memory__:set');
  slow.socket.pause();
  const writer = await RawClient.tcp(t, h);
  const value = 'v'.repeat(1024);
  for (let round = 0; round < 40 && !slow.socket.destroyed && slow.closedBy === undefined; round++) {
    await writer.send(Array.from({ length: 500 }, (_, i) => ['SET', 'memory', '0', `key-${round}-${i}-${value}`, 'x']));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.match(h.log.join('\n'), /disconnecting a client that left \d+ bytes of replies unread/);
  t.equal(await writer.command('COUNT', 'memory'), (await writer.command('DBSIZE', 'memory')) as number);
});

t.test('events as Redis names them: a SET with a ttl adds expire; EXPIRE 0 is persist', async (t) => {
  const h = await startServer(t);
  const sub = await RawClient.tcp(t, h);
  await sub.command('HELLO', '3');
  await subscribe3(sub, 'SUBSCRIBE', '__keyspace@memory__:k');
  const from = sub.pushes.length;
  const writer = await RawClient.tcp(t, h);
  await writer.send([
    ['SET', 'memory', '1000', 'k', 'v'],
    ['EXPIRE', 'memory', 'k', '0'],
    ['EXPIRE', 'memory', 'k', '50'],
  ]);
  const events = (await sub.nextPushes(4, from)).map((push) => String(push[2]));
  t.same(events, ['set', 'expire', 'persist', 'expire']);
});
