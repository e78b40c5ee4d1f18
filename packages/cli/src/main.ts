import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import yargs, { type Argv } from 'yargs';
import { backupCommands } from './backup-command.js';
import { type ClientFlags, runClient, type Terminal } from './client-command.js';
import { ConfigFileError, configFormat, configPath, formatSettings, readConfigFile } from './config-file.js';
import { CONNECTION_ENV_FLAGS, CONNECTION_VALUE_FLAGS, connectionOptions } from './connection.js';
import type { StartFlags } from './start.js';
import { statsCommands } from './stats-command.js';
import { tlsCommands } from './tls-command.js';
import { usersCommands } from './users-command.js';

/**
 * `hati start` as a function: runs the server until a signal stops it; resolves to the exit code.
 * The server and its storage are loaded on the first call, not with this module: they take
 * about 0.4 s to load, which every other subcommand (a one-shot `hati client`) would pay for
 * nothing.
 */
export async function start(flags: StartFlags, io: Io, warnings: readonly string[] = []): Promise<number> {
  return (await import('./start.js')).start(flags, io, warnings);
}

/** Where `main` writes; tests pass their own. */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** The streams `hati client` reads commands from and prints replies to. */
  terminal?: Terminal;
  /**
   * The binary holds SIGINT and SIGTERM while the modules load; this stops holding them and
   * returns the first that arrived. `hati start` calls it once its own handlers are in place.
   */
  heldSignal?: () => NodeJS.Signals | undefined;
}

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

function integerIn(name: string, min: number, max: number) {
  return (value: unknown) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max || String(value).trim() === '') {
      throw new Error(`--${name} must be an integer from ${min} to ${max}, got '${String(value)}'`);
    }
    return n;
  };
}

/** An empty path would resolve to the working directory: refused rather than written into. */
function directory(name: string) {
  return (value: unknown) => {
    if (String(value).trim() === '') {
      throw new Error(
        `--${name} must name a directory, got '${String(value)}' (an empty path would mean the working directory)`,
      );
    }
    return String(value);
  };
}

function startOptions(y: Argv) {
  return y
    .option('tcp', { type: 'boolean', description: 'Start the TCP listener (RESP and inline commands)' })
    .option('tcp-host', { type: 'string', default: '0.0.0.0', description: 'Bind address of the TCP listener' })
    .option('tcp-port', {
      requiresArg: true,
      default: 4242,
      coerce: integerIn('tcp-port', 0, 65535),
      description: 'Port of the TCP listener (0: any free port)',
    })
    .option('unix', { type: 'string', description: 'Also listen on this UNIX socket path (same protocol as TCP)' })
    .option('rpc', { type: 'boolean', description: 'Start the JSON-RPC 2.0 listener (HTTP POST /)' })
    .option('rpc-host', { type: 'string', default: '0.0.0.0', description: 'Bind address of the JSON-RPC listener' })
    .option('rpc-port', {
      requiresArg: true,
      default: 6767,
      coerce: integerIn('rpc-port', 0, 65535),
      description: 'Port of the JSON-RPC listener (0: any free port)',
    })
    .option('data-dir', {
      type: 'string',
      requiresArg: true,
      default: './data',
      coerce: directory('data-dir'),
      description: 'Directory of the persistent (hdd) store',
    })
    .option('cpu-num', {
      requiresArg: true,
      default: availableParallelism(),
      defaultDescription: 'all cores',
      coerce: integerIn('cpu-num', 1, 1024),
      description: 'Threads for disk work: sizes the thread pool that LevelDB reads, writes and fsyncs run on',
    })
    .option('shards', {
      requiresArg: true,
      defaultDescription: "memory 8; hdd the store's own count, 1 for a new store",
      coerce: integerIn('shards', 1, 1024),
      description: 'Shards of each storage type; changing it for an existing hdd store rebuilds the store',
    })
    .option('hdd-durability', {
      type: 'string',
      choices: ['always', 'everysec', 'no'],
      default: 'everysec',
      description:
        'When an acknowledged hdd write is on disk: fsync before the reply, about every second, or left to the OS',
    })
    .option('protected-mode', {
      type: 'string',
      choices: ['yes', 'no'],
      default: 'yes',
      description:
        'While no credentials are configured, refuse clients from other machines (bind to 127.0.0.1, or set no, to allow them)',
    })
    .option('max-clients', {
      requiresArg: true,
      coerce: integerIn('max-clients', 1, 1_000_000),
      defaultDescription: 'from the open-file limit',
      description: 'Most client connections at once; one more gets MAX_CLIENTS and is disconnected',
    })
    .option('max-input-buffer', {
      requiresArg: true,
      default: 1024 * 1024 * 1024,
      defaultDescription: '1 GiB',
      coerce: integerIn('max-input-buffer', 1024, Number.MAX_SAFE_INTEGER),
      description: 'Bytes that unfinished requests may hold across all clients; past it a client gets TOO_LARGE',
    })
    .option('rpc-cors-origins', {
      type: 'string',
      default: '',
      description: 'Comma-separated origins (https://app.example) whose web pages may call JSON-RPC; none by default',
    })
    .option('rpc-hosts', {
      type: 'string',
      default: '',
      description: 'Comma-separated host names accepted in the Host header on loopback, besides localhost and IPs',
    })
    .option('rpc-max-batch', {
      requiresArg: true,
      default: 1000,
      coerce: integerIn('rpc-max-batch', 1, 1_000_000),
      description: 'Most calls in one JSON-RPC batch',
    })
    .option('log-level', {
      type: 'string',
      choices: ['error', 'warn', 'info', 'debug'],
      default: 'info',
      description: 'Least severe log lines written to stderr (error: only errors)',
    })
    .option('log-format', {
      type: 'string',
      choices: ['text', 'json'],
      default: 'text',
      description: 'Log lines as text (<time> <level> <message>) or as one JSON object each (for journald, Loki, ...)',
    })
    .option('config', {
      type: 'string',
      requiresArg: true,
      description:
        'Read settings from this YAML (.yaml, .yml) or TOML (.toml) file: its keys are the flags without -- (tcp-port: 5000). Also HATI_CONFIG',
    })
    .option('print-config', {
      type: 'boolean',
      description: 'Print the effective settings as a config file (the password redacted) and exit without starting',
    })
    .option('metrics-port', {
      requiresArg: true,
      coerce: integerIn('metrics-port', 0, 65535),
      description:
        'Start a listener for GET /metrics (Prometheus), /healthz and /readyz on this port (0: any free port); the JSON-RPC listener serves them too',
    })
    .option('metrics-host', {
      type: 'string',
      requiresArg: true,
      default: '127.0.0.1',
      description: 'Bind address of the metrics listener',
    })
    .option('console', {
      type: 'string',
      choices: ['yes', 'no'],
      default: 'yes',
      description: 'Serve the web console at GET / of the JSON-RPC listener',
    })
    .option('password', {
      type: 'string',
      requiresArg: true,
      description:
        "The default user's password: clients send AUTH <password> before other commands. Prefer HATI_PASSWORD or --password-file: a command line is visible to every user of the machine (ps)",
    })
    .option('password-file', {
      type: 'string',
      requiresArg: true,
      description: "Read the default user's password from the first line of this file",
    })
    .option('users-file', {
      type: 'string',
      requiresArg: true,
      description: 'Named users with hashed passwords, tokens and rights (written by hati users); re-read on SIGHUP',
    })
    .option('tcp-tls', {
      type: 'boolean',
      description: 'The TCP listener speaks TLS (needs --tls-cert and --tls-key)',
    })
    .option('rpc-tls', {
      type: 'boolean',
      description: 'The JSON-RPC listener speaks HTTPS (needs --tls-cert and --tls-key)',
    })
    .option('tls-cert', {
      type: 'string',
      requiresArg: true,
      description: "PEM file of the server's certificate (chain); re-read on SIGHUP",
    })
    .option('tls-key', {
      type: 'string',
      requiresArg: true,
      description: "PEM file of the certificate's private key; re-read on SIGHUP",
    })
    .option('tls-ca', {
      type: 'string',
      requiresArg: true,
      description: 'PEM file of the CAs that client certificates must be signed by',
    })
    .option('tls-auth-clients', {
      type: 'string',
      choices: ['yes', 'no', 'optional'],
      defaultDescription: 'yes with --tls-ca, else no',
      description: 'Whether TLS clients must present a certificate signed by --tls-ca (optional: checked when given)',
    })
    .group(['password', 'password-file', 'users-file'], 'Credentials:')
    .group(['tcp-tls', 'rpc-tls', 'tls-cert', 'tls-key', 'tls-ca', 'tls-auth-clients'], 'TLS:')
    .group(['metrics-port', 'metrics-host', 'console'], 'Metrics and console:')
    .group(['config', 'print-config', 'log-level', 'log-format'], 'Configuration and logs:')
    .check((argv) => {
      const problem = startFlagsProblem(argv as unknown as StartFlags);
      if (problem !== undefined) throw new Error(problem);
      return true;
    });
}

/** Why the credential and TLS flags of `hati start` do not fit together, or undefined. */
function startFlagsProblem(flags: StartFlags): string | undefined {
  if (flags.password !== undefined && flags.passwordFile !== undefined) {
    return '--password (or HATI_PASSWORD) and --password-file both give a password; give one';
  }
  if (flags.password === '') {
    return '--password (or HATI_PASSWORD) is empty: the server would be open to anyone; give a password or none';
  }
  const tls = flags.tcpTls === true || flags.rpcTls === true;
  const files = [
    ['--tls-cert', flags.tlsCert],
    ['--tls-key', flags.tlsKey],
    ['--tls-ca', flags.tlsCa],
    ['--tls-auth-clients', flags.tlsAuthClients],
  ].filter(([, value]) => value !== undefined);
  if (!tls && files.length > 0) {
    return `${files.map(([flag]) => flag).join(', ')} ${files.length === 1 ? 'serves' : 'serve'} TLS listeners: add --tcp-tls or --rpc-tls`;
  }
  if (tls && (flags.tlsCert === undefined || flags.tlsKey === undefined)) {
    return `${flags.tcpTls === true ? '--tcp-tls' : '--rpc-tls'} needs --tls-cert and --tls-key (PEM files of the server's certificate and key)`;
  }
  const listenerNamed = flags.tcp === true || flags.rpc === true || flags.unix !== undefined;
  if (flags.tcpTls === true && listenerNamed && flags.tcp !== true) {
    return '--tcp-tls needs the TCP listener: add --tcp';
  }
  if (flags.rpcTls === true && flags.rpc !== true) return '--rpc-tls needs the JSON-RPC listener: add --rpc';
  if ((flags.tlsAuthClients === 'yes' || flags.tlsAuthClients === 'optional') && flags.tlsCa === undefined) {
    return `--tls-auth-clients ${flags.tlsAuthClients} needs --tls-ca (the CA that signs client certificates)`;
  }
  return undefined;
}

/** Flags that may come from the environment as HATI_<FLAG>, by command and yargs (camelCase) name. */
const BOOLEAN_FLAGS = new Set(['tcp', 'rpc', 'raw', 'tcpTls', 'rpcTls', 'tls']);
const ENV_FLAGS: Record<string, ReadonlySet<string>> = {
  start: new Set([
    'tcp',
    'tcpHost',
    'tcpPort',
    'unix',
    'rpc',
    'rpcHost',
    'rpcPort',
    'dataDir',
    'cpuNum',
    'shards',
    'hddDurability',
    'protectedMode',
    'maxClients',
    'maxInputBuffer',
    'rpcCorsOrigins',
    'rpcHosts',
    'rpcMaxBatch',
    'logLevel',
    'logFormat',
    'metricsPort',
    'metricsHost',
    'console',
    'password',
    'passwordFile',
    'usersFile',
    'tcpTls',
    'rpcTls',
    'tlsCert',
    'tlsKey',
    'tlsCa',
    'tlsAuthClients',
  ]),
  // Not --insecure: a variable left in a shell must not silently turn certificate checks off.
  client: new Set([...CONNECTION_ENV_FLAGS, 'raw']),
  users: new Set(['usersFile']),
  backup: new Set(CONNECTION_ENV_FLAGS),
  stats: new Set(CONNECTION_ENV_FLAGS),
};

/**
 * HATI_TCP_PORT=5000 → { tcpPort: '5000' }, for the flags `command` has (a variable meant for
 * `hati start` does not make `hati client` fail). Given to yargs as configuration, which
 * command-line flags override and which is checked like them; read from `io.env`, so tests can
 * pass their own.
 */
function flagsFromEnv(env: NodeJS.ProcessEnv, command: string | undefined): Record<string, unknown> {
  const names = ENV_FLAGS[command ?? ''];
  const flags: Record<string, unknown> = {};
  if (names === undefined) return flags;
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('HATI_') || value === undefined) continue;
    const name = key
      .slice(5)
      .toLowerCase()
      .replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!names.has(name)) continue;
    flags[name] = BOOLEAN_FLAGS.has(name) ? value !== 'false' && value !== '0' && value !== '' : value;
  }
  return flags;
}

/** The keys of a config file of `hati start`: its flags but --config and --print-config, as HATI_* has them. */
const START_KEYS = { names: [...(ENV_FLAGS.start as ReadonlySet<string>)], booleans: BOOLEAN_FLAGS };

/**
 * What yargs parses the command line over (its configuration): the HATI_* variables over the
 * config file of `hati start` (--config, or HATI_CONFIG). The one place that order is decided:
 * the command line wins over both, and a flag none of them sets takes its default.
 */
async function belowCommandLine(
  argv: string[],
  env: NodeJS.ProcessEnv,
  command: string | undefined,
): Promise<Record<string, unknown>> {
  const fromEnv = flagsFromEnv(env, command);
  const path = command === 'start' && !argv.includes('--help') ? configPath(argv, env) : undefined;
  if (path === undefined) return fromEnv;
  // `config` too, so that --print-config knows the file (also when HATI_CONFIG named it).
  return { ...(await readConfigFile(path, START_KEYS)), ...fromEnv, config: path };
}

/** Whether a password was typed on the command line (before the command of `hati client`), not taken from the environment. */
function passwordOnCommandLine(argv: string[], flags: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((arg) =>
    flags.some((flag) => arg === flag || arg.startsWith(`${flag}=`) || (flag === '-a' && /^-a./.test(arg))),
  );
}

/**
 * The `hati` command line. Returns the exit code; `start` resolves after a graceful shutdown
 * (SIGINT or SIGTERM). Every flag can also be set as an environment variable HATI_<FLAG>
 * (HATI_TCP_PORT=5000).
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  argv = helpArgs(argv);
  const command = argv.find((arg) => COMMANDS.includes(arg));
  // `hati users` never takes a password as a flag's value: refused before yargs could echo it back.
  if (command === 'users' && argv.some((arg) => arg === '--password' || arg.startsWith('--password='))) {
    io.stderr(
      "hati: hati users takes no password on the command line (it would be visible in ps and your shell's history): pipe it to stdin, or type it when asked\n",
    );
    return 2;
  }
  let configuration: Record<string, unknown>;
  try {
    configuration = await belowCommandLine(argv, io.env, command);
  } catch (err) {
    if (!(err instanceof ConfigFileError)) throw err;
    io.stderr(`hati: ${err.message}\n`);
    return 2;
  }
  // Usage errors, as yargs reports them (it may report more than one: "Did you mean start?" and "Unknown argument: strat").
  const failures: string[] = [];
  // Commands run after parsing, and only when parsing found no usage error.
  let run: (() => Promise<number>) | undefined;
  let startsServer = false;
  const stdin = () => io.terminal?.stdin ?? process.stdin;
  // hati client, backup and stats warn as redis-cli does (--no-auth-warning silences it).
  const warnPasswordOnCommandLine = (authWarning = !argv.includes('--no-auth-warning')) => {
    if (authWarning && passwordOnCommandLine(argv, ['-a', '--pass', '--password'])) {
      io.stderr(
        "Warning: Using a password with '-a' or '--pass' on the command line may not be safe (other users see it in ps); set HATI_PASSWORD instead.\n",
      );
    }
  };
  const parser = yargs(argv)
    .scriptName('hati')
    .version(version)
    .config(configuration)
    .command(
      'start',
      'Start a Hati server',
      (y) =>
        startOptions(y).epilogue(
          'Without --tcp, --rpc or --unix, the TCP listener starts on its defaults. Every flag can also be set in the environment as HATI_<FLAG>, e.g. HATI_TCP_PORT=5000 (HATI_PASSWORD is the way to give a password), and in a --config file as a key (tcp-port: 5000); the command line wins over HATI_*, which wins over the file. Log lines, start-up lines included, go to stderr. SIGHUP re-reads the users file and the TLS certificate and key.',
        ),
      (args) => {
        const flags = args as unknown as StartFlags & { config?: string; printConfig?: boolean };
        if (flags.printConfig === true) {
          run = async () => {
            io.stdout(await formatSettings(args, START_KEYS.names, configFormat(flags.config), flags.config));
            return 0;
          };
          return;
        }
        startsServer = true;
        const warnings = passwordOnCommandLine(argv, ['--password'])
          ? [
              'a password on the command line is visible to other users of this machine (ps); prefer HATI_PASSWORD or --password-file',
            ]
          : [];
        run = () => start(flags, io, warnings);
      },
    )
    .command(
      'client [command..]',
      'Talk to a Hati server: run one command, the commands piped in, or an interactive prompt',
      (y) =>
        connectionOptions(y)
          // `hati client SET memory -1 k v` sends -1 as an argument; numbers stay as typed.
          .parserConfiguration({ 'unknown-options-as-args': true, 'parse-positional-numbers': false })
          .positional('command', {
            type: 'string',
            array: true,
            description: 'A command to run once, e.g. GET memory greeting',
          })
          .option('raw', {
            type: 'boolean',
            description: 'Print replies as they are (the default when stdout is not a terminal); --no-raw formats them',
          })
          .epilogue(
            'Replies print as redis-cli prints them: "quoted" strings, (nil), (integer) 3, numbered arrays, (error) CODE message. A line with quotes is split as redis-cli splits it; otherwise SET takes the rest of the line as its value. Exit status 1 when a command fails. Every flag but --insecure can also be set as HATI_<FLAG>; HATI_PASSWORD is the way to give a password (--no-auth-warning silences the warning -a prints).',
          ),
      (args) => {
        const flags = args as unknown as ClientFlags & { command?: Array<string | number> };
        // The words after the `--` that clientArgs put before the command are in `_`, after `client`.
        const command = [...(flags.command ?? []), ...args._.slice(1)].map(String);
        run = () => {
          warnPasswordOnCommandLine(flags.authWarning);
          return runClient({ ...flags, command }, io, io.terminal ?? { stdin: process.stdin, stdout: process.stdout });
        };
      },
    )
    .command('backup', 'Export a running server to a backup file, import one, or inspect one', (y) =>
      backupCommands(y, io, (action) => {
        run = () => {
          warnPasswordOnCommandLine();
          return action();
        };
      }),
    )
    .command('stats', "A live view of a server's statistics (--once: one JSON document)", (y) =>
      statsCommands(y, io, (action) => {
        run = () => {
          warnPasswordOnCommandLine();
          return action();
        };
      }),
    )
    .command('users', 'Edit a users file: named users, their passwords, tokens and rights', (y) =>
      usersCommands(y, io, stdin, (action) => {
        run = action;
      }),
    )
    .command('tls', 'Make certificates for TLS', (y) =>
      tlsCommands(y, io, (action) => {
        run = action;
      }),
    )
    // Listed in --help only: `hati help ...` is rewritten by helpArgs before parsing.
    .command('help [command]', 'Show the help of a command (hati help start is hati start --help)')
    .demandCommand(1, 'name a command: hati start, hati client, hati backup, hati stats, hati users or hati tls')
    .recommendCommands()
    .strict()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .exitProcess(false)
    .fail((message, err) => {
      failures.push(message ?? err?.message ?? 'usage error');
    });
  let output = '';
  await parser.parseAsync(argv, {}, (_err, _argv, text) => {
    output = text;
  });
  if (!startsServer) {
    // Only `hati start` handles signals; anything else is ended by one held while it loaded.
    const held = io.heldSignal?.();
    if (held !== undefined) process.kill(process.pid, held);
  }
  if (failures.length > 0) {
    io.stderr(`hati: ${usageError(failures, argv)}\nRun 'hati --help' for usage.\n`);
    return 2;
  }
  if (output !== '') io.stdout(`${output}\n`);
  return run === undefined ? 0 : run();
}

/**
 * `hati help` is `hati --help`, `hati help start` is `hati start --help`; `-h` is `--help`
 * everywhere but in the commands that connect to a server (client, backup, stats), where it is
 * the host, as in redis-cli.
 */
function helpArgs(argv: string[]): string[] {
  if (argv[0] === 'help') {
    // `hati help strat` goes on as `hati strat`, to be answered with the command it resembles.
    const [name] = argv.slice(1);
    return name === undefined ? ['--help'] : COMMANDS.includes(name) ? [name, ...argv.slice(2), '--help'] : [name];
  }
  const command = argv.findIndex((arg) => !arg.startsWith('-'));
  if (argv[command] === 'client') return clientArgs(argv, command + 1);
  if (argv[command] === 'backup' || argv[command] === 'stats') return argv;
  return argv.map((arg) => (arg === '-h' ? '--help' : arg));
}

const COMMANDS = ['start', 'client', 'backup', 'stats', 'users', 'tls'];
/** `hati client` flags that take a value. */
const CLIENT_VALUE_FLAGS = CONNECTION_VALUE_FLAGS;

/**
 * Flags of `hati client` go before the command: from the command's first word on, everything is
 * the command's (`hati client SET memory 0 k -p` stores `-p`), as in redis-cli.
 */
function clientArgs(argv: string[], from: number): string[] {
  for (let i = from; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') return argv;
    if (!arg.startsWith('-')) return [...argv.slice(0, i), '--', ...argv.slice(i)];
    if (CLIENT_VALUE_FLAGS.has(arg)) i++;
  }
  return argv;
}

/** One line from yargs' messages: a typo'd command is named with the command it resembles. */
function usageError(failures: string[], argv: string[]): string {
  const suggestion = failures.find((message) => message.startsWith('Did you mean '));
  // yargs suggests a command only when no command matched: the first word is the typo.
  const word = argv.find((arg) => !arg.startsWith('-'));
  if (suggestion !== undefined && word !== undefined) {
    return `unknown command '${word}': did you mean ${suggestion.slice('Did you mean '.length)}`;
  }
  return failures.find((message) => message !== suggestion) ?? (failures[0] as string);
}
