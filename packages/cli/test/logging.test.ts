// What `hati start` writes, as a log collector reads it: every line on stderr (stdout empty),
// `--log-format json` one pino object per line with the listener lines' fields, `--log-level
// error` nothing but errors, and the metrics and console lines (`--console no` is in start.test.ts).
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { Hati, RawClient, tempDir } from './common/hati.js';

const LOCAL = ['--tcp-host', '127.0.0.1', '--tcp-port', '0'];
const RPC = ['--rpc', '--rpc-host', '127.0.0.1', '--rpc-port', '0'];

/** Listens on a free port, so that hati cannot. */
async function occupy(t: Test): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

/** stderr's lines as JSON objects; a line that is not one fails the test. */
function jsonLines(t: Test, stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        t.fail(`not a JSON line: ${line}`);
        return {};
      }
    });
}

t.test('--log-format json: one object per line, from the banner to stopped, listener lines with fields', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'hati.sock');
  const hati = Hati.spawn(t, [
    '--log-format',
    'json',
    '--tcp',
    ...LOCAL,
    ...RPC,
    '--unix',
    sock,
    '--metrics-port',
    '0',
    '--data-dir',
    join(dir, 'data'),
    '--shards',
    '1',
  ]);
  // The address helpers read json lines as well as text ones.
  const [tcp, rpc, metrics, unix] = await Promise.all([hati.tcp(), hati.rpc(), hati.metrics(), hati.unix()]);
  await hati.waitFor(/^console at /m);
  const client = await RawClient.open(t, tcp);
  t.equal(await client.command('PING'), 'PONG');
  const health = await fetch(`http://${metrics.host}:${metrics.port}/healthz`);
  t.same({ status: health.status, body: await health.json() }, { status: 200, body: { status: 'ok' } });
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
  t.equal(hati.stdout, '', 'stdout stays empty');

  const lines = jsonLines(t, hati.stderr);
  for (const line of lines) {
    t.match(
      line,
      {
        level: 'info',
        time: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
        pid: hati.pid,
        hostname: hostname(),
        msg: String,
      },
      `${line.msg}: level, time, pid, hostname, msg`,
    );
  }
  const byMessage = (pattern: RegExp) => lines.find((line) => pattern.test(String(line.msg)));
  t.match(lines[0], { msg: /^hati \d+\.\d+\.\d+ \(node \d+\.\d+\.\d+, pid \d+\)$/, node: process.versions.node });
  t.match(byMessage(/^tcp listening/), { listener: 'tcp', address: `127.0.0.1:${tcp.port}`, tls: false });
  t.match(byMessage(/^unix socket listening/), { listener: 'unix', address: unix });
  t.match(byMessage(/^json-rpc listening/), {
    listener: 'json-rpc',
    address: `127.0.0.1:${rpc.port}`,
    url: `http://127.0.0.1:${rpc.port}/`,
  });
  t.match(byMessage(/^metrics listening/), {
    listener: 'metrics',
    address: `127.0.0.1:${metrics.port}`,
    url: `http://127.0.0.1:${metrics.port}/metrics`,
  });
  t.match(byMessage(/^console at/), { url: `http://127.0.0.1:${rpc.port}/` });
  t.match(byMessage(/^data in /), {
    dataDir: join(dir, 'data'),
    shards: { memory: 1, hdd: 1 },
    durability: 'everysec',
  });
  t.same(
    lines.slice(-2).map((line) => [line.msg, line.signal]),
    [
      ['SIGTERM: shutting down', 'SIGTERM'],
      ['stopped', undefined],
    ],
  );
});

t.test(
  '--log-level error: a clean run writes nothing; a failed start writes one error line, in either format',
  async (t) => {
    const dir = await tempDir(t);
    const port = await occupy(t);
    const sock = join(dir, 'quiet.sock');
    const quiet = Hati.spawn(t, ['--log-level', 'error', '--unix', sock, '--data-dir', join(dir, 'quiet')]);
    const failed = ['text', 'json'].map((format, i) =>
      Hati.spawn(t, [
        '--log-level',
        'error',
        '--log-format',
        format,
        '--tcp-host',
        '127.0.0.1',
        '--tcp-port',
        String(port),
        '--data-dir',
        join(dir, `failed-${i}`),
      ]),
    );
    // No start-up line to wait for: the socket file appears once the server is up.
    while (!existsSync(sock) && quiet.exit === undefined) await delay(50);
    const client = await RawClient.open(t, sock);
    t.equal(await client.command('PING'), 'PONG');
    quiet.child.kill('SIGTERM');
    t.same(await quiet.waitExit(), { code: 0, signal: null });
    t.same({ stdout: quiet.stdout, stderr: quiet.stderr }, { stdout: '', stderr: '' }, 'nothing at all');

    const message = `cannot listen on tcp 127.0.0.1:${port}: address already in use; pick another with --tcp-port`;
    const [text, json] = failed as [Hati, Hati];
    t.same(await text.waitExit(), { code: 1, signal: null });
    t.match(text.stderr, new RegExp(`^\\S+Z error ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`));
    t.same(await json.waitExit(), { code: 1, signal: null });
    const [line, ...more] = jsonLines(t, json.stderr);
    t.match(line, { level: 'error', msg: message, listener: 'tcp', code: 'EADDRINUSE' });
    t.same(more, [], 'one line');
  },
);
