import { resolve } from 'node:path';
import { type Durability, HatiServer, type LogLevel, type ServerOptions } from '@hati/server';
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

/** Starts a server with the flags of `hati start`, and runs it until SIGINT or SIGTERM. */
export async function start(flags: StartFlags, io: Io): Promise<number> {
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
  if (noListener) io.stdout('hati: no listener named (--tcp, --rpc, --unix): starting the TCP listener\n');
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  if (threads !== flags.cpuNum) {
    io.stderr(
      `hati: --cpu-num ${flags.cpuNum} cannot take effect: the thread pool already has ${threads} threads (start through the hati binary)\n`,
    );
  }
  // Handlers first: a signal during start-up shuts down once the server is up, never kills it.
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  let server: HatiServer;
  try {
    server = await HatiServer.start(options);
  } catch (err) {
    io.stderr(`hati: ${(err as Error).message}\n`);
    return 1;
  }
  const { tcp, unix, rpc } = server.addresses;
  io.stdout(
    `hati: data in ${options.dataDir} (${flags.shards} shards, hdd durability ${flags.hddDurability}, ${threads} disk threads)\n`,
  );
  if (tcp) io.stdout(`hati: tcp listening on ${tcp.host}:${tcp.port}\n`);
  if (unix) io.stdout(`hati: unix socket listening on ${unix}\n`);
  if (rpc) io.stdout(`hati: json-rpc listening on http://${rpc.host}:${rpc.port}/\n`);
  io.stdout(`hati: ${await signal}: shutting down\n`);
  await server.close();
  io.stdout('hati: stopped\n');
  return 0;
}
