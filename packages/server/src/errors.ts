import { isWireCode, type ListenerName, ServerErrorCode, type WireErrorCode } from '@hati/protocol';
import type { Logger } from './logger.js';

// The codes are defined once, in @hati/protocol, with every other code that reaches the wire.
export { ServerErrorCode };

/** An error the server raises; `code` is one of the wire codes of @hati/protocol. */
export class ServerError extends Error {
  override readonly name = 'ServerError';
  readonly code: WireErrorCode;

  constructor(code: WireErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** LISTEN_FAILED, saying which listener failed; `cause` holds Node's error (its `code`: EADDRINUSE...). */
export class ListenError extends ServerError {
  readonly listener: ListenerName;

  constructor(listener: ListenerName, message: string, options: { cause: unknown }) {
    super('LISTEN_FAILED', message, options);
    this.listener = listener;
  }
}

/**
 * The stable code and message of any error, for a reply: Hati's codes pass through; anything
 * else (LevelDB's `LEVEL_*`, Node's `ERR_*`, a bug's TypeError) is INTERNAL, and is logged with
 * its stack when a logger is given (an INTERNAL reply is a bug or an unexpected failure someone
 * must be able to find).
 */
export function describeError(err: unknown, logger?: Logger): { code: string; message: string } {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && isWireCode(code)) return { code, message: err.message };
  logger?.error(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return { code: ServerErrorCode.INTERNAL, message: err instanceof Error ? err.message : String(err) };
}
