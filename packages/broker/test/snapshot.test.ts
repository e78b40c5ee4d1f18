// Snapshots for backups and restores: definitions, hdd messages with their delivery counts and
// due times, dead letters; read in bounded steps, consistent with the moment they were taken.
import t from 'tap';
import { type Broker, type BrokerSnapshot, queueDefaults, type SnapshotItem } from '../src/index.js';
import { codeOf, openBroker, texts } from './common/harness.js';

/** Every item of a snapshot: definitions `step` at a time, then messages. */
async function drain(snapshot: BrokerSnapshot, step = 2, maxBytes = 1 << 20): Promise<SnapshotItem[]> {
  const items: SnapshotItem[] = [];
  for (let chunk = await snapshot.definitions(step); chunk.length > 0; chunk = await snapshot.definitions(step)) {
    items.push(...chunk);
  }
  for (
    let chunk = await snapshot.messages(step, maxBytes);
    chunk.length > 0;
    chunk = await snapshot.messages(step, maxBytes)
  ) {
    items.push(...chunk);
  }
  return items;
}

/** Items with their bodies as text, for comparing. */
const readable = (items: SnapshotItem[]) =>
  items.map((item) => ('body' in item ? { ...item, body: item.body.toString() } : item));

/** Routers, an hdd queue with settings and a dead-letter-less kept list, a memory queue, bindings. */
async function define(broker: Broker): Promise<void> {
  await broker.createRouter('orders', 'topic');
  await broker.createRouter('audit', 'fanout');
  await broker.createQueue('work', 'hdd', { ackTimeoutMs: 5000, maxDeliveries: 5, ttlMs: 0 });
  await broker.createQueue('scratch', 'memory');
  await broker.bind('work', 'orders', 'order.*');
  await broker.bind('scratch', 'audit', '');
}

t.test('a snapshot holds definitions, hdd messages with deliveries and due times, and dead letters', async (t) => {
  const { broker, clock } = await openBroker(t);
  await define(broker);
  const start = clock.now;
  await broker.publish('orders', 'order.new', 'first');
  await broker.publish('orders', 'order.new', 'second', { id: 'dedup-2' });
  await broker.publish('orders', 'order.late', 'delayed', { delayMs: 60_000, ttlMs: 120_000 });
  await broker.publish('orders', 'order.new', 'doomed');
  await broker.publish('audit', '', 'memory messages are not backed up');
  const s = broker.openSession();
  const [first] = await broker.fetch(s, 'work');
  await broker.nack('work', first?.id as string);
  await broker.fetch(s, 'work', 2); // first again (deliveries 2) and second (1): leased at the snapshot
  const doomed = await broker.fetch(s, 'work');
  await broker.nack('work', doomed[0]?.id as string, 'drop');
  await broker.settled();

  const snapshot = broker.snapshot();
  // What happens after the snapshot is not in it.
  await broker.publish('orders', 'order.new', 'after');
  await broker.createRouter('later', 'direct');
  await broker.purgeDead('work');

  const items = readable(await drain(snapshot));
  t.same(items.slice(0, 6), [
    { kind: 'router', name: 'audit', routerKind: 'fanout' },
    { kind: 'router', name: 'orders', routerKind: 'topic' },
    { kind: 'queue', name: 'scratch', type: 'memory', settings: queueDefaults },
    {
      kind: 'queue',
      name: 'work',
      type: 'hdd',
      settings: { ...queueDefaults, ackTimeoutMs: 5000, maxDeliveries: 5 },
    },
    // In the store's key order: by the length of the queue's name first.
    { kind: 'binding', queue: 'work', router: 'orders', bindingKey: 'order.*' },
    { kind: 'binding', queue: 'scratch', router: 'audit', bindingKey: '' },
  ]);
  t.same(items.slice(6), [
    {
      kind: 'message',
      queue: 'work',
      routingKey: 'order.new',
      body: 'first',
      deliveries: 2,
      readyAt: 0,
      expiresAt: 0,
      dedupId: '',
    },
    {
      kind: 'message',
      queue: 'work',
      routingKey: 'order.new',
      body: 'second',
      deliveries: 1,
      readyAt: 0,
      expiresAt: 0,
      dedupId: 'dedup-2',
    },
    {
      kind: 'message',
      queue: 'work',
      routingKey: 'order.late',
      body: 'delayed',
      deliveries: 0,
      readyAt: start + 60_000,
      expiresAt: start + 120_000,
      dedupId: '',
    },
    {
      kind: 'dead',
      queue: 'work',
      routingKey: 'order.new',
      body: 'doomed',
      reason: 'rejected',
      source: 'work',
      deliveries: 1,
    },
  ]);
  t.equal(snapshot.closed, true, 'read to the end, it is closed');
});

t.test('messages come in steps bounded by count and bytes; expired ones are skipped', async (t) => {
  const { broker, clock } = await openBroker(t);
  await broker.createRouter('r', 'direct');
  await broker.createQueue('q', 'hdd');
  await broker.bind('q', 'r', 'k');
  for (let i = 0; i < 5; i++) await broker.publish('r', 'k', Buffer.alloc(3000, 97 + i));
  await broker.publish('r', 'k', 'short-lived', { ttlMs: 1000 });
  const snapshot = broker.snapshot();
  clock.now += 1001;
  t.equal((await snapshot.definitions(100)).length, 3);
  const steps: number[] = [];
  for (let chunk = await snapshot.messages(100, 5000); chunk.length > 0; chunk = await snapshot.messages(100, 5000)) {
    steps.push(chunk.length);
  }
  t.same(steps, [2, 2, 1], 'two 3000-byte bodies reach a 5000-byte budget; the expired one is left out');
});

t.test('restored records come back as they were, under new ids', async (t) => {
  const source = await openBroker(t);
  await define(source.broker);
  await source.broker.publish('orders', 'order.new', 'once', { id: 'x-1' });
  await source.broker.publish('orders', 'order.new', 'twice');
  await source.broker.publish('orders', 'order.late', 'later', { delayMs: 10_000 });
  const s = source.broker.openSession();
  const taken = await source.broker.fetch(s, 'work', 2);
  await source.broker.nack('work', taken[1]?.id as string, 'drop');
  await source.broker.settled();
  const items = await drain(source.broker.snapshot());

  const target = await openBroker(t);
  const { broker, clock } = target;
  clock.now = source.clock.now;
  for (const item of items) {
    if (item.kind === 'router') await broker.createRouter(item.name, item.routerKind);
    else if (item.kind === 'queue') await broker.createQueue(item.name, item.type, item.settings);
    else if (item.kind === 'binding') await broker.bind(item.queue, item.router, item.bindingKey);
    else if (item.kind === 'message') t.equal(await broker.restoreMessage(item.queue, item), true);
    else t.equal(await broker.restoreDead(item.queue, item), true);
  }
  t.match(broker.getQueue('work'), { ready: 1, delayed: 1, dead: 1, maxDeliveries: 5, ackTimeoutMs: 5000 });
  t.same(broker.getRouter('orders').bindings, [{ queue: 'work', bindingKey: 'order.*' }]);

  // A restart reads what the restore stored.
  const restarted = await target.reopen();
  const r = restarted.openSession();
  const [once] = await restarted.fetch(r, 'work');
  t.same(
    [once?.message.toString(), once?.deliveries],
    ['once', 2],
    'leased at the backup: ready again, its delivery kept',
  );
  t.same(await restarted.fetch(r, 'work'), [], 'the delayed one waits');
  t.equal(await restarted.ack('work', [once?.id as string]), 1);
  clock.now += 10_001;
  restarted.tick();
  t.same(texts(await restarted.fetch(r, 'work')), ['later']);
  t.match(await restarted.deadLetters('work'), [
    { routingKey: 'order.new', deliveries: 1, death: { reason: 'rejected', queue: 'work', deliveries: 1 } },
  ]);
  t.equal((await restarted.deadLetters('work'))[0]?.message.toString(), 'twice');
  t.equal(await restarted.publish('orders', 'order.new', 'dup', { id: 'x-1' }), 1);
  t.equal(restarted.getQueue('work').ready, 0, 'a restored de-duplication id is remembered');

  t.equal(
    await restarted.restoreMessage('work', {
      routingKey: 'k',
      body: Buffer.from('stale'),
      deliveries: 0,
      readyAt: 0,
      expiresAt: clock.now - 1,
      dedupId: '',
    }),
    false,
    'an expired message is skipped',
  );
  const good = { routingKey: 'k', body: Buffer.alloc(0), deliveries: 0, readyAt: 0, expiresAt: 0, dedupId: '' };
  t.equal(await codeOf(() => restarted.restoreMessage('nope', good)), 'QUEUE_NOT_FOUND');
  t.equal(await codeOf(() => restarted.restoreMessage('work', { ...good, deliveries: -1 })), 'ARGUMENT_INVALID');
  t.equal(await codeOf(() => restarted.restoreMessage('work', { ...good, readyAt: 1.5 })), 'ARGUMENT_INVALID');
  const dead = { routingKey: 'k', body: Buffer.alloc(0), reason: 'rejected', source: 'work', deliveries: 1 };
  t.equal(await codeOf(() => restarted.restoreDead('work', { ...dead, reason: 'bored' })), 'ARGUMENT_INVALID');
  t.equal(await codeOf(() => restarted.restoreDead('work', { ...dead, source: 'bad name' })), 'NAME_INVALID');
  t.equal(await codeOf(() => restarted.createQueue('work', 'hdd', { maxDeliveries: 6 })), 'QUEUE_EXISTS');
  t.equal(await codeOf(() => restarted.createRouter('orders', 'direct')), 'ROUTER_EXISTS');
});

t.test('a broker without a data directory snapshots its definitions', async (t) => {
  const { broker } = await openBroker(t, { dataDir: undefined });
  await broker.createRouter('r', 'direct');
  await broker.createQueue('q', 'memory');
  await broker.bind('q', 'r', 'k');
  await broker.publish('r', 'k', 'not backed up');
  const snapshot = broker.snapshot();
  await broker.createQueue('q2', 'memory');
  t.same(
    (await drain(snapshot)).map((item) => item.kind),
    ['router', 'queue', 'binding'],
  );
});
