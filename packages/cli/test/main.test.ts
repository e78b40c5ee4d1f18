// `main()` called in-process with a capturing Io: help text, usage errors and their exit codes.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../src/main.js';
import { messages, tempDir } from './common/hati.js';
import { inProcess as run } from './common/in-process.js';

const FLAGS = [
  '--tcp',
  '--tcp-host',
  '--tcp-port',
  '--unix',
  '--rpc',
  '--rpc-host',
  '--rpc-port',
  '--data-dir',
  '--cpu-num',
  '--shards',
  '--hdd-durability',
  '--log-level',
  '--log-format',
  '--config',
  '--print-config',
  '--metrics-port',
  '--metrics-host',
  '--console',
  '--password',
  '--password-file',
  '--users-file',
  '--tcp-tls',
  '--rpc-tls',
  '--tls-cert',
  '--tls-key',
  '--tls-ca',
  '--tls-auth-clients',
];

t.test('start --help documents every flag and the HATI_ environment rule', async (t) => {
  const { code, stdout, stderr } = await run(['start', '--help']);
  t.equal(code, 0);
  t.equal(stderr, '');
  t.match(stdout, /^hati start\n/);
  for (const flag of FLAGS) t.match(stdout, new RegExp(`^ +${flag} +\\S`, 'm'), `documents ${flag}`);
  t.match(stdout, /HATI_<FLAG>, e\.g\. HATI_TCP_PORT=5000/);
  t.match(stdout, /Without --tcp, --rpc or --unix, the TCP listener starts/);
  t.match(stdout, /--tcp-port .*\[default: 4242\]/);
  t.match(stdout, /--rpc-port .*\[default: 6767\]/);
  t.match(stdout, /--hdd-durability[\s\S]*\[choices: "always", "everysec", "no"\] \[default: "everysec"\]/);
  t.match(stdout, /--log-level[\s\S]*\[choices: "error", "warn", "info", "debug"\] \[default: "info"\]/);
});

t.test('--help names the start command and exits 0', async (t) => {
  const { code, stdout, stderr } = await run(['--help']);
  t.equal(code, 0);
  t.equal(stderr, '');
  t.match(stdout, /^hati <command>\n/);
  t.match(stdout, /^ +hati start +Start a Hati server$/m);
  t.match(stdout, /^ +hati client \[command\.\.\] +Talk to a Hati server/m);
});

t.test('--version prints the package version', async (t) => {
  const { code, stdout } = await run(['--version']);
  t.equal(code, 0);
  t.equal(stdout, '0.1.0\n');
});

// Every case exits 2 with a message naming the problem, then the usage hint, before any
// server starts. The data dir is a regular file: if a case wrongly reached the server, it
// fails to open the store instead of leaving a server running inside the test process.
t.test('invalid values exit 2 with a clear message', async (t) => {
  const dir = await tempDir(t);
  const notADir = join(dir, 'file');
  await writeFile(notADir, 'not a directory');
  const cases: Array<[string[], RegExp]> = [
    [['--tcp-port', 'abc'], /^hati: --tcp-port must be an integer from 0 to 65535, got 'abc'$/m],
    [['--tcp-port', '70000'], /^hati: --tcp-port must be an integer from 0 to 65535, got '70000'$/m],
    [['--rpc-port', '-1'], /^hati: --rpc-port must be an integer from 0 to 65535, got '-1'$/m],
    [['--cpu-num', '0'], /^hati: --cpu-num must be an integer from 1 to 1024, got '0'$/m],
    [['--cpu-num', '2000'], /^hati: --cpu-num must be an integer from 1 to 1024, got '2000'$/m],
    [['--cpu-num', 'x'], /^hati: --cpu-num must be an integer from 1 to 1024, got 'x'$/m],
    [['--cpu-num', '1.5'], /^hati: --cpu-num must be an integer from 1 to 1024, got '1.5'$/m],
    [['--shards', '0'], /^hati: --shards must be an integer from 1 to 1024, got '0'$/m],
    [['--tcp-port'], /^hati: Not enough arguments following: tcp-port$/m],
  ];
  for (const [flags, message] of cases) {
    const { code, stdout, stderr } = await run(['start', ...flags, '--data-dir', notADir]);
    t.equal(code, 2, `${flags.join(' ')}: exit code`);
    t.match(stderr, message, `${flags.join(' ')}: message`);
    t.match(stderr, /^Run 'hati --help' for usage\.\n$/m, `${flags.join(' ')}: usage hint`);
    t.equal(stdout, '', `${flags.join(' ')}: nothing starts`);
  }
});

t.test('a value outside the choices, or an unknown flag, exits 2 with a clear message', async (t) => {
  const dir = await tempDir(t);
  const notADir = join(dir, 'file');
  await writeFile(notADir, 'not a directory');
  const cases: Array<[string[], RegExp]> = [
    [
      ['--hdd-durability', 'sometimes'],
      /^hati: Invalid values:\n {2}Argument: hdd-durability, Given: "sometimes", Choices: "always", "everysec", "no"$/m,
    ],
    [
      ['--log-level', 'loud'],
      /^hati: Invalid values:\n {2}Argument: log-level, Given: "loud", Choices: "error", "warn", "info", "debug"$/m,
    ],
    [['--bogus'], /^hati: Unknown argument: bogus$/m],
  ];
  for (const [flags, message] of cases) {
    const { code, stdout, stderr } = await run(['start', ...flags, '--tcp-port', '0', '--data-dir', notADir]);
    t.equal(code, 2, `${flags.join(' ')}: exit code`);
    t.match(stderr, message, `${flags.join(' ')}: message`);
    t.equal(stdout, '', `${flags.join(' ')}: nothing starts`);
  }
});

t.test('an unknown command exits 2 and names it', async (t) => {
  const { code, stdout, stderr } = await run(['stop']);
  t.equal(code, 2);
  t.equal(stdout, '');
  t.equal(stderr, "hati: unknown command 'stop': did you mean start?\nRun 'hati --help' for usage.\n");
});

t.test('no command exits 2 and names the command', async (t) => {
  const { code, stdout, stderr } = await run([]);
  t.equal(code, 2);
  t.equal(stdout, '');
  t.equal(
    stderr,
    "hati: name a command: hati start, hati client, hati backup, hati stats, hati users or hati tls\nRun 'hati --help' for usage.\n",
  );
});

t.test('Io.env is where HATI_* variables are read from', async (t) => {
  const dir = await tempDir(t);
  const notADir = join(dir, 'file');
  await writeFile(notADir, 'not a directory');
  // Without the variable the run reaches the store, which cannot open a file as a directory.
  t.equal((await run(['start', '--data-dir', notADir], {})).code, 1);
  const { code, stderr } = await run(['start', '--data-dir', notADir], { HATI_TCP_PORT: 'abc' });
  t.equal(code, 2, 'HATI_TCP_PORT=abc in io.env is a usage error');
  t.match(stderr, /--tcp-port must be an integer from 0 to 65535, got 'abc'/, 'message');
});

t.test('a HATI_* variable counts for the commands that have the flag, and no other', async (t) => {
  // HATI_DATA_DIR is for hati start; it used to make every other command a usage error.
  const env = { HATI_DATA_DIR: '/nowhere', HATI_TLS_AUTH_CLIENTS: 'bogus', HATI_USERS_FILE: '/no/such/users.json' };
  t.same(await run(['client', 'help', 'PING']).then((r) => r.code), 0);
  t.same((await run(['client', 'help', 'PING'], env)).stderr, '', 'hati client ignores the start flags');
  t.same(await run(['tls', '--help'], env).then((r) => r.code), 0);
  t.match(await run(['users', 'list'], env), {
    code: 1,
    stderr: /^hati: no users file at \/no\/such\/users\.json /,
  });
  t.match(await run(['start', '--data-dir', '/nowhere'], env), {
    code: 2,
    stderr: /Argument: tls-auth-clients, Given: "bogus", Choices: "yes", "no", "optional"/,
  });
});

t.test('hati help start, hati start -h and hati start --help print the same, exit 0', async (t) => {
  const expected = await run(['start', '--help']);
  t.match(expected.stdout, /^hati start\n/);
  for (const argv of [
    ['help', 'start'],
    ['start', '-h'],
  ]) {
    t.same(await run(argv), { code: 0, stdout: expected.stdout, stderr: '' }, argv.join(' '));
  }
  const client = await run(['client', '--help']);
  t.match(client.stdout, /^hati client \[command\.\.\]\n/);
  t.same(await run(['help', 'client']), { code: 0, stdout: client.stdout, stderr: '' }, 'help client');
  const top = await run(['--help']);
  for (const argv of [['help'], ['-h']]) {
    t.same(await run(argv), { code: 0, stdout: top.stdout, stderr: '' }, argv.join(' '));
  }
  t.match(top.stdout, /^ +hati help \[command\] +Show the help of a command/m, '--help lists help');
  t.match(top.stdout, /^ +hati users +Edit a users file/m, '--help lists users');
  t.match(top.stdout, /^ +hati tls +Make certificates for TLS/m, '--help lists tls');
  const users = await run(['users', 'add', '--help']);
  t.same(await run(['help', 'users', 'add']), { code: 0, stdout: users.stdout, stderr: '' }, 'help users add');
  t.match(users.stdout, /^hati users add <name>\n/);
});

t.test('a typo of a command: "did you mean", exit 2', async (t) => {
  for (const [argv, meant] of [
    [['strat'], 'start'],
    [['strat', '--tcp-port', '0'], 'start'],
    [['clinet', 'PING'], 'client'],
    [['help', 'strat'], 'start'],
  ] as Array<[string[], string]>) {
    t.same(
      await run(argv),
      {
        code: 2,
        stdout: '',
        stderr: `hati: unknown command '${argv[0] === 'help' ? argv[1] : argv[0]}': did you mean ${meant}?\nRun 'hati --help' for usage.\n`,
      },
      argv.join(' '),
    );
  }
});

t.test('--data-dir "" (or HATI_DATA_DIR="") is a usage error, not the working directory', async (t) => {
  const message =
    "hati: --data-dir must name a directory, got '' (an empty path would mean the working directory)\nRun 'hati --help' for usage.\n";
  t.same(await run(['start', '--data-dir', '']), { code: 2, stdout: '', stderr: message });
  t.same(await run(['start', '--data-dir', '  ']), { code: 2, stdout: '', stderr: message.replace("''", "'  '") });
  t.same(await run(['start'], { HATI_DATA_DIR: '' }), { code: 2, stdout: '', stderr: message });
  t.same(await run(['start', '--data-dir']), {
    code: 2,
    stdout: '',
    stderr: "hati: Not enough arguments following: data-dir\nRun 'hati --help' for usage.\n",
  });
});

t.test('a signal held while the modules loaded stops hati start before the store opens', async (t) => {
  // bin.cts holds SIGINT/SIGTERM until main() runs and hands them over as io.heldSignal.
  const dir = await tempDir(t);
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['start', '--tcp-host', '127.0.0.1', '--tcp-port', '0', '--data-dir', join(dir, 'data')], {
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    env: {},
    heldSignal: () => 'SIGTERM',
  });
  t.equal(code, 0);
  t.same(messages(err.join('')).slice(-2), ['SIGTERM during start-up: stopping', 'stopped']);
  t.notMatch(err.join(''), /listening/);
  t.same(out, [], 'nothing on stdout');
  t.equal(existsSync(join(dir, 'data')), false, 'the store was not opened');
});
