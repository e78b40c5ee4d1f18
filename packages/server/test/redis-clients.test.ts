// Real Redis clients with their default settings: ioredis (its ready check sends INFO) and
// redis-cli from Debian (--pipe ends its input with ECHO). scripts/test.sh installs redis-cli
// when it is missing.
import { execFile } from 'node:child_process';
import { type Run, run } from '@hati/test-helpers';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import t from 'tap';
import { RawClient, type ReplyError, startServer } from './common/harness.js';

/** Runs redis-cli with `input` on stdin; its exit code and output. */
function redisCli(args: string[], input = ''): Promise<Run> {
  return run('redis-cli', args, { input });
}

const hasRedisCli = await new Promise<boolean>((resolve) =>
  execFile('redis-cli', ['--version'], (err) => resolve(err === null)),
);

/** Debian's python3-redis (scripts/test.sh installs it when it is missing and it can). */
const hasPythonRedis = await new Promise<boolean>((resolve) =>
  execFile('/usr/bin/python3', ['-c', 'import redis'], (err) => resolve(err === null)),
);

t.test('ioredis with its defaults becomes ready and runs commands', async (t) => {
  const h = await startServer(t);
  const { host, port } = h.server.addresses.tcp as { host: string; port: number };
  const redis = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => redis.disconnect());
  // connect() resolves once the ready check (INFO) has passed.
  await redis.connect();
  t.equal(redis.status, 'ready');
  t.equal(await redis.call('SET', 'memory', '0', 'greeting', 'hello world'), 'OK');
  t.equal(await redis.call('GET', 'memory', 'greeting'), 'hello world');
  t.equal(await redis.call('ECHO', 'hi'), 'hi');
  t.equal(await redis.ping(), 'PONG');
  const info = String(await redis.call('INFO', 'keyspace'));
  t.match(info, /^# Keyspace\r\nmemory:keys=1\r\nhdd:keys=0\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n$/);
  await t.rejects(redis.call('SELECT', '1'), /DB_INDEX_INVALID Hati has only database 0/);
  // A client configured for db 0 sends SELECT 0 on connect.
  const zero = new Redis({ host, port, db: 0, lazyConnect: true });
  t.teardown(() => zero.disconnect());
  await zero.connect();
  t.equal(await zero.call('GET', 'memory', 'greeting'), 'hello world');
});

t.test('INFO: sections in Redis text format', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  await c.command('SET', 'hdd', '0', 'k', 'v');
  const all = String(await c.command('INFO'));
  for (const title of ['Server', 'Clients', 'Memory', 'Persistence', 'Stats', 'Keyspace']) {
    t.match(all, new RegExp(`(^|\\r\\n)# ${title}\\r\\n`), `has # ${title}`);
  }
  t.match(all, /\r\nloading:0\r\n/);
  t.match(all, /\r\nconnected_clients:1\r\n/);
  t.match(all, /\r\nhdd:keys=1\r\n/);
  t.match(all, /hati_version:\d+\.\d+\.\d+\r\n/);
  t.equal(String(await c.command('INFO', 'NOSUCH')), '', 'an unknown section is empty, as in Redis');
  t.equal(String(await c.command('info', 'CLIENTS')).split('\r\n')[0], '# Clients', 'any case');
  const select = await c.command('SELECT', 'x');
  t.equal((select as ReplyError).code, 'DB_INDEX_INVALID');
  t.equal(await c.command('SELECT', '0'), 'OK');
});

t.test(
  'redis-cli: a command, and --pipe (which ends with ECHO)',
  { skip: hasRedisCli ? false : 'redis-cli is not installed' },
  async (t) => {
    const h = await startServer(t);
    const { port } = h.server.addresses.tcp as { host: string; port: number };
    const one = await redisCli(['-p', String(port), 'SET', 'memory', '0', 'k', 'v']);
    t.same([one.code, one.stdout.trim()], [0, 'OK']);
    const lines = Array.from({ length: 1000 }, (_, i) => `SET memory 0 piped:${i} ${i}\r\n`).join('');
    const piped = await redisCli(['-p', String(port), '--pipe'], lines);
    t.equal(piped.code, 0, `redis-cli --pipe exits 0 (${piped.stderr.trim()})`);
    t.match(piped.stdout, /errors: 0, replies: 1000/);
    const count = await redisCli(['-p', String(port), 'COUNT', 'memory']);
    t.equal(count.stdout.trim(), '1001');
  },
);

t.test('node-redis with its defaults (RESP2, then RESP3): commands, names, pub/sub', async (t) => {
  const h = await startServer(t);
  const { host, port } = h.server.addresses.tcp as { host: string; port: number };
  const client = createClient({ socket: { host, port, reconnectStrategy: false }, name: 'app-1' });
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  await client.connect();
  t.equal(await client.sendCommand(['SET', 'memory', '0', 'k', 'v']), 'OK');
  t.equal(await client.sendCommand(['GET', 'memory', 'k']), 'v');
  t.equal(await client.ping(), 'PONG');
  t.equal(await client.clientGetName(), 'app-1', 'its name option sends CLIENT SETNAME');
  t.match(String(await client.sendCommand(['CLIENT', 'INFO'])), /lib-name=node-redis/);
  const r3 = createClient({ socket: { host, port, reconnectStrategy: false }, RESP: 3 });
  r3.on('error', () => {});
  t.teardown(() => r3.destroy());
  await r3.connect();
  t.equal(await r3.sendCommand(['GET', 'memory', 'k']), 'v');
  const subscriber = r3.duplicate();
  subscriber.on('error', () => {});
  t.teardown(() => subscriber.destroy());
  await subscriber.connect();
  const got = new Promise<[string, string]>((resolve) => {
    void subscriber.subscribe('__keyspace@memory__:watched', (message, channel) => resolve([message, channel]));
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  await r3.sendCommand(['SET', 'memory', '0', 'watched', 'x']);
  t.same(await got, ['set', '__keyspace@memory__:watched']);
});

t.test('redis-cli -3, --scan and --stat', { skip: hasRedisCli ? false : 'redis-cli is not installed' }, async (t) => {
  const h = await startServer(t);
  const { port } = h.server.addresses.tcp as { host: string; port: number };
  const p = ['-p', String(port)];
  const resp3 = await redisCli([...p, '-3', 'HELLO', '3']);
  t.equal(resp3.code, 0);
  t.match(resp3.stdout, /^server hati\nversion 7\.2\.0\n/, 'the server map');
  const lines = Array.from({ length: 300 }, (_, i) => `SET memory 0 user:${i} x\r\n`).join('');
  await redisCli([...p, '--pipe'], lines);
  await redisCli([...p, 'SET', 'hdd', '0', 'disk:1', 'x']);
  const scan = await redisCli([...p, '--scan', '--pattern', 'user:1*']);
  t.equal(scan.code, 0, scan.stderr);
  t.equal(scan.stdout.trim().split('\n').length, 111, 'user:1, user:10-19 and user:100-199');
  const hdd = await redisCli([...p, 'SCAN', '0', 'TYPE', 'hdd']);
  t.same(hdd.stdout.trim().split('\n'), ['0', 'disk:1'], "Redis's SCAN form: TYPE names the storage type");
  // --stat prints until it is killed: line-buffered (stdbuf), so what it printed is kept.
  const stat = await run('stdbuf', ['-oL', 'redis-cli', ...p, '--stat', '-i', '0.2'], { timeoutMs: 1500 });
  t.match(stat.stdout, /keys\s+mem\s+clients/, 'its header');
  t.match(stat.stdout, /\n301\s+/, 'the key count of both keyspaces');
});

t.test(
  "python's redis (Debian's python3-redis) with its defaults",
  { skip: hasPythonRedis ? false : 'python3-redis is not installed' },
  async (t) => {
    const h = await startServer(t);
    const { port } = h.server.addresses.tcp as { host: string; port: number };
    const script = [
      'import redis',
      `r = redis.Redis(port=${port})`,
      "print(r.execute_command('SET', 'hdd', '0', 'k', 'v'))",
      "print(r.execute_command('GET', 'hdd', 'k').decode())",
      'print(r.ping())',
      "print(r.client_setname('py'), r.client_getname())",
      "print(sorted(k.decode() for k in r.scan_iter(match='*', _type='memory')))",
      "p = r.pubsub(); p.subscribe('__keyevent@memory__:set'); print(p.get_message(timeout=1)['type'])",
      "r.execute_command('SET', 'memory', '0', 'seen', '1')",
      "m = p.get_message(timeout=2); print(m['channel'].decode(), m['data'].decode())",
    ].join('\n');
    const out = await run('/usr/bin/python3', ['-c', script]);
    t.equal(out.code, 0, out.stderr);
    t.same(out.stdout.trim().split('\n'), [
      'True',
      'v',
      'True',
      'True py',
      '[]',
      'subscribe',
      '__keyevent@memory__:set seen',
    ]);
  },
);

t.test(
  'redis-cli SUBSCRIBE shows keyspace events (RESP2 pub/sub), and loads COMMAND DOCS for its hints',
  { skip: hasRedisCli ? false : 'redis-cli is not installed' },
  async (t) => {
    const h = await startServer(t);
    const { port } = h.server.addresses.tcp as { host: string; port: number };
    const p = ['-p', String(port)];
    // SUBSCRIBE prints until it is killed: line-buffered, so what it printed is kept.
    const subscribed = run('stdbuf', ['-oL', 'redis-cli', ...p, 'SUBSCRIBE', '__keyevent@memory__:set'], {
      timeoutMs: 2500,
    });
    await new Promise((resolve) => setTimeout(resolve, 800));
    t.equal((await redisCli([...p, 'SET', 'memory', '0', 'watched', 'x'])).stdout.trim(), 'OK');
    const out = await subscribed;
    t.same(out.stdout.trim().split('\n'), [
      'subscribe',
      '__keyevent@memory__:set',
      '1',
      'message',
      '__keyevent@memory__:set',
      'watched',
    ]);
    const docs = await redisCli([...p, 'COMMAND', 'DOCS', 'GET']);
    t.match(docs.stdout, /^get\nsummary\nReturns a key's value/, 'what redis-cli reads for its hints');
  },
);
