import { type Db, StorageError } from '@hati/storage';
import { BrokerError } from './errors.js';
import type { DeadReason } from './message.js';
import { queueDefaults } from './options.js';
import type { QueueSettings, QueueType } from './queue.js';
import type { RouterKind } from './router.js';
import { BINDING, DEAD, DELIVERIES, decodeRecord, MESSAGE, QUEUE, ROUTER } from './store.js';

/** What a broker snapshot yields, in this order: routers, queues, bindings (see `definitions`), messages, dead letters. */
export type SnapshotItem = RouterItem | QueueItem | BindingItem | MessageItem | DeadItem;

export interface RouterItem {
  readonly kind: 'router';
  readonly name: string;
  readonly routerKind: RouterKind;
}

export interface QueueItem {
  readonly kind: 'queue';
  readonly name: string;
  readonly type: QueueType;
  readonly settings: QueueSettings;
}

export interface BindingItem {
  readonly kind: 'binding';
  readonly queue: string;
  readonly router: string;
  readonly bindingKey: string;
}

/**
 * A message of an hdd queue: waiting, delayed or leased at the snapshot (a lease is not part of
 * it: restored, the message is waiting again, its deliveries kept). `readyAt`, `expiresAt`: ms
 * since the epoch, 0 = none; `dedupId`: '' = none.
 */
export interface MessageItem {
  readonly kind: 'message';
  readonly queue: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly deliveries: number;
  readonly readyAt: number;
  readonly expiresAt: number;
  readonly dedupId: string;
}

/** A dead letter kept in an hdd queue's own list; `source` is the queue it died in. */
export interface DeadItem {
  readonly kind: 'dead';
  readonly queue: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly reason: DeadReason;
  readonly source: string;
  readonly deliveries: number;
}

type Snapshot = ReturnType<Db['snapshot']>;
type Entry = [Buffer, Buffer];

/** What a snapshot uses of a LevelDB iterator. */
interface Iterator {
  nextv(size: number): Promise<Entry[]>;
  close(): Promise<void>;
}

/** How much one native read may hold (classic-level's `highWaterMarkBytes`). */
const READ_AHEAD_BYTES = 1024 * 1024;
/** Delivery counts read per step while matching them to messages. */
const COUNTS_STEP = 1000;

/**
 * A range of one LevelDB snapshot read in steps, records held between steps only as far as a
 * step read ahead.
 */
class RangeReader {
  readonly #db: Db;
  readonly #snapshot: Snapshot;
  readonly #gte: Buffer;
  readonly #lt: Buffer;
  #iterator: Iterator | undefined;
  #pending: Entry[] = [];
  #ended = false;

  constructor(db: Db, snapshot: Snapshot, kind: number) {
    this.#db = db;
    this.#snapshot = snapshot;
    this.#gte = Buffer.from([kind]);
    this.#lt = Buffer.from([kind + 1]);
  }

  /** The next record, without taking it; undefined at the end of the range. */
  async peek(size: number): Promise<Entry | undefined> {
    if (this.#pending.length === 0 && !this.#ended) {
      this.#iterator ??= this.#db.iterator({
        gte: this.#gte,
        lt: this.#lt,
        snapshot: this.#snapshot,
        highWaterMarkBytes: READ_AHEAD_BYTES,
      });
      this.#pending = await this.#iterator.nextv(size);
      if (this.#pending.length === 0) await this.close();
    }
    return this.#pending[0];
  }

  /** Takes the record `peek` returned. */
  take(): Entry {
    return this.#pending.shift() as Entry;
  }

  async close(): Promise<void> {
    this.#ended = true;
    this.#pending = [];
    const iterator = this.#iterator;
    this.#iterator = undefined;
    await iterator?.close();
  }
}

/** The 10 bytes after the kind byte: queue id and seq, the order messages and counts share. */
function position(key: Buffer): Buffer {
  return key.subarray(1, 11);
}

/**
 * A point-in-time view of the broker's store, for a backup (see `Broker#snapshot`): one LevelDB
 * snapshot of the broker's database and one of its delivery counts, taken in the same
 * synchronous run, read in bounded steps. Definitions and messages are read separately, so a
 * caller can put other records between them.
 */
export class BrokerSnapshot {
  readonly #db: Db | undefined;
  readonly #snapshot: Snapshot | undefined;
  readonly #countsDb: Db | undefined;
  readonly #countsSnapshot: Snapshot | undefined;
  readonly #clock: () => number;
  /** A broker without a store: its definitions, copied when the snapshot was taken. */
  #copied: SnapshotItem[] | undefined;
  #definitions: RangeReader[] | undefined;
  #messages: RangeReader[] | undefined;
  #counts: RangeReader | undefined;
  /** Queue id → name, of the hdd queues in the snapshot (messages of others are skipped). */
  #queues: Map<number, string> | undefined;
  #closed = false;

  /** @internal Made by `Broker#snapshot`. */
  constructor(
    source: { db: Db; countsDb: Db; clock: () => number } | { definitions: SnapshotItem[]; clock: () => number },
  ) {
    this.#clock = source.clock;
    if ('definitions' in source) {
      this.#copied = source.definitions;
      return;
    }
    this.#db = source.db;
    this.#countsDb = source.countsDb;
    this.#snapshot = source.db.snapshot();
    this.#countsSnapshot = source.countsDb.snapshot();
  }

  /**
   * The next definitions (routers, then queues, then bindings), at most `max`; an empty array
   * when all were read.
   */
  async definitions(max: number): Promise<Array<RouterItem | QueueItem | BindingItem>> {
    this.#assertOpen();
    if (this.#copied !== undefined) return this.#copied.splice(0, max) as Array<RouterItem | QueueItem | BindingItem>;
    const db = this.#db as Db;
    const snapshot = this.#snapshot as Snapshot;
    this.#definitions ??= [ROUTER, QUEUE, BINDING].map((kind) => new RangeReader(db, snapshot, kind));
    const out: Array<RouterItem | QueueItem | BindingItem> = [];
    for (const reader of this.#definitions) {
      while (out.length < max) {
        const entry = await this.#read(() => reader.peek(max - out.length));
        if (entry === undefined) break;
        reader.take();
        out.push(definitionOf(entry));
      }
    }
    return out;
  }

  /**
   * The next messages of hdd queues, then their kept dead letters: at most `max`, stopping once
   * their bodies hold `maxBytes` or more (one large body still comes alone). Messages expired when
   * read are skipped. An empty array: nothing is left (the snapshot is then closed).
   */
  async messages(max: number, maxBytes: number): Promise<Array<MessageItem | DeadItem>> {
    this.#assertOpen();
    const out: Array<MessageItem | DeadItem> = [];
    if (this.#db === undefined) {
      await this.close();
      return out;
    }
    const db = this.#db;
    const snapshot = this.#snapshot as Snapshot;
    const queues = this.#queues ?? (await this.#queueNames());
    this.#messages ??= [MESSAGE, DEAD].map((kind) => new RangeReader(db, snapshot, kind));
    this.#counts ??= new RangeReader(this.#countsDb as Db, this.#countsSnapshot as Snapshot, DELIVERIES);
    let bytes = 0;
    const now = this.#clock();
    for (const reader of this.#messages) {
      while (out.length < max && bytes < maxBytes) {
        const entry = await this.#read(() => reader.peek(max - out.length));
        if (entry === undefined) break;
        reader.take();
        const [key, value] = entry;
        const queue = queues.get(key.readUInt32BE(1));
        // Records of a queue deleted just before the snapshot, not yet cleared.
        if (queue === undefined) continue;
        const { message, readyAt, dedupId, payloadAt } = decodeRecord(key.readUIntBE(5, 6), value);
        const body = value.subarray(payloadAt);
        if (key[0] === MESSAGE) {
          if (message.expiresAt !== 0 && message.expiresAt <= now) continue;
          const counted = await this.#countOf(key);
          out.push({
            kind: 'message',
            queue,
            routingKey: message.routingKey,
            body,
            deliveries: Math.max(message.deliveries, counted),
            readyAt,
            expiresAt: message.expiresAt,
            dedupId: dedupId ?? '',
          });
        } else {
          const death = message.death;
          out.push({
            kind: 'dead',
            queue,
            routingKey: message.routingKey,
            body,
            reason: death?.reason ?? 'rejected',
            source: death?.queue ?? queue,
            deliveries: death?.deliveries ?? message.deliveries,
          });
        }
        bytes += body.length;
      }
    }
    if (out.length === 0) await this.close();
    return out;
  }

  /** Releases the LevelDB snapshots. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#copied = undefined;
    const readers = [...(this.#definitions ?? []), ...(this.#messages ?? []), ...(this.#counts ? [this.#counts] : [])];
    await Promise.allSettled([
      ...readers.map((reader) => reader.close()),
      this.#snapshot?.close(),
      this.#countsSnapshot?.close(),
    ]);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new BrokerError('BROKER_CLOSED', 'the broker snapshot is closed');
  }

  /** The stored delivery count of the message at `key` (0 when none is stored). */
  async #countOf(key: Buffer): Promise<number> {
    const counts = this.#counts as RangeReader;
    const at = position(key);
    for (;;) {
      const entry = await this.#read(() => counts.peek(COUNTS_STEP));
      if (entry === undefined) return 0;
      const order = position(entry[0]).compare(at);
      if (order > 0) return 0;
      counts.take();
      if (order === 0) return entry[1].readUInt32BE(0);
    }
  }

  /** The names of the snapshot's hdd queues by id (a few per queue: read whole). */
  async #queueNames(): Promise<Map<number, string>> {
    const names = new Map<number, string>();
    const reader = new RangeReader(this.#db as Db, this.#snapshot as Snapshot, QUEUE);
    try {
      for (;;) {
        const entry = await this.#read(() => reader.peek(1000));
        if (entry === undefined) break;
        reader.take();
        const item = definitionOf(entry) as QueueItem;
        const { id } = JSON.parse(entry[1].toString()) as { id: number };
        if (item.type === 'hdd') names.set(id, item.name);
      }
    } finally {
      await reader.close();
    }
    this.#queues = names;
    return names;
  }

  /** A LevelDB read of the snapshot; a failure closes it and names the broker's store. */
  async #read<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      await this.close();
      throw new StorageError(
        'STORAGE_IO',
        `reading the broker's snapshot failed: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
  }
}

/** A definition record of the store as a snapshot item. */
function definitionOf([key, value]: Entry): RouterItem | QueueItem | BindingItem {
  if (key[0] === ROUTER) {
    return { kind: 'router', name: key.toString('utf8', 1), routerKind: JSON.parse(value.toString()).kind };
  }
  if (key[0] === QUEUE) {
    const { type, settings } = JSON.parse(value.toString()) as { type: QueueType; settings: Partial<QueueSettings> };
    return { kind: 'queue', name: key.toString('utf8', 1), type, settings: { ...queueDefaults, ...settings } };
  }
  const queueLength = key[1] as number;
  const routerLength = key[2 + queueLength] as number;
  return {
    kind: 'binding',
    queue: key.toString('utf8', 2, 2 + queueLength),
    router: key.toString('utf8', 3 + queueLength, 3 + queueLength + routerLength),
    bindingKey: key.toString('utf8', 3 + queueLength + routerLength),
  };
}
