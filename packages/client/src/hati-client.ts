import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { connect, isIP, type Socket } from 'node:net';
import { type ConnectionOptions, connect as connectTls } from 'node:tls';
import {
  type CommandName,
  type CommandSpec,
  commands,
  encodeCommand,
  lookupCommand,
  type Reply,
  ReplyError,
  type ReplyKind,
  ReplyParser,
} from '@hati/protocol';
import {
  type ArgsOf,
  type CallOptions,
  CommandMethods,
  decodeReply,
  type HelloReply,
  type ReplyOf,
} from './commands.js';
import { type ConsumeOptions, Consumer, type ConsumerHost, type ConsumerLink, Consumers, linkOf } from './consumer.js';
import { clientError, HatiError, isTlsFailure, serverError, tlsReason } from './errors.js';
import { type ClientOptions, clientDefaults, type ReconnectOptions } from './options.js';
import { type MessageListener, type PushListener, type SubscriptionKind, Subscriptions } from './subscriptions.js';

/** What CLIENT SETINFO tells the server on every connection. */
const LIB_NAME = '@hati/client';
const LIB_VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** One call, from the moment it is made until its reply (or error) settles it. */
interface Pending {
  bytes: Buffer;
  name: string;
  /** How to read the reply; `raw` hands it over as parsed (`sendCommand`). */
  kind: ReplyKind | 'raw';
  resolve: (value: unknown) => void;
  reject: (err: HatiError) => void;
  /** Settled early (timeout, abort): its reply, if one comes, is read and dropped. */
  settled: boolean;
  cleanup: (() => void) | undefined;
  /**
   * A pub/sub command (the table's `pubsub` group): in RESP3 it is answered by push frames of
   * this kind, one per channel, instead of a reply; an error still comes as a reply.
   */
  confirm: SubscriptionKind | undefined;
  /** Confirmations to wait for; 0 until known (UNSUBSCRIBE without channels: one per channel subscribed, or one). */
  expected: number;
  /** The confirmations received so far; only pub/sub commands have them (no array per plain call). */
  frames: Reply[][] | undefined;
  /** Called with the reply of a call settled early (timeout, abort): its command ran all the same. */
  late: ((reply: Reply) => void) | undefined;
  /** The client's own (AUTH, HELLO, re-subscribing...), not a caller's. */
  internal: boolean;
}

/** What a call does besides settling its promise. */
interface SendHooks {
  /** Called as soon as the reply is read, before the promise resolves (so before later replies and pushes). */
  done?: (value: unknown) => void;
  /** Called when the call fails, before the promise rejects: undoes what the call did at once. */
  failed?: () => void;
  late?: (reply: Reply) => void;
}

type Arg = string | number | bigint | Uint8Array;

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
 * - Reconnects with capped exponential backoff plus jitter, unless `reconnect: false`; but
 *   closes at once when the server refuses its credentials (WRONGPASS) or the TLS handshake
 *   fails (TLS_FAILED), rejecting the calls waiting with that error: retrying cannot fix either.
 * - Per-call timeout and AbortSignal; the connection stays usable (a late reply is dropped).
 * - RESP3: every (re)connect starts with `AUTH` (when a password is set) and `HELLO 3` (with
 *   `SETNAME` when `name` is given), then
 *   re-subscribes what is still subscribed and consumes again what is consumed, then sends the
 *   offline queue. Push frames go to `subscribe`/`psubscribe` listeners, consumers (by tag) and
 *   `onPush` listeners, never to a command's reply.
 * - Events: connect, reconnecting, error (only emitted when someone listens), close.
 */
export class HatiClient extends CommandMethods {
  readonly #events = new EventEmitter<ClientEvents>();
  readonly #options: Required<
    Omit<ClientOptions, 'reconnect' | 'host' | 'port' | 'path' | 'name' | 'user' | 'password' | 'tls'>
  > & {
    reconnect: Required<ReconnectOptions> | false;
    name: string | undefined;
  };
  readonly #subscriptions = new Subscriptions();
  readonly #consumers = new Consumers();
  readonly #consumerHost: ConsumerHost = { methods: this, cancel: (consumer) => this.#cancel(linkOf(consumer)) };
  /** The protocol in effect: the one asked, until the server refuses HELLO. */
  #protocol: 2 | 3;
  #serverInfo: HelloReply | undefined;
  /** Opens a connection, and names the event that says it is ready (after the TLS handshake). */
  readonly #connectTo: () => { socket: Socket; ready: 'connect' | 'secureConnect' };
  /** `[user, password]` sent with AUTH first on every connection; private, so `inspect` never shows it. */
  readonly #credentials: readonly [string, string] | undefined;
  /**
   * Why the client closes on its own: the server refused the credentials (WRONGPASS), or
   * refused the connection and hung up (NOAUTH: a client certificate it does not accept), or the
   * TLS handshake failed (TLS_FAILED). None gets better by retrying, so it does not reconnect.
   */
  #fatal: HatiError | undefined;
  /** `host:port` or the socket's path, for messages. */
  readonly #address: string;
  /** Replies read on this connection. */
  #replies = 0;
  /**
   * The connection's first reply was NOAUTH, and none succeeded since: when the server then
   * closes it (it refused the client's certificate, say), the client closes with this error
   * instead of reconnecting to the same refusal.
   */
  #refused: HatiError | undefined;
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
      protocol: options.protocol ?? clientDefaults.protocol,
      name: options.name,
    };
    if (options.name !== undefined && [...options.name].some((c) => c <= ' ' || c === '\u007f')) {
      throw new TypeError('name: a connection name may not contain spaces, line breaks or control characters');
    }
    this.#protocol = this.#options.protocol;
    if (options.password !== undefined) {
      if (typeof options.password !== 'string') throw new TypeError('password: a string is expected');
      this.#credentials = [options.user ?? clientDefaults.user, options.password];
    }
    this.#connectTo = transportOf(options);
    this.#address =
      'path' in options
        ? options.path
        : `${options.host ?? clientDefaults.host}:${options.port ?? clientDefaults.port}`;
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#open();
  }

  get state(): ClientState {
    return this.#state;
  }

  /** The protocol the connection speaks: 3 once the server took `HELLO 3`, 2 if it refused it or 2 was asked. */
  get protocol(): 2 | 3 {
    return this.#protocol;
  }

  /** The server's answer to the last connection's HELLO (name, versions, connection id), once it came. */
  get serverInfo(): HelloReply | undefined {
    return this.#serverInfo;
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
    const spec: CommandSpec = commands[name];
    const list = args as readonly Arg[];
    return this.#send(
      spec,
      name,
      spec.reply,
      encodeCommand([name, ...list.map(argBytes)]),
      list.length,
      options,
    ) as Promise<ReplyOf<N>>;
  }

  /**
   * Sends any command, named or not in the table, and resolves with the reply as parsed:
   * a string, number, Buffer, null, array, ReplyMap, or a ReplyError (server errors are
   * returned, not thrown). A pub/sub command resolves with its confirmation frames; its
   * messages reach `onPush` listeners only, and it is not re-sent after a reconnect. For tools
   * such as `hati client`; applications use the typed methods.
   */
  sendCommand(args: ReadonlyArray<string | Uint8Array>, options: CallOptions = {}): Promise<Reply> {
    const first = args[0] ?? '';
    const name = String(first).toUpperCase();
    const spec = lookupCommand(first);
    return this.#send(spec, name, 'raw', encodeCommand(args), args.length - 1, options) as Promise<Reply>;
  }

  /**
   * Subscribes `listener` to the channels (keyspace events: `__keyspace@memory__:<key>`,
   * `__keyevent@hdd__:expired`, ...); resolves once the server has confirmed every channel.
   * The listener gets `(message, channel)`. Subscriptions survive reconnects: the client
   * subscribes again before anything else. Needs RESP3 (the default `protocol`).
   */
  subscribe(channels: string | readonly string[], listener: MessageListener, options?: CallOptions): Promise<void> {
    return this.#listen('SUBSCRIBE', this.#subscriptions.channels, channels, listener, options);
  }

  /**
   * Subscribes `listener` to every channel matching the globs (`__keyspace@hdd__:user:*`); the
   * listener gets `(message, channel, pattern)`. Otherwise as `subscribe`.
   */
  psubscribe(patterns: string | readonly string[], listener: MessageListener, options?: CallOptions): Promise<void> {
    return this.#listen('PSUBSCRIBE', this.#subscriptions.patterns, patterns, listener, options);
  }

  /**
   * Removes `listener` (or, without one, every listener) from the channels (or from all); the
   * server stops sending a channel once no listener is left. Resolves once it has confirmed.
   */
  unsubscribe(channels?: string | readonly string[], listener?: MessageListener, options?: CallOptions): Promise<void> {
    return this.#unlisten('UNSUBSCRIBE', this.#subscriptions.channels, channels, listener, options);
  }

  /** `unsubscribe` for patterns. */
  punsubscribe(
    patterns?: string | readonly string[],
    listener?: MessageListener,
    options?: CallOptions,
  ): Promise<void> {
    return this.#unlisten('PUNSUBSCRIBE', this.#subscriptions.patterns, patterns, listener, options);
  }

  /**
   * Calls `listener` with the items of every push frame the server sends (messages,
   * confirmations, anything newer), as parsed; returns the function that stops it.
   */
  onPush(listener: PushListener): () => void {
    return this.#subscriptions.onPush(listener);
  }

  /**
   * Consumes a queue: resolves, once the server has taken CONSUME, with a Consumer, an async
   * iterator of the messages pushed to this client (at most `prefetch` unacknowledged):
   * `for await (const message of consumer) { ...; await message.ack(); }`. After a reconnect
   * the client consumes again (a new tag); what the old connection held comes again, its
   * `deliveries` raised. Needs RESP3 (the default `protocol`); over JSON-RPC use `fetch` with
   * `waitMs`.
   */
  consume(queue: string, options: ConsumeOptions = {}): Promise<Consumer> {
    const prefetch = options.prefetch ?? clientDefaults.prefetch;
    if (!Number.isSafeInteger(prefetch) || prefetch < 1) {
      const message = `CONSUME: prefetch must be a whole number from 1 to 65535, got ${prefetch}`;
      return Promise.reject(new HatiError('ARGUMENT_INVALID', message));
    }
    if (this.#protocol === 2) {
      return Promise.reject(clientError('NOT_SUPPORTED', 'CONSUME: deliveries are pushed, which needs RESP3'));
    }
    const consumer = new Consumer(queue, prefetch, this.#consumerHost);
    const link = linkOf(consumer);
    const bytes = encodeCommand(['CONSUME', queue, String(prefetch)]);
    return this.#send(commands.CONSUME, 'CONSUME', 'bulk', bytes, 2, options, {
      done: (tag) => this.#started(link, tag),
      failed: () => link.end(),
      // Timed out or aborted, but the server consumed: stop it (never handed out, it is stopped).
      late: (reply) => {
        if (Buffer.isBuffer(reply)) this.#started(link, reply);
      },
    }).then(() => consumer);
  }

  /** CONSUME answered `tag`; a consumer stopped meanwhile is cancelled at once. */
  #started(link: ConsumerLink, reply: unknown): void {
    const tag = String(reply);
    this.#consumers.started(link, tag);
    if (link.stopped()) this.#internal(commands.CANCEL, ['CANCEL', tag], () => this.#consumers.forget(tag));
  }

  /** Stops a consumer's pushes on this connection (without a tag here: nothing to stop). */
  #cancel(link: ConsumerLink): Promise<void> {
    this.#consumers.drop(link);
    const tag = link.tag();
    if (tag === undefined) return Promise.resolve();
    const hooks = { done: () => this.#consumers.forget(tag) };
    const cancelled = this.#send(commands.CANCEL, 'CANCEL', 'boolean', encodeCommand(['CANCEL', tag]), 1, {}, hooks);
    // Only a lost or closed connection fails it, and that ends the consumer's pushes too.
    return cancelled.then(
      () => undefined,
      () => undefined,
    );
  }

  #listen(
    name: 'SUBSCRIBE' | 'PSUBSCRIBE',
    listeners: Subscriptions['channels'],
    given: string | readonly string[],
    listener: MessageListener,
    options: CallOptions = {},
  ): Promise<void> {
    const names = typeof given === 'string' ? [given] : [...given];
    if (names.length === 0) return Promise.resolve();
    // Listening at once: a message may come before the confirmation. Undone if the call fails,
    // so that a reconnect does not subscribe it again behind the caller's back.
    listeners.add(names, listener);
    const undo = () => listeners.remove(names, listener);
    return this.#send(commands[name], name, 'custom', encodeCommand([name, ...names]), names.length, options, {
      failed: undo,
    }).then(() => undefined);
  }

  #unlisten(
    name: 'UNSUBSCRIBE' | 'PUNSUBSCRIBE',
    listeners: Subscriptions['channels'],
    given: string | readonly string[] | undefined,
    listener: MessageListener | undefined,
    options: CallOptions = {},
  ): Promise<void> {
    let names: string[];
    if (given === undefined && listener === undefined) {
      // From every one, including those subscribed through sendCommand.
      listeners.clear();
      names = [];
    } else {
      names = listeners.remove(
        given === undefined ? listeners.names() : typeof given === 'string' ? [given] : given,
        listener,
      );
      if (names.length === 0) return Promise.resolve();
    }
    return this.#send(commands[name], name, 'custom', encodeCommand([name, ...names]), names.length, options).then(
      () => undefined,
    );
  }

  #send(
    spec: CommandSpec | undefined,
    name: string,
    kind: Pending['kind'],
    bytes: Buffer,
    argCount: number,
    options: CallOptions,
    hooks?: SendHooks,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // Closures only for the calls that act on their outcome (subscriptions, consumers).
      const { done, failed } = hooks ?? {};
      const fail =
        failed === undefined
          ? reject
          : (err: HatiError) => {
              failed();
              reject(err);
            };
      const succeed =
        done === undefined
          ? resolve
          : (value: unknown) => {
              done(value);
              resolve(value);
            };
      if (this.#state === 'closing' || this.#state === 'closed' || this.#quitting) {
        const why = this.#fatal === undefined ? '' : ` (${this.#fatal.code})`;
        fail(clientError('CONNECTION_CLOSED', `${name}: the client is closed${why}`, this.#fatal));
        return;
      }
      const confirm = confirmationOf(spec);
      if (confirm !== undefined && this.#protocol === 2) {
        fail(clientError('NOT_SUPPORTED', `${name}: pub/sub needs RESP3, and this connection speaks RESP2`));
        return;
      }
      const pending = newPending(bytes, name, kind, succeed, fail, confirm, argCount);
      pending.late = hooks?.late;
      if (!this.#watch(pending, options)) return;
      if (this.#state === 'ready') {
        this.#write(pending);
      } else if (this.#offline.length >= this.#options.maxOfflineCommands) {
        this.#settle(
          pending,
          clientError('OFFLINE_QUEUE_FULL', `${name}: ${this.#offline.length} commands already wait for a connection`),
        );
        return;
      } else {
        this.#offline.push(pending);
      }
      // QUIT: nothing more is sent, and the connection's end is the client's.
      if (spec?.flags.closes === true) this.#quitting = true;
    });
  }

  /**
   * Sends QUIT after the calls made before it; resolves once the server has closed the
   * connection. Calls made after it reject with CONNECTION_CLOSED; no reconnect follows.
   */
  async quit(): Promise<void> {
    if (this.#state === 'closed' || this.#quitting) return this.#closed;
    if (this.#state === 'reconnecting' || this.#state === 'closing') return this.close();
    await this.call('QUIT', []).catch(() => undefined);
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
    this.#failOffline(clientError('CONNECTION_CLOSED', 'the client was closed'));
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

  /** Takes the oldest call waiting for an answer off the in-flight queue. */
  #shift(): void {
    this.#inflight[this.#inflightHead] = undefined as never;
    this.#inflightHead++;
    if (this.#inflightHead === this.#inflight.length) {
      this.#inflight = [];
      this.#inflightHead = 0;
      if (this.#state === 'closing' && this.#batch.length === 0) this.#socket?.end();
    }
  }

  #onReply(reply: Reply): void {
    if (reply instanceof ReplyError) {
      if (this.#replies === 0 && reply.code === 'NOAUTH') {
        this.#refused = serverError('NOAUTH', `the server refused the connection: ${reply.message}`);
      }
    } else {
      this.#refused = undefined;
    }
    this.#replies++;
    const pending = this.#inflight[this.#inflightHead];
    if (pending === undefined) {
      this.#emitError(clientError('BAD_REPLY', 'a reply came with no command waiting for it'));
      this.#socket?.destroy();
      return;
    }
    this.#shift();
    if (pending.settled) {
      pending.late?.(reply);
      return;
    }
    pending.settled = true;
    pending.cleanup?.();
    if (pending.confirm !== undefined && !(reply instanceof ReplyError)) {
      // A pub/sub command is answered by pushes; a reply is only ever its error.
      pending.reject(clientError('BAD_REPLY', `${pending.name}: a reply came where confirmations were expected`));
      return;
    }
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

  /**
   * A push frame: messages to their listeners; a subscription confirmation counts towards the
   * oldest call waiting, which is the pub/sub command it confirms (the server answers in order).
   * Replies of other calls are untouched, so pushes may come between any two of them.
   */
  #onPush(items: Reply[]): void {
    const onError = (err: Error) => this.#emitError(err);
    const kind = this.#subscriptions.route(items, onError);
    if (kind === undefined) {
      this.#consumers.route(items, onError);
      return;
    }
    const before = this.#subscriptions.confirm(kind, items[1]);
    const pending = this.#inflight[this.#inflightHead];
    if (pending === undefined || pending.confirm !== kind) return;
    if (pending.expected === 0) pending.expected = Math.max(1, before);
    const frames = pending.frames ?? [];
    pending.frames = frames;
    frames.push(items);
    if (frames.length < pending.expected) return;
    this.#shift();
    if (pending.settled) return;
    pending.settled = true;
    pending.cleanup?.();
    pending.resolve(frames);
  }

  /**
   * What goes first on every connection, pipelined ahead of the offline queue: AUTH when a
   * password is set, HELLO (unless RESP2 is asked and there is no name), then SUBSCRIBE and
   * PSUBSCRIBE for what is still listened to, and CONSUME for each consumer not cancelled. Their
   * failures are reported as 'error' events; a consumer that cannot consume again ends with its
   * error; a failed AUTH fails what was written after it (see #authFailed).
   *
   * AUTH is a command of its own rather than HELLO's AUTH option: it works the same whichever
   * protocol is asked (RESP2 without a name sends no HELLO at all), and its reply says alone
   * whether the login failed, while a HELLO refused for its protocol keeps its own fallback.
   */
  #handshake(socket: Socket): void {
    const { protocol, name } = this.#options;
    this.#protocol = protocol;
    this.#serverInfo = undefined;
    if (this.#credentials !== undefined) {
      const [user, password] = this.#credentials;
      const auth = newPending(
        encodeCommand(['AUTH', user, password]),
        'AUTH',
        'status',
        // Only a login that succeeded ends the backoff: a refused one counts as a failed attempt.
        () => {
          this.#attempt = 0;
        },
        (err) => this.#authFailed(socket, user, err),
        undefined,
        2,
      );
      auth.internal = true;
      this.#write(auth);
    }
    if (protocol === 3 || name !== undefined) {
      const hello = ['HELLO', String(protocol), ...(name === undefined ? [] : ['SETNAME', name])];
      this.#internal(commands.HELLO, hello, (info) => {
        this.#serverInfo = info as HelloReply;
        this.#protocol = this.#serverInfo.proto === 3 ? 3 : 2;
      });
    }
    // As Redis clients do, so that CLIENT LIST and STATS show which library a connection is.
    const setinfo = commands.CLIENT.subcommands.SETINFO;
    this.#internal(setinfo, ['CLIENT', 'SETINFO', 'LIB-NAME', LIB_NAME]);
    this.#internal(setinfo, ['CLIENT', 'SETINFO', 'LIB-VER', LIB_VERSION]);
    if (this.#protocol === 2) return;
    const channels = this.#subscriptions.channels.names();
    if (channels.length > 0) this.#internal(commands.SUBSCRIBE, ['SUBSCRIBE', ...channels]);
    const patterns = this.#subscriptions.patterns.names();
    if (patterns.length > 0) this.#internal(commands.PSUBSCRIBE, ['PSUBSCRIBE', ...patterns]);
    for (const link of this.#consumers.live()) {
      const { queue, prefetch } = link.consumer;
      this.#internal(
        commands.CONSUME,
        ['CONSUME', queue, String(prefetch)],
        (tag) => this.#started(link, tag),
        (err) => {
          // The queue was deleted meanwhile, say: the consumer's reader gets the error.
          this.#consumers.drop(link);
          link.end(err);
        },
      );
    }
  }

  /**
   * A command of the client's own, written at once. A lost connection is no failure (the next
   * connection sends it again); other failures go to `failed`, and are reported as 'error' events.
   */
  #internal(
    spec: CommandSpec,
    args: string[],
    done: (value: unknown) => void = () => {},
    failed?: (err: HatiError) => void,
  ): void {
    const fail = (err: HatiError) => {
      if (err.code === 'CONNECTION_LOST' || err.code === 'CONNECTION_CLOSED') return;
      // A server without HELLO (before 0.2) speaks RESP2 only, and has no CLIENT either.
      if (spec === commands.HELLO && err.code === 'UNKNOWN_COMMAND') this.#protocol = 2;
      else if (spec.name === 'CLIENT SETINFO' && err.code === 'UNKNOWN_COMMAND') return;
      else {
        failed?.(err);
        this.#emitError(err);
      }
    };
    const confirm = confirmationOf(spec);
    const pending = newPending(encodeCommand(args), spec.name, spec.reply, done, fail, confirm, args.length - 1);
    pending.internal = true;
    this.#write(pending);
  }

  /**
   * The server refused the AUTH sent first on `socket`. Everything written after it was refused
   * too (NOAUTH) and ran nothing: the callers' calls reject with the AUTH's code, the client's
   * own are dropped (sent again on the next connection). AUTH_RATE_LIMITED: the connection is
   * dropped and the client reconnects with its backoff. AUTH_NOT_CONFIGURED (a server without
   * credentials): reported, and the connection goes on. Anything else (WRONGPASS): the client
   * closes, the calls still waiting reject with it; retrying a wrong password would only count
   * against the address's rate limit, for every client on the host.
   */
  #authFailed(socket: Socket, user: string, err: HatiError): void {
    if (err.code === 'CONNECTION_LOST' || err.code === 'CONNECTION_CLOSED') return;
    const error = new HatiError(err.code, `AUTH as '${user}': ${err.message}`, { transient: err.transient });
    if (error.code === 'AUTH_NOT_CONFIGURED') {
      this.#attempt = 0;
      this.#emitError(error);
      return;
    }
    if (error.code !== 'AUTH_RATE_LIMITED') this.#fatal = error;
    this.#emitError(error);
    if (this.#socket !== socket) return;
    const refused = this.#inflight.slice(this.#inflightHead);
    this.#inflight = [];
    this.#inflightHead = 0;
    for (const pending of refused) {
      if (pending.internal) this.#settle(pending, clientError('CONNECTION_LOST', `${pending.name}: not authenticated`));
      else this.#settle(pending, callError(error, pending.name));
    }
    socket.destroy();
    this.#onClose(socket);
  }

  #open(): void {
    const { socket, ready } = this.#connectTo();
    this.#socket = socket;
    this.#replies = 0;
    this.#refused = undefined;
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => {
      socket.destroy(clientError('CONNECTION_LOST', `no connection within ${this.#options.connectTimeout} ms`));
    }, this.#options.connectTimeout);
    // Replies still parsed from a chunk after the client gave the connection up (a refused AUTH) are dropped.
    const parser = new ReplyParser(
      (reply) => {
        if (this.#socket === socket) this.#onReply(reply);
      },
      {
        onPush: (items) => {
          if (this.#socket === socket) this.#onPush(items);
        },
      },
    );
    socket.once(ready, () => {
      clearTimeout(connectTimer);
      if (this.#state === 'closing') {
        socket.end();
        return;
      }
      this.#state = 'ready';
      if (this.#credentials === undefined) this.#attempt = 0;
      this.#handshake(socket);
      const offline = this.#offline;
      this.#offline = [];
      for (const pending of offline) this.#write(pending);
      this.#events.emit('connect');
    });
    socket.on('data', (chunk: Buffer) => {
      const error = parser.push(chunk);
      if (error !== undefined) {
        this.#emitError(clientError('BAD_REPLY', `unreadable reply: ${error.message}`, error));
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      if (!isTlsFailure(err)) {
        this.#emitError(err);
        return;
      }
      // Before the handshake ends (the server's certificate) or just after it (an alert: the
      // server refused ours). The socket closes next, and with #fatal set the client does too.
      this.#fatal ??= clientError('TLS_FAILED', `TLS with ${this.#address} failed: ${tlsReason(err)}`, err);
      this.#emitError(this.#fatal);
    });
    socket.once('close', () => {
      clearTimeout(connectTimer);
      this.#onClose(socket);
    });
  }

  #onClose(socket: Socket): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#subscriptions.disconnected();
    this.#consumers.disconnected();
    // Written but unanswered: it may or may not have run, so it is never re-sent silently.
    const lost = this.#inflight.slice(this.#inflightHead);
    this.#inflight = [];
    this.#inflightHead = 0;
    const asked = this.#state === 'closing' || this.#quitting;
    if (!asked) this.#fatal ??= this.#refused;
    const fatal = this.#fatal;
    for (const pending of lost) {
      this.#settle(
        pending,
        fatal === undefined || pending.internal
          ? clientError('CONNECTION_LOST', `${pending.name}: the connection closed before the reply`)
          : callError(fatal, pending.name),
      );
    }
    const reconnect = this.#options.reconnect;
    if (fatal !== undefined && !asked) {
      // The calls waiting fail with the reason, rather than wait for a connection that cannot come.
      this.#failOffline(fatal);
      this.#finish(fatal);
      return;
    }
    if (asked || reconnect === false || this.#attempt >= reconnect.maxAttempts) {
      const why = 'the connection is closed and the client does not reconnect';
      this.#failOffline(clientError('CONNECTION_CLOSED', why));
      this.#finish(asked ? undefined : clientError('CONNECTION_CLOSED', `CONSUME: ${why}`));
      return;
    }
    this.#state = 'reconnecting';
    const delay = Math.min(reconnect.maxDelay, reconnect.initialDelay * 2 ** this.#attempt) * (0.5 + Math.random() / 2);
    this.#attempt++;
    this.#events.emit('reconnecting', { attempt: this.#attempt, delay: Math.round(delay) });
    this.#reconnectTimer = setTimeout(() => this.#open(), delay);
  }

  /** Rejects every call not yet written with `reason` (its code and cause; the call's name in the message). */
  #failOffline(reason: HatiError): void {
    const offline = [...this.#offline, ...this.#batch];
    this.#offline = [];
    this.#batch = [];
    for (const pending of offline) this.#settle(pending, callError(reason, pending.name));
  }

  /** The client is closed; consumers end (with `error` when nobody asked for the close). */
  #finish(error?: HatiError): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#reconnectTimer);
    this.#consumers.closed(error);
    this.#events.emit('close');
    this.#resolveClosed();
  }

  #emitError(err: Error): void {
    if (this.#events.listenerCount('error') > 0) this.#events.emit('error', err);
  }
}

/** How the client connects: a UNIX socket, TCP, or TLS over TCP; and the event that says the connection is ready. */
function transportOf(options: ClientOptions): () => { socket: Socket; ready: 'connect' | 'secureConnect' } {
  if ('path' in options) return () => ({ socket: connect({ path: options.path }), ready: 'connect' });
  const host = options.host ?? clientDefaults.host;
  const port = options.port ?? clientDefaults.port;
  if (options.tls === undefined) return () => ({ socket: connect({ host, port }), ready: 'connect' });
  const given: ConnectionOptions = options.tls === true ? {} : options.tls;
  // SNI names a host, never an address (RFC 6066); an IP is still checked against the certificate's IP addresses.
  const servername = given.servername ?? (isIP(host) === 0 ? host : undefined);
  const tlsOptions: ConnectionOptions = { ...given, host, port, ...(servername !== undefined && { servername }) };
  return () => ({ socket: connectTls(tlsOptions), ready: 'secureConnect' });
}

/** `reason` for one call: its code, transience and cause, the call named in the message. */
function callError(reason: HatiError, name: string): HatiError {
  return new HatiError(reason.code, `${name}: ${reason.message}`, {
    cause: reason.cause,
    transient: reason.transient,
  });
}

function argBytes(arg: Arg): string | Uint8Array {
  return typeof arg === 'number' || typeof arg === 'bigint' ? String(arg) : arg;
}

/** The confirmation frames that answer a command: the table's pub/sub commands are answered so. */
function confirmationOf(spec: CommandSpec | undefined): SubscriptionKind | undefined {
  return spec?.group === 'pubsub' ? (spec.name.toLowerCase() as SubscriptionKind) : undefined;
}

function newPending(
  bytes: Buffer,
  name: string,
  kind: Pending['kind'],
  resolve: (value: unknown) => void,
  reject: (err: HatiError) => void,
  confirm: SubscriptionKind | undefined,
  argCount: number,
): Pending {
  return {
    bytes,
    name,
    kind,
    resolve,
    reject,
    settled: false,
    cleanup: undefined,
    confirm,
    expected: confirm === undefined ? 0 : argCount,
    frames: undefined,
    late: undefined,
    internal: false,
  };
}
