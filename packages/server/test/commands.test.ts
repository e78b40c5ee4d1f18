import t from 'tap';
import { RawClient, ReplyError, startServer } from './common/harness.js';

const errorOf = (reply: unknown) =>
  reply instanceof ReplyError ? { code: reply.code, message: reply.message } : { notAnError: reply };

t.test('every key/value command, both storage types, over TCP and the UNIX socket', async (t) => {
  const h = await startServer(t);
  for (const transport of ['tcp', 'unix'] as const) {
    const c = transport === 'tcp' ? await RawClient.tcp(t, h) : await RawClient.unix(t, h);
    for (const type of ['memory', 'hdd', 'MEMORY', 'Hdd']) {
      const at = `${transport} ${type}`;
      t.equal(await c.command('FLUSHALL', type), 'OK', `${at}: FLUSHALL`);
      t.equal(await c.command('GET', type, 'k'), null, `${at}: GET missing is a null bulk`);
      t.equal(await c.command('HAS', type, 'k'), 0, `${at}: HAS missing`);
      t.equal(await c.command('SET', type, '0', 'k', 'v1'), 'OK', `${at}: SET`);
      t.same(await c.command('GET', type, 'k'), Buffer.from('v1'), `${at}: GET`);
      t.equal(await c.command('HAS', type, 'k'), 1, `${at}: HAS`);
      t.equal(await c.command('COUNT', type), 1, `${at}: COUNT`);
      t.equal(await c.command('set', type, '0', 'k2', 'v2'), 'OK', `${at}: lower-case command name`);
      t.equal(await c.command('COUNT', type), 2);
      t.equal(await c.command('DELETE', type, 'k'), 1, `${at}: DELETE`);
      t.equal(await c.command('DELETE', type, 'k'), 0, `${at}: DELETE again`);
      t.equal(await c.command('COUNT', type), 1);
      t.equal(await c.command('FLUSHALL', type), 'OK');
      t.equal(await c.command('COUNT', type), 0, `${at}: FLUSHALL empties`);
    }
    t.equal(await c.command('PING'), 'PONG');
    t.same(await c.command('PING', 'hello there'), Buffer.from('hello there'));
  }
});

t.test('memory and hdd are separate keyspaces', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  await c.command('SET', 'memory', '0', 'k', 'in memory');
  await c.command('SET', 'hdd', '0', 'k', 'on disk');
  t.same(await c.command('GET', 'memory', 'k'), Buffer.from('in memory'));
  t.same(await c.command('GET', 'hdd', 'k'), Buffer.from('on disk'));
});

t.test("inline commands: the seed's form, SET's value is the rest of the line", async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  for (const type of ['memory', 'hdd']) {
    t.equal(await c.inline(`SET ${type} 0 greeting hello world`), 'OK');
    t.same(await c.inline(`GET ${type} greeting`), Buffer.from('hello world'), 'spaces kept');
    t.equal(await c.inline(`SET ${type} 0 padded   two  spaces  `), 'OK');
    t.same(await c.inline(`GET ${type} padded`), Buffer.from('  two  spaces  '), 'verbatim after one separator');
    t.equal(await c.inline(`HAS ${type} greeting`), 1);
    t.equal(await c.inline(`COUNT ${type}`), 2);
    t.equal(await c.inline(`DELETE ${type} greeting`), 1);
  }
  const before = c.replies.length;
  c.write('GET memory padded\nPING\n');
  t.same(await c.next(2, before), [Buffer.from('  two  spaces  '), 'PONG'], 'LF alone ends a line too');
});

t.test('binary values with CR, LF and NUL inside (RESP)', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const value = Buffer.from([0x00, 0x0d, 0x0a, 0xff, 0x24, 0x2a, 0x0d, 0x0a, 0x00]);
  const key = Buffer.from([0x6b, 0x00, 0x0a, 0xfe]);
  for (const type of ['memory', 'hdd']) {
    t.equal(await c.command('SET', type, '0', key, value), 'OK');
    t.same(await c.command('GET', type, key), value, `${type}: bytes round-trip`);
    t.equal(await c.command('HAS', type, key), 1);
    const big = Buffer.alloc(5 * 1024 * 1024, 0x61);
    big[17] = 0x0d;
    t.equal(await c.command('SET', type, '0', 'big', big), 'OK');
    t.same(await c.command('GET', type, 'big'), big, `${type}: a 5 MiB value round-trips`);
  }
});

t.test('ttl: keys expire on both storage types', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  for (const type of ['memory', 'hdd']) {
    t.equal(await c.command('SET', type, '100', 'short', 'v'), 'OK');
    t.equal(await c.command('SET', type, '0', 'forever', 'v'), 'OK');
    t.equal(await c.command('SET', type, String(40 * 24 * 3600 * 1000), 'long', 'v'), 'OK', '40 days');
    h.clock.now += 100;
    // The clock counts whole milliseconds: at set time + 100 less than 100 ms may have passed.
    t.same(await c.command('GET', type, 'short'), Buffer.from('v'), `${type}: readable for its whole ttl`);
    h.clock.now += 1;
    t.equal(await c.command('GET', type, 'short'), null, `${type}: gone after its ttl`);
    t.equal(await c.command('HAS', type, 'short'), 0);
    t.equal(await c.command('COUNT', type), 2, `${type}: expired keys are not counted`);
    h.clock.now += 2 ** 31;
    t.same(await c.command('GET', type, 'long'), Buffer.from('v'), `${type}: alive past the 24.8-day timer limit`);
  }
});

t.test('10,000 pipelined commands in one write are answered in order', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const lines: string[] = [];
  const expected: unknown[] = [];
  for (let i = 0; i < 10_000; i++) {
    if (i % 2 === 0) {
      lines.push(`SET ${i % 3 === 0 ? 'hdd' : 'memory'} 0 key-${i % 100} value ${i}`);
      expected.push('OK');
    } else {
      // Reads what the request before wrote, on the same storage type.
      lines.push(`GET ${(i - 1) % 3 === 0 ? 'hdd' : 'memory'} key-${(i - 1) % 100}`);
      expected.push(Buffer.from(`value ${i - 1}`));
    }
  }
  const before = c.replies.length;
  c.write(`${lines.join('\r\n')}\r\n`);
  const replies = await c.next(10_000, before);
  t.equal(replies.length, 10_000);
  let firstMismatch = -1;
  for (let i = 0; i < replies.length && firstMismatch === -1; i++) {
    const want = expected[i];
    const got = replies[i];
    if (Buffer.isBuffer(want) ? !Buffer.isBuffer(got) || !want.equals(got) : got !== want) firstMismatch = i;
  }
  t.equal(firstMismatch, -1, 'every reply matches its request, in order');
});

t.test('QUIT answers +OK and closes; commands after it are not run', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const before = c.replies.length;
  c.write('SET hdd 0 a 1\r\nQUIT\r\nSET memory 0 after-quit 1\r\n');
  t.same(await c.next(2, before), ['OK', 'OK']);
  await c.closed();
  const d = await RawClient.tcp(t, h);
  t.equal(await d.command('HAS', 'memory', 'after-quit'), 0, 'nothing after QUIT ran');
  t.same(await d.command('GET', 'hdd', 'a'), Buffer.from('1'), 'the hdd write before QUIT was answered and stored');
});

t.test('STATS reports keys, shards, connections and commands', async (t) => {
  const h = await startServer(t, { shards: 4 });
  const c = await RawClient.tcp(t, h);
  await RawClient.unix(t, h);
  for (let i = 0; i < 10; i++) await c.command('SET', 'memory', '0', `m${i}`, 'v');
  for (let i = 0; i < 3; i++) await c.command('SET', 'hdd', '0', `h${i}`, 'v');
  const reply = await c.command('STATS');
  t.ok(Buffer.isBuffer(reply), 'a bulk reply');
  const stats = JSON.parse(String(reply));
  t.equal(stats.storage.memory.keys, 10);
  t.equal(stats.storage.memory.shards.length, 4);
  t.equal(
    stats.storage.memory.shards.reduce((a: number, b: number) => a + b, 0),
    10,
  );
  t.equal(stats.storage.hdd.keys, 3);
  t.same(stats.connections.tcp, { current: 1, total: 1 });
  t.same(stats.connections.unix, { current: 1, total: 1 });
  t.equal(stats.commands.processed, 14, '13 writes and this STATS');
  t.ok(stats.uptimeMs >= 0);
  t.ok(stats.memory.rss > 0 && stats.memory.heapUsed > 0);
});

t.test('errors have stable codes and leave the connection serving', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const cases: Array<[string, Array<string | Buffer>, string, string?]> = [
    ['unknown command', ['FOO', 'bar'], 'UNKNOWN_COMMAND', "unknown command 'FOO'"],
    ['wrong arity', ['GET', 'memory'], 'WRONG_ARITY'],
    ['too many arguments', ['GET', 'memory', 'a', 'b'], 'WRONG_ARITY'],
    [
      'storage type ram',
      ['GET', 'ram', 'k'],
      'STORAGE_TYPE_INVALID',
      "unknown storage type 'ram' (expected memory or hdd)",
    ],
    ['ttl -1', ['SET', 'memory', '-1', 'k', 'v'], 'TTL_INVALID'],
    ['ttl 1.5', ['SET', 'hdd', '1.5', 'k', 'v'], 'TTL_INVALID'],
    ['ttl abc', ['SET', 'memory', 'abc', 'k', 'v'], 'TTL_INVALID'],
    ['ttl empty', ['SET', 'memory', '', 'k', 'v'], 'TTL_INVALID'],
    ['ttl too large', ['SET', 'memory', '99999999999999999999', 'k', 'v'], 'TTL_INVALID'],
    ['empty key (memory)', ['SET', 'memory', '0', '', 'v'], 'KEY_EMPTY'],
    ['empty key (hdd)', ['GET', 'hdd', ''], 'KEY_EMPTY'],
  ];
  for (const [name, args, code, message] of cases) {
    const reply = errorOf(await c.command(...args));
    t.equal(reply.code, code, name);
    if (message !== undefined) t.equal(reply.message, message, `${name}: message`);
  }
  t.equal(errorOf(await c.inline('SET ram 0 k v')).code, 'STORAGE_TYPE_INVALID', 'inline too');
  t.equal(await c.command('PING'), 'PONG', 'the connection still serves');
  t.equal(await c.command('COUNT', 'memory'), 0, 'nothing was stored by refused commands');
});
