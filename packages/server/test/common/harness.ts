// Test helpers: @hati/test-helpers' server harness bound to this package's HatiServer, its raw
// protocol client (its own RESP reader, so tests see exactly what a user's tool sees), and
// JSON-RPC calls.

import { networkInterfaces } from 'node:os';
import { type Harness as BaseHarness, startServer as harnessStart, rpcPost } from '@hati/test-helpers';
import type { Test } from 'tap';
import { HatiServer, Logger, type ServerOptions } from '../../src/index.js';

export { RawClient, type Reply, ReplyError, type ReplyMap } from '@hati/test-helpers';

export type Harness = BaseHarness<HatiServer>;

/** Starts a server with TCP, UNIX and JSON-RPC listeners on free ports; closed after the test. */
export function startServer(t: Test, options: Partial<ServerOptions> = {}): Promise<Harness> {
  return harnessStart(t, HatiServer, Logger, options);
}

/** POSTs a JSON-RPC body (any string) and returns status and parsed JSON (or undefined). */
export function rpc(h: Harness, body: unknown): Promise<{ status: number; json: unknown }> {
  return rpcPost(h.server.addresses.rpc as { host: string; port: number }, body);
}

/** Calls one JSON-RPC method and returns its `result` or `error`. */
export async function call(
  h: Harness,
  method: string,
  params?: unknown,
): Promise<{ result?: unknown; error?: unknown }> {
  const { json } = await rpc(h, { jsonrpc: '2.0', id: 1, method, ...(params !== undefined && { params }) });
  const response = json as { result?: unknown; error?: unknown };
  return 'error' in response ? { error: response.error } : { result: response.result };
}

/** An IPv4 address of this machine that is not loopback (to reach a listener as another machine would), if any. */
export function nonLoopbackIPv4(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((address) => address !== undefined && address.family === 'IPv4' && !address.internal)?.address;
}
