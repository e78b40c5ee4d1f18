import { once } from 'node:events';
import { createServer } from 'node:net';
import t, { type Test } from 'tap';
import { createClient, createRpcClient, type HatiClient, type HatiError } from '../src/index.js';
import { clientsOf, codeOf, startServer } from './common/harness.js';

t.test('every method on both storage types, over TCP, a UNIX socket and JSON-RPC', async (t) => {
  const { server } = await startServer(t);
  for (const [name, client] of clientsOf(t, server)) {
    for (const type of ['memory', 'hdd'] as const) {
      const at = `${name} ${type}`;
      await client.flushAll(type);
      t.equal(await client.get(type, 'k'), null, `${at}: get missing`);
      t.equal(await client.set(type, 'k', 'hello world'), undefined, `${at}: set`);
      t.equal(await client.get(type, 'k'), 'hello world', `${at}: get`);
      const bytes = Buffer.from([0, 13, 10, 255]);
      await client.set(type, Buffer.from([1, 2]), bytes);
      t.same(await client.getBuffer(type, Buffer.from([1, 2])), bytes, `${at}: binary round trip`);
      t.equal(await client.has(type, 'k'), true, `${at}: has`);
      t.equal(await client.count(type), 2, `${at}: count`);
      t.equal(await client.delete(type, 'k'), true, `${at}: delete`);
      t.equal(await client.delete(type, 'k'), false, `${at}: delete again`);
      // Real time here (a server in this process): long enough not to expire under a loaded CI.
      await client.set(type, 'short', 'v', { ttl: 400 });
      t.equal(await client.get(type, 'short'), 'v');
      await new Promise((resolve) => setTimeout(resolve, 450));
      t.equal(await client.get(type, 'short'), null, `${at}: ttl`);
      t.equal(await codeOf(client.get('ram' as 'memory', 'k')), 'STORAGE_TYPE_INVALID', `${at}: server error code`);
      t.equal(await codeOf(client.set(type, '', 'v')), 'KEY_EMPTY');
      t.equal(await codeOf(client.set(type, 'k', 'v', { ttl: -1 })), 'TTL_INVALID');
    }
    t.equal(await client.ping(), 'PONG', `${name}: ping`);
    t.equal(await client.ping('hi'), 'hi');
    const stats = await client.stats();
    t.equal(stats.storage.memory.keys, 1, `${name}: typed stats`);
    t.equal(stats.storage.hdd.shards.length, 1, 'a new hdd store has one shard');
  }
});

t.test('100,000 commands in flight at once are answered in order', async (t) => {
  const { server } = await startServer(t);
  const client = createClient({ port: server.addresses.tcp?.port as number });
  t.teardown(() => client.close());
  await client.ping();
  const before = server.stats.commandsProcessed;
  // Each GET follows the SET of its key, all issued before any reply is read.
  const calls: Array<Promise<unknown>> = [];
  for (let i = 0; i < 50_000; i++) {
    calls.push(client.set('memory', `k${i}`, `v${i}`));
    calls.push(client.get('memory', `k${i}`));
  }
  const replies = await Promise.all(calls);
  t.equal(
    replies.findIndex((reply, i) => reply !== (i % 2 === 0 ? undefined : `v${(i - 1) / 2}`)),
    -1,
    'every reply matched its command',
  );
  t.equal(server.stats.commandsProcessed - before, 100_000);
});

t.test('JSON-RPC batches', async (t) => {
  const { server } = await startServer(t);
  const rpc = createRpcClient({ url: `http://127.0.0.1:${server.addresses.rpc?.port}/` });
  const before = server.stats.rpcCalls;
  const [set, value, has, count] = await rpc.batch((b) => [
    b.set('memory', 'a', '1'),
    b.get('memory', 'a'),
    b.has('hdd', 'a'),
    b.count('memory'),
  ]);
  t.same([set, value, has, count], [undefined, '1', false, 1]);
  t.equal(server.stats.rpcCalls - before, 4, 'four calls');
  t.equal(server.stats.connections.rpc.total, 1, 'in one HTTP request');
  t.equal(
    await codeOf(rpc.batch((b) => [b.get('memory', 'a'), b.get('ram' as 'memory', 'a')])),
    'STORAGE_TYPE_INVALID',
  );
});

/**
 * A stand-in server that answers in order, its first reply `delayMs` late. It does not know
 * HELLO (as servers before 0.2), so the client stays in RESP2.
 */
async function slowServer(t: Test, delayMs: number): Promise<number> {
  const server = createServer((socket) => {
    let released = false;
    const held: string[] = [];
    let seen = 0;
    setTimeout(() => {
      released = true;
      socket.write(held.join(''));
    }, delayMs);
    socket.on('data', (chunk) => {
      for (const command of chunk.toString().split('*').slice(1)) {
        const reply = command.includes('HELLO')
          ? "-UNKNOWN_COMMAND unknown command 'HELLO'\r\n"
          : seen++ === 0
            ? '$4\r\nlate\r\n'
            : '$3\r\nnow\r\n';
        if (released) socket.write(reply);
        else held.push(reply);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return (server.address() as { port: number }).port;
}

t.test('a timeout rejects with TIMEOUT and the connection stays usable', async (t) => {
  const port = await slowServer(t, 200);
  const client = createClient({ port });
  t.teardown(() => client.close());
  const first = client.get('memory', 'a', { timeout: 50 });
  const second = client.get('memory', 'b');
  const error = await first.catch((err: HatiError) => err);
  t.match(error, { name: 'HatiError', code: 'TIMEOUT', transient: true });
  t.equal(await second, 'now', 'the next call gets its own reply, not the late one');
  t.equal(await client.get('memory', 'c'), 'now');
  t.equal(client.protocol, 2, 'a server without HELLO: RESP2');
  t.equal(await codeOf(client.subscribe('c', () => {})), 'NOT_SUPPORTED', 'and no pub/sub');
});

t.test('an AbortSignal rejects with ABORTED and the connection stays usable', async (t) => {
  const port = await slowServer(t, 200);
  const client = createClient({ port });
  t.teardown(() => client.close());
  const controller = new AbortController();
  const first = client.get('memory', 'a', { signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  t.equal(await codeOf(first), 'ABORTED');
  t.equal(await client.get('memory', 'b'), 'now');
  t.equal(await codeOf(client.get('memory', 'c', { signal: AbortSignal.abort() })), 'ABORTED', 'already aborted');
});

t.test('the offline queue is bounded', async (t) => {
  // Nothing listens on this port: the client keeps reconnecting, commands wait offline.
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as { port: number }).port;
  probe.close();
  const client: HatiClient = createClient({
    port,
    maxOfflineCommands: 3,
    reconnect: { initialDelay: 10, maxDelay: 20 },
  });
  const waiting = [client.ping(), client.ping(), client.ping()];
  t.equal(await codeOf(client.ping()), 'OFFLINE_QUEUE_FULL', 'the fourth is refused');
  const closing = client.close();
  t.same(await Promise.all(waiting.map(codeOf)), ['CONNECTION_CLOSED', 'CONNECTION_CLOSED', 'CONNECTION_CLOSED']);
  await closing;
  t.equal(client.state, 'closed');
  t.equal(await codeOf(client.ping()), 'CONNECTION_CLOSED', 'calls after close');
});

t.test('close() and quit() resolve when the socket is closed, with events', async (t) => {
  const { server } = await startServer(t);
  const events: string[] = [];
  const a = createClient({ port: server.addresses.tcp?.port as number });
  a.on('connect', () => events.push('connect')).on('close', () => events.push('close'));
  const pending = a.set('hdd', 'k', 'v');
  await a.quit();
  t.equal(await pending, undefined, 'a command sent before QUIT is answered');
  t.equal(a.state, 'closed');
  t.same(events, ['connect', 'close']);
  const b = createClient({ port: server.addresses.tcp?.port as number });
  await b.ping();
  await b.close();
  t.equal(b.state, 'closed');
  t.equal(server.stats.connections.tcp.current, 0);
});
