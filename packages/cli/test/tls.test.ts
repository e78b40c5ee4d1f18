// `hati tls self-signed`, and a spawned `hati start --tcp-tls --rpc-tls` with the files it wrote:
// hati client --tls and redis-cli --tls talk to it with the CA and a client certificate, JSON-RPC
// answers over HTTPS, SIGHUP loads new certificates.
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type PostAnswer, postJson, run } from '@hati/test-helpers';
import t from 'tap';
import { type Address, Hati, logged, runHati, tempDir } from './common/hati.js';
import { inProcess } from './common/in-process.js';

const FILES = ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'client.crt', 'client.key'];

/** One JSON-RPC call over HTTPS, trusting `ca`, with a client certificate and Basic credentials. */
function httpsCall(
  address: Address,
  files: { ca: string; cert: string; key: string },
  password: string,
  method: string,
  params: unknown,
): Promise<PostAnswer> {
  const authorization = `Basic ${Buffer.from(`default:${password}`).toString('base64')}`;
  return postJson(address, { jsonrpc: '2.0', id: 1, method, params }, { tls: files, headers: { authorization } });
}

const dir = await tempDir(t);

t.test('hati tls self-signed: six files, private keys 0600, and the flags that use them', async (t) => {
  const out = join(dir, 'dev');
  const made = await runHati(['tls', 'self-signed', '--out', out]);
  t.equal(made.code, 0, made.stderr);
  t.equal(made.stderr, '');
  const modes = await Promise.all(FILES.map(async (name) => (await stat(join(out, name))).mode & 0o777));
  t.same(modes, [0o644, 0o600, 0o644, 0o600, 0o644, 0o600]);
  const ca = new X509Certificate(await readFile(join(out, 'ca.crt')));
  const server = new X509Certificate(await readFile(join(out, 'server.crt')));
  const client = new X509Certificate(await readFile(join(out, 'client.crt')));
  t.ok(ca.ca, 'a CA');
  t.ok(server.verify(ca.publicKey) && client.verify(ca.publicKey), 'both signed by it');
  t.equal(server.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  t.equal(
    made.stdout,
    [
      `hati: wrote ca.crt, ca.key, server.crt, server.key, client.crt, client.key to ${out}`,
      `hati: the server certificate is for localhost, 127.0.0.1, ::1, valid until ${server.validTo}; for development only`,
      'Start a server with them (clients must then show client.crt; --tls-auth-clients no or optional relaxes that):',
      `  hati start --tcp-tls --tls-cert ${out}/server.crt --tls-key ${out}/server.key --tls-ca ${out}/ca.crt`,
      'Connect:',
      `  hati client --tls --tls-ca ${out}/ca.crt --tls-cert ${out}/client.crt --tls-key ${out}/client.key`,
      `  redis-cli -p 4242 --tls --cacert ${out}/ca.crt --cert ${out}/client.crt --key ${out}/client.key`,
      '',
    ].join('\n'),
  );
  const year = (Date.parse(server.validTo) - Date.now()) / 86_400_000;
  t.ok(year > 364 && year < 366, `valid for a year by default (${year} days)`);
});

t.test('hati tls self-signed refuses to overwrite unless --force; --host and --days', async (t) => {
  const out = join(dir, 'again');
  t.equal((await inProcess(['tls', 'self-signed', '--out', out])).code, 0);
  const before = await readFile(join(out, 'ca.key'), 'utf8');
  t.same(await inProcess(['tls', 'self-signed', '--out', out]), {
    code: 1,
    stdout: '',
    stderr: `hati: ${out} already has ca.crt, ca.key, server.crt, server.key, client.crt, client.key; --force overwrites them\n`,
  });
  t.equal(await readFile(join(out, 'ca.key'), 'utf8'), before, 'nothing overwritten');
  const forced = await inProcess([
    'tls',
    'self-signed',
    '--out',
    out,
    '--force',
    '--host',
    'hati.example',
    '--host',
    '10.1.2.3',
    '--days',
    '2',
  ]);
  t.equal(forced.code, 0, forced.stderr);
  t.not(await readFile(join(out, 'ca.key'), 'utf8'), before, 'a new CA');
  t.equal((await stat(join(out, 'ca.key'))).mode & 0o777, 0o600);
  const server = new X509Certificate(await readFile(join(out, 'server.crt')));
  t.equal(server.subjectAltName, 'DNS:hati.example, IP Address:10.1.2.3');
  const days = (Date.parse(server.validTo) - Date.now()) / 86_400_000;
  t.ok(days > 1.9 && days < 2.1, `--days 2 (${days})`);
  for (const [argv, message] of [
    [['tls', 'self-signed'], 'Missing required argument: out'],
    [['tls', 'self-signed', '--out', out, '--days', '0'], "--days must be an integer from 1 to 36500, got '0'"],
    [['tls', 'self-signed', '--out', out, '--host', ''], '--host must not be empty'],
    [['tls'], 'name what to make: hati tls self-signed --out <dir>'],
  ] as Array<[string[], string]>) {
    t.same(
      await inProcess(argv),
      { code: 2, stdout: '', stderr: `hati: ${message}\nRun 'hati --help' for usage.\n` },
      argv.join(' '),
    );
  }
});

t.test('a TLS server: hati client --tls and redis-cli --tls with the CA and a client certificate', async (t) => {
  const certs = join(dir, 'dev');
  const file = (name: string) => join(certs, name);
  const password = 'tls pw 3';
  const hati = new Hati(
    t,
    [
      'start',
      '--tcp',
      '--tcp-host',
      '127.0.0.1',
      '--tcp-port',
      '0',
      '--rpc',
      '--rpc-host',
      '127.0.0.1',
      '--rpc-port',
      '0',
      '--data-dir',
      join(dir, 'data'),
      '--shards',
      '1',
      '--tcp-tls',
      '--rpc-tls',
      '--tls-cert',
      file('server.crt'),
      '--tls-key',
      file('server.key'),
      '--tls-ca',
      file('ca.crt'),
    ],
    { HATI_PASSWORD: password },
  );
  const [address, rpc] = await Promise.all([hati.tcp(), hati.rpc()]);
  const port = String(address.port);
  t.ok(
    hati.messages.includes(
      `tls certificate ${file('server.crt')}; client certificates required (CA ${file('ca.crt')})`,
    ),
    'the tls line',
  );
  t.ok(hati.messages.includes(`tcp (tls) listening on 127.0.0.1:${port}`), 'the tcp (tls) line');
  t.ok(hati.messages.includes(`json-rpc listening on https://127.0.0.1:${rpc.port}/`), 'the https line');

  const tls = ['--tls', '--tls-ca', file('ca.crt'), '--tls-cert', file('client.crt'), '--tls-key', file('client.key')];
  const env = { HATI_PASSWORD: password };
  t.same(await runHati(['client', '-p', port, ...tls, 'SET', 'memory', '0', 'k', 'over tls'], { env }), {
    code: 0,
    stdout: 'OK\n',
    stderr: '',
  });
  const [redisCli, cacert, noClientCert, noCa, insecure, plain] = await Promise.all([
    run('redis-cli', [
      '-p',
      port,
      '--tls',
      '--cacert',
      file('ca.crt'),
      '--cert',
      file('client.crt'),
      '--key',
      file('client.key'),
      '-a',
      password,
      '--no-auth-warning',
      'GET',
      'memory',
      'k',
    ]),
    runHati(
      [
        'client',
        '-p',
        port,
        '--tls',
        '--cacert',
        file('ca.crt'),
        '--cert',
        file('client.crt'),
        '--key',
        file('client.key'),
        'GET',
        'memory',
        'k',
      ],
      { env },
    ),
    runHati(['client', '-p', port, '--tls', '--tls-ca', file('ca.crt'), 'GET', 'memory', 'k'], { env }),
    runHati(
      ['client', '-p', port, '--tls', '--tls-cert', file('client.crt'), '--tls-key', file('client.key'), 'PING'],
      {
        env,
      },
    ),
    runHati(
      [
        'client',
        '-p',
        port,
        '--tls',
        '--insecure',
        '--tls-cert',
        file('client.crt'),
        '--tls-key',
        file('client.key'),
        'GET',
        'memory',
        'k',
      ],
      { env },
    ),
    runHati(['client', '-p', port, 'PING'], { env }),
  ]);
  t.same(redisCli, { code: 0, stdout: 'over tls\n', stderr: '' }, 'redis-cli --tls --cacert --cert --key');
  t.same(cacert, { code: 0, stdout: 'over tls\n', stderr: '' }, "redis-cli's spellings: --cacert, --cert, --key");
  t.match(
    noClientCert,
    { code: 1, stdout: '', stderr: /^\(error\) NOAUTH [^\n]*TLS: [^\n]*client certificate[^\n]*\n$/ },
    'no client certificate: refused, and the server says why',
  );
  t.match(
    noCa,
    {
      code: 1,
      stdout: '',
      stderr: new RegExp(
        `^hati: cannot connect to 127\\.0\\.0\\.1:${port}: TLS failed: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY) \\(.*--tls-ca\\)\n$`,
      ),
    },
    "the server's CA unknown: refused, and which flag to give",
  );
  t.same(insecure, { code: 0, stdout: 'over tls\n', stderr: '' }, '--insecure skips the check');
  t.match(
    plain,
    { code: 1, stdout: '', stderr: /^\(error\) PROTOCOL [^\n]*TLS[^\n]*\n$/ },
    'plain text to a TLS port: refused, and the server says why',
  );

  const rpcFiles = {
    ca: await readFile(file('ca.crt'), 'utf8'),
    cert: await readFile(file('client.crt'), 'utf8'),
    key: await readFile(file('client.key'), 'utf8'),
  };
  t.match(await httpsCall(rpc, rpcFiles, password, 'Storage.Get', { type: 'memory', key: 'k' }), {
    status: 200,
    json: { result: 'over tls' },
  });

  // New certificates in the same files: SIGHUP loads them; a client that trusts only the old CA is refused.
  const oldCa = join(dir, 'old-ca.crt');
  await run('cp', [file('ca.crt'), oldCa]);
  t.equal((await runHati(['tls', 'self-signed', '--out', certs, '--force'])).code, 0);
  t.equal(await hati.hangup(), 'SIGHUP: reloaded certificates');
  t.same(await runHati(['client', '-p', port, ...tls, 'GET', 'memory', 'k'], { env }), {
    code: 0,
    stdout: 'over tls\n',
    stderr: '',
  });
  const stale = await runHati(
    [
      'client',
      '-p',
      port,
      '--tls',
      '--tls-ca',
      oldCa,
      '--tls-cert',
      file('client.crt'),
      '--tls-key',
      file('client.key'),
      'PING',
    ],
    { env },
  );
  t.match(stale, { code: 1, stderr: /TLS failed/ }, 'the old CA no longer checks');

  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
  t.notMatch(hati.stdout + hati.stderr, password, 'the password is never printed');
});

t.test('TLS flags that do not fit: a usage error', async (t) => {
  const base = ['start', '--tcp-port', '0', '--data-dir', join(dir, 'never')];
  const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
    [
      [...base, '--tcp-tls'],
      {},
      "--tcp-tls needs --tls-cert and --tls-key (PEM files of the server's certificate and key)",
    ],
    [
      [...base, '--tcp-tls', '--tls-cert', 'c.pem'],
      {},
      "--tcp-tls needs --tls-cert and --tls-key (PEM files of the server's certificate and key)",
    ],
    [
      [...base, '--rpc', '--rpc-tls'],
      {},
      "--rpc-tls needs --tls-cert and --tls-key (PEM files of the server's certificate and key)",
    ],
    [
      [...base, '--tls-cert', 'c.pem', '--tls-key', 'k.pem'],
      {},
      '--tls-cert, --tls-key serve TLS listeners: add --tcp-tls or --rpc-tls',
    ],
    [base, { HATI_TLS_CA: 'ca.pem' }, '--tls-ca serves TLS listeners: add --tcp-tls or --rpc-tls'],
    [
      [...base, '--tcp-tls', '--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--tls-auth-clients', 'yes'],
      {},
      '--tls-auth-clients yes needs --tls-ca (the CA that signs client certificates)',
    ],
    [
      [...base, '--tcp-tls', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'],
      { HATI_TLS_AUTH_CLIENTS: 'optional' },
      '--tls-auth-clients optional needs --tls-ca (the CA that signs client certificates)',
    ],
    [
      [...base, '--rpc-tls', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'],
      {},
      '--rpc-tls needs the JSON-RPC listener: add --rpc',
    ],
    [
      [...base, '--rpc', '--tcp-tls', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'],
      {},
      '--tcp-tls needs the TCP listener: add --tcp',
    ],
    [['client', '--tls-ca', 'ca.pem', 'PING'], {}, '--tls-ca needs --tls'],
    [['client', '--insecure', 'PING'], {}, '--insecure needs --tls'],
    [
      ['client', '--tls', '--tls-cert', 'c.pem', 'PING'],
      {},
      '--tls-cert and --tls-key go together (a client certificate and its key)',
    ],
    [['client', '--tls', '-s', '/tmp/x.sock', 'PING'], {}, '--tls is for TCP; a UNIX socket (--unix) is not encrypted'],
  ];
  for (const [argv, env, message] of cases) {
    t.same(
      await inProcess(argv, env),
      { code: 2, stdout: '', stderr: `hati: ${message}\nRun 'hati --help' for usage.\n` },
      `${argv.join(' ')} ${JSON.stringify(env)}`,
    );
  }
  const missing = join(dir, 'missing.pem');
  const unreadable = await inProcess([...base, '--tcp-tls', '--tls-cert', missing, '--tls-key', missing]);
  t.same(
    { code: unreadable.code, stdout: unreadable.stdout, errors: logged(unreadable.stderr, 'error') },
    { code: 1, stdout: '', errors: [`cannot read --tls-cert ${missing}: no such file (ENOENT)`] },
    'a file that is not there is named with its flag before the store opens',
  );
  t.same(await inProcess(['client', '-p', '1', '--tls', '--tls-ca', missing, 'PING']), {
    code: 1,
    stdout: '',
    stderr: `hati: cannot read --tls-ca ${missing}: ENOENT\n`,
  });
});
