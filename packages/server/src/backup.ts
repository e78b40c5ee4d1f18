// Online backup and restore (docs/protocol.md, "Backup"): BACKUP BEGIN takes a consistent
// snapshot held by the connection, BACKUP NEXT reads it in bounded chunks of records, BACKUP LOAD
// applies one record. `openBackupTarget` applies records to a stopped server's data directory
// with the same function, so a restore does the same whichever way it runs.
import { randomBytes } from 'node:crypto';
import { Broker, type BrokerSnapshot, type QueueOptions, type SnapshotItem } from '@hati/broker';
import {
  type BackupRecord,
  commands,
  type ReplyWriter,
  readOptions,
  recordFromFields,
  recordToFields,
} from '@hati/protocol';
import {
  type Clock,
  type Durability,
  type HddSnapshot,
  type MemorySnapshot,
  StorageManager,
  type StoredEntry,
} from '@hati/storage';
import { countArg } from './arguments.js';
import { ServerError } from './errors.js';
import type { Hub } from './hub.js';
import type { PubSub } from './pubsub.js';
import type { Session, WriteFrame } from './session.js';

/** Records in a BACKUP NEXT reply when COUNT is not given. */
export const BACKUP_DEFAULT_COUNT = 1000;
/** Most records one BACKUP NEXT may ask for. */
export const BACKUP_MAX_COUNT = 100_000;
/**
 * About how many bytes of keys, values and bodies one reply holds: a reply stops once it has
 * this much (one larger record still comes alone), so neither side holds more than a few MiB.
 */
export const BACKUP_REPLY_BYTES = 4 * 1024 * 1024;
/** Snapshots one connection may hold at once: each keeps LevelDB from dropping old versions. */
export const BACKUP_MAX_SNAPSHOTS = 4;

/**
 * How long a snapshot is kept without a BACKUP NEXT. A setting of this module rather than of the
 * server so that tests can shorten it; 60 s as docs/protocol.md says.
 */
export const backupTimeouts = { idleMs: 60_000 };

/** Snapshots held now, over every connection of every server in this process. */
let heldSnapshots = 0;

/** How many backup snapshots are held now in this process (for tests and monitoring). */
export function backupSnapshotsHeld(): number {
  return heldSnapshots;
}

const EMPTY_REPLY: WriteFrame = (out) => out.arrayHeader(0);

/** What a record is applied to: the engines and the broker (and whom to tell of key changes). */
export interface BackupParts {
  readonly storage: StorageManager;
  readonly broker: Broker;
  readonly pubsub?: PubSub;
}

/** The queue settings a queue record may carry (other fields are ignored: a later version's). */
const QUEUE_SETTINGS = [
  'ackTimeoutMs',
  'maxDeliveries',
  'deadLetter',
  'maxLength',
  'overflow',
  'ttlMs',
  'dedupWindowMs',
] as const;

/**
 * Applies one backup record, as BACKUP LOAD and `openBackupTarget` do: true when applied, false
 * when skipped because its expiry has passed. A key keeps its absolute expiry; a router or queue
 * that exists with the same definition is kept (another one fails with ROUTER_EXISTS or
 * QUEUE_EXISTS); a binding that exists is kept; a message or dead letter goes into its queue
 * under a new id. Fails with the engine's or broker's code when the record does not fit.
 */
export async function applyRecord(parts: BackupParts, record: BackupRecord): Promise<boolean> {
  const { storage, broker } = parts;
  switch (record.kind) {
    case 'key': {
      const engine = record.type === 'memory' ? storage.memory : storage.hdd;
      const applied = await engine.restore(record.key, record.value, record.expiresAt);
      if (applied && parts.pubsub !== undefined) {
        parts.pubsub.keyEvent(record.type, 'set', record.key);
        if (record.expiresAt !== 0) parts.pubsub.keyEvent(record.type, 'expire', record.key);
      }
      return applied;
    }
    case 'router':
      await broker.createRouter(record.name, record.routerKind);
      return true;
    case 'queue': {
      const options: Record<string, unknown> = {};
      for (const name of QUEUE_SETTINGS) if (record.settings[name] !== undefined) options[name] = record.settings[name];
      await broker.createQueue(record.name, record.type, options as QueueOptions);
      return true;
    }
    case 'binding':
      await broker.bind(record.queue, record.router, record.bindingKey);
      return true;
    case 'message':
      return broker.restoreMessage(record.queue, record);
    case 'dead':
      return broker.restoreDead(record.queue, record);
  }
}

/** A broker snapshot item as a backup record. */
function brokerRecord(item: SnapshotItem): BackupRecord {
  if (item.kind !== 'queue') return item;
  // JSON of the settings leaves out a dead-letter router that is not set.
  return { kind: 'queue', name: item.name, type: item.type, settings: { ...item.settings } };
}

function keyRecord(type: 'memory' | 'hdd', entry: StoredEntry): BackupRecord {
  return { kind: 'key', type, key: entry.key, value: entry.value, expiresAt: entry.expiresAt };
}

/** Bytes a record's data holds, for the reply budget. */
function recordBytes(record: BackupRecord): number {
  switch (record.kind) {
    case 'key':
      return record.key.length + record.value.length;
    case 'message':
    case 'dead':
      return record.body.length;
    default:
      return 64;
  }
}

/** Where a snapshot's reading is, in the order of docs/protocol.md. */
const Phase = { definitions: 0, hdd: 1, memory: 2, messages: 3, done: 4 } as const;

/**
 * One snapshot held by a connection: the hdd engine's, the broker's and (with MEMORY) the memory
 * engine's, taken together. Reads run one at a time (pipelined NEXTs wait their turn).
 */
class BackupCursor {
  readonly id: string;
  readonly #hdd: HddSnapshot;
  readonly #broker: BrokerSnapshot;
  readonly #memory: MemorySnapshot | undefined;
  readonly #onEnd: () => void;
  #phase: number = Phase.definitions;
  #turn: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout;
  #ended = false;

  constructor(
    id: string,
    hdd: HddSnapshot,
    broker: BrokerSnapshot,
    memory: MemorySnapshot | undefined,
    onEnd: () => void,
  ) {
    this.id = id;
    this.#hdd = hdd;
    this.#broker = broker;
    this.#memory = memory;
    this.#onEnd = onEnd;
    this.#timer = setTimeout(() => void this.end(), backupTimeouts.idleMs);
    this.#timer.unref();
    heldSnapshots++;
  }

  /** The next records, at most `count` and about BACKUP_REPLY_BYTES; [] at the end (then released). */
  next(count: number): Promise<BackupRecord[]> {
    this.#timer.refresh();
    const read = this.#turn.then(() => this.#read(count));
    this.#turn = read.catch(() => {});
    return read.finally(() => {
      if (!this.#ended) this.#timer.refresh();
    });
  }

  async #read(count: number): Promise<BackupRecord[]> {
    const out: BackupRecord[] = [];
    let bytes = 0;
    const add = (record: BackupRecord) => {
      out.push(record);
      bytes += recordBytes(record);
    };
    try {
      while (!this.#ended && out.length < count && bytes < BACKUP_REPLY_BYTES) {
        const room = count - out.length;
        const budget = BACKUP_REPLY_BYTES - bytes;
        let got: number;
        if (this.#phase === Phase.definitions) {
          const items = await this.#broker.definitions(room);
          for (const item of items) add(brokerRecord(item));
          got = items.length;
        } else if (this.#phase === Phase.hdd) {
          const entries = await this.#hdd.read(room, budget);
          for (const entry of entries) add(keyRecord('hdd', entry));
          got = entries.length;
        } else if (this.#phase === Phase.memory) {
          const entries = this.#memory?.read(room, budget) ?? [];
          for (const entry of entries) add(keyRecord('memory', entry));
          got = entries.length;
        } else if (this.#phase === Phase.messages) {
          const items = await this.#broker.messages(room, budget);
          for (const item of items) add(brokerRecord(item));
          got = items.length;
        } else {
          break;
        }
        if (got === 0) this.#phase++;
      }
    } catch (err) {
      await this.end();
      throw err;
    }
    if (out.length === 0) await this.end();
    return out;
  }

  /** Releases every snapshot; safe to call twice. */
  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    heldSnapshots--;
    clearTimeout(this.#timer);
    this.#onEnd();
    this.#memory?.close();
    await Promise.allSettled([this.#hdd.close(), this.#broker.close()]);
  }
}

/** The snapshots each connection holds, by id. */
const held = new WeakMap<Session, Map<string, BackupCursor>>();

function cursorOf(session: Session, arg: Buffer): BackupCursor {
  const cursor = held.get(session)?.get(arg.toString('latin1'));
  if (cursor === undefined) {
    throw new ServerError(
      'BACKUP_NOT_FOUND',
      `this connection holds no backup snapshot '${arg.toString('latin1', 0, 64)}' (ended, read to its end, idle for ${backupTimeouts.idleMs / 1000} s, or never begun)`,
    );
  }
  return cursor;
}

/** BACKUP BEGIN [MEMORY]: every snapshot taken in this synchronous call. */
function begin(hub: Hub, session: Session, args: Buffer[]): string {
  const options = readOptions(commands.BACKUP.subcommands.BEGIN, args, 2);
  let cursors = held.get(session);
  if (cursors !== undefined && cursors.size >= BACKUP_MAX_SNAPSHOTS) {
    throw new ServerError(
      'ARGUMENT_INVALID',
      `this connection holds ${BACKUP_MAX_SNAPSHOTS} backup snapshots already: BACKUP END one first`,
    );
  }
  const hdd = hub.storage.hdd.snapshot();
  let broker: BrokerSnapshot;
  try {
    broker = hub.broker.snapshot();
  } catch (err) {
    void hdd.close();
    throw err;
  }
  const memory = options.has('MEMORY') ? hub.storage.memory.snapshot() : undefined;
  if (cursors === undefined) {
    const created = new Map<string, BackupCursor>();
    cursors = created;
    held.set(session, created);
    // A connection that goes away releases what it held.
    session.onClose(() => {
      for (const cursor of [...created.values()]) void cursor.end();
    });
  }
  const id = randomBytes(8).toString('hex');
  const map = cursors;
  map.set(id, new BackupCursor(id, hdd, broker, memory, () => map.delete(id)));
  return id;
}

/** Writes records as BACKUP NEXT replies them: an array of records, each an array of bulk strings. */
function writeRecords(records: BackupRecord[]): WriteFrame {
  if (records.length === 0) return EMPTY_REPLY;
  return (out: ReplyWriter) => {
    out.arrayHeader(records.length);
    for (const record of records) {
      const fields = recordToFields(record);
      out.arrayHeader(fields.length);
      for (const field of fields) out.bulk(field);
    }
  };
}

/** The handlers of BACKUP's subcommands (registered in handlers.ts). */
export const backupHandlers = {
  BACKUP() {
    // Only reached without a subcommand, which the arity check refuses first.
    throw new ServerError('ARGUMENT_INVALID', `BACKUP needs a subcommand: ${commands.BACKUP.syntax}`);
  },
  'BACKUP BEGIN'(hub: Hub, session: Session, args: Buffer[]) {
    return begin(hub, session, args);
  },
  'BACKUP NEXT'(_hub: Hub, session: Session, args: Buffer[]) {
    const cursor = cursorOf(session, args[2] as Buffer);
    const options = readOptions(commands.BACKUP.subcommands.NEXT, args, 3);
    const countBytes = options.get('COUNT')?.[0];
    const count =
      countBytes === undefined ? BACKUP_DEFAULT_COUNT : countArg(Buffer.from(countBytes), 'COUNT', 1, BACKUP_MAX_COUNT);
    return cursor.next(count).then(writeRecords);
  },
  'BACKUP END'(_hub: Hub, session: Session, args: Buffer[]) {
    return cursorOf(session, args[2] as Buffer)
      .end()
      .then(() => 'OK');
  },
  'BACKUP LOAD'(hub: Hub, _session: Session, args: Buffer[]) {
    const record = recordFromFields(args.slice(2));
    return applyRecord(hub, record).then((applied) => (applied ? 1 : 0));
  },
} as const;

/** What `openBackupTarget` opens. */
export interface BackupTargetOptions {
  /** The stopped server's data directory. */
  dataDir: string;
  /** Its shard count. @default the count the store was written with (1 for a new one) */
  shards?: number;
  /** @default 'everysec' (`close()` fsyncs what was written, unless `no`) */
  durability?: Durability;
  /** What decides which records have expired; tests move it. @default Date.now */
  clock?: Clock;
}

/** A stopped server's storage and broker, taking backup records. */
export interface BackupTarget {
  /**
   * Applies one record as BACKUP LOAD does: true applied, false skipped (its expiry has passed).
   * A memory key is skipped too: a stopped server keeps no memory keys.
   */
  apply(record: BackupRecord): Promise<boolean>;
  /** Makes everything applied durable and closes the data directory. */
  close(): Promise<void>;
}

/**
 * Opens the data directory of a STOPPED server to restore a backup into it (`hati backup import
 * --data-dir`): DATA_DIR_LOCKED when a server runs on it. Records are applied by the same
 * function as BACKUP LOAD.
 */
export async function openBackupTarget(options: BackupTargetOptions): Promise<BackupTarget> {
  const { dataDir, shards, durability, clock } = options;
  // Without a count the hdd store opens with the one it was written with (HddEngineOptions.shards).
  const storage = await StorageManager.open({
    dataDir,
    ...(shards !== undefined && { shards }),
    ...(durability !== undefined && { durability }),
    ...(clock !== undefined && { clock }),
  });
  let broker: Broker;
  try {
    // No timers: nothing is delivered or expired while records go in.
    broker = await Broker.open({
      dataDir,
      ...(durability !== undefined && { durability }),
      ...(clock !== undefined && { clock }),
      timers: false,
    });
  } catch (err) {
    await storage.close();
    throw err;
  }
  const parts: BackupParts = { storage, broker };
  let closing: Promise<void> | undefined;
  return {
    async apply(record) {
      if (record.kind === 'key' && record.type === 'memory') return false;
      return applyRecord(parts, record);
    },
    close() {
      closing ??= (async () => {
        await broker.settled();
        await Promise.all([broker.close(), storage.close()]);
      })();
      return closing;
    },
  };
}
