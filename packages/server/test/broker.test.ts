// The broker over the wire: every command over TCP (RESP2, RESP3, inline) and JSON-RPC, on memory
// and hdd queues; CONSUME's pushes; what a closing connection gives back; a restart.
import { join } from 'node:path';
import { encodeCommand } from '@hati/test-helpers';
import { Redis } from 'ioredis';
import t from 'tap';
import { HatiServer, Logger } from '../src/index.js';
import { call, RawClient, ReplyError, startServer } from './common/harness.js';

/** A delivery as FETCH replies it, with the message as text. */
function shown(reply: unknown): unknown {
  if (!Array.isArray(reply)) return reply;
  return reply.map((item) => (Buffer.isBuffer(item) ? item.toString() : shown(item)));
}

function errorCode(reply: unknown): string | undefined {
  return reply instanceof ReplyError ? reply.code : undefined;
}

for (const type of ['memory', 'hdd'] as const) {
  t.test(`${type}: every command over TCP`, async (t) => {
    const h = await startServer(t);
    const c = await RawClient.tcp(t, h);
    t.equal(await c.command('CREATEROUTER', 'orders', 'topic'), 'OK');
    t.equal(await c.command('CREATEROUTER', 'orders', 'TOPIC'), 'OK', 'same again: OK');
    t.equal(errorCode(await c.command('CREATEROUTER', 'orders', 'direct')), 'ROUTER_EXISTS');
    t.equal(errorCode(await c.command('CREATEROUTER', 'x', 'headers')), 'ROUTER_KIND_INVALID');
    t.equal(errorCode(await c.command('CREATEROUTER', 'bad name', 'direct')), 'NAME_INVALID');
    t.equal(await c.command('CREATEQUEUE', 'jobs', type, 'ACKTIMEOUT', '5000', 'MAXDELIVERIES', '3'), 'OK');
    t.equal(await c.command('CREATEQUEUE', 'jobs', type, 'ACKTIMEOUT', '5000', 'MAXDELIVERIES', '3'), 'OK');
    t.equal(errorCode(await c.command('CREATEQUEUE', 'jobs', type)), 'QUEUE_EXISTS', 'other settings');
    t.equal(errorCode(await c.command('CREATEQUEUE', 'q2', 'ram')), 'QUEUE_TYPE_INVALID');
    t.equal(errorCode(await c.command('CREATEQUEUE', 'q2', type, 'ACKTIMEOUT', 'soon')), 'ARGUMENT_INVALID');
    t.equal(errorCode(await c.command('CREATEQUEUE', 'q2', type, 'COLOR', 'red')), 'SYNTAX');
    t.equal(errorCode(await c.command('CREATEQUEUE', 'q2', type, 'DEADLETTER', 'nope')), 'ROUTER_NOT_FOUND');
    t.equal(await c.command('BIND', 'jobs', 'orders', 'eu.#'), 'OK');
    t.equal(errorCode(await c.command('BIND', 'nope', 'orders', 'x')), 'QUEUE_NOT_FOUND');
    t.equal(errorCode(await c.command('BIND', 'jobs', 'nope', 'x')), 'ROUTER_NOT_FOUND');

    t.equal(await c.command('PUBLISH', 'orders', 'eu.new', 'first'), 1);
    t.equal(await c.command('PUBLISH', 'orders', 'us.new', 'nobody'), 0, 'no binding matched');
    t.equal(await c.command('PUBLISH', 'orders', 'eu.new', 'TTL', '60000', 'ID', 'o-2', 'second'), 1);
    t.equal(
      await c.command('PUBLISH', 'orders', 'eu.new', 'ID', 'o-2', 'second again'),
      1,
      'a duplicate id is reached',
    );
    t.equal(errorCode(await c.command('PUBLISH', 'nope', 'k', 'm')), 'ROUTER_NOT_FOUND');
    t.equal(errorCode(await c.command('PUBLISH', 'orders', 'k', 'DELAY', 'm')), 'SYNTAX', 'DELAY without a value');

    t.same(shown(await c.command('FETCH', 'jobs', '10')), [
      ['1', 1, 'eu.new', 'first'],
      ['2', 1, 'eu.new', 'second'],
    ]);
    t.same(await c.command('FETCH', 'jobs'), [], 'nothing ready: an empty array');
    t.equal(errorCode(await c.command('FETCH', 'jobs', '0')), 'ARGUMENT_INVALID');
    t.equal(errorCode(await c.command('FETCH', 'nope')), 'QUEUE_NOT_FOUND');
    t.equal(await c.command('TOUCH', 'jobs', '1'), 1);
    t.equal(await c.command('TOUCH', 'jobs', '99'), 0);
    t.equal(await c.command('NACK', 'jobs', '2'), 1, 'requeued');
    t.equal(await c.command('NACK', 'jobs', '2'), 0, 'no longer leased');
    t.same(shown(await c.command('FETCH', 'jobs', '5')), [['2', 2, 'eu.new', 'second']], 'again, its count raised');
    t.equal(await c.command('ACK', 'jobs', '1', '2', '77', 'x'), 2, 'unknown and garbage ids count 0');
    t.equal(await c.command('ACK', 'jobs', '1'), 0, 'acknowledged once only');

    t.equal(await c.command('PUBLISH', 'orders', 'eu.x', 'to drop'), 1);
    const [dropped] = (await c.command('FETCH', 'jobs')) as Buffer[][];
    t.equal(await c.command('NACK', 'jobs', String((dropped as Buffer[])[0]), 'DROP'), 1);
    t.same(shown(await c.command('DEADLETTERS', 'jobs')), [['1', 1, 'eu.x', 'to drop', ['rejected', 'jobs', 1]]]);
    t.equal(await c.command('REPLAYDEAD', 'jobs'), 1);
    t.same(shown(await c.command('DEADLETTERS', 'jobs')), []);
    t.equal(await c.command('FLUSH', 'jobs'), 1, 'the replayed message was waiting');
    t.equal(await c.command('PURGEDEAD', 'jobs'), 0);

    const queue = JSON.parse(String(await c.command('GETQUEUE', 'jobs')));
    t.match(queue, {
      name: 'jobs',
      type,
      ackTimeoutMs: 5000,
      maxDeliveries: 3,
      ready: 0,
      leased: 0,
      dead: 0,
      published: 4,
      acked: 2,
      bindings: [{ router: 'orders', bindingKey: 'eu.#' }],
    });
    t.same(JSON.parse(String(await c.command('GETROUTER', 'orders'))), {
      name: 'orders',
      kind: 'topic',
      bindings: [{ queue: 'jobs', bindingKey: 'eu.#' }],
    });
    t.same(shown(await c.command('LISTQUEUE')), ['jobs']);
    t.same(shown(await c.command('LISTROUTER', 'ord*')), ['orders']);
    t.same(shown(await c.command('LISTROUTER', 'x*')), []);
    t.equal(await c.command('UNBIND', 'jobs', 'orders', 'eu.#'), 1);
    t.equal(await c.command('UNBIND', 'jobs', 'orders', 'eu.#'), 0);
    t.equal(await c.command('DELETEQUEUE', 'jobs'), 1);
    t.equal(await c.command('DELETEQUEUE', 'jobs'), 0);
    t.equal(await c.command('DELETEROUTER', 'orders'), 1);
    t.equal(await c.command('DELETEROUTER', 'orders'), 0);
  });

  t.test(`${type}: every Broker.* method over JSON-RPC`, async (t) => {
    const h = await startServer(t);
    t.same(await call(h, 'Broker.CreateRouter', { name: 'events', kind: 'fanout' }), { result: true });
    t.same(await call(h, 'Broker.CreateQueue', { name: 'q', type, maxDeliveries: 2, ackTimeoutMs: 1000 }), {
      result: true,
    });
    t.match(await call(h, 'Broker.CreateQueue', { name: 'q', type }), { error: { data: { code: 'QUEUE_EXISTS' } } });
    t.same(await call(h, 'Broker.Bind', { queue: 'q', router: 'events', bindingKey: '' }), { result: true });
    t.same(await call(h, 'Broker.Publish', { router: 'events', routingKey: 'a', message: 'hello' }), { result: 1 });
    t.same(
      await call(h, 'Broker.Publish', { router: 'events', routingKey: 'b', message: 'AAH/', encoding: 'base64' }),
      { result: 1 },
    );
    t.same(await call(h, 'Broker.Fetch', { queue: 'q', count: 1 }), {
      result: [{ id: '1', deliveries: 1, routingKey: 'a', message: 'hello' }],
    });
    t.same(await call(h, 'Broker.Fetch', { queue: 'q', encoding: 'base64' }), {
      result: [{ id: '2', deliveries: 1, routingKey: 'b', message: 'AAH/' }],
    });
    // Leases taken over JSON-RPC outlive the HTTP connection: a later call settles them.
    t.same(await call(h, 'Broker.Touch', { queue: 'q', id: '1' }), { result: true });
    t.same(await call(h, 'Broker.Ack', { queue: 'q', ids: ['1'] }), { result: 1 });
    t.same(await call(h, 'Broker.Nack', { queue: 'q', id: '2', mode: 'DROP' }), { result: 1 });
    t.match(await call(h, 'Broker.DeadLetters', { queue: 'q' }), {
      result: [{ id: '1', deliveries: 1, routingKey: 'b', death: { reason: 'rejected', queue: 'q', deliveries: 1 } }],
    });
    t.same(await call(h, 'Broker.ReplayDead', { queue: 'q' }), { result: 1 });
    t.same(await call(h, 'Broker.PurgeDead', { queue: 'q' }), { result: 0 });
    t.match(await call(h, 'Broker.GetQueue', { name: 'q' }), { result: { name: 'q', type, ready: 1, acked: 1 } });
    t.same(await call(h, 'Broker.GetRouter', { name: 'events' }), {
      result: { name: 'events', kind: 'fanout', bindings: [{ queue: 'q', bindingKey: '' }] },
    });
    t.same(await call(h, 'Broker.ListQueue', {}), { result: ['q'] });
    t.same(await call(h, 'Broker.ListRouter', { pattern: 'e*' }), { result: ['events'] });
    t.same(await call(h, 'Broker.Flush', { queue: 'q' }), { result: 1 });
    t.same(await call(h, 'Broker.Unbind', { queue: 'q', router: 'events', bindingKey: '' }), { result: true });
    t.same(await call(h, 'Broker.DeleteQueue', { name: 'q' }), { result: true });
    t.same(await call(h, 'Broker.DeleteRouter', { name: 'events' }), { result: true });
    t.match(await call(h, 'Broker.Fetch', { queue: 'q' }), { error: { data: { code: 'QUEUE_NOT_FOUND' } } });
    t.match(await call(h, 'Broker.Publish', { router: 'r', routingKey: 'k', message: 'm', delay: 5 }), {
      error: { data: { code: 'PARAMS_INVALID' } },
    });
  });

  t.test(`${type}: a closing connection gives its leased messages back, counted`, async (t) => {
    const h = await startServer(t);
    const admin = await RawClient.tcp(t, h);
    await admin.send([
      ['CREATEROUTER', 'r', 'direct'],
      ['CREATEQUEUE', 'q', type],
      ['BIND', 'q', 'r', 'k'],
      ['PUBLISH', 'r', 'k', 'm1'],
      ['PUBLISH', 'r', 'k', 'm2'],
    ]);
    const worker = await RawClient.tcp(t, h);
    t.same(shown(await worker.command('FETCH', 'q', '1')), [['1', 1, 'k', 'm1']]);
    worker.close();
    await worker.closed();
    // The close is handled on the server's next turn.
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.same(
      shown(await admin.command('FETCH', 'q', '2')),
      [
        ['1', 2, 'k', 'm1'],
        ['2', 1, 'k', 'm2'],
      ],
      'the returned message comes first, delivered twice',
    );
  });
}

t.test('CONSUME pushes deliveries: RESP3 push frames, RESP2 arrays; prefetch holds; CANCEL stops', async (t) => {
  const h = await startServer(t);
  const admin = await RawClient.tcp(t, h);
  await admin.send([
    ['CREATEROUTER', 'r', 'fanout'],
    ['CREATEQUEUE', 'q', 'memory'],
    ['BIND', 'q', 'r', ''],
  ]);
  for (let i = 1; i <= 5; i++) await admin.command('PUBLISH', 'r', 'k', `m${i}`);

  const c3 = await RawClient.tcp(t, h);
  await c3.command('HELLO', '3');
  t.equal(String(await c3.command('CONSUME', 'q', '2')), 'ctag-1');
  const first = await c3.nextPushes(2, 0);
  t.same(shown(first), [
    ['delivery', 'ctag-1', 'q', ['1', 1, 'k', 'm1']],
    ['delivery', 'ctag-1', 'q', ['2', 1, 'k', 'm2']],
  ]);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(c3.pushes.length, 2, 'prefetch 2: no third delivery while two are unacknowledged');
  t.equal(await c3.command('ACK', 'q', '1'), 1);
  t.same(shown(await c3.nextPushes(1, 2)), [['delivery', 'ctag-1', 'q', ['3', 1, 'k', 'm3']]]);

  // A RESP2 consumer of the same queue shares it, and its deliveries are arrays among its replies.
  const c2 = await RawClient.tcp(t, h);
  c2.write(encodeCommand(['CONSUME', 'q', '1']));
  const [tag, pushed] = await c2.next(2, 0);
  t.equal(String(tag), 'ctag-1', 'tags are per connection');
  t.same(shown(pushed), ['delivery', 'ctag-1', 'q', ['4', 1, 'k', 'm4']]);
  t.equal(await c2.command('CANCEL', 'ctag-1'), 1);
  t.equal(await c2.command('CANCEL', 'ctag-1'), 0);
  t.equal(await c2.command('ACK', 'q', '4'), 1, 'a cancelled consumer still settles what it holds');
  t.equal(await c3.command('ACK', 'q', '2', '3'), 2);
  t.same(shown(await c3.nextPushes(1, 3)), [['delivery', 'ctag-1', 'q', ['5', 1, 'k', 'm5']]]);
  const stats = JSON.parse(String(await admin.command('STATS')));
  t.match(stats.broker, { routers: 1, queues: 1, published: 5, delivered: 5, acked: 4 });
  t.same(stats.broker.perQueue.q, {
    ready: 0,
    leased: 1,
    delayed: 0,
    dead: 0,
    consumers: 1,
    published: 5,
    delivered: 5,
    redelivered: 0,
    acked: 4,
    deadLettered: 0,
  });
  t.equal(errorCode(await c3.command('CONSUME', 'nope')), 'QUEUE_NOT_FOUND');
  // Deleting the queue ends its consumers, and tells them.
  t.equal(await admin.command('DELETEQUEUE', 'q'), 1);
  t.same(shown(await c3.nextPushes(1, 4)), [['cancelled', 'ctag-1', 'q']]);
});

t.test('FETCH with waitMs waits for a message, and answers an empty array when none came', async (t) => {
  const h = await startServer(t);
  const admin = await RawClient.tcp(t, h);
  await admin.send([
    ['CREATEROUTER', 'r', 'direct'],
    ['CREATEQUEUE', 'q', 'hdd'],
    ['BIND', 'q', 'r', 'k'],
  ]);
  const waiting = await RawClient.tcp(t, h);
  waiting.write(encodeCommand(['FETCH', 'q', '5', '5000']));
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.equal(await admin.command('PUBLISH', 'r', 'k', 'late'), 1);
  t.same(shown((await waiting.next(1, 0))[0]), [['1', 1, 'k', 'late']]);
  t.same(await waiting.command('FETCH', 'q', '1', '20'), [], 'nothing within 20 ms');
});

t.test('inline PUBLISH: options are words, the message is the rest of the line', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  await c.send([
    ['CREATEROUTER', 'r', 'direct'],
    ['CREATEQUEUE', 'q', 'memory'],
    ['BIND', 'q', 'r', 'k'],
  ]);
  t.equal(await c.inline('PUBLISH r k TTL 60000 hello  inline world'), 1);
  t.equal(await c.inline('PUBLISH r k DELAY 5'), 1, 'nothing after the value: the words are the message');
  t.same(shown(await c.command('FETCH', 'q', '5')), [
    ['1', 1, 'k', 'hello  inline world'],
    ['2', 1, 'k', 'DELAY 5'],
  ]);
});

t.test(
  'lease expiry: a message not acknowledged within ACKTIMEOUT is delivered again, then dead-lettered',
  async (t) => {
    const h = await startServer(t);
    const c = await RawClient.tcp(t, h);
    await c.send([
      ['CREATEROUTER', 'r', 'direct'],
      ['CREATEROUTER', 'dlx', 'fanout'],
      ['CREATEQUEUE', 'dead', 'memory'],
      ['BIND', 'dead', 'dlx', ''],
      ['CREATEQUEUE', 'q', 'memory', 'ACKTIMEOUT', '20', 'MAXDELIVERIES', '2', 'DEADLETTER', 'dlx'],
      ['BIND', 'q', 'r', 'k'],
      ['PUBLISH', 'r', 'k', 'slow'],
    ]);
    t.same(shown(await c.command('FETCH', 'q')), [['1', 1, 'k', 'slow']]);
    h.clock.now += 21;
    await new Promise((resolve) => setTimeout(resolve, 60));
    t.same(shown(await c.command('FETCH', 'q')), [['1', 2, 'k', 'slow']], 'the lease ran out');
    h.clock.now += 21;
    await new Promise((resolve) => setTimeout(resolve, 60));
    t.same(await c.command('FETCH', 'q'), [], 'past MAXDELIVERIES it is not requeued');
    t.same(shown(await c.command('FETCH', 'dead')), [['1', 1, 'k', 'slow', ['delivery-limit', 'q', 2]]]);
  },
);

t.test(
  'a restart keeps definitions and hdd messages with their delivery counts; memory messages are gone',
  async (t) => {
    const h = await startServer(t);
    const c = await RawClient.tcp(t, h);
    await c.send([
      ['CREATEROUTER', 'r', 'fanout'],
      ['CREATEQUEUE', 'disk', 'hdd'],
      ['CREATEQUEUE', 'mem', 'memory'],
      ['BIND', 'disk', 'r', ''],
      ['BIND', 'mem', 'r', ''],
      ['PUBLISH', 'r', 'k', 'one'],
      ['PUBLISH', 'r', 'k', 'two'],
    ]);
    t.same(shown(await c.command('FETCH', 'disk')), [['1', 1, 'k', 'one']]);
    t.equal(await c.command('ACK', 'disk', '1'), 1);
    t.same(shown(await c.command('FETCH', 'disk')), [['2', 1, 'k', 'two']]);
    await h.server.close();
    const again = await HatiServer.start({
      tcp: { host: '127.0.0.1', port: 0 },
      dataDir: join(h.dir, 'data'),
      durability: 'no',
      logger: new Logger('warn', () => {}),
    });
    t.teardown(() => again.close());
    const c2 = await RawClient.tcp(t, { server: again });
    t.same(shown(await c2.command('LISTQUEUE')), ['disk', 'mem']);
    t.same(shown(await c2.command('FETCH', 'disk', '10')), [['2', 2, 'k', 'two']], 'unacknowledged, counted');
    t.same(await c2.command('FETCH', 'mem', '10'), [], 'memory messages do not survive');
    t.equal(await c2.command('PUBLISH', 'r', 'k', 'three'), 2, 'bindings survive');
    const [fresh] = (await c2.command('FETCH', 'mem')) as Buffer[][];
    t.equal(String((fresh as Buffer[])[3]), 'three');
    t.not(String((fresh as Buffer[])[0]), '1', 'a memory queue does not hand out its old ids again');
    t.equal(await c2.command('ACK', 'mem', '1'), 0, 'so an ACK from before the restart settles nothing');
  },
);

t.test('ioredis runs broker commands with call()', async (t) => {
  const h = await startServer(t);
  const { host, port } = h.server.addresses.tcp as { host: string; port: number };
  const redis = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => redis.disconnect());
  await redis.connect();
  t.equal(await redis.call('CREATEROUTER', 'r', 'direct'), 'OK');
  t.equal(await redis.call('CREATEQUEUE', 'q', 'hdd'), 'OK');
  t.equal(await redis.call('BIND', 'q', 'r', 'k'), 'OK');
  t.equal(await redis.call('PUBLISH', 'r', 'k', Buffer.from('bytes \x00\xff', 'latin1')), 1);
  const fetched = (await redis.callBuffer('FETCH', 'q', '1')) as Buffer[][];
  t.same((fetched[0] as Buffer[])[3], Buffer.from('bytes \x00\xff', 'latin1'));
  t.equal(await redis.call('ACK', 'q', '1'), 1);
  await t.rejects(redis.call('FETCH', 'nope'), /QUEUE_NOT_FOUND/);
});
