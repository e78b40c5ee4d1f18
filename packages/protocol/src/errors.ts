/**
 * Stable error codes of @hati/protocol. The same strings travel on the wire (`-CODE message`)
 * and on `ProtocolError#code`. Messages may change; codes may not.
 * Every code is documented in docs/errors.md (a test keeps the two in step).
 */
export const ProtocolErrorCode = {
  /** A malformed request: the stream cannot be read further (the server replies, then closes). */
  PROTOCOL: 'PROTOCOL',
  /** A request exceeded a limit (inline line, bulk length, array length): the server replies, then closes. */
  TOO_LARGE: 'TOO_LARGE',
  /**
   * The connection sent an HTTP request line or header (a web page or proxy talking to the TCP
   * port: a cross-protocol attack). Nothing after it runs; the server closes the connection
   * without a reply and logs it.
   */
  CROSS_PROTOCOL: 'CROSS_PROTOCOL',
  /** No such command (the connection stays open). */
  UNKNOWN_COMMAND: 'UNKNOWN_COMMAND',
  /** A command got the wrong number of arguments (the connection stays open). */
  WRONG_ARITY: 'WRONG_ARITY',
} as const;

export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
