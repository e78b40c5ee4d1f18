// Routers, queues and bindings: creating them again, the errors by code, listing, and what a
// closed broker answers. Restarts are in restart.test.ts.
import t from 'tap';
import {
  Broker,
  BrokerError,
  MAX_FETCH,
  MAX_MS,
  MAX_NAME,
  MAX_PREFETCH,
  MAX_ROUTING_KEY,
  queueDefaults,
} from '../src/index.js';
import { codeOf, memoryBroker, openBroker } from './common/harness.js';

t.test('creating a router or queue again is fine with the same definition, refused with another', async (t) => {
  const { broker } = await openBroker(t);
  t.equal(await broker.createRouter('r', 'direct'), undefined);
  t.equal(await broker.createRouter('r', 'DIRECT'), undefined, 'same kind again: nothing to do');
  t.equal(await codeOf(() => broker.createRouter('r', 'topic')), 'ROUTER_EXISTS');
  await broker.createQueue('q', 'memory', { maxLength: 5 });
  t.equal(await codeOf(() => broker.createQueue('q', 'memory', { maxLength: 5 })), undefined);
  t.equal(
    await codeOf(() => broker.createQueue('q', 'memory', { maxLength: 5, ackTimeoutMs: queueDefaults.ackTimeoutMs })),
    undefined,
    'a default named is the default',
  );
  t.equal(await codeOf(() => broker.createQueue('q', 'memory')), 'QUEUE_EXISTS', 'other settings');
  t.equal(await codeOf(() => broker.createQueue('q', 'hdd', { maxLength: 5 })), 'QUEUE_EXISTS', 'another type');
  t.equal(
    await codeOf(() => broker.createQueue('q', 'memory', { maxLength: 5, overflow: 'drop-head' })),
    'QUEUE_EXISTS',
  );
  t.match(broker.getQueue('q'), { ...queueDefaults, deadLetter: null, maxLength: 5, type: 'memory', bindings: [] });
  t.same(broker.getRouter('r'), { name: 'r', kind: 'direct', bindings: [] });
});

t.test('errors by code', async (t) => {
  const { broker } = await openBroker(t);
  const noDisk = await memoryBroker(t);
  await broker.createRouter('r', 'direct');
  await broker.createQueue('q', 'memory');
  await broker.bind('q', 'r', 'k');
  const s = broker.openSession();
  const cases: [string, () => unknown][] = [
    ['ROUTER_NOT_FOUND', () => broker.publish('nope', 'k', 'x')],
    ['ROUTER_NOT_FOUND', () => broker.bind('q', 'nope', 'k')],
    ['ROUTER_NOT_FOUND', () => broker.unbind('q', 'nope', 'k')],
    ['ROUTER_NOT_FOUND', () => broker.getRouter('nope')],
    ['ROUTER_NOT_FOUND', () => broker.createQueue('dl', 'memory', { deadLetter: 'nope' })],
    ['QUEUE_NOT_FOUND', () => broker.bind('nope', 'r', 'k')],
    ['QUEUE_NOT_FOUND', () => broker.unbind('nope', 'r', 'k')],
    ['QUEUE_NOT_FOUND', () => broker.getQueue('nope')],
    ['QUEUE_NOT_FOUND', () => broker.fetch(s, 'nope')],
    ['QUEUE_NOT_FOUND', () => broker.consume(s, 'nope')],
    ['QUEUE_NOT_FOUND', () => broker.ack('nope', ['1'])],
    ['QUEUE_NOT_FOUND', () => broker.nack('nope', '1')],
    ['QUEUE_NOT_FOUND', () => broker.touch('nope', '1')],
    ['QUEUE_NOT_FOUND', () => broker.flush('nope')],
    ['QUEUE_NOT_FOUND', () => broker.deadLetters('nope')],
    ['QUEUE_NOT_FOUND', () => broker.replayDead('nope')],
    ['QUEUE_NOT_FOUND', () => broker.purgeDead('nope')],
    ['ROUTER_KIND_INVALID', () => broker.createRouter('h', 'headers')],
    ['ROUTER_KIND_INVALID', () => broker.createRouter('h', '')],
    ['QUEUE_TYPE_INVALID', () => broker.createQueue('x', 'ssd')],
    ['QUEUE_TYPE_INVALID', () => noDisk.createQueue('x', 'hdd')],
    ['NAME_INVALID', () => broker.createRouter('', 'direct')],
    ['NAME_INVALID', () => broker.createRouter('a b', 'direct')],
    ['NAME_INVALID', () => broker.createQueue('é', 'memory')],
    ['NAME_INVALID', () => broker.createQueue('x'.repeat(MAX_NAME + 1), 'memory')],
    ['NAME_INVALID', () => broker.createQueue('x', 'memory', { deadLetter: 'bad name' })],
    ['ROUTING_KEY_INVALID', () => broker.publish('r', 'k'.repeat(MAX_ROUTING_KEY + 1), 'x')],
    ['ROUTING_KEY_INVALID', () => broker.publish('r', 'é'.repeat(MAX_ROUTING_KEY / 2 + 1), 'x')],
    ['ROUTING_KEY_INVALID', () => broker.bind('q', 'r', 'k'.repeat(MAX_ROUTING_KEY + 1))],
    ['ARGUMENT_INVALID', () => broker.fetch(s, 'q', 0)],
    ['ARGUMENT_INVALID', () => broker.fetch(s, 'q', MAX_FETCH + 1)],
    ['ARGUMENT_INVALID', () => broker.fetch(s, 'q', 1.5)],
    ['ARGUMENT_INVALID', () => broker.fetch(s, 'q', 1, -1)],
    ['ARGUMENT_INVALID', () => broker.fetch(s, 'q', 1, MAX_MS + 1)],
    [
      'ARGUMENT_INVALID',
      () =>
        broker.consume(
          broker.openSession(() => {}),
          'q',
          MAX_PREFETCH + 1,
        ),
    ],
    ['ARGUMENT_INVALID', () => broker.consume(s, 'q')],
    ['ARGUMENT_INVALID', () => broker.publish('r', 'k', 'x', { delayMs: -1 })],
    ['ARGUMENT_INVALID', () => broker.publish('r', 'k', 'x', { delayMs: MAX_MS + 1 })],
    ['ARGUMENT_INVALID', () => broker.publish('r', 'k', 'x', { ttlMs: 0.5 })],
    ['ARGUMENT_INVALID', () => broker.publish('r', 'k', 'x', { id: '' })],
    ['ARGUMENT_INVALID', () => broker.publish('r', 'k', 'x', { id: 'i'.repeat(257) })],
    ['ARGUMENT_INVALID', () => broker.createQueue('x', 'memory', { ackTimeoutMs: 0 })],
    ['ARGUMENT_INVALID', () => broker.createQueue('x', 'memory', { maxDeliveries: -1 })],
    ['ARGUMENT_INVALID', () => broker.createQueue('x', 'memory', { maxLength: 1.5 })],
    ['ARGUMENT_INVALID', () => broker.createQueue('x', 'memory', { ttlMs: MAX_MS + 1 })],
    ['ARGUMENT_INVALID', () => broker.createQueue('x', 'memory', { dedupWindowMs: -1 })],
    ['ARGUMENT_INVALID', () => broker.createQueue('x', 'memory', { overflow: 'drop-tail' as 'reject' })],
    ['ARGUMENT_INVALID', () => broker.nack('q', '1', 'later' as 'drop')],
    ['ARGUMENT_INVALID', () => broker.deadLetters('q', 0)],
    ['ARGUMENT_INVALID', () => broker.replayDead('q', 0)],
  ];
  for (const [code, fn] of cases) t.equal(await codeOf(fn), code, `${code}: ${fn.toString().slice(6, 90)}`);
  t.same(broker.listQueues(), ['q'], 'no refused CREATEQUEUE left a queue behind');
  t.same(broker.listRouters(), ['r']);
  t.throws(
    () => broker.createRouter('h', 'headers'),
    new BrokerError('ROUTER_KIND_INVALID', "unknown router kind 'headers' (expected direct, fanout or topic)"),
    'refused synchronously, as a BrokerError',
  );
});

t.test('a bad PUBLISH stores nothing; an empty routing key or payload is fine', async (t) => {
  const { broker } = await openBroker(t);
  await broker.createRouter('r', 'fanout');
  await broker.createQueue('q', 'hdd');
  await broker.bind('q', 'r', '');
  await codeOf(() => broker.publish('r', '', 'x', { ttlMs: -5 }));
  t.equal(broker.getQueue('q').ready, 0);
  t.equal(await broker.publish('r', '', ''), 1);
  t.equal(await broker.publish('r', '', new Uint8Array([0, 255, 1])), 1);
  const s = broker.openSession();
  const got = await broker.fetch(s, 'q', 2);
  t.same(
    got.map((d) => [...d.message]),
    [[], [0, 255, 1]],
    'bytes come back as they went in',
  );
});

t.test('lists are sorted and filtered by a glob; deleting cleans up', async (t) => {
  const { broker } = await openBroker(t);
  for (const name of ['orders', 'orders.eu', 'payments']) await broker.createQueue(name, 'memory');
  for (const name of ['ex.b', 'ex.a']) await broker.createRouter(name, 'fanout');
  t.same(broker.listQueues(), ['orders', 'orders.eu', 'payments']);
  t.same(broker.listQueues('orders*'), ['orders', 'orders.eu']);
  t.same(broker.listRouters(), ['ex.a', 'ex.b']);
  t.same(broker.listRouters('*.b'), ['ex.b']);
  await broker.bind('orders', 'ex.a', '');
  t.same(broker.getQueue('orders').bindings, [{ router: 'ex.a', bindingKey: '' }]);
  t.equal(await broker.bind('orders', 'ex.a', ''), undefined, 'binding again changes nothing');
  t.same(broker.getRouter('ex.a').bindings, [{ queue: 'orders', bindingKey: '' }]);
  t.equal(await broker.unbind('orders', 'ex.a', 'other'), false);
  t.equal(await broker.deleteRouter('ex.a'), true);
  t.equal(await broker.deleteRouter('ex.a'), false);
  t.same(broker.getQueue('orders').bindings, [], 'the bindings went with the router');
  t.equal(await broker.deleteQueue('payments'), true);
  t.same(broker.listQueues(), ['orders', 'orders.eu']);
  t.match(broker.stats(), { routers: 1, queues: 2 });
});

t.test('a closed broker refuses with BROKER_CLOSED', async (t) => {
  const { broker } = await openBroker(t);
  await broker.createRouter('r', 'direct');
  await broker.createQueue('q', 'hdd');
  const s = broker.openSession();
  const waiting = broker.fetch(s, 'q', 1, 10_000);
  await broker.close();
  t.same(await waiting, [], 'a waiting FETCH ends with [] when the broker closes');
  t.equal(broker.closed, true);
  await broker.close();
  const calls: (() => unknown)[] = [
    () => broker.openSession(),
    () => broker.createRouter('x', 'direct'),
    () => broker.createQueue('x', 'memory'),
    () => broker.bind('q', 'r', ''),
    () => broker.unbind('q', 'r', ''),
    () => broker.deleteRouter('r'),
    () => broker.deleteQueue('q'),
    () => broker.publish('r', '', 'x'),
    () => broker.fetch(s, 'q'),
    () => broker.consume(s, 'q'),
    () => broker.ack('q', ['1']),
    () => broker.nack('q', '1'),
    () => broker.touch('q', '1'),
    () => broker.flush('q'),
    () => broker.deadLetters('q'),
    () => broker.replayDead('q'),
    () => broker.purgeDead('q'),
    () => broker.getQueue('q'),
    () => broker.getRouter('r'),
    () => broker.listQueues(),
    () => broker.listRouters(),
    () => broker.stats(),
  ];
  for (const call of calls) t.equal(await codeOf(call), 'BROKER_CLOSED', call.toString());
  broker.tick();
  broker.closeSession(s);
});

t.test('a data directory is used by one broker at a time', async (t) => {
  const { dataDir } = await openBroker(t);
  t.equal(await codeOf(() => Broker.open({ dataDir })), 'DATA_DIR_LOCKED');
});
