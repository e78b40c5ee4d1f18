/**
 * Stable error codes of @hati/broker. The same strings travel on the wire (`-CODE message`), in
 * JSON-RPC `error.data.code` and on `BrokerError#code`. Messages may change; codes may not. Every
 * code is documented in docs/errors.md (a test keeps the two in step). Failures of the disk store
 * underneath keep their @hati/storage codes (`WRITES_SUSPENDED`, `DATA_DIR_LOCKED`, ...).
 */
export const BrokerErrorCode = {
  /** No router has that name. */
  ROUTER_NOT_FOUND: 'ROUTER_NOT_FOUND',
  /** No queue has that name. */
  QUEUE_NOT_FOUND: 'QUEUE_NOT_FOUND',
  /** A router of that name exists with another kind. */
  ROUTER_EXISTS: 'ROUTER_EXISTS',
  /** A queue of that name exists with another type or other settings. */
  QUEUE_EXISTS: 'QUEUE_EXISTS',
  /** A router kind other than `direct`, `fanout` or `topic` was named. */
  ROUTER_KIND_INVALID: 'ROUTER_KIND_INVALID',
  /** A queue type other than `memory` or `hdd` was named, or `hdd` on a broker without a data directory. */
  QUEUE_TYPE_INVALID: 'QUEUE_TYPE_INVALID',
  /** A router or queue name is empty, too long, or holds a character outside `A-Z a-z 0-9 _ - . : /`. */
  NAME_INVALID: 'NAME_INVALID',
  /** A binding key or routing key is too long. */
  ROUTING_KEY_INVALID: 'ROUTING_KEY_INVALID',
  /** A queue with `OVERFLOW reject` is at its `MAXLENGTH`: the PUBLISH stored nothing, in no queue. */
  QUEUE_FULL: 'QUEUE_FULL',
  /** An option or argument is out of range (a count, a delay, a ttl, a prefetch). */
  ARGUMENT_INVALID: 'ARGUMENT_INVALID',
  /** The broker was used after `close()`. */
  BROKER_CLOSED: 'BROKER_CLOSED',
} as const;

export type BrokerErrorCode = (typeof BrokerErrorCode)[keyof typeof BrokerErrorCode];

export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  readonly code: BrokerErrorCode;

  constructor(code: BrokerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
