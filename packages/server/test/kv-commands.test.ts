// TTL, EXPIRE, SCAN, KEYS, INCR/INCRBY, SET NX|XX, MGET/MSET, DBSIZE: on both storage types,
// over TCP and JSON-RPC.
import t from 'tap';
import { call, RawClient, type ReplyError, startServer } from './common/harness.js';

const types = ['memory', 'hdd'] as const;
const code = (reply: unknown) => (reply as ReplyError).code;
const rpcCode = (r: { error?: unknown }) => (r.error as { data: { code: string } } | undefined)?.data.code;

for (const type of types) {
  t.test(`${type}: TTL and EXPIRE (ms, as Redis's PTTL and PEXPIRE)`, async (t) => {
    const h = await startServer(t);
    const c = await RawClient.tcp(t, h);
    await c.command('SET', type, '0', 'forever', 'x');
    await c.command('SET', type, '5000', 'brief', 'x');
    t.same(
      await c.send([
        ['TTL', type, 'forever'],
        ['TTL', type, 'brief'],
        ['TTL', type, 'missing'],
      ]),
      [-1, 5000, -2],
    );
    h.clock.now += 1_000;
    t.equal(await c.command('TTL', type, 'brief'), 4000);
    t.same(
      await c.send([
        ['EXPIRE', type, 'forever', '2000'],
        ['EXPIRE', type, 'missing', '5'],
      ]),
      [1, 0],
    );
    t.equal(await c.command('TTL', type, 'forever'), 2000);
    t.equal(await c.command('EXPIRE', type, 'forever', '0'), 1, '0 removes the expiry');
    t.equal(await c.command('TTL', type, 'forever'), -1);
    t.equal(code(await c.command('EXPIRE', type, 'forever', '-1')), 'TTL_INVALID');
    h.clock.now += 5_000;
    t.equal(await c.command('TTL', type, 'brief'), -2, 'expired is missing');
    t.same((await call(h, 'Storage.Ttl', { type, key: 'forever' })).result, -1);
    t.same((await call(h, 'Storage.Expire', { type, key: 'forever', ttl: 10 })).result, true);
    t.same((await call(h, 'Storage.Ttl', { type, key: 'forever' })).result, 10);
  });

  t.test(`${type}: INCR and INCRBY are atomic 64-bit integers`, async (t) => {
    const h = await startServer(t);
    const c = await RawClient.tcp(t, h);
    // Pipelined from two connections at once: every increment counts.
    const d = await RawClient.tcp(t, h);
    await Promise.all([
      c.send(Array.from({ length: 100 }, () => ['INCR', type, 'n'])),
      d.send(Array.from({ length: 100 }, () => ['INCRBY', type, 'n', '2'])),
    ]);
    t.equal(String(await c.command('GET', type, 'n')), '300');
    t.equal(await c.command('INCRBY', type, 'n', '-301'), -1);
    await c.command('SET', type, '0', 'big', '9223372036854775806');
    // The raw reader reads integers as numbers: past 2^53 they round, as in JavaScript.
    t.equal(await c.command('INCR', type, 'big'), Number('9223372036854775807'));
    t.equal(code(await c.command('INCR', type, 'big')), 'INTEGER_OVERFLOW');
    t.equal(String(await c.command('GET', type, 'big')), '9223372036854775807', 'unchanged after an overflow');
    await c.command('SET', type, '0', 'text', 'ten');
    t.equal(code(await c.command('INCR', type, 'text')), 'NOT_INTEGER');
    t.equal(code(await c.command('INCRBY', type, 'n', '1.5')), 'NOT_INTEGER');
    t.equal(code(await c.command('INCRBY', type, 'n', '01')), 'NOT_INTEGER');
    t.same((await call(h, 'Storage.Incr', { type, key: 'fresh' })).result, 1);
    t.same((await call(h, 'Storage.IncrBy', { type, key: 'fresh', delta: 41 })).result, 42);
    t.same(
      (await call(h, 'Storage.IncrBy', { type, key: 'big', delta: -1 })).result,
      '9223372036854775806',
      'past 2^53: a string',
    );
    t.equal(rpcCode(await call(h, 'Storage.IncrBy', { type, key: 'fresh', delta: 'x' })), 'NOT_INTEGER');
    // A ttl survives an increment, as in Redis.
    await c.command('SET', type, '5000', 'ttl', '1');
    await c.command('INCR', type, 'ttl');
    t.equal(await c.command('TTL', type, 'ttl'), 5000);
  });

  t.test(`${type}: SET NX|XX, MGET and MSET`, async (t) => {
    const h = await startServer(t);
    const c = await RawClient.tcp(t, h);
    t.same(
      await c.send([
        ['SET', type, '0', 'k', 'first', 'NX'],
        ['SET', type, '0', 'k', 'second', 'nx'],
        ['SET', type, '0', 'k', 'third', 'XX'],
        ['SET', type, '0', 'none', 'x', 'XX'],
        ['GET', type, 'k'],
      ]),
      ['OK', null, 'OK', null, Buffer.from('third')],
    );
    // NX and XX exclude each other: SET takes at most one of them.
    t.equal(code(await c.command('SET', type, '0', 'k', 'v', 'NX', 'XX')), 'WRONG_ARITY');
    t.equal(code(await c.command('SET', type, '0', 'k', 'v', 'EX')), 'SYNTAX');
    t.equal(await c.inline(`SET ${type} 0 spaced NX value`), 'OK', 'inline: the value is the rest of the line');
    t.equal(String(await c.command('GET', type, 'spaced')), 'NX value');
    t.equal(await c.command('MSET', type, 'a', '1', 'b', '2'), 'OK');
    t.same(await c.command('MGET', type, 'a', 'missing', 'b'), [Buffer.from('1'), null, Buffer.from('2')]);
    t.equal(code(await c.command('MSET', type, 'a', '1', 'b')), 'WRONG_ARITY');
    t.same((await call(h, 'Storage.Set', { type, key: 'k', value: 'v', condition: 'NX' })).result, false);
    t.same((await call(h, 'Storage.Set', { type, key: 'k', value: 'v', condition: 'xx' })).result, true);
    t.equal(rpcCode(await call(h, 'Storage.Set', { type, key: 'k', value: 'v', condition: 'YY' })), 'PARAMS_INVALID');
    t.same((await call(h, 'Storage.MSet', { type, entries: { x: '1', y: '2' } })).result, true);
    t.same((await call(h, 'Storage.MSet', { type, entries: [['z', '3']] })).result, true);
    t.same((await call(h, 'Storage.MGet', { type, keys: ['x', 'nope', 'z'] })).result, ['1', null, '3']);
    t.same(
      (await call(h, 'Storage.MGet', { type, keys: [Buffer.from('x').toString('base64')], encoding: 'base64' })).result,
      [Buffer.from('1').toString('base64')],
    );
    t.equal(rpcCode(await call(h, 'Storage.MGet', { type, keys: [] })), 'PARAMS_INVALID');
  });

  t.test(`${type}: SCAN walks every key in bounded steps; KEYS matches a glob`, async (t) => {
    const h = await startServer(t);
    const c = await RawClient.tcp(t, h);
    await c.send(Array.from({ length: 250 }, (_, i) => ['SET', type, '0', `user:${i}`, 'x']));
    await c.send(Array.from({ length: 50 }, (_, i) => ['SET', type, '0', `order:${i}`, 'x']));
    const seen = new Set<string>();
    let cursor = '0';
    let calls = 0;
    do {
      const [next, keys] = (await c.command('SCAN', type, cursor, 'MATCH', 'user:*', 'COUNT', '20')) as [
        Buffer,
        Buffer[],
      ];
      t.ok(keys.length <= 40, 'a bounded batch');
      for (const key of keys) seen.add(String(key));
      // Writes between calls do not break the walk.
      await c.command('SET', type, '0', `late:${calls}`, 'x');
      cursor = String(next);
      calls++;
    } while (cursor !== '0' && calls < 1000);
    t.equal(seen.size, 250, 'every matching key');
    t.ok([...seen].every((key) => key.startsWith('user:')));
    t.ok(calls > 5, `many calls (${calls})`);
    const keys = ((await c.command('KEYS', type, 'order:1?')) as Buffer[]).map(String).sort();
    t.same(keys, Array.from({ length: 10 }, (_, i) => `order:1${i}`).sort());
    t.equal(code(await c.command('SCAN', type, 'abc')), 'CURSOR_INVALID');
    const rpc = (await call(h, 'Storage.Scan', { type, pattern: 'order:*', count: 1000 })).result as {
      cursor: string;
      keys: string[];
    };
    t.equal(rpc.keys.length + (rpc.cursor === '0' ? 0 : 1) >= 1, true);
    const all = (await call(h, 'Storage.Keys', { type, pattern: 'order:*' })).result as string[];
    t.equal(all.length, 50);
  });
}

t.test("SCAN in Redis's form (as redis-cli --scan sends it) and DBSIZE", async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  await c.send([
    ['SET', 'memory', '0', 'm', 'x'],
    ['SET', 'hdd', '0', 'h1', 'x'],
    ['SET', 'hdd', '0', 'h2', 'x'],
  ]);
  const [cursor, keys] = (await c.command('SCAN', '0', 'COUNT', '100')) as [Buffer, Buffer[]];
  t.equal(String(cursor), '0');
  t.same(keys.map(String), ['m'], 'memory when no TYPE is given');
  const [, hdd] = (await c.command('SCAN', '0', 'TYPE', 'hdd')) as [Buffer, Buffer[]];
  t.same(hdd.map(String).sort(), ['h1', 'h2']);
  t.equal(code(await c.command('SCAN', 'memory', '0', 'TYPE', 'hdd')), 'ARGUMENT_INVALID');
  t.equal(code(await c.command('SCAN', '0', 'TYPE', 'ram')), 'STORAGE_TYPE_INVALID');
  t.same(await c.send([['DBSIZE'], ['DBSIZE', 'hdd'], ['DBSIZE', 'memory']]), [3, 2, 1]);
});
