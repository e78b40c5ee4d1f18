// `hati client`: one-shot and piped modes from spawned processes, the prompt through main()
// with a terminal made of streams.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { commands, ReplyMap, ReplyPush } from '@hati/protocol';
import { type Run, run } from '@hati/test-helpers';
import t, { type Test } from 'tap';
import { complete, helpText, joinRest } from '../src/client-command.js';
import { main } from '../src/main.js';
import { formatReply, rawReply } from '../src/reply-format.js';
import { BIN, Hati, tempDir, within } from './common/hati.js';

/** Runs `hati client ...args`, with `input` piped to stdin (or an empty stdin). */
function client(args: string[], input = ''): Promise<Run> {
  return run('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, 'client', ...args], { input });
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
  for (const syntax of [
    'SET <type> <ttl> <key> <value>',
    'GET <type> <key>',
    'PING [message]',
    'STATS',
    'PUBLISH <router> <routingKey> [DELAY <delayMs>] [TTL <ttlMs>] [ID <id>] <message>',
  ]) {
    t.ok(help.includes(syntax), `help shows ${syntax}`);
  }
  t.same(complete('ge'), [['GET', 'GETQUEUE', 'GETROUTER'], 'ge'], 'a command name, any case');
  t.same(complete('F'), [['FLUSHALL', 'FETCH', 'FLUSH'], 'F']);
  t.same(complete('GET h'), [['hdd'], 'h'], 'a storage type after a command that takes one');
  t.same(complete('count M'), [['memory'], 'M']);
  t.same(complete('PING m'), [[], 'm'], 'nothing where no storage type goes');
  t.same(complete('GET memory k'), [[], 'k'], 'keys are not guessed');
});

/** The prompt on a terminal made of streams: type into it, wait for what it shows. */
class Prompt {
  readonly stdin = Object.assign(new PassThrough(), { isTTY: true });
  readonly stdout = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
  /** What was written, with readline's cursor moves and line clearing. */
  written = '';
  readonly errors: string[] = [];
  readonly done: Promise<number>;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.stdout.setEncoding('utf8').on('data', (text: string) => {
      this.written += text;
    });
    this.done = main(['client', ...args], {
      stdout: () => {},
      stderr: (text) => this.errors.push(text),
      env,
      terminal: { stdin: this.stdin, stdout: this.stdout },
    });
  }

  /** The text shown, without escape sequences. */
  get screen(): string {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal escape sequences
    return this.written.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
  }

  /** Types `keys` (end a line with \r). */
  async type(keys: string): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 50));
    this.stdin.write(keys);
  }

  /** Waits until the screen, from index `from` on, matches `pattern`; returns the screen from `from`. */
  async waitFor(pattern: RegExp, from = 0): Promise<string> {
    const deadline = Date.now() + 10_000;
    while (!pattern.test(this.screen.slice(from))) {
      if (Date.now() > deadline) throw new Error(`the prompt showed no ${pattern}; screen:\n${this.screen}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.screen.slice(from);
  }

  exit(): Promise<number> {
    return within(this.done, 5_000, () => `the prompt's exit; screen:\n${this.screen}`);
  }
}

t.test('-h and -p as in redis-cli, -s for the UNIX socket; flags end at the command', async (t) => {
  const { port, socket } = await server(t);
  t.same(await client(['-h', '127.0.0.1', '-p', port, 'SET', 'memory', '0', 'flag', '-p']), {
    code: 0,
    stdout: 'OK\n',
    stderr: '',
  });
  t.same(
    await client(['-p', port, 'GET', 'memory', 'flag']),
    { code: 0, stdout: '-p\n', stderr: '' },
    'a -p after the command is an argument of the command',
  );
  t.same(await client(['-s', socket, 'HAS', 'memory', 'flag']), { code: 0, stdout: '1\n', stderr: '' });
  t.same(await client(['-h', '127.0.0.1', '-p', '1', 'PING']), {
    code: 1,
    stdout: '',
    stderr: 'hati: cannot connect to 127.0.0.1:1: ECONNREFUSED\n',
  });
  const help = await client(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^ +-h, --tcp-host +Host of the server/m, '--help documents -h');
  t.match(help.stdout, /^ +-p, --tcp-port +Port of the server/m, '--help documents -p');
});

t.test('hati client help <command>: syntax and summary from the command table, no server needed', async (t) => {
  t.same(await client(['-p', '1', 'help', 'SET']), {
    code: 0,
    stdout: `SET <type> <ttl> <key> <value> [NX|XX]\n  ${commands.SET.summary}\n`,
    stderr: '',
  });
  const setname = await client(['-p', '1', 'help', 'client', 'setname']);
  t.equal(setname.stdout, `CLIENT SETNAME <connection-name>\n  ${commands.CLIENT.subcommands?.SETNAME?.summary}\n`);
  const clientHelp = await client(['-p', '1', 'help', 'CLIENT']);
  t.match(clientHelp.stdout, /^CLIENT <ID\|SETNAME\|GETNAME\|SETINFO\|INFO\|LIST> \[arguments\]\n/);
  t.match(clientHelp.stdout, /\nCLIENT LIST\n {2}Replies one line per client connection/, 'and its subcommands');
  t.same(await client(['-p', '1', 'help', 'get']), {
    code: 0,
    stdout: "GET <type> <key>\n  Returns a key's value, or null when it is missing or expired.\n",
    stderr: '',
  });
  const all = await client(['-p', '1', 'help']);
  t.equal(all.code, 0);
  t.equal(all.stdout, helpText());
  t.same(await client(['-p', '1', 'help', 'BOGUS']), {
    code: 1,
    stdout: '',
    stderr: "hati: no command 'BOGUS'; help lists them\n",
  });
});

t.test('JSON replies (STATS) are indented when formatted, one line when raw', async (t) => {
  const { port } = await server(t);
  const raw = await client(['-p', port, 'STATS']);
  t.equal(raw.code, 0);
  t.equal(raw.stdout.split('\n').length, 2, 'raw: one line');
  t.ok(JSON.parse(raw.stdout).connections, 'raw: the JSON as sent');
  const formatted = await client(['-p', port, '--no-raw', 'STATS']);
  t.equal(formatted.code, 0);
  t.match(formatted.stdout, /^\{\n {2}"[A-Za-z]+": /, 'formatted: indented');
  t.ok(JSON.parse(formatted.stdout).connections, 'formatted: still JSON');
  const piped = await client(['-p', port], 'STATS\n');
  t.equal(piped.stdout.split('\n').length, 2, 'piped: one line');
});

t.test('the prompt: help <command>, STATS indented, Ctrl-D leaves on a new line', async (t) => {
  const { port, dir } = await server(t);
  const prompt = new Prompt(['-p', port], { HATI_HISTORY_FILE: join(dir, 'history') });
  const ready = `127.0.0.1:${port}> `;
  await prompt.waitFor(new RegExp(`${ready}$`));
  let from = prompt.screen.length;
  await prompt.type('help get\r');
  t.match(
    await prompt.waitFor(new RegExp(`${ready}$`), from),
    "GET <type> <key>\n  Returns a key's value, or null when it is missing or expired.\n",
  );
  from = prompt.screen.length;
  await prompt.type('help bogus\r');
  t.match(await prompt.waitFor(new RegExp(`${ready}$`), from), "(error) no command 'bogus'; help lists them\n");
  from = prompt.screen.length;
  await prompt.type('STATS\r');
  const stats = await prompt.waitFor(new RegExp(`${ready}$`), from);
  t.match(stats, /\n\{\n {2}"[A-Za-z]+": [\s\S]*\n\}\n/, 'indented JSON');
  await prompt.type('\u0004');
  t.equal(await prompt.exit(), 0);
  t.ok(prompt.screen.endsWith(`${ready}\n`), 'a newline after the prompt: the shell prompt starts on its own line');
  t.same(prompt.errors, []);
});

t.test('the prompt: Ctrl-C clears a typed line, and on an empty line leaves on a new line', async (t) => {
  const { port, dir } = await server(t);
  const prompt = new Prompt(['-p', port], { HATI_HISTORY_FILE: join(dir, 'history') });
  const ready = `127.0.0.1:${port}> `;
  await prompt.waitFor(new RegExp(`${ready}$`));
  await prompt.type('FLUSHALL memory');
  await prompt.type('\u0003');
  await prompt.type('PING\r');
  await prompt.waitFor(/PONG\n/);
  t.notMatch(prompt.screen, /ERR|error/, 'the cleared line was not sent');
  await prompt.type('\u0003');
  t.equal(await prompt.exit(), 0);
  t.ok(prompt.screen.endsWith(`${ready}\n`), 'a newline after the prompt');
});

t.test('the prompt: not connected while the server is down, reconnects when it is back', async (t) => {
  const dir = await tempDir(t);
  const args = ['--tcp-host', '127.0.0.1', '--data-dir', join(dir, 'data')];
  const first = Hati.spawn(t, [...args, '--tcp-port', '0']);
  const port = String((await first.tcp()).port);
  const prompt = new Prompt(['-p', port], { HATI_HISTORY_FILE: join(dir, 'history') });
  const ready = `127.0.0.1:${port}> `;
  await prompt.waitFor(new RegExp(`${ready}$`));
  await prompt.type('SET hdd 0 k before\r');
  await prompt.waitFor(/OK\n/);

  first.child.kill('SIGTERM');
  t.same(await first.waitExit(), { code: 0, signal: null });
  let from = prompt.screen.length;
  await prompt.type('GET hdd k\r');
  t.match(
    await prompt.waitFor(/not connected> $/, from),
    `hati: cannot connect to 127.0.0.1:${port}: ECONNREFUSED\nnot connected> `,
    'the error, then the not-connected prompt',
  );

  const second = Hati.spawn(t, [...args, '--tcp-port', port]);
  await second.tcp();
  from = prompt.screen.length;
  await prompt.type('GET hdd k\r');
  t.match(await prompt.waitFor(new RegExp(`${ready}$`), from), '"before"\n', 'reconnected: the command ran');
  await prompt.type('quit\r');
  t.equal(await prompt.exit(), 0);
  t.same(prompt.errors, []);
  second.child.kill('SIGTERM');
  t.same(await second.waitExit(), { code: 0, signal: null });
});

t.test('the prompt opens when the server is down, as not connected', async (t) => {
  const dir = await tempDir(t);
  const prompt = new Prompt(['-p', '1'], { HATI_HISTORY_FILE: join(dir, 'history') });
  await prompt.waitFor(/not connected> $/);
  t.same(prompt.errors, ['hati: cannot connect to 127.0.0.1:1: ECONNREFUSED\n']);
  await prompt.type('PING\r');
  t.match(await prompt.waitFor(/ECONNREFUSED\nnot connected> $/), 'not connected> ');
  await prompt.type('exit\r');
  t.equal(await prompt.exit(), 0);
});

t.test('shell words: the value takes the rest, unless what follows are flag options', async (t) => {
  t.same(joinRest(['SET', 'memory', '0', 'k', 'hello', 'world']), ['SET', 'memory', '0', 'k', 'hello world']);
  t.same(joinRest(['SET', 'memory', '0', 'k', 'v', 'nx']), ['SET', 'memory', '0', 'k', 'v', 'nx']);
  t.same(joinRest(['SET', 'memory', '0', 'k', 'v', 'NX', 'more']), ['SET', 'memory', '0', 'k', 'v NX more']);
  t.same(joinRest(['GET', 'memory', 'a', 'b']), ['GET', 'memory', 'a', 'b'], 'only SET and PUBLISH take the rest');
  t.same(joinRest(['PUBLISH', 'r', 'k', 'hello', 'world']), ['PUBLISH', 'r', 'k', 'hello world']);
  t.same(
    joinRest(['PUBLISH', 'r', 'k', 'delay', '500', 'TTL', '9', 'hello', 'world']),
    ['PUBLISH', 'r', 'k', 'delay', '500', 'TTL', '9', 'hello world'],
    "PUBLISH's options before the message stay words",
  );
  t.same(joinRest(['PUBLISH', 'r', 'k', 'DELAY', '5']), ['PUBLISH', 'r', 'k', 'DELAY 5'], 'nothing left: a message');
  t.same(complete('CLIENT SET'), [['SETNAME', 'SETINFO'], 'SET'], 'subcommands complete');
});

t.test('RESP3 replies print as redis-cli -3 prints them', async (t) => {
  const map = new ReplyMap([
    ['server', Buffer.from('hati')],
    ['modules', []],
  ]);
  t.equal(formatReply(map), '1# "server" => "hati"\n2# "modules" => (empty array)');
  t.equal(formatReply(true), '(true)');
  t.equal(formatReply(1.5), '(double) 1.5');
  t.equal(formatReply(12345678901234567890n), '(big number) 12345678901234567890');
  t.equal(
    formatReply(new ReplyPush([Buffer.from('message'), Buffer.from('ch'), Buffer.from('x')])),
    '1) "message"\n2) "ch"\n3) "x"',
  );
  t.equal(formatReply([[Buffer.from('a'), Buffer.from('b')], Buffer.from('c')]), '1) 1) "a"\n   2) "b"\n2) "c"');
  t.equal(rawReply(map).toString(), 'server\nhati\nmodules\n');
});

/**
 * `hati client --raw <command>` left running, as a user leaves SUBSCRIBE or CONSUME: what it
 * printed so far, a wait for some text, and Ctrl-C (which must end it with exit 0).
 */
function oneShot(t: Test, port: string, command: string[]) {
  const child = spawn(process.execPath, [BIN, 'client', '-p', port, '--raw', ...command], {
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.teardown(() => child.kill('SIGKILL'));
  const shown = { out: '' };
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    shown.out += text;
  });
  const printed = async (text: string, what: string) => {
    const until = async () => {
      while (!shown.out.includes(text)) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    await within(until(), 10_000, () => `${what}; got ${JSON.stringify(shown.out)}`);
  };
  const interrupt = async () => {
    child.kill('SIGINT');
    return new Promise((resolve) => child.once('exit', resolve));
  };
  return { shown, printed, interrupt };
}

t.test('one-shot SUBSCRIBE prints keyspace events until the connection ends', async (t) => {
  const { port } = await server(t);
  const running = oneShot(t, port, ['SUBSCRIBE', '__keyevent@memory__:set']);
  await running.printed('subscribe', 'the confirmation');
  t.equal((await client(['-p', port, 'SET', 'memory', '0', 'watched', 'x'])).code, 0);
  await running.printed('watched', 'the message');
  t.equal(running.shown.out, 'subscribe\n__keyevent@memory__:set\n1\nmessage\n__keyevent@memory__:set\nwatched\n');
  t.equal(await running.interrupt(), 0, 'Ctrl-C ends it with exit 0');
});

t.test('one-shot CONSUME prints deliveries until Ctrl-C', async (t) => {
  const { port } = await server(t);
  for (const args of [
    ['CREATEROUTER', 'r', 'direct'],
    ['CREATEQUEUE', 'q', 'memory'],
    ['BIND', 'q', 'r', 'k'],
  ]) {
    t.equal((await client(['-p', port, ...args])).code, 0);
  }
  // One message waits already: it is pushed right behind CONSUME's reply, and prints after it.
  t.equal((await client(['-p', port, 'PUBLISH', 'r', 'k', 'waiting'])).code, 0);
  const running = oneShot(t, port, ['CONSUME', 'q', '5']);
  await running.printed('waiting', 'the tag and the waiting delivery');
  t.equal((await client(['-p', port, 'PUBLISH', 'r', 'k', 'hello', 'world'])).code, 0);
  await running.printed('hello world', 'the delivery');
  t.equal(
    running.shown.out,
    'ctag-1\ndelivery\nctag-1\nq\n1\n1\nk\nwaiting\ndelivery\nctag-1\nq\n2\n1\nk\nhello world\n',
  );
  t.equal(await running.interrupt(), 0, 'Ctrl-C ends it with exit 0');
});
