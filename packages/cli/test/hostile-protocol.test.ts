// Issue 7, hostile clients at the protocol level: what a web page, a rebinding DNS name or a
// machine on the network can make a running `hati start` do. Each test is one attack, against
// the real binary, asserting what the attacker and the owner see.
import { join } from 'node:path';
import t from 'tap';
import { Hati, RawClient, tempDir, text } from './common/hati.js';
import {
  httpRequest,
  LOCAL_RPC,
  LOCAL_TCP,
  needsRoot,
  rawExchange,
  rpcBody,
  run,
  show,
  until,
} from './common/hostile.js';

const JSON_TYPE = { 'content-type': 'application/json' };
const FLUSH_HDD = rpcBody('Storage.FlushAll', { type: 'hdd' });

t.test('4. cross-protocol attack on the TCP port', async (t) => {
  // A web page can make the browser POST to localhost:4242. With Content-Type text/plain the
  // body goes out verbatim, and a server reading inline commands line by line would run
  // `FLUSHALL hdd` after shrugging off the request line and headers as unknown commands.
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, [...LOCAL_TCP, '--data-dir', join(dir, 'data')]);
  const address = await hati.tcp();
  const owner = await RawClient.open(t, address);
  t.equal(await owner.command('SET', 'hdd', '0', 'precious', 'on disk'), 'OK');
  t.equal(await owner.command('SET', 'memory', '0', 'precious', 'in memory'), 'OK');

  const post = await rawExchange(
    address,
    'POST / HTTP/1.1\r\nHost: localhost:4242\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nFLUSHALL hdd\n',
  );
  t.not(post.closedBy, 'open', `the server closed the POST connection (${post.closedBy})`);
  t.notMatch(post.data.toString('latin1'), /\+OK/, 'nothing in the POST was run');
  t.equal(text(await owner.command('GET', 'hdd', 'precious')), 'on disk', 'the hdd key survives');
  t.equal(text(await owner.command('GET', 'memory', 'precious')), 'in memory', 'the memory key survives');
  t.ok(await until(() => /cross-protocol|HTTP/i.test(hati.stderr), 2_000), `a warning on stderr: ${hati.stderr}`);

  // A GET with a command smuggled after the headers, all in one write.
  const get = await rawExchange(address, 'GET / HTTP/1.1\r\nHost: x\r\n\r\nSET memory 0 pwned 1\n');
  t.not(get.closedBy, 'open', `the server closed the GET connection (${get.closedBy})`);
  t.equal(await owner.command('HAS', 'memory', 'pwned'), 0, 'the smuggled SET was not run');

  // A header line first (the request line lost, or a client speaking HTTP mid-stream).
  const header = await rawExchange(address, 'Host: evil\r\nSET memory 0 pwned2 1\r\n');
  t.not(header.closedBy, 'open', `the server closed the header-first connection (${header.closedBy})`);
  t.equal(await owner.command('HAS', 'memory', 'pwned2'), 0, 'the SET after the header was not run');

  t.equal(await owner.command('PING'), 'PONG', 'the owner is still served');
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
});

t.test('5. JSON-RPC CSRF and DNS rebinding', async (t) => {
  // CSRF: a page on evil.example POSTs a "simple" request (text/plain, no preflight) to the
  // JSON-RPC port. DNS rebinding: evil.example resolves to 127.0.0.1, so the request carries
  // `Host: evil.example` and reads the reply as same-origin.
  const dir = await tempDir(t);
  const plain = Hati.spawn(t, [...LOCAL_RPC, '--data-dir', join(dir, 'plain')]);
  const cors = Hati.spawn(t, [
    ...LOCAL_RPC,
    '--rpc-cors-origins',
    'http://app.example',
    '--rpc-hosts',
    'hati.test',
    '--data-dir',
    join(dir, 'cors'),
  ]);
  const [address, corsAddress] = await Promise.all([plain.rpc(), cors.rpc()]);
  const set = await httpRequest(address, {
    headers: JSON_TYPE,
    body: rpcBody('Storage.Set', { type: 'hdd', key: 'precious', value: 'kept' }),
  });
  t.equal(set.json.result, true, `the owner's Storage.Set works (${set.status} ${set.text})`);
  const survives = async (what: string) => {
    const get = await httpRequest(address, {
      headers: JSON_TYPE,
      body: rpcBody('Storage.Get', { type: 'hdd', key: 'precious' }),
    });
    t.equal(get.json.result, 'kept', `the hdd key survives ${what}`);
  };

  const csrf = await httpRequest(address, {
    headers: { 'content-type': 'text/plain', origin: 'http://evil.example' },
    body: FLUSH_HDD,
  });
  t.equal(csrf.status, 403, `foreign Origin: 403 (${csrf.text})`);
  t.equal(csrf.json.error?.data?.code, 'ORIGIN_FORBIDDEN');
  await survives('the CSRF POST');

  const textPlain = await httpRequest(address, { headers: { 'content-type': 'text/plain' }, body: FLUSH_HDD });
  t.equal(textPlain.status, 415, `text/plain without Origin: 415 (${textPlain.text})`);
  t.equal(textPlain.json.error?.data?.code, 'CONTENT_TYPE_INVALID');
  await survives('the text/plain POST');

  const rebound = await httpRequest(address, { headers: { ...JSON_TYPE, host: 'evil.example' }, body: FLUSH_HDD });
  t.equal(rebound.status, 403, `Host: evil.example: 403 (${rebound.text})`);
  t.equal(rebound.json.error?.data?.code, 'HOST_FORBIDDEN');
  await survives('the rebinding POST');

  const elsewhere = await httpRequest(address, { path: '/anything', headers: JSON_TYPE, body: FLUSH_HDD });
  t.equal(elsewhere.status, 404, `POST /anything: 404 (${elsewhere.text})`);
  t.equal(elsewhere.json.error?.data?.code, 'NOT_FOUND');
  await survives('the POST to /anything');

  // An origin named with --rpc-cors-origins may call, preflight included.
  const preflight = await httpRequest(corsAddress, {
    method: 'OPTIONS',
    headers: {
      origin: 'http://app.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    },
  });
  t.equal(preflight.status, 204, `preflight from the allowed origin: 204 (${preflight.text})`);
  t.equal(preflight.headers['access-control-allow-origin'], 'http://app.example');
  const allowed = await httpRequest(corsAddress, {
    headers: { ...JSON_TYPE, origin: 'http://app.example' },
    body: rpcBody('Storage.Set', { type: 'memory', key: 'from-app', value: 'ok' }),
  });
  t.equal(allowed.status, 200, `POST from the allowed origin: 200 (${allowed.text})`);
  t.equal(allowed.json.result, true);
  t.equal(allowed.headers['access-control-allow-origin'], 'http://app.example');
  const stillForeign = await httpRequest(corsAddress, {
    headers: { ...JSON_TYPE, origin: 'http://evil.example' },
    body: FLUSH_HDD,
  });
  t.equal(stillForeign.status, 403, 'another origin is still refused');
  t.equal(stillForeign.json.error?.data?.code, 'ORIGIN_FORBIDDEN');
  // And a host name named with --rpc-hosts is let through.
  const named = await httpRequest(corsAddress, {
    headers: { ...JSON_TYPE, host: 'hati.test' },
    body: rpcBody('Storage.Get', { type: 'memory', key: 'from-app' }),
  });
  t.equal(named.status, 200, `Host: hati.test with --rpc-hosts hati.test: 200 (${named.text})`);
  t.equal(named.json.result, 'ok');

  for (const hati of [plain, cors]) hati.child.kill('SIGTERM');
  t.same(await Promise.all([plain.waitExit(), cors.waitExit()]), [
    { code: 0, signal: null },
    { code: 0, signal: null },
  ]);
});

/** Run inside the server's network namespace: what a remote and a local client get. */
const NAMESPACE_CLIENT = `
const net = require('node:net');
const http = require('node:http');
const { tcpPort, rpcPort, remote, silent } = JSON.parse(process.argv[1]);
function tcp(host, send) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: tcpPort });
    let data = '';
    let closedBy;
    const timer = setTimeout(() => { closedBy ??= 'open'; socket.destroy(); }, 3000);
    socket.on('connect', () => { if (send) socket.write(send); });
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('end', () => { closedBy ??= 'end'; });
    socket.on('error', (err) => { closedBy ??= err.code; });
    socket.on('close', () => { clearTimeout(timer); resolve({ data, closedBy: closedBy ?? 'close' }); });
  });
}
function rpc(host) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'Storage.Count', params: { type: 'memory' } });
    const req = http.request({ host, port: rpcPort, method: 'POST', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, text: err.message }));
    req.end(body);
  });
}
(async () => {
  const out = {
    remoteTcp: await tcp(remote, silent ? '' : 'PING\\r\\nQUIT\\r\\n'),
    localTcp: await tcp('127.0.0.1', 'PING\\r\\nQUIT\\r\\n'),
    remoteRpc: await rpc(remote),
    localRpc: await rpc('127.0.0.1'),
  };
  process.stdout.write(JSON.stringify(out));
})();
`;

interface NamespaceView {
  remoteTcp: { data: string; closedBy: string };
  localTcp: { data: string; closedBy: string };
  remoteRpc: { status: number; text: string };
  localRpc: { status: number; text: string };
}

const REMOTE = '10.77.0.1';
// A dummy interface where the kernel has the module; else the address on lo, which is as good:
// a connection from it has a non-loopback source address.
const NAMESPACE_SETUP = `ip link set lo up && { { ip link add d0 type dummy && ip addr add ${REMOTE}/24 dev d0 && ip link set d0 up; } 2>/dev/null || ip addr add ${REMOTE}/32 dev lo; }`;

t.test(
  '6. protected mode',
  { skip: needsRoot('a private network namespace', ['unshare', 'nsenter', 'ip']) },
  async (t) => {
    // A server bound to 0.0.0.0 with no credentials, reached from another machine: it must
    // refuse. The server and its clients run in a network namespace of their own, so nothing
    // leaves this machine; 10.77.0.1 in it plays the other machine.
    const probe = await run('unshare', ['--net', 'sh', '-c', NAMESPACE_SETUP]).catch((err: Error) => err);
    if (probe instanceof Error) {
      // Root without CAP_SYS_ADMIN / CAP_NET_ADMIN (an unprivileged container) cannot make one.
      t.plan(0, `cannot create a network namespace here: ${probe.message.split('\n')[0]}`);
      return;
    }
    const dir = await tempDir(t);
    const view = async (protectedMode: 'yes' | 'no' | undefined) => {
      const hati = Hati.wrapped(t, ['unshare', '--net'], NAMESPACE_SETUP, [
        '--tcp',
        '--tcp-host',
        '0.0.0.0',
        '--tcp-port',
        '0',
        '--rpc',
        '--rpc-host',
        '0.0.0.0',
        '--rpc-port',
        '0',
        '--data-dir',
        join(dir, `data-${protectedMode ?? 'default'}`),
        ...(protectedMode === undefined ? [] : ['--protected-mode', protectedMode]),
      ]);
      const [tcp, rpc] = await Promise.all([hati.tcp(), hati.rpc()]);
      // The denied client sends nothing, so that a refusal cannot turn into a reset over unread bytes.
      const out = await run('nsenter', [
        `--net=/proc/${hati.pid}/ns/net`,
        process.execPath,
        '-e',
        NAMESPACE_CLIENT,
        JSON.stringify({ tcpPort: tcp.port, rpcPort: rpc.port, remote: REMOTE, silent: protectedMode !== 'no' }),
      ]);
      hati.child.kill('SIGTERM');
      t.same(
        await hati.waitExit(),
        { code: 0, signal: null },
        `--protected-mode ${protectedMode ?? '(default)'}: exit 0`,
      );
      return { hati, seen: JSON.parse(out) as NamespaceView };
    };

    const [on, off] = await Promise.all([view(undefined), view('no')]);
    const { seen } = on;
    t.match(seen.remoteTcp.data, /^-DENIED .*protected mode/i, `remote TCP client: DENIED (${seen.remoteTcp.data})`);
    t.not(seen.remoteTcp.closedBy, 'open', `then the server closes the connection (${seen.remoteTcp.closedBy})`);
    t.equal(seen.localTcp.data, '+PONG\r\n+OK\r\n', 'a client on 127.0.0.1 is served');
    t.equal(seen.remoteRpc.status, 403, `remote JSON-RPC: 403 (${seen.remoteRpc.text})`);
    t.match(seen.remoteRpc.text, /"code":"DENIED"/, 'with data.code DENIED');
    t.equal(seen.localRpc.status, 200, `JSON-RPC on 127.0.0.1 is served (${seen.localRpc.text})`);
    t.match(`${on.hati.stdout}${on.hati.stderr}`, /protected mode/i, 'startup warns about protected mode');

    t.equal(off.seen.remoteTcp.data, '+PONG\r\n+OK\r\n', '--protected-mode no: the remote TCP client is served');
    t.equal(
      off.seen.remoteRpc.status,
      200,
      `--protected-mode no: remote JSON-RPC is served (${off.seen.remoteRpc.text})`,
    );
  },
);

t.test('11. JSON-RPC id type, and a lone CR before a command', async (t) => {
  // A 100,000-deep object as the id: echoing it back means serialising it recursively (a stack
  // overflow) after the call already ran. Ids are strings, numbers or null.
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, [...LOCAL_TCP, ...LOCAL_RPC, '--data-dir', join(dir, 'data')]);
  const [tcp, rpc] = await Promise.all([hati.tcp(), hati.rpc()]);
  const depth = 100_000;
  const id = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const body = `{"jsonrpc":"2.0","id":${id},"method":"Storage.Set","params":{"type":"memory","key":"deep","value":"v"}}`;
  const deep = await httpRequest(rpc, { headers: JSON_TYPE, body });
  t.equal(deep.status, 200, `deep id: HTTP 200 (${deep.text.slice(0, 200)})`);
  t.equal(deep.json.error?.data?.code, 'INVALID_REQUEST');
  t.equal(deep.json.id, null, 'the reply id is null');
  const get = await httpRequest(rpc, {
    headers: JSON_TYPE,
    body: rpcBody('Storage.Get', { type: 'memory', key: 'deep' }),
  });
  t.equal(get.json.result, null, 'the call was not run');

  // A bare CR before the command name (a client ending lines with \r\r\n, or a stray byte) is
  // dropped like the CR of CRLF, not read as part of the name.
  const client = await RawClient.open(t, tcp);
  client.write('\rPING\r\n');
  t.equal(show((await client.next(1, 0))[0]), '"PONG"', 'CR then PING: +PONG');
  client.write('\r\rSET memory 0 k v\r\n');
  t.equal(show((await client.next(1, 1))[0]), '"OK"', 'CR CR then SET: +OK');
  t.equal(text(await client.command('GET', 'memory', 'k')), 'v');
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
});
