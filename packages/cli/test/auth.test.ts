// A password-protected `hati start` (--password-file, --password, HATI_PASSWORD), and the
// clients that log in to it: hati client (-a, HATI_PASSWORD, --no-auth-warning), redis-cli -a,
// a raw connection. The password never appears in what the server prints or the prompt's history.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { run } from '@hati/test-helpers';
import t from 'tap';
import { holdsSecret } from '../src/client-command.js';
import { main } from '../src/main.js';
import { Hati, logged, RawClient, runHati, tempDir, text } from './common/hati.js';
import { inProcess } from './common/in-process.js';

const PASSWORD = 'correct horse 7';
const A_WARNING =
  "Warning: Using a password with '-a' or '--pass' on the command line may not be safe (other users see it in ps); set HATI_PASSWORD instead.\n";

// One server for most of the file: the password from a file (readable by others, so it warns).
const dir = await tempDir(t);
const passwordFile = join(dir, 'password');
await writeFile(passwordFile, `${PASSWORD}\n`);
await chmod(passwordFile, 0o644);
const hati = Hati.spawn(t, [
  '--tcp-host',
  '127.0.0.1',
  '--tcp-port',
  '0',
  '--data-dir',
  join(dir, 'data'),
  '--shards',
  '1',
  '--password-file',
  passwordFile,
]);
const address = await hati.tcp();
const port = String(address.port);

t.test('--password-file: the first line is the password; a file others can read is warned about', async (t) => {
  t.ok(hati.messages.includes('clients must authenticate as the default user (its password)'));
  t.same(hati.logged('warn'), [`--password-file ${passwordFile} can be read by other users (mode 0644); chmod 600 it`]);
});

t.test('before AUTH only PING, AUTH, HELLO and QUIT; after it every command', async (t) => {
  const client = await RawClient.open(t, address);
  t.equal(await client.command('PING'), 'PONG');
  for (const command of [['GET', 'memory', 'k'], ['SET', 'memory', '0', 'k', 'v'], ['STATS']]) {
    t.match(await client.command(...command), { code: 'NOAUTH' }, `${command[0]} before AUTH`);
  }
  t.match(await client.command('AUTH', 'not it'), { code: 'WRONGPASS' });
  t.equal(await client.command('AUTH', PASSWORD), 'OK');
  t.equal(text(await client.command('ACL', 'WHOAMI')), 'default');
  t.equal(await client.command('SET', 'memory', '0', 'k', 'v'), 'OK');
  t.equal(text(await client.command('GET', 'memory', 'k')), 'v');
  const hello = await RawClient.open(t, address);
  t.match(await hello.command('HELLO', '3', 'AUTH', 'default', PASSWORD), { proto: 3 }, 'HELLO 3 AUTH');
  t.equal(text(await hello.command('GET', 'memory', 'k')), 'v');
});

t.test('redis-cli -a and hati client -a log in; HATI_PASSWORD without the warning', async (t) => {
  t.same(await run('redis-cli', ['-p', port, '-a', PASSWORD, '--no-auth-warning', 'SET', 'memory', '0', 'rc', 'x']), {
    code: 0,
    stdout: 'OK\n',
    stderr: '',
  });
  // Independent runs, side by side: each is a process that loads the whole cli.
  const [dashA, pass, fromEnv, piped, none, wrong, auth] = await Promise.all([
    runHati(['client', '-p', port, '-a', PASSWORD, 'GET', 'memory', 'rc']),
    runHati(['client', '-p', port, '--pass', PASSWORD, '--no-auth-warning', 'GET', 'memory', 'rc']),
    runHati(['client', '-p', port, 'GET', 'memory', 'rc'], { env: { HATI_PASSWORD: PASSWORD } }),
    runHati(['client', '-p', port], { input: 'GET memory rc\nHAS memory rc\n', env: { HATI_PASSWORD: PASSWORD } }),
    runHati(['client', '-p', port, 'GET', 'memory', '-a']),
    runHati(['client', '-p', port, 'GET', 'memory', 'rc'], { env: { HATI_PASSWORD: 'nope' } }),
    runHati(['client', '-p', port], { input: `AUTH "${PASSWORD}"\nGET memory rc\n` }),
  ]);
  t.same(dashA, { code: 0, stdout: 'x\n', stderr: A_WARNING }, '-a warns as redis-cli does');
  t.same(pass, { code: 0, stdout: 'x\n', stderr: '' }, '--pass, --no-auth-warning');
  t.same(fromEnv, { code: 0, stdout: 'x\n', stderr: '' }, 'HATI_PASSWORD');
  t.same(piped, { code: 0, stdout: 'x\n1\n', stderr: '' }, 'piped commands');
  t.match(
    none,
    { code: 1, stdout: '', stderr: /^\(error\) NOAUTH [^\n]+\n$/ },
    'no password: NOAUTH, exit 1 (an -a after the command is an argument)',
  );
  t.match(
    wrong,
    { code: 1, stdout: '', stderr: /^\(error\) WRONGPASS [^\n]+\n$/ },
    'a wrong password: WRONGPASS, exit 1',
  );
  t.same(auth, { code: 0, stdout: 'OK\nx\n', stderr: '' }, 'AUTH as a piped command');
});

t.test('the prompt keeps no line holding a password in its history', async (t) => {
  const historyFile = join(dir, 'history');
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  const stdout = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
  let screen = '';
  stdout.setEncoding('utf8').on('data', (chunk: string) => {
    screen += chunk;
  });
  const done = main(['client', '--tcp-port', port], {
    stdout: () => {},
    stderr: () => {},
    env: { HATI_HISTORY_FILE: historyFile },
    terminal: { stdin, stdout },
  });
  for (const line of [
    `AUTH "${PASSWORD}"`,
    'GET memory rc',
    `hello 3 auth default "${PASSWORD}"`,
    `  auth default "${PASSWORD}"`,
    'COUNT memory',
    'quit',
  ]) {
    await delay(50);
    stdin.write(`${line}\r`);
  }
  t.equal(await done, 0);
  t.match(screen, '"x"', 'the commands ran');
  t.same((await readFile(historyFile, 'utf8')).split('\n'), ['GET memory rc', 'COUNT memory', 'quit', '']);
});

t.test('--askpass: the password typed on the terminal, without echo', async (t) => {
  const session = async (typed: string) => {
    const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => stdin });
    const stdout = Object.assign(new PassThrough(), { isTTY: false });
    let screen = '';
    stdout.setEncoding('utf8').on('data', (chunk: string) => {
      screen += chunk;
    });
    let stderr = '';
    const done = main(['client', '-p', port, '--askpass', 'GET', 'memory', 'rc'], {
      stdout: () => {},
      stderr: (text) => {
        stderr += text;
      },
      env: {},
      terminal: { stdin, stdout },
    });
    await delay(50);
    stdin.write(typed);
    return { code: await done, screen, stderr };
  };
  t.same(await session(`${PASSWORD}\r`), { code: 0, screen: 'x\n', stderr: 'Password: \n' });
  t.match(await session('wrong\r'), { code: 1, screen: '', stderr: /^Password: \n\(error\) WRONGPASS / });
  t.same(
    await inProcess(['client', '-p', port, '--askpass', 'PING']),
    {
      code: 1,
      stdout: '',
      stderr: 'hati: --askpass needs a terminal to type the password on; set HATI_PASSWORD instead\n',
    },
    'not on a terminal',
  );
});

t.test('which lines hold a password', async (t) => {
  for (const line of [
    'AUTH pw',
    'auth user pw',
    '"AUTH" pw',
    'HELLO 3 AUTH u p',
    "hello 2 setname x 'auth' u p",
    'ACL SETUSER u >pw',
  ]) {
    t.ok(holdsSecret(line), line);
  }
  for (const line of ['GET memory auth', 'HELLO 3', 'SET memory 0 k AUTH', 'AUTHOR', 'ACL WHOAMI']) {
    t.notOk(holdsSecret(line), line);
  }
});

t.test('--password on the command line warns; HATI_PASSWORD does not; neither is printed', async (t) => {
  const flagged = Hati.spawn(t, [
    '--tcp-host',
    '127.0.0.1',
    '--tcp-port',
    '0',
    '--data-dir',
    join(dir, 'flag-data'),
    '--shards',
    '1',
    '--password',
    'flag pw 1',
  ]);
  const fromEnv = new Hati(
    t,
    ['start', '--tcp-host', '127.0.0.1', '--tcp-port', '0', '--data-dir', join(dir, 'env-data'), '--shards', '1'],
    { HATI_PASSWORD: 'env pw 2' },
  );
  for (const [server, password] of [
    [flagged, 'flag pw 1'],
    [fromEnv, 'env pw 2'],
  ] as const) {
    const client = await RawClient.open(t, await server.tcp());
    t.match(await client.command('GET', 'memory', 'k'), { code: 'NOAUTH' });
    t.equal(await client.command('AUTH', password), 'OK');
    server.child.kill('SIGTERM');
    t.same(await server.waitExit(), { code: 0, signal: null });
    t.notMatch(server.stdout + server.stderr, password, 'the password is not printed');
  }
  t.same(flagged.logged('warn'), [
    'a password on the command line is visible to other users of this machine (ps); prefer HATI_PASSWORD or --password-file',
  ]);
  t.same(fromEnv.logged('warn'), []);
});

t.test('--password-file that cannot be read, or is empty: one line, exit 1', async (t) => {
  const base = ['start', '--tcp-host', '127.0.0.1', '--tcp-port', '0', '--data-dir', join(dir, 'never')];
  const missing = join(dir, 'missing');
  const failed = async (argv: string[]) => {
    const { code, stdout, stderr } = await inProcess(argv);
    return { code, stdout, errors: logged(stderr, 'error') };
  };
  t.same(await failed([...base, '--password-file', missing]), {
    code: 1,
    stdout: '',
    errors: [`cannot read --password-file ${missing}: no such file (ENOENT)`],
  });
  for (const content of ['', '\n', '\nsecond line\n']) {
    const empty = join(dir, 'empty');
    await writeFile(empty, content, { mode: 0o600 });
    t.same(
      await failed([...base, '--password-file', empty]),
      { code: 1, stdout: '', errors: [`--password-file ${empty} is empty (its first line is the password)`] },
      JSON.stringify(content),
    );
  }
});

t.test('credential flags that do not fit: a usage error that never shows the password', async (t) => {
  const base = ['start', '--tcp-port', '0', '--data-dir', join(dir, 'never')];
  const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
    [
      [...base, '--password', 'hidden-1', '--password-file', passwordFile],
      {},
      '--password (or HATI_PASSWORD) and --password-file both give a password; give one',
    ],
    [
      [...base, '--password-file', passwordFile],
      { HATI_PASSWORD: 'hidden-1' },
      '--password (or HATI_PASSWORD) and --password-file both give a password; give one',
    ],
    [
      [...base, '--password', ''],
      {},
      '--password (or HATI_PASSWORD) is empty: the server would be open to anyone; give a password or none',
    ],
    [
      base,
      { HATI_PASSWORD: '' },
      '--password (or HATI_PASSWORD) is empty: the server would be open to anyone; give a password or none',
    ],
    [['client', '--user', 'app', 'PING'], {}, '--user needs a password: set HATI_PASSWORD (or give --askpass or -a)'],
    [
      ['client', '--askpass', 'PING'],
      { HATI_PASSWORD: 'hidden-1' },
      '--askpass and a password (-a, --pass or HATI_PASSWORD) both give one; give one',
    ],
    [['client', '-a', '', 'PING'], {}, 'the password (-a, --pass or HATI_PASSWORD) is empty'],
  ];
  for (const [argv, env, message] of cases) {
    t.same(
      await inProcess(argv, env),
      { code: 2, stdout: '', stderr: `hati: ${message}\nRun 'hati --help' for usage.\n` },
      argv.join(' '),
    );
  }
  const help = await inProcess(['start', '--help'], { HATI_PASSWORD: 'hidden-2' });
  t.equal(help.code, 0);
  t.notMatch(help.stdout, 'hidden-2', '--help shows no password from the environment');
  t.match(help.stdout, /^ +--password +The default user's password/m);
});

t.test('the password never reached what the server printed', async (t) => {
  t.notMatch(hati.stdout + hati.stderr, PASSWORD);
  t.notMatch(hati.stdout + hati.stderr, 'not it');
  t.match(hati.stderr, /authentication failed for user 'default' from 127\.0\.0\.1/, 'failures are logged, without it');
});
