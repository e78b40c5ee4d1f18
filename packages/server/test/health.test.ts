// /healthz and /readyz for Kubernetes probes and systemd watchdogs, the console's routes on the
// JSON-RPC listener, and the same-origin rule that lets the console's page call JSON-RPC.
import { rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { call, type Harness, nonLoopbackIPv4, RawClient, startServer } from './common/harness.js';

interface Address {
  host: string;
  port: number;
}

async function get(address: Address, path: string, init: RequestInit = {}) {
  const res = await fetch(`http://${address.host}:${address.port}${path}`, init);
  const text = await res.text();
  const json = text !== '' && res.headers.get('content-type') === 'application/json' ? JSON.parse(text) : undefined;
  return { status: res.status, headers: res.headers, text, json };
}

function rpcAddress(h: Harness): Address {
  return h.server.addresses.rpc as Address;
}

t.test('healthy and ready, on the JSON-RPC and the metrics listener', async (t) => {
  const h = await startServer(t, { metrics: { host: '127.0.0.1', port: 0 } });
  for (const address of [rpcAddress(h), h.server.addresses.metrics as Address]) {
    const healthz = await get(address, '/healthz');
    t.same([healthz.status, healthz.json], [200, { status: 'ok' }], `${address.port}: /healthz`);
    t.equal(healthz.headers.get('content-type'), 'application/json');
    t.equal(healthz.headers.get('cache-control'), 'no-store');
    const readyz = await get(address, '/readyz?verbose');
    t.same([readyz.status, readyz.json], [200, { status: 'ready' }], `${address.port}: /readyz (a query is ignored)`);
    const head = await get(address, '/healthz', { method: 'HEAD' });
    t.same([head.status, head.text], [200, ''], `${address.port}: HEAD /healthz`);
  }
});

t.test('/readyz is 503 once the data directory is gone; /healthz stays 200', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  t.equal(await c.command('SET', 'hdd', '0', 'k', 'v'), 'OK');
  await rm(join(h.dir, 'data'), { recursive: true, force: true });
  // COUNT checks the directory at once (the store also checks it every second).
  t.equal((await c.command('COUNT', 'hdd')) instanceof Error, true, 'COUNT hdd fails');
  const readyz = await get(rpcAddress(h), '/readyz');
  t.equal(readyz.status, 503);
  t.equal(readyz.json.status, 'unready');
  t.match(readyz.json.reasons, [/^hdd store gone: .*data/]);
  t.same((await get(rpcAddress(h), '/healthz')).json, { status: 'ok' }, 'alive all the same');
});

/** Sends a request but its last CRLF, so the connection has a request in progress; `finish` sends the rest. */
async function halfRequest(address: Address, path: string): Promise<{ finish: () => Promise<string>; socket: Socket }> {
  const socket = connect(address.port, address.host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${address.host}:${address.port}\r\n`);
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  const finish = () =>
    new Promise<string>((resolve) => {
      const done = () => {
        const end = text.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? Number.NaN);
        if (end !== -1 && text.length >= end + 4 + length) {
          socket.destroy();
          resolve(text);
          return true;
        }
        return false;
      };
      socket.on('data', done);
      socket.write('\r\n');
    });
  return { finish, socket };
}

t.test('while shutting down: /healthz and /readyz answer 503', async (t) => {
  const h = await startServer(t);
  const healthz = await halfRequest(rpcAddress(h), '/healthz');
  const readyz = await halfRequest(rpcAddress(h), '/readyz');
  // Let the server see the request lines before it starts closing.
  await call(h, 'Server.Ping');
  const closed = h.server.close();
  const [health, ready] = [await healthz.finish(), await readyz.finish()];
  t.match(health, /^HTTP\/1\.1 503 /);
  t.match(health, /\r\n\r\n\{"status":"shutting-down"\}$/);
  t.match(ready, /^HTTP\/1\.1 503 /);
  t.match(ready, /"status":"unready","reasons":\["shutting down"\]/);
  await closed;
});

t.test('the console: served at GET / unless turned off; same-origin POSTs', async (t) => {
  const on = await startServer(t);
  const page = await get(rpcAddress(on), '/');
  t.equal(page.status, 200, 'GET / is the console');
  t.match(page.headers.get('content-type'), /^text\/html/);
  const missing = await get(rpcAddress(on), '/console/nope.js');
  t.same([missing.status, missing.json.error.data.code], [404, 'NOT_FOUND'], 'an asset that does not exist');

  const off = await startServer(t, { console: false, unix: join(on.dir, 'off.sock') });
  const root = await get(rpcAddress(off), '/');
  t.same([root.status, root.headers.get('allow')], [405, 'POST'], 'console off: GET / is no page');
  const asset = await get(rpcAddress(off), '/console/app.js');
  t.same([asset.status, asset.json.error.data.code], [404, 'NOT_FOUND'], 'console off: no assets');

  // The console's page calls JSON-RPC from the listener's own origin.
  const { host, port } = rpcAddress(on);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'Storage.Count', params: { type: 'memory' } });
  const post = (origin: string) =>
    get(rpcAddress(on), '/', { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body });
  const same = await post(`http://${host}:${port}`);
  t.same([same.status, same.json], [200, { jsonrpc: '2.0', id: 1, result: 0 }], 'same origin');
  for (const origin of [
    'http://evil.example',
    `http://localhost:${port}`,
    `https://${host}:${port}`,
    `http://${host}`,
  ]) {
    const foreign = await post(origin);
    t.same([foreign.status, foreign.json.error.data.code], [403, 'ORIGIN_FORBIDDEN'], `Origin ${origin}`);
  }
});

t.test('protected mode: probes from another address are answered, /metrics is not', async (t) => {
  const remote = nonLoopbackIPv4();
  if (remote === undefined) {
    t.comment('no non-loopback IPv4 address on this machine: nothing to test');
    return;
  }
  const h = await startServer(t, { metrics: { host: '0.0.0.0', port: 0 } });
  const address = { host: remote, port: (h.server.addresses.metrics as Address).port };
  t.same((await get(address, '/healthz')).json, { status: 'ok' }, 'a kubelet on another address may probe');
  t.same((await get(address, '/readyz')).json, { status: 'ready' });
  const metrics = await get(address, '/metrics');
  t.same([metrics.status, metrics.json.error.data.code], [403, 'DENIED'], '/metrics from another address');
  t.ok(
    h.log.some((line) => line.includes('only clients on this machine may read /metrics')),
    'start-up warned about it',
  );
});

t.test('a page whose name was rebound to the server is not taken for the console (DNS rebinding)', async (t) => {
  const remote = nonLoopbackIPv4();
  if (remote === undefined) {
    t.comment('no non-loopback IPv4 address on this machine: nothing to test');
    return;
  }
  // A listener on every address, no credentials, protected mode off: a LAN server that a
  // victim's browser can reach and an attacker's site cannot, but for rebinding its name.
  const h = await startServer(t, { rpc: { host: '0.0.0.0', port: 0 }, protectedMode: false });
  const { port } = rpcAddress(h);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'Storage.Count', params: { type: 'memory' } });
  const post = (host: string) =>
    new Promise<{ status: number; json: { result?: unknown; error?: { data: { code: string } } } }>(
      (resolve, reject) => {
        const req = request(
          {
            host: remote,
            port,
            method: 'POST',
            path: '/',
            headers: { host, origin: `http://${host}`, 'content-type': 'application/json' },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (chunk: string) => {
              text += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
          },
        );
        req.on('error', reject);
        req.end(body);
      },
    );
  const rebound = await post(`evil.example:${port}`);
  t.same(
    [rebound.status, rebound.json.error?.data.code],
    [403, 'ORIGIN_FORBIDDEN'],
    'Host and Origin of a rebound name',
  );
  const direct = await post(`${remote}:${port}`);
  t.same([direct.status, direct.json.result], [200, 0], 'the console opened at the IP address');
});
