// TLS on the TCP and JSON-RPC listeners, with real sockets: node:tls, ioredis, node-redis and
// redis-cli (Debian's, built with TLS) against servers that use certificates from
// createCertificates. Servers are shared between subtests where the policy allows.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls';
import { type Address, postJson, RawClient, type Reply, ReplyError, run, tempDir, text } from '@hati/test-helpers';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import t, { type Test } from 'tap';
import { type CertificateSet, createCertificates, type ServerOptions } from '../src/index.js';
import { type Harness, nonLoopbackIPv4, startServer } from './common/harness.js';

const DAY_MS = 24 * 60 * 60 * 1000;

// RSA key generation is most of this file's set-up time: three sets, shared by every subtest.
const main = createCertificates();
const other = createCertificates();
const expired = createCertificates({
  notBefore: new Date(Date.now() - 400 * DAY_MS),
  notAfter: new Date(Date.now() - DAY_MS),
});

const hasRedisCli = await new Promise<boolean>((resolve) =>
  execFile('redis-cli', ['--version'], (err) => resolve(err === null)),
);

interface SetFiles {
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
}

const root = await tempDir(t, 'hati-tls-');

/** Writes a certificate set's PEM files into `dir/name/`. */
async function writeSet(name: string, set: CertificateSet): Promise<SetFiles> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const files = {
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
  await Promise.all([
    writeFile(files.ca, set.ca.cert),
    writeFile(files.cert, set.server.cert),
    writeFile(files.key, set.server.key),
    writeFile(files.clientCert, set.client.cert),
    writeFile(files.clientKey, set.client.key),
  ]);
  return files;
}

const mainFiles = await writeSet('main', main);
const expiredFiles = await writeSet('expired', expired);

function codeOf(reply: Reply | undefined): string | undefined {
  return reply instanceof ReplyError ? reply.code : undefined;
}

function tcpOf(h: Harness): Address {
  return h.server.addresses.tcp as Address;
}

/** Connects with node:tls, verifying the server against `main`'s CA unless told otherwise. */
function tlsConnect(address: Address, options: ConnectionOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.host, port: address.port, ca: main.ca.cert, ...options }, () =>
      resolve(socket),
    );
    socket.once('error', reject);
  });
}

/** A RESP client over TLS; destroyed after the test. */
async function tlsClient(t: Test, address: Address, options: ConnectionOptions = {}): Promise<RawClient> {
  const socket = await tlsConnect(address, options);
  t.teardown(() => socket.destroy());
  return new RawClient(socket);
}

/** The error a connection attempt ends with (its `code`), or 'connected'. */
async function connectError(address: Address, options: ConnectionOptions): Promise<string> {
  try {
    const socket = await tlsConnect(address, options);
    socket.destroy();
    return 'connected';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** POSTs one JSON-RPC call over HTTPS; the status and the parsed answer. */
async function httpsCall(
  address: Address,
  body: unknown,
  options: { ca?: string; cert?: string; key?: string } = { ca: main.ca.cert },
): Promise<{ status: number; json: { result?: unknown; error?: { data?: { code?: string }; message?: string } } }> {
  const { status, json } = await postJson(address, body, { tls: options });
  return { status, json: json as { result?: unknown; error?: { data?: { code?: string }; message?: string } } };
}

/** Waits until a line matching `pattern` was logged (the server logs after the client sees the close). */
async function logged(h: Harness, pattern: RegExp): Promise<string | undefined> {
  for (let i = 0; i < 100; i++) {
    const line = h.log.find((entry) => pattern.test(entry));
    if (line !== undefined) return line;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

function tlsOptions(files: SetFiles, extra: Partial<NonNullable<ServerOptions['tls']>> = {}): Partial<ServerOptions> {
  return { tls: { cert: files.cert, key: files.key, ...extra }, tcpTls: true, rpcTls: true };
}

t.test('createCertificates: a CA, a server certificate for the hosts, a client certificate', async (t) => {
  const ca = new X509Certificate(main.ca.cert);
  const server = new X509Certificate(main.server.cert);
  const client = new X509Certificate(main.client.cert);
  t.ok(ca.ca, 'the CA is a CA');
  t.notOk(server.ca, 'the server certificate is not');
  t.ok(server.verify(ca.publicKey) && client.verify(ca.publicKey), 'both are signed by the CA');
  t.ok(server.checkIssued(ca) && client.checkIssued(ca));
  t.equal(server.checkHost('localhost'), 'localhost');
  t.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
  t.equal(server.checkIP('::1'), '::1');
  t.equal(server.checkHost('example.com'), undefined, 'no other host');
  t.same(server.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth');
  t.same(client.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth');
  t.ok(server.checkPrivateKey((await import('node:crypto')).createPrivateKey(main.server.key)), 'its key');
  const validFor = Date.parse(server.validTo) - Date.parse(server.validFrom);
  t.ok(Math.abs(validFor - 365 * DAY_MS) < DAY_MS, '365 days by default');
  t.ok(Date.parse(new X509Certificate(expired.server.cert).validTo) < Date.now(), 'notAfter in the past: expired');
  t.throws(() => createCertificates({ hosts: [] }), /at least one host/);
});

t.test('a TLS server without client certificates', async (t) => {
  const h = await startServer(t, tlsOptions(mainFiles));
  const tcp = tcpOf(h);

  t.test('the addresses say which listeners speak TLS', async (t) => {
    t.equal(h.server.addresses.tcp?.tls, true);
    t.equal(h.server.addresses.rpc?.tls, true);
    t.equal(typeof h.server.addresses.unix, 'string');
  });

  t.test('round trip over TLS 1.3 and 1.2, verified against the CA', async (t) => {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const c = await tlsClient(t, tcp, { maxVersion });
      const socket = c.socket as TLSSocket;
      t.equal(socket.authorized, true, `${maxVersion}: the server certificate verifies`);
      t.equal(socket.getProtocol(), maxVersion);
      t.equal(await c.command('SET', 'memory', '0', `k-${maxVersion}`, 'hello over tls'), 'OK');
      t.equal(text(await c.command('GET', 'memory', `k-${maxVersion}`)), 'hello over tls');
      // A large value crosses many TLS records.
      const big = 'x'.repeat(1024 * 1024);
      t.equal(await c.command('SET', 'memory', '0', 'big', big), 'OK');
      t.equal(text(await c.command('GET', 'memory', 'big')), big);
    }
  });

  t.test('a client that ends its side after its requests still gets every reply', async (t) => {
    const c = await tlsClient(t, tcp);
    c.write('SET hdd 0 half-closed yes\r\nGET hdd half-closed\r\n');
    c.socket.end();
    t.same((await c.next(2, 0)).map(text), ['OK', 'yes']);
    await c.closed();
    t.equal(c.closedBy, 'end');
  });

  t.test('the host name is checked: a name the certificate does not carry is refused', async (t) => {
    t.equal(await connectError(tcp, { servername: 'example.com' }), 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  t.test('a plain-text client gets one PROTOCOL error in plain text, then the close', async (t) => {
    const c = await RawClient.open(t, tcp);
    const port = c.socket.localPort;
    const reply = await c.command('PING');
    t.equal(codeOf(reply), 'PROTOCOL');
    t.match((reply as ReplyError).message, /this port speaks TLS: connect with TLS/);
    await c.closed();
    t.equal(c.closedBy, 'end', 'closed gracefully (FIN), not reset');
    t.match(await logged(h, new RegExp(`plain-text client from 127\\.0\\.0\\.1:${port}`)), /warn .*speaks TLS/);
  });

  t.test('TLS 1.1 is refused, and the failure logged with its reason', async (t) => {
    const before = h.log.length;
    const code = await connectError(tcp, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    t.equal(code, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    t.match(await logged(h, /TLS handshake with 127\.0\.0\.1:\d+ \(tcp\) failed: unsupported protocol/), /warn/);
    t.equal(h.log.slice(before).filter((line) => line.includes('handshake')).length, 1, 'one line');
  });

  t.test('the UNIX socket stays plain', async (t) => {
    const c = await RawClient.unix(t, h);
    t.equal(await c.command('PING'), 'PONG');
  });

  t.test('ioredis with tls: { ca }', async (t) => {
    const redis = new Redis({ ...tcp, tls: { ca: main.ca.cert }, lazyConnect: true, maxRetriesPerRequest: 0 });
    t.teardown(() => redis.disconnect());
    await redis.connect();
    t.equal(await redis.call('SET', 'memory', '0', 'ioredis', 'yes'), 'OK');
    t.equal(await redis.call('GET', 'memory', 'ioredis'), 'yes');
  });

  t.test('node-redis with socket: { tls: true, ca }', async (t) => {
    const client = createClient({ socket: { ...tcp, tls: true, ca: main.ca.cert, reconnectStrategy: false } });
    client.on('error', () => {});
    t.teardown(() => client.destroy());
    await client.connect();
    t.equal(await client.sendCommand(['SET', 'memory', '0', 'node-redis', 'yes']), 'OK');
    t.equal(await client.sendCommand(['GET', 'memory', 'node-redis']), 'yes');
  });

  t.test('redis-cli --tls --cacert', { skip: hasRedisCli ? false : 'redis-cli is not installed' }, async (t) => {
    const cli = ['--tls', '--cacert', mainFiles.ca, '-h', tcp.host, '-p', String(tcp.port)];
    const set = await run('redis-cli', [...cli, 'SET', 'memory', '0', 'cli', 'yes']);
    t.same([set.code, set.stdout.trim()], [0, 'OK'], set.stderr);
    const get = await run('redis-cli', [...cli, 'GET', 'memory', 'cli']);
    t.same([get.code, get.stdout.trim()], [0, 'yes'], get.stderr);
  });

  t.test('JSON-RPC over HTTPS, verified against the CA', async (t) => {
    const rpc = h.server.addresses.rpc as Address;
    const set = await httpsCall(rpc, {
      jsonrpc: '2.0',
      id: 1,
      method: 'Storage.Set',
      params: { type: 'memory', key: 'rpc', value: 'over https' },
    });
    t.same([set.status, set.json.result], [200, true]);
    const get = await httpsCall(rpc, {
      jsonrpc: '2.0',
      id: 2,
      method: 'Storage.Get',
      params: { type: 'memory', key: 'rpc' },
    });
    t.equal(get.json.result, 'over https');
    const c = await tlsClient(t, tcp);
    t.equal(text(await c.command('GET', 'memory', 'rpc')), 'over https', 'the same storage as the TCP listener');
  });

  t.test('plain HTTP to the HTTPS port is refused, and logged', async (t) => {
    const rpc = h.server.addresses.rpc as Address;
    await t.rejects(fetch(`http://${rpc.host}:${rpc.port}/`, { method: 'POST', body: '{}' }));
    t.match(await logged(h, /\(json-rpc\) failed: http request \(plain HTTP sent to the HTTPS port/), /warn/);
  });
});

t.test('authClients yes: a client needs a certificate signed by the CA', async (t) => {
  // Two CAs in one file: main's, and the expired set's (whose client certificate must then fail
  // for its date, not for its issuer).
  const cas = join(root, 'two-cas.crt');
  await writeFile(cas, main.ca.cert + expired.ca.cert);
  const h = await startServer(t, tlsOptions(mainFiles, { ca: cas }));
  const tcp = tcpOf(h);
  const withCert = { cert: main.client.cert, key: main.client.key };

  t.test('without a certificate: refused with NOAUTH, and logged', async (t) => {
    const c = await tlsClient(t, tcp);
    const [reply] = await c.next(1);
    t.equal(codeOf(reply), 'NOAUTH');
    t.match((reply as ReplyError).message, /requires a client certificate/);
    await c.closed();
    t.match(await logged(h, /\(tcp\) failed: this server requires a client certificate/), /warn/);
  });

  t.test('with its certificate: served', async (t) => {
    const c = await tlsClient(t, tcp, withCert);
    t.equal(await c.command('SET', 'memory', '0', 'k', 'v'), 'OK');
    t.equal(text(await c.command('GET', 'memory', 'k')), 'v');
  });

  t.test('a certificate from another CA, an expired one, a server certificate: refused', async (t) => {
    for (const [name, cert, key, reason] of [
      ['another CA', other.client.cert, other.client.key, /UNABLE_TO_VERIFY_LEAF_SIGNATURE \(not signed by a CA in /],
      ['expired', expired.client.cert, expired.client.key, /CERT_HAS_EXPIRED/],
      ['not for clients', main.server.cert, main.server.key, /INVALID_PURPOSE/],
    ] as const) {
      const c = await tlsClient(t, tcp, { cert, key });
      const [reply] = await c.next(1);
      t.equal(codeOf(reply), 'NOAUTH', name);
      t.match((reply as ReplyError).message, reason, name);
      await c.closed();
      t.match(await logged(h, new RegExp(`\\(tcp\\) failed: client certificate refused: ${reason.source}`)), /warn/);
    }
  });

  t.test('redis-cli --tls --cert --key', { skip: hasRedisCli ? false : 'redis-cli is not installed' }, async (t) => {
    const cli = ['--tls', '--cacert', mainFiles.ca, '-h', tcp.host, '-p', String(tcp.port)];
    const served = await run('redis-cli', [
      ...cli,
      '--cert',
      mainFiles.clientCert,
      '--key',
      mainFiles.clientKey,
      'PING',
    ]);
    t.same([served.code, served.stdout.trim()], [0, 'PONG'], served.stderr);
    const refused = await run('redis-cli', [...cli, 'PING']);
    t.match(refused.stdout + refused.stderr, /NOAUTH TLS: this server requires a client certificate/);
  });

  t.test('JSON-RPC: 401 NOAUTH without a certificate, served with one', async (t) => {
    const rpc = h.server.addresses.rpc as Address;
    const call = { jsonrpc: '2.0', id: 1, method: 'Server.Ping' };
    const refused = await httpsCall(rpc, call);
    t.same([refused.status, refused.json.error?.data?.code], [401, 'NOAUTH']);
    t.match(refused.json.error?.message, /requires a client certificate/);
    const served = await httpsCall(rpc, call, { ca: main.ca.cert, ...withCert });
    t.same([served.status, served.json.result], [200, 'PONG']);
  });
});

t.test('authClients optional: with or without a certificate, but a bad one is refused', async (t) => {
  const h = await startServer(t, tlsOptions(mainFiles, { ca: mainFiles.ca, authClients: 'optional' }));
  const tcp = tcpOf(h);
  const without = await tlsClient(t, tcp);
  t.equal(await without.command('PING'), 'PONG', 'without a certificate');
  const withCert = await tlsClient(t, tcp, { cert: main.client.cert, key: main.client.key });
  t.equal(await withCert.command('PING'), 'PONG', 'with one');
  const bad = await tlsClient(t, tcp, { cert: other.client.cert, key: other.client.key });
  const [reply] = await bad.next(1);
  t.equal(codeOf(reply), 'NOAUTH', 'one from another CA');
  t.match((reply as ReplyError).message, /client certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  const rpc = h.server.addresses.rpc as Address;
  const badRpc = await httpsCall(
    rpc,
    { jsonrpc: '2.0', id: 1, method: 'Server.Ping' },
    { ca: main.ca.cert, cert: other.client.cert, key: other.client.key },
  );
  t.same([badRpc.status, badRpc.json.error?.data?.code], [401, 'NOAUTH']);
  const rpcWithout = await httpsCall(rpc, { jsonrpc: '2.0', id: 1, method: 'Server.Ping' });
  t.equal(rpcWithout.json.result, 'PONG');
});

t.test('an expired server certificate: verifying clients fail, the server serves on', async (t) => {
  const h = await startServer(t, tlsOptions(expiredFiles));
  t.match(await logged(h, /the TLS certificate in .* expired on /), /warn/, 'start-up says it');
  const tcp = tcpOf(h);
  t.equal(await connectError(tcp, { ca: expired.ca.cert }), 'CERT_HAS_EXPIRED');
  t.match(
    await logged(h, /TLS handshake with 127\.0\.0\.1:\d+ \(tcp\) failed: the client closed the connection/),
    /warn .*does it trust the server certificate\?/,
    'the server logs the client that hung up, with its address',
  );
  const c = await tlsClient(t, tcp, { rejectUnauthorized: false });
  t.equal(await c.command('PING'), 'PONG', 'a client that does not verify is still served');
  t.equal(await connectError(tcp, { ca: expired.ca.cert }), 'CERT_HAS_EXPIRED', 'and the next verifying one fails too');
});

t.test('reload: new connections get the new certificate, open ones keep going', async (t) => {
  const files = await writeSet('reload', main);
  const h = await startServer(t, tlsOptions(files));
  const tcp = tcpOf(h);
  const rpc = h.server.addresses.rpc as Address;
  const old = await tlsClient(t, tcp);
  t.equal(await old.command('SET', 'memory', '0', 'k', 'before'), 'OK');

  await writeSet('reload', other);
  await h.server.reload();
  t.notOk(
    h.log.some((line) => line.includes('TLS reload failed')),
    'no failure logged',
  );
  const fresh = await tlsClient(t, tcp, { ca: other.ca.cert });
  t.equal(
    (fresh.socket as TLSSocket).getPeerX509Certificate()?.fingerprint256,
    new X509Certificate(other.server.cert).fingerprint256,
    'the new certificate',
  );
  t.equal(text(await fresh.command('GET', 'memory', 'k')), 'before');
  t.equal(await connectError(tcp, {}), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'the old CA no longer verifies it');
  t.equal(await old.command('SET', 'memory', '0', 'k', 'after'), 'OK', 'the open connection still works');
  const overHttps = await httpsCall(rpc, { jsonrpc: '2.0', id: 1, method: 'Server.Ping' }, { ca: other.ca.cert });
  t.equal(overHttps.json.result, 'PONG', 'HTTPS has it too');

  await writeFile(files.key, 'not a key');
  await h.server.reload();
  t.match(await logged(h, /TLS reload failed, the certificate in use stays: the TLS key file .* is invalid/), /error/);
  const still = await tlsClient(t, tcp, { ca: other.ca.cert });
  t.equal(await still.command('PING'), 'PONG', 'an invalid file changes nothing');
});

t.test('max clients and protected mode apply over TLS as over plain TCP', async (t) => {
  t.test('max clients: the one past the limit reads MAX_CLIENTS over TLS', async (t) => {
    const h = await startServer(t, { ...tlsOptions(mainFiles), maxClients: 1 });
    const first = await tlsClient(t, tcpOf(h));
    t.equal(await first.command('PING'), 'PONG');
    const second = await tlsClient(t, tcpOf(h));
    const [reply] = await second.next(1);
    t.equal(codeOf(reply), 'MAX_CLIENTS');
    await second.closed();
    const overHttps = await httpsCall(h.server.addresses.rpc as Address, {
      jsonrpc: '2.0',
      id: 1,
      method: 'Server.Ping',
    });
    t.same([overHttps.status, overHttps.json.error?.data?.code], [503, 'MAX_CLIENTS'], 'over HTTPS too');
    t.equal(await first.command('PING'), 'PONG', 'the first is still served');
  });

  t.test('protected mode: a remote client reads DENIED over TLS', async (t) => {
    const remote = nonLoopbackIPv4();
    if (remote === undefined) {
      t.comment('no non-loopback IPv4 address on this machine: nothing to test');
      return;
    }
    const h = await startServer(t, { ...tlsOptions(mainFiles), tcp: { host: '0.0.0.0', port: 0 } });
    const { port } = tcpOf(h);
    // The certificate names localhost only: the chain is verified, the name is not.
    const c = await tlsClient(t, { host: remote, port }, { checkServerIdentity: () => undefined });
    const [reply] = await c.next(1);
    t.equal(codeOf(reply), 'DENIED');
  });
});

t.test('the server refuses to start with TLS it cannot use, naming what is wrong', async (t) => {
  const garbage = join(root, 'garbage.pem');
  await writeFile(garbage, 'not a certificate\n');
  const cases: Array<[string, Partial<ServerOptions>, RegExp]> = [
    ['tcpTls without tls', { tcpTls: true }, /the tcp listener should speak TLS, but no certificate and key are given/],
    [
      'rpcTls without tls',
      { tcpTls: true, rpcTls: true },
      /the tcp and json-rpc listeners should speak TLS, but no certificate/,
    ],
    [
      'a missing certificate file',
      tlsOptions({ ...mainFiles, cert: join(root, 'nope.crt') }),
      /cannot read the TLS certificate file .*nope\.crt: no such file/,
    ],
    [
      'a certificate file that is not PEM',
      tlsOptions({ ...mainFiles, cert: garbage }),
      /TLS certificate file .*garbage\.pem is invalid: not a PEM certificate/,
    ],
    [
      'a key that is not PEM',
      tlsOptions({ ...mainFiles, key: garbage }),
      /TLS key file .*garbage\.pem is invalid: not an unencrypted PEM private key/,
    ],
    [
      "another certificate's key",
      tlsOptions({ ...mainFiles, key: mainFiles.clientKey }),
      /TLS key file .*client\.key is invalid: it is not the private key of the certificate in .*server\.crt/,
    ],
    ['a CA file that is not PEM', tlsOptions(mainFiles, { ca: garbage }), /TLS CA file .*garbage\.pem is invalid/],
    [
      'client certificates without a CA',
      tlsOptions(mainFiles, { authClients: 'yes' }),
      /client certificates \(authClients yes\) are checked against a CA, but none is given/,
    ],
  ];
  for (const [name, options, message] of cases) {
    await t.rejects(startServer(t, options), { code: 'LISTEN_FAILED', message }, name);
  }
});
