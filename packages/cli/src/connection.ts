// The connection flags that `hati client`, `hati backup` and `hati stats` share (as redis-cli's:
// -h, -p, -s, -a, --user, --askpass, --tls ...), their checks, and connecting with them.
import { readFile } from 'node:fs/promises';
import { ClientErrorCode, createClient, type HatiClient, HatiError } from '@hati/client';
import type { Reply } from '@hati/protocol';
import type { Argv } from 'yargs';
import { hostPort } from './host-port.js';
import type { Io } from './main.js';
import { askPassword } from './password-input.js';

export interface ConnectionFlags {
  tcpHost: string;
  tcpPort: number;
  unix?: string;
  /** Log in as this user (needs `password`); without it, as `default`. */
  user?: string;
  /** The password, from -a, --pass or HATI_PASSWORD. */
  password?: string;
  /** false: --no-auth-warning. */
  authWarning?: boolean;
  /** Ask for the password on the terminal. */
  askpass?: boolean;
  tls?: boolean;
  /** PEM file paths. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Skip checking the server's certificate. */
  insecure?: boolean;
}

/** Flags of the connection that take a value: what comes after one is not a command's first word. */
export const CONNECTION_VALUE_FLAGS: ReadonlySet<string> = new Set([
  '-h',
  '--tcp-host',
  '--tcpHost',
  '-p',
  '--tcp-port',
  '--tcpPort',
  '-s',
  '--unix',
  '-a',
  '--pass',
  '--password',
  '--user',
  '--tls-ca',
  '--tlsCa',
  '--cacert',
  '--tls-cert',
  '--tlsCert',
  '--cert',
  '--tls-key',
  '--tlsKey',
  '--key',
]);

/** Flags of the connection that may come from the environment as HATI_<FLAG> (not --insecure: see main.ts). */
export const CONNECTION_ENV_FLAGS: readonly string[] = [
  'tcpHost',
  'tcpPort',
  'unix',
  'user',
  'password',
  'tls',
  'tlsCa',
  'tlsCert',
  'tlsKey',
];

function port(value: unknown): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535 || String(value).trim() === '') {
    throw new Error(`--tcp-port must be an integer from 1 to 65535, got '${String(value)}'`);
  }
  return n;
}

/** Adds the connection flags to a command. */
export function connectionOptions<T>(y: Argv<T>) {
  return y
    .option('tcp-host', {
      alias: 'h',
      type: 'string',
      requiresArg: true,
      default: '127.0.0.1',
      description: 'Host of the server (-h as in redis-cli; --help for help)',
    })
    .option('tcp-port', {
      alias: 'p',
      requiresArg: true,
      default: 4242,
      coerce: port,
      description: 'Port of the server',
    })
    .option('unix', {
      alias: 's',
      type: 'string',
      requiresArg: true,
      description: 'Connect to this UNIX socket path instead of TCP',
    })
    .option('password', {
      alias: ['a', 'pass'],
      type: 'string',
      requiresArg: true,
      description:
        'Log in with this password (AUTH) on every connection. Prefer HATI_PASSWORD: a command line is visible to other users (ps)',
    })
    .option('user', {
      type: 'string',
      requiresArg: true,
      description: 'Log in as this user (AUTH <user> <password>); without it, as the user default',
    })
    .option('askpass', {
      type: 'boolean',
      description: 'Type the password on the terminal, without echo (as redis-cli --askpass)',
    })
    .option('auth-warning', {
      type: 'boolean',
      default: true,
      hidden: true,
      description: '--no-auth-warning: no warning for a password given with -a (as redis-cli)',
    })
    .option('tls', { type: 'boolean', description: 'Connect over TLS' })
    .option('tls-ca', {
      alias: 'cacert',
      type: 'string',
      requiresArg: true,
      description: "PEM file of the CA that signed the server's certificate (default: the system's CAs)",
    })
    .option('tls-cert', {
      alias: 'cert',
      type: 'string',
      requiresArg: true,
      description: 'PEM file of a client certificate, for servers that ask for one',
    })
    .option('tls-key', {
      alias: 'key',
      type: 'string',
      requiresArg: true,
      description: "PEM file of the client certificate's private key",
    })
    .option('insecure', {
      type: 'boolean',
      description: "Do not check the server's certificate (as redis-cli; for tests only)",
    })
    .group(['password', 'user', 'askpass', 'tls', 'tls-ca', 'tls-cert', 'tls-key', 'insecure'], 'Credentials and TLS:')
    .check((argv) => {
      const problem = connectionProblem(argv as unknown as ConnectionFlags);
      if (problem !== undefined) throw new Error(problem);
      return true;
    });
}

/** Why the connection flags do not fit together, or undefined. */
export function connectionProblem(flags: ConnectionFlags): string | undefined {
  if (flags.password === '') return 'the password (-a, --pass or HATI_PASSWORD) is empty';
  if (flags.askpass === true && flags.password !== undefined) {
    return '--askpass and a password (-a, --pass or HATI_PASSWORD) both give one; give one';
  }
  if (flags.user !== undefined && flags.password === undefined && flags.askpass !== true) {
    return '--user needs a password: set HATI_PASSWORD (or give --askpass or -a)';
  }
  if (flags.tls !== true) {
    const given = [
      ['--tls-ca', flags.tlsCa],
      ['--tls-cert', flags.tlsCert],
      ['--tls-key', flags.tlsKey],
      ['--insecure', flags.insecure || undefined],
    ].filter(([, value]) => value !== undefined);
    if (given.length > 0)
      return `${given.map(([flag]) => flag).join(', ')} ${given.length === 1 ? 'needs' : 'need'} --tls`;
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    return '--tls-cert and --tls-key go together (a client certificate and its key)';
  }
  if (flags.unix !== undefined && flags.tls === true)
    return '--tls is for TCP; a UNIX socket (--unix) is not encrypted';
  return undefined;
}

/** The server the flags name, as shown in messages: `127.0.0.1:4242` or the socket path. */
export function serverName(flags: ConnectionFlags): string {
  return flags.unix ?? hostPort(flags.tcpHost, flags.tcpPort);
}

/**
 * Connects with the flags: asks for the password first with --askpass (on `io.terminal`'s
 * stdin, else the process's), reads the TLS files. Throws an Error whose message is one line
 * for the user.
 */
export async function connect(flags: ConnectionFlags, io: Io): Promise<HatiClient> {
  const tls = await tlsSettings(flags);
  const password =
    flags.askpass === true ? await askPassword(io.terminal?.stdin ?? process.stdin, io.stderr) : flags.password;
  return connectTo(
    { ...flags, ...(password !== undefined && { password }) },
    serverName(flags),
    tls,
    undefined,
    io.stderr,
  );
}

/** The TLS settings of a connection, with the PEM files read. */
export interface TlsSettings {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

/** Reads the PEM files of --tls-ca, --tls-cert and --tls-key; throws one line naming the flag. */
export async function tlsSettings(flags: ConnectionFlags): Promise<TlsSettings | undefined> {
  if (flags.tls !== true) return undefined;
  const settings: TlsSettings = { rejectUnauthorized: flags.insecure !== true };
  for (const [flag, field, path] of [
    ['--tls-ca', 'ca', flags.tlsCa],
    ['--tls-cert', 'cert', flags.tlsCert],
    ['--tls-key', 'key', flags.tlsKey],
  ] as const) {
    if (path === undefined) continue;
    try {
      settings[field] = await readFile(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return settings;
}

/** What a TLS failure means, by the code of Node's error: shown after it, in parentheses. */
const TLS_HINTS: Record<string, string> = {
  SELF_SIGNED_CERT_IN_CHAIN:
    "the server's certificate is signed by a CA this client does not trust: give that CA with --tls-ca",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's certificate is self-signed: give it (or its CA) with --tls-ca",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    "the server's certificate is signed by a CA this client does not know: give that CA with --tls-ca",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    "the server's certificate is signed by a CA this client does not know: give that CA with --tls-ca",
  CERT_HAS_EXPIRED: "the server's certificate has expired",
  CERT_NOT_YET_VALID: "the server's certificate is not valid yet",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's certificate is not for this host name",
  ERR_SSL_WRONG_VERSION_NUMBER: 'the server does not speak TLS on this port: is it started with --tcp-tls?',
  ERR_SSL_PACKET_LENGTH_TOO_LONG: 'the server does not speak TLS on this port: is it started with --tcp-tls?',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    'the server asks for a client certificate: give one with --tls-cert and --tls-key',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'the server refused the handshake (a client certificate missing?)',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "the server does not trust this client's certificate",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "the server does not accept this client's certificate",
};

/** Why a connection failed, in one phrase: the errno, or a TLS failure with Node's code and a hint. */
export function connectFailure(failure: Error | undefined): string {
  if (failure === undefined) return 'closed';
  const code = (failure as NodeJS.ErrnoException).code;
  if (code !== ClientErrorCode.TLS_FAILED) return code ?? failure.message;
  const cause = failure.cause as NodeJS.ErrnoException | undefined;
  const hint = cause?.code === undefined ? undefined : TLS_HINTS[cause.code];
  return `TLS failed: ${cause?.code ?? cause?.message ?? failure.message}${hint === undefined ? '' : ` (${hint})`}`;
}

export const CLIENT_CODES = new Set<string>(Object.values(ClientErrorCode));

/**
 * The last error the server sent a client's own commands (the HELLO sent first on a connection):
 * when the server then closes the connection, that is why the caller's command got no reply
 * (`-NOAUTH TLS: this server requires a client certificate`, `-PROTOCOL this port speaks TLS`).
 */
export const lastServerError = new WeakMap<HatiClient, HatiError>();

/**
 * Connects, or throws an Error whose message is one line for the user (`cannot connect to
 * 127.0.0.1:4242: ECONNREFUSED`). Pushes go to `onPush`; `warn` gets the warning for a password
 * the server does not need.
 */
export async function connectTo(
  flags: ConnectionFlags,
  name: string,
  tls: TlsSettings | undefined,
  onPush?: (items: Reply[]) => void,
  warn?: (text: string) => void,
): Promise<HatiClient> {
  const client = createClient({
    ...(flags.unix !== undefined ? { path: flags.unix } : { host: flags.tcpHost, port: flags.tcpPort }),
    reconnect: false,
    connectTimeout: 5000,
    ...(flags.user !== undefined && { user: flags.user }),
    ...(flags.password !== undefined && { password: flags.password }),
    ...(tls !== undefined && { tls }),
  });
  if (onPush !== undefined) client.onPush(onPush);
  let failure: Error | undefined;
  client.on('error', (err) => {
    failure ??= err;
    if (!(err instanceof HatiError) || CLIENT_CODES.has(err.code)) return;
    if (err.code === 'AUTH_NOT_CONFIGURED') {
      // The login is not needed; redis-cli says so too, and goes on.
      warn?.('hati: warning: the server has no credentials configured (AUTH_NOT_CONFIGURED); no password is needed\n');
      return;
    }
    lastServerError.set(client, err);
  });
  await new Promise<void>((resolve) => {
    client.once('connect', resolve);
    client.once('close', resolve);
  });
  if (client.state !== 'ready') throw new Error(`cannot connect to ${name}: ${connectFailure(failure)}`);
  return client;
}
