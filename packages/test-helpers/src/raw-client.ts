// A client that writes raw bytes and reads the replies with this package's own RESP reader, so
// tests see exactly what a user's tool sees.
import { connect, type Socket } from 'node:net';
import type { Test } from 'tap';
import { encodeCommand, type Reply, RespReader } from './resp-reader.js';

/** A TCP address, as the server reports its listeners. */
export interface Address {
  host: string;
  port: number;
}

/** What `RawClient.tcp` and `.unix` need of a harness: a server that reports its addresses. */
export interface HasAddresses {
  readonly server: { readonly addresses: { tcp?: Address; unix?: string } };
}

/** How long `next` and `send` wait for replies by default, in ms. */
const WAIT_MS = 20_000;

function connectTo(where: Address | string): Promise<Socket> {
  const socket = typeof where === 'string' ? connect(where) : connect(where.port, where.host);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** A client speaking raw bytes; replies are read as they arrive, pushes kept apart. */
export class RawClient {
  readonly socket: Socket;
  /** Every reply, in order (RESP3 pushes excluded). */
  readonly replies: Reply[] = [];
  /** Every RESP3 push frame (`>`), in order. */
  readonly pushes: Reply[][] = [];
  /** How the connection ended: 'end' (the server's FIN), an error code such as ECONNRESET, 'close', or undefined while open. */
  closedBy: string | undefined;
  /** Set when the bytes received are not RESP; nothing more is read after that. */
  protocolError: Error | undefined;
  onReply: ((reply: Reply) => void) | undefined;
  onPush: ((push: Reply[]) => void) | undefined;
  readonly #closed: Promise<void>;
  #waiters: Array<() => void> = [];

  constructor(socket: Socket) {
    this.socket = socket;
    const reader = new RespReader((reply, push) => {
      if (push) {
        this.pushes.push(reply as Reply[]);
        this.onPush?.(reply as Reply[]);
      } else {
        this.replies.push(reply);
        this.onReply?.(reply);
      }
      this.#wake();
    });
    socket.on('data', (chunk: Buffer) => {
      const error = reader.push(chunk);
      if (error !== undefined) this.protocolError ??= error;
    });
    socket.on('end', () => {
      this.closedBy ??= 'end';
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.closedBy ??= err.code ?? err.message;
    });
    this.#closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closedBy ??= 'close';
        this.#wake();
        resolve();
      }),
    );
  }

  /** Connects to a TCP address or a UNIX socket path; the caller closes the client. */
  static async connect(where: Address | string): Promise<RawClient> {
    return new RawClient(await connectTo(where));
  }

  /** Connects to a TCP address or a UNIX socket path; destroyed after the test. */
  static async open(t: Test, where: Address | string): Promise<RawClient> {
    const socket = await connectTo(where);
    t.teardown(() => {
      socket.destroy();
    });
    return new RawClient(socket);
  }

  /** Connects to the harness's TCP listener; destroyed after the test. */
  static tcp(t: Test, h: HasAddresses): Promise<RawClient> {
    const { tcp } = h.server.addresses;
    if (tcp === undefined) throw new Error('the server has no TCP listener');
    return RawClient.open(t, tcp);
  }

  /** Connects to the harness's UNIX socket; destroyed after the test. */
  static unix(t: Test, h: HasAddresses): Promise<RawClient> {
    const { unix } = h.server.addresses;
    if (unix === undefined) throw new Error('the server has no UNIX socket');
    return RawClient.open(t, unix);
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Waits until `done()`, the socket is destroyed or `timeoutMs` passed. */
  async #until(done: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done() && !this.socket.destroyed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  write(bytes: string | Buffer): boolean {
    return this.socket.write(bytes);
  }

  /** Sends one command as a RESP array and returns its reply (undefined if none came). */
  async command(...args: Array<string | Buffer>): Promise<Reply> {
    const before = this.replies.length;
    this.write(encodeCommand(args));
    const [reply] = await this.next(1, before);
    return reply as Reply;
  }

  /** Sends one inline line (CRLF is added) and returns its reply (undefined if none came). */
  async inline(line: string | Buffer): Promise<Reply> {
    const before = this.replies.length;
    this.write(Buffer.concat([Buffer.from(line), Buffer.from('\r\n')]));
    const [reply] = await this.next(1, before);
    return reply as Reply;
  }

  /**
   * Sends the commands in one write (pipelined) and returns their replies, in order; rejects
   * when the connection closes or `timeoutMs` passes before all of them came.
   */
  async send(commands: ReadonlyArray<ReadonlyArray<string | Buffer>>, timeoutMs = WAIT_MS): Promise<Reply[]> {
    const before = this.replies.length;
    this.write(Buffer.concat(commands.map(encodeCommand)));
    const replies = await this.next(commands.length, before, timeoutMs);
    if (replies.length < commands.length) {
      const why = this.protocolError?.message ?? (this.socket.destroyed ? `closed (${this.closedBy})` : 'timed out');
      throw new Error(`${replies.length} of ${commands.length} replies: ${why}`);
    }
    return replies;
  }

  /** Waits until `count` replies arrived after index `from` (or the socket closed, or time ran out). */
  async next(count: number, from = this.replies.length, timeoutMs = WAIT_MS): Promise<Reply[]> {
    await this.#until(() => this.replies.length >= from + count, timeoutMs);
    return this.replies.slice(from, from + count);
  }

  /** Waits until `count` pushes arrived after index `from` (or the socket closed, or time ran out). */
  async nextPushes(count: number, from = this.pushes.length, timeoutMs = WAIT_MS): Promise<Reply[][]> {
    await this.#until(() => this.pushes.length >= from + count, timeoutMs);
    return this.pushes.slice(from, from + count);
  }

  /** Resolves when the socket has closed. */
  closed(): Promise<void> {
    return this.#closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A reply as text: bulk strings decoded, so `t.equal(text(reply), 'v1')` reads naturally. */
export function text(reply: Reply | undefined): unknown {
  return Buffer.isBuffer(reply) ? reply.toString('utf8') : reply;
}
