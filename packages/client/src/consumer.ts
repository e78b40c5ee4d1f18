// The client's side of CONSUME: a consumer is an async iterable of the messages the server
// pushes to it (RESP3 push frames `["delivery", tag, queue, delivery]`), routed by consumer tag
// as nats.js routes messages by subscription id; the client consumes again after a reconnect.
import type { Reply } from '@hati/protocol';
import { type Death, type Delivery, decodeDelivery, type NackOptions } from './broker.js';
import type { CallOptions, CommandMethods } from './commands.js';
import { clientError, type HatiError, serverError } from './errors.js';

/** `consume`'s options. */
export interface ConsumeOptions extends CallOptions {
  /**
   * Most messages the consumer holds unacknowledged (handed out or not yet read), 1 to 65535.
   * The server sends no more until one is settled, so this also bounds the consumer's buffer.
   * @default 100
   */
  prefetch?: number;
}

/** A message a consumer hands out: the delivery, its queue, and how to settle it. */
export interface ConsumerMessage extends Delivery {
  readonly queue: string;
  /** Acknowledges it (gone for good); false when it was no longer leased. */
  ack(options?: CallOptions): Promise<boolean>;
  /** Gives it back (with `drop: true`, dead-letters it); false when it was no longer leased. */
  nack(options?: NackOptions): Promise<boolean>;
  /** Extends its lease to one ack timeout from now; false when it was no longer leased. */
  touch(options?: CallOptions): Promise<boolean>;
}

/** What a consumer asks of the client it belongs to. */
export interface ConsumerHost {
  /** Runs ACK, NACK and TOUCH (any connection may settle any leased message). */
  readonly methods: CommandMethods;
  /** Stops the server's pushes to the consumer, and consuming it again after a reconnect. */
  cancel(consumer: Consumer): Promise<void>;
}

/** How the client drives a consumer, kept off the consumer's public surface. */
export interface ConsumerLink {
  readonly consumer: Consumer;
  /** Cancelled or ended: what is pushed to it from now on is given back. */
  stopped(): boolean;
  /** Its tag on the current connection; undefined while it is not consuming there. */
  tag(): string | undefined;
  /** The server took CONSUME on the current connection: pushes with this tag are the consumer's. */
  started(tag: string): void;
  deliver(delivery: Delivery): void;
  /** The connection is gone, and with it the tag and the leases of the messages not handed out yet. */
  disconnected(): void;
  /** The iteration ends; with an error, the next read throws it. */
  end(error?: HatiError): void;
}

class Message implements ConsumerMessage {
  readonly id: string;
  readonly deliveries: number;
  readonly routingKey: string;
  readonly message: Buffer;
  readonly death?: Death;
  readonly queue: string;
  readonly #methods: CommandMethods;

  constructor(methods: CommandMethods, queue: string, delivery: Delivery) {
    this.id = delivery.id;
    this.deliveries = delivery.deliveries;
    this.routingKey = delivery.routingKey;
    this.message = delivery.message;
    this.death = delivery.death;
    this.queue = queue;
    this.#methods = methods;
  }

  async ack(options?: CallOptions): Promise<boolean> {
    return (await this.#methods.ack(this.queue, this.id, options)) === 1;
  }

  async nack(options?: NackOptions): Promise<boolean> {
    return (await this.#methods.nack(this.queue, this.id, options)) === 1;
  }

  touch(options?: CallOptions): Promise<boolean> {
    return this.#methods.touch(this.queue, this.id, options);
  }
}

interface Reader {
  resolve: (result: IteratorResult<ConsumerMessage, undefined>) => void;
  reject: (err: HatiError) => void;
}

const DONE: IteratorResult<ConsumerMessage, undefined> = Object.freeze({ value: undefined, done: true });

const links = new WeakMap<Consumer, ConsumerLink>();

/** The link through which the client drives `consumer`. */
export function linkOf(consumer: Consumer): ConsumerLink {
  return links.get(consumer) as ConsumerLink;
}

/**
 * The messages of a queue pushed to this client, in order, as an async iterator:
 * `for await (const message of consumer) { ...; await message.ack(); }`. The server sends at
 * most `prefetch` unacknowledged messages; after a reconnect the client consumes again, and the
 * messages the old connection held come again with `deliveries` raised. `cancel()` (or leaving
 * a `for await` loop) stops it.
 */
export class Consumer implements AsyncIterableIterator<ConsumerMessage, undefined> {
  readonly queue: string;
  readonly prefetch: number;
  readonly #host: ConsumerHost;
  #tag: string | undefined;
  /** Pushed, not yet handed out: at most `prefetch`, since the server sends no more. */
  #buffer: ConsumerMessage[] = [];
  /** Reads waiting for a message. */
  #readers: Reader[] = [];
  #stopped = false;
  /** Why it ended, until a read has thrown it. */
  #error: HatiError | undefined;
  #cancelled: Promise<void> | undefined;
  /** NACKs of messages given back, which `cancel()` waits for. */
  readonly #givingBack = new Set<Promise<unknown>>();

  constructor(queue: string, prefetch: number, host: ConsumerHost) {
    this.queue = queue;
    this.prefetch = prefetch;
    this.#host = host;
    links.set(this, {
      consumer: this,
      stopped: () => this.#stopped,
      tag: () => this.#tag,
      started: (tag) => {
        this.#tag = tag;
      },
      deliver: (delivery) => this.#deliver(delivery),
      disconnected: () => {
        // The server gave their leases back when the connection closed: they will come again.
        this.#tag = undefined;
        this.#buffer = [];
      },
      end: (error) => this.#end(error),
    });
  }

  /** The consumer tag on the current connection (`ctag-1`...); undefined while it is not consuming. */
  get tag(): string | undefined {
    return this.#stopped ? undefined : this.#tag;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next message; waits for one. Done once the consumer is cancelled or its client closed. */
  next(): Promise<IteratorResult<ConsumerMessage, undefined>> {
    const message = this.#buffer.shift();
    if (message !== undefined) return Promise.resolve({ value: message, done: false });
    if (this.#stopped) {
      const error = this.#error;
      this.#error = undefined;
      return error === undefined ? Promise.resolve(DONE) : Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#readers.push({ resolve, reject });
    });
  }

  /** Called when a `for await` loop is left early: cancels the consumer. */
  async return(): Promise<IteratorResult<ConsumerMessage, undefined>> {
    await this.cancel();
    return DONE;
  }

  /**
   * Stops the consumer: the server sends it nothing more, the iteration ends, and the messages
   * pushed but not handed out yet are given back (NACK), their `deliveries` raised. Messages
   * already handed out stay leased until settled. Resolves once the server has confirmed and the
   * messages are given back; calling it again returns the same promise.
   */
  cancel(): Promise<void> {
    if (this.#cancelled === undefined) {
      const held = this.#buffer;
      this.#buffer = [];
      this.#end();
      for (const message of held) this.#giveBack(message);
      this.#cancelled = this.#host
        .cancel(this)
        .then(() => Promise.all(this.#givingBack))
        .then(() => undefined);
    }
    return this.#cancelled;
  }

  #deliver(delivery: Delivery): void {
    const message = new Message(this.#host.methods, this.queue, delivery);
    if (this.#stopped) {
      this.#giveBack(message);
      return;
    }
    const reader = this.#readers.shift();
    if (reader === undefined) this.#buffer.push(message);
    else reader.resolve({ value: message, done: false });
  }

  /** A message nobody will read goes back to the queue now rather than when its lease runs out. */
  #giveBack(message: ConsumerMessage): void {
    // Failing means the connection went, which gives the lease back all the same.
    const nacked = message.nack().catch(() => false);
    this.#givingBack.add(nacked);
    void nacked.then(() => this.#givingBack.delete(nacked));
  }

  /** Stops the iteration. Whatever is still buffered is dropped: its lease is gone or going with the connection. */
  #end(error?: HatiError): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#buffer = [];
    const readers = this.#readers;
    this.#readers = [];
    const first = readers.shift();
    if (error !== undefined && first !== undefined) first.reject(error);
    else {
      this.#error = error;
      first?.resolve(DONE);
    }
    for (const reader of readers) reader.resolve(DONE);
  }
}

const DELIVERY = Buffer.from('delivery');
const CANCELLED = Buffer.from('cancelled');

/** The client's consumers: by tag on the current connection, and those to consume again after a reconnect. */
export class Consumers {
  readonly #byTag = new Map<string, ConsumerLink>();
  readonly #live = new Set<ConsumerLink>();

  /** The consumers to consume again on a new connection. */
  live(): ConsumerLink[] {
    return [...this.#live];
  }

  /** CONSUME answered `tag`: its pushes go to `link` (a stopped one gives them back). */
  started(link: ConsumerLink, tag: string): void {
    this.#byTag.set(tag, link);
    link.started(tag);
    if (!link.stopped()) this.#live.add(link);
  }

  /** CANCEL answered: the server sends nothing more with `tag`. */
  forget(tag: string): void {
    this.#byTag.delete(tag);
  }

  /** Not consumed again after a reconnect. */
  drop(link: ConsumerLink): void {
    this.#live.delete(link);
  }

  /**
   * Routes a `delivery` push frame to its consumer, and ends a consumer the server cancelled
   * (`["cancelled", tag, queue]`: its queue was deleted); other frames are left alone.
   */
  route(items: Reply[], onError: (err: Error) => void): void {
    const [kind, tag, queue, item] = items;
    if (items.length === 3 && Buffer.isBuffer(kind) && kind.equals(CANCELLED) && Buffer.isBuffer(tag)) {
      const link = this.#byTag.get(tag.toString('utf8'));
      if (link === undefined) return;
      this.#byTag.delete(tag.toString('utf8'));
      this.#live.delete(link);
      link.end(serverError('QUEUE_NOT_FOUND', `the queue '${String(queue)}' was deleted: its consumers are cancelled`));
      return;
    }
    if (items.length !== 4 || !Buffer.isBuffer(kind) || !kind.equals(DELIVERY) || !Buffer.isBuffer(tag)) return;
    const link = this.#byTag.get(tag.toString('utf8'));
    if (link === undefined) return;
    const delivery = decodeDelivery(item as Reply);
    if (delivery === undefined) onError(clientError('BAD_REPLY', `CONSUME: an unreadable delivery for ${tag}`));
    else link.deliver(delivery);
  }

  /** The connection is gone: so are the tags, and the leases of what was pushed. */
  disconnected(): void {
    this.#byTag.clear();
    for (const link of this.#live) link.disconnected();
  }

  /** The client is closed: every consumer ends, with `error` when the client did not close on request. */
  closed(error?: HatiError): void {
    this.#byTag.clear();
    const live = [...this.#live];
    this.#live.clear();
    for (const link of live) link.end(error);
  }
}
