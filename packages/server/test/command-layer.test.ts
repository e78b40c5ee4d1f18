// The command layer: one table, one dispatcher for every front end, sessions, RESP3.
import { BrokerErrorCode } from '@hati/broker';
import { allCommands, BrokerWireCode, commands, ReplyWriter, Request, StorageWireCode } from '@hati/protocol';
import { StorageErrorCode } from '@hati/storage';
import { encodeCommand } from '@hati/test-helpers';
import t from 'tap';
import { Auth, Dispatcher, handlers, PubSub, Sessions } from '../src/index.js';
import { call, RawClient, type ReplyError, type ReplyMap, startServer } from './common/harness.js';

/** A request as the parser hands it over, from its words. */
function requestOf(words: string[]): Request {
  const request = new Request();
  request.setList(words.map((word) => Buffer.from(word)));
  return request;
}

t.test('every command of the table has a handler, and its example runs over TCP', async (t) => {
  const names = allCommands().map((spec) => spec.name);
  t.same(Object.keys(handlers).sort(), [...names].sort(), 'one handler per command and subcommand, no more');
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  for (const spec of allCommands()) {
    if (spec.flags.closes === true || spec.group === 'pubsub') continue;
    const words = spec.name.split(' ');
    const reply = await c.command(...words, ...spec.example);
    const code = (reply as ReplyError | null)?.code;
    t.not(code, 'UNKNOWN_COMMAND', `${spec.name} runs`);
    t.not(code, 'WRONG_ARITY', `${spec.name}'s example fits its arity`);
    t.not(code, 'INTERNAL', `${spec.name} does not fail inside`);
  }
  t.same(
    h.log.filter((line) => line.includes('internal')),
    [],
    'nothing internal was logged',
  );
});

t.test('the JSON-RPC methods are the table’s', async (t) => {
  const h = await startServer(t);
  const expected = allCommands()
    .map((spec) => spec.rpc)
    .filter((method) => method !== null);
  for (const method of expected) {
    const { error } = await call(h, method, {
      type: 'memory',
      key: 'k',
      keys: ['k'],
      entries: { k: '1' },
      pattern: '*',
      ttl: 0,
      delta: 1,
      value: 'v',
    });
    t.not((error as { data?: { code?: string } } | undefined)?.data?.code, 'METHOD_NOT_FOUND', `${method} is served`);
  }
  const { error } = await call(h, 'Storage.Subscribe', {});
  t.equal((error as { data: { code: string } }).data.code, 'METHOD_NOT_FOUND', 'TCP-only commands have no method');
});

t.test('every storage code is a wire code of @hati/protocol, with the same string', async (t) => {
  t.same(StorageErrorCode, StorageWireCode);
  t.same(BrokerErrorCode, BrokerWireCode);
});

t.test('sessions: ids, names, library info, CLIENT LIST and STATS', async (t) => {
  const h = await startServer(t);
  const a = await RawClient.tcp(t, h);
  const b = await RawClient.unix(t, h);
  const idA = (await a.command('CLIENT', 'ID')) as number;
  const idB = (await b.command('client', 'id')) as number;
  t.ok(idA > 0 && idB > 0 && idA !== idB, 'distinct ids');
  t.equal(await a.command('CLIENT', 'GETNAME'), null, 'no name yet');
  t.equal(await a.command('CLIENT', 'SETNAME', 'cache-1'), 'OK');
  t.equal(String(await a.command('CLIENT', 'GETNAME')), 'cache-1');
  t.equal(((await a.command('CLIENT', 'SETNAME', 'a b')) as ReplyError).code, 'NAME_INVALID');
  t.equal(await b.command('CLIENT', 'SETINFO', 'LIB-NAME', 'my-lib'), 'OK');
  t.equal(await b.command('CLIENT', 'SETINFO', 'lib-ver', '1.2.3'), 'OK');
  t.equal(((await b.command('CLIENT', 'SETINFO', 'COLOR', 'red')) as ReplyError).code, 'ARGUMENT_INVALID');
  t.equal(((await b.command('CLIENT', 'NOPE')) as ReplyError).code, 'UNKNOWN_COMMAND');
  t.equal(((await b.command('CLIENT')) as ReplyError).code, 'WRONG_ARITY');
  t.equal(((await b.command('CLIENT', 'SETNAME')) as ReplyError).code, 'WRONG_ARITY');
  const list = String(await a.command('CLIENT', 'LIST'));
  const lines = list.trimEnd().split('\n');
  t.equal(lines.length, 2, 'one line per connection');
  t.match(
    lines.find((line) => line.startsWith(`id=${idA} `)),
    /addr=127\.0\.0\.1:\d+ listener=tcp name=cache-1 .* resp=2 /,
  );
  t.match(
    lines.find((line) => line.startsWith(`id=${idB} `)),
    /listener=unix .*lib-name=my-lib lib-ver=1\.2\.3$/,
  );
  t.match(String(await b.command('CLIENT', 'INFO')), new RegExp(`^id=${idB} .*cmd=client\\|info `));
  const stats = JSON.parse(String(await a.command('STATS')));
  t.same(
    stats.clients.map((client: { id: number; name: string | null }) => [client.id, client.name]).sort(),
    [
      [idA, 'cache-1'],
      [idB, null],
    ].sort(),
  );
  b.close();
  await b.closed();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const after = String(await a.command('CLIENT', 'LIST'))
    .trimEnd()
    .split('\n');
  t.equal(after.length, 1, 'a closed connection leaves the list');
});

t.test('HELLO: RESP3 maps and nulls; RESP2 stays the default', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const two = (await c.command('HELLO')) as unknown[];
  t.ok(Array.isArray(two), 'HELLO without a version: a flat array in RESP2');
  t.equal(String(two[0]), 'server');
  t.equal(await c.command('GET', 'memory', 'nope'), null);
  const hello = (await c.command('HELLO', '3', 'SETNAME', 'r3')) as ReplyMap;
  t.equal(String(hello.server), 'hati');
  t.equal(hello.proto, 3);
  t.equal(String(hello.mode), 'standalone');
  t.match(String(hello.version), /^7\./);
  t.equal(String(await c.command('CLIENT', 'GETNAME')), 'r3', 'HELLO SETNAME names the connection');
  // RESP3's null is `_`, not `$-1`.
  const raw: Buffer[] = [];
  c.socket.on('data', (chunk: Buffer) => raw.push(chunk));
  t.equal(await c.command('GET', 'memory', 'nope'), null);
  t.equal(Buffer.concat(raw).toString(), '_\r\n');
  t.equal(((await c.command('HELLO', '4')) as ReplyError).code, 'NOPROTO');
  t.equal(((await c.command('HELLO', '3', 'AUTH', 'u', 'p')) as ReplyError).code, 'AUTH_NOT_CONFIGURED');
  t.equal(((await c.command('HELLO', '3', 'AUTH', 'u')) as ReplyError).code, 'SYNTAX');
  const back = (await c.command('HELLO', '2')) as unknown[];
  t.ok(Array.isArray(back), 'HELLO 2 switches back');
});

t.test('COMMAND, COMMAND COUNT, DOCS and INFO come from the table', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  t.equal(await c.command('COMMAND', 'COUNT'), Object.keys(commands).length, 'as Redis: subcommands not counted');
  const all = (await c.command('COMMAND')) as unknown[][];
  t.equal(all.length, Object.keys(commands).length);
  const get = all.find((info) => String(info[0]) === 'get') as unknown[];
  t.same(get.slice(1, 6), [3, ['readonly'], 2, 2, 1], 'arity, flags and key positions');
  const mget = all.find((info) => String(info[0]) === 'mget') as unknown[];
  t.same(mget.slice(1, 6).slice(0, 1), [-3]);
  t.same(mget.slice(3, 6), [2, -1, 1]);
  const docs = (await c.command('COMMAND', 'DOCS', 'SET', 'NOPE')) as unknown[];
  t.equal(docs.length, 2, 'RESP2: a flat map; unknown names are left out');
  t.equal(String(docs[0]), 'set');
  const set = docs[1] as unknown[];
  t.equal(String(set[1]), commands.SET.summary);
  const info = (await c.command('COMMAND', 'INFO', 'GET', 'NOPE')) as unknown[];
  t.equal(info.length, 2);
  t.equal(info[1], null, 'an unknown command is null');
});

t.test('RESP2 pub/sub mode admits only pub/sub commands; RESP3 admits all', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  t.same((await c.command('SUBSCRIBE', 'news')) as unknown[], [Buffer.from('subscribe'), Buffer.from('news'), 1]);
  const refused = (await c.command('GET', 'memory', 'k')) as ReplyError;
  t.equal(refused.code, 'PUBSUB_ONLY');
  t.same(await c.command('PING'), [Buffer.from('pong'), Buffer.from('')], "PING answers Redis's pub/sub form");
  t.same(await c.command('PING', 'hi'), [Buffer.from('pong'), Buffer.from('hi')]);
  t.same(await c.command('UNSUBSCRIBE'), [Buffer.from('unsubscribe'), Buffer.from('news'), 0]);
  t.equal(await c.command('GET', 'memory', 'k'), null, 'out of pub/sub mode');
  const r3 = await RawClient.tcp(t, h);
  await r3.command('HELLO', '3');
  r3.write(encodeCommand(['SUBSCRIBE', 'news']));
  await r3.nextPushes(1, 0);
  t.same(r3.pushes[0], [Buffer.from('subscribe'), Buffer.from('news'), 1], 'RESP3: the confirmation is a push');
  t.equal(await r3.command('SET', 'memory', '0', 'k', 'v'), 'OK', 'RESP3 runs any command while subscribed');
});

t.test('shutting down: the check in front of every command answers SHUTTING_DOWN, on every front end', async (t) => {
  const h = await startServer(t);
  const hub = {
    storage: h.server.storage,
    broker: h.server.broker,
    rpcBroker: h.server.broker.openSession(),
    stats: h.server.stats,
    logger: h.server.logger,
    pubsub: new PubSub(),
    sessions: new Sessions(),
    auth: await Auth.create({}, h.server.logger),
    closing: true,
  };
  const dispatcher = new Dispatcher(hub);
  const session = hub.sessions.open(
    'tcp',
    'test',
    { push: () => false, setProtocol: () => {}, end: () => {} },
    Auth.everyone,
  );
  const out = new ReplyWriter();
  t.equal(dispatcher.execute(session, requestOf(['GET', 'memory', 'k']), out), undefined);
  t.match(out.take().toString(), /^-SHUTTING_DOWN /);
  t.throws(
    () => dispatcher.call(commands.GET, session, [Buffer.from('GET'), Buffer.from('memory'), Buffer.from('k')]),
    {
      code: 'SHUTTING_DOWN',
    },
  );
  hub.closing = false;
  t.equal(dispatcher.execute(session, requestOf(['PING']), out), undefined);
  t.equal(out.take().toString(), '+PONG\r\n');
});

t.test('JSON-RPC params: optional ones may be left out or null; the seed’s ttl forms still work', async (t) => {
  const h = await startServer(t);
  t.same(await call(h, 'Server.Ping'), { result: 'PONG' }, 'no params at all');
  t.same(await call(h, 'Server.Ping', { message: null }), { result: 'PONG' });
  t.same(await call(h, 'Server.Ping', { message: 'hi' }), { result: 'hi' });
  t.match((await call(h, 'Server.Info', { section: 'server' })).result, /^# Server\r\n/);
  for (const ttl of [null, '', '0', 0]) {
    t.same(
      await call(h, 'Storage.Set', { type: 'memory', key: 'k', value: 'v', ttl }),
      { result: true },
      `ttl ${JSON.stringify(ttl)}`,
    );
  }
  t.same(await call(h, 'Storage.Set', [{ type: 'memory', key: 'k2', value: 'v', ttl: '250' }]), { result: true });
  t.same(await call(h, 'Storage.Ttl', { type: 'memory', key: 'k2' }), { result: 250 });
  const missing = await call(h, 'Storage.Get', { type: 'memory', key: null });
  t.equal((missing.error as { data: { code: string } }).data.code, 'PARAMS_INVALID');
  const noParams = await call(h, 'Storage.Get');
  t.equal((noParams.error as { data: { code: string } }).data.code, 'PARAMS_INVALID');
});

t.test('JSON-RPC params: a misspelt one is refused, a required ttl is required', async (t) => {
  const h = await startServer(t);
  const misspelt = await call(h, 'Storage.Scan', { type: 'memory', match: 'user:*' });
  t.match(misspelt.error, {
    code: -32602,
    message: /^Storage\.Scan takes no param "match" \(it takes encoding, type, cursor, pattern, count\)$/,
    data: { code: 'PARAMS_INVALID' },
  });
  await call(h, 'Storage.Set', { type: 'memory', key: 'k', value: 'v', ttl: 5000 });
  const noTtl = await call(h, 'Storage.Expire', { type: 'memory', key: 'k' });
  t.match(
    noTtl.error,
    { data: { code: 'PARAMS_INVALID' }, message: 'ttl is required' },
    'EXPIRE never defaults its ttl',
  );
  t.same(await call(h, 'Storage.Ttl', { type: 'memory', key: 'k' }), { result: 5000 }, 'the expiry is untouched');
  const c = await RawClient.tcp(t, h);
  t.equal(((await c.command('SCAN', 'memory', '0', 'COUNT', '0')) as ReplyError).code, 'ARGUMENT_INVALID');
});

t.test('STATS counts every JSON-RPC call answered, a refused one too; TCP commands apart', async (t) => {
  const h = await startServer(t);
  await call(h, 'Storage.Get', { type: 'memory', key: 'k' });
  await call(h, 'Storage.Get', { type: 'memory', nope: 1 });
  const c = await RawClient.tcp(t, h);
  await c.command('PING');
  const stats = JSON.parse(String(await c.command('STATS')));
  t.equal(stats.commands.rpcCalls, 2);
  t.equal(stats.commands.processed, 2, 'PING and STATS itself');
});
