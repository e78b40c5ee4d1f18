// `hati start --config <file>` and `--print-config`: a YAML or TOML file of flag names, under
// HATI_* and the command line; its mistakes named with the key and the file. In-process
// (`main()` with a capturing Io): --print-config exits before anything starts.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { tempDir } from './common/hati.js';
import { inProcess as run } from './common/in-process.js';

/** Writes `text` to `<dir>/<name>` and returns its path. */
async function file(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

t.test('--print-config: file < HATI_* < command line < nothing else; defaults fill the rest', async (t) => {
  const dir = await tempDir(t);
  const config = await file(
    dir,
    'hati.yaml',
    [
      '# a comment',
      'tcp-port: 1111',
      'shards: 3',
      'hdd-durability: no',
      `data-dir: ${join(dir, 'data')}`,
      'rpc: true',
      'console: false',
      'rpc-cors-origins: [https://a.example, https://b.example]',
      'metrics-port: 9464',
      '',
    ].join('\n'),
  );
  const { code, stdout, stderr } = await run(['start', '--config', config, '--shards', '5', '--print-config'], {
    HATI_TCP_PORT: '2222',
    HATI_HDD_DURABILITY: 'always',
  });
  t.equal(code, 0);
  t.equal(stderr, '');
  t.match(stdout, /^# hati start: effective settings \(command line > HATI_\* > .*hati\.yaml > defaults\)\n/);
  t.same(parseYaml(stdout), {
    'tcp-host': '0.0.0.0',
    'tcp-port': 2222, // HATI_TCP_PORT over the file
    rpc: true,
    'rpc-host': '0.0.0.0',
    'rpc-port': 6767,
    'data-dir': join(dir, 'data'),
    'cpu-num': availableParallelism(),
    shards: 5, // the command line over the file
    'hdd-durability': 'always', // HATI_HDD_DURABILITY over the file
    'protected-mode': 'yes',
    'max-input-buffer': 1024 ** 3,
    'rpc-cors-origins': 'https://a.example,https://b.example', // a list in the file
    'rpc-hosts': '',
    'rpc-max-batch': 1000,
    'log-level': 'info',
    'log-format': 'text',
    'metrics-port': 9464,
    'metrics-host': '127.0.0.1',
    console: 'no', // YAML's false for a yes/no flag
  });
  t.equal(existsSync(join(dir, 'data')), false, 'nothing started: the data directory was not made');
});

t.test('HATI_CONFIG names the file; TOML prints as TOML; the output reads back the same', async (t) => {
  const dir = await tempDir(t);
  const config = await file(
    dir,
    'hati.toml',
    [
      'tcp = true',
      'tcp-host = "127.0.0.1"',
      'tcp-port = 5000',
      'unix = "/run/hati/hati.sock"',
      'log-format = "json"',
    ].join('\n'),
  );
  const first = await run(['start', '--print-config'], { HATI_CONFIG: config });
  t.equal(first.code, 0, first.stderr);
  const settings = parseToml(first.stdout);
  t.match(settings, {
    tcp: true,
    'tcp-host': '127.0.0.1',
    'tcp-port': 5000,
    unix: '/run/hati/hati.sock',
    'log-format': 'json',
  });
  const again = await file(dir, 'printed.toml', first.stdout);
  const second = await run(['start', '--config', again, '--print-config']);
  t.equal(second.code, 0, second.stderr);
  t.equal(second.stdout.split('\n').slice(1).join('\n'), first.stdout.split('\n').slice(1).join('\n'));
  t.equal(
    (await run(['start', '--config', config, '--print-config'], { HATI_CONFIG: join(dir, 'missing.yaml') })).code,
    0,
    '--config wins over HATI_CONFIG',
  );
});

t.test('--print-config never prints the password, wherever it comes from', async (t) => {
  const dir = await tempDir(t);
  const config = await file(dir, 'hati.yml', "password: 'from the file'\n");
  for (const [argv, env, secret] of [
    [['--config', config], {}, 'from the file'],
    [[], { HATI_PASSWORD: 'from the environment' }, 'from the environment'],
    [['--password', 'from the flag'], {}, 'from the flag'],
  ] as Array<[string[], NodeJS.ProcessEnv, string]>) {
    const { code, stdout } = await run(['start', ...argv, '--print-config'], env);
    t.equal(code, 0);
    t.match(stdout, /^password: <redacted>$/m, `${secret}: redacted`);
    t.notMatch(stdout, secret, `${secret}: not printed`);
  }
});

t.test('an unknown key: exit 2, naming the key, the file and the key it resembles', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string, string, string]> = [
    ['typo.yaml', 'tcp-prot: 5000\n', "unknown key 'tcp-prot'; did you mean tcp-port?"],
    ['camel.yaml', 'dataDir: /srv/hati\n', "unknown key 'dataDir'; did you mean data-dir?"],
    ['snake.toml', 'hdd_durability = "always"\n', "unknown key 'hdd_durability'; did you mean hdd-durability?"],
    [
      'far.yaml',
      'maxmemory: 1gb\n',
      "unknown key 'maxmemory'; the keys are the flags of hati start without -- (hati start --help lists them)",
    ],
    ['print.yaml', 'print-config: true\n', "'print-config' is for the command line only (--print-config), not a key"],
  ];
  for (const [name, text, message] of cases) {
    const path = await file(dir, name, text);
    const result = await run(['start', '--config', path]);
    t.equal(result.code, 2, `${name}: exit 2`);
    t.equal(result.stdout, '');
    t.match(result.stderr, `hati: --config ${path}: ${message}`, name);
    t.equal(result.stderr.split('\n').length, 2, `${name}: one line`);
  }
});

t.test('a value a flag would refuse: the flag’s own message', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string, string[]]> = [
    ['tcp-port: abc\n', ['--tcp-port', 'abc']],
    ['shards: 0\n', ['--shards', '0']],
    ['hdd-durability: sometimes\n', ['--hdd-durability', 'sometimes']],
    ['log-format: xml\n', ['--log-format', 'xml']],
    ['console: maybe\n', ['--console', 'maybe']],
    ['metrics-port: 70000\n', ['--metrics-port', '70000']],
    ['data-dir: ""\n', ['--data-dir', '']],
  ];
  for (const [text, flags] of cases) {
    const path = await file(dir, 'bad.yaml', text);
    const fromFile = await run(['start', '--config', path]);
    const fromFlag = await run(['start', ...flags]);
    t.equal(fromFile.code, 2, `${text.trim()}: exit 2`);
    t.match(fromFile.stderr, /^hati: /);
    t.equal(fromFile.stderr, fromFlag.stderr, `${text.trim()}: as ${flags.join(' ')} says`);
  }
});

t.test('values no flag takes, files that cannot be parsed or read: one line naming the file', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string, string, RegExp]> = [
    ['bool.yaml', 'tcp: "yes"\n', /: tcp must be true or false, got "yes"$/],
    ['table.yaml', 'tcp-host:\n  a: 1\n', /: tcp-host has a table of keys; it takes what --tcp-host takes$/],
    ['empty-value.yaml', 'tcp-port:\n', /: tcp-port has no value; it takes what --tcp-port takes$/],
    ['number.yaml', 'password: 1234\n', /: password must be a quoted string$/],
    ['list.yaml', '- tcp-port\n', /: expected keys and values \(tcp-port: 5000\), not a single value$/],
    ['broken.yaml', 'tcp-port: [\n', /^hati: --config \S+ is not valid YAML: .* at line \d+, column \d+$/],
    ['twice.yaml', 'shards: 1\nshards: 2\n', /is not valid YAML: Map keys must be unique at line 2, column 1$/],
    ['broken.toml', 'tcp-port = \n', /^hati: --config \S+ is not valid TOML: .* at line 1, column \d+$/],
  ];
  for (const [name, text, message] of cases) {
    const path = await file(dir, name, text);
    const result = await run(['start', '--config', path]);
    t.equal(result.code, 2, `${name}: exit 2`);
    t.match(result.stderr.trimEnd(), message, name);
    t.match(result.stderr, `--config ${path}`, `${name}: names the file`);
    t.equal(result.stderr.split('\n').length, 2, `${name}: one line`);
  }
  const missing = join(dir, 'missing.yaml');
  t.same(await run(['start', '--config', missing]), {
    code: 2,
    stdout: '',
    stderr: `hati: cannot read --config ${missing}: no such file (ENOENT)\n`,
  });
  const empty = await file(dir, 'empty.yaml', '# nothing set\n');
  const printed = await run(['start', '--config', empty, '--print-config']);
  t.equal(printed.code, 0, 'a file that sets nothing is fine');
  t.match(printed.stdout, /^tcp-port: 4242$/m);
  t.equal(
    (await run(['client', 'PING'], { HATI_CONFIG: missing })).stderr.includes('--config'),
    false,
    'only hati start reads it',
  );
});

t.test('docs/configuration.md has a row for every key: its flag and its variable', async (t) => {
  const doc = await readFile(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Every key'), doc.indexOf('\n## ', doc.indexOf('## Every key') + 1));
  const rows = [...section.matchAll(/^\| `([a-z-]+)` +\| `(--[a-z-]+)` +\| `(HATI_[A-Z_]+)` +\|/gm)];
  const help = (await run(['start', '--help'])).stdout;
  const flags = [...help.matchAll(/^ +--([a-z-]+) /gm)]
    .map((match) => match[1] as string)
    .filter((flag) => !['help', 'version', 'config', 'print-config'].includes(flag));
  t.same(rows.map((row) => row[1]).sort(), [...flags].sort(), 'the keys are the flags of hati start');
  for (const [, key, flag, variable] of rows) {
    t.equal(flag, `--${key}`, `${key}: its flag`);
    t.equal(variable, `HATI_${(key as string).toUpperCase().replaceAll('-', '_')}`, `${key}: its variable`);
  }
});
