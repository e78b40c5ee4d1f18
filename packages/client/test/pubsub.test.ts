// RESP3 and pushes: HELLO on connect, keyspace events to subscribers, confirmations that answer
// SUBSCRIBE without disturbing the replies of other calls, re-subscribing after a restart.

import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Reply, RequestParser } from '@hati/protocol';
import t, { type Test } from 'tap';
import { createClient, type HatiClient, type MessageListener } from '../src/index.js';
import { codeOf, spawnServer, startServer } from './common/harness.js';

interface Received {
  message: string;
  channel: string;
  pattern?: string;
}

/** A listener that keeps what it receives; `until(n)` waits for the n-th message. */
function inbox(): {
  listener: MessageListener;
  got: Received[];
  until: (n: number, ms?: number) => Promise<Received[]>;
} {
  const got: Received[] = [];
  let wake: (() => void) | undefined;
  const listener: MessageListener = (message, channel, pattern) => {
    got.push({ message: message.toString('utf8'), channel, ...(pattern !== undefined && { pattern }) });
    wake?.();
  };
  const until = async (n: number, ms = 10_000): Promise<Received[]> => {
    const deadline = Date.now() + ms;
    while (got.length < n) {
      if (Date.now() > deadline)
        throw new Error(`${got.length} messages of ${n} after ${ms} ms: ${JSON.stringify(got)}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return got;
  };
  return { listener, got, until };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A push frame or reply as text, for comparing: bulk strings as strings. */
function shown(reply: Reply): unknown {
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (Array.isArray(reply)) return reply.map(shown);
  return reply;
}

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

t.test('HELLO 3 on connect; a key set reaches a keyspace subscriber', async (t) => {
  const { server } = await startServer(t);
  const port = server.addresses.tcp?.port as number;
  const sub = createClient({ port, name: 'subscriber' });
  const writer = createClient({ port });
  t.teardown(() => Promise.all([sub.close(), writer.close()]));
  const box = inbox();
  await sub.subscribe('__keyspace@memory__:k', box.listener);
  t.equal(sub.protocol, 3, 'the connection speaks RESP3');
  t.match(sub.serverInfo, { server: 'hati', proto: 3, id: Number }, 'the HELLO map');
  t.same(shown(await sub.sendCommand(['CLIENT', 'GETNAME'])), 'subscriber', 'the name went with HELLO');

  await writer.set('memory', 'k', 'v');
  t.same(await box.until(1), [{ message: 'set', channel: '__keyspace@memory__:k' }], 'set');
  await writer.expire('memory', 'k', 60_000);
  await writer.delete('memory', 'k');
  await writer.set('memory', 'other', 'v');
  t.same(
    (await box.until(3)).map((m) => m.message),
    ['set', 'expire', 'del'],
    'expire and del, and nothing for another key',
  );
  // Commands still run on a subscribed RESP3 connection.
  t.equal(await sub.get('memory', 'other'), 'v');

  await sub.unsubscribe('__keyspace@memory__:k');
  await writer.set('memory', 'k', 'again');
  await sleep(100);
  t.equal(box.got.length, 3, 'nothing after unsubscribe');
});

/** A server, a client to subscribe with and one to write with; all closed after the test. */
async function subscriberAndWriter(t: Test): Promise<{ sub: HatiClient; writer: HatiClient }> {
  const { server } = await startServer(t);
  const port = server.addresses.tcp?.port as number;
  const sub = createClient({ port });
  const writer = createClient({ port });
  t.teardown(() => Promise.all([sub.close(), writer.close()]));
  return { sub, writer };
}

t.test('an hdd key that expires is announced on __keyevent@hdd__:expired', async (t) => {
  const { sub, writer } = await subscriberAndWriter(t);
  const box = inbox();
  await sub.subscribe(['__keyevent@hdd__:expired', '__keyevent@hdd__:set'], box.listener);
  await writer.set('hdd', 'short', 'v', { ttl: 50 });
  await sleep(150);
  // Whether the sweep or this read finds it expired first, it is announced once.
  t.equal(await writer.get('hdd', 'short'), null);
  const got = await box.until(2);
  t.same(got, [
    { message: 'short', channel: '__keyevent@hdd__:set' },
    { message: 'short', channel: '__keyevent@hdd__:expired' },
  ]);
  await sleep(100);
  t.equal(box.got.length, 2, 'announced once');
});

t.test('psubscribe: a glob over channels, the pattern given to the listener', async (t) => {
  const { sub, writer } = await subscriberAndWriter(t);
  const box = inbox();
  const pattern = '__keyspace@memory__:user:*';
  await sub.psubscribe(pattern, box.listener);
  await writer.set('memory', 'user:1', 'ada');
  await writer.set('memory', 'session:1', 'x');
  await writer.incrBy('memory', 'user:visits', 2);
  t.same(await box.until(2), [
    { message: 'set', channel: '__keyspace@memory__:user:1', pattern },
    { message: 'incrby', channel: '__keyspace@memory__:user:visits', pattern },
  ]);
  const flush = inbox();
  await sub.psubscribe('__keyevent@*__:flushall', flush.listener);
  await writer.flushAll('hdd');
  t.same(await flush.until(1), [
    { message: 'hdd', channel: '__keyevent@hdd__:flushall', pattern: '__keyevent@*__:flushall' },
  ]);

  await sub.punsubscribe();
  await writer.set('memory', 'user:2', 'grace');
  await writer.flushAll('memory');
  await sleep(100);
  t.equal(box.got.length + flush.got.length, 3, 'nothing after punsubscribe');
});

t.test('pushes between the replies of a pipeline leave every reply matched', async (t) => {
  const { server } = await startServer(t);
  const port = server.addresses.tcp?.port as number;
  const client = createClient({ port });
  const other = createClient({ port });
  t.teardown(() => Promise.all([client.close(), other.close()]));
  const box = inbox();
  await client.subscribe('__keyevent@memory__:set', box.listener);
  const n = 2000;
  const calls: Array<Promise<unknown>> = [];
  const elsewhere: Array<Promise<unknown>> = [];
  for (let i = 0; i < n; i++) {
    // Each SET pushes an event onto this very connection, between its own replies.
    calls.push(client.set('memory', `k${i}`, `v${i}`), client.get('memory', `k${i}`));
    if (i % 10 === 0) calls.push(client.ping(`p${i}`));
    // And another client's SETs push at moments this one does not choose.
    if (i % 4 === 0) elsewhere.push(other.set('memory', `o${i}`, 'x'));
  }
  const replies = await Promise.all(calls);
  let at = 0;
  let mismatches = 0;
  for (let i = 0; i < n; i++) {
    if (replies[at++] !== undefined || replies[at++] !== `v${i}`) mismatches++;
    if (i % 10 === 0 && replies[at++] !== `p${i}`) mismatches++;
  }
  t.equal(mismatches, 0, 'every reply matched its command');
  await Promise.all(elsewhere);
  const got = await box.until(n + elsewhere.length);
  t.equal(got.length, n + elsewhere.length, 'every event arrived');
  t.equal(got.filter((m) => m.message.startsWith('k')).length, n);
});

t.test('confirmations answer the pub/sub call they belong to', async (t) => {
  const { server } = await startServer(t);
  const port = server.addresses.tcp?.port as number;
  const client = createClient({ port });
  const writer = createClient({ port });
  t.teardown(() => Promise.all([client.close(), writer.close()]));
  const frames: unknown[] = [];
  const stop = client.onPush((items) => frames.push(shown(items)));

  t.same(
    shown(await client.sendCommand(['SUBSCRIBE', 'a', 'b'])),
    [
      ['subscribe', 'a', 1],
      ['subscribe', 'b', 2],
    ],
    'sendCommand resolves with the confirmations',
  );
  t.same(
    shown(await client.sendCommand(['UNSUBSCRIBE'])),
    [
      ['unsubscribe', 'a', 1],
      ['unsubscribe', 'b', 0],
    ],
    'UNSUBSCRIBE from all: one per channel subscribed',
  );
  t.same(shown(await client.sendCommand(['UNSUBSCRIBE'])), [['unsubscribe', null, 0]], 'from none: one frame');
  t.same(shown(await client.call('PSUBSCRIBE', ['x*'])), [['psubscribe', 'x*', 1]], 'call() too');
  t.same(shown(await client.call('PUNSUBSCRIBE', [])), [['punsubscribe', 'x*', 0]]);
  t.equal(frames.length, 7, 'onPush saw every frame');

  const box = inbox();
  t.same(
    await Promise.all([
      client.ping(),
      client.subscribe(['c', 'd'], box.listener),
      client.get('memory', 'k'),
      client.ping('x'),
    ]),
    ['PONG', undefined, null, 'x'],
    'calls on either side of a SUBSCRIBE get their own replies',
  );
  stop();
  await writer.set('memory', 'k', 'v');
  await sleep(50);
  t.equal(frames.length, 9, 'a stopped push listener hears nothing more (it heard the two of c and d)');

  // A subscription given up before it was sent is not kept (nor sent again after a reconnect).
  t.equal(await codeOf(client.subscribe('e', box.listener, { signal: AbortSignal.abort() })), 'ABORTED');
  t.same(await client.subscribe([], box.listener), undefined, 'no channels: nothing to do');
  await client.unsubscribe('d', () => {});
  t.equal(await client.unsubscribe('not-subscribed', box.listener), undefined, 'another listener: nothing sent');
});

t.test('a listener that throws is reported, and the connection goes on', async (t) => {
  const { server } = await startServer(t);
  const port = server.addresses.tcp?.port as number;
  const client = createClient({ port });
  t.teardown(() => client.close());
  const errors: Error[] = [];
  client.on('error', (err) => errors.push(err));
  const box = inbox();
  await client.subscribe('__keyevent@memory__:set', () => {
    throw new Error('listener failed');
  });
  await client.subscribe('__keyevent@memory__:set', box.listener);
  await client.set('memory', 'k', 'v');
  t.same(
    (await box.until(1)).map((m) => m.message),
    ['k'],
    'the other listener still got it',
  );
  t.match(errors, [{ message: 'listener failed' }]);
  t.equal(await client.get('memory', 'k'), 'v');
});

t.test('protocol 2: plain RESP2, and pub/sub is refused', async (t) => {
  const { server } = await startServer(t);
  const port = server.addresses.tcp?.port as number;
  const plain = createClient({ port, protocol: 2 });
  const named = createClient({ port, protocol: 2, name: 'resp2' });
  t.teardown(() => Promise.all([plain.close(), named.close()]));
  t.equal(await plain.set('memory', 'k', 'v', { condition: 'NX' }), true);
  t.equal(await plain.set('memory', 'k', 'v', { condition: 'NX' }), false, 'the null bulk of RESP2');
  t.equal(await plain.info('keyspace').then((text) => text.includes('Keyspace')), true, 'a bulk string of text');
  t.equal(plain.protocol, 2);
  t.equal(plain.serverInfo, undefined, 'no HELLO sent');
  t.match(await plain.call('HELLO', []), { server: 'hati', proto: 2 }, 'HELLO as a flat array, read as a map');
  t.equal(await codeOf(plain.subscribe('c', () => {})), 'NOT_SUPPORTED');
  t.equal(await codeOf(plain.sendCommand(['SUBSCRIBE', 'c'])), 'NOT_SUPPORTED');
  await named.ping();
  t.match(named.serverInfo, { proto: 2 }, 'HELLO 2 to send the name');
  t.same(shown(await named.sendCommand(['CLIENT', 'GETNAME'])), 'resp2');
  t.throws(() => createClient({ port, name: 'two words' }), TypeError, 'a name with a space');
});

t.test('subscriptions are sent again, first, after the server restarts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hati-resubscribe-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await spawnServer(t, dir);
  const reconnect = { initialDelay: 20, maxDelay: 200 };
  const sub: HatiClient = createClient({ port: first.port, name: 'listener', reconnect });
  const writer = createClient({ port: first.port, reconnect });
  t.teardown(() => Promise.all([sub.close(), writer.close()]));
  const keyspace = inbox();
  const events = inbox();
  await sub.subscribe('__keyspace@memory__:k', keyspace.listener);
  await sub.psubscribe('__keyevent@hdd__:*', events.listener);
  await sub.subscribe('dropped', keyspace.listener);
  await sub.unsubscribe('dropped');
  await writer.set('memory', 'k', '1');
  await keyspace.until(1);

  const frames: unknown[] = [];
  sub.onPush((items) => frames.push(shown(items)));
  const connected = new Promise<void>((resolve) => sub.once('connect', resolve));
  const down = new Promise<void>((resolve) => sub.once('reconnecting', () => resolve()));
  first.child.kill('SIGKILL');
  await down;
  // Made while the server is down: it waits, and goes after the subscriptions.
  const offline = sub.get('memory', 'k');
  await spawnServer(t, dir, first.port);
  await connected;
  t.equal(await offline, null, 'the offline call ran (memory starts empty)');
  t.same(
    frames,
    [
      ['subscribe', '__keyspace@memory__:k', 1],
      ['psubscribe', '__keyevent@hdd__:*', 2],
    ],
    'what is still subscribed, and nothing else, before the offline queue',
  );
  t.same(shown(await sub.sendCommand(['CLIENT', 'GETNAME'])), 'listener', 'the name again');
  t.equal(sub.protocol, 3);

  await writer.set('memory', 'k', '2');
  await writer.set('hdd', 'h', 'x');
  t.same(
    (await keyspace.until(2)).map((m) => m.message),
    ['set', 'set'],
    'the channel after the restart',
  );
  t.same(await events.until(1), [{ message: 'h', channel: '__keyevent@hdd__:set', pattern: '__keyevent@hdd__:*' }]);
});

/**
 * A stand-in RESP3 server that answers in order, each answer `delayMs` late: HELLO with a map,
 * SUBSCRIBE with its pushes (or `-NOPERM` for a channel named `forbidden`), anything else +PONG.
 * Records the commands of each connection; `drop()` closes them all.
 */
async function stubServer(t: Test, delayMs: number) {
  const connections: string[][][] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const seen: string[][] = [];
    connections.push(seen);
    let chain = Promise.resolve();
    const parser = new RequestParser((request) => {
      const words = request.args().map((arg) => arg.toString());
      seen.push(words);
      const [name, ...rest] = words;
      let answer: string;
      if (name === 'HELLO') answer = '%1\r\n$5\r\nproto\r\n:3\r\n';
      else if (name === 'SUBSCRIBE' && rest.includes('forbidden')) answer = '-NOPERM no\r\n';
      else if (name === 'SUBSCRIBE') {
        answer = rest.map((c, i) => `>3\r\n$9\r\nsubscribe\r\n$${c.length}\r\n${c}\r\n:${i + 1}\r\n`).join('');
      } else answer = '+PONG\r\n';
      chain = chain
        .then(() => new Promise((resolve) => setTimeout(resolve, delayMs)))
        .then(() => {
          if (!socket.destroyed) socket.write(answer);
        });
    });
    socket.on('data', (chunk: Buffer) => parser.push(chunk));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return {
    port: (server.address() as { port: number }).port,
    connections,
    drop: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

t.test('a SUBSCRIBE given up on still takes its confirmations; a refused one is not restored', async (t) => {
  const stub = await stubServer(t, 30);
  const client = createClient({ port: stub.port, reconnect: { initialDelay: 10, maxDelay: 20 } });
  t.teardown(() => client.close());
  const box = inbox();
  const late = client.subscribe(['a', 'b'], box.listener, { timeout: 5 });
  const after = client.ping();
  t.equal(await codeOf(late), 'TIMEOUT', 'the subscribe timed out');
  t.equal(await after, 'PONG', 'the next call got its own reply, after the two confirmations');
  t.equal(client.protocol, 3);

  t.equal(await codeOf(client.subscribe(['kept'], box.listener)), 'resolved');
  t.equal(await codeOf(client.subscribe(['forbidden'], box.listener)), 'NOPERM', "the server's error");
  t.equal(await client.ping(), 'PONG');

  const reconnected = new Promise<void>((resolve) => client.once('connect', () => resolve()));
  stub.drop();
  await reconnected;
  await client.ping();
  t.same(
    stub.connections[1],
    [
      ['HELLO', '3'],
      ['CLIENT', 'SETINFO', 'LIB-NAME', '@hati/client'],
      ['CLIENT', 'SETINFO', 'LIB-VER', version],
      ['SUBSCRIBE', 'kept'],
      ['PING'],
    ],
    'the handshake, then only the confirmed subscription is sent again, before anything else',
  );
});

t.test('every connection tells the server which library it is (CLIENT SETINFO), as Redis clients do', async (t) => {
  const { server } = await startServer(t);
  const client = createClient({ port: server.addresses.tcp?.port as number, name: 'worker-7' });
  t.teardown(() => client.close());
  const info = String(await client.sendCommand(['CLIENT', 'INFO']));
  t.match(info, /name=worker-7 .*resp=3 lib-name=@hati\/client lib-ver=\d+\.\d+\.\d+/);
  const stats = await client.stats();
  t.match(stats.clients, [{ name: 'worker-7', libName: '@hati/client', protocol: 3 }]);
});
