// Helpers of the hostile suite (issue 7): servers started under a wrapper (a network namespace,
// a lowered descriptor limit), raw HTTP with the headers a browser or an attacker sends, the
// server's memory as the kernel reports it, and PING latency while something heavy runs.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type IncomingHttpHeaders, request } from 'node:http';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Test } from 'tap';
import { type Address, RawClient, type Reply, ReplyError, within } from './hati.js';

/** TCP on a free loopback port. */
export const LOCAL_TCP = ['--tcp', '--tcp-host', '127.0.0.1', '--tcp-port', '0'];
/** JSON-RPC on a free loopback port. */
export const LOCAL_RPC = ['--rpc', '--rpc-host', '127.0.0.1', '--rpc-port', '0'];

export const MB = 1024 * 1024;

/** Whether `tool` is an executable somewhere on PATH. */
export function hasTool(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A skip reason when the test cannot run here (not root, not Linux, a tool missing), else false. */
export function needsRoot(what: string, tools: string[] = []): string | false {
  if (process.platform !== 'linux') return `${what} needs Linux`;
  if (process.getuid?.() !== 0) return `${what} needs root`;
  const missing = tools.filter((tool) => !hasTool(tool));
  return missing.length > 0 ? `${what} needs ${missing.join(', ')} on PATH` : false;
}

/** The code of an error reply (`-CODE message` → 'CODE'), or undefined for any other reply. */
export function errorCode(reply: Reply | undefined): string | undefined {
  return reply instanceof ReplyError ? reply.code : undefined;
}

/** A reply as one readable line, for assertion messages. */
export function show(reply: Reply | undefined): string {
  if (reply instanceof ReplyError) return `-${reply.code} ${reply.message}`;
  if (Buffer.isBuffer(reply)) return `$${reply.length}`;
  return JSON.stringify(reply);
}

/** Resident memory of a process, in bytes (0 once it is gone). */
export async function rss(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = status.match(/^VmRSS:\s+(\d+) kB$/m)?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/** Samples a process's resident memory every `everyMs` until `stop()`; `max` is the highest seen. */
export class RssSampler {
  max = 0;
  #running = true;
  readonly #done: Promise<void>;

  constructor(pid: number, everyMs = 50) {
    this.#done = (async () => {
      while (this.#running) {
        this.max = Math.max(this.max, await rss(pid));
        await delay(everyMs);
      }
    })();
  }

  async stop(): Promise<number> {
    this.#running = false;
    await this.#done;
    return this.max;
  }
}

/**
 * PINGs over its own connection, one at a time with `gapMs` between a reply and the next
 * PING, until `stop()`. `latencies` are in ms; a PING still unanswered when stopped counts
 * with the time it has waited, so a server that stops answering cannot look fast.
 */
export class Pinger {
  readonly latencies: number[] = [];
  readonly failures: string[] = [];
  #running = true;
  #done: Promise<void> = Promise.resolve();
  #sentAt = 0;
  #waiting = false;

  private constructor(readonly client: RawClient) {}

  /** Forgets the latencies so far (after a warm-up). */
  reset(): void {
    this.latencies.length = 0;
    this.failures.length = 0;
  }

  static async start(t: Test, address: Address, gapMs = 5): Promise<Pinger> {
    const pinger = new Pinger(await RawClient.open(t, address));
    pinger.#done = pinger.#loop(gapMs);
    return pinger;
  }

  async #loop(gapMs: number): Promise<void> {
    while (this.#running && !this.client.socket.destroyed) {
      const from = this.client.replies.length;
      this.#sentAt = performance.now();
      this.#waiting = true;
      this.client.write('PING\r\n');
      // Bounded, so that a server that stopped answering ends the loop soon after stop().
      const reply = await Promise.race([
        this.client.next(1, from).then((replies) => replies[0]),
        delay(3_000).then(() => new ReplyError('TIMEOUT', 'no PONG within 3 s')),
      ]);
      this.#waiting = false;
      this.latencies.push(performance.now() - this.#sentAt);
      if (reply !== 'PONG') this.failures.push(show(reply));
      await delay(gapMs);
    }
  }

  /** Stops, and returns the worst latency seen (ms). */
  async stop(): Promise<number> {
    this.#running = false;
    if (this.#waiting) this.latencies.push(performance.now() - this.#sentAt);
    await within(
      this.#done.catch(() => undefined),
      5_000,
      'the pinger',
    );
    return this.max;
  }

  get max(): number {
    return Math.max(0, ...this.latencies);
  }
}

/** Sends one PING on a new connection; its latency in ms (throws if no PONG within `timeoutMs`). */
export async function pingOnce(t: Test, address: Address, timeoutMs = 2_000): Promise<number> {
  const client = await within(RawClient.open(t, address), timeoutMs, 'connect for PING');
  const started = performance.now();
  const reply = await within(client.command('PING'), timeoutMs, 'PONG');
  const ms = performance.now() - started;
  client.socket.destroy();
  if (reply !== 'PONG') throw new Error(`PING got ${show(reply)}`);
  return ms;
}

export interface RawResult {
  /** Everything the server sent. */
  data: Buffer;
  /** 'end' (the server's FIN), an error code (ECONNRESET), or 'open' if still open after the wait. */
  closedBy: string;
}

/**
 * Connects, writes `bytes` in one write, and collects what comes back until the server closes
 * the connection or `waitMs` passes (then `closedBy` is 'open' and the socket is destroyed).
 */
export function rawExchange(address: Address, bytes: string | Buffer, waitMs = 3_000): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const socket = connect(address.port, address.host);
    const chunks: Buffer[] = [];
    let closedBy: string | undefined;
    const timer = setTimeout(() => {
      closedBy ??= 'open';
      socket.destroy();
    }, waitMs);
    socket.once('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      closedBy ??= 'end';
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (chunks.length === 0 && closedBy === undefined && err.code === 'ECONNREFUSED') reject(err);
      closedBy ??= err.code ?? err.message;
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closedBy: closedBy ?? 'close' });
    });
  });
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or `{}` if it is not JSON. */
  json: { id?: unknown; result?: unknown; error?: { code?: number; message?: string; data?: { code?: string } } };
}

/**
 * One HTTP request with exactly the headers given (node:http, since fetch forbids setting
 * Host and Origin). Rejects if no full response within `timeoutMs`.
 */
export function httpRequest(
  address: Address,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer },
  timeoutMs = 10_000,
): Promise<HttpResult> {
  return within(
    new Promise<HttpResult>((resolve, reject) => {
      const req = request(
        {
          host: address.host,
          port: address.port,
          method: options.method ?? 'POST',
          path: options.path ?? '/',
          headers: options.headers ?? {},
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: HttpResult['json'] | undefined;
            // Parsed on first use: a large response is not parsed while the test measures latency.
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text,
              get json() {
                if (json === undefined) {
                  try {
                    json = JSON.parse(text) as HttpResult['json'];
                  } catch {
                    json = {};
                  }
                }
                return json;
              },
            });
          });
        },
      );
      req.on('error', reject);
      req.end(options.body);
    }),
    timeoutMs,
    `HTTP ${options.method ?? 'POST'} ${options.path ?? '/'}`,
  );
}

/** A JSON-RPC body for one call. */
export function rpcBody(method: string, params?: unknown, id: unknown = 1): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined && { params }) });
}

/** Runs `command args`, resolving with its stdout; rejects on a non-zero exit or after `timeoutMs`. */
export function run(command: string, args: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS'));
    execFile(command, args, { timeout: timeoutMs, env, maxBuffer: 16 * MB }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.slice(0, 3).join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Polls `check` every `everyMs` until it returns true or `timeoutMs` passes; returns the last result. */
export async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await delay(everyMs);
  }
}

/**
 * One connection pipelining `SET hdd 0 <prefix><n> v` for n = 0, 1, 2, ... in windows of
 * `window`, keeping up to `windows` windows in flight, until `stop()` or the server closes it.
 * `replies[n]` is the reply to key n; a key with no reply was sent but not answered. Four
 * windows in flight keep unread requests in the server's socket buffer at any moment, which
 * is what makes a careless close reset the connection and drop replies already sent.
 */
export class PrefixWriter {
  sent = 0;
  #stopped = false;

  private constructor(
    readonly client: RawClient,
    readonly prefix: string,
    readonly window: number,
  ) {}

  static async start(t: Test, address: Address, prefix: string, window = 500, windows = 4): Promise<PrefixWriter> {
    const writer = new PrefixWriter(await RawClient.open(t, address), prefix, window);
    writer.client.onReply = () => {
      if (writer.sent - writer.client.replies.length <= (windows - 1) * window) writer.#send();
    };
    for (let i = 0; i < windows; i++) writer.#send();
    return writer;
  }

  #send(): void {
    const { socket } = this.client;
    if (this.#stopped || this.client.closedBy !== undefined || !socket.writable) return;
    let batch = '';
    for (let i = 0; i < this.window; i++) batch += `SET hdd 0 ${this.prefix}${this.sent++} v\r\n`;
    socket.write(batch);
  }

  get replies(): Reply[] {
    return this.client.replies;
  }

  /** Keys whose reply was +OK. */
  get acked(): number {
    return this.replies.filter((reply) => reply === 'OK').length;
  }

  stop(): void {
    this.#stopped = true;
  }
}

/** HAS hdd for each key, pipelined in batches; true where the key exists. */
export async function hasKeys(client: RawClient, keys: string[], batch = 5_000): Promise<boolean[]> {
  const present: boolean[] = [];
  for (let i = 0; i < keys.length; i += batch) {
    const slice = keys.slice(i, i + batch);
    const from = client.replies.length;
    client.write(slice.map((key) => `HAS hdd ${key}\r\n`).join(''));
    const replies = await client.next(slice.length, from);
    if (replies.length < slice.length) throw new Error(`HAS: ${replies.length} of ${slice.length} replies`);
    for (const reply of replies) {
      if (reply !== 0 && reply !== 1) throw new Error(`HAS replied ${show(reply)}`);
      present.push(reply === 1);
    }
  }
  return present;
}
