// The command table: each command is described once. The server validates arity and
// dispatches with it; the inline parser reads `inlineRest` from it; the client derives its
// typed methods from it (the literal types of each entry are kept for that).

import { LOWER_A, LOWER_Z, showText, UPPER_A, UPPER_Z } from './bytes.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';

/**
 * What an argument holds, so the server knows how to validate it and the client how to type it:
 * `storageType` (`memory` or `hdd`, any case), `ttl` (whole milliseconds, 0 = no expiry), `key`
 * and `value` (binary-safe), `text` (free text).
 */
export type ArgKind = 'storageType' | 'ttl' | 'key' | 'value' | 'text';

/** The shape of a reply: `boolean` is `:1`/`:0`, `json` a bulk string holding JSON. */
export type ReplyKind = 'status' | 'bulk' | 'integer' | 'boolean' | 'json';

export interface ArgSpec {
  readonly name: string;
  readonly kind: ArgKind;
  /** Only trailing arguments may be optional. */
  readonly optional?: boolean;
}

export interface CommandSpec {
  /** Upper case, ASCII letters only. */
  readonly name: string;
  /** The arguments after the command name. */
  readonly args: readonly ArgSpec[];
  /** Fewest arguments after the name (the non-optional ones). */
  readonly minArgs: number;
  /** Most arguments after the name. */
  readonly maxArgs: number;
  /**
   * Inline form only: index in `args` of the argument that takes the rest of the line verbatim
   * (spaces kept). Always the last argument.
   */
  readonly inlineRest?: number;
  readonly reply: ReplyKind;
  /** One line, for docs and help. */
  readonly summary: string;
  /** For example `SET <type> <ttl> <key> <value>`; optional arguments in brackets. */
  readonly syntax: string;
}

/** A `CommandSpec` keeping the literal types of its name, arguments and reply kind. */
export type TypedCommandSpec<N extends string, A extends readonly ArgSpec[], R extends ReplyKind> = CommandSpec & {
  readonly name: N;
  readonly args: A;
  readonly reply: R;
};

interface CommandDefinition<A extends readonly ArgSpec[], R extends ReplyKind> {
  readonly args: A;
  readonly reply: R;
  readonly summary: string;
  readonly inlineRest?: number;
}

/** Builds one table entry, deriving arity and syntax from the argument list. */
function define<const N extends string, const A extends readonly ArgSpec[], const R extends ReplyKind>(
  name: N,
  definition: CommandDefinition<A, R>,
): TypedCommandSpec<N, A, R> {
  const { args, reply, summary, inlineRest } = definition;
  if (!/^[A-Z]+$/.test(name)) throw new Error(`command name ${name} must be upper-case ASCII letters`);
  const firstOptional = args.findIndex((arg) => arg.optional === true);
  const minArgs = firstOptional === -1 ? args.length : firstOptional;
  if (args.slice(minArgs).some((arg) => arg.optional !== true)) {
    throw new Error(`${name}: only trailing arguments may be optional`);
  }
  if (inlineRest !== undefined && inlineRest !== args.length - 1) {
    throw new Error(`${name}: inlineRest must be the index of the last argument`);
  }
  const syntax = [name, ...args.map((arg) => (arg.optional === true ? `[${arg.name}]` : `<${arg.name}>`))].join(' ');
  const spec = { name, args, minArgs, maxArgs: args.length, reply, summary, syntax };
  return Object.freeze(inlineRest === undefined ? spec : { ...spec, inlineRest });
}

const TYPE = { name: 'type', kind: 'storageType' } as const;
const TTL = { name: 'ttl', kind: 'ttl' } as const;
const KEY = { name: 'key', kind: 'key' } as const;
const VALUE = { name: 'value', kind: 'value' } as const;

/** Every command, keyed by its upper-case name. */
export const commands = {
  SET: define('SET', {
    args: [TYPE, TTL, KEY, VALUE],
    inlineRest: 3,
    reply: 'status',
    summary: 'Stores a value under a key, expiring after ttl ms (0 = never); replies OK.',
  }),
  GET: define('GET', {
    args: [TYPE, KEY],
    reply: 'bulk',
    summary: "Returns a key's value, or null when it is missing or expired.",
  }),
  HAS: define('HAS', {
    args: [TYPE, KEY],
    reply: 'boolean',
    summary: 'Replies 1 when the key is live, else 0.',
  }),
  DELETE: define('DELETE', {
    args: [TYPE, KEY],
    reply: 'boolean',
    summary: 'Removes a key; replies 1 if a live key was removed, else 0.',
  }),
  FLUSHALL: define('FLUSHALL', {
    args: [TYPE],
    reply: 'status',
    summary: 'Removes every key of one storage type; replies OK.',
  }),
  COUNT: define('COUNT', {
    args: [TYPE],
    reply: 'integer',
    summary: 'Replies the number of live keys of one storage type.',
  }),
  PING: define('PING', {
    args: [{ name: 'message', kind: 'text', optional: true }],
    reply: 'status',
    summary: 'Replies PONG, or the message (as a bulk string) when one is given.',
  }),
  QUIT: define('QUIT', {
    args: [],
    reply: 'status',
    summary: 'Replies OK, then the server closes the connection.',
  }),
  STATS: define('STATS', {
    args: [],
    reply: 'json',
    summary: 'Replies server statistics as a JSON document.',
  }),
  ECHO: define('ECHO', {
    args: [{ name: 'message', kind: 'text' }],
    reply: 'bulk',
    summary: 'Replies the message (redis-cli --pipe ends its input with it).',
  }),
  INFO: define('INFO', {
    args: [{ name: 'section', kind: 'text', optional: true }],
    reply: 'bulk',
    summary: "Replies server information in Redis's INFO text format (Redis clients read it when they connect).",
  }),
  SELECT: define('SELECT', {
    args: [{ name: 'index', kind: 'text' }],
    reply: 'status',
    summary: 'Replies OK for database 0, the only one (memory and hdd are the keyspaces).',
  }),
} as const;

export type CommandName = keyof typeof commands;

// Lookup without allocation: candidates by name length, compared byte by byte with ASCII case
// folding (a Map would need a string, and an upper-cased copy for lower-case spellings).
const byLength: CommandSpec[][] = [];
for (const [key, spec] of Object.entries(commands) as Array<[string, CommandSpec]>) {
  if (key !== spec.name) throw new Error(`command table key ${key} differs from its name ${spec.name}`);
  const list = byLength[spec.name.length] ?? [];
  list.push(spec);
  byLength[spec.name.length] = list;
}

function upperAscii(code: number): number {
  return code >= LOWER_A && code <= LOWER_Z ? code - 0x20 : code;
}

function sameName(upper: string, name: Uint8Array | string): boolean {
  if (typeof name === 'string') {
    for (let i = 0; i < upper.length; i++) {
      if (upperAscii(name.charCodeAt(i)) !== upper.charCodeAt(i)) return false;
    }
  } else {
    for (let i = 0; i < upper.length; i++) {
      if (upperAscii(name[i] as number) !== upper.charCodeAt(i)) return false;
    }
  }
  return true;
}

/** The command named `name`, in any case (ASCII case folding only), or undefined. */
export function lookupCommand(name: Uint8Array | string): CommandSpec | undefined {
  const candidates = byLength[name.length];
  if (candidates === undefined) return undefined;
  // Most names arrive upper case: checking the first byte rules out most candidates at once.
  const first = upperAscii(typeof name === 'string' ? name.charCodeAt(0) : (name[0] as number));
  if (first < UPPER_A || first > UPPER_Z) return undefined;
  for (const spec of candidates) {
    if (spec.name.charCodeAt(0) === first && sameName(spec.name, name)) return spec;
  }
  return undefined;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Undefined when `argsAfterName` suits the command, else a `WRONG_ARITY` error naming its syntax:
 * `'GET' takes 2 arguments (GET <type> <key>), got 1`.
 */
export function checkArity(spec: CommandSpec, argsAfterName: number): ProtocolError | undefined {
  if (argsAfterName >= spec.minArgs && argsAfterName <= spec.maxArgs) return undefined;
  const takes =
    spec.minArgs === spec.maxArgs ? plural(spec.minArgs, 'argument') : `${spec.minArgs} to ${spec.maxArgs} arguments`;
  return new ProtocolError(
    ProtocolErrorCode.WRONG_ARITY,
    `'${spec.name}' takes ${takes} (${spec.syntax}), got ${argsAfterName}`,
  );
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
