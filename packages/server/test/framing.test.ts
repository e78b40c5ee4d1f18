// Framing errors and limits: the client gets a -PROTOCOL or -TOO_LARGE reply and is
// disconnected; the server keeps serving everyone else with bounded memory.
import { connect, Socket } from 'node:net';
import t from 'tap';
import { RawClient, ReplyError, startServer } from './common/harness.js';

const codeOf = (reply: unknown) => (reply instanceof ReplyError ? reply.code : `not an error: ${String(reply)}`);

t.test('unreadable requests get -PROTOCOL or -TOO_LARGE, then the connection closes', async (t) => {
  const h = await startServer(t);
  const cases: Array<[string, string | Buffer, string]> = [
    ['bulk length over 512 MiB', '*1\r\n$2000000000\r\n', 'TOO_LARGE'],
    ['negative array count', '*-10\r\n', 'PROTOCOL'],
    ['bulk length not a number', '*1\r\n$blabla\r\n', 'PROTOCOL'],
    ['NUL where $ should be', Buffer.from('*1\r\n\x004\r\nPING\r\n'), 'PROTOCOL'],
    ['array count over the limit', '*2000000\r\n', 'TOO_LARGE'],
    ['inline line over 64 KiB', `GET memory ${'x'.repeat(70 * 1024)}\r\n`, 'TOO_LARGE'],
  ];
  const watcher = await RawClient.tcp(t, h);
  for (const [name, bytes, code] of cases) {
    const c = await RawClient.tcp(t, h);
    t.equal(await c.command('PING'), 'PONG', `${name}: served before`);
    const before = c.replies.length;
    c.write(bytes);
    const [reply] = await c.next(1, before);
    t.equal(codeOf(reply), code, name);
    await c.closed();
    t.ok(c.socket.destroyed || c.socket.readableEnded, `${name}: disconnected`);
    t.equal(await watcher.command('PING'), 'PONG', `${name}: other clients still served`);
  }
});

t.test('commands before a framing error in the same write are answered first', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const before = c.replies.length;
  c.write('SET hdd 0 k v\r\nGET hdd k\r\n*-1\r\nPING\r\n');
  const replies = await c.next(3, before);
  t.equal(replies[0], 'OK');
  t.same(replies[1], Buffer.from('v'));
  t.equal(codeOf(replies[2]), 'PROTOCOL');
  await c.closed();
});

t.test('a 100 MB line without a newline is refused without being buffered', async (t) => {
  const h = await startServer(t);
  const socket = connect((h.server.addresses.tcp as { port: number }).port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const c = new RawClient(socket);
  const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().external;
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  let sent = 0;
  let refused = false;
  socket.on('close', () => {
    refused = true;
  });
  while (sent < 100 && !refused) {
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
    sent++;
  }
  await c.closed();
  t.equal(codeOf(c.replies[0]), 'TOO_LARGE');
  t.ok(sent < 100, `the server hung up after ${sent} MiB of 100`);
  const grown = process.memoryUsage().heapUsed + process.memoryUsage().external - heapBefore;
  t.ok(grown < 50 * 1024 * 1024, `memory grew by ${Math.round(grown / 1024 / 1024)} MiB, not 100`);
  const other = await RawClient.tcp(t, h);
  t.equal(await other.command('PING'), 'PONG');
});

t.test('a client that does not read its replies stops being read, and goes on once it reads', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  await c.command('SET', 'memory', '0', 'big', Buffer.alloc(100 * 1024, 0x62));
  c.socket.pause(); // stops reading: replies pile up in the server
  global.gc?.();
  const before = process.memoryUsage();
  // One 64 KB write of GETs asks for about 430 MB of replies.
  const request = Buffer.from('GET memory big\n'.repeat(Math.floor((64 * 1024) / 15)));
  c.socket.write(request);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = process.memoryUsage();
  const grown = after.external + after.heapUsed - before.external - before.heapUsed;
  t.ok(grown < 32 * 1024 * 1024, `the server held ${Math.round(grown / 1024 / 1024)} MiB for it, not 430`);
  const other = await RawClient.tcp(t, h);
  t.equal(await other.command('PING'), 'PONG', 'other clients are served meanwhile');
  const expected = Math.floor((64 * 1024) / 15);
  const first = c.replies.length;
  c.socket.resume();
  const replies = await c.next(expected, first);
  t.equal(replies.length, expected, 'every GET is answered once the client reads');
  t.ok(
    replies.every((reply) => Buffer.isBuffer(reply) && reply.length === 100 * 1024),
    'each with the whole value',
  );
  t.equal(await c.command('PING'), 'PONG', 'and the connection goes on');
});

t.test('a client that never reads its replies is disconnected past the output limit', async (t) => {
  const h = await startServer(t, { maxOutputBuffer: 1024 * 1024 });
  const c = await RawClient.tcp(t, h);
  // hdd replies are produced when the disk answers, after the requests were read.
  await c.command('SET', 'hdd', '0', 'big', Buffer.alloc(64 * 1024, 0x62));
  c.socket.pause();
  c.socket.write(Buffer.from('GET hdd big\r\n'.repeat(1000)));
  const deadline = Date.now() + 20_000;
  while (!h.log.some((line) => line.includes('unread')) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.match(h.log.join(''), /disconnecting a client that left \d+ bytes of replies unread \(limit 1048576\)/);
  c.socket.resume();
  await c.closed();
  t.ok(c.replies.length < 1000, `the client got ${c.replies.length} of the 1000 replies before it was cut off`);
  const other = await RawClient.tcp(t, h);
  t.equal(await other.command('PING'), 'PONG', 'the server keeps serving');
});

t.test('a reply larger than the output limit still reaches a client that reads', async (t) => {
  const h = await startServer(t, { maxOutputBuffer: 1024 * 1024 });
  const c = await RawClient.tcp(t, h);
  const value = Buffer.alloc(3 * 1024 * 1024, 0x63);
  t.equal(await c.command('SET', 'memory', '0', 'huge', value), 'OK');
  const reply = await c.command('GET', 'memory', 'huge');
  t.ok(Buffer.isBuffer(reply) && value.equals(reply), 'the 3 MiB value, whole');
});

t.test('1,000 connections at once', async (t) => {
  const h = await startServer(t);
  const clients = await Promise.all(Array.from({ length: 1000 }, () => RawClient.tcp(t, h)));
  const replies = await Promise.all(clients.map((c, i) => c.command('SET', 'memory', '0', `c${i}`, `${i}`)));
  t.equal(replies.filter((r) => r === 'OK').length, 1000);
  t.equal(await clients[999]?.command('COUNT', 'memory'), 1000);
  const stats = JSON.parse(String(await clients[0]?.command('STATS')));
  t.equal(stats.connections.tcp.current, 1000);
  for (const c of clients) c.socket.end();
  await Promise.all(clients.map((c) => c.closed()));
});

t.test('a half-closed socket still gets every reply', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const before = c.replies.length;
  c.socket.end('SET hdd 0 half closed\r\nGET hdd half\r\nPING\r\n');
  const replies = await c.next(3, before);
  t.same(replies, ['OK', Buffer.from('closed'), 'PONG']);
  await c.closed();
});

t.test('replies a group commit settles together go out in one write', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  // The server runs in this process: count the writes of its end of this connection.
  const clientPort = c.socket.localPort;
  let serverWrites = 0;
  const write = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
    if (this.remotePort === clientPort) serverWrites++;
    return write.apply(this, args);
  } as Socket['write'];
  t.teardown(() => {
    Socket.prototype.write = write;
  });
  const before = c.replies.length;
  // One key: one shard, one group commit, sixteen promises settled in one turn.
  c.write('SET hdd 0 k v\r\n'.repeat(16));
  const replies = await c.next(16, before);
  t.same(replies, Array(16).fill('OK'));
  t.equal(serverWrites, 1, 'sixteen replies, one write');
});
