/**
 * Codes of errors the client raises itself. Errors the server replies with (`-CODE message`,
 * or a JSON-RPC error's `data.code`) keep the server's code: see docs/errors.md.
 */
export const ClientErrorCode = {
  /** The connection dropped after the command was written; it may or may not have run. Transient. */
  CONNECTION_LOST: 'CONNECTION_LOST',
  /** The client was closed (close(), quit(), or reconnecting is off and the connection is gone). */
  CONNECTION_CLOSED: 'CONNECTION_CLOSED',
  /** While disconnected, more commands waited than `maxOfflineCommands`. Transient. */
  OFFLINE_QUEUE_FULL: 'OFFLINE_QUEUE_FULL',
  /** The call's timeout passed before its reply came. Transient. */
  TIMEOUT: 'TIMEOUT',
  /** The call's AbortSignal fired before its reply came. */
  ABORTED: 'ABORTED',
  /** The server's reply could not be read, or was not what the command returns (JSON-RPC: no response to the call). */
  BAD_REPLY: 'BAD_REPLY',
  /** JSON-RPC: no connection, or the server answered with an HTTP error status and no JSON-RPC error. Transient. */
  HTTP_ERROR: 'HTTP_ERROR',
  /**
   * The command cannot run over this client's transport: it has no JSON-RPC method (QUIT,
   * HELLO, SUBSCRIBE, ...), or it needs RESP3 and the server refused `HELLO 3`.
   */
  NOT_SUPPORTED: 'NOT_SUPPORTED',
} as const;

export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Every error a client call rejects with. `code` is stable; `transient` says a retry may succeed. */
export class HatiError extends Error {
  override readonly name = 'HatiError';
  readonly code: string;
  readonly transient: boolean;

  constructor(code: string, message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.transient = options?.transient ?? false;
  }
}

const TRANSIENT = new Set<string>([
  ClientErrorCode.CONNECTION_LOST,
  ClientErrorCode.OFFLINE_QUEUE_FULL,
  ClientErrorCode.TIMEOUT,
  ClientErrorCode.HTTP_ERROR,
  'SHUTTING_DOWN',
]);

export function clientError(code: ClientErrorCode, message: string, cause?: unknown): HatiError {
  return new HatiError(code, message, { cause, transient: TRANSIENT.has(code) });
}

/** An error the server replied with. */
export function serverError(code: string, message: string): HatiError {
  return new HatiError(code, message, { transient: TRANSIENT.has(code) });
}
