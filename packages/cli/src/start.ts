import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  authClientsOf,
  type Durability,
  HatiServer,
  ListenError,
  type LogLevel,
  type ServerOptions,
  type TlsFiles,
} from '@hati/server';
import { hostPort } from './host-port.js';
import type { Io } from './main.js';

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
  shards: number;
  hddDurability: Durability;
  protectedMode: 'yes' | 'no';
  maxClients?: number;
  maxInputBuffer: number;
  rpcCorsOrigins: string;
  rpcHosts: string;
  rpcMaxBatch: number;
  logLevel: LogLevel;
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
  const kind = err.listener === 'unix' ? 'unix socket' : err.listener === 'tcp' ? 'tcp' : 'json-rpc';
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
async function passwordFromFile(path: string, io: Io): Promise<string> {
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
    io.stderr(
      `hati: warning: --password-file ${path} can be read by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it\n`,
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
  return who.length === 0 ? undefined : `hati: clients must authenticate as ${who.join(' or ')}`;
}

/** The start-up line about TLS, or undefined without it. */
function tlsLine(tls: TlsFiles | undefined): string | undefined {
  if (tls === undefined) return undefined;
  const authClients = authClientsOf(tls);
  const clients =
    authClients === 'no'
      ? 'no client certificates asked for'
      : `client certificates ${authClients === 'yes' ? 'required' : 'checked when given'} (CA ${tls.ca})`;
  return `hati: tls certificate ${tls.cert}; ${clients}`;
}

/**
 * Runs `server.reload()` on each SIGHUP, one at a time, and says what it did. `quiet` makes
 * later SIGHUPs do nothing (the server is shutting down; the handler stays so that a SIGHUP
 * cannot kill it half-way) and waits for a reload in progress; `remove` stops listening.
 */
function reloadOnHangup(
  server: HatiServer,
  options: ServerOptions,
  io: Io,
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
          io.stdout(
            what.length === 0
              ? 'hati: SIGHUP: nothing to reload (no --users-file, no TLS)\n'
              : `hati: SIGHUP: reloaded ${what.join(' and ')}\n`,
          ),
        (err: Error) => io.stderr(`hati: SIGHUP: reload failed, nothing changed: ${err.message}\n`),
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

/** Starts a server with the flags of `hati start`, and runs it until SIGINT or SIGTERM. */
export async function start(flags: StartFlags, io: Io): Promise<number> {
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
    return await run(flags, io, signal, () => stopping, {
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

async function run(
  flags: StartFlags,
  io: Io,
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
    shards: flags.shards,
    durability: flags.hddDurability,
    logLevel: flags.logLevel,
    protectedMode: flags.protectedMode === 'yes',
    ...(flags.maxClients !== undefined && { maxClients: flags.maxClients }),
    maxInputBuffer: flags.maxInputBuffer,
    rpcCorsOrigins: list(flags.rpcCorsOrigins),
    rpcHosts: list(flags.rpcHosts),
    maxRpcBatch: flags.rpcMaxBatch,
    ...((flags.tcp || noListener) && { tcp: { host: flags.tcpHost, port: flags.tcpPort } }),
    ...(flags.unix !== undefined && { unix: flags.unix }),
    ...(flags.rpc && { rpc: { host: flags.rpcHost, port: flags.rpcPort } }),
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
      io.stderr(`hati: cannot listen on unix socket ${flags.unix}: ${problem}\n`);
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
    io.stderr(`hati: ${unreadable}\n`);
    return 1;
  }
  if (flags.passwordFile !== undefined) {
    try {
      options.password = await passwordFromFile(flags.passwordFile, io);
    } catch (err) {
      io.stderr(`hati: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (noListener) io.stdout('hati: no listener named (--tcp, --rpc, --unix): starting the TCP listener\n');
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  if (threads !== flags.cpuNum) {
    io.stderr(
      `hati: --cpu-num ${flags.cpuNum} cannot take effect: the thread pool already has ${threads} threads (start through the hati binary)\n`,
    );
  }
  if (stopping() !== undefined) {
    io.stdout(`hati: ${stopping()} during start-up: stopping\nhati: stopped\n`);
    return 0;
  }
  let server: HatiServer;
  try {
    server = await HatiServer.start(options);
  } catch (err) {
    io.stderr(`hati: ${listenFailure(err as Error, flags)}\n`);
    return 1;
  }
  if (stopping() !== undefined) {
    // The server cannot be stopped half-open; it is closed before it has been announced.
    io.stdout(`hati: ${stopping()} during start-up: stopping\n`);
    await server.close();
    io.stdout('hati: stopped\n');
    return 0;
  }
  // Until the server has closed: a SIGHUP while it shuts down must not kill it half-way.
  const hangup = reloadOnHangup(server, options, io);
  if (earlyHangup.taken()) hangup.reload();
  try {
    const { tcp, unix, rpc } = server.addresses;
    io.stdout(
      `hati: data in ${options.dataDir} (${flags.shards} shards, hdd durability ${flags.hddDurability}, ${threads} disk threads)\n`,
    );
    for (const line of [authLine(options), tlsLine(tls)]) if (line !== undefined) io.stdout(`${line}\n`);
    // The server says which listeners speak TLS (`tls: true` in its addresses).
    if (tcp) io.stdout(`hati: tcp${tcp.tls === true ? ' (tls)' : ''} listening on ${hostPort(tcp.host, tcp.port)}\n`);
    if (unix) io.stdout(`hati: unix socket listening on ${unix}\n`);
    if (rpc) {
      io.stdout(
        `hati: json-rpc listening on ${rpc.tls === true ? 'https' : 'http'}://${hostPort(rpc.host, rpc.port)}/\n`,
      );
    }
    io.stdout(`hati: ${await signal}: shutting down\n`);
    await hangup.quiet();
    await server.close();
  } finally {
    hangup.remove();
  }
  io.stdout('hati: stopped\n');
  return 0;
}
