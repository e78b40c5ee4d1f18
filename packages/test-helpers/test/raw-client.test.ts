import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { type Address, RawClient, ReplyError, text, within } from '../src/index.js';

/** A TCP server that answers each line it reads with `answer(line)`; closed after the test. */
async function listen(t: Test, answer: (line: string, socket: Socket) => void): Promise<Address> {
  const server = createServer((socket) => {
    let held = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      held += chunk;
      for (let eol = held.indexOf('\r\n'); eol !== -1; eol = held.indexOf('\r\n')) {
        answer(held.slice(0, eol), socket);
        held = held.slice(eol + 2);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const { address, port } = server.address() as AddressInfo;
  return { host: address, port };
}

t.test('RawClient: commands, inline lines and pipelines; pushes kept apart; how it closed', async (t) => {
  let numbers = 0;
  const address = await listen(t, (line, socket) => {
    if (line === 'PING') socket.write('>2\r\n+event\r\n:1\r\n+PONG\r\n');
    if (line === 'INLINE') socket.write('$5\r\nhello\r\n');
    if (line === 'NUMBER') socket.write(`:${++numbers}\r\n`);
    if (line === 'BYE') socket.end('-QUIT bye\r\n');
  });
  const client = await RawClient.tcp(t, { server: { addresses: { tcp: address } } });
  t.equal(await client.command('PING'), 'PONG', 'a command goes as a RESP array');
  t.same(client.pushes, [['event', 1]], 'the push is not taken for the reply');
  t.equal(text(await client.inline('INLINE')), 'hello');
  t.same(await client.send([['NUMBER'], ['NUMBER'], ['NUMBER']]), [1, 2, 3], 'pipelined, in order');
  client.write('BYE\r\n');
  await within(client.closed(), 5_000, 'close');
  t.equal(client.closedBy, 'end');
  const last = client.replies.at(-1);
  t.ok(last instanceof ReplyError);
  t.same([(last as ReplyError).code, (last as ReplyError).message], ['QUIT', 'bye']);
  await t.rejects(client.send([['NUMBER']], 200), /0 of 1 replies: closed/);
  t.same(await client.next(1), [], 'next on a closed client returns what there is');
});

t.test('RawClient: bytes that are not RESP set protocolError', async (t) => {
  const address = await listen(t, (_, socket) => socket.write('+fine\r\nnot resp\r\n'));
  const client = await RawClient.open(t, address);
  t.equal(await client.inline('HI'), 'fine');
  t.same(await client.next(1, undefined, 300), [], 'nothing read after it');
  t.match(client.protocolError?.message, /unexpected type byte 0x6e/);
});
