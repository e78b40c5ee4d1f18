// Credentials and rights over real sockets: AUTH before anything, every command's permission
// decision, key prefixes and broker patterns, brute force, reload, JSON-RPC Basic and Bearer.
import { Agent } from 'node:http';
import { join } from 'node:path';
import { allCommands, type CommandAccess, type CommandSpec } from '@hati/protocol';
import { encodeCommand, postJson, run, text } from '@hati/test-helpers';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import t, { type Test } from 'tap';
import { Auth, hashPassword, newToken, type User, type UserRecord, writeUsersFile } from '../src/index.js';
import { type Harness, nonLoopbackIPv4, RawClient, type Reply, ReplyError, startServer } from './common/harness.js';

const PASSWORD = 'correct horse battery staple';

function codeOf(reply: Reply | undefined): string | undefined {
  return reply instanceof ReplyError ? reply.code : undefined;
}

/** The words a table test sends for a command: its name, then its example. */
function wordsOf(spec: CommandSpec): string[] {
  return [...spec.name.split(' '), ...spec.example];
}

/** Commands a table test runs: not QUIT (it closes), not the pub/sub ones on RESP2 (mode change). */
function tableCommands(): CommandSpec[] {
  return allCommands().filter((spec) => spec.flags.closes !== true);
}

/**
 * Runs a command and returns its reply, or undefined when it answered with pushes only (RESP3
 * SUBSCRIBE): a PING pipelined behind it marks the end of what it answered.
 */
async function attempt(c: RawClient, words: string[]): Promise<Reply | undefined> {
  const before = c.replies.length;
  c.write(Buffer.concat([encodeCommand(words), encodeCommand(['PING'])]));
  const [first] = await c.next(1, before);
  if (first === 'PONG') return undefined;
  await c.next(1, before + 1);
  return first;
}

async function usersFile(dir: string, users: Array<Omit<UserRecord, 'password'> & { password?: string }>) {
  const path = join(dir, 'users.json');
  // A low scrypt cost keeps these tests fast; the default's cost is checked once, below.
  const records: UserRecord[] = await Promise.all(
    users.map(async ({ password, ...rest }) => ({
      ...rest,
      ...(password !== undefined && { password: await hashPassword(password, { cost: 2 ** 10 }) }),
    })),
  );
  await writeUsersFile(path, { version: 1, users: records });
  return path;
}

async function loggedIn(t: Test, h: Harness, user: string, password: string): Promise<RawClient> {
  const c = await RawClient.tcp(t, h);
  const hello = await c.command('HELLO', '3', 'AUTH', user, password);
  t.notOk(hello instanceof ReplyError, `${user} logs in (${String(hello)})`);
  return c;
}

t.test('with a password, only AUTH, HELLO AUTH, PING and QUIT run before AUTH; everything after', async (t) => {
  const h = await startServer(t, { password: PASSWORD });
  const c = await RawClient.tcp(t, h);
  for (const spec of tableCommands()) {
    const reply = await c.command(...wordsOf(spec));
    if (spec.access === 'public' && spec.name !== 'HELLO') {
      t.not(codeOf(reply), 'NOAUTH', `${spec.name} runs before AUTH`);
    } else {
      t.equal(codeOf(reply), 'NOAUTH', `${spec.name} is refused before AUTH`);
    }
  }
  t.equal(codeOf(await c.command('AUTH', 'wrong')), 'WRONGPASS', 'a wrong password');
  t.equal(codeOf(await c.command('GET', 'memory', 'k')), 'NOAUTH', 'still not authenticated');
  t.equal(await c.command('AUTH', PASSWORD), 'OK', 'AUTH <password>');
  for (const spec of tableCommands()) {
    if (spec.name === 'AUTH' || spec.group === 'pubsub') continue;
    const code = codeOf(await c.command(...wordsOf(spec)));
    t.not(code, 'NOAUTH', `${spec.name} runs after AUTH`);
    t.not(code, 'NOPERM', `${spec.name}: the default user has every right`);
  }
  t.equal(text(await c.command('ACL', 'WHOAMI')), 'default');
  const unix = await RawClient.unix(t, h);
  t.equal(codeOf(await unix.command('GET', 'memory', 'k')), 'NOAUTH', 'the UNIX socket asks too');
  t.equal(await unix.command('AUTH', 'default', PASSWORD), 'OK', 'AUTH default <password>');
});

t.test('every command allows exactly the users its access names (a decision per command)', async (t) => {
  const h = await startServer(t);
  const rights: Record<string, Partial<UserRecord>> = {
    nobody: {},
    reader: { read: ['*'] },
    writer: { write: ['*'] },
    publisher: { publish: ['*'] },
    consumer: { consume: ['*'] },
    manager: { manage: ['*'] },
    admin: { admin: true },
  };
  const path = await usersFile(
    h.dir,
    Object.entries(rights).map(([name, granted]) => ({ name, password: `pw-${name}`, ...granted })),
  );
  await h.server.close();
  const server = await startServer(t, { usersFile: path, unix: join(h.dir, 'table.sock') });
  // A broker user may see names; a listing without a name shows anyone what they may see.
  const broker = ['publisher', 'consumer', 'manager'];
  const names = (spec: CommandSpec) => spec.args.some((arg) => arg.kind === 'router' || arg.kind === 'queue');
  // Typed over every access kind: a new kind without an entry here does not compile.
  const allowedBy: Record<CommandAccess, (user: string, spec: CommandSpec) => boolean> = {
    public: () => true,
    connection: () => true,
    read: (user) => user === 'reader',
    write: (user) => user === 'writer',
    subscribe: (user) => user === 'reader',
    publish: (user) => user === 'publisher',
    consume: (user) => user === 'consumer',
    manage: (user) => user === 'manager',
    view: (user, spec) => !names(spec) || broker.includes(user),
    admin: (user) => user === 'admin',
  };
  const clients = new Map<string, RawClient>();
  for (const user of Object.keys(rights)) clients.set(user, await loggedIn(t, server, user, `pw-${user}`));
  for (const spec of tableCommands()) {
    t.ok(spec.access in allowedBy, `${spec.name} has a permission decision`);
    if (spec.name === 'AUTH' || spec.name === 'HELLO') continue;
    for (const [user, c] of clients) {
      const code = codeOf(await attempt(c, wordsOf(spec)));
      if (allowedBy[spec.access](user, spec)) t.not(code, 'NOPERM', `${user} may run ${spec.name}`);
      else t.equal(code, 'NOPERM', `${user} may not run ${spec.name}`);
    }
  }
});

t.test('key rights per storage type and prefix; keyspace events need read on what they name', async (t) => {
  const h = await startServer(t);
  const path = await usersFile(h.dir, [
    { name: 'app', password: 'app-pw', read: ['memory:app:', 'hdd:pub:'], write: ['memory:app:'] },
  ]);
  const s = await startServer(t, { usersFile: path, unix: join(h.dir, 'keys.sock') });
  const c = await loggedIn(t, s, 'app', 'app-pw');
  t.equal(await c.command('SET', 'memory', '0', 'app:1', 'v'), 'OK');
  t.equal(text(await c.command('GET', 'memory', 'app:1')), 'v');
  t.equal(codeOf(await c.command('GET', 'memory', 'other')), 'NOPERM', 'another prefix');
  t.equal(codeOf(await c.command('GET', 'hdd', 'app:1')), 'NOPERM', 'the prefix is the memory type’s');
  t.equal(codeOf(await c.command('SET', 'hdd', '0', 'pub:1', 'v')), 'NOPERM', 'read is not write');
  t.not(codeOf(await c.command('GET', 'hdd', 'pub:1')), 'NOPERM', 'read on hdd pub:');
  t.equal(codeOf(await c.command('MGET', 'memory', 'app:1', 'other')), 'NOPERM', 'every key of MGET');
  t.equal(await c.command('MSET', 'memory', 'app:a', '1', 'app:b', '2'), 'OK');
  t.equal(codeOf(await c.command('MSET', 'memory', 'app:c', '1', 'zzz', '2')), 'NOPERM', 'every key of MSET');
  t.equal(codeOf(await c.command('GET', 'memory', 'app:c')), undefined, 'nothing of a refused MSET was written');
  t.equal(codeOf(await c.command('COUNT', 'memory')), 'NOPERM', 'COUNT reaches every key');
  t.equal(codeOf(await c.command('SCAN', 'memory', '0')), 'NOPERM', 'SCAN reaches every key');
  t.equal(codeOf(await c.command('SCAN', '0')), 'NOPERM', "SCAN in Redis's form too");
  t.equal(codeOf(await c.command('FLUSHALL', 'memory')), 'NOPERM', 'FLUSHALL is admin');
  t.equal(await attempt(c, ['SUBSCRIBE', '__keyspace@memory__:app:1']), undefined, 'events of its keys');
  t.equal(codeOf(await c.command('SUBSCRIBE', '__keyspace@memory__:other')), 'NOPERM', 'not of others');
  t.equal(codeOf(await c.command('SUBSCRIBE', '__keyevent@memory__:set')), 'NOPERM', 'a type’s events need all of it');
  t.equal(codeOf(await c.command('PSUBSCRIBE', '__key*')), 'NOPERM', 'patterns need everything');
  const message = (await c.command('GET', 'memory', 'other')) as ReplyError;
  t.match(message.message, /user 'app' has no permission to read key 'other' of memory/);
});

t.test('broker rights per router and queue pattern; listings show only what the user may see', async (t) => {
  const h = await startServer(t);
  const path = await usersFile(h.dir, [
    { name: 'orders', password: 'o-pw', publish: ['orders.*'], consume: ['orders.*'], manage: ['orders.*'] },
    {
      name: 'boss',
      password: 'b-pw',
      admin: true,
      read: ['*'],
      write: ['*'],
      publish: ['*'],
      consume: ['*'],
      manage: ['*'],
    },
  ]);
  const s = await startServer(t, { usersFile: path, unix: join(h.dir, 'broker.sock') });
  const boss = await loggedIn(t, s, 'boss', 'b-pw');
  t.equal(await boss.command('CREATEROUTER', 'billing.in', 'direct'), 'OK');
  t.equal(await boss.command('CREATEQUEUE', 'billing.q', 'memory'), 'OK');
  const c = await loggedIn(t, s, 'orders', 'o-pw');
  t.equal(await c.command('CREATEROUTER', 'orders.in', 'direct'), 'OK');
  t.equal(await c.command('CREATEQUEUE', 'orders.q', 'memory'), 'OK');
  t.equal(await c.command('BIND', 'orders.q', 'orders.in', 'k'), 'OK');
  t.equal(await c.command('PUBLISH', 'orders.in', 'k', 'hello'), 1);
  const fetched = (await c.command('FETCH', 'orders.q', '1')) as Reply[][];
  t.equal(text(fetched[0]?.[3]), 'hello', 'consumes its queue');
  t.equal(codeOf(await c.command('CREATEQUEUE', 'billing.q2', 'memory')), 'NOPERM', 'manage is per pattern');
  t.equal(codeOf(await c.command('BIND', 'orders.q', 'billing.in', 'k')), 'NOPERM', 'BIND needs both names');
  t.equal(codeOf(await c.command('PUBLISH', 'billing.in', 'k', 'x')), 'NOPERM');
  t.equal(codeOf(await c.command('FETCH', 'billing.q')), 'NOPERM');
  t.equal(codeOf(await c.command('GETQUEUE', 'billing.q')), 'NOPERM', 'not even its definition');
  t.equal(
    codeOf(await c.command('CREATEQUEUE', 'orders.q2', 'memory', 'DEADLETTER', 'billing.in')),
    'NOPERM',
    'a dead-letter router is published to',
  );
  t.same(((await c.command('LISTQUEUE')) as Reply[]).map(text), ['orders.q'], 'LISTQUEUE shows its own');
  t.same(((await boss.command('LISTQUEUE')) as Reply[]).map(text).sort(), ['billing.q', 'orders.q']);
  t.equal(codeOf(await c.command('STATS')), 'NOPERM');
  t.equal(codeOf(await c.command('CLIENT', 'LIST')), 'NOPERM');
});

t.test(
  'wrong passwords: one answer for every wrong part, rate-limited per address, logged without secrets',
  async (t) => {
    const h = await startServer(t);
    const path = await usersFile(h.dir, [{ name: 'app', password: 'app-pw', read: ['*'] }]);
    const s = await startServer(t, { usersFile: path, unix: join(h.dir, 'limit.sock') });
    const c = await RawClient.tcp(t, s);
    const wrongPassword = (await c.command('AUTH', 'app', 'nope')) as ReplyError;
    const noSuchUser = (await c.command('AUTH', 'ghost', 'nope')) as ReplyError;
    const noPassword = (await c.command('AUTH', 'nope')) as ReplyError;
    t.equal(wrongPassword.code, 'WRONGPASS');
    t.same([noSuchUser.code, noSuchUser.message], [wrongPassword.code, wrongPassword.message], 'no hint which part');
    t.same([noPassword.code, noPassword.message], [wrongPassword.code, wrongPassword.message]);
    // Pipelined: the attempts count when they start, so a burst cannot slip past the limit.
    const burst = await c.send(Array.from({ length: 10 }, () => ['AUTH', 'app', 'guess']));
    const codes = burst.map(codeOf);
    t.equal(codes.filter((code) => code === 'WRONGPASS').length, 7, 'ten failures in all are checked');
    t.equal(codes.filter((code) => code === 'AUTH_RATE_LIMITED').length, 3, 'the rest refused unchecked');
    const limited = (await c.command('AUTH', 'app', 'app-pw')) as ReplyError;
    t.equal(limited.code, 'AUTH_RATE_LIMITED', 'even the right password waits');
    t.match(limited.message, /retry in \d+ s/);
    const huge = await RawClient.unix(t, s);
    t.equal(codeOf(await huge.command('AUTH', 'app', 'x'.repeat(8 * 1024 * 1024))), 'WRONGPASS', 'an 8 MiB password');
    const other = await RawClient.unix(t, s);
    t.equal(await other.command('AUTH', 'app', 'app-pw'), 'OK', 'another address is not limited');
    t.ok(
      s.log.some((line) => /authentication failed for user 'app' from 127\.0\.0\.1/.test(line)),
      'failures are logged with user and address',
    );
    t.notOk(
      s.log.some((line) => line.includes('nope') || line.includes('guess') || line.includes('app-pw')),
      'never the password',
    );
  },
);

t.test('a pipelined AUTH that checks scrypt runs before the commands behind it', async (t) => {
  const h = await startServer(t);
  const path = await usersFile(h.dir, [{ name: 'app', password: 'app-pw', read: ['*'], write: ['*'] }]);
  const s = await startServer(t, { usersFile: path, unix: join(h.dir, 'pipe.sock') });
  const c = await RawClient.tcp(t, s);
  const replies = await c.send([
    ['AUTH', 'app', 'wrong'],
    ['SET', 'memory', '0', 'k', 'v'],
    ['AUTH', 'app', 'app-pw'],
    ['SET', 'memory', '0', 'k', 'v'],
    ['GET', 'memory', 'k'],
  ]);
  t.same(
    replies.map((reply) => codeOf(reply) ?? text(reply)),
    ['WRONGPASS', 'NOAUTH', 'OK', 'OK', 'v'],
  );
});

t.test(
  'reload: rights change on the next command, a removed user is disconnected, a bad file changes nothing',
  async (t) => {
    const h = await startServer(t);
    const users = [
      { name: 'admin', password: 'a-pw', admin: true },
      { name: 'app', password: 'app-pw', read: ['*'] },
      { name: 'gone', password: 'g-pw', read: ['*'] },
    ];
    const path = await usersFile(h.dir, users);
    const s = await startServer(t, { usersFile: path, unix: join(h.dir, 'reload.sock') });
    const admin = await loggedIn(t, s, 'admin', 'a-pw');
    const app = await loggedIn(t, s, 'app', 'app-pw');
    const gone = await loggedIn(t, s, 'gone', 'g-pw');
    t.equal(codeOf(await app.command('SET', 'memory', '0', 'k', 'v')), 'NOPERM');
    await usersFile(h.dir, [users[0] as UserRecord, { name: 'app', password: 'app-pw', read: ['*'], write: ['*'] }]);
    t.equal(await admin.command('ACL', 'LOAD'), 'OK', 'ACL LOAD');
    t.equal(await app.command('SET', 'memory', '0', 'k', 'v'), 'OK', 'the new right, on the same connection');
    await gone.closed();
    t.equal(gone.closedBy, 'end', 'the removed user’s connection is closed by the server');
    t.same(((await admin.command('ACL', 'USERS')) as Reply[]).map(text), ['admin', 'app']);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, '{"version": 1, "users": [{"name": "x", "password": "plain text"}]}');
    const refused = (await admin.command('ACL', 'LOAD')) as ReplyError;
    t.equal(refused.code, 'USERS_FILE_INVALID');
    t.match(refused.message, /never the password itself/);
    await t.rejects(s.server.reload(), { code: 'USERS_FILE_INVALID' }, 'reload() too');
    t.equal(text(await app.command('GET', 'memory', 'k')), 'v', 'the old users stay in effect');
    t.equal(await (await RawClient.tcp(t, s)).command('AUTH', 'app', 'app-pw'), 'OK', 'and still log in');
  },
);

t.test('a users file that cannot be used stops the start with USERS_FILE_INVALID', async (t) => {
  const h = await startServer(t);
  const { writeFile } = await import('node:fs/promises');
  const bad = join(h.dir, 'bad.json');
  for (const [content, why] of [
    ['not json', /not JSON/],
    ['{"version": 2, "users": []}', /expected \{"version": 1/],
    ['{"version": 1, "users": [{"name": "a b"}]}', /user name/],
    ['{"version": 1, "users": [{"name": "a", "read": ["ram:x"]}]}', /key rule 'ram:x'/],
    ['{"version": 1, "users": [{"name": "a", "colour": "red"}]}', /unknown field 'colour'/],
  ] as const) {
    await writeFile(bad, content);
    await t.rejects(startServer(t, { usersFile: bad }), { code: 'USERS_FILE_INVALID', message: why }, String(why));
  }
  await t.rejects(startServer(t, { usersFile: join(h.dir, 'missing.json') }), {
    code: 'USERS_FILE_INVALID',
    message: /no such file/,
  });
  const both = await usersFile(h.dir, [{ name: 'default', password: 'x' }]);
  await t.rejects(startServer(t, { usersFile: both, password: 'y' }), { message: /--password defines too/ });
});

/** A JSON-RPC answer as these tests read it. */
interface RpcAnswer {
  status: number;
  json: { result?: unknown; error?: { data: { code: string } } };
  headers: Record<string, unknown>;
}

/** POSTs a JSON-RPC body with the given headers (credentials), on `agent`'s connection if given. */
async function post(h: Harness, headers: Record<string, string>, body: unknown, agent?: Agent): Promise<RpcAnswer> {
  const address = h.server.addresses.rpc as { host: string; port: number };
  return (await postJson(address, body, { headers, ...(agent !== undefined && { agent }) })) as RpcAnswer;
}

t.test('JSON-RPC: Basic and Bearer, the same users and rights, 401 without a hint', async (t) => {
  const h = await startServer(t);
  const { token, stored } = newToken();
  const path = await usersFile(h.dir, [
    { name: 'app', password: 'app-pw', tokens: [stored], read: ['memory:app:'], write: ['memory:app:'] },
  ]);
  const s = await startServer(t, { usersFile: path, unix: join(h.dir, 'rpc.sock') });
  const set = { jsonrpc: '2.0', id: 1, method: 'Storage.Set', params: { type: 'memory', key: 'app:1', value: 'v' } };
  const basic = (user: string, password: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  });
  const none = await post(s, {}, set);
  t.equal(none.status, 401);
  t.equal(none.json.error?.data.code, 'NOAUTH');
  t.match(String(none.headers['www-authenticate']), /Basic realm="hati"/);
  const ok = await post(s, basic('app', 'app-pw'), set);
  t.same([ok.status, ok.json.result], [200, true], 'Basic');
  const wrong = await post(s, basic('app', 'nope'), set);
  const ghost = await post(s, basic('ghost', 'app-pw'), set);
  const badToken = await post(s, { authorization: 'Bearer hati_nope' }, set);
  t.same([wrong.status, wrong.json.error?.data.code], [401, 'WRONGPASS']);
  t.same(ghost.json.error, wrong.json.error, 'no hint which part was wrong');
  t.same(badToken.json.error, wrong.json.error);
  const malformed = await post(s, { authorization: 'Digest username="app"' }, set);
  t.same(
    [malformed.status, malformed.json.error],
    [401, wrong.json.error],
    'neither Basic nor Bearer: the same answer',
  );
  t.ok(
    s.log.some((line) =>
      line.includes('authentication failed for an Authorization header that is neither Basic nor Bearer'),
    ),
    'and logged as a failed attempt',
  );
  const bearer = await post(
    s,
    { authorization: `Bearer ${token}` },
    { ...set, method: 'Storage.Get', params: { type: 'memory', key: 'app:1' } },
  );
  t.same([bearer.status, bearer.json.result], [200, 'v'], 'Bearer');
  const denied = await post(
    s,
    { authorization: `Bearer ${token}` },
    { ...set, params: { type: 'memory', key: 'x', value: 'v' } },
  );
  t.same([denied.status, denied.json.error?.data.code], [200, 'NOPERM'], 'rights apply per call');
  const burst = await Promise.all(Array.from({ length: 12 }, () => post(s, basic('app', 'guess'), set)));
  t.ok(
    burst.some((answer) => answer.status === 429 && answer.json.error?.data.code === 'AUTH_RATE_LIMITED'),
    '429 past the limit',
  );
});

t.test('with credentials, protected mode lets remote clients in to authenticate', async (t) => {
  const remote = nonLoopbackIPv4();
  if (remote === undefined) {
    t.comment('no non-loopback IPv4 address on this machine: nothing to test');
    return;
  }
  const s = await startServer(t, { password: PASSWORD, tcp: { host: '0.0.0.0', port: 0 } });
  const port = (s.server.addresses.tcp as { port: number }).port;
  const c = await RawClient.open(t, { host: remote, port });
  t.equal(codeOf(await c.command('GET', 'memory', 'k')), 'NOAUTH', 'asked to authenticate, not DENIED');
  t.equal(await c.command('AUTH', PASSWORD), 'OK');
  t.notOk(
    s.log.some((line) => line.includes('protected mode')),
    'no protected-mode warning',
  );
});

t.test('the password appears in no reply: CLIENT LIST, INFO, STATS', async (t) => {
  const s = await startServer(t, { password: PASSWORD });
  const c = await RawClient.tcp(t, s);
  t.equal(await c.command('AUTH', PASSWORD), 'OK');
  const list = text(await c.command('CLIENT', 'LIST')) as string;
  t.match(list, /user=default/);
  for (const reply of [list, text(await c.command('INFO')), text(await c.command('STATS')), ...s.log]) {
    t.notOk(String(reply).includes(PASSWORD), 'no password');
  }
});

t.test('ioredis, node-redis and redis-cli log in with a password and as a named user', async (t) => {
  const h = await startServer(t);
  const path = await usersFile(h.dir, [
    {
      name: 'default',
      password: PASSWORD,
      admin: true,
      read: ['*'],
      write: ['*'],
      publish: ['*'],
      consume: ['*'],
      manage: ['*'],
    },
    { name: 'app', password: 'app-pw', read: ['memory:app:'], write: ['memory:app:'] },
  ]);
  const s = await startServer(t, { usersFile: path, unix: join(h.dir, 'clients.sock') });
  const { port } = s.server.addresses.tcp as { port: number };
  const io = new Redis({ port, password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => io.disconnect());
  await io.connect();
  t.equal(await io.call('SET', 'memory', '0', 'k', 'ioredis'), 'OK', 'ioredis password');
  const named = new Redis({ port, username: 'app', password: 'app-pw', lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => named.disconnect());
  await named.connect();
  t.equal(await named.call('SET', 'memory', '0', 'app:k', 'v'), 'OK', 'ioredis username');
  await t.rejects(named.call('GET', 'memory', 'k'), /NOPERM/, 'ioredis sees NOPERM');
  const nr = createClient({ socket: { port, reconnectStrategy: false }, password: PASSWORD, RESP: 3 });
  await nr.connect();
  t.teardown(() => nr.destroy());
  t.equal(await nr.sendCommand(['GET', 'memory', 'k']), 'ioredis', 'node-redis (HELLO 3 AUTH)');
  const cli = await run('redis-cli', ['-p', String(port), '--no-auth-warning', '-a', PASSWORD, 'GET', 'memory', 'k']);
  t.equal(cli.stdout.trim(), 'ioredis', 'redis-cli -a');
  const cliUser = await run('redis-cli', [
    '-p',
    String(port),
    '--user',
    'app',
    '--pass',
    'app-pw',
    '--no-auth-warning',
    'GET',
    'memory',
    'k',
  ]);
  t.match(cliUser.stdout, /NOPERM/, 'redis-cli --user sees NOPERM');
  const script = [
    'import redis',
    `r = redis.Redis(port=${port}, password=${JSON.stringify(PASSWORD)})`,
    "print(r.execute_command('GET', 'memory', 'k').decode())",
    `u = redis.Redis(port=${port}, username='app', password='app-pw')`,
    "print(u.execute_command('GET', 'memory', 'app:k').decode())",
    'try:',
    `    redis.Redis(port=${String(port)}, password='nope').ping()`,
    // This redis-py maps WRONGPASS to a ResponseError, as it does for Redis's own.
    'except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError) as e:',
    '    print(str(e).split()[0])',
  ].join('\n');
  const py = await run('/usr/bin/python3', ['-c', script]);
  t.equal(py.code, 0, py.stderr);
  t.same(py.stdout.trim().split('\n'), ['ioredis', 'v', 'WRONGPASS'], 'redis-py password and username');
});

t.test('passwords are stored as scrypt hashes with the default cost, checked in constant time', async (t) => {
  const stored = await hashPassword(PASSWORD);
  t.match(stored, /^scrypt\$131072\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{44}$/, 'N=2^17, r=8, p=1');
  t.not(stored, await hashPassword(PASSWORD), 'salted');
  t.notOk(stored.includes(PASSWORD));
  await t.rejects(hashPassword(''), { code: 'USERS_FILE_INVALID' });
  await t.rejects(hashPassword('x', { cost: 1000 }), { code: 'USERS_FILE_INVALID' });
});

t.test('scrypt checks run one at a time, so logins cannot take the thread pool from the disk', async (t) => {
  const h = await startServer(t);
  const path = await usersFile(h.dir, [{ name: 'app', password: 'app-pw' }]);
  const auth = await Auth.create({ usersFile: path }, h.server.logger);
  const logins = Array.from({ length: 6 }, (_, i) =>
    auth.login('app', i % 2 === 0 ? 'app-pw' : 'nope', `10.0.0.${i}:1`),
  );
  t.same(auth.verifications, { running: 1, waiting: 5 }, 'one runs, the others wait their turn');
  const settled = await Promise.allSettled(logins as Array<Promise<User>>);
  t.same(
    settled.map((result) =>
      result.status === 'fulfilled' ? result.value.name : (result.reason as { code: string }).code,
    ),
    ['app', 'WRONGPASS', 'app', 'WRONGPASS', 'app', 'WRONGPASS'],
    'each gets its own answer',
  );
  t.same(auth.verifications, { running: 0, waiting: 0 });
  t.throws(
    () => auth.login('app', 'x'.repeat(4097), '10.0.0.9:1'),
    { code: 'WRONGPASS' },
    'a password over 4096 characters is refused at once, never hashed',
  );
});

t.test('JSON-RPC: credentials remembered on a keep-alive connection are checked again after a reload', async (t) => {
  const h = await startServer(t);
  const users = [{ name: 'app', password: 'app-pw', read: ['*'] }];
  const path = await usersFile(h.dir, users);
  const s = await startServer(t, { usersFile: path, unix: join(h.dir, 'keepalive.sock') });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const get = { jsonrpc: '2.0', id: 1, method: 'Storage.Get', params: { type: 'memory', key: 'k' } };
  const basic = { authorization: `Basic ${Buffer.from('app:app-pw').toString('base64')}` };
  const ports = new Set<number>();
  agent.on('free', (socket) => ports.add(socket.localPort as number));
  for (let i = 0; i < 3; i++) t.equal((await post(s, basic, get, agent)).status, 200, `request ${i + 1}`);
  await usersFile(h.dir, [{ name: 'other', password: 'o-pw' }]);
  await s.server.reload();
  const after = await post(s, basic, get, agent);
  t.same(
    [after.status, after.json.error?.data.code],
    [401, 'WRONGPASS'],
    'the removed user is refused on the same connection',
  );
  t.equal(ports.size, 1, 'all of it on one keep-alive connection');
});
