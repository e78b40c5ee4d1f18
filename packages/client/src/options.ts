import type { ConnectionOptions } from 'node:tls';

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
  /**
   * The user to authenticate as, with `password`; sent as `AUTH <user> <password>` first on
   * every (re)connect. Without `password` it is not used.
   * @default 'default'
   */
  user?: string;
  /**
   * The password of `user`: every (re)connect starts with `AUTH <user> <password>`, pipelined
   * ahead of HELLO and everything else. A refused password (WRONGPASS) closes the client: the
   * waiting calls reject with it, and it does not reconnect. Never shown in an error or by
   * `inspect`. Omit for a server without credentials.
   */
  password?: string;
}

export interface TcpClientOptions extends CommonOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 4242 */
  port?: number;
  /**
   * Connect over TLS (a server started with `tcpTls`, `redis-cli --tls`): `true` checks the
   * server's certificate against Node's root CAs; an object is `tls.connect`'s options: `ca` (the
   * CA that signed the server's certificate), `cert` and `key` (a client certificate, for a server
   * that asks for one), `servername` (the name the certificate must hold; defaults to `host`
   * unless it is an IP address, which is then checked against the certificate's IP addresses),
   * `rejectUnauthorized` (`false` accepts any certificate: for tests only), ... `host` and `port`
   * come from this client's options. A certificate that does not check closes the client with
   * TLS_FAILED, Node's error in `cause`.
   * @default undefined (plain TCP)
   */
  tls?: true | ConnectionOptions;
}

export interface UnixClientOptions extends CommonOptions {
  /** Path of the server's UNIX socket. */
  path: string;
  /** A UNIX socket is local: no TLS. */
  tls?: never;
}

export type ClientOptions = TcpClientOptions | UnixClientOptions;

/** TLS options of the JSON-RPC client, for an `https:` URL (PEM text or bytes). */
export interface RpcTlsOptions {
  /** The CA(s) that signed the server's certificate, in place of Node's root CAs. @default Node's root CAs */
  ca?: string | Buffer | Array<string | Buffer>;
  /** A client certificate (chain), for a server that asks for one. */
  cert?: string | Buffer | Array<string | Buffer>;
  /** The private key of `cert`. */
  key?: string | Buffer | Array<string | Buffer>;
  /** `false` accepts any server certificate: for tests only. @default true */
  rejectUnauthorized?: boolean;
}

export interface RpcClientOptions {
  /** The JSON-RPC endpoint, `http:` or `https:`. @default 'http://127.0.0.1:6767/' */
  url?: string;
  /** Default per-call timeout in ms; 0 for none. @default 0 */
  commandTimeout?: number;
  /** Extra HTTP headers on every request (an `authorization` here is replaced by `password` or `token`). */
  headers?: Record<string, string>;
  /**
   * The user to authenticate as, with `password` (`Authorization: Basic`). Without `password`
   * it is not used.
   * @default 'default'
   */
  user?: string;
  /** The password of `user`, sent as `Authorization: Basic base64(user:password)` on every request. */
  password?: string;
  /** A user's token (made by `hati users`), sent as `Authorization: Bearer <token>`; not with `password`. */
  token?: string;
  /** TLS options for an `https:` URL. @default Node's defaults (its root CAs) */
  tls?: RpcTlsOptions;
}

export const clientDefaults = {
  host: '127.0.0.1',
  port: 4242,
  reconnect: { initialDelay: 50, maxDelay: 5000, maxAttempts: Number.POSITIVE_INFINITY },
  maxOfflineCommands: 10_000,
  commandTimeout: 0,
  connectTimeout: 10_000,
  protocol: 3,
  user: 'default',
  url: 'http://127.0.0.1:6767/',
  /** `consume`'s prefetch when none is given. */
  prefetch: 100,
} as const;
