// docs/deploy.md as an operator uses it: the unit's ExecStart line, run with the sample config
// (its paths moved into a temporary directory, its ports to free ones), serves, logs JSON to
// stderr, reloads on SIGHUP (ExecReload) and stops with exit 0 on SIGTERM (KillSignal). The
// doc is read by this test, so the two cannot drift apart.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { Hati, logLines, RawClient, tempDir, text } from './common/hati.js';
import { inProcess } from './common/in-process.js';

const DOC = await readFile(new URL('../../../docs/deploy.md', import.meta.url), 'utf8');

/** The fenced blocks of the doc in `language`. */
function blocks(language: string): string[] {
  return [...DOC.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1] as string);
}

const unit = blocks('ini').find((block) => block.includes('ExecStart=')) as string;
const sample = blocks('yaml').find((block) => block.startsWith('# /etc/hati/hati.yaml')) as string;

/** The unit's `Key=value` settings (the last one of a key). */
const directives = new Map(
  unit
    .split('\n')
    .map((line) => /^(\w+)=(.*)$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => [match[1] as string, match[2] as string]),
);

t.test('the unit is hardened as the doc says, and writes only where the sample keeps its data', async (t) => {
  t.ok(unit, 'docs/deploy.md has the unit');
  t.ok(sample, 'docs/deploy.md has the sample config');
  t.match(Object.fromEntries(directives), {
    User: 'hati',
    Group: 'hati',
    ExecStart: /^\/usr\/local\/bin\/hati start --config \/etc\/hati\/hati\.yaml --log-format json$/,
    ExecReload: '/bin/kill -HUP $MAINPID',
    KillSignal: 'SIGTERM',
    Restart: 'on-failure',
    LimitNOFILE: /^\d+$/,
    ProtectSystem: 'strict',
    NoNewPrivileges: 'yes',
    PrivateTmp: 'yes',
    ProtectHome: 'yes',
  });
  const settings = parseYaml(sample) as Record<string, unknown>;
  t.equal(directives.get('ReadWritePaths'), settings['data-dir'], 'ReadWritePaths is the data directory');
  t.equal(`/var/lib/${directives.get('StateDirectory')}`, settings['data-dir'], 'StateDirectory makes it');
  t.equal(
    `/run/${directives.get('RuntimeDirectory')}`,
    String(settings.unix).slice(0, String(settings.unix).lastIndexOf('/')),
    "RuntimeDirectory makes the socket's directory",
  );
});

t.test("the unit's ExecStart with the sample config serves, logs JSON, reloads and stops with 0", async (t) => {
  const root = await tempDir(t);
  // The doc's absolute paths, under the temporary directory.
  const moved = (text: string) => text.replace(/(?<=[\s=])\/(etc|var\/lib|run)\/hati\b/g, `${root}/$1/hati`);
  const config = moved(sample)
    .replace(/^(tcp-port|rpc-port|metrics-port): \d+$/gm, '$1: 0')
    .replace(/^tcp-host: 0\.0\.0\.0$/m, 'tcp-host: 127.0.0.1');
  await Promise.all(['etc/hati', 'run/hati'].map((path) => mkdir(join(root, path), { recursive: true })));
  const password = 'deploy test password';
  await writeFile(join(root, 'etc/hati/password'), `${password}\n`, { mode: 0o600 });
  await writeFile(join(root, 'etc/hati/hati.yaml'), config);

  // Exactly the unit's command line, after the binary.
  const [binary, ...args] = moved(directives.get('ExecStart') as string).split(' ');
  t.equal(binary, '/usr/local/bin/hati');

  const printed = await inProcess([...args, '--print-config']);
  t.equal(printed.code, 0, `the sample is a valid config: ${printed.stderr}`);
  t.match(
    parseYaml(printed.stdout),
    { ...parseYaml(config), 'log-format': 'json' },
    'every sample setting is in effect',
  );

  const hati = new Hati(t, args);
  const [tcp, unix, rpc, metrics] = await Promise.all([hati.tcp(), hati.unix(), hati.rpc(), hati.metrics()]);
  t.equal(unix, join(root, 'run/hati/hati.sock'));
  t.equal(rpc.host, '127.0.0.1');
  t.equal(metrics.host, '127.0.0.1');
  const client = await RawClient.open(t, tcp);
  t.equal(await client.command('PING'), 'PONG');
  t.match(await client.command('GET', 'hdd', 'k'), { code: 'NOAUTH' }, 'the password file is in effect');
  t.equal(await client.command('AUTH', password), 'OK');
  t.equal(await client.command('SET', 'hdd', '0', 'k', 'deployed'), 'OK');
  const local = await RawClient.open(t, unix);
  t.equal(await local.command('AUTH', password), 'OK');
  t.equal(text(await local.command('GET', 'hdd', 'k')), 'deployed');
  const ready = await fetch(`http://127.0.0.1:${metrics.port}/readyz`);
  t.same({ status: ready.status, body: await ready.json() }, { status: 200, body: { status: 'ready' } });

  t.equal(await hati.hangup(), 'SIGHUP: nothing to reload (no --users-file, no TLS)', 'ExecReload');
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
  t.equal(hati.stdout, '');
  const lines = hati.stderr.split('\n').filter((line) => line !== '');
  t.ok(
    lines.every((line) => line.startsWith('{') && JSON.parse(line).level !== undefined),
    'every line is a JSON object with a level',
  );
  const log = logLines(hati.stderr);
  t.match(log[0], { level: 'info', msg: /^hati \S+ \(node \S+, pid \d+\)$/ });
  t.same(
    log.filter((line) => line.level === 'error' || line.level === 'warn'),
    [],
    'no warning, no error',
  );
  t.match(
    log.find((line) => line.fields.listener === 'tcp'),
    { fields: { address: `127.0.0.1:${tcp.port}` } },
  );
  t.same(
    log.slice(-2).map((line) => line.msg),
    ['SIGTERM: shutting down', 'stopped'],
  );
});
