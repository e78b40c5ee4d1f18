import { ProtocolErrorCode } from '@hati/protocol';
import { StorageErrorCode } from '@hati/storage';
import type { Logger } from './logger.js';

/**
 * Error codes the server adds to those of @hati/protocol and @hati/storage. The same strings
 * are the first word of a `-CODE message` reply and the `error.data.code` of a JSON-RPC error.
 */
export const ServerErrorCode = {
  /** JSON-RPC: the body is not valid JSON (JSON-RPC code -32700). */
  PARSE_ERROR: 'PARSE_ERROR',
  /** JSON-RPC: not a valid request object, or an empty batch (-32600). */
  INVALID_REQUEST: 'INVALID_REQUEST',
  /** JSON-RPC: no such method (-32601). */
  METHOD_NOT_FOUND: 'METHOD_NOT_FOUND',
  /** JSON-RPC: params missing, of the wrong type or shape (-32602). */
  PARAMS_INVALID: 'PARAMS_INVALID',
  /** JSON-RPC: the request body is over the configured limit (HTTP 413). */
  BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  /** The server is shutting down and takes no new requests. */
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  /**
   * Protected mode: no credentials are configured and the client is not on this machine; the
   * connection is closed after this error.
   */
  DENIED: 'DENIED',
  /** The server has `maxClients` connections already; this one is closed after the error. */
  MAX_CLIENTS: 'MAX_CLIENTS',
  /** `SELECT` of a database other than 0: Hati has one, whose keyspaces are the storage types. */
  DB_INDEX_INVALID: 'DB_INDEX_INVALID',
  /** A listener could not start (address in use, no permission, bad path). */
  LISTEN_FAILED: 'LISTEN_FAILED',
  /** An unexpected failure inside the server; it is logged, and the server keeps running. */
  INTERNAL: 'INTERNAL',
  /** JSON-RPC: a batch holds more calls than `maxRpcBatch`; none of it was run (HTTP 413). */
  BATCH_TOO_LARGE: 'BATCH_TOO_LARGE',
  /** JSON-RPC: a `Host` header not accepted on a loopback listener (DNS rebinding; HTTP 403). */
  HOST_FORBIDDEN: 'HOST_FORBIDDEN',
  /** JSON-RPC: an `Origin` header not in `rpcCorsOrigins` (CSRF; HTTP 403). */
  ORIGIN_FORBIDDEN: 'ORIGIN_FORBIDDEN',
  /** JSON-RPC: a path other than `/` (HTTP 404). */
  NOT_FOUND: 'NOT_FOUND',
  /** JSON-RPC: the body is not declared `Content-Type: application/json` (HTTP 415). */
  CONTENT_TYPE_INVALID: 'CONTENT_TYPE_INVALID',
} as const;

export type ServerErrorCode = (typeof ServerErrorCode)[keyof typeof ServerErrorCode];

export class ServerError extends Error {
  override readonly name = 'ServerError';
  readonly code: ServerErrorCode;

  constructor(code: ServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Every code a reply may carry. An error with any other code (LevelDB's `LEVEL_*`, Node's
 * `ERR_*`, a bug's TypeError) is not part of the contract and must not reach the wire as one.
 */
const WIRE_CODES: ReadonlySet<string> = new Set<string>([
  ...Object.values(ProtocolErrorCode),
  ...Object.values(StorageErrorCode),
  ...Object.values(ServerErrorCode),
]);

/**
 * The stable code and message of any error, for a reply: Hati's codes pass through; anything
 * else is INTERNAL, and is logged with its stack when a logger is given (an INTERNAL reply is a
 * bug or an unexpected failure someone must be able to find).
 */
export function describeError(err: unknown, logger?: Logger): { code: string; message: string } {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string' && WIRE_CODES.has(code)) return { code, message: err.message };
  logger?.error(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return { code: ServerErrorCode.INTERNAL, message: err instanceof Error ? err.message : String(err) };
}
