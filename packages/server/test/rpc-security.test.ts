// JSON-RPC's door: Host (DNS rebinding), protected mode, path and method, Origin (CSRF), content
// type, batch size, request ids. Each refusal is checked on a real server over real HTTP, with
// the storage looked at afterwards: a refused call must not have run.
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { holds } from '@hati/test-helpers';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { BodyScanner } from '../src/json-body-scanner.js';
import { protectedModeDenies } from '../src/net-address.js';
import { hostAllowed, hostName } from '../src/rpc-server.js';
import { call, type Harness, RawClient, rpc, startServer } from './common/harness.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  json: unknown;
  ms: number;
  /** The client's port: the same for requests sent on one keep-alive connection. */
  port: number;
}

interface Send {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Connect here instead of the listener's own address. */
  host?: string;
  /** Send on this agent's connections (keep-alive) instead of a new connection. */
  agent?: Agent;
  /** The body written in these pieces, a pause between them, instead of `body`. */
  pieces?: string[];
}

const JSON_TYPE = { 'content-type': 'application/json' };

/** One HTTP request on its own connection; node:http, so that any header can be set, Host included. */
function send(
  h: Harness,
  { method = 'POST', path = '/', headers = {}, body, host, agent, pieces }: Send,
): Promise<Answer> {
  const address = h.server.addresses.rpc as { host: string; port: number };
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: host ?? address.host, port: address.port, method, path, headers, agent: agent ?? false },
      (res) => {
        const port = res.socket.localPort as number;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const ms = performance.now() - started;
          const text = Buffer.concat(chunks).toString('utf8');
          // Parsed when asked for: a test timing the server must not block its own loop first.
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            get json() {
              return text === '' ? undefined : JSON.parse(text);
            },
            ms,
            port,
          });
        });
      },
    );
    // The server may answer before the whole body is sent, and then stop reading it.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    if (pieces === undefined) {
      req.end(body);
      return;
    }
    void (async () => {
      for (const [i, piece] of pieces.entries()) {
        if (i > 0) await sleep(20);
        req.write(piece);
      }
      req.end();
    })();
  });
}

function request(id: unknown, method: string, params?: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', ...(id !== undefined && { id }), method, ...(params !== undefined && { params }) };
}

const FLUSH = JSON.stringify(request(1, 'Storage.FlushAll', { type: 'memory' }));

/** A server holding memory key `canary`, so a FlushAll that ran would show. */
async function withCanary(t: Test, options: Parameters<typeof startServer>[1] = {}): Promise<Harness> {
  const h = await startServer(t, options);
  t.same(await call(h, 'Storage.Set', { type: 'memory', key: 'canary', value: 'alive' }), { result: true });
  return h;
}

async function canaryAlive(t: Test, h: Harness, what: string): Promise<void> {
  t.same(await call(h, 'Storage.Get', { type: 'memory', key: 'canary' }), { result: 'alive' }, `${what}: not run`);
}

function refused(t: Test, answer: Answer, status: number, code: string, what: string): void {
  t.equal(answer.status, status, `${what}: HTTP ${status}`);
  t.match(answer.json, { jsonrpc: '2.0', id: null, error: { code: -32600, data: { code } } }, `${what}: ${code}`);
}

t.test('the CSRF + DNS-rebinding attack that flushed the storage is refused', async (t) => {
  const h = await withCanary(t);
  const port = h.server.addresses.rpc?.port;
  const attack = await send(h, {
    path: '/anything',
    headers: { host: 'evil.example', origin: 'http://evil', 'content-type': 'text/plain' },
    body: FLUSH,
  });
  refused(t, attack, 403, 'HOST_FORBIDDEN', 'foreign Host');
  t.match((attack.json as { error: { message: string } }).error.message, /--rpc-hosts evil\.example/);
  const csrf = await send(h, {
    headers: { host: `localhost:${port}`, origin: 'http://evil', 'content-type': 'text/plain' },
    body: FLUSH,
  });
  refused(t, csrf, 403, 'ORIGIN_FORBIDDEN', 'foreign Origin');
  t.match((csrf.json as { error: { message: string } }).error.message, /--rpc-cors-origins http:\/\/evil/);
  const form = await send(h, { headers: { 'content-type': 'text/plain' }, body: FLUSH });
  refused(t, form, 415, 'CONTENT_TYPE_INVALID', 'text/plain without Origin');
  await canaryAlive(t, h, 'every attack');
});

t.test('Host: localhost, IP literals and --rpc-hosts names pass on loopback; others are refused', async (t) => {
  const h = await withCanary(t, { rpcHosts: ['Hati.Internal'] });
  const port = h.server.addresses.rpc?.port;
  for (const host of ['localhost', `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'hati.internal:1']) {
    const answer = await send(h, {
      headers: { host, ...JSON_TYPE },
      body: JSON.stringify(request(1, 'Storage.Count', { type: 'memory' })),
    });
    t.same([answer.status, answer.json], [200, { jsonrpc: '2.0', id: 1, result: 1 }], `Host ${host}`);
  }
  for (const host of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', 'hati.internal.evil']) {
    refused(
      t,
      await send(h, { headers: { host, ...JSON_TYPE }, body: FLUSH }),
      403,
      'HOST_FORBIDDEN',
      `Host '${host}'`,
    );
  }
  await canaryAlive(t, h, 'foreign hosts');
});

t.test('hostName and hostAllowed', async (t) => {
  t.equal(hostName('LocalHost:6767'), 'localhost');
  t.equal(hostName('[::1]:6767'), '::1');
  t.equal(hostName('[::1]'), '::1');
  t.equal(hostName('::1'), '::1', 'a bare IPv6 address keeps its colons');
  t.equal(hostName('example.com.:80'), 'example.com', 'trailing dot');
  const hosts = new Set(['hati.internal']);
  t.ok(hostAllowed(undefined, hosts), 'no Host (HTTP/1.0)');
  for (const ok of [
    'localhost',
    '127.0.0.1:1',
    '127.8.9.10',
    '[::1]:80',
    '0.0.0.0',
    '10.1.2.3:80',
    '[fd00::2]',
    'HATI.internal',
  ]) {
    t.ok(hostAllowed(ok, hosts), `allowed: ${ok}`);
  }
  for (const bad of ['evil.example', 'localhost.evil', '127.0.0.1.nip.io', '', ':80', '[evil]']) {
    t.notOk(hostAllowed(bad, hosts), `refused: ${bad}`);
  }
});

t.test('protectedModeDenies: only loopback clients, unless protected mode is off', async (t) => {
  for (const address of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1']) {
    t.notOk(protectedModeDenies(true, address), `loopback ${address}`);
  }
  for (const address of ['192.0.2.2', '10.0.0.1', '::ffff:10.0.0.1', 'fd00::2', undefined]) {
    t.ok(protectedModeDenies(true, address), `remote ${address}`);
    t.notOk(protectedModeDenies(false, address), `remote ${address}, protected mode off`);
  }
});

// Protected mode seen from another machine: packages/cli/test/hostile-protocol.test.ts runs a
// server and a client inside their own network namespace, so no traffic leaves loopback here.

t.test('only POST / : other paths 404, other methods 405', async (t) => {
  // The console off: GET / is then no page either.
  const h = await withCanary(t, { console: false });
  for (const path of ['/rpc', '/?x=1', '//', '/%2F']) {
    refused(t, await send(h, { path, headers: JSON_TYPE, body: FLUSH }), 404, 'NOT_FOUND', `POST ${path}`);
  }
  refused(t, await send(h, { method: 'GET', path: '/x' }), 404, 'NOT_FOUND', 'GET /x');
  for (const method of ['GET', 'PUT', 'DELETE']) {
    const answer = await send(h, { method, headers: JSON_TYPE, body: method === 'GET' ? undefined : FLUSH });
    refused(t, answer, 405, 'INVALID_REQUEST', method);
    t.equal(answer.headers.allow, 'POST');
  }
  await canaryAlive(t, h, 'other paths and methods');
});

t.test(
  'the console on (the default): GET / is its page; other methods still 405; the checks stay in front',
  async (t) => {
    const h = await withCanary(t);
    t.equal((await send(h, { method: 'GET' })).status, 200, 'GET / is the console');
    for (const method of ['PUT', 'DELETE']) {
      const answer = await send(h, { method, headers: JSON_TYPE, body: FLUSH });
      refused(t, answer, 405, 'INVALID_REQUEST', method);
      t.equal(answer.headers.allow, 'GET, HEAD, POST');
    }
    refused(
      t,
      await send(h, { method: 'GET', headers: { host: 'evil.example' } }),
      403,
      'HOST_FORBIDDEN',
      'GET / with a rebound Host',
    );
    refused(
      t,
      await send(h, { method: 'GET', path: '/metrics', headers: { host: 'evil.example' } }),
      403,
      'HOST_FORBIDDEN',
      'GET /metrics with a rebound Host',
    );
    await canaryAlive(t, h, 'console methods');
  },
);

t.test('Origin: refused unless listed; a listed origin gets CORS headers and a preflight', async (t) => {
  const h = await withCanary(t, { rpcCorsOrigins: ['https://App.Example'] });
  const count = JSON.stringify(request(7, 'Storage.Count', { type: 'memory' }));
  const ok = await send(h, { headers: { origin: 'https://app.example', ...JSON_TYPE }, body: count });
  t.same([ok.status, ok.json], [200, { jsonrpc: '2.0', id: 7, result: 1 }], 'listed origin');
  t.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
  t.match(ok.headers.vary, /Origin/);
  const none = await send(h, { headers: JSON_TYPE, body: count });
  t.equal(none.status, 200, 'no Origin (curl, servers) passes');
  t.equal(none.headers['access-control-allow-origin'], undefined);
  for (const origin of ['null', 'https://app.example.evil', 'http://app.example', 'https://app.example:8443']) {
    const answer = await send(h, { headers: { origin, ...JSON_TYPE }, body: FLUSH });
    refused(t, answer, 403, 'ORIGIN_FORBIDDEN', `Origin ${origin}`);
    t.equal(answer.headers['access-control-allow-origin'], undefined);
  }
  const preflight = await send(h, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
  });
  t.equal(preflight.status, 204, 'preflight of a listed origin');
  t.match(preflight.headers, {
    'access-control-allow-origin': 'https://app.example',
    'access-control-allow-methods': 'POST',
    'access-control-allow-headers': 'content-type, authorization',
    'access-control-max-age': '600',
    vary: /Origin/,
  });
  refused(
    t,
    await send(h, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } }),
    403,
    'ORIGIN_FORBIDDEN',
    'preflight of another origin',
  );
  const bare = await send(h, { method: 'OPTIONS' });
  refused(t, bare, 405, 'INVALID_REQUEST', 'OPTIONS without Origin');
  refused(
    t,
    await send(h, { method: 'OPTIONS', path: '/x', headers: { origin: 'https://app.example' } }),
    404,
    'NOT_FOUND',
    'preflight of another path',
  );
  await canaryAlive(t, h, 'foreign origins');
});

t.test('a keep-alive connection: the Host of every request is checked, not only the first', async (t) => {
  const h = await withCanary(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const count = JSON.stringify(request(1, 'Storage.Count', { type: 'memory' }));
  const ok = (host: string) => send(h, { agent, headers: { host, ...JSON_TYPE }, body: count });
  const first = await ok('localhost');
  t.same([first.status, first.json], [200, { jsonrpc: '2.0', id: 1, result: 1 }], 'localhost');
  const rebound = await send(h, { agent, headers: { host: 'evil.example', ...JSON_TYPE }, body: FLUSH });
  refused(t, rebound, 403, 'HOST_FORBIDDEN', 'a rebound Host after an accepted one');
  const again = await ok('localhost');
  t.equal(again.status, 200, 'localhost again');
  const other = await send(h, { agent, headers: { host: 'localhost.evil.example', ...JSON_TYPE }, body: FLUSH });
  refused(t, other, 403, 'HOST_FORBIDDEN', 'another rebound Host');
  t.same(new Set([first.port, rebound.port, again.port, other.port]).size, 1, 'all on one connection');
  await canaryAlive(t, h, 'rebound hosts on a kept-alive connection');
});

t.test('Vary: Origin on every answer to a POST, whatever it is', async (t) => {
  const h = await withCanary(t, { maxRpcBody: 1024 });
  const count = JSON.stringify(request(1, 'Storage.Count', { type: 'memory' }));
  const notification = JSON.stringify(request(undefined, 'Storage.Count', { type: 'memory' }));
  const answers: Array<[string, Send, number]> = [
    ['a call', { headers: JSON_TYPE, body: count }, 200],
    ['a notification', { headers: JSON_TYPE, body: notification }, 204],
    ['a batch', { headers: JSON_TYPE, body: `[${count},${count}]` }, 200],
    ['not JSON', { headers: JSON_TYPE, body: '{' }, 200],
    ['a foreign Host', { headers: { host: 'evil.example', ...JSON_TYPE }, body: count }, 403],
    ['text/plain', { headers: { 'content-type': 'text/plain' }, body: count }, 415],
    ['a foreign Origin', { headers: { origin: 'http://evil', ...JSON_TYPE }, body: count }, 403],
    ['a body over the limit', { headers: JSON_TYPE, body: 'x'.repeat(2048) }, 413],
    ['another path', { path: '/x', headers: JSON_TYPE, body: count }, 404],
  ];
  for (const [what, request, status] of answers) {
    const answer = await send(h, request);
    t.equal(answer.status, status, `${what}: HTTP ${status}`);
    t.equal(answer.headers.vary, 'Origin', `${what}: Vary`);
  }
});

t.test('a body in pieces is read as a body in one piece', async (t) => {
  const h = await withCanary(t);
  const set = JSON.stringify(request(1, 'Storage.Set', { type: 'memory', key: 'k', value: '{[("x")]}' }));
  const cut = (text: string, at: number[]) => [0, ...at].map((from, i) => text.slice(from, at[i] ?? text.length));
  const ok = await send(h, { headers: JSON_TYPE, pieces: cut(set, [1, 30, 50]) });
  t.same([ok.status, ok.json], [200, { jsonrpc: '2.0', id: 1, result: true }], 'a call in four pieces');
  t.same(await call(h, 'Storage.Get', { type: 'memory', key: 'k' }), { result: '{[("x")]}' });
  const deep = `{"jsonrpc":"2.0","id":2,"method":"Storage.FlushAll","params":{"type":"memory","x":${'['.repeat(40)}${']'.repeat(40)}}}`;
  t.match(
    (await send(h, { headers: JSON_TYPE, pieces: cut(deep, [70, 90]) })).json,
    { id: null, error: { data: { code: 'INVALID_REQUEST' }, message: /nested/ } },
    'nested 40 deep, in three pieces',
  );
  const batch = `[${set},${set}]`;
  const both = await send(h, { headers: JSON_TYPE, pieces: cut(batch, [set.length, set.length + 1]) });
  t.same(both.json, [
    { jsonrpc: '2.0', id: 1, result: true },
    { jsonrpc: '2.0', id: 1, result: true },
  ]);
  await canaryAlive(t, h, 'bodies in pieces');
});

t.test('Content-Type must be application/json, checked before the body is read', async (t) => {
  const h = await withCanary(t, { maxRpcBody: 1024 * 1024 });
  const count = JSON.stringify(request(1, 'Storage.Count', { type: 'memory' }));
  for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset=UTF-8']) {
    const answer = await send(h, { headers: { 'content-type': type }, body: count });
    t.same([answer.status, answer.json], [200, { jsonrpc: '2.0', id: 1, result: 1 }], type);
  }
  for (const type of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/jsonp',
    'json',
  ]) {
    const answer = await send(h, { headers: { 'content-type': type }, body: FLUSH });
    refused(t, answer, 415, 'CONTENT_TYPE_INVALID', type);
    t.match((answer.json as { error: { message: string } }).error.message, /Content-Type: application\/json/);
  }
  refused(t, await send(h, { body: FLUSH }), 415, 'CONTENT_TYPE_INVALID', 'no Content-Type');
  // A refused body over the limit is not kept: the answer comes, then the connection goes.
  const big = await send(h, { headers: { 'content-type': 'text/plain' }, body: Buffer.alloc(8 * 1024 * 1024, 0x20) });
  refused(t, big, 415, 'CONTENT_TYPE_INVALID', 'a large text/plain body');
  await canaryAlive(t, h, 'other content types');
});

t.test('a batch over maxRpcBatch is refused whole, before any of it runs', async (t) => {
  const h = await withCanary(t, { maxRpcBatch: 3 });
  const set = (i: number) => request(i, 'Storage.Set', { type: 'memory', key: `k${i}`, value: 'v' });
  const four = await send(h, {
    headers: JSON_TYPE,
    body: JSON.stringify([set(1), set(2), set(3), request(4, 'Storage.FlushAll', { type: 'memory' })]),
  });
  t.equal(four.status, 413);
  t.match(four.json, {
    id: null,
    error: { code: -32600, data: { code: 'BATCH_TOO_LARGE' }, message: /at most 3 calls.*--rpc-max-batch/ },
  });
  t.same(await call(h, 'Storage.Count', { type: 'memory' }), { result: 1 }, 'none of it ran');
  const three = await rpc(h, [set(1), set(2), set(3)]);
  t.equal(three.status, 200, 'a batch of exactly maxRpcBatch runs');
  t.equal((three.json as unknown[]).length, 3);
});

t.test('4,000,000 × 1 is refused quickly, and the server still answers', async (t) => {
  const h = await withCanary(t, { maxRpcBatch: 100_000 });
  const body = `[${'1,'.repeat(3_999_999)}1]`;
  const answer = await send(h, { headers: JSON_TYPE, body });
  t.equal(answer.status, 413);
  t.match(answer.json, { error: { data: { code: 'BATCH_TOO_LARGE' } } });
  t.ok(answer.ms < 2000, `refused in ${answer.ms.toFixed(0)} ms`);
  t.comment(`4,000,000 × 1 refused in ${answer.ms.toFixed(0)} ms`);
  await canaryAlive(t, h, 'the server still answers');
});

/** Sends a batch of `calls` Storage.Set while PINGing over TCP; the PING latencies, in ms. */
async function pingDuring(h: Harness, tcp: RawClient, calls: number): Promise<{ answer: Answer; latencies: number[] }> {
  const batch = Array.from({ length: calls }, (_, i) =>
    request(i, 'Storage.Set', { type: 'memory', key: `k${i}`, value: 'v' }),
  );
  const body = Buffer.from(JSON.stringify(batch));
  let done = false;
  const sent = send(h, { headers: JSON_TYPE, body }).finally(() => {
    done = true;
  });
  const latencies: number[] = [];
  while (!done) {
    const started = performance.now();
    await tcp.command('PING');
    latencies.push(performance.now() - started);
  }
  return { answer: await sent, latencies };
}

t.test('a large batch yields: TCP PINGs are answered while 50,000 Sets run', async (t) => {
  const h = await startServer(t, { maxRpcBatch: 100_000 });
  const tcp = await RawClient.tcp(t, h);
  t.equal(await tcp.command('PING'), 'PONG');
  await pingDuring(h, tcp, 2_000); // warm up the JIT, as a running server is
  const calls = 50_000;
  // Before the fix one batch blocked the process for its whole run (seconds here), every time, so
  // the worst PING waited about as long as the batch. Now the longest block is a slice of ~1 ms;
  // what is left is the machine's own noise (a busy CI box deschedules the process for tens of
  // ms: 60-90 ms seen beside other packages' tests), so the bound is a quarter of the batch's own
  // time, and a run over it is tried again.
  let worst = Number.POSITIVE_INFINITY;
  let bound = 0;
  for (let attempt = 1; attempt <= 5 && worst >= bound; attempt++) {
    const { answer, latencies } = await pingDuring(h, tcp, calls);
    worst = Math.max(...latencies);
    bound = answer.ms / 4;
    t.comment(
      `batch of ${calls} in ${answer.ms.toFixed(0)} ms; ${latencies.length} PINGs, worst ${worst.toFixed(1)} ms`,
    );
    t.equal(answer.status, 200);
    const responses = answer.json as Array<{ id: number; result: unknown }>;
    t.equal(responses.length, calls);
    t.ok(
      responses.every((r, i) => r.id === i && r.result === true),
      'every call answered, in order',
    );
    t.ok(latencies.length >= 5, `PINGs ran during the batch (${latencies.length})`);
  }
  t.ok(worst < bound, `worst PING latency ${worst.toFixed(1)} ms < ${bound.toFixed(0)} ms, a quarter of the batch`);
  t.same(await call(h, 'Storage.Count', { type: 'memory' }), { result: calls });
});

t.test('an id that is not a string, number or null: INVALID_REQUEST, and the call does not run', async (t) => {
  const h = await startServer(t);
  const deep = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
  const body = `{"jsonrpc":"2.0","id":${deep},"method":"Storage.Set","params":{"type":"memory","key":"deep","value":"v"}}`;
  const answer = await send(h, { headers: JSON_TYPE, body });
  t.equal(answer.status, 200, '100,000-deep id: 200');
  t.match(answer.json, { jsonrpc: '2.0', id: null, error: { code: -32600, data: { code: 'INVALID_REQUEST' } } });
  t.same(await call(h, 'Storage.Has', { type: 'memory', key: 'deep' }), { result: false }, 'the write was not applied');

  for (const [name, id] of [
    ['object', { a: 1 }],
    ['array', [1]],
    ['boolean', true],
  ] as const) {
    const { status, json } = await rpc(h, request(id, 'Storage.Set', { type: 'memory', key: name, value: 'v' }));
    t.equal(status, 200, `${name} id`);
    t.match(json, {
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, data: { code: 'INVALID_REQUEST' }, message: /id must be/ },
    });
    t.same(await call(h, 'Storage.Has', { type: 'memory', key: name }), { result: false }, `${name} id: not run`);
  }

  const batch =
    `[${JSON.stringify(request('a', 'Storage.Set', { type: 'memory', key: 'a', value: '1' }))},` +
    `{"jsonrpc":"2.0","id":${deep},"method":"Storage.Set","params":{"type":"memory","key":"deep","value":"v"}},` +
    `${JSON.stringify(request({ x: 1 }, 'Storage.Set', { type: 'memory', key: 'obj', value: 'v' }))},` +
    `${JSON.stringify(request(null, 'Storage.Set', { type: 'memory', key: 'null-id', value: '1' }))}]`;
  const mixed = await send(h, { headers: JSON_TYPE, body: batch });
  t.equal(mixed.status, 200);
  t.match(mixed.json, [
    { id: 'a', result: true },
    { id: null, error: { code: -32600, data: { code: 'INVALID_REQUEST' } } },
    { id: null, error: { code: -32600, data: { code: 'INVALID_REQUEST' } } },
    { id: null, result: true },
  ]);
  t.same(await call(h, 'Storage.Count', { type: 'memory' }), { result: 2 }, 'only the valid calls ran');
});

t.test('requests that are not objects, and broken batches', async (t) => {
  const h = await withCanary(t);
  for (const body of [
    'null',
    '1',
    '"x"',
    'true',
    '[null]',
    '[[]]',
    '{"jsonrpc":"2.0","id":1,"method":["Storage.FlushAll"],"params":{"type":"memory"}}',
    '{"jsonrpc":"1.0","id":1,"method":"Storage.FlushAll","params":{"type":"memory"}}',
  ]) {
    const answer = await send(h, { headers: JSON_TYPE, body });
    t.equal(answer.status, 200, body);
    const response = Array.isArray(answer.json) ? answer.json[0] : answer.json;
    // A valid id is echoed; any other is answered with id null.
    const id = body.includes('"id":1') ? 1 : null;
    t.match(response, { id, error: { code: -32600, data: { code: 'INVALID_REQUEST' } } }, body);
  }
  for (const body of [`[${FLUSH},,1]`, `[${FLUSH},]`, `[${FLUSH}`, `[${FLUSH}]x`, `[${FLUSH}}`, `[${FLUSH},{]`]) {
    const answer = await send(h, { headers: JSON_TYPE, body });
    t.same(
      [answer.status, answer.json],
      [
        200,
        { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'invalid JSON', data: { code: 'PARSE_ERROR' } } },
      ],
      body,
    );
  }
  t.same((await send(h, { headers: JSON_TYPE, body: ' [ ] ' })).json, {
    jsonrpc: '2.0',
    id: null,
    error: { code: -32600, message: 'empty batch', data: { code: 'INVALID_REQUEST' } },
  });
  const nested = `{"jsonrpc":"2.0","id":1,"method":"Storage.FlushAll","params":{"type":"memory","x":${'['.repeat(40)}${']'.repeat(40)}}}`;
  t.match(
    (await send(h, { headers: JSON_TYPE, body: nested })).json,
    { id: null, error: { data: { code: 'INVALID_REQUEST' }, message: /nested/ } },
    'nested 40 deep',
  );
  await canaryAlive(t, h, 'broken requests');
});

/** What the server makes of a body: the batch's calls, or undefined when it is not a JSON array. */
function scanBatch(body: Buffer, cuts: number[]): unknown[] | undefined {
  const scanner = new BodyScanner(1_000_000);
  let from = 0;
  for (const cut of [...cuts.filter((c) => c < body.length).sort((a, b) => a - b), body.length]) {
    scanner.push(body.subarray(from, cut));
    from = cut;
  }
  scanner.finish();
  if (!scanner.batch || scanner.invalid) return undefined;
  const { elements } = scanner;
  if (elements.length === 1 && elements[0]?.blank) return [];
  try {
    return elements.map((e) => {
      if (e.blank) throw new Error('hole');
      return JSON.parse(body.toString('utf8', e.start, e.end));
    });
  } catch {
    return undefined;
  }
}

t.test('BodyScanner splits any JSON array as JSON.parse reads it, however the body is cut', async (t) => {
  holds(
    t,
    fc.property(
      fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 20 }),
      fc.constantFrom(undefined, 0, 1, '\t', ' \r\n'),
      fc.array(fc.nat({ max: 4000 })),
      (values, space, cuts) => {
        const body = Buffer.from(JSON.stringify(values, null, space));
        return isDeepStrictEqual(scanBatch(body, cuts), JSON.parse(body.toString('utf8')));
      },
    ),
    300,
    'JSON arrays, cut anywhere',
  );
  // Token soup, mostly not JSON: the scanner accepts exactly the arrays JSON.parse accepts.
  const tokens = ['[', ']', '{', '}', ',', ':', '"', '\\', '"a"', '"\\""', '1', ' ', 'null', '"é"'];
  holds(
    t,
    fc.property(
      fc.array(fc.constantFrom(...tokens), { maxLength: 30 }),
      fc.array(fc.nat({ max: 60 })),
      (parts, cuts) => {
        const text = parts.join('');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        return isDeepStrictEqual(scanBatch(Buffer.from(text), cuts), Array.isArray(parsed) ? parsed : undefined);
      },
    ),
    5000,
    'token soup',
  );
});
