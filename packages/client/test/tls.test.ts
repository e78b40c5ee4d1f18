// TLS as a user of @hati/client meets it, against real servers in this process (certificates
// from createCertificates): a CA, a host name, a client certificate, and the failures a
// certificate brings (TLS_FAILED, with Node's error and its code in `cause`), over TCP and HTTPS.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CertificateSet, createCertificates, type TlsFiles } from '@hati/server';
import { tempDir } from '@hati/test-helpers';
import t, { type Test } from 'tap';
import { createClient, createRpcClient, type HatiClient, type HatiError } from '../src/index.js';
import { BOUND, errorOf, startServer } from './common/harness.js';

const PASSWORD = 'tls-Secret-pw';
const DAY = 24 * 60 * 60 * 1000;

/** What a client reports, in order: errors by code, reconnecting, connect, close. */
function eventsOf(client: HatiClient): string[] {
  const events: string[] = [];
  client.on('error', (err) => events.push(`error ${(err as HatiError).code}`));
  client.on('reconnecting', () => events.push('reconnecting'));
  client.on('connect', () => events.push('connect'));
  client.on('close', () => events.push('close'));
  return events;
}

/** Writes a set's PEM files and returns the server's `tls` option (with the CA when asked). */
async function tlsFiles(t: Test, set: CertificateSet, authClients?: TlsFiles['authClients']): Promise<TlsFiles> {
  const dir = await tempDir(t, 'hati-client-tls-');
  const files = { cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem'), ca: join(dir, 'ca.pem') };
  await writeFile(files.cert, set.server.cert);
  await writeFile(files.key, set.server.key, { mode: 0o600 });
  await writeFile(files.ca, set.ca.cert);
  if (authClients === undefined) return { cert: files.cert, key: files.key };
  return { ...files, authClients };
}

/** A server whose TCP listener speaks TLS and whose JSON-RPC is HTTPS, with a password. */
async function tlsServer(t: Test, set: CertificateSet, authClients?: TlsFiles['authClients']) {
  const tls = await tlsFiles(t, set, authClients);
  const { server } = await startServer(t, 0, { tls, tcpTls: true, rpcTls: true, password: PASSWORD });
  return { port: server.addresses.tcp?.port as number, rpcPort: server.addresses.rpc?.port as number };
}

const good = createCertificates();
const other = createCertificates();
const { port, rpcPort } = await tlsServer(t, good);

t.test('TLS with the CA: commands run, by IP address and by host name', async (t) => {
  for (const host of ['127.0.0.1', 'localhost']) {
    const client = createClient({ host, port, password: PASSWORD, tls: { ca: good.ca.cert } });
    t.teardown(() => client.close());
    const events = eventsOf(client);
    t.equal(await client.set('memory', `k-${host}`, host), undefined, `${host}: SET`);
    t.equal(await client.get('memory', `k-${host}`), host, `${host}: GET`);
    t.equal(String(await client.sendCommand(['ACL', 'WHOAMI'])), 'default', `${host}: authenticated over TLS`);
    t.same(events, ['connect'], `${host}: connected once, no error`);
  }
  const named = createClient({ port, password: PASSWORD, tls: { ca: good.ca.cert, servername: 'localhost' } });
  t.teardown(() => named.close());
  t.equal(await named.ping(), 'PONG', 'servername: the name the certificate holds');
  const unchecked = createClient({ port, password: PASSWORD, tls: { rejectUnauthorized: false } });
  t.teardown(() => unchecked.close());
  t.equal(await unchecked.ping(), 'PONG', 'rejectUnauthorized: false takes any certificate');
});

t.test('a certificate the client cannot verify: TLS_FAILED with Node’s code in cause; the client closes', async (t) => {
  const cases = [
    ['Node’s root CAs only', true, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['another CA', { ca: other.ca.cert }, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['a name the certificate lacks', { ca: good.ca.cert, servername: 'hati.example' }, 'ERR_TLS_CERT_ALTNAME_INVALID'],
  ] as const;
  for (const [what, tls, nodeCode] of cases) {
    const client = createClient({ port, password: PASSWORD, tls, reconnect: { initialDelay: 1, maxDelay: 1 } });
    t.teardown(() => client.close());
    const events = eventsOf(client);
    const waiting = [client.get('memory', 'k', BOUND), client.ping(undefined, BOUND)];
    for (const err of await Promise.all(waiting.map(errorOf))) {
      t.match(err, { name: 'HatiError', code: 'TLS_FAILED', transient: false }, `${what}: a waiting call`);
      t.match(err.cause, { code: nodeCode }, `${what}: cause.code ${nodeCode}`);
    }
    t.equal(client.state, 'closed', `${what}: closed`);
    t.same(events, ['error TLS_FAILED', 'close'], `${what}: no connect, no reconnecting`);
    const later = await errorOf(client.ping());
    t.match(later, { code: 'CONNECTION_CLOSED', cause: { code: 'TLS_FAILED', cause: { code: nodeCode } } });
  }
});

t.test('an expired server certificate: CERT_HAS_EXPIRED, over TCP and HTTPS', async (t) => {
  const expired = createCertificates({
    notBefore: new Date(Date.now() - 3 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  const server = await tlsServer(t, expired);
  const client = createClient({ port: server.port, password: PASSWORD, tls: { ca: expired.ca.cert } });
  t.teardown(() => client.close());
  const err = await errorOf(client.ping(undefined, BOUND));
  t.match(err, { code: 'TLS_FAILED', cause: { code: 'CERT_HAS_EXPIRED' } }, 'TCP');
  t.match(err.message, /certificate has expired/, 'Node’s message in the client’s');
  const rpc = createRpcClient({
    url: `https://127.0.0.1:${server.rpcPort}/`,
    password: PASSWORD,
    tls: { ca: expired.ca.cert },
  });
  t.match(
    await errorOf(rpc.ping()),
    { code: 'TLS_FAILED', transient: false, cause: { code: 'CERT_HAS_EXPIRED' } },
    'HTTPS',
  );
});

t.test('a TLS client against a plain-text server: TLS_FAILED, not a hang', async (t) => {
  const { server } = await startServer(t);
  const client = createClient({ port: server.addresses.tcp?.port as number, tls: { ca: good.ca.cert } });
  t.teardown(() => client.close());
  const err = await errorOf(client.ping(undefined, BOUND));
  t.match(err, { code: 'TLS_FAILED', cause: { code: /^ERR_SSL_/ } }, `cause.code ${(err.cause as HatiError).code}`);
  t.equal(client.state, 'closed');
});

t.test('HTTPS JSON-RPC with the CA; without it TLS_FAILED', async (t) => {
  for (const host of ['127.0.0.1', 'localhost']) {
    const rpc = createRpcClient({ url: `https://${host}:${rpcPort}/`, password: PASSWORD, tls: { ca: good.ca.cert } });
    t.equal(await rpc.set('hdd', 'rpc', host), undefined, `${host}: SET`);
    t.equal(await rpc.get('hdd', 'rpc'), host, `${host}: GET`);
    t.same(await rpc.batch((b) => [b.has('hdd', 'rpc'), b.count('hdd')]), [true, 1], `${host}: a batch`);
  }
  const unverified = createRpcClient({ url: `https://127.0.0.1:${rpcPort}/`, password: PASSWORD });
  const err = await errorOf(unverified.ping());
  t.match(err, { name: 'HatiError', code: 'TLS_FAILED', transient: false }, 'Node’s root CAs only');
  t.match(err.cause, { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'cause.code');
  const wrong = createRpcClient({
    url: `https://127.0.0.1:${rpcPort}/`,
    password: PASSWORD,
    tls: { ca: other.ca.cert },
  });
  t.match(
    await errorOf(wrong.ping()),
    { code: 'TLS_FAILED', cause: { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' } },
    'another CA',
  );
  const plain = createRpcClient({ url: `http://127.0.0.1:${rpcPort}/`, password: PASSWORD });
  t.match(await errorOf(plain.ping()), { code: 'HTTP_ERROR', transient: true }, 'http: against HTTPS');
});

t.test(
  'client certificates (authClients yes): with one the commands run; without, the refusal closes the client',
  async (t) => {
    const server = await tlsServer(t, good, 'yes');
    const withCert = createClient({
      port: server.port,
      password: PASSWORD,
      tls: { ca: good.ca.cert, cert: good.client.cert, key: good.client.key },
    });
    t.teardown(() => withCert.close());
    t.equal(await withCert.set('memory', 'mtls', 'yes'), undefined, 'SET');
    t.equal(await withCert.get('memory', 'mtls'), 'yes', 'GET');
    const rpc = createRpcClient({
      url: `https://localhost:${server.rpcPort}/`,
      password: PASSWORD,
      tls: { ca: good.ca.cert, cert: good.client.cert, key: good.client.key },
    });
    t.equal(await rpc.get('memory', 'mtls'), 'yes', 'HTTPS with the client certificate');

    // The server finishes the handshake and then says why it refuses (`-NOAUTH TLS: ...`, as the
    // answer to AUTH), so the client reports the server's reason rather than an OpenSSL alert.
    for (const [what, tls, reason] of [
      ['no client certificate', { ca: good.ca.cert }, /requires a client certificate/],
      ['one from another CA', { ca: good.ca.cert, cert: other.client.cert, key: other.client.key }, /refused/],
    ] as const) {
      // With a password the refusal answers AUTH; without one (certificates alone), HELLO. Either
      // way the server hangs up, and the client closes rather than reconnect to the same refusal.
      for (const password of [PASSWORD, undefined]) {
        const label = `${what}, ${password === undefined ? 'no password' : 'a password'}`;
        const client = createClient({
          port: server.port,
          tls,
          reconnect: { initialDelay: 1 },
          ...(password && { password }),
        });
        t.teardown(() => client.close());
        const events = eventsOf(client);
        const err = await errorOf(client.get('memory', 'mtls', BOUND));
        t.match(err, { name: 'HatiError', code: 'NOAUTH', transient: false, message: reason }, `${label}: the call`);
        t.equal(client.state, 'closed', `${label}: the client closed`);
        t.same(events, ['connect', 'error NOAUTH', 'close'], `${label}: not retried`);
      }
      const https = createRpcClient({ url: `https://localhost:${server.rpcPort}/`, password: PASSWORD, tls });
      t.match(await errorOf(https.ping()), { code: 'NOAUTH', message: reason }, `${what}: HTTPS`);
    }
  },
);
