import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import {
  authClientsOf,
  type Durability,
  HatiServer,
  ListenError,
  Logger,
  type LogLevel,
  type ServerOptions,
  type TlsFiles,
} from '@hati/server';
import { hostPort } from './host-port.js';
import type { Io } from './main.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export interface StartFlags {
  tcp?: boolean;
  tcpHost: string;
  tcpPort: number;
  unix?: string;
  rpc?: boolean;
  rpcHost: string;
  rpcPort: number;
  dataDir: string;
  cpuNum: number;
  shards?: number;
  hddDurability: Durability;
  protectedMode: 'yes' | 'no';
  maxClients?: number;
  maxInputBuffer: number;
  rpcCorsOrigins: string;
  rpcHosts: string;
  rpcMaxBatch: number;
  logLevel: LogLevel;
  logFormat: 'text' | 'json';
  /** Starts the metrics listener (`GET /metrics`, `/healthz`, `/readyz`) on this port. */
  metricsPort?: number;
  metricsHost: string;
  /** Serve the web console at `GET /` of the JSON-RPC listener. */
  console: 'yes' | 'no';
  password?: string;
  passwordFile?: string;
  usersFile?: string;
  tcpTls?: boolean;
  rpcTls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsAuthClients?: 'yes' | 'no' | 'optional';
}

/** `a, b,,c` → ['a', 'b', 'c']. */
function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** Why a UNIX socket cannot be created at `path`, in words, before the store is opened; undefined if it may. */
async function socketDirProblem(path: string): Promise<string | undefined> {
  const dir = dirname(path);
  try {
    if (!(await stat(dir)).isDirectory()) return `${dir} is not a directory`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `directory ${dir} does not exist`;
    if (code === 'ENOTDIR') return `${dir} is not a directory`;
    if (code === 'EACCES') return `directory ${dir} cannot be reached (permission denied)`;
  }
  return undefined;
}

/**
 * A listener that failed, as one line that names the flag to change. The server's ListenError
 * says which listener failed; the address is rewritten from the flags so an IPv6 host is
 * bracketed.
 */
function listenFailure(err: Error, flags: StartFlags): string {
  if (!(err instanceof ListenError)) return err.message;
  const names = { unix: 'unix socket', tcp: 'tcp', rpc: 'json-rpc', metrics: 'metrics' } as const;
  const kind = names[err.listener];
  const errno = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  if (errno === undefined) return err.message;
  if (kind === 'unix socket') {
    const path = flags.unix as string;
    if (errno === 'EADDRINUSE')
      return `cannot listen on unix socket ${path}: in use by a running server; pick another with --unix`;
    if (errno === 'EACCES')
      return `cannot listen on unix socket ${path}: permission denied in ${dirname(path)}; pick another with --unix`;
    return err.message;
  }
  const [where, hostFlag, portFlag] =
    kind === 'tcp'
      ? [hostPort(flags.tcpHost, flags.tcpPort), '--tcp-host', '--tcp-port']
      : kind === 'metrics'
        ? [hostPort(flags.metricsHost, flags.metricsPort as number), '--metrics-host', '--metrics-port']
        : [hostPort(flags.rpcHost, flags.rpcPort), '--rpc-host', '--rpc-port'];
  const reasons: Record<string, string> = {
    EADDRINUSE: `address already in use; pick another with ${portFlag}`,
    EACCES: `permission denied (ports below 1024 need privileges); pick another with ${portFlag}`,
    EADDRNOTAVAIL: `no network interface of this machine has that address; pick another with ${hostFlag}`,
    ENOTFOUND: `no such host; pick another with ${hostFlag}`,
  };
  const reason = reasons[errno];
  return reason === undefined ? err.message : `cannot listen on ${kind} ${where}: ${reason}`;
}

/** An errno as words: `no such file (ENOENT)`. */
function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EISDIR: 'a directory, not a file',
    ENOTDIR: 'a path through something that is not a directory',
  };
  return code === undefined ? (err as Error).message : `${words[code] ?? code}${code in words ? ` (${code})` : ''}`;
}

/**
 * The password of --password-file: its first line, without the line ending. Throws one line
 * naming the flag; never the file's content.
 */
async function passwordFromFile(path: string, logger: Logger): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read --password-file ${path}: ${errnoText(err)}`);
  }
  const line = (text.split('\n')[0] as string).replace(/\r$/, '');
  if (line === '') throw new Error(`--password-file ${path} is empty (its first line is the password)`);
  const mode = (await stat(path)).mode;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    logger.warn(
      `--password-file ${path} can be read by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`,
    );
  }
  return line;
}

/** The first file flag whose file cannot be read, as one line; checked before the store opens. */
async function unreadableFile(files: Array<[string, string | undefined]>): Promise<string | undefined> {
  for (const [flag, path] of files) {
    if (path === undefined) continue;
    try {
      await access(path, constants.R_OK);
      if ((await stat(path)).isDirectory()) return `cannot read ${flag} ${path}: a directory, not a file`;
    } catch (err) {
      const hint = flag === '--users-file' ? '; hati users add <name> --users-file <path> creates one' : '';
      return `cannot read ${flag} ${path}: ${errnoText(err)}${hint}`;
    }
  }
  return undefined;
}

/** The start-up line about credentials, or undefined when there are none. */
function authLine(options: ServerOptions): string | undefined {
  const who = [
    ...(options.password !== undefined ? ['the default user (its password)'] : []),
    ...(options.usersFile !== undefined ? [`the users of ${options.usersFile}`] : []),
  ];
  return who.length === 0 ? undefined : `clients must authenticate as ${who.join(' or ')}`;
}

/** The start-up line about TLS, or undefined without it. */
function tlsLine(tls: TlsFiles | undefined): string | undefined {
  if (tls === undefined) return undefined;
  const authClients = authClientsOf(tls);
  const clients =
    authClients === 'no'
      ? 'no client certificates asked for'
      : `client certificates ${authClients === 'yes' ? 'required' : 'checked when given'} (CA ${tls.ca})`;
  return `tls certificate ${tls.cert}; ${clients}`;
}

/**
 * Runs `server.reload()` on each SIGHUP, one at a time, and says what it did. `quiet` makes
 * later SIGHUPs do nothing (the server is shutting down; the handler stays so that a SIGHUP
 * cannot kill it half-way) and waits for a reload in progress; `remove` stops listening.
 */
function reloadOnHangup(
  server: HatiServer,
  options: ServerOptions,
  logger: Logger,
): { reload: () => void; quiet: () => Promise<void>; remove: () => void } {
  const what = [
    ...(options.usersFile !== undefined ? ['users'] : []),
    ...(options.tls !== undefined ? ['certificates'] : []),
  ];
  let reloading = Promise.resolve();
  let quiet = false;
  const reload = () => {
    if (quiet) return;
    reloading = reloading.then(() =>
      server.reload().then(
        () =>
          logger.info(
            what.length === 0
              ? 'SIGHUP: nothing to reload (no --users-file, no TLS)'
              : `SIGHUP: reloaded ${what.join(' and ')}`,
            { signal: 'SIGHUP', reloaded: what },
          ),
        (err: Error) =>
          logger.error(`SIGHUP: reload failed, nothing changed: ${err.message}`, {
            signal: 'SIGHUP',
            ...errorCode(err),
          }),
      ),
    );
  };
  process.on('SIGHUP', reload);
  return {
    reload,
    quiet: () => {
      quiet = true;
      return reloading;
    },
    remove: () => process.off('SIGHUP', reload),
  };
}

/** `{ code }` of an error that has a stable code (DATA_DIR_LOCKED, EADDRINUSE), for json lines. */
function errorCode(err: unknown): { code?: string } {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? { code } : {};
}

/**
 * Starts a server with the flags of `hati start`, and runs it until SIGINT or SIGTERM. Every line
 * it writes goes through one Logger to stderr, in --log-format; `warnings` (found while the
 * command line was read) are logged after the banner.
 */
export async function start(flags: StartFlags, io: Io, warnings: readonly string[] = []): Promise<number> {
  const logger = new Logger(flags.logLevel, io.stderr, flags.logFormat);
  // Handlers first: a signal during start-up (a large hdd store can take seconds to open)
  // stops the start-up instead of killing the process half-way or being ignored.
  let stopping: NodeJS.Signals | undefined;
  let stop: ((name: NodeJS.Signals) => void) | undefined;
  // Node's default for SIGHUP ends the process: one during start-up (a service manager's reload)
  // is kept, and run once the server is up, when the files it names may have changed.
  let hangupDuringStart = false;
  const hangup = () => {
    hangupDuringStart = true;
  };
  process.on('SIGHUP', hangup);
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    stop = (name: NodeJS.Signals) => {
      stopping ??= name;
      resolve(name);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const held = io.heldSignal?.();
    if (held !== undefined) stop(held);
  });
  try {
    logger.info(`hati ${version} (node ${process.versions.node}, pid ${process.pid})`, {
      version,
      node: process.versions.node,
    });
    for (const warning of warnings) logger.warn(warning);
    return await run(flags, logger, signal, () => stopping, {
      taken: () => {
        process.off('SIGHUP', hangup);
        return hangupDuringStart;
      },
    });
  } finally {
    process.off('SIGHUP', hangup);
    process.off('SIGINT', stop as (name: NodeJS.Signals) => void);
    process.off('SIGTERM', stop as (name: NodeJS.Signals) => void);
  }
}

/** `http://127.0.0.1:6767/` of a listener. */
function url(address: { host: string; port: number; tls?: boolean }, path = '/'): string {
  return `${address.tls === true ? 'https' : 'http'}://${hostPort(address.host, address.port)}${path}`;
}

async function run(
  flags: StartFlags,
  logger: Logger,
  signal: Promise<NodeJS.Signals>,
  stopping: () => NodeJS.Signals | undefined,
  earlyHangup: { taken: () => boolean },
): Promise<number> {
  const noListener = !flags.tcp && !flags.rpc && flags.unix === undefined;
  const tls: TlsFiles | undefined =
    flags.tlsCert !== undefined && flags.tlsKey !== undefined
      ? {
          cert: resolve(flags.tlsCert),
          key: resolve(flags.tlsKey),
          ...(flags.tlsCa !== undefined && { ca: resolve(flags.tlsCa) }),
          ...(flags.tlsAuthClients !== undefined && { authClients: flags.tlsAuthClients }),
        }
      : undefined;
  const options: ServerOptions = {
    dataDir: resolve(flags.dataDir),
    ...(flags.shards !== undefined && { shards: flags.shards }),
    durability: flags.hddDurability,
    logLevel: flags.logLevel,
    logger,
    protectedMode: flags.protectedMode === 'yes',
    ...(flags.maxClients !== undefined && { maxClients: flags.maxClients }),
    maxInputBuffer: flags.maxInputBuffer,
    rpcCorsOrigins: list(flags.rpcCorsOrigins),
    rpcHosts: list(flags.rpcHosts),
    maxRpcBatch: flags.rpcMaxBatch,
    ...((flags.tcp || noListener) && { tcp: { host: flags.tcpHost, port: flags.tcpPort } }),
    ...(flags.unix !== undefined && { unix: flags.unix }),
    ...(flags.rpc && { rpc: { host: flags.rpcHost, port: flags.rpcPort } }),
    ...(flags.metricsPort !== undefined && { metrics: { host: flags.metricsHost, port: flags.metricsPort } }),
    console: flags.console !== 'no',
    ...(flags.password !== undefined && { password: flags.password }),
    // Absolute, so that a SIGHUP re-reads the same file whatever the working directory is then.
    ...(flags.usersFile !== undefined && { usersFile: resolve(flags.usersFile) }),
    ...(tls !== undefined && { tls }),
    ...(flags.tcpTls === true && { tcpTls: true }),
    ...(flags.rpcTls === true && { rpcTls: true }),
  };
  if (flags.unix !== undefined) {
    // Checked before the store opens: Node reports a missing directory as EACCES.
    const problem = await socketDirProblem(flags.unix);
    if (problem !== undefined) {
      logger.error(`cannot listen on unix socket ${flags.unix}: ${problem}`, { listener: 'unix' });
      return 1;
    }
  }
  // Files checked before the store opens, each named with its flag.
  const unreadable = await unreadableFile([
    ['--users-file', options.usersFile],
    ['--tls-cert', tls?.cert],
    ['--tls-key', tls?.key],
    ['--tls-ca', tls?.ca],
  ]);
  if (unreadable !== undefined) {
    logger.error(unreadable);
    return 1;
  }
  if (flags.passwordFile !== undefined) {
    try {
      options.password = await passwordFromFile(flags.passwordFile, logger);
    } catch (err) {
      logger.error((err as Error).message);
      return 1;
    }
  }
  if (noListener) logger.info('no listener named (--tcp, --rpc, --unix): starting the TCP listener');
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  if (threads !== flags.cpuNum) {
    logger.warn(
      `--cpu-num ${flags.cpuNum} cannot take effect: the thread pool already has ${threads} threads (start through the hati binary)`,
    );
  }
  const stoppedEarly = (name: NodeJS.Signals) => logger.info(`${name} during start-up: stopping`, { signal: name });
  if (stopping() !== undefined) {
    stoppedEarly(stopping() as NodeJS.Signals);
    logger.info('stopped');
    return 0;
  }
  let server: HatiServer;
  try {
    server = await HatiServer.start(options);
  } catch (err) {
    // A listener's errno (EADDRINUSE) says more than LISTEN_FAILED; otherwise Hati's code (DATA_DIR_LOCKED).
    logger.error(
      listenFailure(err as Error, flags),
      err instanceof ListenError
        ? { listener: err.listener === 'rpc' ? 'json-rpc' : err.listener, ...errorCode(err.cause) }
        : errorCode(err),
    );
    return 1;
  }
  if (stopping() !== undefined) {
    // The server cannot be stopped half-open; it is closed before it has been announced.
    stoppedEarly(stopping() as NodeJS.Signals);
    await server.close();
    logger.info('stopped');
    return 0;
  }
  // Until the server has closed: a SIGHUP while it shuts down must not kill it half-way.
  const hangup = reloadOnHangup(server, options, logger);
  if (earlyHangup.taken()) hangup.reload();
  try {
    const { tcp, unix, rpc, metrics } = server.addresses;
    const shards = { memory: server.storage.memory.shards, hdd: server.storage.hdd.shards };
    logger.info(
      `data in ${options.dataDir} (shards: memory ${shards.memory}, hdd ${shards.hdd}; hdd durability ${flags.hddDurability}, ${threads} disk threads)`,
      { dataDir: options.dataDir, shards, durability: flags.hddDurability, diskThreads: threads },
    );
    for (const line of [authLine(options), tlsLine(tls)]) if (line !== undefined) logger.info(line);
    // The server says which listeners speak TLS (`tls: true` in its addresses).
    if (tcp) {
      const address = hostPort(tcp.host, tcp.port);
      logger.info(`tcp${tcp.tls === true ? ' (tls)' : ''} listening on ${address}`, {
        listener: 'tcp',
        address,
        tls: tcp.tls === true,
      });
    }
    if (unix) logger.info(`unix socket listening on ${unix}`, { listener: 'unix', address: unix });
    if (rpc) {
      logger.info(`json-rpc listening on ${url(rpc)}`, {
        listener: 'json-rpc',
        address: hostPort(rpc.host, rpc.port),
        url: url(rpc),
        tls: rpc.tls === true,
      });
    }
    if (metrics) {
      logger.info(`metrics listening on ${url(metrics, '/metrics')}`, {
        listener: 'metrics',
        address: hostPort(metrics.host, metrics.port),
        url: url(metrics, '/metrics'),
      });
    }
    if (rpc && options.console !== false) logger.info(`console at ${url(rpc)}`, { url: url(rpc) });
    const name = await signal;
    logger.info(`${name}: shutting down`, { signal: name });
    await hangup.quiet();
    await server.close();
  } finally {
    hangup.remove();
  }
  logger.info('stopped');
  return 0;
}
