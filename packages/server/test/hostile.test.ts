// Hostile and careless clients on the TCP listener: cross-protocol requests, too many
// connections, unfinished requests that hold memory, shutdown under pipelined writes. The
// end-to-end versions against a spawned `hati start` are in packages/cli/test.
import { connect } from 'node:net';
import t from 'tap';
import { descriptorBudget } from '../src/descriptors.js';
import { HatiServer, Logger } from '../src/index.js';
import { isLoopbackAddress, isLoopbackHost } from '../src/net-address.js';
import { RawClient, ReplyError, startServer } from './common/harness.js';

const codeOf = (reply: unknown) => (reply instanceof ReplyError ? reply.code : `not an error: ${String(reply)}`);

/** Resolves with how the socket ended: 'end' (a FIN after every byte), or the error code. */
function endOf(client: RawClient): Promise<string> {
  return new Promise((resolve) => {
    client.socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    client.socket.once('end', () => resolve('end'));
  });
}

t.test('an HTTP request on the TCP port closes the connection and runs nothing', async (t) => {
  const h = await startServer(t);
  const watcher = await RawClient.tcp(t, h);
  t.equal(await watcher.command('SET', 'hdd', '0', 'kept', 'v'), 'OK');
  t.equal(await watcher.command('SET', 'memory', '0', 'kept', 'v'), 'OK');
  for (const attack of [
    'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nFLUSHALL hdd\n',
    'GET / HTTP/1.1\r\nHost: x\r\n\r\nFLUSHALL memory\nSET memory 0 pwned 1\n',
    'Host: evil.example\r\nFLUSHALL hdd\r\n',
  ]) {
    const c = await RawClient.tcp(t, h);
    c.write(attack);
    await c.closed();
    t.same(c.replies, [], `no reply to ${JSON.stringify(attack.slice(0, 16))}`);
  }
  t.same(await watcher.command('GET', 'hdd', 'kept'), Buffer.from('v'), 'the hdd key survived');
  t.same(await watcher.command('GET', 'memory', 'kept'), Buffer.from('v'), 'the memory key survived');
  t.equal(await watcher.command('HAS', 'memory', 'pwned'), 0, 'nothing after the request line ran');
  t.equal(h.log.filter((line) => line.includes('cross-protocol')).length, 3, 'each attempt is logged');
});

t.test('past maxClients a client gets MAX_CLIENTS and is closed; a freed place is taken again', async (t) => {
  const h = await startServer(t, { maxClients: 5 });
  const clients = await Promise.all(Array.from({ length: 5 }, () => RawClient.tcp(t, h)));
  for (const c of clients) t.equal(await c.command('PING'), 'PONG');
  const extra = await RawClient.tcp(t, h);
  const ended = endOf(extra);
  await extra.closed();
  t.equal(codeOf(extra.replies[0]), 'MAX_CLIENTS');
  t.match(String((extra.replies[0] as ReplyError).message), /max number of clients reached \(5\)/);
  t.equal(await ended, 'end', 'closed cleanly after the error');
  // JSON-RPC connections count too, and are refused with HTTP 503.
  const { host, port } = h.server.addresses.rpc as { host: string; port: number };
  const res = await fetch(`http://${host}:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'Storage.Count', params: { type: 'hdd' } }),
  });
  t.equal(res.status, 503);
  t.equal(((await res.json()) as { error: { data: { code: string } } }).error.data.code, 'MAX_CLIENTS');
  const first = clients[0] as RawClient;
  first.socket.end();
  await first.closed();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const again = await RawClient.tcp(t, h);
  t.equal(await again.command('PING'), 'PONG', 'a place freed is taken by the next client');
});

t.test('unfinished requests of all clients together are bounded by maxInputBuffer', async (t) => {
  const h = await startServer(t, { maxInputBuffer: 4 * 1024 * 1024 });
  // Each starts a 10 MB bulk string and sends 1.5 MB of it, never the rest.
  const header = '*5\r\n$3\r\nSET\r\n$6\r\nmemory\r\n$1\r\n0\r\n$1\r\nk\r\n$10000000\r\n';
  const holders: RawClient[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await RawClient.tcp(t, h);
    c.write(header);
    c.write(Buffer.alloc(1_500_000, 0x61));
    holders.push(c);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const third = holders[2] as RawClient;
  await third.closed();
  t.equal(codeOf(third.replies[0]), 'TOO_LARGE', 'the client that passed the bound is refused');
  t.match(String((third.replies[0] as ReplyError).message), /all clients hold more than 4194304 bytes/);
  t.notOk((holders[0] as RawClient).socket.destroyed, 'the clients within the bound keep their connections');
  const other = await RawClient.tcp(t, h);
  t.equal(await other.command('PING'), 'PONG');
  // What a closed connection held is given back: a new client may hold as much again.
  for (const c of holders.slice(0, 2)) {
    c.socket.destroy();
    await c.closed();
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  const next = await RawClient.tcp(t, h);
  // 3.5 MB in flight: more than the 4 MB budget had left while the others held 3 MB.
  next.write('*5\r\n$3\r\nSET\r\n$6\r\nmemory\r\n$1\r\n0\r\n$1\r\nk\r\n$3500000\r\n');
  next.write(Buffer.alloc(3_000_000, 0x61));
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.notOk(next.socket.destroyed, 'the budget was given back when the others left');
  next.write(Buffer.alloc(500_000, 0x61));
  next.write('\r\n');
  t.equal((await next.next(1))[0], 'OK', 'and its request completes');
});

t.test('QUIT while the client still sends: +OK then a clean end, never a reset', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const ended = endOf(c);
  c.write(`PING\r\nQUIT\r\n${'SET memory 0 after 1\r\n'.repeat(20_000)}`);
  t.equal(await ended, 'end');
  t.same(c.replies, ['PONG', 'OK'], 'the replies owed, and nothing for what followed QUIT');
  const other = await RawClient.tcp(t, h);
  t.equal(await other.command('HAS', 'memory', 'after'), 0, 'nothing after QUIT ran');
});

t.test('shutdown under pipelined hdd writes: each applied write was acknowledged', async (t) => {
  const h = await startServer(t);
  const clients = await Promise.all(Array.from({ length: 4 }, () => RawClient.tcp(t, h)));
  const ends = clients.map(endOf);
  let stop = false;
  const sent = clients.map(() => 0);
  const writers = clients.map(async (c, i) => {
    // Windows of 500 pipelined SETs, as fast as the server takes them.
    while (!stop && !c.socket.destroyed) {
      const from = sent[i] as number;
      let batch = '';
      for (let n = 0; n < 500; n++) batch += `SET hdd 0 c${i}:${from + n} v\r\n`;
      sent[i] = from + 500;
      c.write(batch);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  });
  // Shut down mid-stream, once every connection has had writes acknowledged (on a loaded machine
  // a fixed wait could end before the last connection's first window was answered).
  await new Promise((resolve) => setTimeout(resolve, 300));
  while (clients.some((c) => !c.replies.includes('OK'))) await new Promise((resolve) => setTimeout(resolve, 10));
  await h.server.close();
  stop = true;
  await Promise.all(writers);
  t.same(await Promise.all(ends), ['end', 'end', 'end', 'end'], 'every connection ended with a FIN, not a reset');
  const acked = clients.map((c) => c.replies.filter((r) => r === 'OK').length);
  t.ok(
    acked.every((n) => n > 0),
    `writes were acknowledged before the shutdown: ${acked.join(', ')}`,
  );
  t.same(
    clients.map((c) => c.replies.filter((r) => r !== 'OK')),
    [[], [], [], []],
    'no error replies',
  );
  const again = await HatiServer.start({
    dataDir: `${h.dir}/data`,
    logger: new Logger('error', () => {}),
  });
  t.teardown(() => again.close());
  t.equal(
    await again.storage.hdd.count(),
    acked.reduce((a, b) => a + b, 0),
    'exactly the acknowledged writes',
  );
  for (const [i, n] of acked.entries()) {
    t.equal(await again.storage.hdd.has(`c${i}:${n - 1}`), true, `c${i}: its last acknowledged key is there`);
    t.equal(await again.storage.hdd.has(`c${i}:${n}`), false, `c${i}: the next one, never acknowledged, is not`);
  }
});

t.test('protected mode knows loopback addresses', async (t) => {
  for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', undefined]) {
    t.ok(isLoopbackAddress(address), `${address} is on this machine`);
  }
  for (const address of ['10.0.0.1', '192.168.1.1', '::ffff:10.0.0.1', '2001:db8::1', '0.0.0.0', '::', '128.0.0.1']) {
    t.notOk(isLoopbackAddress(address), `${address} is not`);
  }
  t.ok(isLoopbackHost('localhost'));
  t.notOk(isLoopbackHost('0.0.0.0'), 'a wildcard bind is reachable from other machines');
  t.notOk(isLoopbackHost(''));
});

t.test('protected mode warns at start when a listener is bound to a wildcard address', async (t) => {
  const h = await startServer(t, { tcp: { host: '0.0.0.0', port: 0 } });
  t.match(h.log.join(''), /protected mode: the tcp listener is bound to 0\.0\.0\.0/);
  const c = await RawClient.tcp(t, h);
  t.equal(await c.command('PING'), 'PONG', 'a client on this machine is served');
  const off = await startServer(t, { tcp: { host: '0.0.0.0', port: 0 }, protectedMode: false });
  t.match(off.log.join(''), /protected mode is off and no credentials are configured/);
});

t.test('the descriptor budget keeps room for LevelDB and gives clients the rest', async (t) => {
  const small = descriptorBudget(8, 1024);
  t.same(small, { limit: 1024, maxOpenFilesPerShard: 74, reserved: 32 + 8 * 74, maxClients: 1024 - 32 - 8 * 74 });
  const large = descriptorBudget(8, 1_048_576);
  t.equal(large.maxOpenFilesPerShard, 1000, 'LevelDB gets its default where there is room');
  t.equal(large.maxClients, 10_000, "Redis's default ceiling");
  t.equal(descriptorBudget(64, 1024).maxClients, 1, 'never zero: the warning at start says what to do');
});

t.test('a file where the data directory should be: the store says so, with its code', async (t) => {
  const dir = t.testdir({ data: 'not a directory' });
  await t.rejects(HatiServer.start({ dataDir: `${dir}/data`, logger: new Logger('error', () => {}) }), {
    code: 'DATA_DIR_NOT_WRITABLE',
    message: new RegExp(`^data directory ${dir}/data cannot be created`),
  });
});

t.test('a connection refused at accept does not crash the server when the client resets', async (t) => {
  const h = await startServer(t, { maxClients: 1 });
  const holder = await RawClient.tcp(t, h);
  t.equal(await holder.command('PING'), 'PONG');
  const { host, port } = h.server.addresses.tcp as { host: string; port: number };
  for (let i = 0; i < 20; i++) {
    const socket = connect(port, host);
    socket.on('error', () => {});
    socket.once('connect', () => socket.resetAndDestroy());
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.equal(await holder.command('PING'), 'PONG', 'still serving');
});

t.test('a client that sends a large pipeline and ends its side gets every reply, read slowly', async (t) => {
  const h = await startServer(t);
  const setter = await RawClient.tcp(t, h);
  await setter.command('SET', 'memory', '0', 'big', Buffer.alloc(100 * 1024, 0x62));
  // The client's end of the stream reaches the server at different points of the stop-and-go.
  for (const [count, pauseMs] of [
    [4000, 200],
    [1000, 0],
    [300, 20],
  ] as const) {
    const c = await RawClient.tcp(t, h);
    c.socket.pause();
    c.socket.end('GET memory big\n'.repeat(count));
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    c.socket.resume();
    const replies = await c.next(count, 0);
    t.equal(replies.length, count, `${count} GETs: every request before the end of the stream was answered`);
    t.ok(
      replies.every((r) => Buffer.isBuffer(r) && r.length === 100 * 1024),
      'each with the value',
    );
    await c.closed();
  }
});

t.test('a flood of refused connections: at most 64 linger to read their error, the rest are dropped', async (t) => {
  const h = await startServer(t, { maxClients: 1 });
  const holder = await RawClient.tcp(t, h);
  t.equal(await holder.command('PING'), 'PONG');
  const { host, port } = h.server.addresses.tcp as { host: string; port: number };
  // 100 clients that are refused and never close their side.
  const outcomes = await Promise.all(
    Array.from(
      { length: 100 },
      () =>
        new Promise<string>((resolve) => {
          // allowHalfOpen: the client does not close its side when the server ends.
          const socket = connect({ port, host, allowHalfOpen: true });
          let data = '';
          socket.on('data', (chunk) => {
            data += chunk.toString('latin1');
          });
          socket.on('error', () => {});
          socket.once('end', () => resolve(data));
          socket.once('close', () => resolve(data));
          t.teardown(() => {
            socket.destroy();
          });
        }),
    ),
  );
  const told = outcomes.filter((data) => data.startsWith('-MAX_CLIENTS')).length;
  t.ok(told >= 1 && told <= 64, `${told} were told MAX_CLIENTS and may linger`);
  t.equal(outcomes.filter((data) => data === '').length, 100 - told, 'the others were dropped at once');
  t.equal(await holder.command('PING'), 'PONG', 'the client being served is not disturbed');
});
