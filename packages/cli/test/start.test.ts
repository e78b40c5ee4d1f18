// `hati start` as a user runs it: the real binary, its printed lines, its listeners and its
// exit codes.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeCommand } from '@hati/protocol';
import t, { type Test } from 'tap';
import { BIN, Hati, RawClient, rpcCall, tempDir, text } from './common/hati.js';

const LOCAL = ['--tcp-host', '127.0.0.1', '--tcp-port', '0'];
const NO_LISTENER = 'no listener named (--tcp, --rpc, --unix): starting the TCP listener';
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** The first line of every run: the version banner. */
function banner(hati: Hati): string {
  return `hati ${version} (node ${process.versions.node}, pid ${hati.pid})`;
}

/** Listens on a free port, so that hati cannot. */
async function occupy(t: Test): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

t.test('no listener flag: says so and serves TCP', async (t) => {
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, [...LOCAL, '--data-dir', join(dir, 'data')]);
  const address = await hati.tcp();
  t.equal(address.host, '127.0.0.1');
  t.not(address.port, 0);
  t.same(hati.messages, [
    banner(hati),
    NO_LISTENER,
    `data in ${join(dir, 'data')} (shards: memory 8, hdd 1; hdd durability everysec, ${availableParallelism()} disk threads)`,
    `tcp listening on 127.0.0.1:${address.port}`,
  ]);
  t.same(new Set(hati.log.map((line) => line.level)), new Set(['info']), 'every start-up line is at level info');
  const client = await RawClient.open(t, address);
  t.equal(await client.command('PING'), 'PONG');
  t.equal(await client.command('SET', 'hdd', '0', 'greeting', 'hello world'), 'OK');
  t.equal(text(await client.command('GET', 'hdd', 'greeting')), 'hello world');
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
  t.same(hati.messages.slice(-2), ['SIGTERM: shutting down', 'stopped']);
  t.equal(hati.stdout, '', 'stdout stays empty: every line is a log line on stderr');
});

t.test('--tcp, --rpc and --unix all serve the same storage', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'hati.sock');
  const hati = Hati.spawn(t, [
    '--tcp',
    ...LOCAL,
    '--rpc',
    '--rpc-host',
    '127.0.0.1',
    '--rpc-port',
    '0',
    '--unix',
    sock,
    '--data-dir',
    join(dir, 'data'),
    '--shards',
    '2',
  ]);
  const [tcpAddress, rpcAddress, unixPath] = await Promise.all([hati.tcp(), hati.rpc(), hati.unix()]);
  t.equal(unixPath, sock);
  t.notMatch(hati.stderr, /no listener named/);
  t.match(
    hati.messages.join('\n'),
    /^data in .* \(shards: memory 2, hdd 2; hdd durability everysec, \d+ disk threads\)$/m,
  );

  const tcp = await RawClient.open(t, tcpAddress);
  const unix = await RawClient.open(t, unixPath);
  t.equal(await tcp.command('SET', 'hdd', '0', 'from-tcp', 'tcp value'), 'OK');
  t.equal(await unix.command('SET', 'memory', '0', 'from-unix', 'unix value'), 'OK');
  t.same(await rpcCall(rpcAddress, 'Storage.Set', { type: 'hdd', key: 'from-rpc', value: 'rpc value' }), {
    status: 200,
    body: { jsonrpc: '2.0', id: 1, result: true },
  });

  // Each write is read back over the two other listeners.
  t.equal(text(await unix.command('GET', 'hdd', 'from-tcp')), 'tcp value');
  t.equal((await rpcCall(rpcAddress, 'Storage.Get', { type: 'hdd', key: 'from-tcp' })).body.result, 'tcp value');
  t.equal(text(await tcp.command('GET', 'memory', 'from-unix')), 'unix value');
  t.equal((await rpcCall(rpcAddress, 'Storage.Get', { type: 'memory', key: 'from-unix' })).body.result, 'unix value');
  t.equal(text(await tcp.command('GET', 'hdd', 'from-rpc')), 'rpc value');
  t.equal(text(await unix.command('GET', 'hdd', 'from-rpc')), 'rpc value');

  const stats = JSON.parse(text(await tcp.command('STATS')) as string);
  t.equal(stats.connections.tcp.current, 1);
  t.equal(stats.connections.unix.current, 1);
  t.equal(stats.storage.hdd.keys, 2);
  t.equal(stats.storage.hdd.shards.length, 2);
  t.equal(stats.storage.memory.keys, 1);

  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
  t.equal(existsSync(sock), false, 'the UNIX socket file is removed on shutdown');

  // Started again without --shards, the hdd store keeps the count it was written with: no rebuild.
  const again = Hati.spawn(t, [...LOCAL, '--data-dir', join(dir, 'data')]);
  const client = await RawClient.open(t, await again.tcp());
  t.match(
    again.messages.join('\n'),
    /^data in .* \(shards: memory 8, hdd 2; hdd durability everysec, \d+ disk threads\)$/m,
  );
  const after = JSON.parse(text(await client.command('STATS')) as string);
  t.equal(after.storage.hdd.shards.length, 2, 'the hdd store keeps its 2 shards');
  t.equal(after.storage.memory.shards.length, 8, 'the memory store takes the default');
  t.equal(text(await client.command('GET', 'hdd', 'from-tcp')), 'tcp value');
  t.equal(after.storage.hdd.keys, 2);
  again.child.kill('SIGTERM');
  t.same(await again.waitExit(), { code: 0, signal: null });
});

t.test('HATI_* environment variables take effect', async (t) => {
  const dir = await tempDir(t);
  const dataDir = join(dir, 'env-data');
  const hati = new Hati(t, ['start'], {
    HATI_TCP: 'true',
    HATI_TCP_HOST: '127.0.0.1',
    HATI_TCP_PORT: '0',
    HATI_RPC: 'true',
    HATI_RPC_HOST: '127.0.0.1',
    HATI_RPC_PORT: '0',
    HATI_DATA_DIR: dataDir,
    HATI_HDD_DURABILITY: 'always',
    HATI_SHARDS: '4',
    HATI_CPU_NUM: '3',
    HATI_CONSOLE: 'no',
  });
  const [tcpAddress, rpcAddress] = await Promise.all([hati.tcp(), hati.rpc()]);
  const client = await RawClient.open(t, tcpAddress);
  // The start-up lines are written at once, before the server answers a command.
  t.equal(await client.command('PING'), 'PONG');
  t.same(hati.messages, [
    banner(hati),
    `data in ${dataDir} (shards: memory 4, hdd 4; hdd durability always, 3 disk threads)`,
    `tcp listening on 127.0.0.1:${tcpAddress.port}`,
    `json-rpc listening on http://127.0.0.1:${rpcAddress.port}/`,
  ]);
  const page = await fetch(`http://127.0.0.1:${rpcAddress.port}/`);
  t.not(page.status, 200, 'HATI_CONSOLE=no: no console at /');
  t.notMatch(page.headers.get('content-type') ?? '', /html/);
  t.not(tcpAddress.port, 4242);
  t.not(rpcAddress.port, 6767);
  const stats = JSON.parse(text(await client.command('STATS')) as string);
  t.equal(stats.storage.hdd.durability, 'always');
  t.equal(stats.storage.hdd.shards.length, 4);
  const rpcStats = (await rpcCall(rpcAddress, 'Server.Stats')).body.result as typeof stats;
  t.equal(rpcStats.storage.hdd.durability, 'always');
  t.ok((await readdir(dataDir)).length > 0, 'the store is in HATI_DATA_DIR');
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
});

t.test('a flag wins over its HATI_* variable', async (t) => {
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, [...LOCAL, '--hdd-durability', 'no', '--data-dir', join(dir, 'data')], {
    HATI_HDD_DURABILITY: 'always',
    HATI_DATA_DIR: join(dir, 'other'),
  });
  const client = await RawClient.open(t, await hati.tcp());
  t.match(hati.stderr, ` info data in ${join(dir, 'data')} (shards: memory 8, hdd 1; hdd durability no, `);
  // A round trip first: a signal right after the "listening" line can still find no handler (see report).
  t.equal(await client.command('PING'), 'PONG');
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
  t.equal(existsSync(join(dir, 'other')), false);
});

const notLinux = process.platform !== 'linux' && 'counts threads in /proc/<pid>/task, which only Linux has';

t.test('--cpu-num sizes the thread pool', { skip: notLinux }, async (t) => {
  const dir = await tempDir(t);
  // Four servers at once: --cpu-num 1, --cpu-num 6, HATI_CPU_NUM=3 (through the environment) and
  // cpu-num: 2 in a --config file (read by the binary before the pool starts).
  const config = join(dir, 'hati.yaml');
  writeFileSync(config, 'cpu-num: 2\n');
  const runs: Array<{ threads: number; args: string[]; env: Record<string, string> }> = [
    { threads: 1, args: ['--cpu-num', '1'], env: {} },
    { threads: 6, args: ['--cpu-num', '6'], env: {} },
    { threads: 3, args: [], env: { HATI_CPU_NUM: '3' } },
    { threads: 2, args: ['--config', config], env: {} },
  ];
  const counts = await Promise.all(
    runs.map(async ({ threads, args, env }) => {
      const hati = Hati.spawn(t, [...LOCAL, ...args, '--data-dir', join(dir, `data-${threads}`)], env);
      const client = await RawClient.open(t, await hati.tcp());
      t.match(hati.stderr, `, ${threads} disk threads)`);
      // Disk work, so the pool has certainly started.
      const sets = Array.from({ length: 300 }, (_, i) => encodeCommand(['SET', 'hdd', '0', `k${i}`, `v${i}`]));
      client.write(Buffer.concat(sets));
      const replies = await client.next(300, 0);
      t.same(new Set(replies), new Set(['OK']), `--cpu-num ${threads}: 300 hdd writes`);
      t.equal(text(await client.command('GET', 'hdd', 'k299')), 'v299');
      const count = (await readdir(`/proc/${hati.pid}/task`)).length;
      hati.child.kill('SIGTERM');
      t.same(await hati.waitExit(), { code: 0, signal: null });
      return count;
    }),
  );
  const [one, six, three, two] = counts as [number, number, number, number];
  t.equal(six - one, 5, `threads with --cpu-num 6 (${six}) minus with --cpu-num 1 (${one})`);
  t.equal(three - one, 2, `threads with HATI_CPU_NUM=3 (${three}) minus with --cpu-num 1 (${one})`);
  t.equal(two - one, 1, `threads with cpu-num: 2 in --config (${two}) minus with --cpu-num 1 (${one})`);
});

t.test('a TCP port in use: exit 1 with one line naming the flag to change', async (t) => {
  const dir = await tempDir(t);
  const port = await occupy(t);
  const started = Date.now();
  const hati = Hati.spawn(t, ['--tcp-host', '127.0.0.1', '--tcp-port', String(port), '--data-dir', join(dir, 'data')]);
  t.same(await hati.waitExit(5_000), { code: 1, signal: null });
  t.ok(Date.now() - started < 5_000, 'within a few seconds');
  t.same(hati.logged('error'), [
    `cannot listen on tcp 127.0.0.1:${port}: address already in use; pick another with --tcp-port`,
  ]);
  t.notMatch(hati.stderr, /listening/);
  t.equal(hati.stdout, '');
});

t.test('a JSON-RPC port in use: exit 1, and the data dir is not left locked', async (t) => {
  const dir = await tempDir(t);
  const port = await occupy(t);
  const args = ['--tcp', ...LOCAL, '--rpc', '--rpc-host', '127.0.0.1', '--data-dir', join(dir, 'data')];
  const hati = Hati.spawn(t, [...args, '--rpc-port', String(port)]);
  t.same(await hati.waitExit(5_000), { code: 1, signal: null });
  t.same(hati.logged('error'), [
    `cannot listen on json-rpc 127.0.0.1:${port}: address already in use; pick another with --rpc-port`,
  ]);
  const again = Hati.spawn(t, [...args, '--rpc-port', '0']);
  t.equal((await rpcCall(await again.rpc(), 'Storage.Count', { type: 'hdd' })).body.result, 0);
  again.child.kill('SIGTERM');
  t.same(await again.waitExit(), { code: 0, signal: null });
});

t.test('a data dir locked by another running hati: exit 1, the first one keeps serving', async (t) => {
  const dir = await tempDir(t);
  const dataDir = join(dir, 'data');
  const first = Hati.spawn(t, [...LOCAL, '--data-dir', dataDir]);
  const client = await RawClient.open(t, await first.tcp());
  const started = Date.now();
  const second = Hati.spawn(t, [...LOCAL, '--data-dir', dataDir]);
  t.same(await second.waitExit(5_000), { code: 1, signal: null });
  t.ok(Date.now() - started < 5_000, 'within a few seconds');
  const errors = second.logged('error');
  t.equal(errors.length, 1);
  t.match(errors[0], new RegExp(`^data directory ${dataDir} is locked by another process or store`));
  t.notMatch(second.stderr, /listening/);
  t.equal(await client.command('PING'), 'PONG');
  first.child.kill('SIGTERM');
  t.same(await first.waitExit(), { code: 0, signal: null });
});

t.test('SIGINT shuts down with exit 0, and the writes survive', async (t) => {
  const dir = await tempDir(t);
  const args = [...LOCAL, '--data-dir', join(dir, 'data')];
  const hati = Hati.spawn(t, args);
  const client = await RawClient.open(t, await hati.tcp());
  t.equal(await client.command('SET', 'hdd', '0', 'k', 'kept'), 'OK');
  hati.child.kill('SIGINT');
  t.same(await hati.waitExit(), { code: 0, signal: null });
  t.same(hati.messages.slice(-2), ['SIGINT: shutting down', 'stopped']);
  await client.closed();
  t.equal(client.closedBy, 'end', 'the server closed the connection');
  const again = Hati.spawn(t, args);
  const client2 = await RawClient.open(t, await again.tcp());
  t.equal(text(await client2.command('GET', 'hdd', 'k')), 'kept');
  again.child.kill('SIGINT');
  t.same(await again.waitExit(), { code: 0, signal: null });
});

// A usage error must not start a server: the message, exit 2, nothing listening.
t.test('a bad --log-level or an unknown flag starts no server', async (t) => {
  const dir = await tempDir(t);
  await Promise.all(
    [['--log-level', 'loud'], ['--bogus']].map(async (flags, i) => {
      const hati = Hati.spawn(t, [...flags, ...LOCAL, '--data-dir', join(dir, `data-${i}`)]);
      const exit = await Promise.race([hati.exited, delay(3_000).then(() => undefined)]);
      t.match(hati.stderr, /^hati: (Invalid values:|Unknown argument: bogus)/, `${flags[0]}: the usage error`);
      t.same(exit, { code: 2, signal: null }, `${flags[0]}: exits 2 at once`);
      t.notMatch(hati.stderr, /listening/, `${flags[0]}: no listener`);
    }),
  );
});

t.test('--data-dir "" is refused, exit 2, and nothing is written in the working directory', async (t) => {
  const cwd = await tempDir(t);
  for (const [args, env] of [
    [['--data-dir', ''], {}],
    [['--data-dir='], {}],
    [[], { HATI_DATA_DIR: '' }],
  ] as Array<[string[], Record<string, string>]>) {
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, 'start', ...LOCAL, ...args], {
      cwd,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const code = await new Promise((resolve) => child.once('close', resolve));
    const what = [...args, ...Object.keys(env)].join(' ');
    t.equal(code, 2, `${what}: a usage error`);
    t.equal(
      stderr,
      "hati: --data-dir must name a directory, got '' (an empty path would mean the working directory)\nRun 'hati --help' for usage.\n",
      `${what}: one line naming the flag`,
    );
    t.equal(stdout, '', `${what}: nothing starts`);
    t.same(await readdir(cwd), [], `${what}: the working directory is untouched`);
  }
});

t.test('IPv6 addresses print in brackets, and the printed address works', async (t) => {
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, [
    '--tcp',
    '--tcp-host',
    '::1',
    '--tcp-port',
    '0',
    '--rpc',
    '--rpc-host',
    '::1',
    '--rpc-port',
    '0',
    '--data-dir',
    join(dir, 'data'),
  ]);
  const [tcp, rpc] = await Promise.all([hati.tcp(), hati.rpc()]);
  t.equal(tcp.host, '[::1]');
  t.equal(rpc.host, '[::1]');
  t.ok(hati.messages.includes(`tcp listening on [::1]:${tcp.port}`), 'tcp line');
  t.ok(hati.messages.includes(`json-rpc listening on http://[::1]:${rpc.port}/`), 'json-rpc line');
  // What a user copies from those lines: `::1` and port for redis-cli, the URL for curl.
  const client = await RawClient.open(t, { host: '::1', port: tcp.port });
  t.equal(await client.command('PING'), 'PONG');
  const url = (await hati.waitFor(/^json-rpc listening on (\S+)$/m))[1] as string;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'Storage.Count', params: { type: 'memory' } }),
  });
  t.same(await res.json(), { jsonrpc: '2.0', id: 1, result: 0 });
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
});

t.test('--unix in a directory that does not exist: exit 1, naming the directory', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'no', 'such');
  const started = Date.now();
  const hati = Hati.spawn(t, ['--unix', join(missing, 'hati.sock'), '--data-dir', join(dir, 'data')]);
  t.same(await hati.waitExit(5_000), { code: 1, signal: null });
  t.ok(Date.now() - started < 5_000, 'within a few seconds');
  t.same(hati.logged('error'), [
    `cannot listen on unix socket ${join(missing, 'hati.sock')}: directory ${missing} does not exist`,
  ]);
  t.notMatch(hati.stderr, /EACCES|ENOENT|permission|listening/);
  t.equal(existsSync(join(dir, 'data')), false, 'the store was not opened');
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} while the store opens: start-up stops, nothing is served, exit 0`, async (t) => {
    const dir = await tempDir(t);
    // 256 shards take a good half second to open: the signal lands while the store opens.
    const hati = Hati.spawn(t, [...LOCAL, '--shards', '256', '--data-dir', join(dir, 'data')]);
    await hati.waitFor(/^no listener named/m);
    hati.child.kill(signal);
    // The store finishes opening before the server stops; a loaded machine (the test suite's other
    // packages beside it) has taken more than 10 s to open 256 shards.
    t.same(await hati.waitExit(30_000), { code: 0, signal: null });
    t.same(hati.messages, [banner(hati), NO_LISTENER, `${signal} during start-up: stopping`, 'stopped']);
    t.equal(hati.stdout, '');
  });
}

t.test('SIGHUP while the store opens: the server starts, and reloads once it is up', async (t) => {
  const dir = await tempDir(t);
  // 256 shards take a good half second to open: the signal lands while the store opens.
  const hati = Hati.spawn(t, [...LOCAL, '--shards', '256', '--data-dir', join(dir, 'data')]);
  await hati.waitFor(/^no listener named/m);
  hati.child.kill('SIGHUP');
  await hati.tcp();
  await hati.waitFor(/^SIGHUP: nothing to reload \(no --users-file, no TLS\)$/m);
  t.equal(hati.child.exitCode, null, 'still running');
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(10_000), { code: 0, signal: null });
});
