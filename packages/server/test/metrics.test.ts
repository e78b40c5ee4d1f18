// GET /metrics: names, labels and values after known traffic, on the JSON-RPC listener and on
// the metrics listener of its own; who may read them. docs/monitoring.md describes each metric.
import { join } from 'node:path';
import t from 'tap';
import { hashPassword, type UserRecord, writeUsersFile } from '../src/index.js';
import { call, type Harness, RawClient, startServer } from './common/harness.js';

interface Address {
  host: string;
  port: number;
}

/** GET `path` of `address`; status, headers and text. */
async function get(
  address: Address,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`http://${address.host}:${address.port}${path}`, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The samples of a Prometheus text exposition, by `name{label="value",...}` with labels sorted by name. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a Prometheus sample line: ${line}`);
    const [, name = '', labels = '', value = ''] = match;
    const pairs = [...labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(
      ([, k, v]) => `${k}="${v}"`,
    );
    found.set(pairs.length === 0 ? name : `${name}{${pairs.sort().join(',')}}`, Number(value));
  }
  return found;
}

/** One sample's key as `samples` writes it. */
function key(name: string, labels: Record<string, string> = {}): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return pairs.length === 0 ? name : `${name}{${pairs.sort().join(',')}}`;
}

async function scrape(address: Address, headers?: Record<string, string>): Promise<Map<string, number>> {
  const answer = await get(address, '/metrics', headers);
  if (answer.status !== 200) throw new Error(`GET /metrics: ${answer.status} ${answer.text}`);
  return samples(answer.text);
}

function rpcAddress(h: Harness): Address {
  return h.server.addresses.rpc as Address;
}

function errorCode(reply: unknown): string | undefined {
  return reply instanceof Error ? (reply as Error & { code?: string }).code : undefined;
}

t.test('commands, rpc calls, connections and keys after known traffic', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  for (let i = 0; i < 3; i++) t.equal(await c.command('SET', 'memory', '0', `k${i}`, 'v'), 'OK');
  t.equal(errorCode(await c.command('SET', 'memory', '-5', 'k', 'v')), 'TTL_INVALID');
  t.equal(errorCode(await c.command('NOPE')), 'UNKNOWN_COMMAND');
  t.equal(errorCode(await c.command('GET', 'memory')), 'WRONG_ARITY', 'a known command with a wrong arity');
  t.equal(await c.command('CLIENT', 'SETNAME', 'metrics-test'), 'OK');
  t.same(await call(h, 'Storage.Count', { type: 'memory' }), { result: 3 });
  t.match(await call(h, 'Storage.Nope'), { error: { data: { code: 'METHOD_NOT_FOUND' } } });

  const answer = await get(rpcAddress(h), '/metrics');
  t.equal(answer.status, 200);
  t.equal(answer.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  t.match(answer.text, /^# HELP hati_commands_total /m, 'help lines');
  t.match(answer.text, /^# TYPE hati_command_duration_seconds histogram$/m);
  const m = samples(answer.text);
  const expected: Array<[string, Record<string, string>, number]> = [
    ['hati_commands_total', { command: 'set', result: 'ok' }, 3],
    ['hati_commands_total', { command: 'set', result: 'TTL_INVALID' }, 1],
    ['hati_commands_total', { command: 'unknown', result: 'UNKNOWN_COMMAND' }, 1],
    ['hati_commands_total', { command: 'get', result: 'WRONG_ARITY' }, 1],
    ['hati_commands_total', { command: 'client|setname', result: 'ok' }, 1],
    ['hati_command_duration_seconds_count', { command: 'set' }, 4],
    ['hati_command_duration_seconds_bucket', { command: 'set', le: '+Inf' }, 4],
    ['hati_command_duration_seconds_count', { command: 'client|setname' }, 1],
    ['hati_rpc_calls_total', { method: 'Storage.Count', result: 'ok' }, 1],
    ['hati_rpc_calls_total', { method: 'unknown', result: 'METHOD_NOT_FOUND' }, 1],
    ['hati_connections', { listener: 'tcp' }, 1],
    ['hati_connections_total', { listener: 'tcp' }, 1],
    ['hati_connections', { listener: 'unix' }, 0],
    ['hati_keys', { type: 'memory' }, 3],
    ['hati_keys', { type: 'hdd' }, 0],
    ['hati_hdd_state', { state: 'ok' }, 1],
    ['hati_hdd_state', { state: 'gone' }, 0],
    ['hati_pubsub_delivered_total', {}, 0],
  ];
  for (const [name, labels, value] of expected) t.equal(m.get(key(name, labels)), value, key(name, labels));
  t.notOk(m.has(key('hati_commands_total', { command: 'get', result: 'ok' })), 'a command never run has no series');
  const shards = [...m].filter(([k]) => k.startsWith('hati_keys_per_shard{') && k.includes('type="memory"'));
  t.equal(shards.length, 8, 'a series per memory shard');
  t.equal(
    shards.reduce((sum, [, v]) => sum + v, 0),
    3,
    'the shards hold the 3 keys',
  );
  // Buckets are cumulative and end at the count.
  const buckets = [...m]
    .filter(([k]) => k.startsWith('hati_command_duration_seconds_bucket{command="set"'))
    .map(([, v]) => v);
  t.same(
    buckets,
    [...buckets].sort((a, b) => a - b),
    'set buckets never decrease',
  );
  t.ok((m.get(key('hati_command_duration_seconds_sum', { command: 'set' })) as number) > 0, 'a sum of durations');
  for (const name of [
    'process_cpu_user_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_heap_size_used_bytes',
  ]) {
    t.ok(m.has(name), `prom-client's default metric ${name}`);
  }

  // STATS carries the same histogram for every command together.
  const stats = await h.server.statsSnapshot();
  const { bounds, counts } = stats.commands.latencyUs;
  t.equal(counts.length, bounds.length + 1, 'one count past the last bound');
  t.equal(
    counts.reduce((a, b) => a + b, 0),
    stats.commands.processed,
    'every TCP/UNIX command is in the histogram',
  );
  t.equal(stats.commands.processed, 7);
});

t.test('broker queue metrics after publish, fetch, ack and a dead letter', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  t.equal(await c.command('CREATEROUTER', 'orders', 'direct'), 'OK');
  t.equal(await c.command('CREATEQUEUE', 'jobs', 'memory'), 'OK');
  t.equal(await c.command('BIND', 'jobs', 'orders', 'new'), 'OK');
  for (let i = 0; i < 3; i++) t.equal(await c.command('PUBLISH', 'orders', 'new', `m${i}`), 1);
  const fetched = (await c.command('FETCH', 'jobs', '2')) as Buffer[][];
  t.equal(fetched.length, 2);
  const [first, second] = fetched.map((delivery) => String(delivery[0]));
  t.equal(await c.command('ACK', 'jobs', first as string), 1);
  t.equal(await c.command('NACK', 'jobs', second as string, 'DROP'), 1);

  const m = await scrape(rpcAddress(h));
  const expected: Array<[string, Record<string, string>, number]> = [
    ['hati_queue_published_total', { queue: 'jobs' }, 3],
    ['hati_queue_delivered_total', { queue: 'jobs' }, 2],
    ['hati_queue_redelivered_total', { queue: 'jobs' }, 0],
    ['hati_queue_acked_total', { queue: 'jobs' }, 1],
    ['hati_queue_dead_lettered_total', { queue: 'jobs' }, 1],
    ['hati_queue_messages', { queue: 'jobs', state: 'ready' }, 1],
    ['hati_queue_messages', { queue: 'jobs', state: 'leased' }, 0],
    ['hati_queue_messages', { queue: 'jobs', state: 'delayed' }, 0],
    ['hati_queue_messages', { queue: 'jobs', state: 'dead' }, 1],
    ['hati_queue_consumers', { queue: 'jobs' }, 0],
    ['hati_commands_total', { command: 'publish', result: 'ok' }, 3],
  ];
  for (const [name, labels, value] of expected) t.equal(m.get(key(name, labels)), value, key(name, labels));
  const stats = await h.server.statsSnapshot();
  t.match(stats.broker.perQueue.jobs, { published: 3, delivered: 2, redelivered: 0, acked: 1, deadLettered: 1 });
});

t.test('hdd write batches and fsyncs, with durability always', async (t) => {
  const h = await startServer(t, { durability: 'always' });
  const c = await RawClient.tcp(t, h);
  for (let i = 0; i < 3; i++) t.equal(await c.command('SET', 'hdd', '0', `d${i}`, 'v'), 'OK');
  const m = await scrape(rpcAddress(h));
  const batches = m.get('hati_hdd_write_batches_total') as number;
  t.ok(batches >= 1 && batches <= 3, `3 sequential writes in 1 to 3 batches (${batches})`);
  t.equal(m.get('hati_hdd_write_batch_records_count'), batches, 'one observation per batch');
  t.ok((m.get('hati_hdd_write_batch_records_sum') as number) >= 3, 'the batches hold the 3 records');
  t.equal(m.get('hati_hdd_fsync_duration_seconds_count'), batches, 'durability always: each batch is synced');
  t.equal(m.get(key('hati_hdd_write_duration_seconds_bucket', { le: '+Inf' })), batches);
  t.equal(m.get(key('hati_keys', { type: 'hdd' })), 3);
  t.equal(m.get(key('hati_commands_total', { command: 'set', result: 'ok' })), 3);
});

async function usersFile(dir: string, users: Array<Omit<UserRecord, 'password'> & { password: string }>) {
  const path = join(dir, 'users.json');
  // A low scrypt cost keeps the test fast.
  const records: UserRecord[] = await Promise.all(
    users.map(async ({ password, ...rest }) => ({
      ...rest,
      password: await hashPassword(password, { cost: 2 ** 10 }),
    })),
  );
  await writeUsersFile(path, { version: 1, users: records });
  return path;
}

function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

t.test('/metrics with credentials: admin only; health endpoints need none', async (t) => {
  const first = await startServer(t);
  const path = await usersFile(first.dir, [
    { name: 'ops', password: 'ops-pw', admin: true },
    { name: 'app', password: 'app-pw', read: ['*'], write: ['*'] },
  ]);
  const h = await startServer(t, {
    usersFile: path,
    unix: join(first.dir, 'auth.sock'),
    metrics: { host: '127.0.0.1', port: 0 },
  });
  for (const address of [rpcAddress(h), h.server.addresses.metrics as Address]) {
    const where = address === rpcAddress(h) ? 'json-rpc listener' : 'metrics listener';
    const none = await get(address, '/metrics');
    t.equal(none.status, 401, `${where}: no credentials`);
    t.equal(JSON.parse(none.text).error.data.code, 'NOAUTH');
    t.match(none.headers.get('www-authenticate'), /Basic realm="hati"/);
    const wrong = await get(address, '/metrics', basic('ops', 'nope'));
    t.same([wrong.status, JSON.parse(wrong.text).error.data.code], [401, 'WRONGPASS'], `${where}: wrong password`);
    const app = await get(address, '/metrics', basic('app', 'app-pw'));
    t.same([app.status, JSON.parse(app.text).error.data.code], [403, 'NOPERM'], `${where}: a user without admin`);
    t.match(JSON.parse(app.text).error.message, /user 'app' .*needs admin/);
    const ops = await get(address, '/metrics', basic('ops', 'ops-pw'));
    t.equal(ops.status, 200, `${where}: an admin`);
    t.match(ops.text, /^hati_connections\{listener="rpc"\} \d+$/m);
    for (const probe of ['/healthz', '/readyz']) {
      t.equal((await get(address, probe)).status, 200, `${where}: ${probe} without credentials`);
    }
  }
});

t.test('the metrics listener: its own port, only its three paths', async (t) => {
  const h = await startServer(t, { rpc: undefined, metrics: { host: '127.0.0.1', port: 0 } });
  const address = h.server.addresses.metrics as Address;
  t.equal(h.server.addresses.rpc, undefined, 'no JSON-RPC listener');
  t.equal(address.host, '127.0.0.1');
  t.ok(address.port > 0, 'a port was chosen');
  const m = await scrape(address);
  t.equal(m.get(key('hati_connections', { listener: 'metrics' })), 1, 'the scrape itself is a connection');
  const root = await get(address, '/');
  t.same([root.status, JSON.parse(root.text).error.data.code], [404, 'NOT_FOUND'], 'no JSON-RPC, no console here');
  const post = await fetch(`http://${address.host}:${address.port}/metrics`, { method: 'POST', body: '{}' });
  t.same([post.status, post.headers.get('allow')], [405, 'GET, HEAD'], 'POST /metrics');
  await post.text();
  const head = await fetch(`http://${address.host}:${address.port}/metrics`, { method: 'HEAD' });
  t.same([head.status, await head.text()], [200, ''], 'HEAD: the headers, no body');
});

t.test('the metrics listener counts against max clients', async (t) => {
  const h = await startServer(t, { rpc: undefined, metrics: { host: '127.0.0.1', port: 0 }, maxClients: 2 });
  const address = h.server.addresses.metrics as Address;
  const clients = [await RawClient.tcp(t, h), await RawClient.tcp(t, h)];
  for (const client of clients) t.equal(await client.command('PING'), 'PONG');
  const full = await get(address, '/metrics');
  t.same([full.status, JSON.parse(full.text).error.data.code], [503, 'MAX_CLIENTS'], 'refused like any client');
});
