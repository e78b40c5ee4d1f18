// `hati users`: the users file it writes (spawned, the password piped in; or typed on a
// terminal through main()), and a spawned `hati start --users-file` that logs those users in
// with the rights given, and re-reads the file on SIGHUP.
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { type Run, run } from '@hati/test-helpers';
import t from 'tap';
import { main } from '../src/main.js';
import { Hati, RawClient, runHati, tempDir, text, within } from './common/hati.js';

const HINT = 'hati: a running server sees the change after SIGHUP (kill -HUP <pid of hati start>) or ACL LOAD\n';

/** `hati users <args> --users-file <file>` run by the binary, with `input` (the password) piped to stdin. */
function spawned(file: string, args: string[], input = '') {
  return runHati(['users', ...args, '--users-file', file], { input });
}

/** The same through main(), in this process (faster: no module loading), `input` as a piped stdin. */
async function users(file: string, args: string[], input = ''): Promise<Run> {
  const stdin = new PassThrough();
  stdin.end(input);
  let stdout = '';
  let stderr = '';
  const code = await main(['users', ...args, '--users-file', file], {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env: {},
    terminal: { stdin, stdout: new PassThrough() },
  });
  return { code, stdout, stderr };
}

interface Stored {
  version: number;
  users: Array<{ name: string; password?: string; tokens?: string[]; [right: string]: unknown }>;
}

async function stored(file: string): Promise<Stored> {
  return JSON.parse(await readFile(file, 'utf8')) as Stored;
}

const sha256 = (token: string) => `sha256$${createHash('sha256').update(token).digest('hex')}`;

t.test('add, list, token, passwd, set and remove edit the file; nothing printed holds a hash', async (t) => {
  const file = join(await tempDir(t), 'users.json');
  t.same(
    await spawned(
      file,
      ['add', 'app', '--read', 'memory:cache:', '--read', 'hdd:', '--write', 'hdd:', '--publish', 'orders.*'],
      'app secret 1\n',
    ),
    {
      code: 0,
      stdout: '',
      stderr: `hati: added user 'app' to ${file}: read memory:cache:, hdd:; write hdd:; publish orders.*\n${HINT}`,
    },
  );
  t.equal((await stat(file)).mode & 0o777, 0o600, 'created readable by its owner only');
  t.match((await stored(file)).users, [
    { name: 'app', password: /^scrypt\$/, read: ['memory:cache:', 'hdd:'], write: ['hdd:'], publish: ['orders.*'] },
  ]);
  t.notMatch(await readFile(file, 'utf8'), /app secret/, 'the password is not stored');

  // A token-only admin: the token alone on stdout, stored as its SHA-256.
  const ops = await users(file, ['add', 'ops', '--admin', '--token-only']);
  t.equal(ops.code, 0);
  t.match(ops.stdout, /^hati_[\w-]{43}\n$/);
  const opsToken = ops.stdout.trim();
  t.equal(
    ops.stderr,
    `hati: added user 'ops' to ${file}: admin\nhati: its token, shown this once (${file} keeps only its hash):\n${HINT}`,
  );
  t.same((await stored(file)).users[1], { name: 'ops', tokens: [sha256(opsToken)], admin: true });

  const listed = await users(file, ['list']);
  t.same(listed, {
    code: 0,
    stdout: 'app: read memory:cache:, hdd:; write hdd:; publish orders.* (password)\nops: admin (1 token)\n',
    stderr: '',
  });
  const json = await users(file, ['list', '--json']);
  t.same(JSON.parse(json.stdout), [
    {
      name: 'app',
      admin: false,
      read: ['memory:cache:', 'hdd:'],
      write: ['hdd:'],
      publish: ['orders.*'],
      consume: [],
      manage: [],
      password: true,
      tokens: 0,
    },
    { name: 'ops', admin: true, read: [], write: [], publish: [], consume: [], manage: [], password: false, tokens: 1 },
  ]);
  t.notMatch(listed.stdout + json.stdout, /scrypt|sha256|hati_/, 'no hash and no token is listed');

  // Tokens: each shown once; earlier ones kept unless --replace.
  const first = await users(file, ['token', 'app']);
  const second = await users(file, ['token', 'app']);
  t.match(first, { code: 0, stdout: /^hati_[\w-]{43}\n$/ });
  t.equal(
    second.stderr,
    `hati: a new token for 'app', shown this once (${file} keeps only its hash); its other token still works (--replace drops it):\n${HINT}`,
  );
  t.same((await stored(file)).users[0]?.tokens, [sha256(first.stdout.trim()), sha256(second.stdout.trim())]);
  const replaced = await users(file, ['token', 'app', '--replace']);
  t.match(replaced.stderr, /; its 2 other tokens no longer work:\n/);
  t.same((await stored(file)).users[0]?.tokens, [sha256(replaced.stdout.trim())]);

  // passwd: a new hash; the tokens and rights stay.
  const before = (await stored(file)).users[0];
  t.same(await users(file, ['passwd', 'app'], 'app secret 2\n'), {
    code: 0,
    stdout: '',
    stderr: `hati: changed the password of 'app' in ${file}\n${HINT}`,
  });
  const after = (await stored(file)).users[0];
  t.not(after?.password, before?.password);
  t.same({ ...after, password: undefined }, { ...before, password: undefined });

  // set: exactly the rights given; the password and tokens stay.
  t.same(await users(file, ['set', 'app', '--consume', 'jobs.*', '--admin']), {
    code: 0,
    stdout: '',
    stderr: `hati: set the rights of 'app' in ${file}: admin; consume jobs.*\n${HINT}`,
  });
  t.same((await stored(file)).users[0], {
    name: 'app',
    password: after?.password,
    tokens: after?.tokens,
    admin: true,
    consume: ['jobs.*'],
  });
  t.match(await users(file, ['set', 'app', '--read', 'ram:x']), { code: 2, stderr: /--read: key rule 'ram:x'/ });
  t.match(await users(file, ['set', 'ghost']), { code: 1, stderr: /no user 'ghost'/ });

  t.same(await users(file, ['remove', 'ops']), {
    code: 0,
    stdout: '',
    stderr: `hati: removed user 'ops' from ${file}\n${HINT}`,
  });
  t.same(
    (await stored(file)).users.map((user) => user.name),
    ['app'],
  );
  t.equal((await stat(file)).mode & 0o777, 0o600, 'still 0600 after rewrites');
});

t.test('mistakes: one clear line, a non-zero exit, and the file as it was', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'users.json');
  t.equal((await users(file, ['add', 'app'], 'pw\n')).code, 0);
  const before = await readFile(file, 'utf8');
  const cases: Array<[string[], string, number, RegExp]> = [
    [
      ['add', 'app'],
      'pw\n',
      1,
      /^hati: user 'app' already exists in \S+; hati users passwd changes its password, hati users remove removes it\n$/,
    ],
    [['passwd', 'nobody'], 'pw\n', 1, /^hati: no user 'nobody' in \S+ \(it has app\)\n$/],
    [['remove', 'nobody'], '', 1, /^hati: no user 'nobody' in /],
    [['token', 'nobody'], '', 1, /^hati: no user 'nobody' in /],
    [['add', 'bob'], '', 1, /^hati: no password on stdin: pipe it in \(its first line is the password\)/],
    [['add', 'bob', '--read', 'ram:x'], 'pw\n', 2, /^hati: --read: key rule 'ram:x': expected <type>:<prefix>/],
    [['add', 'bob', '--consume', 'a b'], 'pw\n', 2, /^hati: --consume: broker rule 'a b': expected a glob/],
    [['add', 'bad name'], 'pw\n', 2, /^hati: user name 'bad name': 1 to 64 of/],
    [
      ['add', 'bob', '--password', 'pw-on-the-command-line'],
      '',
      2,
      /^hati: hati users takes no password on the command line \(it would be visible in ps and your shell's history\)/,
    ],
  ];
  for (const [args, input, code, message] of cases) {
    const result = await users(file, args, input);
    t.equal(result.code, code, `${args.join(' ')}: exit code`);
    t.match(result.stderr, message, `${args.join(' ')}: message`);
    t.notMatch(result.stderr, /pw-on-the-command-line/, `${args.join(' ')}: no password echoed`);
    t.equal(result.stdout, '', `${args.join(' ')}: nothing on stdout`);
    t.equal(await readFile(file, 'utf8'), before, `${args.join(' ')}: the file is unchanged`);
  }
  const missing = join(dir, 'none.json');
  for (const args of [['list'], ['passwd', 'app'], ['remove', 'app'], ['token', 'app']]) {
    t.same(
      await users(missing, args, 'pw\n'),
      {
        code: 1,
        stdout: '',
        stderr: `hati: no users file at ${missing} (hati users add creates it; --users-file or HATI_USERS_FILE names another)\n`,
      },
      `${args.join(' ')} on a missing file`,
    );
  }
  const broken = join(dir, 'broken.json');
  await writeFile(broken, '{"version": 1, "users": [{"name": "x", "password": "plain text"}]}');
  t.match(await users(broken, ['list']), {
    code: 1,
    stdout: '',
    stderr: /^hati: .*broken\.json: user 'x': 'password' must be a hash written by hati users/,
  });
  t.same(
    await runHati(['users', 'list'], { env: { HATI_USERS_FILE: file } }),
    { code: 0, stdout: 'app: no rights (password)\n', stderr: '' },
    'HATI_USERS_FILE names the file',
  );
});

t.test('on a terminal the password is typed twice and never echoed', async (t) => {
  const file = join(await tempDir(t), 'users.json');
  const session = async (args: string[], typed: string[]) => {
    const modes: boolean[] = [];
    const stdin = Object.assign(new PassThrough(), {
      isTTY: true,
      setRawMode: (raw: boolean) => {
        modes.push(raw);
        return stdin;
      },
    });
    const stdout = Object.assign(new PassThrough(), { isTTY: true });
    let out = '';
    let err = '';
    const done = main(['users', ...args, '--users-file', file], {
      stdout: (text) => {
        out += text;
      },
      stderr: (text) => {
        err += text;
      },
      env: {},
      terminal: { stdin, stdout },
    });
    for (const chunk of typed) {
      await delay(30);
      stdin.write(chunk);
    }
    return { code: await done, out, err, modes };
  };
  const typed = await session(['add', 'tty'], ['s3cr', 'et!\r', 'x\u007f', 's3cret!\r']);
  t.equal(typed.code, 0);
  t.equal(typed.out, '');
  t.equal(
    typed.err,
    `Password for 'tty': \nAgain: \nhati: added user 'tty' to ${file}: no rights\n${HINT}`,
    'prompts, and nothing typed is shown',
  );
  t.same(typed.modes, [true, false, true, false], 'raw mode is turned off again');
  t.match((await stored(file)).users, [{ name: 'tty', password: /^scrypt\$/ }]);

  const pasted = await session(['passwd', 'tty'], ['new one\rnew one\r']);
  t.equal(pasted.code, 0, 'both lines in one paste');

  const before = await readFile(file, 'utf8');
  const differ = await session(['passwd', 'tty'], ['one\r', 'two\r']);
  t.equal(differ.code, 1);
  t.match(differ.err, /\nhati: the two passwords differ; nothing changed\n$/);
  const interrupted = await session(['passwd', 'tty'], ['abc\u0003']);
  t.equal(interrupted.code, 1);
  t.match(interrupted.err, /\nhati: interrupted; nothing changed\n$/);
  t.same(interrupted.modes, [true, false]);
  const empty = await session(['passwd', 'tty'], ['\r']);
  t.equal(empty.code, 1);
  t.match(empty.err, /\nhati: an empty password is not allowed; nothing changed\n$/);
  t.equal(await readFile(file, 'utf8'), before, 'nothing changed');
});

t.test('a server logs the users in with their rights and re-reads the file on SIGHUP', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'users.json');
  t.equal(
    (await spawned(file, ['add', 'app', '--read', 'memory:cache:', '--write', 'memory:cache:'], 'app-pw\n')).code,
    0,
  );
  const hati = Hati.spawn(t, [
    '--tcp-host',
    '127.0.0.1',
    '--tcp-port',
    '0',
    '--data-dir',
    join(dir, 'data'),
    '--shards',
    '1',
    '--users-file',
    file,
  ]);
  const address = await hati.tcp();
  t.ok(hati.messages.includes(`clients must authenticate as the users of ${file}`), 'the credentials line');
  const port = String(address.port);

  const app = await RawClient.open(t, address);
  t.match(await app.command('GET', 'memory', 'cache:a'), { code: 'NOAUTH' }, 'nothing before AUTH');
  t.equal(await app.command('AUTH', 'app', 'app-pw'), 'OK');
  t.equal(text(await app.command('ACL', 'WHOAMI')), 'app');
  t.equal(await app.command('SET', 'memory', '0', 'cache:a', '1'), 'OK', 'a key its rule names');
  t.match(await app.command('SET', 'memory', '0', 'other', '1'), { code: 'NOPERM' }, 'a key outside it');
  t.match(await app.command('SET', 'hdd', '0', 'cache:a', '1'), { code: 'NOPERM' }, 'another storage type');
  t.match(await app.command('ACL', 'USERS'), { code: 'NOPERM' }, 'not an admin');

  // hati client and redis-cli log in as the user the same way.
  const env = { HATI_PASSWORD: 'app-pw' };
  t.same(await runHati(['client', '-p', port, '--user', 'app', 'GET', 'memory', 'cache:a'], { env }), {
    code: 0,
    stdout: '1\n',
    stderr: '',
  });
  t.match(await runHati(['client', '-p', port, '--user', 'app', 'SET', 'memory', '0', 'x', '1'], { env }), {
    code: 1,
    stdout: '',
    stderr: /^\(error\) NOPERM /,
  });
  t.same(
    await run('redis-cli', [
      '-p',
      port,
      '--user',
      'app',
      '--pass',
      'app-pw',
      '--no-auth-warning',
      'GET',
      'memory',
      'cache:a',
    ]),
    { code: 0, stdout: '1\n', stderr: '' },
    'redis-cli --user',
  );

  // A user added while the server runs logs in after SIGHUP; connections already open go on.
  t.equal((await spawned(file, ['add', 'late', '--read', '*'], 'late-pw\n')).code, 0);
  const late = await RawClient.open(t, address);
  t.match(await late.command('AUTH', 'late', 'late-pw'), { code: 'WRONGPASS' }, 'not before SIGHUP');
  t.equal(await hati.hangup(), 'SIGHUP: reloaded users');
  t.equal(await late.command('AUTH', 'late', 'late-pw'), 'OK');
  t.equal(text(await late.command('GET', 'memory', 'cache:a')), '1');
  t.equal(await app.command('SET', 'memory', '0', 'cache:b', '2'), 'OK', 'the connection opened before goes on');

  // A broken file: the reload fails and says so; the users stay as they were.
  const good = await readFile(file, 'utf8');
  await writeFile(file, '{"version": 1, "users": [{"name": "x", "password": "plain text"}]}');
  t.match(
    await hati.hangup(),
    /^SIGHUP: reload failed, nothing changed: .*user 'x': 'password' must be a hash written by hati users/,
  );
  t.equal(await app.command('SET', 'memory', '0', 'cache:c', '3'), 'OK', 'the old users still in effect');
  await writeFile(file, good);

  // A removed user: after SIGHUP its connection is closed and it cannot log in again.
  t.equal((await spawned(file, ['remove', 'app'])).code, 0);
  t.equal(await hati.hangup(), 'SIGHUP: reloaded users');
  await within(app.closed(), 5000, () => "the removed user's connection to close");
  const again = await RawClient.open(t, address);
  t.match(await again.command('AUTH', 'app', 'app-pw'), { code: 'WRONGPASS' });
  t.equal(text(await late.command('GET', 'memory', 'cache:b')), '2', 'the other user goes on');

  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
  for (const password of ['app-pw', 'late-pw']) {
    t.notMatch(hati.stdout + hati.stderr, password, `${password} never printed by the server`);
  }
});
