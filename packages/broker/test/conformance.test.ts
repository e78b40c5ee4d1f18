// The delivery behaviour every queue type shares (the abstract-level way): each area runs on a
// memory queue (a broker without a data directory) and on an hdd queue, with a fake clock and
// `tick()` instead of timers. Areas that need persistence are in restart.test.ts.
import t, { type Test } from 'tap';
import { type Broker, DeadReason, type QueueOptions } from '../src/index.js';
import {
  codeOf,
  type Env,
  openBroker,
  pushSession,
  queueTypes,
  settle,
  texts,
  until,
  withQueue,
} from './common/harness.js';

const ACK_TIMEOUT = 1000;

for (const { type, supports } of queueTypes) {
  /** A broker (with a data directory only when the type needs one) and queue `q` on router `r`. */
  const area = (
    name: string,
    options: QueueOptions,
    body: (t: Test, env: Env, publish: Awaited<ReturnType<typeof withQueue>>) => Promise<void>,
  ) => {
    t.test(`${type}: ${name}`, async (t) => {
      const env = await openBroker(t, supports.persistence ? {} : { dataDir: undefined });
      const publish = await withQueue(env.broker, type, { ackTimeoutMs: ACK_TIMEOUT, ...options });
      await body(t, env, publish);
    });
  };

  area('a queue delivers in publish order, each message once, with counters', {}, async (t, { broker }, publish) => {
    t.equal(await publish('a'), 1, 'PUBLISH reports the one queue it reached');
    await publish('b');
    await publish('c');
    const s = broker.openSession();
    const first = await broker.fetch(s, 'q', 2);
    t.same(texts(first), ['a', 'b']);
    t.same(
      first.map((d) => [d.deliveries, d.routingKey, d.death]),
      [
        [1, 'k', undefined],
        [1, 'k', undefined],
      ],
    );
    t.ok(Number(first[0]?.id) < Number(first[1]?.id), 'ids grow with publish order');
    t.match(broker.getQueue('q'), {
      ready: 1,
      leased: 2,
      delayed: 0,
      dead: 0,
      published: 3,
      delivered: 2,
      redelivered: 0,
    });
    t.same(texts(await broker.fetch(s, 'q', 10)), ['c'], 'FETCH returns what there is, up to count');
    t.same(await broker.fetch(s, 'q', 10), [], 'an empty queue gives an empty FETCH');
  });

  area('ACK ends a lease for good; unknown, settled and garbage ids count 0', {}, async (t, env, publish) => {
    const { broker, clock } = env;
    for (const text of ['a', 'b', 'c']) await publish(text);
    const s = broker.openSession();
    const [a, b] = await broker.fetch(s, 'q', 2);
    const other = broker.openSession();
    t.equal(await broker.ack('q', [a?.id as string, b?.id as string]), 2, 'ACK from another session works');
    t.equal(await broker.ack('q', [a?.id as string]), 0, 'a second ACK counts 0');
    t.equal(await broker.ack('q', ['', 'x', '0', '-1', '01', '1e2', '1.0', ' 3', '999999', '9'.repeat(30)]), 0);
    broker.closeSession(other);
    clock.now += 10 * ACK_TIMEOUT;
    broker.tick();
    t.same(texts(await broker.fetch(s, 'q', 10)), ['c'], 'acknowledged messages never come back');
    t.match(broker.getQueue('q'), { acked: 2, leased: 1, ready: 0 });
  });

  area(
    'NACK REQUEUE: the message comes back ahead of newer ones, its count raised',
    {},
    async (t, { broker }, publish) => {
      for (const text of ['a', 'b', 'c']) await publish(text);
      const s = broker.openSession();
      const [a, b] = await broker.fetch(s, 'q', 2);
      t.equal(await broker.nack('q', b?.id as string), 1);
      t.equal(await broker.nack('q', a?.id as string, 'requeue'), 1);
      t.equal(await broker.nack('q', a?.id as string), 0, 'a NACK of what is not leased counts 0');
      t.equal(await broker.nack('q', 'nonsense'), 0);
      const again = await broker.fetch(s, 'q', 3);
      t.same(texts(again), ['a', 'b', 'c'], 'returned messages first, oldest first');
      t.same(
        again.map((d) => d.deliveries),
        [2, 2, 1],
      );
      t.same(
        again.map((d) => d.id),
        [a?.id, b?.id, again[2]?.id],
        'a message keeps its id when redelivered',
      );
      t.match(broker.getQueue('q'), { delivered: 5, redelivered: 2, leased: 3 });
    },
  );

  area('a lease ends at the ack timeout, and TOUCH extends it from now', {}, async (t, { broker, clock }, publish) => {
    await publish('a');
    await publish('b');
    const s = broker.openSession();
    const [a, b] = await broker.fetch(s, 'q', 2);
    clock.now += ACK_TIMEOUT - 1;
    broker.tick();
    t.equal(broker.getQueue('q').leased, 2, 'still leased 1 ms before the timeout');
    t.equal(broker.touch('q', b?.id as string), true, 'TOUCH of a leased message');
    t.equal(broker.touch('q', 'nope'), false);
    t.equal(broker.touch('q', '12345'), false);
    clock.now += 1;
    broker.tick();
    t.match(broker.getQueue('q'), { leased: 1, ready: 1 }, 'the untouched lease ended at the timeout');
    clock.now += ACK_TIMEOUT - 2;
    broker.tick();
    t.equal(broker.getQueue('q').leased, 1, 'the touched one lasts an ack timeout from the TOUCH');
    t.equal(broker.touch('q', a?.id as string), false, 'a lease that ended cannot be touched');
    clock.now += 1;
    broker.tick();
    t.match(broker.getQueue('q'), { leased: 0, ready: 2 });
    const again = await broker.fetch(s, 'q', 5);
    t.same(texts(again), ['a', 'b']);
    t.same(
      again.map((d) => d.deliveries),
      [2, 2],
    );
    t.equal(await broker.ack('q', [a?.id as string]), 1, 'the new lease can be acknowledged under the same id');
  });

  area(
    'closing a session gives back what it leased; its FETCH and CONSUME are refused',
    {},
    async (t, { broker }, publish) => {
      for (const text of ['a', 'b', 'c']) await publish(text);
      const s1 = broker.openSession();
      const s2 = broker.openSession();
      const [a] = await broker.fetch(s1, 'q', 1);
      const [b] = await broker.fetch(s2, 'q', 1);
      broker.closeSession(s1);
      broker.closeSession(s1);
      t.match(broker.getQueue('q'), { leased: 1, ready: 2 }, "only the closed session's lease ended");
      t.equal(await codeOf(() => broker.fetch(s1, 'q')), 'BROKER_CLOSED');
      t.equal(await codeOf(() => broker.consume(s1, 'q')), 'BROKER_CLOSED');
      const next = await broker.fetch(s2, 'q', 5);
      t.same(texts(next), ['a', 'c']);
      t.same(
        next.map((d) => d.deliveries),
        [2, 1],
      );
      t.equal(await broker.ack('q', [a?.id as string, b?.id as string]), 2);
    },
  );

  area(
    'MAXDELIVERIES: the n-th delivery ending without ACK dead-letters the message',
    { maxDeliveries: 3 },
    async (t, env, publish) => {
      const { broker, clock } = env;
      await publish('nacked');
      await publish('expired');
      await publish('closed');
      const s = broker.openSession();
      // Each delivery ends another way: NACK, ack timeout, session closing.
      let session = s;
      for (let round = 1; round <= 3; round++) {
        const got = await broker.fetch(session, 'q', 3);
        t.same(
          got.map((d) => d.deliveries),
          [round, round, round],
          `delivery ${round}`,
        );
        await broker.nack('q', got[0]?.id as string);
        await broker.touch('q', got[2]?.id as string);
        clock.now += ACK_TIMEOUT - 1;
        await broker.touch('q', got[2]?.id as string);
        clock.now += 1;
        broker.tick();
        broker.closeSession(session);
        session = broker.openSession();
      }
      await broker.settled();
      t.match(broker.getQueue('q'), { ready: 0, leased: 0, dead: 3, deadLettered: 3 });
      const dead = await broker.deadLetters('q', 10);
      t.same(dead.map((d) => [d.message.toString(), d.death, d.deliveries]).sort(), [
        ['closed', { reason: DeadReason.deliveryLimit, queue: 'q', deliveries: 3 }, 3],
        ['expired', { reason: DeadReason.deliveryLimit, queue: 'q', deliveries: 3 }, 3],
        ['nacked', { reason: DeadReason.deliveryLimit, queue: 'q', deliveries: 3 }, 3],
      ]);
    },
  );

  area('NACK DROP dead-letters as rejected', {}, async (t, { broker }, publish) => {
    await publish('a');
    const s = broker.openSession();
    const [a] = await broker.fetch(s, 'q');
    t.equal(await broker.nack('q', a?.id as string, 'drop'), 1);
    t.match(broker.getQueue('q'), { ready: 0, leased: 0, dead: 1, deadLettered: 1 });
    const [dead] = await broker.deadLetters('q');
    t.same(dead?.death, { reason: 'rejected', queue: 'q', deliveries: 1 });
    t.equal(dead?.message.toString(), 'a');
    t.equal(dead?.routingKey, 'k');
  });

  area('message and queue ttls dead-letter as expired, waiting or leased', { ttlMs: 5000 }, async (t, env, publish) => {
    const { broker, clock } = env;
    await publish('short', { ttlMs: 1000 });
    await publish('queue-ttl');
    await publish('longer-than-queue', { ttlMs: 60_000 });
    clock.now += 999;
    broker.tick();
    t.equal(broker.getQueue('q').ready, 3, 'nothing expired 1 ms before');
    clock.now += 1;
    broker.tick();
    await broker.settled();
    t.match(broker.getQueue('q'), { ready: 2, dead: 1 }, 'the message ttl ran out');
    const s = broker.openSession();
    const got = await broker.fetch(s, 'q', 2);
    t.same(texts(got), ['queue-ttl', 'longer-than-queue']);
    clock.now += 4000;
    await broker.nack('q', got[0]?.id as string);
    t.equal(broker.getQueue('q').dead, 2, 'a lease that ends past the ttl dead-letters, not requeues');
    broker.tick();
    await broker.settled();
    t.match(broker.getQueue('q'), { leased: 0, ready: 0, dead: 3 }, 'the queue ttl caps a longer message ttl');
    t.same(
      (await broker.deadLetters('q')).map((d) => [d.message.toString(), d.death.reason]),
      [
        ['short', 'expired'],
        ['queue-ttl', 'expired'],
        ['longer-than-queue', 'expired'],
      ],
    );
    t.equal(await broker.ack('q', [got[1]?.id as string]), 0, 'an expired message cannot be acknowledged');
  });

  area('a message with a ttl behind an older one expires before it is delivered', {}, async (t, env, publish) => {
    const { broker, clock } = env;
    await publish('old');
    await publish('brief', { ttlMs: 10 });
    await publish('new');
    clock.now += 10;
    broker.tick();
    const s = broker.openSession();
    t.same(texts(await broker.fetch(s, 'q', 3)), ['old', 'new'], 'an expired message is not delivered');
    await broker.settled();
    t.equal(broker.getQueue('q').dead, 1);
    t.equal((await broker.deadLetters('q'))[0]?.death.reason, 'expired');
  });

  area('a delayed message is not delivered before its time, and holds up nothing', {}, async (t, env, publish) => {
    const { broker, clock } = env;
    await publish('later', { delayMs: 1000 });
    await publish('now');
    t.match(broker.getQueue('q'), { ready: 1, delayed: 1 });
    const s = broker.openSession();
    t.same(texts(await broker.fetch(s, 'q', 5)), ['now']);
    clock.now += 999;
    broker.tick();
    t.same(await broker.fetch(s, 'q', 5), [], 'not 1 ms early');
    clock.now += 1;
    t.same(texts(await broker.fetch(s, 'q', 5)), ['later'], 'FETCH sees it due without a tick');
    t.match(broker.getQueue('q'), { ready: 0, delayed: 0, leased: 2 });
  });

  area(
    'a de-duplication id keeps a message out of the queue within the window',
    { dedupWindowMs: 1000 },
    async (t, env, publish) => {
      const { broker, clock } = env;
      t.equal(await publish('first', { id: 'order-1' }), 1);
      t.equal(await publish('again', { id: 'order-1' }), 1, 'a duplicate still counts as reaching the queue');
      t.equal(await publish('other', { id: 'order-2' }), 1);
      t.match(broker.getQueue('q'), { ready: 2, published: 2 });
      clock.now += 1000;
      t.equal(await publish('after the window', { id: 'order-1' }), 1);
      const s = broker.openSession();
      t.same(texts(await broker.fetch(s, 'q', 5)), ['first', 'other', 'after the window']);
    },
  );

  area(
    'MAXLENGTH with OVERFLOW reject: QUEUE_FULL, and nothing stored in any queue',
    { maxLength: 2 },
    async (t, { broker }, publish) => {
      await broker.createQueue('side', type);
      await broker.bind('side', 'r', 'k');
      await publish('a');
      await publish('b');
      t.equal(await codeOf(() => publish('c')), 'QUEUE_FULL');
      t.match(broker.getQueue('q'), { ready: 2, published: 2 });
      t.match(broker.getQueue('side'), { ready: 2, published: 2 }, 'the other queue did not take it either');
      const s = broker.openSession();
      await broker.fetch(s, 'q', 1);
      t.equal(await publish('c'), 2, 'leased messages do not count towards MAXLENGTH');
      t.equal(await codeOf(() => publish('d')), 'QUEUE_FULL');
      t.same(texts(await broker.fetch(s, 'side', 5)), ['a', 'b', 'c']);
    },
  );

  area('MAXLENGTH holds for PUBLISHes that are under way at once', { maxLength: 3 }, async (t, { broker }, publish) => {
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => publish(`m${i}`)));
    t.same(
      results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as { code: string }).code)),
      [1, 1, 1, 'QUEUE_FULL', 'QUEUE_FULL', 'QUEUE_FULL'],
    );
    t.equal(broker.getQueue('q').ready, 3);
  });

  area(
    'MAXLENGTH with OVERFLOW drop-head dead-letters the oldest as overflow',
    { maxLength: 2, overflow: 'drop-head' },
    async (t, { broker }, publish) => {
      for (const text of ['a', 'b', 'c', 'd']) t.equal(await publish(text), 1);
      await broker.settled();
      t.match(broker.getQueue('q'), { ready: 2, dead: 2, deadLettered: 2 });
      const s = broker.openSession();
      t.same(texts(await broker.fetch(s, 'q', 5)), ['c', 'd']);
      t.same(
        (await broker.deadLetters('q')).map((d) => [d.message.toString(), d.death.reason, d.death.deliveries]),
        [
          ['a', 'overflow', 0],
          ['b', 'overflow', 0],
        ],
      );
    },
  );

  area('a dead-letter router takes dead letters, with their death', {}, async (t, { broker }, publish) => {
    await broker.createRouter('dlx', 'topic');
    await broker.createQueue('dlq', type);
    await broker.bind('dlq', 'dlx', '#');
    await broker.createQueue('src', type, { deadLetter: 'dlx', maxDeliveries: 1 });
    await broker.bind('src', 'r', 'k');
    await publish('poison');
    const s = broker.openSession();
    const [fromSrc] = await broker.fetch(s, 'src');
    await broker.nack('src', fromSrc?.id as string);
    await broker.settled();
    t.match(broker.getQueue('src'), { ready: 0, dead: 0, deadLettered: 1 });
    const [dead] = await broker.fetch(s, 'dlq');
    t.equal(dead?.message.toString(), 'poison');
    t.equal(dead?.routingKey, 'k', 'the routing key is kept');
    t.equal(dead?.deliveries, 1, 'a dead letter starts its own delivery count');
    t.same(dead?.death, { reason: 'delivery-limit', queue: 'src', deliveries: 1 });
    t.match(broker.getQueue('dlq'), { published: 1 });
  });

  area(
    'dead letters stay in their queue when the router routes them nowhere, back, or to a full queue',
    {},
    async (t, { broker }) => {
      await broker.createRouter('nowhere', 'direct');
      await broker.createRouter('back', 'fanout');
      await broker.createRouter('full', 'fanout');
      await broker.createQueue('q-nowhere', type, { deadLetter: 'nowhere' });
      await broker.createQueue('q-back', type, { deadLetter: 'back' });
      await broker.createQueue('q-full', type, { deadLetter: 'full' });
      await broker.createRouter('gone', 'fanout');
      await broker.createQueue('q-gone', type, { deadLetter: 'gone' });
      await broker.createQueue('tiny', type, { maxLength: 1 });
      await broker.bind('q-back', 'back', '');
      await broker.bind('tiny', 'full', '');
      await broker.createQueue('sink', type);
      await broker.bind('sink', 'gone', '');
      await broker.deleteRouter('gone');
      await broker.createRouter('in', 'fanout');
      await broker.createRouter('tiny-in', 'direct');
      await broker.bind('tiny', 'tiny-in', 'x');
      await broker.publish('tiny-in', 'x', 'filler');
      for (const name of ['q-nowhere', 'q-back', 'q-full', 'q-gone']) await broker.bind(name, 'in', '');
      t.equal(await broker.publish('in', 'any', 'm'), 4);
      const s = broker.openSession();
      for (const name of ['q-nowhere', 'q-back', 'q-full', 'q-gone']) {
        const [m] = await broker.fetch(s, name);
        t.equal(await broker.nack(name, m?.id as string, 'drop'), 1);
      }
      await broker.settled();
      for (const name of ['q-nowhere', 'q-back', 'q-full', 'q-gone']) {
        t.match(broker.getQueue(name), { ready: 0, dead: 1 }, `${name} kept its dead letter`);
        t.same((await broker.deadLetters(name))[0]?.death, { reason: 'rejected', queue: name, deliveries: 1 });
      }
      t.match(broker.getQueue('tiny'), { ready: 1, dead: 0 }, 'the full queue took nothing');
      t.match(broker.getQueue('sink'), { ready: 0 });
    },
  );

  area('DEADLETTERS shows, REPLAY moves back, PURGE deletes kept dead letters', {}, async (t, { broker }, publish) => {
    for (const text of ['a', 'b', 'c', 'd']) await publish(text);
    const s = broker.openSession();
    for (const m of await broker.fetch(s, 'q', 4)) await broker.nack('q', m.id, 'drop');
    t.same(texts(await broker.deadLetters('q', 2)), ['a', 'b'], 'the oldest first, up to count');
    t.same(texts(await broker.deadLetters('q', 10)), ['a', 'b', 'c', 'd']);
    t.equal(await broker.replayDead('q', 2), 2);
    t.match(broker.getQueue('q'), { ready: 2, dead: 2 });
    const replayed = await broker.fetch(s, 'q', 5);
    t.same(texts(replayed), ['a', 'b']);
    t.same(
      replayed.map((d) => [d.deliveries, d.death]),
      [
        [1, undefined],
        [1, undefined],
      ],
      'replayed messages are new: no death, counted from 1',
    );
    t.equal(await broker.purgeDead('q'), 2);
    t.equal(await broker.purgeDead('q'), 0);
    t.equal(await broker.replayDead('q'), 0);
    t.same(await broker.deadLetters('q'), []);
    t.match(broker.getQueue('q'), { dead: 0, leased: 2 });
  });

  area('FLUSH removes waiting messages, not leased ones', {}, async (t, { broker }, publish) => {
    for (const text of ['a', 'b', 'c']) await publish(text);
    await publish('d', { delayMs: 100 });
    const s = broker.openSession();
    const [a] = await broker.fetch(s, 'q');
    t.equal(await broker.flush('q'), 3);
    t.match(broker.getQueue('q'), { ready: 0, delayed: 0, leased: 1 });
    t.equal(await broker.ack('q', [a?.id as string]), 1);
  });

  area('a waiting FETCH gets a message published later, or [] at its timeout', {}, async (t, { broker }, publish) => {
    const s = broker.openSession();
    const waiting = broker.fetch(s, 'q', 3, 10_000);
    t.ok(waiting instanceof Promise, 'it waits');
    await publish('a');
    await publish('b');
    const got = await waiting;
    t.ok(got.length >= 1 && got.length <= 2, 'it took what was there when it woke');
    const rest = await broker.fetch(s, 'q', 3);
    t.same(texts([...got, ...rest]), ['a', 'b']);
    const started = Date.now();
    t.same(await broker.fetch(s, 'q', 1, 30), [], 'nothing came: [] at the timeout');
    t.ok(Date.now() - started >= 25, 'after about the wait');
    const ended = broker.fetch(s, 'q', 1, 10_000);
    broker.closeSession(s);
    t.same(await ended, [], 'closing the session ends the wait with []');
  });

  area('a waiting FETCH is woken by a delayed message falling due, and by a NACK', {}, async (t, env, publish) => {
    const { broker, clock } = env;
    const s = broker.openSession();
    await publish('delayed', { delayMs: 500 });
    const waiting = broker.fetch(s, 'q', 1, 10_000);
    clock.now += 500;
    broker.tick();
    const [m] = await waiting;
    t.equal(m?.message.toString(), 'delayed');
    const again = broker.fetch(s, 'q', 1, 10_000);
    await broker.nack('q', m?.id as string);
    t.same(
      (await again).map((d) => [d.message.toString(), d.deliveries]),
      [['delayed', 2]],
    );
  });

  area(
    'CONSUME pushes while the consumer holds fewer than prefetch unacknowledged',
    {},
    async (t, { broker }, publish) => {
      const c = pushSession(broker);
      const tag = broker.consume(c.session, 'q', 2);
      for (const text of ['a', 'b', 'c', 'd', 'e']) await publish(text);
      await until('two pushed', () => c.all.length === 2);
      await settle();
      t.same(c.of(tag), ['a', 'b'], 'no more than prefetch');
      t.match(broker.getQueue('q'), { leased: 2, ready: 3, consumers: 1 });
      await broker.ack('q', [c.all[0]?.delivery.id as string]);
      await until('a third pushed', () => c.all.length === 3);
      await broker.nack('q', c.all[1]?.delivery.id as string);
      await until('a fourth pushed', () => c.all.length === 4);
      await settle();
      t.same(c.of(tag), ['a', 'b', 'c', 'b'], 'the ACK made room for c, the NACK gave b back');
      t.same(
        c.all.map((p) => [p.queue, p.delivery.deliveries]),
        [
          ['q', 1],
          ['q', 1],
          ['q', 1],
          ['q', 2],
        ],
      );
      t.equal(broker.cancel(c.session, tag), true);
      t.equal(broker.cancel(c.session, tag), false, 'a consumer is cancelled once');
      await broker.ack(
        'q',
        c.all.map((p) => p.delivery.id),
      );
      await publish('f');
      await settle();
      t.equal(c.all.length, 4, 'a cancelled consumer gets nothing more');
      t.match(broker.getQueue('q'), { consumers: 0, ready: 3, leased: 0 });
    },
  );

  area(
    'consumers share a queue round-robin; without prefetch there is no limit',
    {},
    async (t, { broker }, publish) => {
      const c1 = pushSession(broker);
      const c2 = pushSession(broker);
      const t1 = broker.consume(c1.session, 'q');
      const t2 = broker.consume(c2.session, 'q');
      t.equal(t1, t2, 'tags are per session');
      for (let i = 0; i < 6; i++) await publish(`m${i}`);
      await until('all pushed', () => c1.all.length + c2.all.length === 6);
      t.same(c1.of(t1), ['m0', 'm2', 'm4']);
      t.same(c2.of(t2), ['m1', 'm3', 'm5']);
      t.equal(broker.getQueue('q').consumers, 2);
      broker.closeSession(c1.session);
      await until('c2 got what c1 held', () => c2.all.length === 6);
      t.same(c2.of(t2).slice(3), ['m0', 'm2', 'm4']);
      t.same(
        c2.all.slice(3).map((p) => p.delivery.deliveries),
        [2, 2, 2],
      );
      t.equal(broker.getQueue('q').consumers, 1);
    },
  );

  area(
    'a message published while consumers are busy waits, then goes to the first with room',
    {},
    async (t, { broker }, publish) => {
      const c = pushSession(broker);
      const tag = broker.consume(c.session, 'q', 1);
      t.not(broker.consume(c.session, 'q', 1), tag, 'each CONSUME gets its own tag');
      await publish('a');
      await publish('b');
      await publish('c');
      await until('two pushed', () => c.all.length === 2);
      await settle();
      t.equal(c.all.length, 2, 'each consumer holds one');
      await broker.ack('q', [c.all[1]?.delivery.id as string]);
      await until('the third pushed', () => c.all.length === 3);
      t.equal(c.all[2]?.tag, c.all[1]?.tag, 'to the consumer whose ack made room');
    },
  );

  area(
    'a consumer cancelled while its delivery is under way gets nothing, and the message is not lost',
    {},
    async (t, { broker }, publish) => {
      const c = pushSession(broker);
      const tag = broker.consume(c.session, 'q');
      await publish('a');
      // The dispatch runs at the end of this turn; an hdd delivery then waits for its count to be stored.
      await Promise.resolve();
      broker.cancel(c.session, tag);
      await settle();
      await broker.settled();
      const { ready, leased } = broker.getQueue('q');
      t.equal(leased, c.all.length, 'leased only if it was pushed');
      t.equal(ready + leased, 1, 'and otherwise ready again');
      const s = broker.openSession();
      const got = await broker.fetch(s, 'q');
      t.same(
        got.map((d) => d.deliveries),
        ready === 1 ? [1] : [],
        'a delivery that never reached the consumer does not count',
      );
    },
  );

  area('payloads of any size come back byte for byte', {}, async (t, { broker }, publish) => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 7);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const binary = Buffer.from([0, 0x80, 0xff, 0xc3, 0x28, 10, 13]);
    await publish('');
    await broker.publish('r', 'k', binary);
    await broker.publish('r', 'k', big);
    await broker.publish('r', 'k', 'héllo → 世界');
    const s = broker.openSession();
    const got = await broker.fetch(s, 'q', 4);
    t.same(got[0]?.message, Buffer.alloc(0));
    t.same(got[1]?.message, binary);
    t.ok(got[2]?.message.equals(big), 'a 3 MiB payload');
    t.equal(got[3]?.message.toString(), 'héllo → 世界');
    t.ok(got.every((d) => Buffer.isBuffer(d.message)));
  });

  area('counters in STATS add up over queues', {}, async (t, { broker }, publish) => {
    await broker.createQueue('q2', type);
    await broker.bind('q2', 'r', 'k');
    t.equal(await publish('a'), 2);
    t.equal(await broker.publish('r', 'unbound', 'x'), 0, 'a message routed nowhere reaches 0 queues');
    const s = broker.openSession();
    const [m] = await broker.fetch(s, 'q');
    await broker.nack('q', m?.id as string);
    const [m2] = await broker.fetch(s, 'q');
    await broker.ack('q', [m2?.id as string]);
    const [n] = await broker.fetch(s, 'q2');
    await broker.nack('q2', n?.id as string, 'drop');
    await broker.settled();
    const stats = broker.stats();
    t.match(stats, { routers: 1, queues: 2, published: 2, delivered: 3, redelivered: 1, acked: 1, deadLettered: 1 });
    t.same(stats.perQueue, {
      q: {
        ...{ ready: 0, leased: 0, delayed: 0, dead: 0, consumers: 0 },
        ...{ published: 1, delivered: 2, redelivered: 1, acked: 1, deadLettered: 0 },
      },
      q2: {
        ...{ ready: 0, leased: 0, delayed: 0, dead: 1, consumers: 0 },
        ...{ published: 1, delivered: 1, redelivered: 0, acked: 0, deadLettered: 1 },
      },
    });
  });

  area('DELETEQUEUE ends waits and consumers and forgets the queue', {}, async (t, { broker }, publish) => {
    await publish('a');
    const c = pushSession(broker);
    broker.consume(c.session, 'q');
    await until('the consumer has a', () => c.all.length === 1);
    const s = broker.openSession();
    const waiting = broker.fetch(s, 'q', 1, 10_000);
    t.equal(await broker.deleteQueue('q'), true);
    t.equal(await broker.deleteQueue('q'), false);
    t.same(await waiting, [], 'a waiting FETCH ends with []');
    t.equal(broker.stats().perQueue.q, undefined, 'its consumer went with it');
    t.equal(await codeOf(() => broker.getQueue('q')), 'QUEUE_NOT_FOUND');
    t.equal(await broker.publish('r', 'k', 'b'), 0, 'the binding went with the queue');
    t.same(broker.getRouter('r').bindings, []);
    await broker.createQueue('q', type);
    t.match(broker.getQueue('q'), { ready: 0, leased: 0, dead: 0 }, 'a new queue of the old name starts empty');
  });
}

t.test('every queue type answers in a fresh broker the same (sync for memory, promise for hdd)', async (t) => {
  const { broker } = await openBroker(t);
  await broker.createRouter('r', 'fanout');
  await broker.createQueue('m', 'memory');
  await broker.createQueue('h', 'hdd');
  await broker.bind('m', 'r', '');
  const memoryOnly = broker.publish('r', '', 'x');
  t.ok(memoryOnly instanceof Promise === false, 'a PUBLISH reaching memory queues only is answered at once');
  await broker.bind('h', 'r', '');
  const both = broker.publish('r', '', 'y');
  t.ok(both instanceof Promise, 'one reaching an hdd queue waits for the store');
  t.equal(await both, 2);
  const s = broker.openSession();
  t.same(texts(broker.fetch(s, 'm', 5) as Awaited<ReturnType<Broker['fetch']>>), ['x', 'y']);
  t.same(texts(await broker.fetch(s, 'h', 5)), ['y']);
});

t.test('with real timers, leases run out and delayed messages fall due without tick()', async (t) => {
  const { broker } = await openBroker(t, { clock: Date.now, timers: true });
  await withQueue(broker, 'hdd', { ackTimeoutMs: 40 });
  const s = broker.openSession();
  await broker.publish('r', 'k', 'leased');
  const leasedAt = Date.now();
  await broker.fetch(s, 'q');
  await broker.publish('r', 'k', 'delayed', { delayMs: 60 });
  const first = await broker.fetch(s, 'q', 1, 5000);
  t.same(
    first.map((d) => [d.message.toString(), d.deliveries]),
    [['leased', 2]],
    'the lease ran out, and a waiting FETCH got the message again',
  );
  t.ok(Date.now() - leasedAt >= 35, 'not before the ack timeout');
  t.same(texts(await broker.fetch(s, 'q', 1, 5000)), ['delayed']);
});
