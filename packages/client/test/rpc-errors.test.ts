// What a JSON-RPC user sees when the transport fails: the codes docs/errors.md promises,
// against real sockets, and a client that works again once the server does.
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { createRpcClient, HatiError } from '../src/index.js';
import { freePort, startServer } from './common/harness.js';

/** The HatiError a call rejects with; 'resolved' or 'hung' (no answer in 5 s) otherwise. */
async function errorOf(promise: Promise<unknown>): Promise<HatiError | 'resolved' | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), 5000);
  });
  try {
    return await Promise.race([promise.then(() => 'resolved' as const), hung]);
  } catch (err) {
    if (err instanceof HatiError) return err;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** On `port`, a TCP server that accepts connections and never answers; closed after the test. */
async function silentServer(t: Test, port: number): Promise<{ accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const close = async () => {
    if (!server.listening) return;
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  t.teardown(close);
  return { accepted: () => accepted, close };
}

t.test('JSON-RPC: refused, timed out and aborted calls carry their codes; the same client then succeeds', async (t) => {
  const port = await freePort();
  const rpc = createRpcClient({ url: `http://127.0.0.1:${port}/` });

  const refused = await errorOf(rpc.get('memory', 'k'));
  t.match(refused, { name: 'HatiError', code: 'HTTP_ERROR', transient: true }, 'connection refused');
  t.equal((refused as HatiError).cause instanceof Error, true, 'the cause is Node’s error');
  t.match((refused as HatiError).cause, { code: 'ECONNREFUSED' }, 'ECONNREFUSED');
  t.match(await errorOf(rpc.batch((b) => [b.count('memory'), b.count('hdd')])), { code: 'HTTP_ERROR' }, 'a batch');
  t.match(await errorOf(rpc.ping()), { code: 'HTTP_ERROR' }, 'PING');

  const silent = await silentServer(t, port);
  const started = Date.now();
  const timedOut = await errorOf(rpc.get('memory', 'k', { timeout: 100 }));
  t.match(timedOut, { name: 'HatiError', code: 'TIMEOUT', transient: true, message: /100 ms/ }, 'timeout');
  t.ok(Date.now() - started >= 90, 'not before the timeout');
  t.ok(silent.accepted() >= 1, 'the request reached a server that never answers');
  const byDefault = createRpcClient({ url: `http://127.0.0.1:${port}/`, commandTimeout: 100 });
  t.match(await errorOf(byDefault.count('hdd')), { code: 'TIMEOUT', transient: true }, 'the commandTimeout option');

  const controller = new AbortController();
  const pending = rpc.get('memory', 'k', { signal: controller.signal, timeout: 10_000 });
  setTimeout(() => controller.abort(), 50);
  const aborted = await errorOf(pending);
  t.match(aborted, { name: 'HatiError', code: 'ABORTED', transient: false }, 'abort mid-call');
  t.equal((aborted as HatiError).cause, controller.signal.reason, 'the cause is the signal’s reason');
  t.match(await errorOf(rpc.get('memory', 'k', { signal: AbortSignal.abort() })), { code: 'ABORTED' }, 'pre-aborted');

  await silent.close();
  await startServer(t, port);
  t.equal(await rpc.set('memory', 'k', 'v'), undefined, 'the same client, once a server answers: set');
  t.equal(await rpc.get('memory', 'k', { timeout: 5000 }), 'v', 'get');
  t.equal(await rpc.ping(), 'PONG', 'ping');
  t.same(await rpc.batch((b) => [b.count('memory'), b.has('memory', 'k')]), [1, true], 'batch');
});

t.test('JSON-RPC: an HTTP error without a JSON-RPC error is HTTP_ERROR; a JSON-RPC error keeps its code', async (t) => {
  const answers: Array<{ status: number; type: string; body: string }> = [];
  const stub = createHttpServer((req, res) => {
    req.resume();
    const answer = answers.shift() ?? { status: 500, type: 'text/plain', body: 'no answer queued' };
    res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body);
  });
  stub.listen(0, '127.0.0.1');
  await once(stub, 'listening');
  t.teardown(() => {
    stub.closeAllConnections();
    stub.close();
  });
  const rpc = createRpcClient({ url: `http://127.0.0.1:${(stub.address() as { port: number }).port}/` });

  answers.push({ status: 502, type: 'text/html', body: '<h1>Bad Gateway</h1>' });
  t.match(
    await errorOf(rpc.get('memory', 'k')),
    { name: 'HatiError', code: 'HTTP_ERROR', transient: true, message: /HTTP 502/ },
    'a proxy’s HTML error page',
  );
  answers.push({ status: 503, type: 'application/json', body: '{"message":"unavailable"}' });
  t.match(await errorOf(rpc.count('hdd')), { code: 'HTTP_ERROR', transient: true }, 'JSON that is not JSON-RPC');
  answers.push({ status: 500, type: 'text/plain', body: '' });
  t.match(await errorOf(rpc.ping()), { code: 'HTTP_ERROR', transient: true }, 'an empty body');
  answers.push({ status: 200, type: 'application/json', body: '{"jsonrpc":"2.0","id":999,"result":1}' });
  t.match(await errorOf(rpc.count('hdd')), { code: 'BAD_REPLY', transient: false }, 'HTTP 200 without our answer');
  answers.push({ status: 200, type: 'application/json', body: '[]' });
  t.match(
    await errorOf(rpc.batch((b) => [b.count('memory'), b.count('hdd')])),
    { code: 'BAD_REPLY' },
    'HTTP 200 with no answer for a batch',
  );
  answers.push({
    status: 200,
    type: 'application/json',
    body: '{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"boom"}}',
  });
  t.match(await errorOf(rpc.count('hdd')), { code: 'JSONRPC_-32603' }, 'a JSON-RPC error without data.code');

  const { server } = await startServer(t);
  const base = `http://127.0.0.1:${server.addresses.rpc?.port}`;
  const hati = createRpcClient({ url: `${base}/` });
  t.match(
    await errorOf(hati.get('ram' as 'memory', 'k')),
    { code: 'STORAGE_TYPE_INVALID', transient: false },
    'a call’s JSON-RPC error: its data.code',
  );
  t.match(
    await errorOf(createRpcClient({ url: `${base}/nope` }).get('memory', 'k')),
    { name: 'HatiError', code: 'NOT_FOUND', transient: false },
    'HTTP 404 with a JSON-RPC error: the server’s code',
  );
  t.match(
    await errorOf(createRpcClient({ url: `${base}/`, headers: { 'content-type': 'text/plain' } }).count('hdd')),
    { code: 'CONTENT_TYPE_INVALID' },
    'HTTP 415 with a JSON-RPC error: the server’s code',
  );
  t.match(
    await errorOf(createRpcClient({ url: `${base}/nope` }).batch((b) => [b.count('memory')])),
    { code: 'NOT_FOUND' },
    'a batch refused as a whole',
  );
  t.equal(await hati.count('memory'), 0, 'the server still answers');
});
