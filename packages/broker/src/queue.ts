import { TimeHeap } from '@hati/storage';
import { Deque } from './deque.js';
import { BrokerError } from './errors.js';
import type { Delivery, LeaseHolder, Message } from './message.js';

export const QueueType = { memory: 'memory', hdd: 'hdd' } as const;
export type QueueType = (typeof QueueType)[keyof typeof QueueType];

export const Overflow = { reject: 'reject', dropHead: 'drop-head' } as const;
export type Overflow = (typeof Overflow)[keyof typeof Overflow];

/** A queue's settings, fixed when it is created. */
export interface QueueSettings {
  /** How long a delivered message stays leased without ACK, NACK or TOUCH. */
  readonly ackTimeoutMs: number;
  /** Deliveries before a message is dead-lettered instead of requeued; 0 = no limit. */
  readonly maxDeliveries: number;
  /** The router dead letters are published to; undefined = kept in the queue's own list. */
  readonly deadLetter: string | undefined;
  /** Most messages waiting (ready or delayed, not leased); 0 = no limit. */
  readonly maxLength: number;
  /** What a PUBLISH to a full queue does: refused with QUEUE_FULL, or the oldest dead-lettered. */
  readonly overflow: Overflow;
  /** A message not acknowledged this long after its publish is dead-lettered; 0 = never. */
  readonly ttlMs: number;
  /** How long a de-duplication id is remembered. */
  readonly dedupWindowMs: number;
}

export function queueTypeOf(type: string): QueueType {
  const lower = typeof type === 'string' ? type.toLowerCase() : '';
  if (lower === 'memory' || lower === 'hdd') return lower;
  throw new BrokerError(
    'QUEUE_TYPE_INVALID',
    `unknown queue type '${String(type).slice(0, 64)}' (expected memory or hdd)`,
  );
}

export function sameSettings(a: QueueSettings, b: QueueSettings): boolean {
  return (
    a.ackTimeoutMs === b.ackTimeoutMs &&
    a.maxDeliveries === b.maxDeliveries &&
    a.deadLetter === b.deadLetter &&
    a.maxLength === b.maxLength &&
    a.overflow === b.overflow &&
    a.ttlMs === b.ttlMs &&
    a.dedupWindowMs === b.dedupWindowMs
  );
}

/** Something waiting for messages of a queue: a FETCH that waits, or a consumer. */
export interface Taker {
  /** How many messages it takes now (0 when it is full or done). */
  room(): number;
  /** Who holds the leases of what it takes. */
  readonly holder: LeaseHolder;
  /** Told synchronously how many messages were leased to it. */
  take(count: number): void;
  /** Gets them (later, for an hdd queue: once the delivery counts are stored). */
  deliver(deliveries: Delivery[]): void;
}

/** A delivered message while it is leased: who holds it, until when. */
class Lease {
  readonly message: Message;
  readonly holder: LeaseHolder;
  until: number;

  constructor(message: Message, holder: LeaseHolder, until: number) {
    this.message = message;
    this.holder = holder;
    this.until = until;
  }
}

/**
 * One queue's messages and leases: the state machine, without persistence or timers (the
 * broker drives both). Messages wait in three places: `returned` (given back, delivered first,
 * oldest first), `ready` (FIFO) and `delayed` (by due time); leased ones are in `leased`.
 */
export class Queue {
  readonly name: string;
  readonly type: QueueType;
  /** Names the queue in the store; never reused. */
  readonly id: number;
  readonly settings: QueueSettings;
  nextSeq = 1;
  nextDeadSeq = 1;
  /** Messages published to it that are being stored (an hdd PUBLISH), not yet added. */
  pending = 0;

  readonly #ready = new Deque<Message>();
  readonly #returned = new TimeHeap<Message>();
  readonly #delayed = new TimeHeap<Message>();
  readonly #leased = new Map<number, Lease>();
  /** Lease deadlines; an entry is stale once its lease ended or was extended. */
  readonly #leases = new TimeHeap<Lease>();
  /** Dead letters kept here (no dead-letter router, or it routed them nowhere), oldest first. */
  readonly dead = new Deque<Message>();
  /** De-duplication ids seen within the window: id → until when. */
  readonly #dedup = new Map<string, number>();
  readonly #dedupOrder = new Deque<string>();
  /** Consumers and waiting fetches, served in turn. */
  readonly takers: Taker[] = [];
  #turn = 0;

  published = 0;
  delivered = 0;
  redelivered = 0;
  acked = 0;
  deadLettered = 0;
  /** Deliveries of an hdd queue wait for their delivery counts to be stored, in order. */
  chain: Promise<void> = Promise.resolve();
  deleted = false;

  constructor(name: string, type: QueueType, id: number, settings: QueueSettings) {
    this.name = name;
    this.type = type;
    this.id = id;
    this.settings = settings;
  }

  /** Messages ready now or given back (not leased, not delayed). */
  get readyCount(): number {
    return this.#ready.length + this.#returned.size;
  }

  get delayedCount(): number {
    return this.#delayed.size;
  }

  get leasedCount(): number {
    return this.#leased.size;
  }

  /** What MAXLENGTH counts: every message not leased. */
  get waitingCount(): number {
    return this.#ready.length + this.#returned.size + this.#delayed.size;
  }

  /** Holds MAXLENGTH waiting messages (the ones being stored not counted): drop-head makes room. */
  get atMaxLength(): boolean {
    return this.settings.maxLength > 0 && this.waitingCount >= this.settings.maxLength;
  }

  /** Takes no more: MAXLENGTH messages waiting or being stored (what OVERFLOW reject refuses on). */
  get full(): boolean {
    return this.settings.maxLength > 0 && this.waitingCount + this.pending >= this.settings.maxLength;
  }

  /** True when `dedupId` was seen within the window (and remembers it when not). */
  seen(dedupId: string, now: number): boolean {
    this.#forgetIds(now);
    if (this.#dedup.has(dedupId)) return true;
    this.#dedup.set(dedupId, now + this.settings.dedupWindowMs);
    this.#dedupOrder.push(dedupId);
    return false;
  }

  #forgetIds(now: number): void {
    for (let id = this.#dedupOrder.peek(); id !== undefined; id = this.#dedupOrder.peek()) {
      if ((this.#dedup.get(id) as number) > now) return;
      this.#dedup.delete(id);
      this.#dedupOrder.shift();
    }
  }

  /** Adds a message (new, or loaded from disk) where it belongs: delayed until `readyAt`, or ready. */
  add(message: Message, readyAt: number, now: number): void {
    if (readyAt > now) this.#delayed.push(readyAt, message);
    else this.#ready.push(message);
  }

  /** Gives back a message whose lease ended without an ACK: it goes ahead of newer ones. */
  giveBack(message: Message): void {
    this.#returned.push(message.seq, message);
  }

  /** The oldest waiting message, removed (for OVERFLOW drop-head); undefined when none. */
  removeOldest(): Message | undefined {
    if (this.#returned.size > 0) return this.#returned.pop();
    const ready = this.#ready.shift();
    if (ready !== undefined) return ready;
    return this.#delayed.size > 0 ? this.#delayed.pop() : undefined;
  }

  /** Moves delayed messages that are due to the ready FIFO. */
  promote(now: number): void {
    while (this.#delayed.peekTime() <= now) this.#ready.push(this.#delayed.pop());
  }

  /**
   * The next message to deliver, removed from the waiting ones; undefined when none. Expired
   * messages met on the way are removed and added to `expired`.
   */
  next(now: number, expired: Message[]): Message | undefined {
    for (;;) {
      const message = this.#returned.size > 0 ? this.#returned.pop() : this.#ready.shift();
      if (message === undefined) return undefined;
      if (message.expiresAt !== 0 && message.expiresAt <= now) {
        expired.push(message);
        continue;
      }
      return message;
    }
  }

  /** Removes expired messages at the head of the ready FIFO (where queue ttls expire in order). */
  expireHead(now: number, expired: Message[]): void {
    for (let head = this.#ready.peek(); head !== undefined; head = this.#ready.peek()) {
      if (head.expiresAt === 0 || head.expiresAt > now) return;
      expired.push(this.#ready.shift() as Message);
    }
  }

  lease(message: Message, holder: LeaseHolder, now: number): void {
    message.deliveries++;
    const lease = new Lease(message, holder, now + this.settings.ackTimeoutMs);
    this.#leased.set(message.seq, lease);
    this.#leases.push(lease.until, lease);
    this.delivered++;
    if (message.deliveries > 1) this.redelivered++;
  }

  leased(seq: number): Message | undefined {
    return this.#leased.get(seq)?.message;
  }

  /** Every leased message. */
  leasedMessages(): Message[] {
    return [...this.#leased.values()].map((lease) => lease.message);
  }

  /** Extends a lease by the ack timeout from now; false when `seq` is not leased. */
  touch(seq: number, now: number): boolean {
    const lease = this.#leased.get(seq);
    if (lease === undefined) return false;
    lease.until = now + this.settings.ackTimeoutMs;
    this.#leases.push(lease.until, lease);
    return true;
  }

  /** Ends a lease (ACK, NACK, expiry, holder gone) and returns its message. */
  endLease(seq: number): Message | undefined {
    const lease = this.#leased.get(seq);
    if (lease === undefined) return undefined;
    this.#leased.delete(seq);
    lease.holder.leaseEnded(lease.message);
    return lease.message;
  }

  /** The messages whose lease ran out at `now`, their leases ended. */
  expiredLeases(now: number): Message[] {
    const out: Message[] = [];
    while (this.#leases.peekTime() <= now) {
      const time = this.#leases.peekTime();
      const lease = this.#leases.pop();
      if (lease.until !== time || this.#leased.get(lease.message.seq) !== lease) continue; // stale
      this.endLease(lease.message.seq);
      out.push(lease.message);
    }
    if (this.#leases.size > 4 * this.#leased.size + 1024) this.#rebuildLeases();
    return out;
  }

  /** Every message leased by a session's holders. */
  leasedBy(sessionId: number): Message[] {
    const out: Message[] = [];
    for (const lease of this.#leased.values()) if (lease.holder.sessionId === sessionId) out.push(lease.message);
    return out;
  }

  /** Removes every waiting message (ready, given back, delayed); leased ones stay. */
  flush(): Message[] {
    const out = this.#ready.drain();
    while (this.#returned.size > 0) out.push(this.#returned.pop());
    while (this.#delayed.size > 0) out.push(this.#delayed.pop());
    return out;
  }

  /** When something next falls due (a delayed message, a lease end, a ttl at the head). */
  nextDue(): number {
    const head = this.#ready.peek();
    const expiry = head === undefined || head.expiresAt === 0 ? Number.POSITIVE_INFINITY : head.expiresAt;
    return Math.min(this.#delayed.peekTime(), this.#leases.peekTime(), expiry);
  }

  /** The next taker with room, in turn; undefined when none has room. */
  nextTaker(): Taker | undefined {
    const takers = this.takers;
    for (let i = 0; i < takers.length; i++) {
      const index = (this.#turn + i) % takers.length;
      const taker = takers[index] as Taker;
      if (taker.room() > 0) {
        this.#turn = (index + 1) % takers.length;
        return taker;
      }
    }
    return undefined;
  }

  removeTaker(taker: Taker): void {
    const index = this.takers.indexOf(taker);
    if (index < 0) return;
    this.takers.splice(index, 1);
    if (this.#turn > index) this.#turn--;
    if (this.#turn >= this.takers.length) this.#turn = 0;
  }

  #rebuildLeases(): void {
    this.#leases.clear();
    for (const lease of this.#leased.values()) this.#leases.push(lease.until, lease);
  }
}
