import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { HatiServer, Logger } from '@hati/server';
import { type Harness, startServer as harnessStart } from '@hati/test-helpers';
import type { Test } from 'tap';
import { HatiError } from '../../src/index.js';

/** A server in this process with TCP, UNIX and JSON-RPC listeners, on real time; closed after the test. */
export function startServer(t: Test, rpcPort = 0): Promise<Harness<HatiServer>> {
  return harnessStart(t, HatiServer, Logger, { rpc: { host: '127.0.0.1', port: rpcPort }, clock: Date.now });
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
