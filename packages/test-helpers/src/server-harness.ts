// A server in this process on free ports in a temporary directory. The server class comes from
// the caller (this package depends on no Hati package, so @hati/protocol's tests can use it).
import { join } from 'node:path';
import type { Test } from 'tap';
import type { Address } from './raw-client.js';
import { tempDir } from './temp-dir.js';

/** What the harness needs of a server: the listeners' addresses and a close. */
export interface ServerLike {
  readonly addresses: { tcp?: Address; unix?: string; rpc?: Address };
  close(): Promise<void>;
}

/** A class with `static start(options)`, such as HatiServer. */
export interface ServerClass<S extends ServerLike, O> {
  start(options: O): Promise<S>;
}

/** A logger class taking a level and a line sink, such as @hati/server's Logger. */
export type LoggerClass = new (level: 'warn', write: (line: string) => void) => unknown;

export interface Harness<S> {
  server: S;
  /** The temporary directory: the UNIX socket and `data/` are in it; removed after the test. */
  dir: string;
  /** The server's clock: set `now` to move time (unless `options.clock` replaced it). */
  clock: { now: number };
  /** Lines the server logged at `warn` and above. */
  log: string[];
}

/**
 * Starts `Server` with TCP, UNIX and JSON-RPC listeners on free loopback ports, durability `no`,
 * a clock the test moves and a logger into `log`; `options` override any of these. The server
 * is closed and its directory removed after the test.
 */
export async function startServer<S extends ServerLike, O>(
  t: Test,
  Server: ServerClass<S, O>,
  Logger: LoggerClass,
  options: Partial<O> = {},
): Promise<Harness<S>> {
  const dir = await tempDir(t, 'hati-server-');
  const clock = { now: 1_700_000_000_000 };
  const log: string[] = [];
  const server = await Server.start({
    tcp: { host: '127.0.0.1', port: 0 },
    unix: join(dir, 'hati.sock'),
    rpc: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, 'data'),
    durability: 'no',
    clock: () => clock.now,
    logger: new Logger('warn', (line) => log.push(line)),
    ...options,
  } as O);
  // Registered after tempDir's teardown, so it runs first: the server closes, then its directory goes.
  t.teardown(() => server.close());
  return { server, dir, clock, log };
}

/** POSTs a JSON-RPC body (a string is sent as is) and returns the status and the parsed JSON (undefined when empty). */
export async function rpcPost(address: Address, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`http://${address.host}:${address.port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}
