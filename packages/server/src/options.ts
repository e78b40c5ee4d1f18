import { defaultLimits, type ParserLimits } from '@hati/protocol';
import type { Durability } from '@hati/storage';

export type { Durability };

import type { Logger, LogLevel } from './logger.js';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ServerOptions {
  /** TCP listener for the RESP/inline protocol; omit for none. */
  tcp?: ListenAddress;
  /** UNIX socket path for the same protocol; omit for none. A stale socket file is replaced. */
  unix?: string;
  /** HTTP listener for JSON-RPC 2.0; omit for none. */
  rpc?: ListenAddress;
  /** Directory of the hdd store. @default './data' */
  dataDir?: string;
  /** Shards of both engines. @default 8 */
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
  logLevel: 'info' as LogLevel,
  limits: defaultLimits,
} as const;
