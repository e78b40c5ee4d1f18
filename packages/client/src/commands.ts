// The client's view of the command table of @hati/protocol: argument and reply types are
// derived from it, so each command is described once.
import {
  type ArgKind,
  type ArgSpec,
  type CommandName,
  type CommandSpec,
  commands,
  type Reply,
  ReplyError,
  type ReplyKind,
  type StatsSnapshot,
} from '@hati/protocol';
import {
  type CreateQueueOptions,
  type DeadLetter,
  type Delivery,
  decodeDelivery,
  type FetchOptions,
  type NackOptions,
  type PublishOptions,
  type QueueInfo,
  type RouterInfo,
  type RouterKind,
} from './broker.js';
import { clientError, serverError } from './errors.js';

export type StorageTypeName = 'memory' | 'hdd';
/** Keys and values: strings (sent as UTF-8) or bytes. */
export type Bytes = string | Uint8Array;

/** The value an argument of each kind takes. */
type ArgValue<K extends ArgKind> = K extends 'storageType'
  ? StorageTypeName
  : K extends 'ttl' | 'ms' | 'count'
    ? number
    : K extends 'integer'
      ? number | bigint
      : K extends 'cursor'
        ? string | number
        : K extends 'key' | 'value' | 'pattern' | 'message'
          ? Bytes
          : string; // channel, name, text, router, queue, routingKey, messageId

type MappedArgs<A extends readonly unknown[]> = {
  -readonly [I in keyof A]: A[I] extends ArgSpec ? ArgValue<A[I]['kind']> : never;
};

/** The shorter argument lists a tuple allows by leaving out trailing optional arguments. */
type Shortened<A extends readonly ArgSpec[]> = A extends readonly [...infer Init extends readonly ArgSpec[], infer Last]
  ? Last extends { optional: true }
    ? MappedArgs<Init> | Shortened<Init>
    : never
  : never;

/** The words of one option: its token, then its values. */
type OptionWords<O> = O extends { token: infer T extends string; args: infer A extends readonly ArgSpec[] }
  ? [T, ...MappedArgs<A>]
  : O extends { token: infer T extends string }
    ? [T]
    : never;

/**
 * The options after the positional arguments, each optional, in table order; one slot per group
 * of options that exclude each other (`NX` or `XX`). Options taking a storage type (SCAN's
 * `TYPE`, for Redis's form of the command) are left out: the typed form names the type first.
 */
type OptionSlots<
  O extends readonly unknown[],
  All extends readonly unknown[] = O,
  Seen extends string = never,
> = O extends readonly [infer H, ...infer Rest extends readonly unknown[]]
  ? H extends { args: readonly [{ kind: 'storageType' }, ...unknown[]] }
    ? OptionSlots<Rest, All, Seen>
    : H extends { group: infer G extends string }
      ? [G] extends [Seen]
        ? OptionSlots<Rest, All, Seen>
        : [...([] | [Extract<All[number], { group: G; token: string }>['token']]), ...OptionSlots<Rest, All, Seen | G>]
      : [...([] | OptionWords<H>), ...OptionSlots<Rest, All, Seen>]
  : [];

/** How many of a command's last arguments repeat (`CommandSpec.repeat`), from the table's literal types. */
type RepeatOf<N extends CommandName> = (typeof commands)[N]['repeat'];

/** One or more of the last argument (zero or more when it is optional). */
type RepeatLast<A extends readonly unknown[]> = A extends readonly [
  ...infer Init extends readonly unknown[],
  infer Last extends ArgSpec,
]
  ? Last extends { optional: true }
    ? [...MappedArgs<Init>, ...ArgValue<Last['kind']>[]]
    : [...MappedArgs<Init>, ArgValue<Last['kind']>, ...ArgValue<Last['kind']>[]]
  : never;

/** One or more pairs of the last two arguments (MSET's key-value pairs). */
type RepeatPairs<A extends readonly unknown[]> = A extends readonly [
  ...infer Init extends readonly unknown[],
  infer K extends ArgSpec,
  infer V extends ArgSpec,
]
  ? [...MappedArgs<Init>, ArgValue<K['kind']>, ArgValue<V['kind']>, ...Array<ArgValue<K['kind'] | V['kind']>>]
  : never;

type SpecOf<N extends CommandName> = (typeof commands)[N];

/**
 * The tuple inside a table entry's `args` or `options`, whose type is the intersection of the
 * general array type and the literal tuple (`readonly ArgSpec[] & readonly [...]`), which
 * mapped and variadic tuple types do not see through.
 */
type Tuple<T extends readonly unknown[], Acc extends unknown[] = []> = number extends T['length']
  ? T[number][]
  : Acc['length'] extends T['length']
    ? Acc
    : Tuple<T, [...Acc, T[Acc['length']]]>;

type ArgsTuple<N extends CommandName> = Tuple<SpecOf<N>['args']>;
type OptionsTuple<N extends CommandName> = Tuple<SpecOf<N>['options']>;

/**
 * The arguments of a command, after its name, as a tuple type: positional arguments (trailing
 * optional ones may be left out), then its options: `['memory', 0, 'k', 'v', 'NX']`,
 * `['memory', '0', 'MATCH', 'user:*', 'COUNT', 100]`, `['memory', 'a', 'b', 'c']` (MGET); the
 * options before the last argument for a command marked `optionsBeforeLast`:
 * `['orders', 'eu.new', 'DELAY', 500, 'hello']` (PUBLISH).
 */
export type ArgsOf<N extends CommandName> =
  RepeatOf<N> extends 1
    ? RepeatLast<ArgsTuple<N>>
    : RepeatOf<N> extends 2
      ? RepeatPairs<ArgsTuple<N>>
      : SpecOf<N>['optionsBeforeLast'] extends true
        ? WithOptionsBeforeLast<MappedArgs<ArgsTuple<N>>, OptionSlots<OptionsTuple<N>>>
        : Shortened<ArgsTuple<N>> | WithOptions<MappedArgs<ArgsTuple<N>>, OptionSlots<OptionsTuple<N>>>;

type WithOptions<A, O> = A extends readonly unknown[] ? (O extends readonly unknown[] ? [...A, ...O] : never) : never;

type WithOptionsBeforeLast<A, O> = A extends readonly [...infer Init, infer Last]
  ? O extends readonly unknown[]
    ? [...Init, ...O, Last]
    : never
  : never;

/** SCAN's reply: the cursor to pass next ("0" when the iteration is complete) and a batch of keys. */
export interface ScanReply<K = Buffer> {
  cursor: string;
  keys: K[];
}

/** HELLO's reply: the server map Redis clients read. */
export interface HelloReply {
  /** 'hati' */
  server: string;
  /** The Redis version Hati is compatible with (what Redis clients compare). */
  version: string;
  /** Hati's own version. */
  hati_version?: string;
  /** The protocol the connection now speaks: 2 or 3. */
  proto: number;
  /** The connection's id (CLIENT ID). */
  id: number;
  mode: string;
  role: string;
  modules: unknown[];
  [field: string]: unknown;
}

type ReplyValue<R extends ReplyKind> = R extends 'status'
  ? string
  : R extends 'stored'
    ? boolean
    : R extends 'bulk'
      ? Buffer | null
      : R extends 'text'
        ? string
        : R extends 'integer'
          ? number
          : R extends 'boolean'
            ? boolean
            : R extends 'bulks'
              ? Array<Buffer | null>
              : R extends 'keys'
                ? Buffer[]
                : R extends 'scan'
                  ? ScanReply
                  : R extends 'map' | 'document'
                    ? Record<string, unknown>
                    : R extends 'deliveries'
                      ? Delivery[]
                      : R extends 'json'
                        ? unknown
                        : Reply; // custom: as parsed (pub/sub commands: their confirmation frames)

/** Replies typed beyond their reply kind. */
interface TypedReplies {
  STATS: StatsSnapshot;
  HELLO: HelloReply;
  GETQUEUE: QueueInfo;
  GETROUTER: RouterInfo;
  DEADLETTERS: DeadLetter[];
}

/**
 * What a command's reply becomes, per its reply kind: `status` a string ('OK', or PING's text),
 * `stored` a boolean (false: SET's NX/XX was not met), `bulk` a Buffer or null, `text` a
 * string, `json` the parsed value (STATS typed), `integer` a number, `boolean` a boolean,
 * `bulks` Buffers or nulls, `keys` Buffers, `scan` a ScanReply, `map` an object (HELLO typed),
 * `deliveries` Delivery objects, `document` an object (GETQUEUE and GETROUTER typed),
 * `custom` the reply as parsed.
 */
export type ReplyOf<N extends CommandName> = N extends keyof TypedReplies
  ? TypedReplies[N]
  : ReplyValue<SpecOf<N>['reply']>;

/** Per-call options. */
export interface CallOptions {
  /** Milliseconds to wait for the reply; rejects with TIMEOUT. Overrides the client's `commandTimeout`. */
  timeout?: number;
  /** Rejects with ABORTED when it fires before the reply. */
  signal?: AbortSignal;
}

/** `set`'s options. */
export interface SetOptions extends CallOptions {
  /** Milliseconds until the key expires; 0 or absent: never. */
  ttl?: number;
  /**
   * `NX`: store only when the key does not exist; `XX`: only when it exists. With a condition,
   * `set` resolves `true` when it stored the value and `false` when the condition was not met.
   */
  condition?: 'NX' | 'XX';
}

/** `scan`'s and `scanIterator`'s options. */
export interface ScanOptions extends CallOptions {
  /** Only keys matching this glob (`*`, `?`, `[a-z]`, `\\x`). */
  match?: Bytes;
  /** Keys to examine per call: a hint, not an exact batch size. */
  count?: number;
}

const bufferText = (value: Buffer) => value.toString('utf8');

/** A value inside a map reply, readable as JSON: bytes as text, maps as objects. */
function plain(value: Reply): unknown {
  if (Buffer.isBuffer(value)) return bufferText(value);
  if (value instanceof Map) return plainMap(value.entries());
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

function plainMap(entries: Iterable<[string, Reply]>): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of entries) object[key] = plain(value);
  return object;
}

function isBulks(reply: Reply, nulls: boolean): reply is Array<Buffer | null> {
  return Array.isArray(reply) && reply.every((item) => Buffer.isBuffer(item) || (nulls && item === null));
}

function parseJson(name: string, reply: Buffer | string): unknown {
  try {
    return JSON.parse(String(reply));
  } catch (err) {
    throw clientError('BAD_REPLY', `${name}: the reply is not JSON`, err);
  }
}

/** Turns a parsed RESP2 or RESP3 reply into the value a command returns, per its reply kind. */
export function decodeReply(kind: ReplyKind, name: string, reply: Reply): unknown {
  if (reply instanceof ReplyError) throw serverError(reply.code, reply.message);
  switch (kind) {
    case 'status':
      // PING with a message replies with a bulk string.
      if (typeof reply === 'string') return reply;
      if (Buffer.isBuffer(reply)) return bufferText(reply);
      break;
    case 'stored':
      if (reply === null) return false;
      if (reply === 'OK') return true;
      break;
    case 'bulk':
      if (reply === null || Buffer.isBuffer(reply)) return reply;
      break;
    case 'text':
      // A bulk string in RESP2, a verbatim string (its format prefix dropped by the parser) in RESP3.
      if (Buffer.isBuffer(reply)) return bufferText(reply);
      if (typeof reply === 'string') return reply;
      break;
    case 'integer':
      if (typeof reply === 'number') return reply;
      if (typeof reply === 'bigint') return Number(reply);
      break;
    case 'boolean':
      if (reply === 0 || reply === 1) return reply === 1;
      if (typeof reply === 'boolean') return reply;
      break;
    case 'json':
      if (Buffer.isBuffer(reply) || typeof reply === 'string') return parseJson(name, reply);
      break;
    case 'document':
      // A JSON bulk string in RESP2, a map in RESP3.
      if (reply instanceof Map) return plainMap(reply.entries());
      if (Buffer.isBuffer(reply)) return parseJson(name, reply);
      break;
    case 'deliveries':
      if (Array.isArray(reply)) {
        const deliveries = reply.map(decodeDelivery);
        if (!deliveries.includes(undefined)) return deliveries;
      }
      break;
    case 'bulks':
      if (isBulks(reply, true)) return reply;
      break;
    case 'keys':
      if (isBulks(reply, false)) return reply;
      break;
    case 'scan':
      if (
        Array.isArray(reply) &&
        reply.length === 2 &&
        Buffer.isBuffer(reply[0]) &&
        isBulks(reply[1] as Reply, false)
      ) {
        return { cursor: bufferText(reply[0]), keys: reply[1] };
      }
      break;
    case 'map':
      // A RESP3 map, or in RESP2 a flat array of field, value, field, value...
      if (reply instanceof Map) return plainMap(reply.entries());
      if (Array.isArray(reply) && reply.length % 2 === 0) {
        const pairs: Array<[string, Reply]> = [];
        for (let i = 0; i < reply.length; i += 2) pairs.push([String(plain(reply[i] as Reply)), reply[i + 1] as Reply]);
        return plainMap(pairs);
      }
      break;
    case 'custom':
      return reply;
  }
  throw clientError(
    'BAD_REPLY',
    `${name}: unexpected reply ${JSON.stringify(String(reply)).slice(0, 80)} for a ${kind} reply`,
  );
}

const toText = (value: Buffer | null) => (value === null ? null : bufferText(value));

/**
 * The typed methods both clients offer, written once over `call`; each is the `client` method of
 * a command of the table (plus text/bytes variants), and a test checks that none is missing.
 */
export abstract class CommandMethods {
  /** Runs any command of the table: `call('GET', ['memory', 'k'])`. */
  abstract call<N extends CommandName>(name: N, args: ArgsOf<N>, options?: CallOptions): Promise<ReplyOf<N>>;

  /**
   * Stores `value` under `key`; `ttl` in ms (0 or absent: no expiry). Without a `condition` it
   * resolves with nothing; with `condition: 'NX'` (only if missing) or `'XX'` (only if present)
   * it resolves `true` when stored, `false` when the condition was not met.
   */
  set(
    type: StorageTypeName,
    key: Bytes,
    value: Bytes,
    options?: SetOptions & { condition?: undefined },
  ): Promise<undefined>;
  set(
    type: StorageTypeName,
    key: Bytes,
    value: Bytes,
    options: SetOptions & { condition: 'NX' | 'XX' },
  ): Promise<boolean>;
  set(type: StorageTypeName, key: Bytes, value: Bytes, options?: SetOptions): Promise<boolean | undefined>;
  async set(type: StorageTypeName, key: Bytes, value: Bytes, options: SetOptions = {}): Promise<boolean | undefined> {
    const ttl = options.ttl ?? 0;
    if (options.condition === undefined) {
      await this.call('SET', [type, ttl, key, value], options);
      return undefined;
    }
    return this.call('SET', [type, ttl, key, value, options.condition], options);
  }

  /** The value as UTF-8 text, or null when missing or expired. */
  async get(type: StorageTypeName, key: Bytes, options?: CallOptions): Promise<string | null> {
    return toText(await this.getBuffer(type, key, options));
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

  /** The key's remaining time to live in ms; -1 when it never expires, -2 when it is missing. */
  ttl(type: StorageTypeName, key: Bytes, options?: CallOptions): Promise<number> {
    return this.call('TTL', [type, key], options);
  }

  /** Makes a live key expire after `ttl` ms (0: never); false when the key is missing. */
  expire(type: StorageTypeName, key: Bytes, ttl: number, options?: CallOptions): Promise<boolean> {
    return this.call('EXPIRE', [type, key, ttl], options);
  }

  /**
   * One step of an iteration over the keys: pass cursor '0' first, then the cursor returned,
   * until it is '0' again. A key present throughout is returned at least once (possibly more).
   */
  async scan(type: StorageTypeName, cursor: string | number, options: ScanOptions = {}): Promise<ScanReply<string>> {
    const { cursor: next, keys } = await this.scanBuffer(type, cursor, options);
    return { cursor: next, keys: keys.map(bufferText) };
  }

  /** `scan` with the keys as bytes. */
  scanBuffer(type: StorageTypeName, cursor: string | number, options: ScanOptions = {}): Promise<ScanReply> {
    const { match, count } = options;
    const args: ArgsOf<'SCAN'> =
      match === undefined
        ? count === undefined
          ? [type, cursor]
          : [type, cursor, 'COUNT', count]
        : count === undefined
          ? [type, cursor, 'MATCH', match]
          : [type, cursor, 'MATCH', match, 'COUNT', count];
    return this.call('SCAN', args, options);
  }

  /**
   * Every key (matching `match`), by SCAN steps: `for await (const key of hati.scanIterator('hdd'))`.
   * A key may come more than once; the server never blocks for a whole keyspace.
   */
  async *scanIterator(type: StorageTypeName, options: ScanOptions = {}): AsyncGenerator<string, void, undefined> {
    let cursor = '0';
    do {
      const step = await this.scan(type, cursor, options);
      cursor = step.cursor;
      yield* step.keys;
    } while (cursor !== '0');
  }

  /** Every live key matching the glob, as text. Reads the whole keyspace at once: prefer `scanIterator`. */
  async keys(type: StorageTypeName, pattern: Bytes, options?: CallOptions): Promise<string[]> {
    return (await this.keysBuffer(type, pattern, options)).map(bufferText);
  }

  /** `keys` with the keys as bytes. */
  keysBuffer(type: StorageTypeName, pattern: Bytes, options?: CallOptions): Promise<Buffer[]> {
    return this.call('KEYS', [type, pattern], options);
  }

  /** Adds 1 to the 64-bit integer at `key` (0 when missing); the new value. */
  incr(type: StorageTypeName, key: Bytes, options?: CallOptions): Promise<number> {
    return this.call('INCR', [type, key], options);
  }

  /**
   * Adds `delta` (negative subtracts) to the 64-bit integer at `key`; the new value (beyond
   * 2^53 a number is rounded: pass a bigint delta to send any 64-bit value exactly).
   */
  incrBy(type: StorageTypeName, key: Bytes, delta: number | bigint, options?: CallOptions): Promise<number> {
    return this.call('INCRBY', [type, key, delta], options);
  }

  /** The values of the keys as text, in order; null for a missing one. */
  async mget(type: StorageTypeName, keys: readonly Bytes[], options?: CallOptions): Promise<Array<string | null>> {
    return (await this.mgetBuffer(type, keys, options)).map(toText);
  }

  /** The values of the keys as bytes, in order; null for a missing one. No keys: no call. */
  async mgetBuffer(
    type: StorageTypeName,
    keys: readonly Bytes[],
    options?: CallOptions,
  ): Promise<Array<Buffer | null>> {
    const [first, ...rest] = keys;
    if (first === undefined) return [];
    return this.call('MGET', [type, first, ...rest], options);
  }

  /**
   * Stores every pair, without expiry, as one command: an object (`{ a: '1', b: '2' }`) or
   * pairs (`[['a', '1'], [Buffer.from([0]), bytes]]`). No pairs: no call.
   */
  async mset(
    type: StorageTypeName,
    entries: Readonly<Record<string, Bytes>> | Iterable<readonly [Bytes, Bytes]>,
    options?: CallOptions,
  ): Promise<void> {
    const pairs: Iterable<readonly [Bytes, Bytes]> =
      Symbol.iterator in entries ? (entries as Iterable<readonly [Bytes, Bytes]>) : Object.entries(entries);
    const flat: Bytes[] = [];
    for (const [key, value] of pairs) flat.push(key, value);
    const [key, value, ...rest] = flat;
    if (key === undefined || value === undefined) return;
    await this.call('MSET', [type, key, value, ...rest], options);
  }

  /** 'PONG', or the message. */
  ping(message?: string, options?: CallOptions): Promise<string> {
    return this.call('PING', message === undefined ? [] : [message], options);
  }

  /** Server information in Redis's INFO text format; `section` picks one (`server`, `keyspace`, ...). */
  info(section?: string, options?: CallOptions): Promise<string> {
    return this.call('INFO', section === undefined ? [] : [section], options);
  }

  stats(options?: CallOptions): Promise<StatsSnapshot> {
    return this.call('STATS', [], options);
  }

  // The broker (docs/protocol.md, "Broker").

  /** Creates a router; again with the same kind it does nothing (another kind: ROUTER_EXISTS). */
  async createRouter(name: string, kind: RouterKind, options?: CallOptions): Promise<void> {
    await this.call('CREATEROUTER', [name, kind], options);
  }

  /**
   * Creates a memory or hdd queue with its settings (fixed at creation); again with the same
   * settings it does nothing (other settings: QUEUE_EXISTS).
   */
  async createQueue(name: string, type: StorageTypeName, options: CreateQueueOptions = {}): Promise<void> {
    const args = [name, type, ...optionWords(commands.CREATEQUEUE, options)] as ArgsOf<'CREATEQUEUE'>;
    await this.call('CREATEQUEUE', args, options);
  }

  /** Routes the router's messages whose routing key matches `bindingKey` to the queue (bound already: nothing). */
  async bind(queue: string, router: string, bindingKey: string, options?: CallOptions): Promise<void> {
    await this.call('BIND', [queue, router, bindingKey], options);
  }

  /** Removes a binding; false when there was none. */
  unbind(queue: string, router: string, bindingKey: string, options?: CallOptions): Promise<boolean> {
    return this.call('UNBIND', [queue, router, bindingKey], options);
  }

  /**
   * Publishes a message (text or bytes) to the router; resolves with the number of queues it
   * reached, once it is stored in each (0 when no binding matched). All or nothing: a full
   * queue with overflow `reject` fails it with QUEUE_FULL and no queue takes it.
   */
  publish(router: string, routingKey: string, message: Bytes, options: PublishOptions = {}): Promise<number> {
    const args = [router, routingKey, ...optionWords(commands.PUBLISH, options), message] as ArgsOf<'PUBLISH'>;
    return this.call('PUBLISH', args, options);
  }

  /**
   * Leases up to `count` (default 1) ready messages; with `waitMs`, waits up to that long for
   * the first one. An empty array when none came. Settle each with `ack`, `nack` or `touch`.
   */
  fetch(queue: string, options: FetchOptions = {}): Promise<Delivery[]> {
    const { count, waitMs } = options;
    let args: ArgsOf<'FETCH'>;
    if (waitMs !== undefined) args = [queue, count ?? 1, waitMs];
    else args = count === undefined ? [queue] : [queue, count];
    return this.call('FETCH', args, options);
  }

  /** Acknowledges leased messages (gone for good); resolves with how many were leased. No ids: no call. */
  async ack(queue: string, ids: string | readonly string[], options?: CallOptions): Promise<number> {
    const [first, ...rest] = typeof ids === 'string' ? [ids] : ids;
    if (first === undefined) return 0;
    return this.call('ACK', [queue, first, ...rest], options);
  }

  /**
   * Gives a leased message back, ahead of newer ones (with `drop: true`, dead-letters it,
   * reason `rejected`); resolves 1, or 0 when it was not leased.
   */
  nack(queue: string, id: string, options: NackOptions = {}): Promise<number> {
    return this.call('NACK', options.drop === true ? [queue, id, 'DROP'] : [queue, id], options);
  }

  /** Extends a lease to one ack timeout from now; false when the message is not leased. */
  touch(queue: string, id: string, options?: CallOptions): Promise<boolean> {
    return this.call('TOUCH', [queue, id], options);
  }

  /** A queue's settings, counts and bindings. */
  getQueue(name: string, options?: CallOptions): Promise<QueueInfo> {
    return this.call('GETQUEUE', [name], options);
  }

  /** A router's kind and bindings. */
  getRouter(name: string, options?: CallOptions): Promise<RouterInfo> {
    return this.call('GETROUTER', [name], options);
  }

  /** The queues' names (matching the glob), sorted. */
  async listQueues(pattern?: string, options?: CallOptions): Promise<string[]> {
    return (await this.call('LISTQUEUE', pattern === undefined ? [] : [pattern], options)).map(bufferText);
  }

  /** The routers' names (matching the glob), sorted. */
  async listRouters(pattern?: string, options?: CallOptions): Promise<string[]> {
    return (await this.call('LISTROUTER', pattern === undefined ? [] : [pattern], options)).map(bufferText);
  }

  /** Removes a queue's waiting (ready and delayed) messages; leased ones stay. Resolves with how many. */
  flush(queue: string, options?: CallOptions): Promise<number> {
    return this.call('FLUSH', [queue], options);
  }

  /** Deletes a queue with its messages and bindings (its consumers stop); false when there was none. */
  deleteQueue(name: string, options?: CallOptions): Promise<boolean> {
    return this.call('DELETEQUEUE', [name], options);
  }

  /** Deletes a router and its bindings; false when there was none. */
  deleteRouter(name: string, options?: CallOptions): Promise<boolean> {
    return this.call('DELETEROUTER', [name], options);
  }

  /** The oldest `count` (default 10, up to 1000) dead letters kept in the queue's own list, each with its `death`. */
  deadLetters(queue: string, count?: number, options?: CallOptions): Promise<DeadLetter[]> {
    return this.call('DEADLETTERS', count === undefined ? [queue] : [queue, count], options);
  }

  /** Moves up to `count` (default 1000) kept dead letters back into the queue as new messages; resolves with how many. */
  replayDead(queue: string, count?: number, options?: CallOptions): Promise<number> {
    return this.call('REPLAYDEAD', count === undefined ? [queue] : [queue, count], options);
  }

  /** Deletes the dead letters kept in the queue's own list; resolves with how many. */
  purgeDead(queue: string, options?: CallOptions): Promise<number> {
    return this.call('PURGEDEAD', [queue], options);
  }
}

/**
 * The option words of a command for values named as the table names its options' values
 * (`{ delayMs: 500 }` → `['DELAY', 500]`, as JSON-RPC names them too), in table order.
 */
function optionWords(spec: CommandSpec, values: object): Array<string | number> {
  const words: Array<string | number> = [];
  for (const option of spec.options) {
    const name = option.args?.[0]?.name;
    const value = name === undefined ? undefined : (values as Record<string, unknown>)[name];
    if (typeof value === 'string' || typeof value === 'number') words.push(option.token, value);
  }
  return words;
}
