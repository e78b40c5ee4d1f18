import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type Durability, HatiServer, ListenError, type LogLevel, type ServerOptions } from '@hati/server';
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

/** Starts a server with the flags of `hati start`, and runs it until SIGINT or SIGTERM. */
export async function start(flags: StartFlags, io: Io): Promise<number> {
  // Handlers first: a signal during start-up (a large hdd store can take seconds to open)
  // stops the start-up instead of killing the process half-way or being ignored.
  let stopping: NodeJS.Signals | undefined;
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    const stop = (name: NodeJS.Signals) => {
      stopping ??= name;
      resolve(name);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const held = io.heldSignal?.();
    if (held !== undefined) stop(held);
  });
  const noListener = !flags.tcp && !flags.rpc && flags.unix === undefined;
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
  };
  if (flags.unix !== undefined) {
    // Checked before the store opens: Node reports a missing directory as EACCES.
    const problem = await socketDirProblem(flags.unix);
    if (problem !== undefined) {
      io.stderr(`hati: cannot listen on unix socket ${flags.unix}: ${problem}\n`);
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
  if (stopping !== undefined) {
    io.stdout(`hati: ${stopping} during start-up: stopping\nhati: stopped\n`);
    return 0;
  }
  let server: HatiServer;
  try {
    server = await HatiServer.start(options);
  } catch (err) {
    io.stderr(`hati: ${listenFailure(err as Error, flags)}\n`);
    return 1;
  }
  if (stopping !== undefined) {
    // The server cannot be stopped half-open; it is closed before it has been announced.
    io.stdout(`hati: ${stopping} during start-up: stopping\n`);
    await server.close();
    io.stdout('hati: stopped\n');
    return 0;
  }
  const { tcp, unix, rpc } = server.addresses;
  io.stdout(
    `hati: data in ${options.dataDir} (${flags.shards} shards, hdd durability ${flags.hddDurability}, ${threads} disk threads)\n`,
  );
  if (tcp) io.stdout(`hati: tcp listening on ${hostPort(tcp.host, tcp.port)}\n`);
  if (unix) io.stdout(`hati: unix socket listening on ${unix}\n`);
  if (rpc) io.stdout(`hati: json-rpc listening on http://${hostPort(rpc.host, rpc.port)}/\n`);
  io.stdout(`hati: ${await signal}: shutting down\n`);
  await server.close();
  io.stdout('hati: stopped\n');
  return 0;
}
