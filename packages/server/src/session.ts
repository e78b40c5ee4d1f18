import type { BrokerSession } from '@hati/broker';
import type { ClientInfo, ReplyWriter } from '@hati/protocol';
import type { User } from './auth.js';
import type { Listener } from './stats.js';

/** Writes one push frame (or a reply) into a connection's output. */
export type WriteFrame = (out: ReplyWriter) => void;

/** What a session needs from its connection; JSON-RPC sessions have no pushes. */
export interface SessionTransport {
  /** Writes a frame out of band (a pub/sub message); false when the transport cannot push. */
  push(write: WriteFrame): boolean;
  /** The protocol version replies are written in from now on (HELLO). */
  setProtocol(version: 2 | 3): void;
  /** Closes the connection once every reply owed has been written (QUIT). */
  end(): void;
}

/** A session as STATS and CLIENT LIST show it (the wire contract's ClientInfo). */
export type SessionInfo = ClientInfo;

/**
 * One client connection's state, passed to every command it sends: its id, name, protocol
 * version and subscriptions (later credentials, consumers and leases). Close hooks run once,
 * when the connection goes: that is where a command undoes what it left behind.
 */
export class Session {
  readonly id: number;
  readonly listener: Listener;
  readonly address: string;
  readonly createdAt: number;
  lastCommandAt: number;
  lastCommand: string | null = null;
  name: string | null = null;
  libName: string | null = null;
  libVersion: string | null = null;
  #protocol: 2 | 3 = 2;
  /** Channels subscribed to, by name (bytes as latin1, so any byte sequence is one string). */
  readonly channels = new Set<string>();
  /** Patterns subscribed to, by pattern (latin1), with their matchers. */
  readonly patterns = new Map<string, (channel: Buffer) => boolean>();
  /** Its broker session, opened by its first broker command that needs one. */
  broker: BrokerSession | undefined;
  /** Who it is authenticated as; null until it authenticates when credentials are configured. */
  user: User | null;
  /**
   * Set by a command that authenticates on the thread pool (AUTH checking scrypt): the connection
   * runs nothing after it until it settles, so that a pipelined command never runs as the user
   * from before.
   */
  barrier: Promise<unknown> | undefined;
  readonly #transport: SessionTransport;
  #closeHooks: Array<() => void> = [];
  #closed = false;

  constructor(
    id: number,
    listener: Listener,
    address: string,
    transport: SessionTransport,
    now: number,
    user: User | null,
  ) {
    this.id = id;
    this.user = user;
    this.listener = listener;
    this.address = address;
    this.#transport = transport;
    this.createdAt = now;
    this.lastCommandAt = now;
  }

  get protocol(): 2 | 3 {
    return this.#protocol;
  }

  set protocol(version: 2 | 3) {
    this.#protocol = version;
    this.#transport.setProtocol(version);
  }

  /** Subscribed channels and patterns together. */
  get subscriptions(): number {
    return this.channels.size + this.patterns.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends a frame out of band; false when this session's transport has no pushes (JSON-RPC). */
  push(write: WriteFrame): boolean {
    return !this.#closed && this.#transport.push(write);
  }

  /** Closes the connection after the replies owed (QUIT). */
  end(): void {
    this.#transport.end();
  }

  /** Runs `hook` when the connection closes (at once if it has). */
  onClose(hook: () => void): void {
    if (this.#closed) hook();
    else this.#closeHooks.push(hook);
  }

  /** The connection is gone: runs the close hooks, once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const hooks = this.#closeHooks;
    this.#closeHooks = [];
    for (const hook of hooks) hook();
  }

  info(now: number): SessionInfo {
    return {
      id: this.id,
      listener: this.listener,
      address: this.address,
      name: this.name,
      user: this.user?.name ?? null,
      protocol: this.#protocol,
      libName: this.libName,
      libVersion: this.libVersion,
      ageMs: now - this.createdAt,
      idleMs: now - this.lastCommandAt,
      subscriptions: this.channels.size,
      patterns: this.patterns.size,
      lastCommand: this.lastCommand,
    };
  }

  /** This session's line of CLIENT LIST, in Redis's `field=value` form. */
  describe(now: number): string {
    const info = this.info(now);
    return [
      `id=${info.id}`,
      `addr=${info.address}`,
      `listener=${info.listener}`,
      `name=${info.name ?? ''}`,
      `user=${info.user ?? ''}`,
      `age=${Math.floor(info.ageMs / 1000)}`,
      `idle=${Math.floor(info.idleMs / 1000)}`,
      'db=0',
      `sub=${info.subscriptions}`,
      `psub=${info.patterns}`,
      `cmd=${info.lastCommand === null ? 'NULL' : info.lastCommand.toLowerCase().replace(' ', '|')}`,
      `resp=${info.protocol}`,
      `lib-name=${info.libName ?? ''}`,
      `lib-ver=${info.libVersion ?? ''}`,
    ].join(' ');
  }
}

/** The sessions of one server, by id. */
export class Sessions {
  readonly #byId = new Map<number, Session>();
  #nextId = 1;

  open(listener: Listener, address: string, transport: SessionTransport, user: User | null): Session {
    const session = new Session(this.#nextId++, listener, address, transport, Date.now(), user);
    this.#byId.set(session.id, session);
    session.onClose(() => this.#byId.delete(session.id));
    return session;
  }

  get size(): number {
    return this.#byId.size;
  }

  [Symbol.iterator](): IterableIterator<Session> {
    return this.#byId.values();
  }
}
