// The broker's typed methods against a real server, on memory and hdd queues, over TCP (RESP3
// and RESP2), a UNIX socket and JSON-RPC: every method, binary messages, dead letters, errors.
import t from 'tap';
import { createClient, createRpcClient, type Delivery } from '../src/index.js';
import { clientsOf, codeOf, startServer } from './common/harness.js';

/** Deliveries with their messages as text, for comparing. */
const shown = (deliveries: Delivery[]) =>
  deliveries.map(({ message, ...rest }) => ({ ...rest, message: message.toString('latin1') }));

t.test('every broker method on memory and hdd queues, over TCP, RESP2, a UNIX socket and JSON-RPC', async (t) => {
  const { server } = await startServer(t);
  for (const [name, client] of clientsOf(t, server, { resp2: true })) {
    for (const type of ['memory', 'hdd'] as const) {
      const at = `${name} ${type}`;
      const [orders, dlx, jobs, dead, keep] = ['orders', 'dlx', 'jobs', 'dead', 'keep'].map(
        (n) => `${n}.${name}.${type}`,
      );

      // Routers, queues, bindings.
      t.equal(await client.createRouter(orders as string, 'topic'), undefined, `${at}: createRouter`);
      t.equal(await client.createRouter(orders as string, 'topic'), undefined, `${at}: the same again`);
      t.equal(await codeOf(client.createRouter(orders as string, 'direct')), 'ROUTER_EXISTS', `${at}: another kind`);
      t.equal(await codeOf(client.createRouter('bad name', 'direct')), 'NAME_INVALID');
      t.equal(await codeOf(client.createRouter('x', 'headers' as 'direct')), 'ROUTER_KIND_INVALID');
      await client.createRouter(dlx as string, 'fanout');
      await client.createQueue(dead as string, type);
      await client.bind(dead as string, dlx as string, '');
      const settings = {
        ackTimeoutMs: 5000,
        maxDeliveries: 3,
        deadLetter: dlx,
        maxLength: 100,
        overflow: 'reject',
        ttlMs: 60_000,
        dedupWindowMs: 10_000,
      } as const;
      t.equal(await client.createQueue(jobs as string, type, settings), undefined, `${at}: createQueue, every setting`);
      t.equal(await client.createQueue(jobs as string, type, settings), undefined, `${at}: the same again`);
      t.equal(await codeOf(client.createQueue(jobs as string, type)), 'QUEUE_EXISTS', `${at}: other settings`);
      t.equal(await codeOf(client.createQueue('q2', 'ram' as 'memory')), 'QUEUE_TYPE_INVALID');
      t.equal(await codeOf(client.createQueue('q2', type, { deadLetter: 'nope' })), 'ROUTER_NOT_FOUND');
      t.equal(await client.bind(jobs as string, orders as string, 'eu.#'), undefined, `${at}: bind`);
      t.equal(await client.bind(jobs as string, orders as string, 'eu.#'), undefined, `${at}: bound already`);
      t.equal(await codeOf(client.bind('nope', orders as string, 'x')), 'QUEUE_NOT_FOUND');

      // Publishing, with each option; a binary message.
      const binary = Buffer.from([0, 13, 10, 0xff, 0x80]);
      t.equal(await client.publish(orders as string, 'eu.new', 'first'), 1, `${at}: publish`);
      t.equal(await client.publish(orders as string, 'us.new', 'nobody'), 0, `${at}: no binding matched`);
      t.equal(await client.publish(orders as string, 'eu.new', binary, { ttlMs: 60_000, id: 'o-2' }), 1);
      t.equal(await client.publish(orders as string, 'eu.new', 'dup', { id: 'o-2' }), 1, `${at}: a duplicate id`);
      t.equal(await client.publish(orders as string, 'eu.new', 'later', { delayMs: 300 }), 1, `${at}: delayed`);
      t.equal(await client.publish(orders as string, 'eu.x', 'DELAY 5'), 1, `${at}: option words as a message`);
      t.equal(await codeOf(client.publish('nope', 'k', 'm')), 'ROUTER_NOT_FOUND');

      // Fetching and settling.
      const fetched = await client.fetch(jobs as string, { count: 10 });
      t.same(
        shown(fetched),
        [
          { id: '1', deliveries: 1, routingKey: 'eu.new', message: 'first' },
          { id: '2', deliveries: 1, routingKey: 'eu.new', message: binary.toString('latin1') },
          { id: fetched[2]?.id, deliveries: 1, routingKey: 'eu.x', message: 'DELAY 5' },
        ],
        `${at}: fetch`,
      );
      t.ok(Buffer.isBuffer(fetched[1]?.message) && fetched[1].message.equals(binary), `${at}: binary round trip`);
      t.same(await client.fetch(jobs as string), [], `${at}: nothing ready`);
      t.equal(await codeOf(client.fetch(jobs as string, { count: 0 })), 'ARGUMENT_INVALID');
      t.equal(await codeOf(client.fetch('nope')), 'QUEUE_NOT_FOUND');
      t.equal(await client.touch(jobs as string, '1'), true, `${at}: touch`);
      t.equal(await client.touch(jobs as string, '99'), false, `${at}: touch of a message not leased`);
      t.equal(await client.nack(jobs as string, '2'), 1, `${at}: nack`);
      t.equal(await client.nack(jobs as string, '2'), 0, `${at}: no longer leased`);
      t.same(
        shown(await client.fetch(jobs as string, { count: 5 })),
        [{ id: '2', deliveries: 2, routingKey: 'eu.new', message: binary.toString('latin1') }],
        `${at}: given back, delivered again`,
      );
      t.equal(await client.ack(jobs as string, ['1', '2', '77', fetched[2]?.id as string]), 3, `${at}: ack`);
      t.equal(await client.ack(jobs as string, '1'), 0, `${at}: acknowledged once only`);
      t.equal(await client.ack(jobs as string, []), 0, `${at}: no ids`);

      // A wait for the delayed message, then dead-lettering to the dead-letter router.
      const [later] = await client.fetch(jobs as string, { waitMs: 5000 });
      t.equal(later?.message.toString(), 'later', `${at}: fetch with waitMs got the delayed message`);
      t.equal(await client.nack(jobs as string, later?.id as string, { drop: true }), 1, `${at}: nack drop`);
      const [letter] = await client.fetch(dead as string);
      t.match(
        letter,
        { routingKey: 'eu.new', deliveries: 1, death: { reason: 'rejected', queue: jobs, deliveries: 1 } },
        `${at}: the dead letter, with its death`,
      );
      await client.ack(dead as string, letter?.id as string);

      // Dead letters kept in the queue's own list.
      await client.createQueue(keep as string, type);
      await client.bind(keep as string, orders as string, 'keep');
      await client.publish(orders as string, 'keep', binary);
      const [kept] = await client.fetch(keep as string);
      await client.nack(keep as string, kept?.id as string, { drop: true });
      const letters = await client.deadLetters(keep as string);
      t.same(
        shown(letters),
        [
          {
            id: kept?.id,
            deliveries: 1,
            routingKey: 'keep',
            message: binary.toString('latin1'),
            death: { reason: 'rejected', queue: keep, deliveries: 1 },
          },
        ],
        `${at}: deadLetters`,
      );
      t.same(await client.deadLetters(keep as string, 1), letters, `${at}: deadLetters with a count`);
      t.equal(await client.replayDead(keep as string, 5), 1, `${at}: replayDead`);
      t.same(await client.deadLetters(keep as string), [], `${at}: replayed`);
      const [replayed] = await client.fetch(keep as string);
      t.ok(replayed?.message.equals(binary), `${at}: the replayed message`);
      await client.nack(keep as string, replayed?.id as string, { drop: true });
      t.equal(await client.replayDead(keep as string), 1, `${at}: replayDead without a count`);
      await client.nack(keep as string, (await client.fetch(keep as string))[0]?.id as string, { drop: true });
      t.equal(await client.purgeDead(keep as string), 1, `${at}: purgeDead`);
      t.equal(await client.purgeDead(keep as string), 0);

      // FLUSH, the documents, the lists.
      await client.publish(orders as string, 'eu.a', 'a');
      await client.publish(orders as string, 'eu.b', 'b');
      t.equal(await client.flush(jobs as string), 2, `${at}: flush`);
      const queue = await client.getQueue(jobs as string);
      t.same(
        queue,
        {
          name: jobs,
          type,
          ...settings,
          ready: 0,
          leased: 0,
          delayed: 0,
          dead: 0,
          consumers: 0,
          published: 6, // the duplicate id is not counted
          delivered: 5,
          redelivered: 1,
          acked: 3,
          deadLettered: 1,
          bindings: [{ router: orders, bindingKey: 'eu.#' }],
        },
        `${at}: getQueue`,
      );
      t.same(
        await client.getRouter(orders as string),
        {
          name: orders,
          kind: 'topic',
          bindings: [
            { queue: jobs, bindingKey: 'eu.#' },
            { queue: keep, bindingKey: 'keep' },
          ],
        },
        `${at}: getRouter`,
      );
      t.equal(await codeOf(client.getQueue('nope')), 'QUEUE_NOT_FOUND');
      t.equal(await codeOf(client.getRouter('nope')), 'ROUTER_NOT_FOUND');
      t.same(await client.listQueues(`*.${name}.${type}`), [dead, jobs, keep], `${at}: listQueues`);
      t.same(await client.listRouters(`*.${name}.${type}`), [dlx, orders], `${at}: listRouters`);
      t.ok((await client.listQueues()).includes(jobs as string), `${at}: listQueues without a glob`);
      t.ok((await client.listRouters()).includes(orders as string), `${at}: listRouters without a glob`);

      // Removing.
      t.equal(await client.unbind(jobs as string, orders as string, 'eu.#'), true, `${at}: unbind`);
      t.equal(await client.unbind(jobs as string, orders as string, 'eu.#'), false, `${at}: unbind again`);
      t.equal(await client.deleteQueue(jobs as string), true, `${at}: deleteQueue`);
      t.equal(await client.deleteQueue(jobs as string), false, `${at}: deleteQueue again`);
      t.equal(await client.deleteRouter(orders as string), true, `${at}: deleteRouter`);
      t.equal(await client.deleteRouter(orders as string), false, `${at}: deleteRouter again`);
    }
  }
});

t.test('call() takes PUBLISH options before the message, over TCP and JSON-RPC', async (t) => {
  const { server } = await startServer(t);
  const tcp = createClient({ port: server.addresses.tcp?.port as number });
  const rpc = createRpcClient({ url: `http://127.0.0.1:${server.addresses.rpc?.port}/` });
  t.teardown(() => tcp.close());
  await tcp.createRouter('r', 'direct');
  await tcp.createQueue('q', 'hdd');
  await tcp.bind('q', 'r', 'k');
  for (const client of [tcp, rpc]) {
    t.equal(await client.call('PUBLISH', ['r', 'k', 'TTL', 60_000, 'ID', 'x-1', 'with options']), 1);
    t.equal(await client.call('PUBLISH', ['r', 'k', 'ID', 'x-1', 'again']), 1, 'a duplicate id counts as reached');
    t.equal(await client.call('PUBLISH', ['r', 'k', Buffer.from('TTL 5')]), 1, 'bytes');
  }
  const fetched = await tcp.call('FETCH', ['q', 10]);
  t.same(
    fetched.map((d) => d.message.toString()),
    ['with options', 'TTL 5', 'TTL 5'],
    'options read as options, the message kept whole',
  );
  t.equal(await tcp.call('ACK', ['q', ...fetched.map((d) => d.id)] as [string, string]), 3);
});

t.test('JSON-RPC batches with broker methods; documents and deliveries decoded', async (t) => {
  const { server } = await startServer(t);
  const rpc = createRpcClient({ url: `http://127.0.0.1:${server.addresses.rpc?.port}/` });
  const [created, , bound, reached, fetched, info] = await rpc.batch((b) => [
    b.createRouter('events', 'fanout'),
    b.createQueue('q', 'memory', { ackTimeoutMs: 1000 }),
    b.bind('q', 'events', ''),
    b.publish('events', 'a', Buffer.from([0xff, 0x00])),
    b.fetch('q', { count: 2 }),
    b.getQueue('q'),
  ]);
  t.same([created, bound, reached], [undefined, undefined, 1]);
  t.same(fetched, [{ id: '1', deliveries: 1, routingKey: 'a', message: Buffer.from([0xff, 0x00]) }]);
  t.match(info, { name: 'q', type: 'memory', ackTimeoutMs: 1000, leased: 1 });
  t.equal(await rpc.ack('q', '1'), 1, 'a lease taken over JSON-RPC is settled by a later call');
  t.equal(await codeOf(rpc.call('CONSUME', ['q'])), 'NOT_SUPPORTED', 'no CONSUME over JSON-RPC');
  t.notOk('consume' in rpc, 'and no consume method');
});
