// Backup records: what `BACKUP NEXT` replies with (one RESP array of bulk strings per record),
// what `BACKUP LOAD` takes, and what a backup file holds. One definition, so that the server's
// snapshot, the file format of `hati backup` and the restore agree field by field.

/** The storage types a key record may name. */
export type BackupStorageType = 'memory' | 'hdd';

/** A key with its value and absolute expiry (ms since the epoch; 0 = none). */
export interface KeyRecord {
  readonly kind: 'key';
  readonly type: BackupStorageType;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly expiresAt: number;
}

export interface RouterRecord {
  readonly kind: 'router';
  readonly name: string;
  /** `direct`, `fanout` or `topic`. */
  readonly routerKind: string;
}

/** A queue's definition; `settings` is the broker's QueueSettings as JSON (field names as the broker's). */
export interface QueueRecord {
  readonly kind: 'queue';
  readonly name: string;
  readonly type: BackupStorageType;
  readonly settings: Record<string, unknown>;
}

export interface BindingRecord {
  readonly kind: 'binding';
  readonly queue: string;
  readonly router: string;
  readonly bindingKey: string;
}

/**
 * A message waiting in an hdd queue (ready, delayed or leased at the snapshot: a leased one is
 * restored as ready, its deliveries kept). `readyAt`/`expiresAt`: ms since the epoch, 0 = none;
 * `dedupId`: '' = none.
 */
export interface MessageRecord {
  readonly kind: 'message';
  readonly queue: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly deliveries: number;
  readonly readyAt: number;
  readonly expiresAt: number;
  readonly dedupId: string;
}

/** A dead letter kept in an hdd queue's own dead-letter list. */
export interface DeadRecord {
  readonly kind: 'dead';
  readonly queue: string;
  readonly routingKey: string;
  readonly body: Buffer;
  /** `delivery-limit`, `rejected`, `expired` or `overflow`. */
  readonly reason: string;
  /** The queue it died in. */
  readonly source: string;
  /** Deliveries in the queue it died in. */
  readonly deliveries: number;
}

export type BackupRecord = KeyRecord | RouterRecord | QueueRecord | BindingRecord | MessageRecord | DeadRecord;
export type BackupRecordKind = BackupRecord['kind'];

/** Fields per record kind, the kind word included: how long each record's array is. */
export const BACKUP_RECORD_FIELDS: Readonly<Record<BackupRecordKind, number>> = {
  key: 5,
  router: 3,
  queue: 4,
  binding: 4,
  message: 8,
  dead: 7,
};

/** Why a record's fields cannot be read: thrown by `recordFromFields`. */
export class BackupRecordError extends Error {
  override readonly name = 'BackupRecordError';
  readonly code = 'BACKUP_RECORD_INVALID';
}

const num = (n: number) => Buffer.from(String(n));

/** A record as the bulk strings of its RESP array (and of its encoding in a backup file). */
export function recordToFields(record: BackupRecord): Buffer[] {
  const s = (text: string) => Buffer.from(text);
  switch (record.kind) {
    case 'key':
      return [s('key'), s(record.type), record.key, record.value, num(record.expiresAt)];
    case 'router':
      return [s('router'), s(record.name), s(record.routerKind)];
    case 'queue':
      return [s('queue'), s(record.name), s(record.type), s(JSON.stringify(record.settings))];
    case 'binding':
      return [s('binding'), s(record.queue), s(record.router), s(record.bindingKey)];
    case 'message':
      return [
        s('message'),
        s(record.queue),
        s(record.routingKey),
        record.body,
        num(record.deliveries),
        num(record.readyAt),
        num(record.expiresAt),
        s(record.dedupId),
      ];
    case 'dead':
      return [
        s('dead'),
        s(record.queue),
        s(record.routingKey),
        record.body,
        s(record.reason),
        s(record.source),
        num(record.deliveries),
      ];
  }
}

function count(field: Uint8Array, what: string): number {
  const text = Buffer.from(field.buffer, field.byteOffset, field.byteLength).toString('latin1');
  const n = Number(text);
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(n)) {
    throw new BackupRecordError(`${what} must be a non-negative integer, got '${text.slice(0, 32)}'`);
  }
  return n;
}

function storageType(field: Uint8Array): BackupStorageType {
  const text = Buffer.from(field).toString('latin1');
  if (text !== 'memory' && text !== 'hdd') {
    throw new BackupRecordError(`storage type must be memory or hdd, got '${text.slice(0, 32)}'`);
  }
  return text;
}

/** Bytes as a Buffer without copying (a field may be a Uint8Array view). */
function bytes(field: Uint8Array): Buffer {
  return Buffer.isBuffer(field) ? field : Buffer.from(field.buffer, field.byteOffset, field.byteLength);
}

/** Reads a record from its fields (the kind word first); throws BackupRecordError when they do not make one. */
export function recordFromFields(fields: readonly Uint8Array[]): BackupRecord {
  const word = fields[0] === undefined ? '' : bytes(fields[0]).toString('latin1');
  if (!Object.hasOwn(BACKUP_RECORD_FIELDS, word)) {
    throw new BackupRecordError(`unknown backup record kind '${word.slice(0, 32)}'`);
  }
  const kind = word as BackupRecordKind;
  const want = BACKUP_RECORD_FIELDS[kind];
  if (fields.length !== want) {
    throw new BackupRecordError(`a ${kind} record has ${want} fields, got ${fields.length}`);
  }
  const f = fields.map(bytes);
  const text = (i: number) => (f[i] as Buffer).toString('utf8');
  switch (kind) {
    case 'key':
      return {
        kind,
        type: storageType(f[1] as Buffer),
        key: f[2] as Buffer,
        value: f[3] as Buffer,
        expiresAt: count(f[4] as Buffer, 'expiresAt'),
      };
    case 'router':
      return { kind, name: text(1), routerKind: text(2) };
    case 'queue': {
      let settings: unknown;
      try {
        settings = JSON.parse(text(3));
      } catch {
        throw new BackupRecordError(`queue '${text(1).slice(0, 64)}': settings are not JSON`);
      }
      if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
        throw new BackupRecordError(`queue '${text(1).slice(0, 64)}': settings must be a JSON object`);
      }
      return { kind, name: text(1), type: storageType(f[2] as Buffer), settings: settings as Record<string, unknown> };
    }
    case 'binding':
      return { kind, queue: text(1), router: text(2), bindingKey: text(3) };
    case 'message':
      return {
        kind,
        queue: text(1),
        routingKey: text(2),
        body: f[3] as Buffer,
        deliveries: count(f[4] as Buffer, 'deliveries'),
        readyAt: count(f[5] as Buffer, 'readyAt'),
        expiresAt: count(f[6] as Buffer, 'expiresAt'),
        dedupId: text(7),
      };
    case 'dead':
      return {
        kind,
        queue: text(1),
        routingKey: text(2),
        body: f[3] as Buffer,
        reason: text(4),
        source: text(5),
        deliveries: count(f[6] as Buffer, 'deliveries'),
      };
  }
}
