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
  /**
   * The TLS handshake failed: the server's certificate did not check (expired, not signed by
   * `ca`, not for this host name), the server refused the client's certificate with an alert,
   * or the server does not speak TLS. `cause` is Node's error, whose `code` says which
   * (CERT_HAS_EXPIRED, DEPTH_ZERO_SELF_SIGNED_CERT, UNABLE_TO_VERIFY_LEAF_SIGNATURE,
   * ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_...). The TCP client closes: retrying would not change
   * the certificates.
   */
  TLS_FAILED: 'TLS_FAILED',
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
  // The server refused this address's logins for a while: a later attempt may be let in.
  'AUTH_RATE_LIMITED',
]);

/** OpenSSL's certificate verification failures, as Node names them on a TLS socket's error (`err.code`). */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/**
 * Whether a socket's error is a TLS failure (a certificate that does not check, an alert from
 * the server, a peer that does not speak TLS) rather than the network's (refused, reset), which
 * is retried as any outage is.
 */
export function isTlsFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && (CERTIFICATE_CODES.has(code) || /^ERR_(SSL|TLS)_/.test(code));
}

export function clientError(code: ClientErrorCode, message: string, cause?: unknown): HatiError {
  return new HatiError(code, message, { cause, transient: TRANSIENT.has(code) });
}

/** An error the server replied with. */
export function serverError(code: string, message: string): HatiError {
  return new HatiError(code, message, { transient: TRANSIENT.has(code) });
}

/**
 * A TLS error in a few words, with its code: OpenSSL's reason ('wrong version number') rather
 * than its whole error line.
 */
export function tlsReason(err: unknown): string {
  const { reason, message, code } = err as { reason?: unknown; message?: unknown; code?: unknown };
  const text = typeof reason === 'string' && reason !== '' ? reason : String(message);
  return typeof code === 'string' ? `${text} (${code})` : text;
}
