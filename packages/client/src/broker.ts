// The broker as the client sees it: deliveries, the GETQUEUE and GETROUTER documents, and the
// options of the broker methods. The client imports only @hati/protocol, so these mirror the
// wire contract (docs/protocol.md, "Broker") rather than @hati/broker's own types.
import type { Reply } from '@hati/protocol';
import type { CallOptions, StorageTypeName } from './commands.js';

export type RouterKind = 'direct' | 'fanout' | 'topic';

/** Why a message was dead-lettered. */
export type DeadReason = 'delivery-limit' | 'rejected' | 'expired' | 'overflow';

/** What a dead-lettered message carries about its death. */
export interface Death {
  readonly reason: DeadReason;
  /** The queue it died in. */
  readonly queue: string;
  /** How often it had been delivered there. */
  readonly deliveries: number;
}

/** A message as FETCH, DEADLETTERS and a consumer receive it. */
export interface Delivery {
  /** The message's number in its queue (decimal): what ACK, NACK and TOUCH take. */
  readonly id: string;
  /** 1 on the first delivery, raised each time a lease ends without an ACK. */
  readonly deliveries: number;
  readonly routingKey: string;
  readonly message: Buffer;
  /** Present when the message was dead-lettered into this queue. */
  readonly death?: Death;
}

/** A kept dead letter, as DEADLETTERS returns it. */
export type DeadLetter = Delivery & { readonly death: Death };

/** A queue's settings, counts and bindings (GETQUEUE). */
export interface QueueInfo {
  name: string;
  type: StorageTypeName;
  ackTimeoutMs: number;
  maxDeliveries: number;
  /** The dead-letter router, or null when dead letters are kept in the queue. */
  deadLetter: string | null;
  maxLength: number;
  overflow: 'reject' | 'drop-head';
  ttlMs: number;
  dedupWindowMs: number;
  ready: number;
  leased: number;
  delayed: number;
  /** Dead letters kept in the queue's own list. */
  dead: number;
  consumers: number;
  /** Totals since the server started. */
  published: number;
  delivered: number;
  redelivered: number;
  acked: number;
  deadLettered: number;
  bindings: Array<{ router: string; bindingKey: string }>;
}

/** A router's kind and bindings (GETROUTER). */
export interface RouterInfo {
  name: string;
  kind: RouterKind;
  bindings: Array<{ queue: string; bindingKey: string }>;
}

/**
 * `createQueue`'s settings, fixed at creation (creating the queue again with other settings is
 * QUEUE_EXISTS). Named as the table names CREATEQUEUE's option values.
 */
export interface CreateQueueOptions extends CallOptions {
  /** The lease length. @default 30000 */
  ackTimeoutMs?: number;
  /** Deliveries before a message is dead-lettered instead of given back; 0: no limit. @default 0 */
  maxDeliveries?: number;
  /** The router dead letters are published to; without one they are kept in the queue. */
  deadLetter?: string;
  /** Most waiting (ready or delayed) messages; 0: no limit. @default 0 */
  maxLength?: number;
  /** What a full queue does: refuse the PUBLISH (QUEUE_FULL) or dead-letter its oldest message. @default 'reject' */
  overflow?: 'reject' | 'drop-head';
  /** A ttl for every message of the queue; 0: none. @default 0 */
  ttlMs?: number;
  /** How long message ids are remembered for de-duplication. @default 120000 */
  dedupWindowMs?: number;
}

/** `publish`'s per-message options, named as the table names PUBLISH's option values. */
export interface PublishOptions extends CallOptions {
  /** Not delivered before this many ms from now. */
  delayMs?: number;
  /** Dead-lettered (reason `expired`) when not acknowledged within this many ms of the publish. */
  ttlMs?: number;
  /** A de-duplication id (1 to 256 bytes): a queue that took it within its window does not take it again. */
  id?: string;
}

/** `fetch`'s options. */
export interface FetchOptions extends CallOptions {
  /** Most messages to lease, 1 to 1000. @default 1 */
  count?: number;
  /** Wait up to this many ms for the first message when none is ready. @default 0 */
  waitMs?: number;
}

/** `nack`'s options. */
export interface NackOptions extends CallOptions {
  /** Dead-letter the message (reason `rejected`) instead of giving it back. @default false */
  drop?: boolean;
}

function text(value: Reply | undefined): string | undefined {
  return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
}

/**
 * A delivery as the server writes it, `[id, deliveries, routingKey, message]` with a fifth
 * element `[reason, queue, deliveries]` for a dead letter; undefined when it is not one.
 */
export function decodeDelivery(reply: Reply): Delivery | undefined {
  if (!Array.isArray(reply) || (reply.length !== 4 && reply.length !== 5)) return undefined;
  const [id, deliveries, routingKey, message, death] = reply;
  const idText = text(id);
  const key = text(routingKey);
  if (idText === undefined || typeof deliveries !== 'number' || key === undefined || !Buffer.isBuffer(message)) {
    return undefined;
  }
  if (death === undefined) return { id: idText, deliveries, routingKey: key, message };
  if (!Array.isArray(death) || death.length !== 3 || typeof death[2] !== 'number') return undefined;
  const reason = text(death[0]);
  const queue = text(death[1]);
  if (reason === undefined || queue === undefined) return undefined;
  return {
    id: idText,
    deliveries,
    routingKey: key,
    message,
    death: { reason: reason as DeadReason, queue, deliveries: death[2] },
  };
}
