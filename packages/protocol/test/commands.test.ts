import t from 'tap';
import {
  allCommands,
  type CommandName,
  type CommandSpec,
  checkArity,
  commands,
  lookupCommand,
  lookupSubcommand,
  ProtocolError,
  ProtocolErrorCode,
  readOptions,
  unknownCommand,
  unknownSubcommand,
} from '../src/index.js';

t.test('the table describes each command once', async (t) => {
  const expected: Record<string, [string, number, number, string]> = {
    SET: ['SET <type> <ttl> <key> <value> [NX|XX]', 4, 5, 'stored'],
    GET: ['GET <type> <key>', 2, 2, 'bulk'],
    HAS: ['HAS <type> <key>', 2, 2, 'boolean'],
    DELETE: ['DELETE <type> <key>', 2, 2, 'boolean'],
    FLUSHALL: ['FLUSHALL <type>', 1, 1, 'status'],
    COUNT: ['COUNT <type>', 1, 1, 'integer'],
    TTL: ['TTL <type> <key>', 2, 2, 'integer'],
    EXPIRE: ['EXPIRE <type> <key> <ttl>', 3, 3, 'boolean'],
    SCAN: ['SCAN <type> <cursor> [MATCH <pattern>] [COUNT <count>] [TYPE <storage-type>]', 1, 8, 'scan'],
    KEYS: ['KEYS <type> <pattern>', 2, 2, 'keys'],
    INCR: ['INCR <type> <key>', 2, 2, 'integer'],
    INCRBY: ['INCRBY <type> <key> <delta>', 3, 3, 'integer'],
    MGET: ['MGET <type> <key> [<key> ...]', 2, Number.POSITIVE_INFINITY, 'bulks'],
    MSET: ['MSET <type> <key> <value> [<key> <value> ...]', 3, Number.POSITIVE_INFINITY, 'status'],
    DBSIZE: ['DBSIZE [type]', 0, 1, 'integer'],
    PING: ['PING [message]', 0, 1, 'status'],
    ECHO: ['ECHO <message>', 1, 1, 'bulk'],
    AUTH: ['AUTH <username-or-password> [password]', 1, 2, 'status'],
    ACL: ['ACL <WHOAMI|USERS|LOAD> [arguments]', 1, Number.POSITIVE_INFINITY, 'custom'],
    BACKUP: ['BACKUP <BEGIN|NEXT|END|LOAD> [arguments]', 1, Number.POSITIVE_INFINITY, 'custom'],
    QUIT: ['QUIT', 0, 0, 'status'],
    HELLO: ['HELLO [protover] [AUTH <username> <password>] [SETNAME <connection-name>]', 0, 6, 'map'],
    SELECT: ['SELECT <index>', 1, 1, 'status'],
    CLIENT: ['CLIENT <ID|SETNAME|GETNAME|SETINFO|INFO|LIST> [arguments]', 1, Number.POSITIVE_INFINITY, 'custom'],
    COMMAND: ['COMMAND <COUNT|DOCS|INFO> [arguments]', 0, Number.POSITIVE_INFINITY, 'custom'],
    SUBSCRIBE: ['SUBSCRIBE <channel> [<channel> ...]', 1, Number.POSITIVE_INFINITY, 'custom'],
    UNSUBSCRIBE: ['UNSUBSCRIBE [channel] [<channel> ...]', 0, Number.POSITIVE_INFINITY, 'custom'],
    PSUBSCRIBE: ['PSUBSCRIBE <pattern> [<pattern> ...]', 1, Number.POSITIVE_INFINITY, 'custom'],
    PUNSUBSCRIBE: ['PUNSUBSCRIBE [pattern] [<pattern> ...]', 0, Number.POSITIVE_INFINITY, 'custom'],
    STATS: ['STATS', 0, 0, 'json'],
    INFO: ['INFO [section]', 0, 1, 'text'],
    CREATEROUTER: ['CREATEROUTER <name> <kind>', 2, 2, 'status'],
    CREATEQUEUE: [
      'CREATEQUEUE <name> <type> [ACKTIMEOUT <ackTimeoutMs>] [MAXDELIVERIES <maxDeliveries>] [DEADLETTER <deadLetter>] [MAXLENGTH <maxLength>] [OVERFLOW <overflow>] [TTL <ttlMs>] [DEDUPWINDOW <dedupWindowMs>]',
      2,
      16,
      'status',
    ],
    BIND: ['BIND <queue> <router> <bindingKey>', 3, 3, 'status'],
    UNBIND: ['UNBIND <queue> <router> <bindingKey>', 3, 3, 'boolean'],
    PUBLISH: ['PUBLISH <router> <routingKey> [DELAY <delayMs>] [TTL <ttlMs>] [ID <id>] <message>', 3, 9, 'integer'],
    FETCH: ['FETCH <queue> [count] [waitMs]', 1, 3, 'deliveries'],
    ACK: ['ACK <queue> <id> [<id> ...]', 2, Number.POSITIVE_INFINITY, 'integer'],
    NACK: ['NACK <queue> <id> [REQUEUE|DROP]', 2, 3, 'integer'],
    TOUCH: ['TOUCH <queue> <id>', 2, 2, 'boolean'],
    CONSUME: ['CONSUME <queue> [prefetch]', 1, 2, 'bulk'],
    CANCEL: ['CANCEL <tag>', 1, 1, 'boolean'],
    GETQUEUE: ['GETQUEUE <name>', 1, 1, 'document'],
    GETROUTER: ['GETROUTER <name>', 1, 1, 'document'],
    LISTQUEUE: ['LISTQUEUE [pattern]', 0, 1, 'keys'],
    LISTROUTER: ['LISTROUTER [pattern]', 0, 1, 'keys'],
    FLUSH: ['FLUSH <queue>', 1, 1, 'integer'],
    DELETEQUEUE: ['DELETEQUEUE <name>', 1, 1, 'boolean'],
    DELETEROUTER: ['DELETEROUTER <name>', 1, 1, 'boolean'],
    DEADLETTERS: ['DEADLETTERS <queue> [count]', 1, 2, 'deliveries'],
    REPLAYDEAD: ['REPLAYDEAD <queue> [count]', 1, 2, 'integer'],
    PURGEDEAD: ['PURGEDEAD <queue>', 1, 1, 'integer'],
  };
  t.same(Object.keys(commands).sort(), Object.keys(expected).sort());
  for (const [name, spec] of Object.entries(commands) as Array<[CommandName, CommandSpec]>) {
    const [syntax, minArgs, maxArgs, reply] = expected[name] as [string, number, number, string];
    t.equal(spec.name, name);
    t.equal(spec.syntax, syntax, `${name} syntax`);
    t.equal(spec.minArgs, minArgs, `${name} minArgs`);
    t.equal(spec.maxArgs, maxArgs, `${name} maxArgs`);
    t.equal(spec.reply, reply, `${name} reply`);
    t.ok(Object.isFrozen(spec), `${name} is frozen`);
  }
  t.equal(commands.SET.inlineRest, 3);
  t.equal(commands.SET.args[3].name, 'value');
  t.same(
    commands.SET.args.map((arg) => arg.kind),
    ['storageType', 'ttl', 'key', 'value'],
  );
  t.equal(commands.PING.args[0].optional, true);
  t.equal(commands.GET.inlineRest, undefined);
});

t.test(
  'every command and subcommand is complete: a permission, docs, a decision on JSON-RPC and clients',
  async (t) => {
    const all = allCommands();
    t.equal(
      all.length,
      Object.keys(commands).length + 6 + 3 + 3 + 4,
      'with the subcommands of CLIENT, COMMAND, ACL and BACKUP',
    );
    const rpcMethods = new Set<string>();
    const clientMethods = new Set<string>();
    for (const spec of all) {
      const permissions = (['read', 'write', 'connection', 'admin'] as const).filter((p) => spec.flags[p] === true);
      t.equal(permissions.length, 1, `${spec.name} needs exactly one permission flag`);
      t.ok(
        [
          'public',
          'connection',
          'read',
          'write',
          'subscribe',
          'publish',
          'consume',
          'manage',
          'view',
          'admin',
        ].includes(spec.access),
        `${spec.name} says which right it needs`,
      );
      t.ok(spec.summary.length > 0 && !spec.summary.includes('\n'), `${spec.name} has a one-line summary`);
      t.match(spec.since, /^\d+\.\d+\.\d+$/, `${spec.name} says since when`);
      t.ok(
        ['string', 'keyspace', 'connection', 'server', 'pubsub', 'broker'].includes(spec.group),
        `${spec.name} has a group`,
      );
      t.ok(
        spec.rpc === null || /^(Storage|Server|Broker)\.[A-Z][A-Za-z]+$/.test(spec.rpc),
        `${spec.name}: rpc is a method or null`,
      );
      t.ok(spec.client === null || /^[a-z][A-Za-z]+$/.test(spec.client), `${spec.name}: client is a method or null`);
      if (spec.rpc !== null) {
        t.notOk(rpcMethods.has(spec.rpc), `${spec.rpc} is unique`);
        rpcMethods.add(spec.rpc);
        t.not(spec.reply, 'custom', `${spec.name}: a JSON-RPC method has a reply shape JSON can carry`);
      }
      if (spec.client !== null) {
        t.notOk(clientMethods.has(spec.client), `${spec.client} is unique`);
        clientMethods.add(spec.client);
      }
      if (spec.subcommands === undefined) {
        t.equal(checkArity(spec, spec.example.length), undefined, `${spec.name}'s example has a valid arity`);
      }
    }
    for (const name of ['CLIENT', 'COMMAND'] as const) {
      for (const sub of Object.values(commands[name].subcommands ?? {})) {
        t.ok(sub.name.startsWith(`${name} `), `${sub.name} is named after its command`);
        t.equal(lookupSubcommand(commands[name], sub.name.slice(name.length + 1).toLowerCase()), sub);
      }
    }
    t.equal(lookupSubcommand(commands.CLIENT, 'NOPE'), undefined);
    t.equal(lookupSubcommand(commands.GET, 'ID'), undefined, 'a command without subcommands');
    t.equal(lookupSubcommand(commands.CLIENT, Buffer.from('setName')), commands.CLIENT.subcommands?.SETNAME);
    t.match(unknownSubcommand(commands.CLIENT, 'NOPE'), {
      code: 'UNKNOWN_COMMAND',
      message: "unknown subcommand 'NOPE' of CLIENT (expected ID, SETNAME, GETNAME, SETINFO, INFO, LIST)",
    });
  },
);

t.test('readOptions reads keyword options in any case and refuses anything else with SYNTAX', async (t) => {
  const bytes = (...words: string[]) => words.map((word) => Buffer.from(word));
  const set = bytes('SET', 'memory', '0', 'k', 'v');
  t.equal(readOptions(commands.SET, set, 5).size, 0, 'none');
  t.same([...readOptions(commands.SET, [...set, Buffer.from('nx')], 5).keys()], ['NX']);
  const scan = readOptions(commands.SCAN, bytes('SCAN', 'hdd', '0', 'count', '5', 'MATCH', 'a*'), 3);
  t.same(scan.get('COUNT')?.map(String), ['5']);
  t.same(scan.get('MATCH')?.map(String), ['a*']);
  const refusals: Array<[string[], number, string]> = [
    [[...set.map(String), 'NX', 'XX'], 5, "'SET': NX and XX exclude each other"],
    [[...set.map(String), 'NX', 'nx'], 5, "'SET': NX given twice"],
    [
      [...set.map(String), 'PX'],
      5,
      "'SET' has no option 'PX' (expected NX, XX): SET <type> <ttl> <key> <value> [NX|XX]",
    ],
    [
      ['SCAN', 'hdd', '0', 'MATCH'],
      3,
      "'SCAN': MATCH needs 1 value: SCAN <type> <cursor> [MATCH <pattern>] [COUNT <count>] [TYPE <storage-type>]",
    ],
    [['GET', 'memory', 'k', 'x'], 3, "'GET' has no option 'x' (it takes no options): GET <type> <key>"],
  ];
  for (const [words, start, message] of refusals) {
    t.throws(() => readOptions(lookupCommand(words[0] as string) as CommandSpec, bytes(...words), start), {
      name: 'ProtocolError',
      code: 'SYNTAX',
      message,
    });
  }
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
    [commands.SET, 3, "'SET' takes 4 to 5 arguments (SET <type> <ttl> <key> <value> [NX|XX]), got 3"],
    [commands.MGET, 1, "'MGET' takes at least 2 arguments (MGET <type> <key> [<key> ...]), got 1"],
    [
      commands.MSET,
      4,
      "'MSET' takes at least 3 arguments in groups of 2 (MSET <type> <key> <value> [<key> <value> ...]), got 4",
    ],
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
