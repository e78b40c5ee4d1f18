// `hati client`: one-shot and piped modes from spawned processes, the prompt through main()
// with a terminal made of streams.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t, { type Test } from 'tap';
import { complete, helpText } from '../src/client-command.js';
import { main } from '../src/main.js';
import { BIN, Hati, tempDir } from './common/hati.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `hati client ...args`, with `input` piped to stdin (or an empty stdin). */
function client(args: string[], input = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, 'client', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function server(t: Test): Promise<{ port: string; socket: string; dir: string }> {
  const dir = await tempDir(t);
  const socket = join(dir, 'hati.sock');
  const hati = Hati.spawn(t, [
    '--tcp',
    '--tcp-host',
    '127.0.0.1',
    '--tcp-port',
    '0',
    '--unix',
    socket,
    '--data-dir',
    join(dir, 'data'),
  ]);
  const { port } = await hati.tcp();
  await hati.unix();
  return { port: String(port), socket, dir };
}

t.test('one-shot: prints the reply and exits 0, or the error on stderr and exits 1', async (t) => {
  const { port, socket } = await server(t);
  const at = ['--tcp-port', port];
  t.same(await client([...at, 'SET', 'memory', '0', 'greeting', 'hello', 'world']), {
    code: 0,
    stdout: 'OK\n',
    stderr: '',
  });
  t.same(
    await client([...at, 'GET', 'memory', 'greeting']),
    { code: 0, stdout: 'hello world\n', stderr: '' },
    'raw when piped',
  );
  t.same(await client([...at, '--no-raw', 'GET', 'memory', 'greeting']), {
    code: 0,
    stdout: '"hello world"\n',
    stderr: '',
  });
  t.same(await client([...at, '--no-raw', 'COUNT', 'memory']), { code: 0, stdout: '(integer) 1\n', stderr: '' });
  t.same(await client([...at, '--no-raw', 'GET', 'memory', 'missing']), { code: 0, stdout: '(nil)\n', stderr: '' });
  t.same(await client([...at, 'GET', 'ram', 'k']), {
    code: 1,
    stdout: '',
    stderr: "(error) STORAGE_TYPE_INVALID unknown storage type 'ram' (expected memory or hdd)\n",
  });
  t.match(
    await client([...at, 'SET', 'memory', '-1', 'k', 'v']),
    { code: 1, stderr: /^\(error\) TTL_INVALID / },
    'a -1 is an argument',
  );
  t.same(
    await client(['--unix', socket, 'HAS', 'memory', 'greeting']),
    { code: 0, stdout: '1\n', stderr: '' },
    'over the UNIX socket',
  );
  t.same(await client([...at, 'SET', 'hdd', '0', 'zero', '007']), { code: 0, stdout: 'OK\n', stderr: '' });
  t.same(
    await client([...at, 'GET', 'hdd', 'zero']),
    { code: 0, stdout: '007\n', stderr: '' },
    'numbers stay as typed',
  );
});

t.test('a server that is not there: one clear line, exit 1', async (t) => {
  t.same(await client(['--tcp-port', '1', 'PING']), {
    code: 1,
    stdout: '',
    stderr: 'hati: cannot connect to 127.0.0.1:1: ECONNREFUSED\n',
  });
});

t.test('piped: one command per line, in order; errors on stderr make the exit code 1', async (t) => {
  const { port } = await server(t);
  const input = [
    'SET memory 0 greeting hello world',
    'GET memory greeting',
    'SET hdd 0 "bin key" "a\\x00b\\nc"',
    'GET hdd "bin key"',
    '',
    'HAS hdd "bin key"',
    'BOGUS',
    'COUNT hdd',
  ].join('\n');
  const formatted = await client(['--tcp-port', port, '--no-raw'], input);
  t.equal(formatted.code, 1, 'one command failed');
  t.equal(
    formatted.stdout,
    ['OK', '"hello world"', 'OK', '"a\\x00b\\nc"', '(integer) 1', '(integer) 1', ''].join('\n'),
  );
  t.equal(formatted.stderr, "(error) UNKNOWN_COMMAND unknown command 'BOGUS'\n");
  const raw = await client(['--tcp-port', port], 'GET memory greeting\nCOUNT memory\n');
  t.same(raw, { code: 0, stdout: 'hello world\n1\n', stderr: '' });
});

t.test('the prompt: replies as redis-cli shows them, history kept between sessions', async (t) => {
  const { port, dir } = await server(t);
  const historyFile = join(dir, 'history');
  await writeFile(historyFile, 'PING\n');
  const session = async (lines: string[]) => {
    const stdin = Object.assign(new PassThrough(), { isTTY: true });
    const stdout = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
    let screen = '';
    stdout.setEncoding('utf8').on('data', (text: string) => {
      screen += text;
    });
    const errors: string[] = [];
    const done = main(['client', '--tcp-port', port], {
      stdout: () => {},
      stderr: (text) => errors.push(text),
      env: { HATI_HISTORY_FILE: historyFile },
      terminal: { stdin, stdout },
    });
    for (const line of lines) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      stdin.write(`${line}\r`);
    }
    const code = await done;
    return { code, screen, errors };
  };
  const first = await session([
    'SET memory 0 k "v 1"',
    'GET memory k',
    'HAS memory k',
    'GET memory nope',
    'GET ram k',
    'help',
    'quit',
  ]);
  t.equal(first.code, 0);
  t.same(first.errors, []);
  t.match(first.screen, `127.0.0.1:${port}> `, 'the prompt names the server');
  for (const shown of [
    'OK',
    '"v 1"',
    '(integer) 1',
    '(nil)',
    "(error) STORAGE_TYPE_INVALID unknown storage type 'ram'",
    'GET <type> <key>',
  ]) {
    t.ok(first.screen.includes(shown), `shows ${shown}`);
  }
  const history = (await readFile(historyFile, 'utf8')).trim().split('\n');
  t.same(history.slice(0, 2), ['PING', 'SET memory 0 k "v 1"'], 'earlier history first, new lines after');
  t.equal(history.at(-1), 'quit');
  // Up arrow recalls the last line of the previous session.
  const second = await session(['\u001b[A', 'exit']);
  t.equal(second.code, 0);
  t.ok(second.screen.includes('quit'), 'the previous session is in the history');
});

t.test('the prompt helps: help from the command table, tab completion', async (t) => {
  const help = helpText();
  for (const syntax of ['SET <type> <ttl> <key> <value>', 'GET <type> <key>', 'PING [message]', 'STATS']) {
    t.ok(help.includes(syntax), `help shows ${syntax}`);
  }
  t.same(complete('ge'), [['GET'], 'ge'], 'a command name, any case');
  t.same(complete('F'), [['FLUSHALL'], 'F']);
  t.same(complete('GET h'), [['hdd'], 'h'], 'a storage type after a command that takes one');
  t.same(complete('count M'), [['memory'], 'M']);
  t.same(complete('PING m'), [[], 'm'], 'nothing where no storage type goes');
  t.same(complete('GET memory k'), [[], 'k'], 'keys are not guessed');
});
