// Credentials as a user of @hati/client meets them, against real servers in this process: AUTH
// first on every (re)connect, the codes of a refused login (WRONGPASS, NOAUTH, NOPERM,
// AUTH_RATE_LIMITED), what reconnecting does after each, and JSON-RPC's Basic and Bearer.
import { join } from 'node:path';
import { inspect } from 'node:util';
import { hashPassword, newToken, writeUsersFile } from '@hati/server';
import { tempDir } from '@hati/test-helpers';
import t from 'tap';
import { createClient, createRpcClient, type HatiClient, type HatiError } from '../src/index.js';
import { BOUND, codeOf, errorOf, startProxy, startServer } from './common/harness.js';

const DEFAULT_PW = 'default-Secret-pw-1';
const APP_PW = 'app-Secret-pw-2';
const { token: APP_TOKEN, stored: APP_TOKEN_STORED } = newToken();

/** The next time `client` emits `event`. */
function next(client: HatiClient, event: 'reconnecting' | 'connect' | 'close'): Promise<void> {
  return new Promise((resolve) => client.once(event, () => resolve()));
}

/** What a client reports, in order: errors by code, reconnecting by attempt, connect, close. */
function eventsOf(client: HatiClient): { events: string[]; errors: Error[] } {
  const events: string[] = [];
  const errors: Error[] = [];
  client.on('error', (err) => {
    errors.push(err);
    events.push(`error ${(err as HatiError).code}`);
  });
  client.on('reconnecting', ({ attempt }) => events.push(`reconnecting ${attempt}`));
  client.on('connect', () => events.push('connect'));
  client.on('close', () => events.push('close'));
  return { events, errors };
}

// One server for the file (failed logins stay under its limit of 10 a minute per address): the
// default user's password, and a users file with `app`, whose rights are the keys `memory:app:`.
const dir = await tempDir(t, 'hati-client-auth-');
const usersFile = join(dir, 'users.json');
await writeUsersFile(usersFile, {
  version: 1,
  users: [
    {
      name: 'app',
      password: await hashPassword(APP_PW),
      tokens: [APP_TOKEN_STORED],
      read: ['memory:app:'],
      write: ['memory:app:'],
    },
  ],
});
const { server } = await startServer(t, 0, { password: DEFAULT_PW, usersFile });
const port = server.addresses.tcp?.port as number;
const url = `http://127.0.0.1:${server.addresses.rpc?.port}/`;
/** Every error seen in this file, to check that no password or token is in any. */
const seen: unknown[] = [];

t.test('the default user: AUTH on connect, over TCP, the UNIX socket and RESP2', async (t) => {
  const clients = [
    ['tcp', createClient({ port, password: DEFAULT_PW })],
    ['unix', createClient({ path: server.addresses.unix as string, password: DEFAULT_PW })],
    ['resp2', createClient({ port, password: DEFAULT_PW, protocol: 2 })],
  ] as const;
  for (const [label, client] of clients) {
    t.teardown(() => client.close());
    const { errors } = eventsOf(client);
    t.equal(await client.set('hdd', `k-${label}`, label), undefined, `${label}: SET`);
    t.equal(await client.get('hdd', `k-${label}`), label, `${label}: GET`);
    t.equal(String(await client.sendCommand(['ACL', 'WHOAMI'])), 'default', `${label}: ACL WHOAMI`);
    t.equal(client.protocol, label === 'resp2' ? 2 : 3, `${label}: the protocol asked (HELLO ran after AUTH)`);
    t.same(errors, [], `${label}: no error reported`);
  }
});

t.test('a named user: AUTH <user> <password>; what the user lacks is NOPERM, and the connection goes on', async (t) => {
  const app = createClient({ port, user: 'app', password: APP_PW, name: 'app-worker' });
  t.teardown(() => app.close());
  const { errors } = eventsOf(app);
  t.equal(String(await app.sendCommand(['ACL', 'WHOAMI'])), 'app', 'ACL WHOAMI');
  t.equal(await app.set('memory', 'app:1', 'one'), undefined, 'SET on its prefix');
  t.equal(await app.get('memory', 'app:1'), 'one', 'GET on its prefix');
  t.equal(app.serverInfo?.proto, 3, 'HELLO 3 ran as the user');
  for (const [what, call] of [
    ['SET outside its prefix', () => app.set('memory', 'other', 'x')],
    ['GET on another storage type', () => app.get('hdd', 'app:1')],
    ['STATS (admin)', () => app.stats()],
  ] as const) {
    const err = await errorOf(call());
    seen.push(err);
    t.match(err, { name: 'HatiError', code: 'NOPERM', transient: false }, what);
  }
  t.equal(await app.ping(), 'PONG', 'the connection still works');
  t.same(errors, [], 'nothing on the error event: NOPERM belongs to the calls');
});

t.test('no password: every call but PING is refused with NOAUTH', async (t) => {
  const anon = createClient({ port });
  t.teardown(() => anon.close());
  const { errors } = eventsOf(anon);
  const err = await errorOf(anon.get('memory', 'k'));
  seen.push(err);
  t.match(err, { name: 'HatiError', code: 'NOAUTH', transient: false }, 'GET');
  t.equal(await codeOf(anon.set('memory', 'k', 'v')), 'NOAUTH', 'SET');
  t.equal(await anon.ping(), 'PONG', 'PING runs before AUTH');
  t.ok(
    errors.some((e) => (e as HatiError).code === 'NOAUTH'),
    'the refused HELLO is reported on the error event with its code',
  );
  t.equal(anon.state, 'ready', 'the client stays connected (it may still AUTH by hand)');
});

t.test('a wrong password or user: WRONGPASS on the error event and the waiting calls; no retry', async (t) => {
  for (const [what, options] of [
    ['a wrong password', { password: 'not-the-password' }],
    ['an unknown user', { user: 'nobody', password: APP_PW }],
  ] as const) {
    const client = createClient({ port, ...options, reconnect: { initialDelay: 1, maxDelay: 1 } });
    const { events, errors } = eventsOf(client);
    // Made before the connection: they were pipelined behind the AUTH, and fail because of it.
    const calls = [
      client.set('memory', 'k', 'v', BOUND),
      client.get('memory', 'k', BOUND),
      client.ping(undefined, BOUND),
    ];
    const failures = await Promise.all(calls.map(errorOf));
    seen.push(...failures, ...errors);
    for (const err of failures) {
      t.match(err, { name: 'HatiError', code: 'WRONGPASS', transient: false }, `${what}: a waiting call`);
    }
    t.match(errors, [{ name: 'HatiError', code: 'WRONGPASS' }], `${what}: one WRONGPASS on the error event`);
    t.equal(client.state, 'closed', `${what}: the client closed`);
    t.same(events, ['connect', 'error WRONGPASS', 'close'], `${what}: no reconnecting`);
    const later = await errorOf(client.get('memory', 'k'));
    t.match(later, { code: 'CONNECTION_CLOSED', cause: { code: 'WRONGPASS' } }, `${what}: a later call says why`);
    t.match(later.message, /WRONGPASS/, `${what}: in its message too`);
    await client.close();
  }
});

t.test('re-authenticates after the connection drops: the user, queued calls and subscriptions survive', async (t) => {
  const proxy = await startProxy(t, port);
  const client = createClient({
    port: proxy.port,
    user: 'app',
    password: APP_PW,
    reconnect: { initialDelay: 10, maxDelay: 50 },
  });
  t.teardown(() => client.close());
  const { events, errors } = eventsOf(client);
  const messages: string[] = [];
  let wake: () => void = () => {};
  await client.subscribe('__keyspace@memory__:app:watched', (message) => {
    messages.push(String(message));
    wake();
  });
  t.equal(await client.set('memory', 'app:n', '41'), undefined);

  proxy.drop();
  await next(client, 'reconnecting');
  // Made while disconnected: waits in the offline queue, sent after the new connection's AUTH.
  const queued = client.incr('memory', 'app:n');
  t.equal(await queued, 42, 'a call made while disconnected ran as the user');
  t.equal(String(await client.sendCommand(['ACL', 'WHOAMI'])), 'app', 'the new connection is the user');
  const got = new Promise<void>((resolve) => {
    wake = resolve;
  });
  await client.set('memory', 'app:watched', 'x');
  await got;
  t.same(messages, ['set'], 'the subscription was restored after AUTH');
  t.same(
    events.filter((e) => !e.startsWith('reconnecting')),
    ['connect', 'connect'],
    'connected twice, no error',
  );
  t.same(errors, []);
});

t.test('a password made wrong while connected: the reconnect is refused, the client closes', async (t) => {
  const proxy = await startProxy(t, port);
  const client = createClient({ port: proxy.port, user: 'app', password: APP_PW, reconnect: { initialDelay: 10 } });
  const { events } = eventsOf(client);
  t.equal(await client.ping(), 'PONG');
  await writeUsersFile(usersFile, {
    version: 1,
    users: [
      {
        name: 'app',
        password: await hashPassword('a-new-password'),
        tokens: [APP_TOKEN_STORED],
        read: ['memory:app:'],
        write: ['memory:app:'],
      },
    ],
  });
  await server.reload();
  t.teardown(async () => {
    await writeUsersFile(usersFile, {
      version: 1,
      users: [
        {
          name: 'app',
          password: await hashPassword(APP_PW),
          tokens: [APP_TOKEN_STORED],
          read: ['memory:app:'],
          write: ['memory:app:'],
        },
      ],
    });
    await server.reload();
  });
  t.equal(await client.ping(), 'PONG', 'a reload keeps the authenticated connection');
  proxy.drop();
  await next(client, 'reconnecting');
  const err = await errorOf(client.get('memory', 'app:n', BOUND));
  seen.push(err);
  t.match(err, { code: 'WRONGPASS' }, 'the call waiting for the reconnect fails with WRONGPASS');
  t.equal(client.state, 'closed');
  t.same(events, ['connect', 'reconnecting 1', 'connect', 'error WRONGPASS', 'close']);
});

t.test('AUTH_RATE_LIMITED: reported on the calls and the error event; the client retries with backoff', async (t) => {
  const { server: limited } = await startServer(t, 0, { password: DEFAULT_PW });
  const limitedPort = limited.addresses.tcp?.port as number;
  const probe = createClient({ port: limitedPort });
  t.teardown(() => probe.close());
  probe.on('error', () => {});
  let reply = await probe.sendCommand(['AUTH', 'wrong']);
  for (let i = 1; i < 10 && (reply as { code?: string }).code === 'WRONGPASS'; i++) {
    reply = await probe.sendCommand(['AUTH', 'wrong']);
  }
  t.match(await probe.sendCommand(['AUTH', 'wrong']), { code: 'AUTH_RATE_LIMITED' }, 'the address is limited');

  const client = createClient({
    port: limitedPort,
    password: DEFAULT_PW,
    reconnect: { initialDelay: 10, maxDelay: 40 },
  });
  t.teardown(() => client.close());
  const { events, errors } = eventsOf(client);
  const err = await errorOf(client.get('memory', 'k', BOUND));
  seen.push(err, ...errors);
  t.match(err, { name: 'HatiError', code: 'AUTH_RATE_LIMITED', transient: true }, 'the waiting call');
  await next(client, 'reconnecting');
  await next(client, 'reconnecting');
  t.not(client.state, 'closed', 'still trying');
  t.match(
    events.slice(0, 6),
    ['connect', 'error AUTH_RATE_LIMITED', 'reconnecting 1', 'connect', 'error AUTH_RATE_LIMITED', 'reconnecting 2'],
    'a refused login does not reset the backoff',
  );
});

t.test(
  'a password given to a server without credentials: AUTH_NOT_CONFIGURED is reported, the calls run',
  async (t) => {
    const { server: open } = await startServer(t);
    const client = createClient({ port: open.addresses.tcp?.port as number, password: DEFAULT_PW });
    t.teardown(() => client.close());
    const { errors } = eventsOf(client);
    t.equal(await client.set('memory', 'k', 'v'), undefined);
    t.equal(await client.get('memory', 'k'), 'v');
    t.match(errors, [{ code: 'AUTH_NOT_CONFIGURED' }], 'reported once on the error event');
    seen.push(...errors);
  },
);

t.test('JSON-RPC: Basic for the default and a named user, Bearer for a token', async (t) => {
  const admin = createRpcClient({ url, password: DEFAULT_PW });
  t.equal(await admin.set('hdd', 'rpc:k', 'v'), undefined, 'default user: SET');
  t.equal(await admin.get('hdd', 'rpc:k'), 'v', 'default user: GET');
  t.equal((await admin.stats()).connections !== undefined, true, 'default user: STATS (admin)');

  const app = createRpcClient({ url, user: 'app', password: APP_PW });
  t.equal(await app.set('memory', 'app:rpc', 'basic'), undefined, 'app by password: SET');
  const noperm = await errorOf(app.get('hdd', 'rpc:k'));
  seen.push(noperm);
  t.match(noperm, { name: 'HatiError', code: 'NOPERM', transient: false }, 'app by password: NOPERM');

  const bearer = createRpcClient({ url, token: APP_TOKEN });
  t.equal(await bearer.get('memory', 'app:rpc'), 'basic', 'app by token: GET');
  t.same(
    await bearer.batch((b) => [b.set('memory', 'app:b', '1'), b.incr('memory', 'app:b')]),
    [undefined, 2],
    'app by token: a batch',
  );
  t.equal(await codeOf(bearer.set('memory', 'other', 'x')), 'NOPERM', 'app by token: NOPERM');
});

t.test('JSON-RPC: wrong credentials are WRONGPASS, none NOAUTH, for a call and a batch', async (t) => {
  const cases = [
    ['a wrong password', createRpcClient({ url, password: 'not-the-password' }), 'WRONGPASS'],
    ['a wrong token', createRpcClient({ url, token: newToken().token }), 'WRONGPASS'],
    ['no credentials', createRpcClient({ url }), 'NOAUTH'],
  ] as const;
  for (const [what, rpc, code] of cases) {
    const err = await errorOf(rpc.get('memory', 'app:rpc'));
    seen.push(err);
    t.match(err, { name: 'HatiError', code, transient: false }, `${what}: a call`);
    if (code === 'NOAUTH') {
      t.equal(await codeOf(rpc.batch((b) => [b.count('memory'), b.count('hdd')])), code, `${what}: a batch`);
    }
  }
});

t.test('credential options that cannot work are refused at once', async (t) => {
  t.throws(() => createRpcClient({ url, password: 'p', token: 't' }), TypeError, 'password and token');
  t.throws(() => createRpcClient({ url, user: 'a:b', password: 'p' }), TypeError, 'a colon in a Basic user name');
  t.throws(() => createRpcClient({ url, tls: { rejectUnauthorized: false } }), TypeError, 'tls for an http: URL');
  t.throws(() => createRpcClient({ url: 'ftp://127.0.0.1/' }), TypeError, 'a URL that is not http(s)');
  t.throws(() => createClient({ port, password: 42 as unknown as string }), TypeError, 'a password not a string');
});

t.test('no password or token in an error or in inspect()', async (t) => {
  const client = createClient({ port, user: 'app', password: APP_PW });
  t.teardown(() => client.close());
  await client.ping();
  const rpcs = [createRpcClient({ url, user: 'app', password: APP_PW }), createRpcClient({ url, token: APP_TOKEN })];
  const basic = Buffer.from(`app:${APP_PW}`).toString('base64');
  const secrets = [DEFAULT_PW, APP_PW, APP_TOKEN, basic, 'not-the-password'];
  t.ok(seen.length >= 15, `${seen.length} errors collected`);
  const shown = [client, ...rpcs, ...seen].map((value) => inspect(value, { showHidden: true, depth: Infinity }));
  for (const secret of secrets) {
    t.notOk(
      shown.some((text) => text.includes(secret)),
      `${secret.slice(0, 4)}…: in no error (message, stack, cause) and not in inspect(client)`,
    );
  }
});
