// The client's view of the command table of @hati/protocol: argument and reply types are
// derived from it, so each command is described once.
import {
  type ArgKind,
  type ArgSpec,
  type CommandName,
  type commands,
  ReplyError,
  type ReplyKind,
  type StatsSnapshot,
} from '@hati/protocol';
import { clientError, serverError } from './errors.js';

export type StorageTypeName = 'memory' | 'hdd';
/** Keys and values: strings (sent as UTF-8) or bytes. */
export type Bytes = string | Uint8Array;

type ArgValue<K extends ArgKind> = K extends 'storageType'
  ? StorageTypeName
  : K extends 'ttl'
    ? number
    : K extends 'text'
      ? string
      : Bytes;

type MappedArgs<A extends readonly ArgSpec[]> = { -readonly [I in keyof A]: ArgValue<A[I]['kind']> };

/** Arguments as a tuple; a list whose arguments are all optional (PING) may be cut short. */
type ArgsOfSpec<A extends readonly ArgSpec[]> = A[number] extends { optional: true }
  ? Partial<MappedArgs<A>>
  : MappedArgs<A>;

/** The arguments of a command, after its name, as a tuple type. */
export type ArgsOf<N extends CommandName> = ArgsOfSpec<(typeof commands)[N]['args']>;

type ReplyValue<R extends ReplyKind> = R extends 'status'
  ? string
  : R extends 'bulk'
    ? Buffer | null
    : R extends 'integer'
      ? number
      : R extends 'boolean'
        ? boolean
        : unknown;

/** What a command's reply becomes (`json` replies are parsed; STATS is typed below). */
export type ReplyOf<N extends CommandName> = N extends 'STATS'
  ? StatsSnapshot
  : N extends 'PING'
    ? string
    : ReplyValue<(typeof commands)[N]['reply']>;

/** Per-call options. */
export interface CallOptions {
  /** Milliseconds to wait for the reply; rejects with TIMEOUT. Overrides the client's `commandTimeout`. */
  timeout?: number;
  /** Rejects with ABORTED when it fires before the reply. */
  signal?: AbortSignal;
}

/** Turns a parsed RESP reply into the value a command returns, per its reply kind. */
export function decodeReply(kind: ReplyKind, name: string, reply: unknown): unknown {
  if (reply instanceof ReplyError) throw serverError(reply.code, reply.message);
  switch (kind) {
    case 'status':
      // PING with a message replies with a bulk string.
      if (typeof reply === 'string') return reply;
      if (Buffer.isBuffer(reply)) return reply.toString('utf8');
      break;
    case 'bulk':
      if (reply === null || Buffer.isBuffer(reply)) return reply;
      break;
    case 'integer':
      if (typeof reply === 'number') return reply;
      break;
    case 'boolean':
      if (reply === 0 || reply === 1) return reply === 1;
      break;
    case 'json':
      if (Buffer.isBuffer(reply)) {
        try {
          return JSON.parse(reply.toString('utf8'));
        } catch (err) {
          throw clientError('BAD_REPLY', `${name}: the reply is not JSON`, err);
        }
      }
      break;
  }
  throw clientError(
    'BAD_REPLY',
    `${name}: unexpected reply ${JSON.stringify(String(reply)).slice(0, 80)} for a ${kind} reply`,
  );
}

/**
 * The typed methods both clients offer, written once over `call`.
 */
export abstract class CommandMethods {
  /** Runs any command of the table: `call('GET', ['memory', 'k'])`. */
  abstract call<N extends CommandName>(name: N, args: ArgsOf<N>, options?: CallOptions): Promise<ReplyOf<N>>;

  /** Stores `value` under `key`; `ttl` in ms (0 or absent = no expiry). */
  async set(
    type: StorageTypeName,
    key: Bytes,
    value: Bytes,
    options: CallOptions & { ttl?: number } = {},
  ): Promise<void> {
    await this.call('SET', [type, options.ttl ?? 0, key, value], options);
  }

  /** The value as UTF-8 text, or null when missing or expired. */
  async get(type: StorageTypeName, key: Bytes, options?: CallOptions): Promise<string | null> {
    const value = await this.getBuffer(type, key, options);
    return value === null ? null : value.toString('utf8');
  }

  /** The value's bytes, or null when missing or expired. */
  getBuffer(type: StorageTypeName, key: Bytes, options?: CallOptions): Promise<Buffer | null> {
    return this.call('GET', [type, key], options);
  }

  has(type: StorageTypeName, key: Bytes, options?: CallOptions): Promise<boolean> {
    return this.call('HAS', [type, key], options);
  }

  /** True when a live key was removed. */
  delete(type: StorageTypeName, key: Bytes, options?: CallOptions): Promise<boolean> {
    return this.call('DELETE', [type, key], options);
  }

  async flushAll(type: StorageTypeName, options?: CallOptions): Promise<void> {
    await this.call('FLUSHALL', [type], options);
  }

  /** Number of live keys of one storage type. */
  count(type: StorageTypeName, options?: CallOptions): Promise<number> {
    return this.call('COUNT', [type], options);
  }

  /** 'PONG', or the message. */
  ping(message?: string, options?: CallOptions): Promise<string> {
    return this.call('PING', message === undefined ? [] : [message], options);
  }

  stats(options?: CallOptions): Promise<StatsSnapshot> {
    return this.call('STATS', [], options);
  }
}
