// The typed methods added with the 0.2 table (conditional SET, TTL, EXPIRE, SCAN, KEYS, INCR,
// INCRBY, MGET, MSET, INFO), against a real server, over TCP, a UNIX socket and JSON-RPC.
import t from 'tap';
import { createClient, createRpcClient } from '../src/index.js';
import { clientsOf, codeOf, startServer } from './common/harness.js';

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const item of iterable) all.push(item);
  return all;
}

t.test('the 0.2 methods on both storage types, over TCP, a UNIX socket and JSON-RPC', async (t) => {
  const { server } = await startServer(t);
  for (const [name, client] of clientsOf(t, server)) {
    for (const type of ['memory', 'hdd'] as const) {
      const at = `${name} ${type}`;
      await client.flushAll(type);

      // SET with a condition resolves whether it stored.
      t.equal(await client.set(type, 'k', 'v1', { condition: 'XX' }), false, `${at}: XX on a missing key`);
      t.equal(await client.get(type, 'k'), null);
      t.equal(await client.set(type, 'k', 'v1', { condition: 'NX' }), true, `${at}: NX on a missing key`);
      t.equal(await client.set(type, 'k', 'v2', { condition: 'NX' }), false, `${at}: NX on a present key`);
      t.equal(await client.set(type, 'k', 'v3', { condition: 'XX', ttl: 60_000 }), true, `${at}: XX on a present key`);
      t.equal(await client.get(type, 'k'), 'v3');

      // TTL and EXPIRE.
      const ttl = await client.ttl(type, 'k');
      t.ok(ttl > 50_000 && ttl <= 60_000, `${at}: ttl ${ttl}`);
      t.equal(await client.expire(type, 'k', 0), true, `${at}: expire 0 removes the expiry`);
      t.equal(await client.ttl(type, 'k'), -1, `${at}: no expiry`);
      t.equal(await client.ttl(type, 'missing'), -2, `${at}: missing`);
      t.equal(await client.expire(type, 'missing', 1000), false, `${at}: expire on a missing key`);

      // MSET and MGET, objects and pairs, binary values.
      const bytes = Buffer.from([0, 255, 13, 10]);
      await client.mset(type, { 'user:1': 'ada', 'user:2': 'grace' });
      await client.mset(type, [
        ['user:3', bytes],
        [Buffer.from('user:4'), 'alan'],
      ]);
      t.same(await client.mget(type, ['user:1', 'missing', 'user:2']), ['ada', null, 'grace'], `${at}: mget`);
      t.same(await client.mgetBuffer(type, ['user:3']), [bytes], `${at}: mgetBuffer keeps the bytes`);
      t.same(await client.mget(type, []), [], `${at}: mget of no keys`);
      await client.mset(type, {});

      // KEYS, SCAN and the iterator.
      const users = ['user:1', 'user:2', 'user:3', 'user:4'];
      t.same((await client.keys(type, 'user:*')).sort(), users, `${at}: keys`);
      t.same((await client.keysBuffer(type, 'user:[12]')).map(String).sort(), ['user:1', 'user:2']);
      t.same((await collect(client.scanIterator(type, { match: 'user:*', count: 1 }))).sort(), users, `${at}: scan`);
      const first = await client.scan(type, '0', { count: 1000 });
      t.equal(first.cursor, '0', `${at}: one step covers a small keyspace`);
      t.same(first.keys.sort(), ['k', ...users]);
      const binary = Buffer.from([0xff, 0x00, 0x41]);
      await client.set(type, binary, 'b');
      t.ok(
        (await client.scanBuffer(type, 0, { count: 1000 })).keys.some((key) => key.equals(binary)),
        `${at}: scanBuffer returns a binary key exactly`,
      );
      t.same(
        (await client.keysBuffer(type, Buffer.from([0xff, 0x2a]))).map((key) => key.toString('hex')),
        [binary.toString('hex')],
        `${at}: a binary pattern`,
      );

      // INCR and INCRBY, with a bigint delta.
      t.equal(await client.incr(type, 'n'), 1, `${at}: incr of a missing key`);
      t.equal(await client.incrBy(type, 'n', 41), 42, `${at}: incrBy`);
      t.equal(await client.incrBy(type, 'n', -50n), -8, `${at}: a negative bigint`);
      t.equal(await client.incrBy(type, 'big', 2n ** 60n), 2 ** 60, `${at}: past 2^53, rounded to a number`);
      t.equal(await codeOf(client.incr(type, 'user:1')), 'NOT_INTEGER', `${at}: not an integer`);
      t.equal(await codeOf(client.incrBy(type, 'big', 2n ** 63n - 1n)), 'INTEGER_OVERFLOW', `${at}: overflow`);
      t.equal(await codeOf(client.incrBy(type, 'big', 2n ** 63n)), 'NOT_INTEGER', `${at}: a delta past 64 bits`);
    }
    t.match(await client.info(), /hati_version|redis_version/, `${name}: info`);
    t.match(await client.info('server'), /# Server/i, `${name}: info server`);
    t.equal(await client.ping('hello there'), 'hello there', `${name}: ping`);
  }
});

t.test('JSON-RPC: the params of each command, as the server reads them', async (t) => {
  const { server } = await startServer(t);
  const rpc = createRpcClient({ url: `http://127.0.0.1:${server.addresses.rpc?.port}/` });
  const tcp = createClient({ port: server.addresses.tcp?.port as number });
  t.teardown(() => tcp.close());
  const [stored, notStored, values, count] = await rpc.batch((b) => [
    b.set('memory', 'a', '1', { condition: 'NX' }),
    b.set('memory', 'a', '2', { condition: 'NX' }),
    b.mget('memory', ['a', 'b']),
    b.incrBy('memory', 'c', 5n),
  ]);
  t.same(
    [stored, notStored, values, count],
    [true, false, ['1', null], 5],
    'conditions, key lists, bigints in a batch',
  );
  t.equal(await tcp.get('memory', 'a'), '1', 'what JSON-RPC stored, TCP reads');
  t.equal(await tcp.incrBy('memory', 'huge', 2n ** 62n), 2 ** 62);
  t.equal(await rpc.incrBy('memory', 'huge', 1), 2 ** 62 + 1, 'a result past 2^53 (a decimal string) becomes a number');
});
