import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { type CommandName, commands, encodeCommand, type Reply, ReplyParser } from '@hati/protocol';
import { type ArgsOf, type CallOptions, CommandMethods, decodeReply, type ReplyOf } from './commands.js';
import { clientError, type HatiError } from './errors.js';
import { type ClientOptions, clientDefaults, type ReconnectOptions } from './options.js';

/** One call, from the moment it is made until its reply (or error) settles it. */
interface Pending {
  bytes: Buffer;
  name: string;
  /** How to read the reply; `raw` hands it over as parsed (`sendCommand`). */
  kind: (typeof commands)[CommandName]['reply'] | 'raw';
  resolve: (value: unknown) => void;
  reject: (err: HatiError) => void;
  /** Settled early (timeout, abort): its reply, if one comes, is read and dropped. */
  settled: boolean;
  cleanup: (() => void) | undefined;
}

export type ClientState = 'connecting' | 'ready' | 'reconnecting' | 'closing' | 'closed';

export interface ClientEvents {
  connect: [];
  reconnecting: [{ attempt: number; delay: number }];
  error: [Error];
  close: [];
}

/**
 * A client over TCP or a UNIX socket, in the manner of ioredis and node-redis.
 *
 * - Automatic pipelining: calls made in the same tick are written in one write; replies are
 *   matched in order.
 * - Two queues (node-redis): calls not yet written wait in a bounded offline queue and survive
 *   a reconnect; calls written but unanswered when the connection drops reject with the
 *   transient CONNECTION_LOST, and are never re-sent silently.
 * - Reconnects with capped exponential backoff plus jitter, unless `reconnect: false`.
 * - Per-call timeout and AbortSignal; the connection stays usable (a late reply is dropped).
 * - Events: connect, reconnecting, error (only emitted when someone listens), close.
 */
export class HatiClient extends CommandMethods {
  readonly #events = new EventEmitter<ClientEvents>();
  readonly #options: Required<Omit<ClientOptions, 'reconnect' | 'host' | 'port' | 'path'>> & {
    reconnect: Required<ReconnectOptions> | false;
  };
  readonly #connectTo: () => Socket;
  #socket: Socket | undefined;
  #state: ClientState = 'connecting';
  /** Not yet written. */
  #offline: Pending[] = [];
  /** Written in this tick's batch, not yet handed to the socket. */
  #batch: Pending[] = [];
  /** Written, waiting for replies, in order. */
  #inflight: Pending[] = [];
  #inflightHead = 0;
  #attempt = 0;
  /** QUIT was called: nothing more is sent, and the connection's end is the client's. */
  #quitting = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #closed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(options: ClientOptions = {}) {
    super();
    const reconnect = options.reconnect === false ? false : { ...clientDefaults.reconnect, ...options.reconnect };
    this.#options = {
      reconnect,
      maxOfflineCommands: options.maxOfflineCommands ?? clientDefaults.maxOfflineCommands,
      commandTimeout: options.commandTimeout ?? clientDefaults.commandTimeout,
      connectTimeout: options.connectTimeout ?? clientDefaults.connectTimeout,
    };
    // One place decides the transport; TLS will be a third branch here.
    this.#connectTo =
      'path' in options
        ? () => connect({ path: options.path })
        : () => connect({ host: options.host ?? clientDefaults.host, port: options.port ?? clientDefaults.port });
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#open();
  }

  get state(): ClientState {
    return this.#state;
  }

  on<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): this {
    this.#events.on(event, listener as never);
    return this;
  }

  off<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): this {
    this.#events.off(event, listener as never);
    return this;
  }

  once<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): this {
    this.#events.once(event, listener as never);
    return this;
  }

  call<N extends CommandName>(name: N, args: ArgsOf<N>, options: CallOptions = {}): Promise<ReplyOf<N>> {
    const bytes = encodeCommand([name, ...(args as Array<string | number | Uint8Array>).map(argBytes)]);
    return this.#send(name, commands[name].reply, bytes, options) as Promise<ReplyOf<N>>;
  }

  /**
   * Sends any command, named or not in the table, and resolves with the reply as parsed:
   * a string, number, Buffer, null, array, or a ReplyError (server errors are returned, not
   * thrown). For tools such as `hati client`; applications use the typed methods.
   */
  sendCommand(args: ReadonlyArray<string | Uint8Array>, options: CallOptions = {}): Promise<Reply> {
    const name = String(args[0] ?? '').toUpperCase();
    return this.#send(name, 'raw', encodeCommand(args), options) as Promise<Reply>;
  }

  #send(name: string, kind: Pending['kind'], bytes: Buffer, options: CallOptions): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#state === 'closing' || this.#state === 'closed' || this.#quitting) {
        reject(clientError('CONNECTION_CLOSED', `${name}: the client is closed`));
        return;
      }
      const pending: Pending = {
        bytes,
        name,
        kind,
        resolve,
        reject,
        settled: false,
        cleanup: undefined,
      };
      if (!this.#watch(pending, options)) return;
      if (this.#state === 'ready') {
        this.#write(pending);
      } else if (this.#offline.length >= this.#options.maxOfflineCommands) {
        this.#settle(
          pending,
          clientError('OFFLINE_QUEUE_FULL', `${name}: ${this.#offline.length} commands already wait for a connection`),
        );
      } else {
        this.#offline.push(pending);
      }
    });
  }

  /**
   * Sends QUIT after the calls made before it; resolves once the server has closed the
   * connection. Calls made after it reject with CONNECTION_CLOSED; no reconnect follows.
   */
  async quit(): Promise<void> {
    if (this.#state === 'closed' || this.#quitting) return this.#closed;
    if (this.#state === 'reconnecting' || this.#state === 'closing') return this.close();
    const reply = this.call('QUIT', []);
    this.#quitting = true;
    await reply.catch(() => undefined);
    await this.#closed;
  }

  /**
   * Closes the client: calls still waiting to be written reject with CONNECTION_CLOSED; calls
   * already written get their replies first. Resolves when the socket is closed.
   */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closing';
    clearTimeout(this.#reconnectTimer);
    this.#failOffline('CONNECTION_CLOSED', 'the client was closed');
    this.#flushBatch();
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed) {
      this.#finish();
    } else if (this.#inflightHead === this.#inflight.length) {
      socket.end();
    }
    await this.#closed;
  }

  /** Arms the call's timeout and abort signal; false when it is already settled. */
  #watch(pending: Pending, options: CallOptions): boolean {
    const { signal } = options;
    if (signal?.aborted) {
      this.#settle(pending, clientError('ABORTED', `${pending.name}: aborted`, signal.reason));
      return false;
    }
    const timeout = options.timeout ?? this.#options.commandTimeout;
    let timer: NodeJS.Timeout | undefined;
    if (timeout > 0) {
      timer = setTimeout(
        () => this.#settle(pending, clientError('TIMEOUT', `${pending.name}: no reply within ${timeout} ms`)),
        timeout,
      );
    }
    const onAbort = () => this.#settle(pending, clientError('ABORTED', `${pending.name}: aborted`, signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timer !== undefined || signal !== undefined) {
      pending.cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
    }
    return true;
  }

  /** Settles a call early with an error. A call not yet written is dropped from the queue. */
  #settle(pending: Pending, error: HatiError): void {
    if (pending.settled) return;
    pending.settled = true;
    pending.cleanup?.();
    const queued = this.#offline.indexOf(pending);
    if (queued !== -1) this.#offline.splice(queued, 1);
    pending.reject(error);
  }

  #write(pending: Pending): void {
    if (this.#batch.length === 0) queueMicrotask(() => this.#flushBatch());
    this.#batch.push(pending);
  }

  /** Writes every call of this tick in one write. */
  #flushBatch(): void {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    const socket = this.#socket;
    if (socket === undefined || (this.#state !== 'ready' && this.#state !== 'closing')) {
      // Lost the connection in this tick: back to the front of the offline queue, unwritten.
      this.#offline.unshift(...batch.filter((p) => !p.settled));
      return;
    }
    const live = batch.filter((p) => !p.settled);
    if (live.length === 0) return;
    for (const p of live) this.#inflight.push(p);
    socket.write(live.length === 1 ? (live[0] as Pending).bytes : Buffer.concat(live.map((p) => p.bytes)));
  }

  #onReply(reply: Reply): void {
    const pending = this.#inflight[this.#inflightHead];
    if (pending === undefined) {
      this.#emitError(clientError('BAD_REPLY', 'a reply came with no command waiting for it'));
      this.#socket?.destroy();
      return;
    }
    this.#inflight[this.#inflightHead] = undefined as never;
    this.#inflightHead++;
    if (this.#inflightHead === this.#inflight.length) {
      this.#inflight = [];
      this.#inflightHead = 0;
      if (this.#state === 'closing' && this.#batch.length === 0) this.#socket?.end();
    }
    if (pending.settled) return;
    pending.settled = true;
    pending.cleanup?.();
    if (pending.kind === 'raw') {
      pending.resolve(reply);
      return;
    }
    try {
      pending.resolve(decodeReply(pending.kind, pending.name, reply));
    } catch (err) {
      pending.reject(err as HatiError);
    }
  }

  #open(): void {
    const socket = this.#connectTo();
    this.#socket = socket;
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => {
      socket.destroy(clientError('CONNECTION_LOST', `no connection within ${this.#options.connectTimeout} ms`));
    }, this.#options.connectTimeout);
    const parser = new ReplyParser((reply) => this.#onReply(reply));
    socket.once('connect', () => {
      clearTimeout(connectTimer);
      if (this.#state === 'closing') {
        socket.end();
        return;
      }
      this.#state = 'ready';
      this.#attempt = 0;
      this.#events.emit('connect');
      const offline = this.#offline;
      this.#offline = [];
      for (const pending of offline) this.#write(pending);
    });
    socket.on('data', (chunk: Buffer) => {
      const error = parser.push(chunk);
      if (error !== undefined) {
        this.#emitError(clientError('BAD_REPLY', `unreadable reply: ${error.message}`, error));
        socket.destroy();
      }
    });
    socket.on('error', (err) => this.#emitError(err));
    socket.once('close', () => {
      clearTimeout(connectTimer);
      this.#onClose(socket);
    });
  }

  #onClose(socket: Socket): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    // Written but unanswered: it may or may not have run, so it is never re-sent silently.
    const lost = this.#inflight.slice(this.#inflightHead);
    this.#inflight = [];
    this.#inflightHead = 0;
    for (const pending of lost) {
      this.#settle(pending, clientError('CONNECTION_LOST', `${pending.name}: the connection closed before the reply`));
    }
    const reconnect = this.#options.reconnect;
    if (this.#state === 'closing' || this.#quitting || reconnect === false || this.#attempt >= reconnect.maxAttempts) {
      this.#failOffline('CONNECTION_CLOSED', 'the connection is closed and the client does not reconnect');
      this.#finish();
      return;
    }
    this.#state = 'reconnecting';
    const delay = Math.min(reconnect.maxDelay, reconnect.initialDelay * 2 ** this.#attempt) * (0.5 + Math.random() / 2);
    this.#attempt++;
    this.#events.emit('reconnecting', { attempt: this.#attempt, delay: Math.round(delay) });
    this.#reconnectTimer = setTimeout(() => this.#open(), delay);
  }

  #failOffline(code: 'CONNECTION_CLOSED', message: string): void {
    const offline = [...this.#offline, ...this.#batch];
    this.#offline = [];
    this.#batch = [];
    for (const pending of offline) this.#settle(pending, clientError(code, `${pending.name}: ${message}`));
  }

  #finish(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#reconnectTimer);
    this.#events.emit('close');
    this.#resolveClosed();
  }

  #emitError(err: Error): void {
    if (this.#events.listenerCount('error') > 0) this.#events.emit('error', err);
  }
}

function argBytes(arg: string | number | Uint8Array): string | Uint8Array {
  return typeof arg === 'number' ? String(arg) : arg;
}
