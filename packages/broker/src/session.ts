import type { Delivery, LeaseHolder, Message } from './message.js';
import type { Queue, Taker } from './queue.js';

/** Where a session's consumers' deliveries go (the server writes them as push frames). */
export type PushTarget = (tag: string, queue: string, delivery: Delivery) => void;

/** Told when the broker ends one of the session's consumers itself (its queue was deleted). */
export type CancelTarget = (tag: string, queue: string) => void;

/**
 * A consumer (CONSUME): takes one message at a time in turn with the queue's other consumers,
 * while it holds fewer than `prefetch` unacknowledged ones (0: no limit).
 */
export class Consumer implements Taker, LeaseHolder {
  readonly tag: string;
  readonly queue: Queue;
  readonly session: BrokerSession;
  readonly prefetch: number;
  unacked = 0;
  active = true;
  readonly holder: LeaseHolder = this;
  readonly #onCredit: (queue: Queue) => void;

  constructor(tag: string, queue: Queue, session: BrokerSession, prefetch: number, onCredit: (queue: Queue) => void) {
    this.tag = tag;
    this.queue = queue;
    this.session = session;
    this.prefetch = prefetch;
    this.#onCredit = onCredit;
  }

  get sessionId(): number {
    return this.session.id;
  }

  room(): number {
    if (!this.active) return 0;
    return this.prefetch === 0 ? 1 : Math.min(1, this.prefetch - this.unacked);
  }

  leaseEnded(_message: Message): void {
    this.unacked--;
    if (this.active) this.#onCredit(this.queue);
  }

  take(count: number): void {
    this.unacked += count;
  }

  deliver(deliveries: Delivery[]): void {
    if (!this.active) return;
    for (const delivery of deliveries) this.session.push(this.tag, this.queue.name, delivery);
  }
}

/** A FETCH that waits: takes up to `count` messages at once, then is done. */
export class Waiter implements Taker {
  readonly session: BrokerSession;
  readonly queue: Queue;
  readonly count: number;
  readonly holder: LeaseHolder;
  done = false;
  timer: NodeJS.Timeout | undefined;
  readonly #resolve: (deliveries: Delivery[]) => void;

  constructor(session: BrokerSession, queue: Queue, count: number, resolve: (deliveries: Delivery[]) => void) {
    this.session = session;
    this.holder = session;
    this.queue = queue;
    this.count = count;
    this.#resolve = resolve;
  }

  room(): number {
    return this.done ? 0 : this.count;
  }

  take(_count: number): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.queue.removeTaker(this);
    this.session.waiters.delete(this);
  }

  deliver(deliveries: Delivery[]): void {
    this.#resolve(deliveries);
  }

  /** Ends the wait with what it has: nothing. */
  end(): void {
    if (this.done) return;
    this.take(0);
    this.#resolve([]);
  }
}

/**
 * One client's view of the broker: its consumers, its waiting fetches and the leases it holds.
 * Closing it (the connection closed) cancels its consumers and gives its leased messages back.
 * ACK, NACK and TOUCH are not tied to a session: any session may settle any leased message.
 */
export class BrokerSession implements LeaseHolder {
  readonly id: number;
  readonly consumers = new Map<string, Consumer>();
  readonly waiters = new Set<Waiter>();
  #nextTag = 1;
  #push: PushTarget | undefined;
  #onCancel: CancelTarget | undefined;
  closed = false;

  constructor(id: number, push: PushTarget | undefined, onCancel?: CancelTarget) {
    this.id = id;
    this.#push = push;
    this.#onCancel = onCancel;
  }

  get sessionId(): number {
    return this.id;
  }

  leaseEnded(_message: Message): void {}

  /** Consumer tags are unique within a session: `ctag-1`, `ctag-2`... */
  newTag(): string {
    return `ctag-${this.#nextTag++}`;
  }

  get canPush(): boolean {
    return this.#push !== undefined;
  }

  push(tag: string, queue: string, delivery: Delivery): void {
    this.#push?.(tag, queue, delivery);
  }

  /** The broker ended the consumer `tag` (its queue was deleted). */
  cancelled(tag: string, queue: string): void {
    this.#onCancel?.(tag, queue);
  }
}
