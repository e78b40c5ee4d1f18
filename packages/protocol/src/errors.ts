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
  /** An option a command does not take, one given twice, or two that exclude each other (`NX` with `XX`). */
  SYNTAX: 'SYNTAX',
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

/**
 * Codes of @hati/storage as they travel on the wire. @hati/storage is embeddable without this
 * package, so it keeps its own `StorageErrorCode`; the server's tests fail when the two differ.
 */
export const StorageWireCode = {
  STORAGE_TYPE_INVALID: 'STORAGE_TYPE_INVALID',
  KEY_EMPTY: 'KEY_EMPTY',
  KEY_INVALID: 'KEY_INVALID',
  VALUE_INVALID: 'VALUE_INVALID',
  TTL_INVALID: 'TTL_INVALID',
  OPTION_INVALID: 'OPTION_INVALID',
  STORAGE_CLOSED: 'STORAGE_CLOSED',
  DATA_DIR_LOCKED: 'DATA_DIR_LOCKED',
  DATA_DIR_NOT_WRITABLE: 'DATA_DIR_NOT_WRITABLE',
  DATA_DIR_CORRUPT: 'DATA_DIR_CORRUPT',
  STORAGE_IO: 'STORAGE_IO',
  WRITES_SUSPENDED: 'WRITES_SUSPENDED',
  DATA_DIR_GONE: 'DATA_DIR_GONE',
  NOT_INTEGER: 'NOT_INTEGER',
  INTEGER_OVERFLOW: 'INTEGER_OVERFLOW',
  CURSOR_INVALID: 'CURSOR_INVALID',
  ARGUMENT_INVALID: 'ARGUMENT_INVALID',
} as const;

/**
 * Codes of @hati/broker as they travel on the wire (mirrored for the same reason as the storage
 * codes; the server's tests fail when the two differ).
 */
export const BrokerWireCode = {
  ROUTER_NOT_FOUND: 'ROUTER_NOT_FOUND',
  QUEUE_NOT_FOUND: 'QUEUE_NOT_FOUND',
  ROUTER_EXISTS: 'ROUTER_EXISTS',
  QUEUE_EXISTS: 'QUEUE_EXISTS',
  ROUTER_KIND_INVALID: 'ROUTER_KIND_INVALID',
  QUEUE_TYPE_INVALID: 'QUEUE_TYPE_INVALID',
  NAME_INVALID: 'NAME_INVALID',
  ROUTING_KEY_INVALID: 'ROUTING_KEY_INVALID',
  QUEUE_FULL: 'QUEUE_FULL',
  ARGUMENT_INVALID: 'ARGUMENT_INVALID',
  BROKER_CLOSED: 'BROKER_CLOSED',
} as const;

/**
 * Error codes the server adds. The same strings are the first word of a `-CODE message` reply
 * and the `error.data.code` of a JSON-RPC error. Documented in docs/errors.md (Server).
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
  /** `HELLO` with a protocol version other than 2 or 3 (Redis's code). */
  NOPROTO: 'NOPROTO',
  /** A RESP2 connection with subscriptions sent a command other than (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING or QUIT. */
  PUBSUB_ONLY: 'PUBSUB_ONLY',
  /** `AUTH` or `HELLO ... AUTH`: this server has no credentials configured, so there is nothing to log in to. */
  AUTH_NOT_CONFIGURED: 'AUTH_NOT_CONFIGURED',
  /** Credentials are configured and this connection has not authenticated (`AUTH`). */
  NOAUTH: 'NOAUTH',
  /**
   * `AUTH`, `HELLO AUTH` or JSON-RPC credentials: no such user, a wrong password or token, or a
   * disabled user (which of them is never said).
   */
  WRONGPASS: 'WRONGPASS',
  /** The authenticated user lacks the right the command needs (a key, storage type, router, queue or admin). */
  NOPERM: 'NOPERM',
  /** Too many failed authentications from this client's address lately; retry later. */
  AUTH_RATE_LIMITED: 'AUTH_RATE_LIMITED',
  /** The users file is unreadable or invalid (`ACL LOAD`, a reload, or start-up); the old users stay in effect. */
  USERS_FILE_INVALID: 'USERS_FILE_INVALID',
  /** A connection name with spaces or line breaks (`CLIENT SETNAME`, `HELLO SETNAME`). */
  NAME_INVALID: 'NAME_INVALID',
  /** `BACKUP LOAD`, or a record in a backup file: its fields do not make a record of its kind. */
  BACKUP_RECORD_INVALID: 'BACKUP_RECORD_INVALID',
  /** `BACKUP NEXT` or `BACKUP END` of a snapshot id this connection does not hold (ended, timed out, or never begun). */
  BACKUP_NOT_FOUND: 'BACKUP_NOT_FOUND',
  /** A backup file whose block fails its checksum or cannot be decompressed; the message names the byte offset. */
  BACKUP_CORRUPT: 'BACKUP_CORRUPT',
  /** A backup file that ends before its end marker; the message names the byte offset. */
  BACKUP_TRUNCATED: 'BACKUP_TRUNCATED',
  /** Not a Hati backup file, or one of a format version this hati cannot read. */
  BACKUP_VERSION: 'BACKUP_VERSION',
} as const;

export type ServerErrorCode = (typeof ServerErrorCode)[keyof typeof ServerErrorCode];

/** Every code that may reach the wire: the only codes a reply or JSON-RPC error carries. */
export const WireErrorCode = {
  ...ProtocolErrorCode,
  ...StorageWireCode,
  ...BrokerWireCode,
  ...ServerErrorCode,
} as const;

export type WireErrorCode = (typeof WireErrorCode)[keyof typeof WireErrorCode];

const wireCodes: ReadonlySet<string> = new Set(Object.values(WireErrorCode));

/** Whether `code` is one of the wire codes (an error with any other code is reported as INTERNAL). */
export function isWireCode(code: unknown): code is WireErrorCode {
  return typeof code === 'string' && wireCodes.has(code);
}
