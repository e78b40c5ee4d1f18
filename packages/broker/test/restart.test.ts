// What a restart keeps (Broker.open on the same data directory): definitions of every queue,
// the messages of hdd queues with their delivery counts and dead letters, never an acked one.
import t from 'tap';
import { DeadReason, type RouterInfo } from '../src/index.js';
import { codeOf, openBroker, openWithQueue, texts } from './common/harness.js';

t.test('routers, queues and bindings survive; memory messages do not, hdd ones do', async (t) => {
  const env = await openBroker(t);
  let broker = env.broker;
  await broker.createRouter('d', 'direct');
  await broker.createRouter('f', 'fanout');
  await broker.createRouter('tp', 'topic');
  await broker.createRouter('dlx', 'fanout');
  await broker.createRouter('gone', 'direct');
  await broker.createQueue('mem', 'memory', { maxLength: 10, overflow: 'drop-head', ttlMs: 60_000 });
  await broker.createQueue('disk', 'hdd', {
    deadLetter: 'dlx',
    maxDeliveries: 4,
    ackTimeoutMs: 5000,
    dedupWindowMs: 10,
  });
  await broker.createQueue('dropped', 'hdd');
  await broker.bind('mem', 'd', 'k');
  await broker.bind('disk', 'd', 'k');
  await broker.bind('disk', 'tp', 'orders.#');
  await broker.bind('mem', 'tp', '*.eu');
  await broker.bind('mem', 'f', '');
  await broker.bind('disk', 'f', 'x');
  await broker.unbind('disk', 'f', 'x');
  await broker.deleteRouter('gone');
  await broker.publish('d', 'k', 'one');
  await broker.bind('dropped', 'd', 'drop');
  t.equal(await broker.publish('d', 'drop', 'x'), 1);
  await broker.deleteQueue('dropped');
  const before = {
    routers: broker.listRouters().map((name) => broker.getRouter(name)),
    queues: broker.listQueues().map((name) => ({ ...broker.getQueue(name), ready: 0, published: 0 })),
  };
  broker = await env.reopen();
  const sorted = (info: RouterInfo) => ({ ...info, bindings: info.bindings.map((b) => JSON.stringify(b)).sort() });
  t.same(
    broker.listRouters().map((name) => sorted(broker.getRouter(name))),
    before.routers.map(sorted),
  );
  t.same(
    broker.listQueues().map((name) => ({ ...broker.getQueue(name), ready: 0, published: 0 })),
    before.queues,
  );
  t.same(broker.listRouters(), ['d', 'dlx', 'f', 'tp']);
  t.same(broker.listQueues(), ['disk', 'mem']);
  t.match(broker.getQueue('mem'), { ready: 0 }, 'a memory queue comes back empty');
  t.match(broker.getQueue('disk'), { ready: 1 }, 'an hdd queue keeps its messages');
  t.equal(await broker.publish('tp', 'orders.eu', 'routed'), 2, 'the topic bindings work after the restart');
  t.equal(await broker.publish('tp', 'orders.new.eu', 'routed'), 1);
  t.equal(await broker.publish('f', '', 'fan'), 1);
  await broker.createQueue('dropped', 'hdd');
  t.match(broker.getQueue('dropped'), { ready: 0 }, 'a deleted queue took its messages with it');
  t.equal(await codeOf(() => broker.createQueue('disk', 'hdd')), 'QUEUE_EXISTS', 'the settings came back as they were');
});

t.test('hdd messages come back in order with their bytes, keys, delays and ttls', async (t) => {
  const env = await openBroker(t);
  let broker = env.broker;
  await broker.createRouter('r', 'topic');
  await broker.createQueue('q', 'hdd');
  await broker.bind('q', 'r', '#');
  const payload = Buffer.from([0, 1, 2, 250, 255]);
  await broker.publish('r', 'a.b', payload);
  await broker.publish('r', '', 'second');
  await broker.publish('r', 'later', 'delayed', { delayMs: 5000 });
  await broker.publish('r', 'brief', 'ttl', { ttlMs: 3000 });
  await broker.publish('r', 'long', 'big'.repeat(100_000));
  env.clock.now += 2000;
  broker = await env.reopen();
  t.match(broker.getQueue('q'), { ready: 4, delayed: 1 });
  const s = broker.openSession();
  const got = await broker.fetch(s, 'q', 10);
  t.same(
    got.map((d) => [d.routingKey, d.message.length, d.deliveries]),
    [
      ['a.b', 5, 1],
      ['', 6, 1],
      ['brief', 3, 1],
      ['long', 300_000, 1],
    ],
  );
  t.same(got[0]?.message, payload);
  t.equal(got[3]?.message.toString(), 'big'.repeat(100_000));
  await broker.nack('q', got[2]?.id as string);
  env.clock.now += 1000;
  broker = await env.reopen();
  const s2 = broker.openSession();
  t.same(
    texts(await broker.fetch(s2, 'q', 10)).map((text) => text.slice(0, 6)),
    ['\u0000\u0001\u0002��', 'second', 'bigbig'],
    'the ttl ran on while closed',
  );
  await broker.settled();
  t.same(
    (await broker.deadLetters('q')).map((d) => [d.message.toString(), d.death.reason]),
    [['ttl', DeadReason.expired]],
  );
  t.equal(broker.getQueue('q').delayed, 1, 'the delayed message is still delayed');
  env.clock.now += 2000;
  t.same(texts(await broker.fetch(s2, 'q', 10)), ['delayed']);
});

t.test('delivery counts survive, leased messages are ready at once, acks are for good', async (t) => {
  const { env, publish } = await openWithQueue(t, 'hdd', { ackTimeoutMs: 60_000 });
  let broker = env.broker;
  for (const text of ['a', 'b', 'c', 'd']) await publish(text);
  const s = broker.openSession();
  const [a, b, c] = await broker.fetch(s, 'q', 3);
  await broker.ack('q', [b?.id as string]);
  await broker.nack('q', c?.id as string);
  broker = await env.reopen();
  t.match(broker.getQueue('q'), { ready: 3, leased: 0 }, 'the lease ended with the restart');
  const s2 = broker.openSession();
  const got = await broker.fetch(s2, 'q', 10);
  t.same(
    got.map((d) => [d.message.toString(), d.deliveries, d.id]),
    [
      ['a', 2, a?.id],
      ['c', 2, c?.id],
      ['d', 1, got[2]?.id],
    ],
    'a delivery before the restart counts; the acked message is gone',
  );
  await broker.ack('q', [got[0]?.id as string]);
  broker = await env.reopen();
  const s3 = broker.openSession();
  t.same(
    (await broker.fetch(s3, 'q', 10)).map((d) => [d.message.toString(), d.deliveries]),
    [
      ['c', 3],
      ['d', 2],
    ],
  );
});

t.test('a message whose last allowed delivery ended in the restart is dead-lettered', async (t) => {
  const { env, publish } = await openWithQueue(t, 'hdd', { maxDeliveries: 2 });
  let broker = env.broker;
  await publish('poison');
  await publish('fine');
  let s = broker.openSession();
  const [poison] = await broker.fetch(s, 'q');
  await broker.nack('q', poison?.id as string);
  await broker.fetch(s, 'q', 2);
  broker = await env.reopen();
  await broker.settled();
  t.match(broker.getQueue('q'), { ready: 1, dead: 1 });
  t.same(
    (await broker.deadLetters('q')).map((d) => [d.message.toString(), d.death]),
    [['poison', { reason: 'delivery-limit', queue: 'q', deliveries: 2 }]],
  );
  s = broker.openSession();
  t.same(
    (await broker.fetch(s, 'q', 5)).map((d) => [d.message.toString(), d.deliveries]),
    [['fine', 2]],
  );
  broker = await env.reopen();
  t.match(broker.getQueue('q'), { ready: 0, dead: 2 }, 'its second delivery ended with this restart too');
  t.same(texts(await broker.deadLetters('q')), ['poison', 'fine'], 'the poison message stayed dead-lettered');
});

t.test('dead letters survive, and REPLAY and PURGE of them too', async (t) => {
  const { env, publish } = await openWithQueue(t, 'hdd');
  let broker = env.broker;
  await broker.createQueue('mem', 'memory');
  await broker.bind('mem', 'r', 'k');
  for (const text of ['a', 'b', 'c']) await publish(text);
  const s = broker.openSession();
  for (const queue of ['q', 'mem']) {
    for (const m of await broker.fetch(s, queue, 3)) await broker.nack(queue, m.id, 'drop');
  }
  broker = await env.reopen();
  t.match(broker.getQueue('q'), { dead: 3, ready: 0 });
  t.match(broker.getQueue('mem'), { dead: 0 }, "a memory queue's dead letters are gone with it");
  const dead = await broker.deadLetters('q', 5);
  t.same(
    dead.map((d) => [d.message.toString(), d.routingKey, d.death]),
    ['a', 'b', 'c'].map((text) => [text, 'k', { reason: 'rejected', queue: 'q', deliveries: 1 }]),
  );
  t.equal(await broker.replayDead('q', 1), 1);
  t.equal(await broker.purgeDead('q'), 2);
  await broker.nack('q', '1', 'drop');
  broker = await env.reopen();
  t.match(broker.getQueue('q'), { dead: 0, ready: 1 });
  const s2 = broker.openSession();
  const [replayed] = await broker.fetch(s2, 'q');
  t.same([replayed?.message.toString(), replayed?.deliveries, replayed?.death], ['a', 1, undefined]);
  await broker.nack('q', replayed?.id as string, 'drop');
  broker = await env.reopen();
  t.same(texts(await broker.deadLetters('q')), ['a'], 'a dead letter after a purge is kept');
});

t.test('ids are not reused after a restart: a stale ACK cannot settle another message', async (t) => {
  const { env, publish } = await openWithQueue(t, 'hdd');
  let broker = env.broker;
  await publish('old-1');
  await publish('old-2');
  const s = broker.openSession();
  const old = await broker.fetch(s, 'q', 2);
  await broker.ack(
    'q',
    old.map((d) => d.id),
  );
  broker = await env.reopen();
  await publish('new');
  const s2 = broker.openSession();
  const [fresh] = await broker.fetch(s2, 'q');
  t.notOk(
    old.some((d) => d.id === fresh?.id),
    `the new message has a new id (${fresh?.id}, before: ${old.map((d) => d.id)})`,
  );
  t.equal(await broker.ack('q', [old[1]?.id as string]), 0, 'the stale id settles nothing');
  t.equal(broker.getQueue('q').leased, 1);
});

t.test('with a tiny payload cache, bytes are read from disk for deliveries and dead letters', async (t) => {
  const env = await openBroker(t, { hddCacheBytes: 10 });
  let broker = env.broker;
  await broker.createRouter('r', 'direct');
  await broker.createRouter('dlx', 'fanout');
  await broker.createQueue('dlq', 'hdd');
  await broker.bind('dlq', 'dlx', '');
  await broker.createQueue('q', 'hdd', { deadLetter: 'dlx', ttlMs: 10_000 });
  await broker.createQueue('kept', 'hdd', { maxLength: 1, overflow: 'drop-head' });
  await broker.bind('q', 'r', 'k');
  await broker.bind('kept', 'r', 'k');
  const texts10 = Array.from({ length: 10 }, (_, i) => `message-${i}`);
  for (const text of texts10) await broker.publish('r', 'k', text);
  await broker.settled();
  t.match(broker.getQueue('kept'), { ready: 1, dead: 9 });
  t.same(texts(await broker.deadLetters('kept', 20)), texts10.slice(0, 9), 'dead letters read from disk');
  const s = broker.openSession();
  const got = await broker.fetch(s, 'q', 3);
  t.same(texts(got), texts10.slice(0, 3));
  await broker.nack('q', got[0]?.id as string, 'drop');
  t.same(texts(await broker.fetch(s, 'dlq', 5)), ['message-0'], 'the dead letter went to the router with its bytes');
  env.clock.now += 10_000;
  broker.tick();
  await broker.settled();
  t.equal(broker.getQueue('dlq').ready, 7, 'the waiting ones expired into the dead-letter queue');
  broker = await env.reopen();
  t.match(broker.getQueue('dlq'), { ready: 10 }, 'the leases that ended with the close were past the ttl too');
  t.equal(await broker.replayDead('kept', 3), 3);
  await broker.settled();
  const s2 = broker.openSession();
  t.same(
    texts(await broker.fetch(s2, 'kept', 5)),
    ['message-2'],
    'replayed into a full drop-head queue: the newest stays',
  );
  t.same(
    texts(await broker.deadLetters('kept', 20)),
    [...texts10.slice(3, 10), 'message-0', 'message-1'],
    'the others were dropped at the head again',
  );
});

t.test('a de-duplication id of a stored message is still seen after a restart', async (t) => {
  const { env, publish } = await openWithQueue(t, 'hdd', { dedupWindowMs: 60_000 });
  let broker = env.broker;
  await publish('first', { id: 'order-1' });
  broker = await env.reopen();
  t.equal(await publish('retried', { id: 'order-1' }), 1, 'a retried PUBLISH still counts as reaching the queue');
  t.equal(broker.getQueue('q').ready, 1, 'but is not queued twice');
  env.clock.now += 60_000;
  await publish('later', { id: 'order-1' });
  const s = broker.openSession();
  t.same(texts(await broker.fetch(s, 'q', 5)), ['first', 'later'], 'the window runs from the restart');
});
