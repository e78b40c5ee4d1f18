import { join } from 'node:path';
import { type Db, type Durability, defaults, ensureDir, newDb, openDb, StorageError } from '@hati/storage';
import { GroupCommit, type Op } from './group-commit.js';
import { DEAD_REASONS, type DeadReason, type Death, Message, type Payload, toPayload } from './message.js';
import type { QueueSettings, QueueType } from './queue.js';
import type { RouterKind } from './router.js';
import { BrokerSnapshot } from './snapshot.js';

// The broker's LevelDB, `<dataDir>/broker/`. Every key starts with a byte naming its kind:
//   0x00 'f'                                 → {"format":1}
//   0x01 <router name>                       → {"kind":...}
//   0x02 <queue name>                        → {"id":n,"type":...,"settings":{...}}
//   0x03 <u8 len><queue><u8 len><router><binding key>  → empty
//   0x10 <u32 queue id><u48 seq>             → a message record (see encodeRecord)
//   0x12 <u32 queue id><u48 dead seq>        → a kept dead letter (a message record)
//   0x13 <u32 queue id><u48 0>               → u48: above every seq the queue has handed out
// (Delivery counts are in `deliveries/`, keyed 0x11 <u32 queue id><u48 seq>.)
// Only hdd queues have 0x10-0x13 records; definitions of every queue are kept. The 0x13 mark
// keeps message ids from being used again after a restart (a stale ACK then settles nothing).

const META = Buffer.from([0x00, 0x66]);
export const ROUTER = 0x01;
export const QUEUE = 0x02;
export const BINDING = 0x03;
export const MESSAGE = 0x10;
export const DELIVERIES = 0x11;
export const DEAD = 0x12;
const SEQ_MARK = 0x13;
const FORMAT = 1;
const EMPTY = Buffer.alloc(0);

export interface QueueRecord {
  readonly name: string;
  readonly id: number;
  readonly type: QueueType;
  readonly settings: QueueSettings;
}

export interface Definitions {
  readonly routers: { name: string; kind: RouterKind }[];
  readonly queues: QueueRecord[];
  readonly bindings: { queue: string; router: string; bindingKey: string }[];
}

function prefixed(kind: number, name: string): Buffer {
  const out = Buffer.allocUnsafe(1 + Buffer.byteLength(name));
  out[0] = kind;
  out.write(name, 1);
  return out;
}

function bindingKeyOf(queue: string, router: string, bindingKey: string): Buffer {
  const q = Buffer.from(queue);
  const r = Buffer.from(router);
  return Buffer.concat([Buffer.from([BINDING, q.length]), q, Buffer.from([r.length]), r, Buffer.from(bindingKey)]);
}

export function messageKey(kind: number, queueId: number, seq: number): Buffer {
  const out = Buffer.allocUnsafe(11);
  out[0] = kind;
  out.writeUInt32BE(queueId, 1);
  out.writeUIntBE(seq, 5, 6);
  return out;
}

function range(kind: number, queueId: number): { gte: Buffer; lt: Buffer } {
  return { gte: messageKey(kind, queueId, 0), lt: messageKey(kind, queueId + 1, 0) };
}

/** What a record holds besides the message a queue keeps in memory. */
export interface RecordExtras {
  /** Not delivered before (ms since the epoch); 0 = at once. */
  readonly readyAt: number;
  /** The publisher's de-duplication id. */
  readonly dedupId: string | undefined;
}

const NO_EXTRAS: RecordExtras = { readyAt: 0, dedupId: undefined };

/**
 * A message record: u8 format, u32 deliveries, f64 readyAt, f64 expiresAt, u16 routing key
 * length, routing key, u16 dedup id length (0xffff: none), dedup id, u8 death reason (0xff:
 * none) [u32 deliveries, u8 queue length, queue], then the payload.
 */
export function encodeRecord(
  message: Message,
  payload: Payload | Uint8Array,
  extras: RecordExtras = NO_EXTRAS,
): Buffer {
  const routingKey = Buffer.from(message.routingKey);
  const id = extras.dedupId === undefined ? undefined : Buffer.from(extras.dedupId);
  const death = message.death;
  const deathQueue = death === undefined ? EMPTY : Buffer.from(death.queue);
  const head = 1 + 4 + 8 + 8 + 2 + routingKey.length + 2 + (id?.length ?? 0) + 1;
  const deathBytes = death === undefined ? 0 : 4 + 1 + deathQueue.length;
  const out = Buffer.allocUnsafe(head + deathBytes + payload.length);
  let at = out.writeUInt8(1, 0);
  at = out.writeUInt32BE(message.deliveries, at);
  at = out.writeDoubleBE(extras.readyAt, at);
  at = out.writeDoubleBE(message.expiresAt, at);
  at = out.writeUInt16BE(routingKey.length, at);
  at += routingKey.copy(out, at);
  at = out.writeUInt16BE(id === undefined ? 0xffff : id.length, at);
  if (id !== undefined) at += id.copy(out, at);
  if (death === undefined) at = out.writeUInt8(0xff, at);
  else {
    at = out.writeUInt8(DEAD_REASONS.indexOf(death.reason), at);
    at = out.writeUInt32BE(death.deliveries, at);
    at = out.writeUInt8(deathQueue.length, at);
    at += deathQueue.copy(out, at);
  }
  if (typeof payload === 'string') out.write(payload, at, 'latin1');
  else out.set(payload, at);
  return out;
}

/** A record read back: the message (without its payload), its extras, where its payload starts. */
export interface Decoded extends RecordExtras {
  readonly message: Message;
  readonly payloadAt: number;
}

/** Reads a record; the message's payload is left undefined (see `payloadAt`). */
export function decodeRecord(seq: number, record: Buffer): Decoded {
  let at = 1;
  const deliveries = record.readUInt32BE(at);
  at += 4;
  const readyAt = record.readDoubleBE(at);
  at += 8;
  const expiresAt = record.readDoubleBE(at);
  at += 8;
  const keyLength = record.readUInt16BE(at);
  at += 2;
  const routingKey = record.toString('utf8', at, at + keyLength);
  at += keyLength;
  const idLength = record.readUInt16BE(at);
  at += 2;
  let dedupId: string | undefined;
  if (idLength !== 0xffff) {
    dedupId = record.toString('utf8', at, at + idLength);
    at += idLength;
  }
  const reason = record.readUInt8(at);
  at += 1;
  let death: Death | undefined;
  if (reason !== 0xff) {
    const deathDeliveries = record.readUInt32BE(at);
    at += 4;
    const queueLength = record.readUInt8(at);
    at += 1;
    death = {
      reason: DEAD_REASONS[reason] as DeadReason,
      deliveries: deathDeliveries,
      queue: record.toString('utf8', at, at + queueLength),
    };
    at += queueLength;
  }
  return {
    message: new Message(seq, routingKey, undefined, deliveries, expiresAt, death),
    readyAt,
    dedupId,
    payloadAt: at,
  };
}

/** The payload of a record, copied. */
export function recordPayload(record: Buffer): Buffer {
  return Buffer.from(record.subarray(decodeRecord(0, record).payloadAt));
}

/**
 * The broker's LevelDBs. `<dataDir>/broker/` holds definitions and messages, written with group
 * commit (see GroupCommit) under the durability setting: fsynced for `always`; written to the OS
 * (safe from a process crash) for `everysec` (fsynced within about a second) and `no`.
 * `<dataDir>/broker/deliveries/` holds the delivery counts alone (`<u32 queue id><u48 seq>` →
 * u32), never fsynced: a count is written before its delivery is sent and only has to survive
 * the process dying, so it must not wait behind the fsync of other writes.
 */
export class BrokerStore {
  readonly durability: Durability;
  readonly #db: Db;
  readonly #countsDb: Db;
  readonly #main: GroupCommit;
  readonly #counts: GroupCommit;
  /** Per queue id, the seq mark to write with the next batch. */
  readonly #marks = new Map<number, number>();
  #syncTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(db: Db, countsDb: Db, durability: Durability) {
    this.#db = db;
    this.#countsDb = countsDb;
    this.durability = durability;
    this.#main = new GroupCommit(db, durability === 'always', (ops) => this.#addMarks(ops));
    this.#counts = new GroupCommit(countsDb, false);
    if (durability === 'everysec') {
      this.#syncTimer = setInterval(() => {
        if (this.#main.unsynced && !this.#closed) {
          this.#main.unsynced = false;
          this.#db.put(META, Buffer.from(JSON.stringify({ format: FORMAT })), { sync: true }).catch(() => {
            this.#main.unsynced = true;
          });
        }
      }, 1000);
      this.#syncTimer.unref();
    }
  }

  static async open(
    dataDir: string,
    durability: Durability,
    maxOpenFiles: number = defaults.maxOpenFiles,
  ): Promise<BrokerStore> {
    const dir = join(dataDir, 'broker');
    await ensureDir(dir);
    const db = newDb(dir, { cacheSize: defaults.cacheSize, writeBufferSize: defaults.writeBufferSize, maxOpenFiles });
    await openDb(db, `broker directory ${dir}`);
    const countsDir = join(dir, 'deliveries');
    const countsDb = newDb(countsDir, {
      cacheSize: 1024 * 1024,
      writeBufferSize: defaults.writeBufferSize,
      maxOpenFiles,
    });
    try {
      await openDb(countsDb, `broker directory ${countsDir}`);
    } catch (err) {
      await db.close();
      throw err;
    }
    try {
      const meta = await db.get(META);
      if (meta === undefined) await db.put(META, Buffer.from(JSON.stringify({ format: FORMAT })), { sync: true });
      else if ((JSON.parse(meta.toString()) as { format?: unknown }).format !== FORMAT) {
        throw new StorageError('DATA_DIR_CORRUPT', `${dir} holds a broker store of another format`);
      }
    } catch (err) {
      await Promise.allSettled([db.close(), countsDb.close()]);
      if (err instanceof StorageError) throw err;
      throw new StorageError('DATA_DIR_CORRUPT', `${dir} is not a Hati broker store`, { cause: err });
    }
    return new BrokerStore(db, countsDb, durability);
  }

  async definitions(): Promise<Definitions> {
    const routers: Definitions['routers'] = [];
    const queues: QueueRecord[] = [];
    const bindings: Definitions['bindings'] = [];
    for await (const [key, value] of this.#db.iterator({ gte: Buffer.from([ROUTER]), lt: Buffer.from([BINDING]) })) {
      const name = key.toString('utf8', 1);
      const json = JSON.parse(value.toString());
      if (key[0] === ROUTER) routers.push({ name, kind: json.kind });
      else queues.push({ name, id: json.id, type: json.type, settings: json.settings });
    }
    for await (const key of this.#db.keys({ gte: Buffer.from([BINDING]), lt: Buffer.from([BINDING + 1]) })) {
      const queueLength = key[1] as number;
      const queue = key.toString('utf8', 2, 2 + queueLength);
      const routerLength = key[2 + queueLength] as number;
      const router = key.toString('utf8', 3 + queueLength, 3 + queueLength + routerLength);
      bindings.push({ queue, router, bindingKey: key.toString('utf8', 3 + queueLength + routerLength) });
    }
    return { routers, queues, bindings };
  }

  /**
   * Calls `each` with every stored message (or kept dead letter) of a queue, in order; a message
   * gets its payload when `withPayload` (asked with its length) says so.
   */
  async messages(
    kind: typeof MESSAGE | typeof DEAD,
    queueId: number,
    withPayload: (bytes: number) => boolean,
    each: (decoded: Decoded) => void,
  ): Promise<void> {
    const counts = new Map<number, number>();
    if (kind === MESSAGE) {
      for await (const [key, value] of this.#countsDb.iterator(range(DELIVERIES, queueId))) {
        counts.set(key.readUIntBE(5, 6), value.readUInt32BE(0));
      }
    }
    for await (const [key, value] of this.#db.iterator(range(kind, queueId))) {
      const seq = key.readUIntBE(5, 6);
      const decoded = decodeRecord(seq, value);
      const { message, payloadAt } = decoded;
      const delivered = counts.get(seq);
      if (delivered !== undefined && delivered > message.deliveries) message.deliveries = delivered;
      if (withPayload(value.length - payloadAt)) message.payload = toPayload(value.subarray(payloadAt));
      each(decoded);
    }
  }

  /**
   * A point-in-time view of the store (see BrokerSnapshot): both LevelDBs' snapshots are taken
   * in this synchronous call. Every change whose commit resolved is in it.
   */
  snapshot(clock: () => number): BrokerSnapshot {
    return new BrokerSnapshot({ db: this.#db, countsDb: this.#countsDb, clock });
  }

  /** Above every message seq the queue has handed out (0 when it never stored one). */
  async seqMark(queueId: number): Promise<number> {
    const value = await this.#db.get(messageKey(SEQ_MARK, queueId, 0));
    return value === undefined ? 0 : value.readUIntBE(0, 6);
  }

  /** The payloads of stored messages, in the order asked; undefined for any no longer stored. */
  async payloads(kind: typeof MESSAGE | typeof DEAD, queueId: number, seqs: number[]): Promise<(Buffer | undefined)[]> {
    const records = await this.#db.getMany(seqs.map((seq) => messageKey(kind, queueId, seq)));
    return records.map((record) => (record === undefined ? undefined : recordPayload(record)));
  }

  putRouter(name: string, kind: RouterKind): void {
    this.#put(prefixed(ROUTER, name), Buffer.from(JSON.stringify({ kind })));
  }

  deleteRouter(name: string): void {
    this.#del(prefixed(ROUTER, name));
  }

  putQueue(queue: QueueRecord): void {
    const { id, type, settings } = queue;
    this.#put(prefixed(QUEUE, queue.name), Buffer.from(JSON.stringify({ id, type, settings })));
  }

  deleteQueue(name: string): void {
    this.#del(prefixed(QUEUE, name));
  }

  putBinding(queue: string, router: string, bindingKey: string): void {
    this.#put(bindingKeyOf(queue, router, bindingKey), EMPTY);
  }

  deleteBinding(queue: string, router: string, bindingKey: string): void {
    this.#del(bindingKeyOf(queue, router, bindingKey));
  }

  putMessage(
    kind: typeof MESSAGE | typeof DEAD,
    queueId: number,
    message: Message,
    payload: Payload | Uint8Array,
    extras?: RecordExtras,
  ): void {
    this.#put(messageKey(kind, queueId, message.seq), encodeRecord(message, payload, extras));
    if (kind === MESSAGE && message.seq >= (this.#marks.get(queueId) ?? 0)) this.#marks.set(queueId, message.seq + 1);
  }

  /** A delivery count, in the deliveries LevelDB (see the class comment). */
  putDeliveries(queueId: number, seq: number, deliveries: number): void {
    const value = Buffer.allocUnsafe(4);
    value.writeUInt32BE(deliveries, 0);
    this.#counts.put(messageKey(DELIVERIES, queueId, seq), value);
  }

  deleteMessage(queueId: number, seq: number): void {
    this.#del(messageKey(MESSAGE, queueId, seq));
    this.#counts.del(messageKey(DELIVERIES, queueId, seq));
  }

  deleteDead(queueId: number, seq: number): void {
    this.#del(messageKey(DEAD, queueId, seq));
  }

  /** Removes every message record of a queue (after the batches queued so far). */
  async clearQueue(queueId: number): Promise<void> {
    await Promise.all([this.commit(), this.commitCounts()]);
    for (const kind of [MESSAGE, DEAD, SEQ_MARK]) await this.#db.clear(range(kind, queueId));
    await this.#countsDb.clear(range(DELIVERIES, queueId));
  }

  /** Resolves once every change but delivery counts queued so far is written under the durability setting; rejects when that failed. */
  commit(): Promise<void> {
    return this.#main.commit();
  }

  /** Resolves once the delivery counts queued so far are written (to the OS); rejects when that failed. */
  commitCounts(): Promise<void> {
    return this.#counts.commit();
  }

  #put(key: Buffer, value: Buffer): void {
    this.#main.put(key, value);
  }

  #del(key: Buffer): void {
    this.#main.del(key);
  }

  /** Adds the seq marks of the queues that stored messages to a batch of the main LevelDB. */
  #addMarks(ops: Op[]): void {
    for (const [queueId, mark] of this.#marks) {
      const value = Buffer.allocUnsafe(6);
      value.writeUIntBE(mark, 0, 6);
      ops.push({ type: 'put', key: messageKey(SEQ_MARK, queueId, 0), value });
    }
    this.#marks.clear();
  }

  async close(): Promise<void> {
    await Promise.all([this.#main.drain(), this.#counts.drain()]);
    this.#closed = true;
    this.#main.closed = true;
    this.#counts.closed = true;
    if (this.#syncTimer !== undefined) clearInterval(this.#syncTimer);
    if (this.durability !== 'no' && this.#main.unsynced)
      await this.#db.put(META, Buffer.from(JSON.stringify({ format: FORMAT })), { sync: true }).catch(() => {});
    await Promise.allSettled([this.#db.close(), this.#countsDb.close()]);
  }
}
