import t from 'tap';
import { call, rpc, startServer } from './common/harness.js';

t.test("every Storage method, both types, with the seed's array-wrapped params too", async (t) => {
  const h = await startServer(t);
  for (const type of ['memory', 'hdd']) {
    t.same(await call(h, 'Storage.Set', { type, key: 'k', value: 'hello world', ttl: 0 }), { result: true });
    t.same(await call(h, 'Storage.Get', { type, key: 'k' }), { result: 'hello world' });
    t.same(await call(h, 'Storage.Get', [{ type, key: 'k' }]), { result: 'hello world' }, 'params as [object]');
    t.same(await call(h, 'Storage.Has', { type, key: 'k' }), { result: true });
    t.same(await call(h, 'Storage.Count', { type }), { result: 1 });
    t.same(await call(h, 'Storage.Delete', { type, key: 'k' }), { result: true });
    t.same(await call(h, 'Storage.Delete', { type, key: 'k' }), { result: false });
    t.same(await call(h, 'Storage.Get', { type, key: 'k' }), { result: null });
    t.same(
      await call(h, 'Storage.Set', [{ type, key: 't', value: 'v', ttl: '100' }]),
      { result: true },
      'ttl as a string',
    );
    h.clock.now += 100;
    t.same(await call(h, 'Storage.Has', { type, key: 't' }), { result: true }, 'live for its whole ttl');
    h.clock.now += 1;
    t.same(await call(h, 'Storage.Has', { type, key: 't' }), { result: false }, 'expired');
    const binary = Buffer.from([0, 255, 13, 10]).toString('base64');
    const key = Buffer.from([0xff, 0x00]).toString('base64');
    t.same(await call(h, 'Storage.Set', { type, key, value: binary, encoding: 'base64' }), { result: true });
    t.same(
      await call(h, 'Storage.Get', { type, key, encoding: 'base64' }),
      { result: binary },
      'base64 keys and values',
    );
    t.same(await call(h, 'Storage.FlushAll', { type }), { result: true });
    t.same(await call(h, 'Storage.Count', [{ type }]), { result: 0 });
  }
  const stats = (await call(h, 'Server.Stats')).result as {
    storage: { hdd: { keys: number } };
    commands: { rpcCalls: number };
  };
  t.equal(stats.storage.hdd.keys, 0);
  t.ok(stats.commands.rpcCalls >= 28);
});

t.test('batches', async (t) => {
  const h = await startServer(t);
  const { status, json } = await rpc(h, [
    { jsonrpc: '2.0', id: 1, method: 'Storage.Set', params: { type: 'memory', key: 'a', value: '1' } },
    { jsonrpc: '2.0', id: 2, method: 'Storage.Get', params: { type: 'memory', key: 'a' } },
    { jsonrpc: '2.0', method: 'Storage.Set', params: { type: 'memory', key: 'notified', value: '1' } },
    { jsonrpc: '2.0', id: 3, method: 'Nope' },
  ]);
  t.equal(status, 200);
  const byId = new Map((json as Array<{ id: number }>).map((r) => [r.id, r]));
  t.equal((json as unknown[]).length, 3, 'no response for the notification');
  t.same(byId.get(1), { jsonrpc: '2.0', id: 1, result: true });
  t.same(byId.get(2), { jsonrpc: '2.0', id: 2, result: '1' });
  t.match(byId.get(3), { error: { code: -32601, data: { code: 'METHOD_NOT_FOUND' } } });
  t.same(await call(h, 'Storage.Has', { type: 'memory', key: 'notified' }), { result: true }, 'the notification ran');
  const only = await rpc(h, { jsonrpc: '2.0', method: 'Storage.Count', params: { type: 'memory' } });
  t.equal(only.status, 204, 'notifications alone get no body');
});

t.test('errors carry JSON-RPC codes and stable data.code', async (t) => {
  const h = await startServer(t, { maxRpcBody: 64 * 1024 });
  const cases: Array<[string, unknown, number, string]> = [
    ['invalid JSON', '{"jsonrpc":', -32700, 'PARSE_ERROR'],
    ['not a request', { hello: 'world' }, -32600, 'INVALID_REQUEST'],
    ['empty batch', [], -32600, 'INVALID_REQUEST'],
    ['unknown method', { jsonrpc: '2.0', id: 1, method: 'Storage.Nope' }, -32601, 'METHOD_NOT_FOUND'],
    [
      'params not an object',
      { jsonrpc: '2.0', id: 1, method: 'Storage.Get', params: [1, 2] },
      -32602,
      'PARAMS_INVALID',
    ],
    ['missing params', { jsonrpc: '2.0', id: 1, method: 'Storage.Get' }, -32602, 'PARAMS_INVALID'],
    [
      'key not a string',
      { jsonrpc: '2.0', id: 1, method: 'Storage.Get', params: { type: 'memory', key: 5 } },
      -32602,
      'PARAMS_INVALID',
    ],
    [
      'storage type ram',
      { jsonrpc: '2.0', id: 1, method: 'Storage.Get', params: { type: 'ram', key: 'k' } },
      -32602,
      'STORAGE_TYPE_INVALID',
    ],
    [
      'empty key',
      { jsonrpc: '2.0', id: 1, method: 'Storage.Set', params: { type: 'hdd', key: '', value: 'v' } },
      -32602,
      'KEY_EMPTY',
    ],
    [
      'ttl -1',
      { jsonrpc: '2.0', id: 1, method: 'Storage.Set', params: { type: 'memory', key: 'k', value: 'v', ttl: -1 } },
      -32602,
      'TTL_INVALID',
    ],
    [
      'ttl 1.5',
      { jsonrpc: '2.0', id: 1, method: 'Storage.Set', params: { type: 'memory', key: 'k', value: 'v', ttl: '1.5' } },
      -32602,
      'TTL_INVALID',
    ],
    [
      'ttl abc',
      { jsonrpc: '2.0', id: 1, method: 'Storage.Set', params: { type: 'memory', key: 'k', value: 'v', ttl: 'abc' } },
      -32602,
      'TTL_INVALID',
    ],
    [
      'bad encoding',
      { jsonrpc: '2.0', id: 1, method: 'Storage.Get', params: { type: 'memory', key: 'k', encoding: 'hex' } },
      -32602,
      'PARAMS_INVALID',
    ],
  ];
  for (const [name, body, code, stable] of cases) {
    const { status, json } = await rpc(h, body);
    t.equal(status, 200, `${name}: status`);
    t.match(json, { jsonrpc: '2.0', error: { code, data: { code: stable } } }, name);
  }
  const big = await rpc(h, {
    jsonrpc: '2.0',
    id: 1,
    method: 'Storage.Set',
    params: { type: 'memory', key: 'k', value: 'x'.repeat(100 * 1024) },
  });
  t.equal(big.status, 413, 'a body over the limit');
  t.match(big.json, { error: { code: -32600, data: { code: 'BODY_TOO_LARGE' } } });
  const put = await fetch(`http://127.0.0.1:${h.server.addresses.rpc?.port}/`, { method: 'PUT' });
  t.equal(put.status, 405, 'PUT is not JSON-RPC');
  t.same(await call(h, 'Storage.Count', { type: 'memory' }), { result: 0 }, 'the server still serves');
});

t.test("JSON-RPC 1.0, as the seed's Go clients send it: no jsonrpc field, answered in kind", async (t) => {
  const h = await startServer(t);
  // Go's net/rpc/jsonrpc: params is an array of one object, the ttl a string, empty for none.
  const set = await rpc(h, { method: 'Storage.Set', params: [{ type: 'hdd', key: 'go', value: 'v', ttl: '' }], id: 7 });
  t.same(set, { status: 200, json: { id: 7, result: true, error: null } }, 'result, and error null');
  const get = await rpc(h, { method: 'Storage.Get', params: [{ type: 'hdd', key: 'go' }], id: 8 });
  t.same(get.json, { id: 8, result: 'v', error: null });
  const bad = await rpc(h, { method: 'Storage.Get', params: [{ type: 'ram', key: 'go' }], id: 9 });
  t.match(
    bad.json,
    { id: 9, result: null, error: { data: { code: 'STORAGE_TYPE_INVALID' } } },
    'result null, error set',
  );
  const unknown = await rpc(h, { method: 'Storage.Nope', params: [], id: 10 });
  t.match(unknown.json, { id: 10, result: null, error: { data: { code: 'METHOD_NOT_FOUND' } } });
  // A 1.0 notification has a null id and gets no response.
  const note = await rpc(h, { method: 'Storage.Set', params: [{ type: 'memory', key: 'n', value: 'v' }], id: null });
  t.equal(note.status, 204);
  t.same(await call(h, 'Storage.Get', { type: 'memory', key: 'n' }), { result: 'v' }, 'the notification ran');
  // 2.0 and 1.0 calls may share a batch; each is answered in its own version.
  const batch = await rpc(h, [
    { method: 'Storage.Count', params: [{ type: 'hdd' }], id: 'a' },
    { jsonrpc: '2.0', method: 'Storage.Count', params: { type: 'hdd' }, id: 'b' },
  ]);
  t.same(batch.json, [
    { id: 'a', result: 1, error: null },
    { jsonrpc: '2.0', id: 'b', result: 1 },
  ]);
  const wrong = await rpc(h, { jsonrpc: '1.0', method: 'Storage.Count', params: { type: 'hdd' }, id: 1 });
  t.match(wrong.json, { error: { data: { code: 'INVALID_REQUEST' }, message: /jsonrpc must be "2.0"/ } });
});

t.test('an empty ttl string means no expiry, as the seed took it', async (t) => {
  const h = await startServer(t);
  t.same(await call(h, 'Storage.Set', { type: 'memory', key: 'k', value: 'v', ttl: '' }), { result: true });
  h.clock.now += 10 ** 12;
  t.same(await call(h, 'Storage.Get', { type: 'memory', key: 'k' }), { result: 'v' }, 'still there much later');
  t.match(await call(h, 'Storage.Set', { type: 'memory', key: 'k', value: 'v', ttl: ' ' }), {
    error: { data: { code: 'TTL_INVALID' } },
  });
});

t.test('a response is the JSON of { jsonrpc, id, result }, byte for byte, whatever the id and result', async (t) => {
  const h = await startServer(t);
  const url = `http://127.0.0.1:${h.server.addresses.rpc?.port}/`;
  const text = async (body: unknown) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return res.text();
  };
  const value = 'quote " backslash \\ newline \n tab \t nul \u0000 line separator \u2028 é ☃ 😀';
  t.same(await call(h, 'Storage.Set', { type: 'memory', key: 'k', value }), { result: true });
  const calls: Array<[string, unknown]> = [
    ['Storage.Get', { type: 'memory', key: 'k' }],
    ['Storage.Get', { type: 'memory', key: 'missing' }],
    ['Storage.Set', { type: 'memory', key: 'k2', value: 'v' }],
    ['Storage.Count', { type: 'memory' }],
    ['Server.Stats', undefined],
  ];
  for (const id of [1, 0, -7, 2.5, 1e21, 'id "quoted" \\ é 😀', '', null]) {
    for (const [method, params] of calls) {
      const body = await text({ jsonrpc: '2.0', id, method, ...(params !== undefined && { params }) });
      const { result } = JSON.parse(body) as { result: unknown };
      t.equal(body, JSON.stringify({ jsonrpc: '2.0', id, result }), `${method}, id ${JSON.stringify(id)}`);
    }
  }
  t.equal(
    await text({ jsonrpc: '2.0', id: 'x', method: 'Storage.Get', params: { type: 'memory', key: 'k' } }),
    JSON.stringify({ jsonrpc: '2.0', id: 'x', result: value }),
    'the value as it was stored',
  );
});
