// Real Redis clients with their default settings: ioredis (its ready check sends INFO) and
// redis-cli from Debian (--pipe ends its input with ECHO). scripts/test.sh installs redis-cli
// when it is missing.
import { execFile, spawn } from 'node:child_process';
import type { ReplyError } from '@hati/protocol';
import { Redis } from 'ioredis';
import t from 'tap';
import { RawClient, startServer } from './common/harness.js';

function redisCli(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

const hasRedisCli = await new Promise<boolean>((resolve) =>
  execFile('redis-cli', ['--version'], (err) => resolve(err === null)),
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
  t.match(info, /^# Keyspace\r\nmemory:keys=1\r\nhdd:keys=0\r\n$/);
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
