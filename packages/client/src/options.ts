export interface ReconnectOptions {
  /** Delay before the first attempt, in ms. @default 50 */
  initialDelay?: number;
  /** Longest delay between attempts, in ms. @default 5000 */
  maxDelay?: number;
  /** Attempts before giving up (the client then closes); Infinity for no limit. @default Infinity */
  maxAttempts?: number;
}

interface CommonOptions {
  /**
   * Reconnect after the connection drops, with capped exponential backoff plus jitter; `false`
   * closes the client instead.
   * @default {}
   */
  reconnect?: ReconnectOptions | false;
  /** Commands waiting while disconnected; one more rejects with OFFLINE_QUEUE_FULL. @default 10000 */
  maxOfflineCommands?: number;
  /** Default per-call timeout in ms; 0 for none. @default 0 */
  commandTimeout?: number;
  /** Milliseconds to wait for a connection to open. @default 10000 */
  connectTimeout?: number;
  /**
   * The connection's name, sent with `HELLO` on every (re)connect and shown by CLIENT LIST and
   * STATS. No spaces or control characters.
   */
  name?: string;
  /**
   * The protocol asked with `HELLO` on every (re)connect: 3 (RESP3: maps and pushes, needed by
   * `subscribe` and `psubscribe`) or 2 (RESP2, as servers before HELLO spoke; pub/sub then
   * rejects with NOT_SUPPORTED). A server that does not know HELLO leaves the connection in RESP2.
   * @default 3
   */
  protocol?: 2 | 3;
}

export interface TcpClientOptions extends CommonOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 4242 */
  port?: number;
}

export interface UnixClientOptions extends CommonOptions {
  /** Path of the server's UNIX socket. */
  path: string;
}

export type ClientOptions = TcpClientOptions | UnixClientOptions;

export interface RpcClientOptions {
  /** The JSON-RPC endpoint. @default 'http://127.0.0.1:6767/' */
  url?: string;
  /** Default per-call timeout in ms; 0 for none. @default 0 */
  commandTimeout?: number;
  /** Extra HTTP headers on every request. */
  headers?: Record<string, string>;
}

export const clientDefaults = {
  host: '127.0.0.1',
  port: 4242,
  reconnect: { initialDelay: 50, maxDelay: 5000, maxAttempts: Number.POSITIVE_INFINITY },
  maxOfflineCommands: 10_000,
  commandTimeout: 0,
  connectTimeout: 10_000,
  protocol: 3,
  url: 'http://127.0.0.1:6767/',
  /** `consume`'s prefetch when none is given. */
  prefetch: 100,
} as const;
