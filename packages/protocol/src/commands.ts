// The command table: each command is described once. From it the server validates arity,
// parses arguments and dispatches; the inline parser reads `inlineRest`; JSON-RPC maps its
// params; the clients derive their typed methods; `hati client` and `COMMAND DOCS` derive help
// (the literal types of each entry are kept for the client's types).

import { LOWER_A, LOWER_Z, showText, UPPER_A, UPPER_Z } from './bytes.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';

/**
 * What an argument holds; each kind has one parser on the server and one type in the client:
 * `storageType` (`memory` or `hdd`, any case), `ttl` (whole milliseconds, 0 = no expiry), `key`
 * and `value` (binary-safe bytes), `integer` (64-bit signed, decimal), `cursor` (a SCAN cursor,
 * decimal), `pattern` (a glob: `*`, `?`, `[a-z]`, `\\x`), `channel` (a pub/sub channel name),
 * `name` (a connection name: no spaces), `text` (free text); for the broker: `router` and
 * `queue` (names), `routingKey` (a routing or binding key), `message` (binary-safe bytes),
 * `messageId` (a delivered message's id), `ms` (whole milliseconds), `count` (a whole number).
 */
export type ArgKind =
  | 'storageType'
  | 'ttl'
  | 'key'
  | 'value'
  | 'integer'
  | 'cursor'
  | 'pattern'
  | 'channel'
  | 'name'
  | 'text'
  | 'router'
  | 'queue'
  | 'routingKey'
  | 'message'
  | 'messageId'
  | 'ms'
  | 'count';

/**
 * The shape of a reply, which decides how each front end encodes it:
 * - `status`: `+OK` (JSON-RPC `true`); `stored`: `+OK` when stored, null when a SET condition
 *   (NX/XX) was not met (JSON-RPC `true`/`false`);
 * - `bulk`: bytes or null; `text`: a bulk string of text (JSON-RPC: a string); `json`: a bulk
 *   string holding JSON (JSON-RPC: the value itself);
 * - `integer`; `boolean`: `:1`/`:0` (JSON-RPC `true`/`false`);
 * - `bulks`: an array of bulk strings or nulls (MGET); `keys`: an array of bulk strings;
 *   `scan`: `[cursor, [keys]]` (JSON-RPC `{cursor, keys}`); `map`: a RESP3 map, or a flat
 *   array in RESP2 (JSON-RPC: an object);
 * - `deliveries`: broker messages, each an array `[id, deliveries, routingKey, message]` with a
 *   fifth element `[reason, queue, deliveries]` for a dead-lettered one (JSON-RPC: objects
 *   `{id, deliveries, routingKey, message, death?}`);
 * - `document`: a JSON bulk string in RESP2, a map in RESP3 (JSON-RPC: the object);
 * - `custom`: written by the command itself (pub/sub confirmations, COMMAND); TCP only.
 */
export type ReplyKind =
  | 'status'
  | 'stored'
  | 'bulk'
  | 'text'
  | 'json'
  | 'integer'
  | 'boolean'
  | 'bulks'
  | 'keys'
  | 'scan'
  | 'map'
  | 'deliveries'
  | 'document'
  | 'custom';

/**
 * What a command does, for permissions (later credentials), pub/sub mode and docs. Exactly one
 * of `read`, `write`, `connection`, `admin` is set: the permission a caller needs.
 */
export interface CommandFlags {
  /** Reads keys of the storage type it names, or the broker's definitions and counts. */
  readonly read?: true;
  /** Changes keys of the storage type it names, or the broker's routers, queues and messages. */
  readonly write?: true;
  /** Acts on the caller's own connection only (PING, HELLO, CLIENT SETNAME, SUBSCRIBE...). */
  readonly connection?: true;
  /** Concerns the whole server (STATS, INFO, CLIENT LIST). */
  readonly admin?: true;
  /** Allowed while a RESP2 connection is subscribed (Redis's pub/sub mode). */
  readonly pubsub?: true;
  /** The server closes the connection after the reply (QUIT). */
  readonly closes?: true;
}

/**
 * The right a command needs once credentials are configured (docs/security.md):
 * - `public`: allowed before AUTH too (AUTH, HELLO, PING, QUIT);
 * - `connection`: any authenticated user; it acts on the caller's own connection;
 * - `read`, `write`: that right on the storage type of the `storageType` argument and on every
 *   `key` argument; a command that names no key needs it on the whole type (on every type when
 *   it names none);
 * - `subscribe`: keyspace notifications: read on the key or the storage type a channel names; a
 *   pattern needs read on everything;
 * - `publish` (routers), `consume` (queues), `manage` (routers and queues): on every `router` and
 *   `queue` argument;
 * - `view`: any broker right on the named router or queue; a listing shows only those;
 * - `admin`: the whole server (FLUSHALL, STATS, INFO, CLIENT LIST, ACL USERS, ACL LOAD).
 */
export type CommandAccess =
  | 'public'
  | 'connection'
  | 'read'
  | 'write'
  | 'subscribe'
  | 'publish'
  | 'consume'
  | 'manage'
  | 'view'
  | 'admin';

export interface ArgSpec {
  readonly name: string;
  readonly kind: ArgKind;
  /** Only trailing arguments may be optional. */
  readonly optional?: true;
  /** JSON-RPC: the value of this argument when its param is absent or null (SET's ttl: 0). */
  readonly rpcDefault?: string;
}

/** A keyword option after the positional arguments: `NX`, `MATCH <pattern>`. */
export interface OptionSpec {
  /** Upper case, as sent (any case is accepted). */
  readonly token: string;
  /** The values that follow the token (none for a flag such as `NX`). */
  readonly args?: readonly ArgSpec[];
  /** Options of one group exclude each other (`NX` and `XX`). */
  readonly group?: string;
  readonly summary: string;
}

export interface CommandSpec {
  /** Upper case, ASCII letters (a subcommand: `CLIENT SETNAME`). */
  readonly name: string;
  /** The positional arguments after the command name. */
  readonly args: readonly ArgSpec[];
  /**
   * The last `repeat` positional arguments may repeat (MGET's keys, MSET's key-value pairs,
   * SUBSCRIBE's channels): one or more times, or zero or more when they are optional. 0: none.
   */
  readonly repeat: number;
  /** Keyword options after the positional arguments, each given at most once. */
  readonly options: readonly OptionSpec[];
  /**
   * The options come before the last positional argument instead of after all of them
   * (`PUBLISH <router> <routingKey> [DELAY ms] <message>`), so that the inline form's last
   * argument can still take the rest of the line.
   */
  readonly optionsBeforeLast?: true;
  /** Fewest arguments after the name. */
  readonly minArgs: number;
  /** Most arguments after the name (Infinity when arguments repeat). */
  readonly maxArgs: number;
  /**
   * Inline form only: index in `args` of the argument that takes the rest of the line verbatim
   * (spaces kept). Always the last argument.
   */
  readonly inlineRest?: number;
  readonly reply: ReplyKind;
  readonly flags: CommandFlags;
  /** The right it needs once credentials are configured: the permission decision every command makes. */
  readonly access: CommandAccess;
  /** For docs and COMMAND DOCS: `string`, `keyspace`, `connection`, `server`, `pubsub`. */
  readonly group: CommandGroup;
  /** The JSON-RPC method that runs it, or null when it has none (a decision, not an omission). */
  readonly rpc: string | null;
  /** The typed clients' method that runs it, or null when they have none (a decision). */
  readonly client: string | null;
  /** Subcommands, keyed by upper-case name (`CLIENT`'s `SETNAME`); the command itself runs none. */
  readonly subcommands?: Readonly<Record<string, CommandSpec>>;
  /** One line, for docs and help. */
  readonly summary: string;
  /** For example `SET <type> <ttl> <key> <value> [NX|XX]`; optional parts in brackets. */
  readonly syntax: string;
  /** Arguments of a call that succeeds on an empty server, for tests and help. */
  readonly example: readonly string[];
  /** The Hati version that added it. */
  readonly since: string;
}

export type CommandGroup = 'string' | 'keyspace' | 'connection' | 'server' | 'pubsub' | 'broker';

interface CommandDefinition {
  readonly args: readonly ArgSpec[];
  readonly reply: ReplyKind;
  readonly flags: CommandFlags;
  readonly access: CommandAccess;
  readonly group: CommandGroup;
  readonly rpc: string | null;
  readonly client: string | null;
  readonly summary: string;
  readonly example: readonly string[];
  readonly repeat?: number;
  readonly options?: readonly OptionSpec[];
  readonly inlineRest?: number;
  readonly subcommands?: Readonly<Record<string, CommandSpec>>;
  /** Fewer arguments than the positional ones, for a command with a second form (SCAN). */
  readonly minArgs?: number;
  readonly optionsBeforeLast?: true;
  readonly since?: string;
}

/**
 * A `CommandSpec` keeping the literal types of its definition (name, arguments, reply kind,
 * options, repeat count, JSON-RPC and client method names, subcommands), from which the client
 * derives its types.
 */
export type TypedCommandSpec<N extends string, D extends CommandDefinition> = CommandSpec & {
  readonly name: N;
  readonly args: D['args'];
  readonly reply: D['reply'];
  readonly options: D['options'] extends readonly OptionSpec[] ? D['options'] : readonly [];
  readonly repeat: D['repeat'] extends number ? D['repeat'] : 0;
  readonly rpc: D['rpc'];
  readonly client: D['client'];
  readonly subcommands: D['subcommands'];
  readonly optionsBeforeLast: D['optionsBeforeLast'];
};

const PERMISSIONS = ['read', 'write', 'connection', 'admin'] as const;

/** Builds one table entry, deriving arity and syntax from the arguments and options. */
function define<const N extends string, const D extends CommandDefinition>(
  name: N,
  definition: D,
): TypedCommandSpec<N, D> {
  const { args, reply, summary, inlineRest, flags, subcommands, optionsBeforeLast } = definition;
  const options = definition.options ?? [];
  const repeat = definition.repeat ?? 0;
  if (!/^[A-Z]+( [A-Z-]+)?$/.test(name)) throw new Error(`command name ${name} must be upper-case ASCII letters`);
  const firstOptional = args.findIndex((arg) => arg.optional === true);
  const required = firstOptional === -1 ? args.length : firstOptional;
  if (args.slice(required).some((arg) => arg.optional !== true)) {
    throw new Error(`${name}: only trailing arguments may be optional`);
  }
  if (inlineRest !== undefined && (inlineRest !== args.length - 1 || repeat !== 0)) {
    throw new Error(`${name}: inlineRest must be the index of the last argument, which may not repeat`);
  }
  if (optionsBeforeLast === true && (options.length === 0 || args.some((arg) => arg.optional === true))) {
    throw new Error(`${name}: optionsBeforeLast needs options and no optional arguments`);
  }
  if (repeat > args.length || (repeat > 0 && options.length > 0)) {
    throw new Error(`${name}: repeated arguments must be the last ones, and exclude options`);
  }
  if (PERMISSIONS.filter((permission) => flags[permission] === true).length !== 1) {
    throw new Error(`${name}: exactly one of the flags ${PERMISSIONS.join(', ')} must be set`);
  }
  if (reply === 'custom' && definition.rpc !== null) throw new Error(`${name}: a custom reply has no JSON-RPC method`);
  // Options of one group exclude each other: each group adds the words of its longest option.
  const groupWords = new Map<string, number>();
  for (const option of options) {
    const key = option.group ?? option.token;
    groupWords.set(key, Math.max(groupWords.get(key) ?? 0, 1 + (option.args?.length ?? 0)));
  }
  const optionWords = [...groupWords.values()].reduce((sum, words) => sum + words, 0);
  const minArgs = definition.minArgs ?? (subcommands === undefined ? required : 1);
  const maxArgs = repeat > 0 || subcommands !== undefined ? Number.POSITIVE_INFINITY : args.length + optionWords;
  const spec = {
    name,
    args,
    repeat,
    options,
    minArgs,
    maxArgs,
    reply,
    flags: Object.freeze({ ...flags }),
    access: definition.access,
    group: definition.group,
    rpc: definition.rpc,
    client: definition.client,
    summary,
    syntax: syntaxOf(name, args, repeat, options, subcommands, optionsBeforeLast === true),
    example: definition.example,
    since: definition.since ?? '0.1.0',
    ...(inlineRest !== undefined && { inlineRest }),
    ...(subcommands !== undefined && { subcommands }),
    ...(optionsBeforeLast === true && { optionsBeforeLast }),
  };
  return Object.freeze(spec) as unknown as TypedCommandSpec<N, D>;
}

function syntaxOf(
  name: string,
  args: readonly ArgSpec[],
  repeat: number,
  options: readonly OptionSpec[],
  subcommands: Readonly<Record<string, CommandSpec>> | undefined,
  optionsBeforeLast = false,
): string {
  if (subcommands !== undefined) return `${name} <${Object.keys(subcommands).join('|')}> [arguments]`;
  const word = (arg: ArgSpec) => (arg.optional === true ? `[${arg.name}]` : `<${arg.name}>`);
  const parts = [name, ...args.map(word)];
  if (repeat > 0) {
    const group = args
      .slice(args.length - repeat)
      .map((arg) => `<${arg.name}>`)
      .join(' ');
    parts.push(`[${group} ...]`);
  }
  const groups = new Map<string, string[]>();
  for (const option of options) {
    const text = [option.token, ...(option.args ?? []).map((arg) => `<${arg.name}>`)].join(' ');
    const key = option.group ?? option.token;
    groups.set(key, [...(groups.get(key) ?? []), text]);
  }
  const last = optionsBeforeLast ? parts.pop() : undefined;
  for (const texts of groups.values()) parts.push(`[${texts.join('|')}]`);
  if (last !== undefined) parts.push(last);
  return parts.join(' ');
}

const TYPE = { name: 'type', kind: 'storageType' } as const;
const TTL = { name: 'ttl', kind: 'ttl' } as const;
/** SET's ttl: the seed's Storage.Set took none for no expiry. */
const SET_TTL = { ...TTL, rpcDefault: '0' } as const;
const KEY = { name: 'key', kind: 'key' } as const;
const VALUE = { name: 'value', kind: 'value' } as const;
const CHANNEL = { name: 'channel', kind: 'channel' } as const;
const PATTERN = { name: 'pattern', kind: 'pattern' } as const;

const ROUTER = { name: 'router', kind: 'router' } as const;
const QUEUE = { name: 'queue', kind: 'queue' } as const;
const MESSAGE_ID = { name: 'id', kind: 'messageId' } as const;
const BINDING_KEY = { name: 'bindingKey', kind: 'routingKey' } as const;
const GLOB = { name: 'pattern', kind: 'pattern', optional: true } as const;
const BROKER = '0.3.0';

const clientSubcommands = {
  ID: define('CLIENT ID', {
    args: [],
    reply: 'integer',
    flags: { connection: true },
    access: 'connection',
    group: 'connection',
    rpc: null,
    client: null,
    summary: "Replies this connection's id.",
    example: [],
    since: '0.2.0',
  }),
  SETNAME: define('CLIENT SETNAME', {
    args: [{ name: 'connection-name', kind: 'name' }],
    reply: 'status',
    flags: { connection: true },
    access: 'connection',
    group: 'connection',
    rpc: null,
    client: null,
    summary: 'Names this connection (shown by CLIENT LIST and STATS); an empty name removes it.',
    example: ['worker-1'],
    since: '0.2.0',
  }),
  GETNAME: define('CLIENT GETNAME', {
    args: [],
    reply: 'bulk',
    flags: { connection: true },
    access: 'connection',
    group: 'connection',
    rpc: null,
    client: null,
    summary: "Replies this connection's name, or null.",
    example: [],
    since: '0.2.0',
  }),
  SETINFO: define('CLIENT SETINFO', {
    args: [
      { name: 'attribute', kind: 'text' },
      { name: 'value', kind: 'text' },
    ],
    reply: 'status',
    flags: { connection: true },
    access: 'connection',
    group: 'connection',
    rpc: null,
    client: null,
    summary: "Records the client library's LIB-NAME or LIB-VER (Redis clients send them when they connect).",
    example: ['LIB-NAME', 'my-app'],
    since: '0.2.0',
  }),
  INFO: define('CLIENT INFO', {
    args: [],
    reply: 'text',
    flags: { connection: true },
    access: 'connection',
    group: 'connection',
    rpc: null,
    client: null,
    summary: "Replies this connection's line of CLIENT LIST.",
    example: [],
    since: '0.2.0',
  }),
  LIST: define('CLIENT LIST', {
    args: [],
    reply: 'text',
    flags: { admin: true },
    access: 'admin',
    group: 'connection',
    rpc: null,
    client: null,
    summary: 'Replies one line per client connection: id, address, name, age, idle time, protocol, subscriptions.',
    example: [],
    since: '0.2.0',
  }),
} as const;

const commandSubcommands = {
  COUNT: define('COMMAND COUNT', {
    args: [],
    reply: 'integer',
    flags: { connection: true },
    access: 'connection',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Replies the number of commands.',
    example: [],
    since: '0.2.0',
  }),
  DOCS: define('COMMAND DOCS', {
    args: [{ name: 'command-name', kind: 'text', optional: true }],
    repeat: 1,
    reply: 'custom',
    flags: { connection: true },
    access: 'connection',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Replies the docs of the named commands, or of all, as Redis does (redis-cli shows them as hints).',
    example: ['GET'],
    since: '0.2.0',
  }),
  INFO: define('COMMAND INFO', {
    args: [{ name: 'command-name', kind: 'text', optional: true }],
    repeat: 1,
    reply: 'custom',
    flags: { connection: true },
    access: 'connection',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Replies arity, flags and key positions of the named commands, or of all, as Redis does.',
    example: ['GET'],
    since: '0.2.0',
  }),
} as const;

const AUTH_SINCE = '0.4.0';

const aclSubcommands = {
  WHOAMI: define('ACL WHOAMI', {
    args: [],
    reply: 'bulk',
    flags: { connection: true },
    access: 'connection',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Replies the name of the user this connection is authenticated as.',
    example: [],
    since: AUTH_SINCE,
  }),
  USERS: define('ACL USERS', {
    args: [],
    reply: 'keys',
    flags: { admin: true },
    access: 'admin',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Replies the names of the configured users.',
    example: [],
    since: AUTH_SINCE,
  }),
  LOAD: define('ACL LOAD', {
    args: [],
    reply: 'status',
    flags: { admin: true },
    access: 'admin',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Reads the users file again, as SIGHUP does; an invalid file changes nothing (USERS_FILE_INVALID).',
    example: [],
    since: AUTH_SINCE,
  }),
} as const;

const BACKUP_SINCE = '0.5.0';
const SNAPSHOT_ID = { name: 'id', kind: 'text' } as const;

// Online backup (docs/protocol.md, "Backup"): a snapshot held by the connection, read in chunks
// of records, and the records applied one at a time by a restore. TCP and UNIX socket only.
const backupSubcommands = {
  BEGIN: define('BACKUP BEGIN', {
    args: [],
    options: [{ token: 'MEMORY', summary: 'the memory keys too (their references are copied now)' }],
    reply: 'bulk',
    flags: { admin: true },
    access: 'admin',
    group: 'server',
    rpc: null,
    client: null,
    summary:
      'Takes a consistent snapshot of the hdd keys, broker definitions, hdd queue messages and dead letters (with MEMORY, the memory keys too), held by this connection; replies its id.',
    example: [],
    since: BACKUP_SINCE,
  }),
  NEXT: define('BACKUP NEXT', {
    args: [SNAPSHOT_ID],
    options: [
      {
        token: 'COUNT',
        args: [{ name: 'count', kind: 'count' }],
        summary: 'most records in the reply (default 1000, at most 100000)',
      },
    ],
    reply: 'custom',
    flags: { admin: true },
    access: 'admin',
    group: 'server',
    rpc: null,
    client: null,
    summary:
      'Replies the next records of a snapshot, each an array of bulk strings (its kind first), about 4 MiB at most; an empty array at the end, which releases the snapshot.',
    example: ['0'],
    since: BACKUP_SINCE,
  }),
  END: define('BACKUP END', {
    args: [SNAPSHOT_ID],
    reply: 'status',
    flags: { admin: true },
    access: 'admin',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Releases a snapshot before its end.',
    example: ['0'],
    since: BACKUP_SINCE,
  }),
  LOAD: define('BACKUP LOAD', {
    args: [
      { name: 'kind', kind: 'text' },
      { name: 'field', kind: 'value' },
    ],
    repeat: 1,
    reply: 'integer',
    flags: { admin: true },
    access: 'admin',
    group: 'server',
    rpc: null,
    client: null,
    summary:
      'Applies one backup record (its fields as BACKUP NEXT gave them): 1 applied, 0 skipped because its expiry has passed.',
    example: ['router', 'backup-example', 'direct'],
    since: BACKUP_SINCE,
  }),
} as const;

/** Every command, keyed by its upper-case name. */
export const commands = {
  SET: define('SET', {
    args: [TYPE, SET_TTL, KEY, VALUE],
    inlineRest: 3,
    options: [
      { token: 'NX', group: 'condition', summary: 'only when the key does not exist' },
      { token: 'XX', group: 'condition', summary: 'only when the key exists' },
    ],
    reply: 'stored',
    flags: { write: true },
    access: 'write',
    group: 'string',
    rpc: 'Storage.Set',
    client: 'set',
    summary:
      'Stores a value under a key, expiring after ttl ms (0 = never); replies OK, or null when NX/XX was not met.',
    example: ['memory', '0', 'greeting', 'hello'],
  }),
  GET: define('GET', {
    args: [TYPE, KEY],
    reply: 'bulk',
    flags: { read: true },
    access: 'read',
    group: 'string',
    rpc: 'Storage.Get',
    client: 'getBuffer',
    summary: "Returns a key's value, or null when it is missing or expired.",
    example: ['memory', 'greeting'],
  }),
  HAS: define('HAS', {
    args: [TYPE, KEY],
    reply: 'boolean',
    flags: { read: true },
    access: 'read',
    group: 'keyspace',
    rpc: 'Storage.Has',
    client: 'has',
    summary: 'Replies 1 when the key is live, else 0.',
    example: ['memory', 'greeting'],
  }),
  DELETE: define('DELETE', {
    args: [TYPE, KEY],
    reply: 'boolean',
    flags: { write: true },
    access: 'write',
    group: 'keyspace',
    rpc: 'Storage.Delete',
    client: 'delete',
    summary: 'Removes a key; replies 1 if a live key was removed, else 0.',
    example: ['memory', 'greeting'],
  }),
  FLUSHALL: define('FLUSHALL', {
    args: [TYPE],
    reply: 'status',
    flags: { write: true },
    access: 'admin',
    group: 'keyspace',
    rpc: 'Storage.FlushAll',
    client: 'flushAll',
    summary: 'Removes every key of one storage type; replies OK.',
    example: ['memory'],
  }),
  COUNT: define('COUNT', {
    args: [TYPE],
    reply: 'integer',
    flags: { read: true },
    access: 'read',
    group: 'keyspace',
    rpc: 'Storage.Count',
    client: 'count',
    summary: 'Replies the number of live keys of one storage type.',
    example: ['memory'],
  }),
  TTL: define('TTL', {
    args: [TYPE, KEY],
    reply: 'integer',
    flags: { read: true },
    access: 'read',
    group: 'keyspace',
    rpc: 'Storage.Ttl',
    client: 'ttl',
    summary: "Replies a key's remaining time to live in ms: -1 when it has none, -2 when it is missing (Redis's PTTL).",
    example: ['memory', 'greeting'],
    since: '0.2.0',
  }),
  EXPIRE: define('EXPIRE', {
    args: [TYPE, KEY, TTL],
    reply: 'boolean',
    flags: { write: true },
    access: 'write',
    group: 'keyspace',
    rpc: 'Storage.Expire',
    client: 'expire',
    summary: 'Sets a live key to expire after ttl ms (0 removes its expiry); replies 1, or 0 when it is missing.',
    example: ['memory', 'greeting', '1000'],
    since: '0.2.0',
  }),
  SCAN: define('SCAN', {
    args: [TYPE, { name: 'cursor', kind: 'cursor', rpcDefault: '0' }],
    options: [
      { token: 'MATCH', args: [PATTERN], summary: 'only keys matching the glob' },
      { token: 'COUNT', args: [{ name: 'count', kind: 'integer' }], summary: 'keys to examine per call (a hint)' },
      {
        token: 'TYPE',
        args: [{ name: 'storage-type', kind: 'storageType' }],
        summary: "Redis's form (SCAN <cursor> ...): the storage type, memory when absent",
      },
    ],
    // SCAN <cursor> [MATCH] [COUNT] [TYPE], as redis-cli --scan sends it, also works.
    minArgs: 1,
    reply: 'scan',
    flags: { read: true },
    access: 'read',
    group: 'keyspace',
    rpc: 'Storage.Scan',
    client: 'scan',
    summary:
      'Replies a cursor ("0" when done) and a batch of keys; call again with the cursor. Never blocks the server.',
    example: ['memory', '0'],
    since: '0.2.0',
  }),
  KEYS: define('KEYS', {
    args: [TYPE, PATTERN],
    reply: 'keys',
    flags: { read: true },
    access: 'read',
    group: 'keyspace',
    rpc: 'Storage.Keys',
    client: 'keys',
    summary: 'Replies every live key matching a glob. Reads the whole keyspace at once: prefer SCAN on large ones.',
    example: ['memory', '*'],
    since: '0.2.0',
  }),
  INCR: define('INCR', {
    args: [TYPE, KEY],
    reply: 'integer',
    flags: { write: true },
    access: 'write',
    group: 'string',
    rpc: 'Storage.Incr',
    client: 'incr',
    summary: 'Adds 1 to the 64-bit integer stored at a key (0 when missing); replies the new value.',
    example: ['memory', 'counter'],
    since: '0.2.0',
  }),
  INCRBY: define('INCRBY', {
    args: [TYPE, KEY, { name: 'delta', kind: 'integer' }],
    reply: 'integer',
    flags: { write: true },
    access: 'write',
    group: 'string',
    rpc: 'Storage.IncrBy',
    client: 'incrBy',
    summary: 'Adds delta (negative subtracts) to the 64-bit integer stored at a key; replies the new value.',
    example: ['memory', 'counter', '5'],
    since: '0.2.0',
  }),
  MGET: define('MGET', {
    args: [TYPE, KEY],
    repeat: 1,
    reply: 'bulks',
    flags: { read: true },
    access: 'read',
    group: 'string',
    rpc: 'Storage.MGet',
    client: 'mgetBuffer',
    summary: 'Replies the values of the keys, in order; null for a missing one.',
    example: ['memory', 'a', 'b'],
    since: '0.2.0',
  }),
  MSET: define('MSET', {
    args: [TYPE, KEY, VALUE],
    repeat: 2,
    reply: 'status',
    flags: { write: true },
    access: 'write',
    group: 'string',
    rpc: 'Storage.MSet',
    client: 'mset',
    summary: 'Stores every key-value pair (without expiry); replies OK once all are stored.',
    example: ['memory', 'a', '1', 'b', '2'],
    since: '0.2.0',
  }),
  DBSIZE: define('DBSIZE', {
    args: [{ name: 'type', kind: 'storageType', optional: true }],
    reply: 'integer',
    flags: { read: true },
    access: 'read',
    group: 'keyspace',
    rpc: null,
    client: null,
    summary: 'Replies the number of live keys of one storage type, or of both (as Redis clients ask it).',
    example: [],
    since: '0.2.0',
  }),
  PING: define('PING', {
    args: [{ name: 'message', kind: 'text', optional: true }],
    reply: 'status',
    flags: { connection: true, pubsub: true },
    access: 'public',
    group: 'connection',
    rpc: 'Server.Ping',
    client: 'ping',
    summary: 'Replies PONG, or the message (as a bulk string) when one is given.',
    example: [],
  }),
  ECHO: define('ECHO', {
    args: [{ name: 'message', kind: 'text' }],
    reply: 'bulk',
    flags: { connection: true },
    access: 'connection',
    group: 'connection',
    rpc: null,
    client: null,
    summary: 'Replies the message (redis-cli --pipe ends its input with it).',
    example: ['hello'],
  }),
  QUIT: define('QUIT', {
    args: [],
    reply: 'status',
    flags: { connection: true, pubsub: true, closes: true },
    access: 'public',
    group: 'connection',
    rpc: null,
    client: 'quit',
    summary: 'Replies OK, then the server closes the connection.',
    example: [],
  }),
  HELLO: define('HELLO', {
    args: [{ name: 'protover', kind: 'integer', optional: true }],
    options: [
      {
        token: 'AUTH',
        args: [
          { name: 'username', kind: 'text' },
          { name: 'password', kind: 'text' },
        ],
        summary: 'authenticates as AUTH does, before the switch',
      },
      { token: 'SETNAME', args: [{ name: 'connection-name', kind: 'name' }], summary: 'names the connection' },
    ],
    reply: 'map',
    flags: { connection: true },
    access: 'public',
    group: 'connection',
    rpc: null,
    client: null,
    summary: 'Switches the connection to RESP2 or RESP3 (maps, pushes) and replies the server map, as Redis does.',
    example: ['3'],
    since: '0.2.0',
  }),
  AUTH: define('AUTH', {
    args: [
      { name: 'username-or-password', kind: 'text' },
      { name: 'password', kind: 'text', optional: true },
    ],
    reply: 'status',
    flags: { connection: true },
    access: 'public',
    group: 'connection',
    rpc: null,
    client: null,
    summary:
      'Authenticates the connection: AUTH <password> as the default user, AUTH <username> <password> as a named one (Redis forms).',
    example: ['secret'],
    since: AUTH_SINCE,
  }),
  ACL: define('ACL', {
    args: [],
    subcommands: aclSubcommands,
    reply: 'custom',
    flags: { connection: true },
    access: 'connection',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Users and rights: ACL WHOAMI, ACL USERS, ACL LOAD.',
    example: ['WHOAMI'],
    since: AUTH_SINCE,
  }),
  SELECT: define('SELECT', {
    args: [{ name: 'index', kind: 'text' }],
    reply: 'status',
    flags: { connection: true },
    access: 'connection',
    group: 'connection',
    rpc: null,
    client: null,
    summary: 'Replies OK for database 0, the only one (memory and hdd are the keyspaces).',
    example: ['0'],
  }),
  CLIENT: define('CLIENT', {
    args: [],
    subcommands: clientSubcommands,
    reply: 'custom',
    flags: { connection: true },
    access: 'connection',
    group: 'connection',
    rpc: null,
    client: null,
    summary: 'Connection commands: CLIENT ID, SETNAME, GETNAME, SETINFO, INFO, LIST.',
    example: ['ID'],
    since: '0.2.0',
  }),
  COMMAND: define('COMMAND', {
    args: [],
    // COMMAND alone lists every command, as in Redis.
    minArgs: 0,
    subcommands: commandSubcommands,
    reply: 'custom',
    flags: { connection: true },
    access: 'connection',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Describes the commands (COMMAND alone lists them all, as Redis does): COMMAND COUNT, DOCS, INFO.',
    example: ['COUNT'],
    since: '0.2.0',
  }),
  SUBSCRIBE: define('SUBSCRIBE', {
    args: [CHANNEL],
    repeat: 1,
    reply: 'custom',
    flags: { connection: true, pubsub: true },
    access: 'subscribe',
    group: 'pubsub',
    rpc: null,
    client: 'subscribe',
    summary: 'Subscribes to channels: keyspace events such as __keyspace@memory__:<key> and __keyevent@hdd__:expired.',
    example: ['__keyevent@memory__:set'],
    since: '0.2.0',
  }),
  UNSUBSCRIBE: define('UNSUBSCRIBE', {
    args: [{ ...CHANNEL, optional: true }],
    repeat: 1,
    reply: 'custom',
    flags: { connection: true, pubsub: true },
    access: 'connection',
    group: 'pubsub',
    rpc: null,
    client: 'unsubscribe',
    summary: 'Unsubscribes from the channels, or from all.',
    example: [],
    since: '0.2.0',
  }),
  PSUBSCRIBE: define('PSUBSCRIBE', {
    args: [PATTERN],
    repeat: 1,
    reply: 'custom',
    flags: { connection: true, pubsub: true },
    access: 'subscribe',
    group: 'pubsub',
    rpc: null,
    client: 'psubscribe',
    summary: 'Subscribes to every channel matching the globs: __keyspace@hdd__:user:* for example.',
    example: ['__keyspace@memory__:*'],
    since: '0.2.0',
  }),
  PUNSUBSCRIBE: define('PUNSUBSCRIBE', {
    args: [{ ...PATTERN, optional: true }],
    repeat: 1,
    reply: 'custom',
    flags: { connection: true, pubsub: true },
    access: 'connection',
    group: 'pubsub',
    rpc: null,
    client: 'punsubscribe',
    summary: 'Unsubscribes from the patterns, or from all.',
    example: [],
    since: '0.2.0',
  }),
  STATS: define('STATS', {
    args: [],
    reply: 'json',
    flags: { admin: true },
    access: 'admin',
    group: 'server',
    rpc: 'Server.Stats',
    client: 'stats',
    summary: 'Replies server statistics as a JSON document, with one entry per connected client.',
    example: [],
  }),
  INFO: define('INFO', {
    args: [{ name: 'section', kind: 'text', optional: true }],
    reply: 'text',
    flags: { admin: true },
    access: 'admin',
    group: 'server',
    rpc: 'Server.Info',
    client: 'info',
    summary: "Replies server information in Redis's INFO text format (Redis clients read it when they connect).",
    example: [],
  }),
  BACKUP: define('BACKUP', {
    args: [],
    subcommands: backupSubcommands,
    reply: 'custom',
    flags: { admin: true },
    access: 'admin',
    group: 'server',
    rpc: null,
    client: null,
    summary: 'Online backup and restore: BACKUP BEGIN, NEXT, END, LOAD.',
    example: ['BEGIN'],
    since: BACKUP_SINCE,
  }),
  CREATEROUTER: define('CREATEROUTER', {
    args: [
      { name: 'name', kind: 'router' },
      { name: 'kind', kind: 'text' },
    ],
    reply: 'status',
    flags: { write: true },
    access: 'manage',
    group: 'broker',
    rpc: 'Broker.CreateRouter',
    client: 'createRouter',
    summary: 'Creates a router of kind direct, fanout or topic; replies OK (also when it exists with that kind).',
    example: ['orders', 'topic'],
    since: BROKER,
  }),
  CREATEQUEUE: define('CREATEQUEUE', {
    args: [
      { name: 'name', kind: 'queue' },
      { name: 'type', kind: 'text' },
    ],
    options: [
      { token: 'ACKTIMEOUT', args: [{ name: 'ackTimeoutMs', kind: 'ms' }], summary: 'lease length (default 30000)' },
      {
        token: 'MAXDELIVERIES',
        args: [{ name: 'maxDeliveries', kind: 'count' }],
        summary: 'dead-letter after this many deliveries (default 0: no limit)',
      },
      { token: 'DEADLETTER', args: [{ name: 'deadLetter', kind: 'router' }], summary: 'router for dead letters' },
      {
        token: 'MAXLENGTH',
        args: [{ name: 'maxLength', kind: 'count' }],
        summary: 'most waiting messages (default 0: no limit)',
      },
      {
        token: 'OVERFLOW',
        args: [{ name: 'overflow', kind: 'text' }],
        summary: 'reject (default) or drop-head when full',
      },
      { token: 'TTL', args: [{ name: 'ttlMs', kind: 'ms' }], summary: 'message ttl in the queue (default 0: none)' },
      {
        token: 'DEDUPWINDOW',
        args: [{ name: 'dedupWindowMs', kind: 'ms' }],
        summary: 'how long message ids are remembered (default 120000)',
      },
    ],
    reply: 'status',
    flags: { write: true },
    access: 'manage',
    group: 'broker',
    rpc: 'Broker.CreateQueue',
    client: 'createQueue',
    summary: 'Creates a memory or hdd queue; replies OK (also when it exists with the same settings).',
    example: ['jobs', 'memory'],
    since: BROKER,
  }),
  BIND: define('BIND', {
    args: [QUEUE, ROUTER, BINDING_KEY],
    reply: 'status',
    flags: { write: true },
    access: 'manage',
    group: 'broker',
    rpc: 'Broker.Bind',
    client: 'bind',
    summary: "Routes the router's messages whose routing key matches the binding key to the queue; replies OK.",
    example: ['jobs', 'orders', 'eu.#'],
    since: BROKER,
  }),
  UNBIND: define('UNBIND', {
    args: [QUEUE, ROUTER, BINDING_KEY],
    reply: 'boolean',
    flags: { write: true },
    access: 'manage',
    group: 'broker',
    rpc: 'Broker.Unbind',
    client: 'unbind',
    summary: 'Removes a binding; replies 1, or 0 when there was none.',
    example: ['jobs', 'orders', 'eu.#'],
    since: BROKER,
  }),
  PUBLISH: define('PUBLISH', {
    args: [ROUTER, { name: 'routingKey', kind: 'routingKey' }, { name: 'message', kind: 'message' }],
    inlineRest: 2,
    optionsBeforeLast: true,
    options: [
      { token: 'DELAY', args: [{ name: 'delayMs', kind: 'ms' }], summary: 'not delivered before ms from now' },
      { token: 'TTL', args: [{ name: 'ttlMs', kind: 'ms' }], summary: 'dead-lettered if not acknowledged within ms' },
      { token: 'ID', args: [{ name: 'id', kind: 'text' }], summary: 'de-duplication id' },
    ],
    reply: 'integer',
    flags: { write: true },
    access: 'publish',
    group: 'broker',
    rpc: 'Broker.Publish',
    client: 'publish',
    summary: 'Routes a message to the queues bound to the router; replies how many it reached, once stored.',
    example: ['orders', 'eu.new', 'hello'],
    since: BROKER,
  }),
  FETCH: define('FETCH', {
    args: [QUEUE, { name: 'count', kind: 'count', optional: true }, { name: 'waitMs', kind: 'ms', optional: true }],
    reply: 'deliveries',
    flags: { write: true },
    access: 'consume',
    group: 'broker',
    rpc: 'Broker.Fetch',
    client: 'fetch',
    summary:
      'Leases up to count messages (default 1), waiting up to waitMs for one; replies [id, deliveries, routingKey, message] each.',
    example: ['jobs', '10'],
    since: BROKER,
  }),
  ACK: define('ACK', {
    args: [QUEUE, MESSAGE_ID],
    repeat: 1,
    reply: 'integer',
    flags: { write: true },
    access: 'consume',
    group: 'broker',
    rpc: 'Broker.Ack',
    client: 'ack',
    summary: 'Acknowledges leased messages (gone for good); replies how many were leased.',
    example: ['jobs', '1'],
    since: BROKER,
  }),
  NACK: define('NACK', {
    args: [QUEUE, MESSAGE_ID],
    options: [
      { token: 'REQUEUE', group: 'mode', summary: 'back to the queue, ahead of newer messages (default)' },
      { token: 'DROP', group: 'mode', summary: 'to the dead letters' },
    ],
    reply: 'integer',
    flags: { write: true },
    access: 'consume',
    group: 'broker',
    rpc: 'Broker.Nack',
    client: 'nack',
    summary: 'Gives a leased message back (REQUEUE) or dead-letters it (DROP); replies 1, or 0 when not leased.',
    example: ['jobs', '1'],
    since: BROKER,
  }),
  TOUCH: define('TOUCH', {
    args: [QUEUE, MESSAGE_ID],
    reply: 'boolean',
    flags: { write: true },
    access: 'consume',
    group: 'broker',
    rpc: 'Broker.Touch',
    client: 'touch',
    summary: "Extends a lease by the queue's ack timeout from now; replies 1, or 0 when not leased.",
    example: ['jobs', '1'],
    since: BROKER,
  }),
  CONSUME: define('CONSUME', {
    args: [QUEUE, { name: 'prefetch', kind: 'count', optional: true }],
    reply: 'bulk',
    flags: { write: true },
    access: 'consume',
    group: 'broker',
    rpc: null,
    client: 'consume',
    summary:
      "Pushes the queue's messages to this connection, at most prefetch unacknowledged (0: no limit); replies the consumer tag.",
    example: ['jobs', '10'],
    since: BROKER,
  }),
  CANCEL: define('CANCEL', {
    args: [{ name: 'tag', kind: 'text' }],
    reply: 'boolean',
    flags: { write: true },
    access: 'connection',
    group: 'broker',
    rpc: null,
    client: null,
    summary: 'Stops a consumer of this connection (its leased messages stay leased); replies 1, or 0.',
    example: ['ctag-1'],
    since: BROKER,
  }),
  GETQUEUE: define('GETQUEUE', {
    args: [{ name: 'name', kind: 'queue' }],
    reply: 'document',
    flags: { read: true },
    access: 'view',
    group: 'broker',
    rpc: 'Broker.GetQueue',
    client: 'getQueue',
    summary: "Replies a queue's settings, counts and bindings (JSON; a map in RESP3).",
    example: ['jobs'],
    since: BROKER,
  }),
  GETROUTER: define('GETROUTER', {
    args: [{ name: 'name', kind: 'router' }],
    reply: 'document',
    flags: { read: true },
    access: 'view',
    group: 'broker',
    rpc: 'Broker.GetRouter',
    client: 'getRouter',
    summary: "Replies a router's kind and bindings (JSON; a map in RESP3).",
    example: ['orders'],
    since: BROKER,
  }),
  LISTQUEUE: define('LISTQUEUE', {
    args: [GLOB],
    reply: 'keys',
    flags: { read: true },
    access: 'view',
    group: 'broker',
    rpc: 'Broker.ListQueue',
    client: 'listQueues',
    summary: 'Replies the names of the queues (matching the glob), sorted.',
    example: [],
    since: BROKER,
  }),
  LISTROUTER: define('LISTROUTER', {
    args: [GLOB],
    reply: 'keys',
    flags: { read: true },
    access: 'view',
    group: 'broker',
    rpc: 'Broker.ListRouter',
    client: 'listRouters',
    summary: 'Replies the names of the routers (matching the glob), sorted.',
    example: [],
    since: BROKER,
  }),
  FLUSH: define('FLUSH', {
    args: [QUEUE],
    reply: 'integer',
    flags: { write: true },
    access: 'manage',
    group: 'broker',
    rpc: 'Broker.Flush',
    client: 'flush',
    summary: "Removes a queue's waiting messages (leased ones stay); replies how many.",
    example: ['jobs'],
    since: BROKER,
  }),
  DELETEQUEUE: define('DELETEQUEUE', {
    args: [{ name: 'name', kind: 'queue' }],
    reply: 'boolean',
    flags: { write: true },
    access: 'manage',
    group: 'broker',
    rpc: 'Broker.DeleteQueue',
    client: 'deleteQueue',
    summary: 'Deletes a queue, its messages and bindings; replies 1, or 0 when there was none.',
    example: ['jobs'],
    since: BROKER,
  }),
  DELETEROUTER: define('DELETEROUTER', {
    args: [{ name: 'name', kind: 'router' }],
    reply: 'boolean',
    flags: { write: true },
    access: 'manage',
    group: 'broker',
    rpc: 'Broker.DeleteRouter',
    client: 'deleteRouter',
    summary: 'Deletes a router and its bindings; replies 1, or 0 when there was none.',
    example: ['orders'],
    since: BROKER,
  }),
  DEADLETTERS: define('DEADLETTERS', {
    args: [QUEUE, { name: 'count', kind: 'count', optional: true }],
    reply: 'deliveries',
    flags: { read: true },
    access: 'consume',
    group: 'broker',
    rpc: 'Broker.DeadLetters',
    client: 'deadLetters',
    summary: "Replies the oldest count (default 10) dead letters kept in a queue's own list, with their reasons.",
    example: ['jobs'],
    since: BROKER,
  }),
  REPLAYDEAD: define('REPLAYDEAD', {
    args: [QUEUE, { name: 'count', kind: 'count', optional: true }],
    reply: 'integer',
    flags: { write: true },
    access: 'manage',
    group: 'broker',
    rpc: 'Broker.ReplayDead',
    client: 'replayDead',
    summary:
      'Moves up to count (default 1000) kept dead letters back into the queue as new messages; replies how many.',
    example: ['jobs'],
    since: BROKER,
  }),
  PURGEDEAD: define('PURGEDEAD', {
    args: [QUEUE],
    reply: 'integer',
    flags: { write: true },
    access: 'manage',
    group: 'broker',
    rpc: 'Broker.PurgeDead',
    client: 'purgeDead',
    summary: "Deletes the dead letters kept in a queue's own list; replies how many.",
    example: ['jobs'],
    since: BROKER,
  }),
} as const;

export type CommandName = keyof typeof commands;
export type ClientSubcommand = keyof typeof clientSubcommands;
export type CommandSubcommand = keyof typeof commandSubcommands;
export type AclSubcommand = keyof typeof aclSubcommands;
export type BackupSubcommand = keyof typeof backupSubcommands;

// Lookup without allocation: candidates by name length and first letter (GET has no other),
// compared byte by byte with ASCII case folding (a Map would need a string, and an upper-cased
// copy for lower-case spellings).
const LETTERS = 26;
const byShape: CommandSpec[][] = [];
for (const [key, spec] of Object.entries(commands) as Array<[string, CommandSpec]>) {
  if (key !== spec.name) throw new Error(`command table key ${key} differs from its name ${spec.name}`);
  const first = spec.name.charCodeAt(0);
  if (first < UPPER_A || first > UPPER_Z) throw new Error(`command name ${spec.name} must start with A-Z`);
  const shape = shapeOf(spec.name.length, first);
  byShape[shape] = [...(byShape[shape] ?? []), spec];
}

/** The index in `byShape` of names of this length whose first letter is `first` (A-Z). */
function shapeOf(length: number, first: number): number {
  return length * LETTERS + first - UPPER_A;
}

function upperAscii(code: number): number {
  return code >= LOWER_A && code <= LOWER_Z ? code - 0x20 : code;
}

function sameName(upper: string, name: Uint8Array | string, offset = 0): boolean {
  if (typeof name === 'string') {
    for (let i = 0; i < name.length; i++) {
      if (upperAscii(name.charCodeAt(i)) !== upper.charCodeAt(offset + i)) return false;
    }
  } else {
    for (let i = 0; i < name.length; i++) {
      if (upperAscii(name[i] as number) !== upper.charCodeAt(offset + i)) return false;
    }
  }
  return true;
}

/** The command named `name`, in any case (ASCII case folding only), or undefined. */
export function lookupCommand(name: Uint8Array | string): CommandSpec | undefined {
  if (typeof name !== 'string') return lookupCommandIn(name, 0, name.length);
  const first = upperAscii(name.charCodeAt(0));
  if (first < UPPER_A || first > UPPER_Z) return undefined;
  const candidates = byShape[shapeOf(name.length, first)];
  if (candidates === undefined) return undefined;
  for (const spec of candidates) {
    if (sameName(spec.name, name)) return spec;
  }
  return undefined;
}

/** `lookupCommand` of the name `bytes[start..end)`, read in place. */
export function lookupCommandIn(bytes: Uint8Array, start: number, end: number): CommandSpec | undefined {
  const first = upperAscii(bytes[start] as number);
  if (first < UPPER_A || first > UPPER_Z) return undefined;
  const candidates = byShape[shapeOf(end - start, first)];
  if (candidates === undefined) return undefined;
  for (const spec of candidates) {
    if (sameNameIn(spec.name, bytes, start, end)) return spec;
  }
  return undefined;
}

function sameNameIn(upper: string, bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (upperAscii(bytes[i] as number) !== upper.charCodeAt(i - start)) return false;
  }
  return true;
}

/** The subcommand of `spec` named `name` (`SETNAME` of `CLIENT`), in any case, or undefined. */
export function lookupSubcommand(spec: CommandSpec, name: Uint8Array | string): CommandSpec | undefined {
  if (spec.subcommands === undefined) return undefined;
  for (const sub of Object.values(spec.subcommands)) {
    const offset = spec.name.length + 1;
    if (sub.name.length - offset === name.length && sameName(sub.name, name, offset)) return sub;
  }
  return undefined;
}

/** Every command and subcommand of the table, in table order (subcommands after their command). */
export function allCommands(): CommandSpec[] {
  const all: CommandSpec[] = [];
  for (const spec of Object.values(commands) as CommandSpec[]) {
    all.push(spec);
    if (spec.subcommands !== undefined) all.push(...Object.values(spec.subcommands));
  }
  return all;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Undefined when `argsAfterName` suits the command, else a `WRONG_ARITY` error naming its syntax:
 * `'GET' takes 2 arguments (GET <type> <key>), got 1`. Options are checked by `readOptions`.
 */
export function checkArity(spec: CommandSpec, argsAfterName: number): ProtocolError | undefined {
  if (argsAfterName >= spec.minArgs && argsAfterName <= spec.maxArgs) {
    if (spec.repeat === 0 || (argsAfterName - (spec.args.length - spec.repeat)) % spec.repeat === 0) return undefined;
  }
  let takes: string;
  if (spec.repeat > 0 || spec.subcommands !== undefined) takes = `at least ${plural(spec.minArgs, 'argument')}`;
  else if (spec.minArgs === spec.maxArgs) takes = plural(spec.minArgs, 'argument');
  else takes = `${spec.minArgs} to ${spec.maxArgs} arguments`;
  if (spec.repeat > 1) takes += ` in groups of ${spec.repeat}`;
  return new ProtocolError(
    ProtocolErrorCode.WRONG_ARITY,
    `'${spec.name}' takes ${takes} (${spec.syntax}), got ${argsAfterName}`,
  );
}

/** The option of `spec` whose token is `word` (any case, ASCII folding), or undefined. */
export function lookupOption(spec: CommandSpec, word: Uint8Array): OptionSpec | undefined {
  return spec.options.find((candidate) => candidate.token.length === word.length && sameName(candidate.token, word));
}

/** What `readOptions` found: each option given, by its token, with the values after it. */
export type OptionValues = Map<string, Uint8Array[]>;

const NO_OPTIONS: OptionValues = new Map();

/**
 * Reads the keyword options of `spec` from `args[start..]` (any case), or throws a `SYNTAX`
 * error naming what is wrong: an unknown word, a missing value, an option given twice, or two
 * of one group (`NX` with `XX`). Allocates only when options are present. `end`: where they
 * stop (before the last argument, for a command whose options come before it).
 */
export function readOptions(
  spec: CommandSpec,
  args: readonly Uint8Array[],
  start: number,
  end = args.length,
): OptionValues {
  if (start >= end) return NO_OPTIONS;
  const found: OptionValues = new Map();
  const groups = new Map<string, string>();
  let i = start;
  while (i < end) {
    const word = args[i] as Uint8Array;
    const option = lookupOption(spec, word);
    if (option === undefined) {
      const expected =
        spec.options.length === 0 ? 'it takes no options' : `expected ${spec.options.map((o) => o.token).join(', ')}`;
      throw syntaxError(`'${spec.name}' has no option '${showText(word, 32)}' (${expected}): ${spec.syntax}`);
    }
    if (found.has(option.token)) throw syntaxError(`'${spec.name}': ${option.token} given twice`);
    if (option.group !== undefined) {
      const other = groups.get(option.group);
      if (other !== undefined) throw syntaxError(`'${spec.name}': ${other} and ${option.token} exclude each other`);
      groups.set(option.group, option.token);
    }
    const count = option.args?.length ?? 0;
    if (i + count >= end) {
      throw syntaxError(`'${spec.name}': ${option.token} needs ${plural(count, 'value')}: ${spec.syntax}`);
    }
    found.set(option.token, args.slice(i + 1, i + 1 + count) as Uint8Array[]);
    i += 1 + count;
  }
  return found;
}

function syntaxError(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.SYNTAX, message);
}

/** Longest part of an unknown name shown in the error message. */
const MAX_SHOWN_NAME = 64;

/**
 * An `UNKNOWN_COMMAND` error: `unknown command 'FOO'`. The name is shown as sent, truncated to
 * 64 characters (bytes), with controls, quotes and (for bytes) non-ASCII escaped as `\xHH`.
 */
export function unknownCommand(name: Uint8Array | string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.UNKNOWN_COMMAND, `unknown command '${showText(name, MAX_SHOWN_NAME)}'`);
}

/** An `UNKNOWN_COMMAND` error for a subcommand: `unknown subcommand 'FOO' of CLIENT (expected ...)`. */
export function unknownSubcommand(spec: CommandSpec, name: Uint8Array | string): ProtocolError {
  const known = Object.keys(spec.subcommands ?? {}).join(', ');
  return new ProtocolError(
    ProtocolErrorCode.UNKNOWN_COMMAND,
    `unknown subcommand '${showText(name, MAX_SHOWN_NAME)}' of ${spec.name} (expected ${known})`,
  );
}
