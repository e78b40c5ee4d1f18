// Test helpers: a server on free ports in a temporary directory, and a raw protocol client
// that writes bytes and reads RESP replies, so tests see exactly what a user's tool sees.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCommand, type Reply, ReplyParser } from '@hati/protocol';
import type { Test } from 'tap';
import { HatiServer, Logger, type ServerOptions } from '../../src/index.js';

export interface Harness {
  server: HatiServer;
  dir: string;
  clock: { now: number };
  log: string[];
}

/** Starts a server with TCP, UNIX and JSON-RPC listeners on free ports; closed after the test. */
export async function startServer(t: Test, options: Partial<ServerOptions> = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'hati-server-'));
  const clock = { now: 1_700_000_000_000 };
  const log: string[] = [];
  const server = await HatiServer.start({
    tcp: { host: '127.0.0.1', port: 0 },
    unix: join(dir, 'hati.sock'),
    rpc: { host: '127.0.0.1', port: 0 },
    dataDir: join(dir, 'data'),
    durability: 'no',
    clock: () => clock.now,
    logger: new Logger('warn', (line) => log.push(line)),
    ...options,
  });
  t.teardown(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { server, dir, clock, log };
}

/** A client speaking raw bytes; replies are parsed as they arrive. */
export class RawClient {
  readonly socket: Socket;
  readonly replies: Reply[] = [];
  #waiters: Array<() => void> = [];
  #closed: Promise<void>;
  protocolError: Error | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    const parser = new ReplyParser((reply) => {
      this.replies.push(reply);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on('data', (chunk: Buffer) => {
      const error = parser.push(chunk);
      if (error !== undefined) this.protocolError = error;
    });
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('close', () => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on('error', () => {});
  }

  static async tcp(t: Test, h: Harness): Promise<RawClient> {
    const { host, port } = h.server.addresses.tcp as { host: string; port: number };
    return RawClient.#open(t, connect(port, host));
  }

  static async unix(t: Test, h: Harness): Promise<RawClient> {
    return RawClient.#open(t, connect(h.server.addresses.unix as string));
  }

  static async #open(t: Test, socket: Socket): Promise<RawClient> {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    t.teardown(() => {
      socket.destroy();
    });
    return client;
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends one command as a RESP array and returns its reply. */
  async command(...args: Array<string | Buffer>): Promise<Reply> {
    const before = this.replies.length;
    this.write(encodeCommand(args));
    const [reply] = await this.next(1, before);
    return reply as Reply;
  }

  /** Sends one inline line (a newline is added) and returns its reply. */
  async inline(line: string | Buffer): Promise<Reply> {
    const before = this.replies.length;
    this.write(Buffer.concat([Buffer.from(line), Buffer.from('\r\n')]));
    const [reply] = await this.next(1, before);
    return reply as Reply;
  }

  /** Waits until `count` replies arrived after index `from` (or the socket closed). */
  async next(count: number, from = this.replies.length): Promise<Reply[]> {
    const deadline = Date.now() + 20_000;
    while (this.replies.length < from + count && !this.socket.destroyed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.replies.slice(from, from + count);
  }

  closed(): Promise<void> {
    return this.#closed;
  }
}

/** POSTs a JSON-RPC body (any string) and returns status and parsed JSON (or undefined). */
export async function rpc(h: Harness, body: unknown): Promise<{ status: number; json: unknown }> {
  const { host, port } = h.server.addresses.rpc as { host: string; port: number };
  const res = await fetch(`http://${host}:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
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
