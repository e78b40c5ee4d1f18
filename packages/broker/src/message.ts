/** Why a message was dead-lettered. */
export const DeadReason = {
  /** Its MAXDELIVERIES-th delivery ended without an ACK. */
  deliveryLimit: 'delivery-limit',
  /** A consumer answered `NACK ... DROP`. */
  rejected: 'rejected',
  /** Its ttl (or the queue's) ran out before it was acknowledged. */
  expired: 'expired',
  /** A queue with `OVERFLOW drop-head` was full, and this was its oldest message. */
  overflow: 'overflow',
} as const;
export type DeadReason = (typeof DeadReason)[keyof typeof DeadReason];

export const DEAD_REASONS: readonly DeadReason[] = Object.values(DeadReason);

/** What a dead-lettered message carries about its death. */
export interface Death {
  readonly reason: DeadReason;
  /** The queue it died in. */
  readonly queue: string;
  /** How often it had been delivered there. */
  readonly deliveries: number;
}

/**
 * A payload as a queue keeps it. Up to `STRING_PAYLOAD_MAX` bytes it is a latin1 string (one
 * char per byte): a string costs 16 bytes besides its bytes, where a Buffer view costs about 100
 * and pins its pool slab; longer ones stay Buffers (V8 caps a string at 2^29 - 24 chars).
 */
export type Payload = string | Buffer;

const STRING_PAYLOAD_MAX = 1024 * 1024;

/** The form a queue keeps `bytes` in (always a copy: `bytes` may be a view of a socket chunk). */
export function toPayload(bytes: Uint8Array): Payload {
  const view = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.length <= STRING_PAYLOAD_MAX ? view.toString('latin1') : Buffer.from(view);
}

/** A payload's bytes as a Buffer (a long payload's own, shared: whoever gets it must not change it). */
export function payloadBytes(payload: Payload): Buffer {
  return typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
}

/** A payload's length in bytes. */
export function payloadLength(payload: Payload): number {
  return payload.length;
}

// Routing keys repeat (a few per application), but each PUBLISH parses its own copy: sharing one
// string per key saves a string per queued message. The table is bounded; past its size it
// starts again, so a stream of distinct keys costs no more than before.
const KEYS_MAX = 4096;
const keys = new Map<string, string>();

function intern(key: string): string {
  const known = keys.get(key);
  if (known !== undefined) return known;
  if (keys.size >= KEYS_MAX) keys.clear();
  keys.set(key, key);
  return key;
}

/**
 * One message in one queue (a message routed to three queues is three of these, sharing the
 * payload). It holds only what a waiting message needs: a delay lives in the queue's delay heap
 * and in the stored record, a lease in the queue's lease table, a de-duplication id in the
 * queue's window. Fields are all set in the constructor, so every message has the same shape.
 */
export class Message {
  /** Position in its queue; its id on the wire is the decimal text of this. */
  readonly seq: number;
  readonly routingKey: string;
  /** The bytes; undefined while an hdd queue holds them only on disk. */
  payload: Payload | undefined;
  /** Deliveries so far (leases begun). */
  deliveries: number;
  /** Dead-lettered as expired at this time; 0 = never. */
  expiresAt: number;
  /** Set when it was dead-lettered into this queue. */
  readonly death: Death | undefined;

  constructor(
    seq: number,
    routingKey: string,
    payload: Payload | undefined,
    deliveries: number,
    expiresAt: number,
    death: Death | undefined,
  ) {
    this.seq = seq;
    this.routingKey = intern(routingKey);
    this.payload = payload;
    this.deliveries = deliveries;
    this.expiresAt = expiresAt;
    this.death = death;
  }
}

/** Who holds a lease: a session (FETCH) or one of its consumers (CONSUME). */
export interface LeaseHolder {
  /** The session whose closing ends the lease. */
  readonly sessionId: number;
  /** Called when a lease it held ends (ack, nack, expiry), so a consumer gets credit back. */
  leaseEnded(message: Message): void;
}

/** A message as a consumer receives it. */
export interface Delivery {
  /** Decimal id, unique within its queue. */
  readonly id: string;
  /** 1 on the first delivery. */
  readonly deliveries: number;
  readonly routingKey: string;
  readonly message: Buffer;
  /** Present when the message was dead-lettered into this queue. */
  readonly death?: Death;
}
