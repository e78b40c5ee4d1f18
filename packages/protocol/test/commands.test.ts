import t from 'tap';
import {
  type CommandName,
  type CommandSpec,
  checkArity,
  commands,
  lookupCommand,
  ProtocolError,
  ProtocolErrorCode,
  unknownCommand,
} from '../src/index.js';

t.test('the table describes each command once', async (t) => {
  const expected: Record<string, [string, number, number, string]> = {
    SET: ['SET <type> <ttl> <key> <value>', 4, 4, 'status'],
    GET: ['GET <type> <key>', 2, 2, 'bulk'],
    HAS: ['HAS <type> <key>', 2, 2, 'boolean'],
    DELETE: ['DELETE <type> <key>', 2, 2, 'boolean'],
    FLUSHALL: ['FLUSHALL <type>', 1, 1, 'status'],
    COUNT: ['COUNT <type>', 1, 1, 'integer'],
    PING: ['PING [message]', 0, 1, 'status'],
    QUIT: ['QUIT', 0, 0, 'status'],
    STATS: ['STATS', 0, 0, 'json'],
    ECHO: ['ECHO <message>', 1, 1, 'bulk'],
    INFO: ['INFO [section]', 0, 1, 'bulk'],
    SELECT: ['SELECT <index>', 1, 1, 'status'],
  };
  t.same(Object.keys(commands).sort(), Object.keys(expected).sort());
  for (const [name, spec] of Object.entries(commands) as Array<[CommandName, CommandSpec]>) {
    const [syntax, minArgs, maxArgs, reply] = expected[name] as [string, number, number, string];
    t.equal(spec.name, name);
    t.equal(spec.syntax, syntax);
    t.equal(spec.minArgs, minArgs, `${name} minArgs`);
    t.equal(spec.maxArgs, maxArgs, `${name} maxArgs`);
    t.equal(spec.reply, reply, `${name} reply`);
    t.ok(spec.summary.length > 0 && !spec.summary.includes('\n'), `${name} has a one-line summary`);
    t.ok(Object.isFrozen(spec), `${name} is frozen`);
  }
  t.equal(commands.SET.inlineRest, 3);
  t.equal(commands.SET.args[3].name, 'value');
  t.same(
    commands.SET.args.map((arg) => arg.kind),
    ['storageType', 'ttl', 'key', 'value'],
  );
  t.same(
    commands.GET.args.map((arg) => arg.kind),
    ['storageType', 'key'],
  );
  t.equal(commands.PING.args[0].optional, true);
  t.equal(commands.GET.inlineRest, undefined);
});

t.test('lookupCommand is case-insensitive for strings and bytes', async (t) => {
  for (const name of ['GET', 'get', 'GeT', 'gEt']) {
    t.equal(lookupCommand(name), commands.GET, name);
    t.equal(lookupCommand(Buffer.from(name)), commands.GET, `${name} as a Buffer`);
    t.equal(lookupCommand(new Uint8Array(Buffer.from(name))), commands.GET, `${name} as a Uint8Array`);
  }
  for (const name of Object.keys(commands) as CommandName[]) {
    t.equal(lookupCommand(name.toLowerCase()), commands[name]);
    t.equal(lookupCommand(Buffer.from(name)), commands[name]);
  }
  t.equal(lookupCommand(Buffer.from('flushAll')), commands.FLUSHALL);
  t.equal(lookupCommand(Buffer.from('xxGETxx').subarray(2, 5)), commands.GET, 'a view');
});

t.test('lookupCommand: anything else is undefined', async (t) => {
  for (const name of ['', 'G', 'GE', 'GETX', 'FOO', 'GET ', ' GET', 'SETS', 'G\x00T', 'ſet', 'ǴET', 'x'.repeat(1000)]) {
    t.equal(lookupCommand(name), undefined, JSON.stringify(name));
    t.equal(lookupCommand(Buffer.from(name)), undefined, `${JSON.stringify(name)} as bytes`);
  }
  // Case folding is ASCII only: 'G' | 0x80 is not 'g'.
  t.equal(lookupCommand(Buffer.from([0xc7, 0x45, 0x54])), undefined);
  t.equal(lookupCommand(Buffer.from([0x47 + 0x20, 0x45, 0x54 + 0x20])), commands.GET);
  t.equal(lookupCommand(Buffer.from([0x47 - 0x20, 0x45, 0x54])), undefined, "'\\x27' is not 'G'");
});

t.test('checkArity', async (t) => {
  t.equal(checkArity(commands.GET, 2), undefined);
  t.equal(checkArity(commands.SET, 4), undefined);
  t.equal(checkArity(commands.PING, 0), undefined);
  t.equal(checkArity(commands.PING, 1), undefined);
  t.equal(checkArity(commands.QUIT, 0), undefined);
  const cases: Array<[CommandSpec, number, string]> = [
    [commands.GET, 1, "'GET' takes 2 arguments (GET <type> <key>), got 1"],
    [commands.GET, 3, "'GET' takes 2 arguments (GET <type> <key>), got 3"],
    [commands.SET, 3, "'SET' takes 4 arguments (SET <type> <ttl> <key> <value>), got 3"],
    [commands.COUNT, 0, "'COUNT' takes 1 argument (COUNT <type>), got 0"],
    [commands.PING, 2, "'PING' takes 0 to 1 arguments (PING [message]), got 2"],
    [commands.QUIT, 1, "'QUIT' takes 0 arguments (QUIT), got 1"],
  ];
  for (const [spec, count, message] of cases) {
    const error = checkArity(spec, count);
    t.ok(error instanceof ProtocolError);
    t.equal(error?.name, 'ProtocolError');
    t.equal(error?.code, ProtocolErrorCode.WRONG_ARITY);
    t.equal(error?.message, message);
  }
});

t.test('unknownCommand', async (t) => {
  const error = unknownCommand('FOO');
  t.ok(error instanceof ProtocolError);
  t.equal(error.code, 'UNKNOWN_COMMAND');
  t.equal(error.message, "unknown command 'FOO'");
  t.equal(unknownCommand(Buffer.from('foo bar')).message, "unknown command 'foo bar'", 'as sent');
  t.equal(unknownCommand(Buffer.from([0x41, 0, 0x0d, 0x0a, 0xff])).message, "unknown command 'A\\x00\\x0d\\x0a\\xff'");
  t.equal(unknownCommand("it's\\").message, "unknown command 'it\\'s\\\\'");
  t.equal(unknownCommand('héllo\x7f').message, "unknown command 'héllo\\x7f'");
  t.equal(unknownCommand('').message, "unknown command ''");
  const long = unknownCommand('x'.repeat(1000)).message;
  t.equal(long, `unknown command '${'x'.repeat(64)}...'`, 'truncated to 64 characters');
  t.equal(unknownCommand(Buffer.alloc(65, 'y')).message, `unknown command '${'y'.repeat(64)}...'`);
  t.equal(unknownCommand(Buffer.alloc(64, 'y')).message, `unknown command '${'y'.repeat(64)}'`);
});
