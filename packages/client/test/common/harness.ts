import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { HatiServer, Logger, type ServerOptions } from '@hati/server';
import { type Harness, startServer as harnessStart } from '@hati/test-helpers';
import type { Test } from 'tap';
import { type CommandMethods, createClient, createRpcClient, HatiError } from '../../src/index.js';

/**
 * A server in this process with TCP, UNIX and JSON-RPC listeners, on real time; closed after the
 * test. `options` adds to (or replaces) the harness's: `password`, `usersFile`, `tls`...
 */
export function startServer(t: Test, rpcPort = 0, options: Partial<ServerOptions> = {}): Promise<Harness<HatiServer>> {
  return harnessStart(t, HatiServer, Logger, {
    rpc: { host: '127.0.0.1', port: rpcPort },
    clock: Date.now,
    ...options,
  });
}

/**
 * A client of `server` over each transport, named `tcp`, `unix` and `rpc` (and `resp2`, a TCP
 * client speaking RESP2, when asked); the socket clients are closed after the test.
 */
export function clientsOf(
  t: Test,
  server: HatiServer,
  options: { resp2?: boolean } = {},
): Array<[string, CommandMethods]> {
  const port = server.addresses.tcp?.port as number;
  const tcp = createClient({ port });
  const unix = createClient({ path: server.addresses.unix as string });
  const sockets = options.resp2 === true ? [tcp, createClient({ port, protocol: 2 }), unix] : [tcp, unix];
  t.teardown(() => Promise.all(sockets.map((client) => client.close())));
  const rpc = createRpcClient({ url: `http://127.0.0.1:${server.addresses.rpc?.port}/` });
  const named: Array<[string, CommandMethods]> = [
    ['tcp', tcp],
    ['unix', unix],
    ['rpc', rpc],
  ];
  if (sockets.length === 3) named.splice(1, 0, ['resp2', sockets[1] as CommandMethods]);
  return named;
}

/** A server in a child process (so it can be killed for real) on `port` (0: any). */
export async function spawnServer(t: Test, dataDir: string, port = 0): Promise<{ child: ChildProcess; port: number }> {
  const fixture = new URL('../fixtures/server.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, [...process.execArgv, fixture, String(port), dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const [line] = (await once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), 'line')) as [string];
  return { child, port: Number(line.split(' ')[1]) };
}

/** A port nothing listens on (it was free a moment ago). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** The code a call rejects with (a HatiError's), or 'resolved'. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof HatiError) return err.code;
    throw err;
  }
  return 'resolved';
}

/** A TCP proxy in front of a server: `drop()` cuts every connection through it, as a network failure would. */
export interface Proxy {
  readonly port: number;
  /** Destroys both ends of every connection made so far; new ones are still let through. */
  drop(): void;
}

export async function startProxy(t: Test, target: number): Promise<Proxy> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };
  const proxy = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: target });
    track(client);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => proxy.close(resolve));
  });
  return {
    port: (proxy.address() as AddressInfo).port,
    drop: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** A bound on calls that must fail: a client that retried instead fails them with TIMEOUT, not hangs the test. */
export const BOUND = { timeout: 10_000 };

/** The error a call rejects with (throws if it resolves). */
export async function errorOf(promise: Promise<unknown>): Promise<HatiError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof HatiError) return err;
    throw err;
  }
  throw new Error('resolved');
}
