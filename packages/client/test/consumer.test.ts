// The consumer: CONSUME's pushes as an async iterator against a real server; prefetch, ack,
// nack and touch; cancel (and leaving a loop) giving back what was not read; the client
// consuming again after its connection drops or the server restarts, with redelivery.
import { join } from 'node:path';
import { HatiServer, Logger } from '@hati/server';
import { within } from '@hati/test-helpers';
import t, { type Test } from 'tap';
import {
  type Consumer,
  type ConsumerMessage,
  createClient,
  createRpcClient,
  type HatiClient,
  HatiError,
} from '../src/index.js';
import { codeOf, startProxy, startServer } from './common/harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The next message, failing the test rather than hanging when none comes. */
async function next(consumer: Consumer, what = 'a message'): Promise<ConsumerMessage> {
  const result = await within(consumer.next(), 5000, what);
  if (result.done === true) throw new Error(`the consumer ended while waiting for ${what}`);
  return result.value;
}

/** Whether `consumer.next()` stays pending for `ms` (nothing more was pushed). */
async function nothingFor(consumer: Consumer, ms: number): Promise<{ quiet: boolean; read: Promise<unknown> }> {
  const read = consumer.next();
  const quiet = await Promise.race([read.then(() => false), sleep(ms).then(() => true)]);
  return { quiet, read };
}

/** A server with a router `r` (direct) bound with key `k` to queue `q` of `type`, and an admin client. */
async function brokerSetup(
  t: Test,
  type: 'memory' | 'hdd',
): Promise<{ server: HatiServer; port: number; dir: string; admin: HatiClient }> {
  const { server, dir } = await startServer(t);
  const port = server.addresses.tcp?.port as number;
  const admin = createClient({ port });
  t.teardown(() => admin.close());
  await admin.createRouter('r', 'direct');
  await admin.createQueue('q', type);
  await admin.bind('q', 'r', 'k');
  return { server, port, dir, admin };
}

async function publish(admin: HatiClient, ...messages: Array<string | Buffer>): Promise<void> {
  for (const message of messages) await admin.publish('r', 'k', message);
}

/** Resolves at the client's next 'connect'. */
const connected = (client: HatiClient) => new Promise<void>((resolve) => client.once('connect', resolve));

const text = (m: ConsumerMessage) => `${m.message.toString()}#${m.deliveries}`;

for (const type of ['memory', 'hdd'] as const) {
  t.test(`${type}: messages come in order, at most prefetch unacknowledged; ack, nack, touch`, async (t) => {
    const { port, admin } = await brokerSetup(t, type);
    const client = createClient({ port });
    t.teardown(() => client.close());
    const binary = Buffer.from([0, 0xff, 13, 10]);
    await publish(admin, 'm1', binary, 'm3', 'm4', 'm5');

    const consumer = await client.consume('q', { prefetch: 2 });
    t.equal(consumer.tag, 'ctag-1', 'the tag the server gave');
    t.equal(consumer.queue, 'q');
    t.equal(consumer.prefetch, 2);
    const m1 = await next(consumer);
    t.match(m1, { id: '1', deliveries: 1, routingKey: 'k', queue: 'q' });
    t.equal(m1.message.toString(), 'm1');
    const m2 = await next(consumer);
    t.ok(m2.message.equals(binary), 'a binary message, exactly');
    t.equal(m2.death, undefined);

    const waiting = await nothingFor(consumer, 100);
    t.ok(waiting.quiet, 'prefetch 2: no third message while two are unacknowledged');
    t.match(await admin.getQueue('q'), { leased: 2, ready: 3, consumers: 1 });
    t.equal(await m1.ack(), true, 'ack');
    t.equal(await m1.ack(), false, 'acknowledged once only');
    const m3 = (await within(waiting.read, 5000, 'm3')) as IteratorResult<ConsumerMessage>;
    t.equal(m3.value?.message.toString(), 'm3', 'an ack makes room for the next');

    t.equal(await m2.touch(), true, 'touch');
    t.equal(await m2.nack(), true, 'nack gives it back');
    const again = await next(consumer, 'm2 again');
    t.equal(text(again), `${binary}#2`, 'given back ahead of newer messages, its count raised');
    t.equal(again.id, m2.id, 'the same message: settling is by id');
    t.equal(await again.nack({ drop: true }), true, 'nack drop');
    t.equal(await again.touch(), false, 'no longer leased');
    t.match(await admin.deadLetters('q'), [
      { routingKey: 'k', death: { reason: 'rejected', queue: 'q', deliveries: 2 } },
    ]);
    const m4 = await next(consumer);
    t.equal(text(m4), 'm4#1');
    t.equal(await (m3.value as ConsumerMessage).ack(), true);
    t.equal(await m4.ack(), true);

    // m5 is pushed; nobody reads it. Cancelling gives it back at once.
    await sleep(100);
    t.match(await admin.getQueue('q'), { leased: 1, ready: 0 }, 'm5 pushed, unread');
    await consumer.cancel();
    t.equal(consumer.tag, undefined, 'no tag once cancelled');
    t.same(await consumer.next(), { value: undefined, done: true }, 'the iteration is over');
    t.match(await admin.getQueue('q'), { leased: 0, ready: 1, consumers: 0 }, 'm5 given back, the consumer gone');
    t.same(
      (await admin.fetch('q')).map((d) => `${d.message}#${d.deliveries}`),
      ['m5#2'],
    );
    t.equal(await consumer.cancel(), undefined, 'cancel again: nothing more');
  });
}

t.test('for await: leaving the loop cancels; consumers share a queue in turn, routed by tag', async (t) => {
  const { port, admin } = await brokerSetup(t, 'memory');
  const client = createClient({ port });
  t.teardown(() => client.close());
  const pushes: string[] = [];
  client.onPush((items) => pushes.push(String(items[0])));
  const a = await client.consume('q', { prefetch: 1 });
  const b = await client.consume('q', { prefetch: 1 });
  t.same([a.tag, b.tag], ['ctag-1', 'ctag-2']);
  await publish(admin, 'm1', 'm2', 'm3', 'm4');
  const got: string[] = [];
  for await (const message of a) {
    got.push(`a:${message.message}`);
    const fromB = await next(b);
    got.push(`b:${fromB.message}`);
    await message.ack();
    if (got.length === 4) break;
    await fromB.ack();
  }
  t.same(got, ['a:m1', 'b:m2', 'a:m3', 'b:m4'], 'one message each in turn, each to its own consumer');
  t.equal(a.tag, undefined, 'leaving the loop cancelled a');
  t.match(await admin.getQueue('q'), { consumers: 1, leased: 1 }, 'b holds what it did not acknowledge');
  await b.cancel();
  t.match(await admin.getQueue('q'), { consumers: 0, leased: 1 }, 'a message handed out stays leased');
  t.ok(pushes.includes('delivery'), 'onPush listeners see the deliveries too');
});

t.test('consume refuses what cannot work', async (t) => {
  const { port, server } = await brokerSetup(t, 'memory');
  const client = createClient({ port });
  const resp2 = createClient({ port, protocol: 2 });
  t.teardown(() => Promise.all([client.close(), resp2.close()]));
  await resp2.ping();
  t.equal(await codeOf(resp2.consume('q')), 'NOT_SUPPORTED', 'RESP2: deliveries cannot be pushed');
  t.equal(await codeOf(client.consume('q', { prefetch: 0 })), 'ARGUMENT_INVALID', 'prefetch 0: no bound');
  t.equal(await codeOf(client.consume('q', { prefetch: 1.5 })), 'ARGUMENT_INVALID');
  t.equal(await codeOf(client.consume('q', { prefetch: 70_000 })), 'ARGUMENT_INVALID', 'refused by the server');
  t.equal(await codeOf(client.consume('nope')), 'QUEUE_NOT_FOUND');
  const rpc = createRpcClient({ url: `http://127.0.0.1:${server.addresses.rpc?.port}/` });
  t.equal(await codeOf(rpc.call('CONSUME', ['q'])), 'NOT_SUPPORTED', 'JSON-RPC has no CONSUME');
  t.match(await client.getQueue('q'), { consumers: 0 }, 'no consumer was left behind');
});

t.test('a CONSUME that timed out but ran is cancelled when its answer comes, and what it got given back', async (t) => {
  const { port, admin } = await brokerSetup(t, 'memory');
  await admin.createQueue('empty', 'memory');
  await publish(admin, 'm1', 'm2');
  const client = createClient({ port });
  t.teardown(() => client.close());
  // Answers come in order: the CONSUME's waits behind a FETCH that waits 300 ms.
  const fetching = client.fetch('empty', { waitMs: 300 });
  const consuming = client.consume('q', { prefetch: 1, timeout: 50 });
  t.equal(await codeOf(consuming), 'TIMEOUT');
  t.same(await fetching, []);
  await sleep(100);
  t.match(await admin.getQueue('q'), { consumers: 0, leased: 0, ready: 2 }, 'cancelled; m1 given back');
  t.same(
    (await admin.fetch('q', { count: 2 })).map((d) => `${d.message}#${d.deliveries}`),
    ['m1#2', 'm2#1'],
  );
});

t.test('after the connection drops, the client consumes again; what it held comes again', async (t) => {
  const { port, admin } = await brokerSetup(t, 'memory');
  const proxy = await startProxy(t, port);
  const client = createClient({ port: proxy.port, reconnect: { initialDelay: 20, maxDelay: 100 } });
  t.teardown(() => client.close());
  await publish(admin, 'm1', 'm2', 'm3');
  const consumer = await client.consume('q', { prefetch: 2 });
  const m1 = await next(consumer);
  t.equal(text(m1), 'm1#1');
  await sleep(50); // m2 pushed and buffered, unread
  t.match(await admin.getQueue('q'), { leased: 2, ready: 1 });

  const reconnected = connected(client);
  proxy.drop();
  await within(reconnected, 5000, 'the reconnect');
  const after = [await next(consumer, 'm1 again'), await next(consumer, 'm2 again')];
  t.same(after.map(text), ['m1#2', 'm2#2'], 'given back by the server, delivered again, counted; no stale copy');
  t.match(await admin.getQueue('q'), { consumers: 1, leased: 2, ready: 1 }, 'one consumer, on the new connection');
  t.ok(consumer.tag?.startsWith('ctag-'), `consuming as ${consumer.tag}`);
  for (const m of after) t.equal(await m.ack(), true);
  t.equal(text(await next(consumer)), 'm3#1');
  await consumer.cancel();
});

t.test('after a server restart, an hdd queue redelivers what was leased, to the consumer again', async (t) => {
  const first = await brokerSetup(t, 'hdd');
  await publish(first.admin, 'd1', 'd2');
  const client = createClient({ port: first.port, reconnect: { initialDelay: 20, maxDelay: 100 } });
  t.teardown(() => client.close());
  const consumer = await client.consume('q', { prefetch: 5 });
  const d1 = await next(consumer);
  t.equal(await d1.ack(), true);
  t.equal(text(await next(consumer)), 'd2#1');

  const reconnected = connected(client);
  await first.server.close();
  const again = await HatiServer.start({
    tcp: { host: '127.0.0.1', port: first.port },
    dataDir: join(first.dir, 'data'),
    durability: 'no',
    logger: new Logger('warn', () => {}),
  });
  t.teardown(() => again.close());
  await within(reconnected, 5000, 'the reconnect');
  const redelivered = await next(consumer, 'd2 again');
  t.equal(text(redelivered), 'd2#2', 'leased when the server stopped: ready again, counted');
  t.equal(await redelivered.ack(), true);
  t.equal(await client.publish('r', 'k', 'd3'), 1);
  t.equal(text(await next(consumer)), 'd3#1', 'and new messages keep coming');
  t.match(await client.getQueue('q'), { consumers: 1, leased: 1, ready: 0 });
});

t.test(
  'a consumer whose queue is deleted ends with QUEUE_NOT_FOUND: told by the server, or when consuming again',
  async (t) => {
    const { port, admin } = await brokerSetup(t, 'memory');
    const proxy = await startProxy(t, port);
    // A reconnect delay long enough to delete the queue while the client is away.
    const client = createClient({ port: proxy.port, reconnect: { initialDelay: 300, maxDelay: 300 } });
    t.teardown(() => client.close());
    const errors: string[] = [];
    client.on('error', (err) => errors.push((err as HatiError).code));

    const told = await client.consume('q');
    const waiting = codeOf(told.next());
    await admin.deleteQueue('q');
    t.equal(await waiting, 'QUEUE_NOT_FOUND', 'the server cancels the consumer: the waiting read rejects');
    t.same(await told.next(), { value: undefined, done: true }, 'then the iteration is over');
    t.same(errors, [], 'no error event: nothing failed on the client');

    await admin.createQueue('q', 'memory');
    const consumer = await client.consume('q');
    const reading = consumer.next().catch((err: unknown) => err);
    const reconnected = connected(client);
    proxy.drop();
    // The queue goes while the client is away, so the server cannot tell it.
    await admin.deleteQueue('q');
    await within(reconnected, 5000, 'the reconnect');
    const error = await reading;
    t.ok(error instanceof HatiError && error.code === 'QUEUE_NOT_FOUND', 'consuming again fails: the read rejects');
    t.same(await consumer.next(), { value: undefined, done: true }, 'then the iteration is over');
    t.same(errors, ['QUEUE_NOT_FOUND'], 'reported as an error event too');
    t.equal(await client.ping(), 'PONG', 'the client goes on');
  },
);

t.test('closing the client ends its consumers; losing it for good ends them with CONNECTION_CLOSED', async (t) => {
  const { port } = await brokerSetup(t, 'memory');
  const client = createClient({ port });
  const consumer = await client.consume('q');
  const reading = consumer.next();
  await client.close();
  t.same(await reading, { value: undefined, done: true }, 'close(): the iteration ends');

  const proxy = await startProxy(t, port);
  const once_ = createClient({ port: proxy.port, reconnect: false });
  t.teardown(() => once_.close());
  const lost = await once_.consume('q');
  const waiting = lost.next();
  proxy.drop();
  t.equal(await codeOf(waiting), 'CONNECTION_CLOSED', 'no reconnect: the read rejects');
  t.same(await lost.next(), { value: undefined, done: true });
});
