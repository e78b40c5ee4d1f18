import { defaultLimits, type ParserLimits } from '@hati/protocol';
import type { Durability } from '@hati/storage';

export type { Durability };

import type { Logger, LogLevel } from './logger.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Certificate files of the TLS listeners, read at start and again by `reload()` (SIGHUP). */
export interface TlsFiles {
  /** PEM file of the server's certificate chain. */
  cert: string;
  /** PEM file of its private key. */
  key: string;
  /** PEM file of the CAs that client certificates must chain to; needed by `authClients` yes or optional. */
  ca?: string;
  /**
   * Whether clients of the TLS listeners (TCP and HTTPS) must present a certificate signed by
   * `ca`: `yes` (refused without one),
   * `optional` (checked when given), `no` (not asked for).
   * @default 'yes' when `ca` is given, else 'no'
   */
  authClients?: 'yes' | 'no' | 'optional';
}

export interface ServerOptions {
  /** TCP listener for the RESP/inline protocol; omit for none. */
  tcp?: ListenAddress;
  /** UNIX socket path for the same protocol; omit for none. A stale socket file is replaced. */
  unix?: string;
  /** HTTP listener for JSON-RPC 2.0; omit for none. */
  rpc?: ListenAddress;
  /**
   * A listener of its own for `GET /metrics` (Prometheus), `/healthz` and `/readyz`, for when
   * the JSON-RPC listener is off or not reachable by the scraper; the JSON-RPC listener serves
   * them too. Omit for none.
   */
  metrics?: ListenAddress;
  /** Serve the web console at `GET /` of the JSON-RPC listener. @default true */
  console?: boolean;
  /** Directory of the hdd store. @default './data' */
  dataDir?: string;
  /**
   * Shards of both engines. Omitted, the memory store has 8 and the hdd store the count it was
   * written with, 1 for a new one.
   */
  shards?: number;
  /** @default 'everysec' */
  durability?: Durability;
  /** Request limits of the wire protocol. @default defaultLimits of @hati/protocol */
  limits?: Partial<ParserLimits>;
  /**
   * Bytes of replies a TCP/UNIX client may leave unread before it is disconnected.
   * @default 64 MiB
   */
  maxOutputBuffer?: number;
  /**
   * Replies a connection may have in progress (waiting for the disk) before the server stops
   * reading its requests until some are answered.
   * @default 1024
   */
  maxPendingReplies?: number;
  /** Largest JSON-RPC request body, in bytes. @default 16 MiB */
  maxRpcBody?: number;
  /** Most calls in one JSON-RPC batch; a longer batch is refused whole (`BATCH_TOO_LARGE`). @default 1000 */
  maxRpcBatch?: number;
  /**
   * Origins (`https://app.example`) whose web pages may call JSON-RPC: their requests and CORS
   * preflights are answered; a request carrying any other `Origin` is refused (`ORIGIN_FORBIDDEN`).
   * @default [] (no web page may call)
   */
  rpcCorsOrigins?: string[];
  /**
   * Host names accepted in the `Host` header of JSON-RPC requests that arrive on a loopback
   * address, besides `localhost` and IP addresses (DNS-rebinding protection).
   * @default []
   */
  rpcHosts?: string[];
  /**
   * The default user's password: clients must `AUTH <password>` (or `HELLO 3 AUTH default
   * <password>`, or JSON-RPC `Authorization: Basic`) before any command but AUTH, HELLO, PING
   * and QUIT. The default user then has every right. Omit for no password.
   */
  password?: string;
  /**
   * A users file (written by `hati users`): named users with hashed passwords, tokens and rights.
   * Read at start and again by `reload()` (SIGHUP). Omit for none.
   */
  usersFile?: string;
  /** Certificate and key of the TLS listeners (`tcpTls`, `rpcTls`). */
  tls?: TlsFiles;
  /** The TCP listener speaks TLS (needs `tls`). @default false */
  tcpTls?: boolean;
  /** The JSON-RPC listener speaks HTTPS (needs `tls`). @default false */
  rpcTls?: boolean;
  /**
   * Protected mode: while no credentials are configured, clients from non-loopback addresses
   * get one `DENIED` error and are disconnected. @default true
   */
  protectedMode?: boolean;
  /**
   * Most client connections at once (TCP, UNIX socket and JSON-RPC together); one more gets a
   * `MAX_CLIENTS` error and is disconnected.
   * @default derived from the process's open-file limit, keeping descriptors for the storage
   */
  maxClients?: number;
  /**
   * Bytes that unfinished requests may hold across all connections together; the connection
   * whose request would pass it gets `TOO_LARGE` and is closed. @default 1 GiB
   */
  maxInputBuffer?: number;
  /** @default 'info' */
  logLevel?: LogLevel;
  /** Where log lines go; defaults to a Logger at `logLevel` writing to stderr. */
  logger?: Logger;
  /** Milliseconds since the epoch, for ttls. @default Date.now */
  clock?: () => number;
}

export const serverDefaults = {
  dataDir: './data',
  maxOutputBuffer: 64 * 1024 * 1024,
  maxPendingReplies: 1024,
  maxRpcBody: 16 * 1024 * 1024,
  maxRpcBatch: 1000,
  rpcCorsOrigins: [] as readonly string[],
  rpcHosts: [] as readonly string[],
  protectedMode: true,
  console: true,
  maxInputBuffer: 1024 * 1024 * 1024,
  logLevel: 'info' as LogLevel,
  limits: defaultLimits,
} as const;
