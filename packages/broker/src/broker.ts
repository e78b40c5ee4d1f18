import { type Clock, checkDurability, type Durability, globMatcher } from '@hati/storage';
import { BrokerError } from './errors.js';
import {
  DEAD_REASONS,
  DeadReason,
  type Delivery,
  Message,
  type Payload,
  payloadBytes,
  payloadLength,
  toPayload,
} from './message.js';
import { checkName, checkRoutingKey } from './names.js';
import { type BrokerOptions, defaults, MAX_FETCH, MAX_MS, MAX_PREFETCH, queueDefaults } from './options.js';
import { Overflow, Queue, type QueueSettings, QueueType, queueTypeOf, sameSettings, type Taker } from './queue.js';
import { Router, type RouterKind, routerKindOf } from './router.js';
import { BrokerSession, type CancelTarget, Consumer, type PushTarget, Waiter } from './session.js';
import { BrokerSnapshot, type SnapshotItem } from './snapshot.js';
import { BrokerStore, DEAD, MESSAGE } from './store.js';

/** Per-message options of a PUBLISH. */
export interface PublishOptions {
  /** Not delivered before this many ms from now. @default 0 */
  delayMs?: number;
  /** Dead-lettered as expired when not acknowledged this many ms from now; 0 = never. @default 0 */
  ttlMs?: number;
  /** A de-duplication id: a queue that saw it within its window does not take the message again. */
  id?: string;
}

/** What CREATEQUEUE may set; absent fields take `queueDefaults`. */
export type QueueOptions = Partial<QueueSettings>;

export const NackMode = { requeue: 'requeue', drop: 'drop' } as const;
export type NackMode = (typeof NackMode)[keyof typeof NackMode];

export interface QueueInfo {
  name: string;
  type: QueueType;
  ackTimeoutMs: number;
  maxDeliveries: number;
  deadLetter: string | null;
  maxLength: number;
  overflow: Overflow;
  ttlMs: number;
  dedupWindowMs: number;
  ready: number;
  leased: number;
  delayed: number;
  dead: number;
  consumers: number;
  published: number;
  delivered: number;
  redelivered: number;
  acked: number;
  deadLettered: number;
  bindings: { router: string; bindingKey: string }[];
}

export interface RouterInfo {
  name: string;
  kind: RouterKind;
  bindings: { queue: string; bindingKey: string }[];
}

export interface BrokerStats {
  routers: number;
  queues: number;
  published: number;
  delivered: number;
  redelivered: number;
  acked: number;
  deadLettered: number;
  perQueue: Record<string, QueueStats>;
}

/**
 * One queue in `BrokerStats`: what it holds now, and what it did since the broker opened
 * (counters, never reset; a rate is the difference of two snapshots).
 */
export interface QueueStats {
  ready: number;
  leased: number;
  delayed: number;
  /** Dead letters kept in the queue's own list. */
  dead: number;
  consumers: number;
  /** Messages added to it: published, dead letters routed to it, replayed ones. */
  published: number;
  /** Deliveries begun (leases), redeliveries included. */
  delivered: number;
  /** Deliveries of a message delivered before. */
  redelivered: number;
  acked: number;
  /** Messages that died in it (whether kept or routed on). */
  deadLettered: number;
}

/** A message as `restoreMessage` takes it (a backup's message record). */
export interface RestoredMessage {
  readonly routingKey: string;
  readonly body: Buffer;
  readonly deliveries: number;
  /** Not delivered before (ms since the epoch); 0 = at once. */
  readonly readyAt: number;
  /** Dead-lettered as expired at this time (ms since the epoch); 0 = never. */
  readonly expiresAt: number;
  /** '' = none. */
  readonly dedupId: string;
}

/** A dead letter as `restoreDead` takes it (a backup's dead record). */
export interface RestoredDead {
  readonly routingKey: string;
  readonly body: Buffer;
  /** One of DeadReason. */
  readonly reason: string;
  /** The queue it died in. */
  readonly source: string;
  /** Its deliveries there. */
  readonly deliveries: number;
}

/** A message on its way into a queue, with when it is due (0: at once). */
type Added = [queue: Queue, message: Message, readyAt: number];

/** A kept dead letter, as DEADLETTERS shows it. */
export type DeadLetter = Required<Delivery>;

function checkMs(what: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > MAX_MS) {
    throw new BrokerError(
      'ARGUMENT_INVALID',
      `${what} must be a whole number of ms from ${min} to ${MAX_MS}, got ${String(value)}`,
    );
  }
  return value;
}

function checkCount(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new BrokerError(
      'ARGUMENT_INVALID',
      `${what} must be a whole number from ${min} to ${max}, got ${String(value)}`,
    );
  }
  return value;
}

/** A message id as sent back by a consumer, or undefined when it is not one. */
function seqOf(id: string): number | undefined {
  if (typeof id !== 'string' || !/^[1-9][0-9]{0,15}$/.test(id)) return undefined;
  const seq = Number(id);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

function settingsOf(options: QueueOptions): QueueSettings {
  const s = { ...queueDefaults, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  checkMs('ACKTIMEOUT', s.ackTimeoutMs, 1);
  checkCount('MAXDELIVERIES', s.maxDeliveries, 0, 2 ** 32 - 1);
  checkCount('MAXLENGTH', s.maxLength, 0, Number.MAX_SAFE_INTEGER);
  checkMs('TTL', s.ttlMs);
  checkMs('DEDUPWINDOW', s.dedupWindowMs);
  if (s.overflow !== 'reject' && s.overflow !== 'drop-head') {
    throw new BrokerError('ARGUMENT_INVALID', `OVERFLOW must be reject or drop-head, got ${String(s.overflow)}`);
  }
  if (s.deadLetter !== undefined) checkName('router', s.deadLetter);
  return s;
}

function deliveryOf(message: Message, bytes: Buffer): Delivery {
  const delivery: Delivery = {
    id: String(message.seq),
    deliveries: message.deliveries,
    routingKey: message.routingKey,
    message: bytes,
  };
  return message.death === undefined ? delivery : { ...delivery, death: message.death };
}

/**
 * The broker: routers, queues and bindings; publishing, leased delivery, dead letters. Embed it
 * with `Broker.open()`; the server gives each connection a `BrokerSession`.
 *
 * Memory queues answer synchronously; an operation that changes an hdd queue returns a promise
 * that settles once the change is written under the durability setting.
 */
export class Broker {
  readonly durability: Durability;
  readonly #clock: Clock;
  readonly #store: BrokerStore | undefined;
  readonly #routers = new Map<string, Router>();
  readonly #queues = new Map<string, Queue>();
  readonly #timers: boolean;
  readonly #cacheLimit: number;
  #cacheBytes = 0;
  #nextQueueId = 1;
  #nextSession = 1;
  readonly #sessions = new Set<BrokerSession>();
  readonly #woken = new Set<Queue>();
  #wakeScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #closed = false;
  #closing: Promise<void> | undefined;
  #published = 0;

  private constructor(options: BrokerOptions, store: BrokerStore | undefined, durability: Durability) {
    this.durability = durability;
    this.#clock = options.clock ?? Date.now;
    this.#store = store;
    this.#timers = options.timers ?? true;
    this.#cacheLimit = options.hddCacheBytes ?? defaults.hddCacheBytes;
  }

  static async open(options: BrokerOptions = {}): Promise<Broker> {
    const durability = checkDurability(options.durability ?? defaults.durability);
    const store =
      options.dataDir === undefined
        ? undefined
        : await BrokerStore.open(options.dataDir, durability, options.maxOpenFiles);
    const broker = new Broker(options, store, durability);
    if (store !== undefined) {
      try {
        await broker.#load(store);
      } catch (err) {
        await store.close();
        throw err;
      }
    }
    broker.#arm();
    return broker;
  }

  async #load(store: BrokerStore): Promise<void> {
    const { routers, queues, bindings } = await store.definitions();
    for (const { name, kind } of routers) this.#routers.set(name, new Router(name, kind));
    const now = this.#clock();
    // Messages whose last allowed delivery ended with the restart: dead-lettered once routers are known.
    const spent: [Queue, Message][] = [];
    for (const record of queues) {
      const queue = new Queue(record.name, record.type, record.id, { ...queueDefaults, ...record.settings });
      this.#queues.set(queue.name, queue);
      this.#nextQueueId = Math.max(this.#nextQueueId, record.id + 1);
      if (queue.type !== QueueType.hdd) {
        // A memory queue stores no ids; its new ones start past any it can have handed out before
        // (fewer than 1,000 a millisecond), so an ACK of an id from before the restart settles nothing.
        queue.nextSeq = now * 1000;
        continue;
      }
      const { maxDeliveries } = queue.settings;
      const keep = (bytes: number) => this.#cacheBytes + bytes <= this.#cacheLimit;
      await store.messages(MESSAGE, queue.id, keep, ({ message, readyAt, dedupId }) => {
        if (message.payload !== undefined) this.#cacheBytes += payloadLength(message.payload);
        queue.nextSeq = message.seq + 1;
        // A stored message's id stays seen (from now): a publisher that retries a PUBLISH whose
        // reply the restart cut off does not get it queued twice.
        if (dedupId !== undefined) queue.seen(dedupId, now);
        if (maxDeliveries > 0 && message.deliveries >= maxDeliveries) spent.push([queue, message]);
        else queue.add(message, readyAt, now);
      });
      queue.nextSeq = Math.max(queue.nextSeq, await store.seqMark(queue.id));
      await store.messages(
        DEAD,
        queue.id,
        () => false,
        ({ message }) => {
          queue.nextDeadSeq = message.seq + 1;
          queue.dead.push(message);
        },
      );
    }
    for (const { queue, router, bindingKey } of bindings) this.#routers.get(router)?.bind(queue, bindingKey);
    for (const [queue, message] of spent) this.#deadLetter(queue, message, DeadReason.deliveryLimit, now);
    await this.settled();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * A new session; `push` receives its consumers' deliveries (none: it cannot CONSUME), and
   * `onCancel` hears of consumers the broker ends itself (their queue was deleted).
   */
  openSession(push?: PushTarget, onCancel?: CancelTarget): BrokerSession {
    this.#open();
    const session = new BrokerSession(this.#nextSession++, push, onCancel);
    this.#sessions.add(session);
    return session;
  }

  // ---- definitions ----

  createRouter(name: string, kind: string): Promise<void> | undefined {
    this.#open();
    checkName('router', name);
    const routerKind = routerKindOf(kind);
    const existing = this.#routers.get(name);
    if (existing !== undefined) {
      if (existing.kind !== routerKind) {
        throw new BrokerError('ROUTER_EXISTS', `router '${name}' exists with kind ${existing.kind}`);
      }
      return undefined;
    }
    this.#routers.set(name, new Router(name, routerKind));
    this.#store?.putRouter(name, routerKind);
    return this.#store?.commit();
  }

  createQueue(name: string, type: string, options: QueueOptions = {}): Promise<void> | undefined {
    this.#open();
    checkName('queue', name);
    const queueType = queueTypeOf(type);
    const settings = settingsOf(options);
    if (queueType === QueueType.hdd && this.#store === undefined) {
      throw new BrokerError('QUEUE_TYPE_INVALID', 'hdd queues need a broker with a data directory');
    }
    const existing = this.#queues.get(name);
    if (existing !== undefined) {
      if (existing.type !== queueType || !sameSettings(existing.settings, settings)) {
        throw new BrokerError(
          'QUEUE_EXISTS',
          `queue '${name}' exists with other settings (GETQUEUE ${name} shows them)`,
        );
      }
      return undefined;
    }
    if (settings.deadLetter !== undefined) this.#router(settings.deadLetter);
    const queue = new Queue(name, queueType, this.#nextQueueId++, settings);
    this.#queues.set(name, queue);
    this.#store?.putQueue({ name, id: queue.id, type: queueType, settings });
    return this.#store?.commit();
  }

  bind(queueName: string, routerName: string, bindingKey: string): Promise<void> | undefined {
    this.#open();
    checkRoutingKey('binding key', bindingKey);
    const queue = this.#queue(queueName);
    const router = this.#router(routerName);
    if (!router.bind(queue.name, bindingKey)) return undefined;
    this.#store?.putBinding(queue.name, router.name, bindingKey);
    return this.#store?.commit();
  }

  unbind(queueName: string, routerName: string, bindingKey: string): boolean | Promise<boolean> {
    this.#open();
    const queue = this.#queue(queueName);
    const router = this.#router(routerName);
    if (!router.unbind(queue.name, bindingKey)) return false;
    this.#store?.deleteBinding(queue.name, router.name, bindingKey);
    return this.#stored(true, true);
  }

  deleteRouter(name: string): boolean | Promise<boolean> {
    this.#open();
    const router = this.#routers.get(name);
    if (router === undefined) return false;
    this.#routers.delete(name);
    for (const { queue, bindingKey } of router.bindings()) this.#store?.deleteBinding(queue, name, bindingKey);
    this.#store?.deleteRouter(name);
    return this.#stored(true, true);
  }

  deleteQueue(name: string): boolean | Promise<boolean> {
    this.#open();
    const queue = this.#queues.get(name);
    if (queue === undefined) return false;
    this.#queues.delete(name);
    queue.deleted = true;
    for (const router of this.#routers.values()) {
      for (const bindingKey of router.unbindQueue(name)) this.#store?.deleteBinding(name, router.name, bindingKey);
    }
    for (const taker of [...queue.takers]) {
      if (taker instanceof Waiter) taker.end();
      else if (taker instanceof Consumer) {
        this.#cancel(taker);
        taker.session.cancelled(taker.tag, name);
      }
    }
    for (const message of queue.flush()) this.#uncache(queue, message);
    for (const message of queue.leasedMessages()) this.#uncache(queue, message);
    if (this.#store === undefined) return true;
    this.#store.deleteQueue(name);
    const store = this.#store;
    return store.commit().then(async () => {
      if (queue.type === QueueType.hdd) await store.clearQueue(queue.id);
      return true;
    });
  }

  getRouter(name: string): RouterInfo {
    this.#open();
    const router = this.#router(name);
    return { name, kind: router.kind, bindings: router.bindings() };
  }

  getQueue(name: string): QueueInfo {
    this.#open();
    const queue = this.#queue(name);
    const s = queue.settings;
    const bindings: QueueInfo['bindings'] = [];
    for (const router of this.#routers.values()) {
      for (const binding of router.bindings()) {
        if (binding.queue === name) bindings.push({ router: router.name, bindingKey: binding.bindingKey });
      }
    }
    return {
      name,
      type: queue.type,
      ackTimeoutMs: s.ackTimeoutMs,
      maxDeliveries: s.maxDeliveries,
      deadLetter: s.deadLetter ?? null,
      maxLength: s.maxLength,
      overflow: s.overflow,
      ttlMs: s.ttlMs,
      dedupWindowMs: s.dedupWindowMs,
      ready: queue.readyCount,
      leased: queue.leasedCount,
      delayed: queue.delayedCount,
      dead: queue.dead.length,
      consumers: queue.takers.filter((taker) => taker instanceof Consumer).length,
      published: queue.published,
      delivered: queue.delivered,
      redelivered: queue.redelivered,
      acked: queue.acked,
      deadLettered: queue.deadLettered,
      bindings,
    };
  }

  listRouters(pattern?: string): string[] {
    this.#open();
    return listNames(this.#routers.keys(), pattern);
  }

  listQueues(pattern?: string): string[] {
    this.#open();
    return listNames(this.#queues.keys(), pattern);
  }

  stats(): BrokerStats {
    this.#open();
    const totals = { published: this.#published, delivered: 0, redelivered: 0, acked: 0, deadLettered: 0 };
    const perQueue: BrokerStats['perQueue'] = {};
    for (const queue of this.#queues.values()) {
      totals.delivered += queue.delivered;
      totals.redelivered += queue.redelivered;
      totals.acked += queue.acked;
      totals.deadLettered += queue.deadLettered;
      perQueue[queue.name] = {
        ready: queue.readyCount,
        leased: queue.leasedCount,
        delayed: queue.delayedCount,
        dead: queue.dead.length,
        consumers: queue.takers.filter((taker) => taker instanceof Consumer).length,
        published: queue.published,
        delivered: queue.delivered,
        redelivered: queue.redelivered,
        acked: queue.acked,
        deadLettered: queue.deadLettered,
      };
    }
    return { routers: this.#routers.size, queues: this.#queues.size, ...totals, perQueue };
  }

  // ---- backup and restore ----

  /**
   * A point-in-time view of the definitions, and of the messages and kept dead letters of the
   * hdd queues, for a backup (see BrokerSnapshot): taken from the store in this synchronous call,
   * so it holds every change already answered (an answer waits for its write) and none made after.
   * Messages of memory queues are not in it; without a data directory, neither are messages.
   */
  snapshot(): BrokerSnapshot {
    this.#open();
    if (this.#store !== undefined) return this.#store.snapshot(this.#clock);
    const definitions: SnapshotItem[] = [];
    for (const router of this.#routers.values())
      definitions.push({ kind: 'router', name: router.name, routerKind: router.kind });
    for (const queue of this.#queues.values()) {
      definitions.push({ kind: 'queue', name: queue.name, type: queue.type, settings: queue.settings });
    }
    for (const router of this.#routers.values()) {
      for (const { queue, bindingKey } of router.bindings()) {
        definitions.push({ kind: 'binding', queue, router: router.name, bindingKey });
      }
    }
    return new BrokerSnapshot({ definitions, clock: this.#clock });
  }

  /**
   * Puts a message from a backup into a queue, as it was: its deliveries, due time and expiry
   * (absolute), and de-duplication id (remembered from now, as after a restart). It gets a new id.
   * MAXLENGTH and OVERFLOW do not apply: the backup held a state the queue had. False, adding
   * nothing, when its expiry has passed. An hdd queue's promise resolves once it is stored.
   */
  restoreMessage(queueName: string, restored: RestoredMessage): boolean | Promise<boolean> {
    this.#open();
    const queue = this.#queue(queueName);
    const { routingKey, body, dedupId } = restored;
    checkRoutingKey('routing key', routingKey);
    const deliveries = checkCount('deliveries', restored.deliveries, 0, 2 ** 32 - 1);
    const readyAt = checkCount('readyAt', restored.readyAt, 0, Number.MAX_SAFE_INTEGER);
    const expiresAt = checkCount('expiresAt', restored.expiresAt, 0, Number.MAX_SAFE_INTEGER);
    if (typeof dedupId !== 'string' || Buffer.byteLength(dedupId) > 256) {
      throw new BrokerError('ARGUMENT_INVALID', 'a message ID is text of at most 256 bytes');
    }
    const now = this.#clock();
    if (expiresAt !== 0 && expiresAt <= now) return false;
    const message = new Message(queue.nextSeq++, routingKey, undefined, deliveries, expiresAt, undefined);
    if (dedupId !== '') queue.seen(dedupId, now);
    const add = () => {
      if (queue.deleted) return true;
      queue.add(message, readyAt, this.#clock());
      this.#armAt(readyAt);
      this.#armAt(expiresAt);
      this.#wake(queue);
      return true;
    };
    if (queue.type !== QueueType.hdd) {
      message.payload = toPayload(body);
      return add();
    }
    const store = this.#store as BrokerStore;
    store.putMessage(MESSAGE, queue.id, message, body, { readyAt, dedupId: dedupId === '' ? undefined : dedupId });
    if (this.#cacheHas(body.length)) message.payload = toPayload(body);
    queue.pending++;
    return store.commit().then(
      () => {
        queue.pending--;
        return add();
      },
      (err: unknown) => {
        queue.pending--;
        this.#uncache(queue, message);
        throw err;
      },
    );
  }

  /** Puts a dead letter from a backup into a queue's own dead-letter list (a new id). */
  restoreDead(queueName: string, restored: RestoredDead): true | Promise<true> {
    this.#open();
    const queue = this.#queue(queueName);
    const { routingKey, body, reason, source } = restored;
    checkRoutingKey('routing key', routingKey);
    const deliveries = checkCount('deliveries', restored.deliveries, 0, 2 ** 32 - 1);
    if (!DEAD_REASONS.includes(reason as DeadReason)) {
      throw new BrokerError(
        'ARGUMENT_INVALID',
        `a dead letter's reason is one of ${DEAD_REASONS.join(', ')}, got '${String(reason).slice(0, 32)}'`,
      );
    }
    checkName('queue', source);
    const death = { reason: reason as DeadReason, queue: source, deliveries };
    const dead = new Message(queue.nextDeadSeq++, routingKey, undefined, deliveries, 0, death);
    if (queue.type !== QueueType.hdd) {
      dead.payload = toPayload(body);
      queue.dead.push(dead);
      return true;
    }
    const store = this.#store as BrokerStore;
    store.putMessage(DEAD, queue.id, dead, body);
    return store.commit().then(() => {
      if (!queue.deleted) queue.dead.push(dead);
      return true as const;
    });
  }

  // ---- publishing ----

  /** Routes a message; returns the number of queues it reached (each stored, for hdd queues). */
  publish(
    routerName: string,
    routingKey: string,
    payload: Uint8Array | string,
    options: PublishOptions = {},
  ): number | Promise<number> {
    this.#open();
    const router = this.#router(routerName);
    checkRoutingKey('routing key', routingKey);
    const delayMs = checkMs('DELAY', options.delayMs ?? 0);
    const ttlMs = checkMs('TTL', options.ttlMs ?? 0);
    const dedupId = options.id;
    if (
      dedupId !== undefined &&
      (typeof dedupId !== 'string' || dedupId.length === 0 || Buffer.byteLength(dedupId) > 256)
    ) {
      throw new BrokerError('ARGUMENT_INVALID', 'a message ID is text of 1 to 256 bytes');
    }
    const names = new Set<string>();
    router.route(routingKey, names);
    const targets: Queue[] = [];
    for (const name of names) {
      const queue = this.#queues.get(name);
      if (queue === undefined) continue;
      if (queue.full && queue.settings.overflow === Overflow.reject) {
        throw new BrokerError(
          'QUEUE_FULL',
          `queue '${name}' holds its MAXLENGTH of ${queue.settings.maxLength} messages; nothing was published`,
        );
      }
      targets.push(queue);
    }
    this.#published++;
    if (targets.length === 0) return 0;
    const now = this.#clock();
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    // One copy of the bytes in memory, shared by every queue (the caller's may be a socket chunk).
    let kept: Payload | undefined;
    const keep = () => (kept ??= toPayload(bytes));
    const readyAt = delayMs === 0 ? 0 : now + delayMs;
    const added: Added[] = [];
    let stored = false;
    for (const queue of targets) {
      if (dedupId !== undefined && queue.seen(dedupId, now)) continue;
      const message = new Message(
        queue.nextSeq++,
        routingKey,
        undefined,
        0,
        this.#expiry(queue, ttlMs, now),
        undefined,
      );
      if (queue.type === QueueType.hdd) {
        (this.#store as BrokerStore).putMessage(MESSAGE, queue.id, message, bytes, { readyAt, dedupId });
        if (this.#cacheHas(bytes.length)) message.payload = keep();
        stored = true;
      } else message.payload = keep();
      added.push([queue, message, readyAt]);
    }
    const reached = targets.length;
    if (!stored) {
      this.#enqueue(added, now);
      return reached;
    }
    // Until they are stored and added, these count towards MAXLENGTH (a pipelined PUBLISH sees them).
    for (const [queue] of added) queue.pending++;
    const unpend = () => {
      for (const [queue] of added) queue.pending--;
    };
    return (this.#store as BrokerStore).commit().then(
      () => {
        unpend();
        this.#enqueue(added, this.#clock());
        return reached;
      },
      (err: unknown) => {
        unpend();
        throw err;
      },
    );
  }

  #expiry(queue: Queue, ttlMs: number, now: number): number {
    const queueTtl = queue.settings.ttlMs;
    const ttl = ttlMs === 0 ? queueTtl : queueTtl === 0 ? ttlMs : Math.min(ttlMs, queueTtl);
    return ttl === 0 ? 0 : now + ttl;
  }

  #enqueue(added: Added[], now: number): void {
    for (const [queue, message, readyAt] of added) {
      if (queue.deleted) continue;
      if (queue.settings.overflow === Overflow.dropHead && queue.atMaxLength) {
        const oldest = queue.removeOldest();
        if (oldest !== undefined) this.#deadLetter(queue, oldest, DeadReason.overflow, now);
      }
      queue.add(message, readyAt, now);
      queue.published++;
      this.#armAt(readyAt);
      this.#armAt(message.expiresAt);
      this.#wake(queue);
    }
  }

  // ---- consuming ----

  /**
   * Leases up to `count` messages to the session; with `waitMs`, waits up to that long for the
   * first one when none is ready.
   */
  fetch(session: BrokerSession, queueName: string, count = 1, waitMs = 0): Delivery[] | Promise<Delivery[]> {
    this.#open();
    this.#live(session);
    const queue = this.#queue(queueName);
    checkCount('count', count, 1, MAX_FETCH);
    checkMs('wait', waitMs);
    const now = this.#clock();
    queue.promote(now);
    const taken = this.#take(queue, session, count, now);
    if (taken.length > 0 || waitMs === 0) return this.#handOver(queue, taken);
    return new Promise((resolve) => {
      const waiter = new Waiter(session, queue, count, resolve);
      waiter.timer = setTimeout(() => waiter.end(), waitMs);
      session.waiters.add(waiter);
      queue.takers.push(waiter);
    });
  }

  /** Starts pushing a queue's messages to the session; returns the consumer tag. */
  consume(session: BrokerSession, queueName: string, prefetch = 0): string {
    this.#open();
    this.#live(session);
    const queue = this.#queue(queueName);
    checkCount('prefetch', prefetch, 0, MAX_PREFETCH);
    if (!session.canPush) throw new BrokerError('ARGUMENT_INVALID', 'this session cannot receive pushed deliveries');
    const tag = session.newTag();
    const consumer = new Consumer(tag, queue, session, prefetch, (q) => this.#wake(q));
    session.consumers.set(tag, consumer);
    queue.takers.push(consumer);
    this.#wake(queue);
    return tag;
  }

  /** Stops a consumer; the messages it holds stay leased until settled or the session closes. */
  cancel(session: BrokerSession, tag: string): boolean {
    const consumer = session.consumers.get(tag);
    if (consumer === undefined) return false;
    this.#cancel(consumer);
    return true;
  }

  #cancel(consumer: Consumer): void {
    consumer.active = false;
    consumer.session.consumers.delete(consumer.tag);
    consumer.queue.removeTaker(consumer);
  }

  /** Acknowledges leased messages; returns how many were leased (and are now gone for good). */
  ack(queueName: string, ids: readonly string[]): number | Promise<number> {
    this.#open();
    const queue = this.#queue(queueName);
    let acked = 0;
    for (const id of ids) {
      const seq = seqOf(id);
      const message = seq === undefined ? undefined : queue.endLease(seq);
      if (message === undefined) continue;
      acked++;
      queue.acked++;
      this.#uncache(queue, message);
      if (queue.type === QueueType.hdd) (this.#store as BrokerStore).deleteMessage(queue.id, message.seq);
    }
    return this.#stored(acked > 0 && queue.type === QueueType.hdd, acked);
  }

  /** Ends a lease without an ACK: requeued (or dead-lettered past MAXDELIVERIES), or dropped to the dead letters. */
  nack(queueName: string, id: string, mode: NackMode = NackMode.requeue): number | Promise<number> {
    this.#open();
    const queue = this.#queue(queueName);
    if (mode !== NackMode.requeue && mode !== NackMode.drop) {
      throw new BrokerError('ARGUMENT_INVALID', `NACK takes REQUEUE or DROP, got ${String(mode)}`);
    }
    const seq = seqOf(id);
    const message = seq === undefined ? undefined : queue.endLease(seq);
    if (message === undefined) return 0;
    const now = this.#clock();
    if (mode === NackMode.drop) this.#deadLetter(queue, message, DeadReason.rejected, now);
    else this.#release(queue, message, now);
    return this.#settled(queue, 1);
  }

  /** Extends a lease by the queue's ack timeout from now. */
  touch(queueName: string, id: string): boolean {
    this.#open();
    const queue = this.#queue(queueName);
    const seq = seqOf(id);
    const now = this.#clock();
    const touched = seq !== undefined && queue.touch(seq, now);
    if (touched) this.#armAt(now + queue.settings.ackTimeoutMs);
    return touched;
  }

  /** Removes a queue's waiting messages (ready, returned, delayed); leased ones stay. */
  flush(queueName: string): number | Promise<number> {
    this.#open();
    const queue = this.#queue(queueName);
    const removed = queue.flush();
    for (const message of removed) {
      this.#uncache(queue, message);
      if (queue.type === QueueType.hdd) (this.#store as BrokerStore).deleteMessage(queue.id, message.seq);
    }
    return this.#stored(removed.length > 0 && queue.type === QueueType.hdd, removed.length);
  }

  /** The oldest `count` kept dead letters of a queue, with their payloads. */
  deadLetters(queueName: string, count = 10): DeadLetter[] | Promise<DeadLetter[]> {
    this.#open();
    const queue = this.#queue(queueName);
    checkCount('count', count, 1, MAX_FETCH);
    const oldest = () => {
      const entries: Message[] = [];
      for (const message of queue.dead) {
        if (entries.length === count) break;
        entries.push(message);
      }
      return entries;
    };
    const show = (entries: Message[], bytes: Buffer[]) =>
      entries.map((message, i) => deliveryOf(message, bytes[i] as Buffer) as DeadLetter);
    if (queue.type !== QueueType.hdd) {
      const entries = oldest();
      return show(
        entries,
        entries.map((message) => payloadBytes(message.payload as Payload)),
      );
    }
    // After the dead letters under way (their bytes being read) have joined the list.
    return queue.chain.then(async () => {
      const entries = oldest();
      return show(entries, await this.#bytesOf(queue, DEAD, entries));
    });
  }

  /** Moves up to `count` kept dead letters back to the queue as new messages; returns how many. */
  replayDead(queueName: string, count = MAX_FETCH): number | Promise<number> {
    this.#open();
    const queue = this.#queue(queueName);
    checkCount('count', count, 1, Number.MAX_SAFE_INTEGER);
    const entries: Message[] = [];
    while (entries.length < count && queue.dead.length > 0) entries.push(queue.dead.shift() as Message);
    if (entries.length === 0) return 0;
    const now = this.#clock();
    const renew = (dead: Message) =>
      new Message(queue.nextSeq++, dead.routingKey, undefined, 0, this.#expiry(queue, 0, now), undefined);
    if (queue.type !== QueueType.hdd) {
      this.#enqueue(
        entries.map((dead) => {
          const message = renew(dead);
          message.payload = dead.payload;
          return [queue, message, 0];
        }),
        now,
      );
      return entries.length;
    }
    const store = this.#store as BrokerStore;
    return this.#bytesOf(queue, DEAD, entries).then((bytes) => {
      const added = entries.map((dead, i): Added => {
        const message = renew(dead);
        const payload = bytes[i] as Buffer;
        store.deleteDead(queue.id, dead.seq);
        store.putMessage(MESSAGE, queue.id, message, payload);
        if (this.#cacheHas(payload.length)) message.payload = toPayload(payload);
        return [queue, message, 0];
      });
      return store.commit().then(() => {
        this.#enqueue(added, this.#clock());
        return entries.length;
      });
    });
  }

  /** Deletes a queue's kept dead letters; returns how many. */
  purgeDead(queueName: string): number | Promise<number> {
    this.#open();
    const queue = this.#queue(queueName);
    const entries = queue.dead.drain();
    const hdd = queue.type === QueueType.hdd;
    if (hdd) for (const dead of entries) (this.#store as BrokerStore).deleteDead(queue.id, dead.seq);
    return this.#stored(hdd && entries.length > 0, entries.length);
  }

  /** Ends a session: cancels its consumers and waits, gives back what it holds leased. */
  closeSession(session: BrokerSession): void {
    if (session.closed) return;
    session.closed = true;
    this.#sessions.delete(session);
    for (const consumer of [...session.consumers.values()]) this.#cancel(consumer);
    for (const waiter of [...session.waiters]) waiter.end();
    if (this.#closed) return;
    const now = this.#clock();
    for (const queue of this.#queues.values()) {
      for (const message of queue.leasedBy(session.id)) {
        queue.endLease(message.seq);
        this.#release(queue, message, now);
      }
    }
  }

  /**
   * Runs what has fallen due: leases that ran out, delayed messages, expired ones. Timers call
   * it; a broker opened with `timers: false` (tests with an injected clock) is driven by hand.
   */
  tick(): void {
    if (this.#closed) return;
    const now = this.#clock();
    for (const queue of this.#queues.values()) {
      queue.promote(now);
      for (const message of queue.expiredLeases(now)) this.#release(queue, message, now);
      const expired: Message[] = [];
      queue.expireHead(now, expired);
      for (const message of expired) this.#deadLetter(queue, message, DeadReason.expired, now);
      if (queue.readyCount > 0) this.#wake(queue);
    }
    this.#arm();
  }

  /**
   * Resolves once the work begun so far is done: deliveries being handed over, dead letters of hdd
   * messages whose bytes had to be read first, and the store writes they queued.
   */
  async settled(): Promise<void> {
    for (;;) {
      const chains = [...this.#queues.values()].map((queue) => queue.chain);
      await Promise.all(chains);
      await Promise.all([this.#store?.commit(), this.#store?.commitCounts()]);
      const now = [...this.#queues.values()].map((queue) => queue.chain);
      if (now.length === chains.length && now.every((chain, i) => chain === chains[i])) return;
    }
  }

  async close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    for (const session of [...this.#sessions]) this.closeSession(session);
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    // Dead letters whose bytes are being read still write to the store: let them finish first.
    this.#closing = this.settled()
      .catch(() => {})
      .then(() => this.#store?.close());
    return this.#closing;
  }

  // ---- internals ----

  #open(): void {
    if (this.#closed) throw new BrokerError('BROKER_CLOSED', 'the broker is closed');
  }

  #live(session: BrokerSession): void {
    if (session.closed) throw new BrokerError('BROKER_CLOSED', 'the session is closed');
  }

  #router(name: string): Router {
    const router = this.#routers.get(name);
    if (router === undefined)
      throw new BrokerError('ROUTER_NOT_FOUND', `no router named '${String(name).slice(0, 64)}'`);
    return router;
  }

  #queue(name: string): Queue {
    const queue = this.#queues.get(name);
    if (queue === undefined) throw new BrokerError('QUEUE_NOT_FOUND', `no queue named '${String(name).slice(0, 64)}'`);
    return queue;
  }

  /** Leases up to `count` waiting messages to `taker`'s holder. */
  #take(queue: Queue, taker: Taker | BrokerSession, count: number, now: number): Message[] {
    const holder = taker instanceof BrokerSession ? taker : taker.holder;
    const taken: Message[] = [];
    const expired: Message[] = [];
    while (taken.length < count) {
      const message = queue.next(now, expired);
      if (message === undefined) break;
      queue.lease(message, holder, now);
      taken.push(message);
    }
    for (const message of expired) this.#deadLetter(queue, message, DeadReason.expired, now);
    if (taken.length > 0) {
      if (!(taker instanceof BrokerSession)) taker.take(taken.length);
      this.#armAt(now + queue.settings.ackTimeoutMs);
    }
    return taken;
  }

  /**
   * Turns leased messages into deliveries. For an hdd queue the new delivery counts are stored
   * first (a delivery before a crash counts) and payloads not in memory are read.
   */
  #handOver(queue: Queue, taken: Message[]): Delivery[] | Promise<Delivery[]> {
    if (queue.type !== QueueType.hdd || taken.length === 0) {
      return taken.map((message) => deliveryOf(message, payloadBytes(message.payload as Payload)));
    }
    const store = this.#store as BrokerStore;
    for (const message of taken) store.putDeliveries(queue.id, message.seq, message.deliveries);
    const stored = store.commitCounts();
    const ready = queue.chain.then(async () => {
      await stored;
      return this.#bytesOf(queue, MESSAGE, taken);
    });
    queue.chain = ready.then(
      () => {},
      () => {},
    );
    return ready.then((bytes) => taken.map((message, i) => deliveryOf(message, bytes[i] as Buffer)));
  }

  /**
   * The bytes of hdd messages (or kept dead letters): from memory when cached, else read. What
   * is read is not kept: the cache holds only what it counted.
   */
  async #bytesOf(queue: Queue, kind: typeof MESSAGE | typeof DEAD, messages: Message[]): Promise<Buffer[]> {
    const out = messages.map((message) => (message.payload === undefined ? undefined : payloadBytes(message.payload)));
    const missing: number[] = [];
    out.forEach((bytes, i) => {
      if (bytes === undefined) missing.push(i);
    });
    if (missing.length === 0) return out as Buffer[];
    const read = await (this.#store as BrokerStore).payloads(
      kind,
      queue.id,
      missing.map((i) => (messages[i] as Message).seq),
    );
    // A record deleted meanwhile (the queue was deleted) leaves an empty payload.
    missing.forEach((at, i) => {
      out[at] = read[i] ?? Buffer.alloc(0);
    });
    return out as Buffer[];
  }

  /** A lease ended without an ACK: back to the queue, or dead-lettered past MAXDELIVERIES or its ttl. */
  #release(queue: Queue, message: Message, now: number): void {
    const { maxDeliveries } = queue.settings;
    if (maxDeliveries > 0 && message.deliveries >= maxDeliveries) {
      this.#deadLetter(queue, message, DeadReason.deliveryLimit, now);
    } else if (message.expiresAt !== 0 && message.expiresAt <= now) {
      this.#deadLetter(queue, message, DeadReason.expired, now);
    } else {
      queue.giveBack(message);
      this.#wake(queue);
    }
  }

  /**
   * Moves a message out of `queue` with a death: published to the queue's dead-letter router, or,
   * when it has none (or it routes the message nowhere, or back here, or to a full queue), kept in
   * the queue's own dead-letter list. Never dropped.
   */
  #deadLetter(queue: Queue, message: Message, reason: DeadReason, now: number): void {
    queue.deadLettered++;
    const death = { reason, queue: queue.name, deliveries: message.deliveries };
    const targets = this.#deadTargets(queue, message.routingKey);
    const finish = (payload: Payload) => {
      const store = this.#store;
      // In the same batch as the dead letter's own record: a crash between the two loses nothing.
      if (queue.type === QueueType.hdd) store?.deleteMessage(queue.id, message.seq);
      this.#uncache(queue, message);
      if (targets.length === 0) {
        const dead = new Message(queue.nextDeadSeq++, message.routingKey, undefined, message.deliveries, 0, death);
        if (queue.type === QueueType.hdd) store?.putMessage(DEAD, queue.id, dead, payload);
        else dead.payload = payload;
        queue.dead.push(dead);
        return;
      }
      const added: Added[] = [];
      for (const target of targets) {
        const copy = new Message(
          target.nextSeq++,
          message.routingKey,
          undefined,
          0,
          this.#expiry(target, 0, now),
          death,
        );
        if (target.type === QueueType.hdd) {
          store?.putMessage(MESSAGE, target.id, copy, payload);
          if (this.#cacheHas(payloadLength(payload))) copy.payload = payload;
        } else copy.payload = payload;
        added.push([target, copy, 0]);
      }
      this.#enqueue(added, now);
    };
    if (message.payload !== undefined) finish(message.payload);
    else {
      // An hdd message whose bytes are only on disk: read them first (deliveries wait in the chain).
      const loaded = queue.chain
        .then(() => this.#bytesOf(queue, MESSAGE, [message]))
        .then(([bytes]) => finish(toPayload(bytes as Buffer)));
      queue.chain = loaded.catch(() => {});
    }
  }

  #deadTargets(queue: Queue, routingKey: string): Queue[] {
    const name = queue.settings.deadLetter;
    const router = name === undefined ? undefined : this.#routers.get(name);
    if (router === undefined) return [];
    const names = new Set<string>();
    router.route(routingKey, names);
    const targets: Queue[] = [];
    for (const target of names) {
      const found = this.#queues.get(target);
      if (found === undefined) continue;
      if (found === queue || (found.full && found.settings.overflow === Overflow.reject)) return [];
      targets.push(found);
    }
    return targets;
  }

  /** `result`, once what the change queued is stored when it `wrote` to the store. */
  #stored<T>(wrote: boolean, result: T): T | Promise<T> {
    const store = this.#store;
    return !wrote || store === undefined ? result : store.commit().then(() => result);
  }

  /** `result` once what the change wrote is stored (and a dead letter it began has been moved). */
  #settled(queue: Queue, result: number): number | Promise<number> {
    const store = this.#store;
    if (store === undefined) return result;
    return queue.chain.then(() => store.commit()).then(() => result);
  }

  /**
   * Whether an hdd message's payload of `bytes` may stay in memory; if so, it is counted. An hdd
   * message holds its payload exactly when it was counted here.
   */
  #cacheHas(bytes: number): boolean {
    if (this.#cacheBytes + bytes > this.#cacheLimit) return false;
    this.#cacheBytes += bytes;
    return true;
  }

  /** A message leaves its queue: an hdd one gives back what it counted in the cache. */
  #uncache(queue: Queue, message: Message): void {
    if (queue.type === QueueType.hdd && message.payload !== undefined)
      this.#cacheBytes -= payloadLength(message.payload);
  }

  /** Queues a dispatch of `queue` for the end of this turn (once, however often woken). */
  #wake(queue: Queue): void {
    this.#woken.add(queue);
    if (this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    queueMicrotask(() => {
      this.#wakeScheduled = false;
      const woken = [...this.#woken];
      this.#woken.clear();
      for (const q of woken) this.#dispatch(q);
    });
  }

  /** Hands waiting messages to the queue's consumers and waiting fetches, in turn. */
  #dispatch(queue: Queue): void {
    if (this.#closed || queue.deleted || queue.takers.length === 0) return;
    const now = this.#clock();
    queue.promote(now);
    // Messages are dealt one turn at a time, then handed over once per taker (one store write
    // and one chain step per consumer, however many messages it got).
    const batches = new Map<Taker, Message[]>();
    // Ask for the next taker only when there is something to give: asking moves the turn on.
    while (queue.readyCount > 0) {
      const taker = queue.nextTaker();
      if (taker === undefined) break;
      const taken = this.#take(queue, taker, taker.room(), now);
      if (taken.length === 0) break;
      const batch = batches.get(taker);
      if (batch === undefined) batches.set(taker, taken);
      else batch.push(...taken);
    }
    for (const [target, taken] of batches) {
      const deliveries = this.#handOver(queue, taken);
      if (Array.isArray(deliveries)) target.deliver(deliveries);
      else {
        deliveries.then(
          // A consumer cancelled while its deliveries were being stored takes nothing more.
          (d) => (target instanceof Consumer && !target.active ? this.#undelivered(queue, taken) : target.deliver(d)),
          () => this.#undelivered(queue, taken),
        );
      }
    }
  }

  /** Leased messages that never reached their taker (their counts could not be stored, or it left): they go back. */
  #undelivered(queue: Queue, taken: Message[]): void {
    for (const message of taken) {
      if (queue.leased(message.seq) !== message) continue;
      queue.endLease(message.seq);
      message.deliveries--;
      queue.giveBack(message);
    }
    this.#wake(queue);
  }

  /** Sets the timer for the earliest thing due in any queue (a full look: open and tick only). */
  #arm(): void {
    let due = Number.POSITIVE_INFINITY;
    for (const queue of this.#queues.values()) due = Math.min(due, queue.nextDue());
    this.#armAt(due);
  }

  /** Makes sure the timer fires by `due` (something new falls due then). */
  #armAt(due: number): void {
    if (!this.#timers || this.#closed || due === 0 || due >= this.#timerAt) return;
    if (due === Number.POSITIVE_INFINITY) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = due;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Number.POSITIVE_INFINITY;
        this.tick();
      },
      Math.max(0, Math.min(due - this.#clock(), MAX_MS)),
    );
    this.#timer.unref();
  }
}

function listNames(names: Iterable<string>, pattern: string | undefined): string[] {
  const matches = pattern === undefined ? undefined : globMatcher(pattern);
  const out: string[] = [];
  for (const name of names) if (matches === undefined || matches(Buffer.from(name))) out.push(name);
  return out.sort();
}
