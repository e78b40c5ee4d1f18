import { performance } from 'node:perf_hooks';
import type { Delivery } from '@hati/broker';
import {
  allCommands,
  type CommandSpec,
  checkArity,
  lookupCommand,
  lookupCommandIn,
  lookupSubcommand,
  type ReplyKind,
  type ReplyWriter,
  type Request,
  unknownCommand,
  unknownSubcommand,
} from '@hati/protocol';
import { checkAccess } from './auth.js';
import { writeDelivery } from './broker-handlers.js';
import { describeError, ServerError } from './errors.js';
import { type Handler, type HandlerName, handlers } from './handlers.js';
import { type HotHandler, hotHandlers } from './hot-path.js';
import type { Hub } from './hub.js';
import type { CommandCounters } from './metrics.js';
import type { Session, WriteFrame } from './session.js';

/** Writes a reply that had to wait for the disk. */
export type WriteReply = WriteFrame;
export type PendingReply = Promise<WriteReply>;

/** A map reply as handlers give it: pairs in order. */
export type MapValue = ReadonlyArray<readonly [string, unknown]>;

/** Writes any plain value of a map reply: text, numbers, nested arrays. */
function writeValue(out: ReplyWriter, value: unknown): void {
  if (typeof value === 'string' || value instanceof Uint8Array) out.bulk(value);
  else if (typeof value === 'number' || typeof value === 'bigint') out.integer(value);
  else if (value === null || value === undefined) out.nil();
  else if (Array.isArray(value)) {
    out.arrayHeader(value.length);
    for (const item of value) writeValue(out, item);
  } else out.bulk(JSON.stringify(value));
}

/**
 * Encodes a handler's value as its command's reply kind, in the writer's protocol version
 * (see ReplyKind in @hati/protocol for each shape).
 */
export function writeReply(kind: ReplyKind, value: unknown, out: ReplyWriter): void {
  switch (kind) {
    case 'bulk':
      if (value === undefined || value === null) out.nil();
      else out.bulk(value as Buffer | string);
      return;
    case 'status':
      if (value === 'OK') out.ok();
      else if (typeof value === 'string') out.simple(value);
      // PING in RESP2 pub/sub mode answers an array, as in Redis.
      else if (Array.isArray(value)) writeValue(out, value);
      else out.bulk(value as Buffer);
      return;
    case 'stored':
      if (value === true) out.ok();
      else out.nil();
      return;
    case 'integer':
      out.integer(value as number | bigint);
      return;
    case 'boolean':
      out.integer(value === true ? 1 : 0);
      return;
    case 'text':
      out.verbatim(value as string);
      return;
    case 'json':
      out.bulk(JSON.stringify(value));
      return;
    case 'bulks': {
      const values = value as Array<Buffer | string | undefined>;
      out.arrayHeader(values.length);
      for (const item of values) {
        if (item === undefined) out.nil();
        else out.bulk(item);
      }
      return;
    }
    case 'keys': {
      const keys = value as Buffer[];
      out.arrayHeader(keys.length);
      for (const key of keys) out.bulk(key);
      return;
    }
    case 'scan': {
      const { cursor, keys } = value as { cursor: string; keys: Buffer[] };
      out.arrayHeader(2);
      out.bulk(cursor);
      out.arrayHeader(keys.length);
      for (const key of keys) out.bulk(key);
      return;
    }
    case 'map': {
      const pairs = value as MapValue;
      out.mapHeader(pairs.length);
      for (const [name, item] of pairs) {
        out.bulk(name);
        writeValue(out, item);
      }
      return;
    }
    case 'deliveries': {
      const deliveries = value as Delivery[];
      out.arrayHeader(deliveries.length);
      for (const delivery of deliveries) writeDelivery(out, delivery);
      return;
    }
    case 'document':
      if (out.resp3) writeNested(out, value);
      else out.bulk(JSON.stringify(value));
      return;
    case 'custom':
      (value as WriteFrame)(out);
      return;
  }
}

/** A JSON-like value in RESP3: objects as maps, arrays, integers, doubles, booleans, null. */
function writeNested(out: ReplyWriter, value: unknown): void {
  if (value === null || value === undefined) out.nil();
  else if (typeof value === 'string') out.bulk(value);
  else if (typeof value === 'boolean') out.boolean(value);
  else if (typeof value === 'number') {
    if (Number.isInteger(value)) out.integer(value);
    else out.double(value);
  } else if (Array.isArray(value)) {
    out.arrayHeader(value.length);
    for (const item of value) writeNested(out, item);
  } else {
    const entries = Object.entries(value as Record<string, unknown>);
    out.mapHeader(entries.length);
    for (const [name, item] of entries) {
      out.bulk(name);
      writeNested(out, item);
    }
  }
}

function isPromise(value: unknown): value is Promise<unknown> {
  return value instanceof Promise;
}

/** A command's handler, its hot-path handler if it has one, and its row in the command counters. */
interface Entry {
  readonly handler: Handler;
  readonly hot: HotHandler | undefined;
  readonly row: number;
}

/**
 * Runs a command for every front end (TCP, UNIX socket, JSON-RPC): finds it in the table,
 * checks its arity, applies the checks that hold for every command (shutting down, pub/sub
 * mode, authentication and rights; later cluster redirects), and calls its handler with the caller's
 * session. Memory commands stay synchronous: no promise and no closure per call.
 */
export class Dispatcher {
  readonly #hub: Hub;
  readonly #entries = new Map<CommandSpec, Entry>();
  readonly #counters: CommandCounters;
  /** The command answered at once whose time runs until the next command or `settle()`; -1: none. */
  #timedRow = -1;
  #timedSince = 0;
  /** The last command run and its entry: a pipeline often repeats one command, and a Map lookup is a hash. */
  #lastSpec: CommandSpec | undefined = undefined;
  #lastEntry: Entry | undefined = undefined;

  constructor(hub: Hub) {
    this.#hub = hub;
    this.#counters = hub.stats.commands;
    for (const spec of allCommands()) {
      const handler = handlers[spec.name as HandlerName];
      if (handler === undefined) throw new Error(`no handler for ${spec.name}`);
      const hot = hotHandlers[spec.name as keyof typeof hotHandlers];
      this.#entries.set(spec, { handler, hot, row: this.#counters.rowOf(spec) });
    }
  }

  /**
   * TCP and UNIX socket: runs one request (argument 0 is the command's name). Writes the reply to
   * `out` and returns undefined, or returns a promise of the function that writes it. Never
   * throws: every failure becomes an error reply. Counts the command, its result and its latency
   * in the command counters.
   *
   * A command with a hot-path handler (see hot-path.ts) runs that first; it reads the arguments
   * in place and answers the plain forms, and anything else goes to the command's handler with
   * the arguments as Buffers.
   *
   * One clock read per command: a command answered at once ends when the next one starts (the
   * commands of one input chunk run back to back), or when the connection calls `settle()` at
   * the end of the chunk. A clock read costs 40-75 ns, a memory SET about 3 µs end to end:
   * reading it on both sides of each command cost 2-3 times what one read does. A command that
   * waits for the disk is timed until the disk answered.
   */
  execute(session: Session, request: Request, out: ReplyWriter): PendingReply | undefined {
    const hub = this.#hub;
    hub.stats.commandsProcessed++;
    const counters = this.#counters;
    const start = performance.now();
    if (this.#timedRow !== -1) counters.time(this.#timedRow, start - this.#timedSince);
    // Until the command is known, a failure counts as the name's (arity) or as `unknown`.
    let row = -1;
    try {
      const spec = this.#resolve(request);
      const entry = this.#entryOf(spec);
      row = entry.row;
      this.#admit(spec, session, request);
      const hot = entry.hot === undefined ? false : entry.hot(hub, request, out);
      if (hot === true) {
        this.#timedRow = row;
        this.#timedSince = start;
        return undefined;
      }
      const value = hot === false ? entry.handler(hub, session, request.args()) : hot;
      if (isPromise(value)) {
        this.#timedRow = -1;
        const kind = spec.reply;
        const pendingRow = row;
        return value.then(
          (result) => {
            counters.time(pendingRow, performance.now() - start);
            return (writer: ReplyWriter) => writeReply(kind, result, writer);
          },
          (err: unknown) => {
            const { code, message } = describeError(err, this.#hub.logger);
            counters.time(pendingRow, performance.now() - start);
            counters.failed(pendingRow, code);
            return (writer: ReplyWriter) => writer.error(code, message);
          },
        );
      }
      writeReply(spec.reply, value, out);
      if (spec.flags.closes === true) session.end();
    } catch (err) {
      const { code, message } = describeError(err, this.#hub.logger);
      if (row === -1) row = this.#rowOfName(request.length === 0 ? undefined : request.arg(0));
      counters.failed(row, code);
      out.error(code, message);
    }
    this.#timedRow = row;
    this.#timedSince = start;
    return undefined;
  }

  /**
   * Ends the timing of the last command answered at once. The TCP/UNIX connection calls it after
   * running the commands of an input chunk, before anything else can run.
   */
  settle(): void {
    if (this.#timedRow === -1) return;
    this.#counters.time(this.#timedRow, performance.now() - this.#timedSince);
    this.#timedRow = -1;
  }

  /** The row of a command name that failed before it was resolved (unknown, or a wrong arity). */
  #rowOfName(name: Buffer | undefined): number {
    const spec = name === undefined ? undefined : lookupCommand(name);
    return spec === undefined ? this.#counters.unknown : this.#entryOf(spec).row;
  }

  /** JSON-RPC: runs a command already resolved from its method; its value, or a promise of it. Throws on failure. */
  call(spec: CommandSpec, session: Session, args: Buffer[]): unknown {
    const arityError = checkArity(spec, args.length - (spec.name.includes(' ') ? 2 : 1));
    if (arityError !== undefined) throw arityError;
    this.#admit(spec, session, args);
    return this.#entryOf(spec).handler(this.#hub, session, args);
  }

  #entryOf(spec: CommandSpec): Entry {
    if (spec === this.#lastSpec) return this.#lastEntry as Entry;
    const entry = this.#entries.get(spec) as Entry;
    this.#lastSpec = spec;
    this.#lastEntry = entry;
    return entry;
  }

  /** The spec a request names (a subcommand's, for CLIENT SETNAME), with its arity checked. */
  #resolve(request: Request): CommandSpec {
    const data = request.data;
    const spec =
      data === undefined ? lookupCommand(request.arg(0)) : lookupCommandIn(data, request.start(0), request.end(0));
    if (spec === undefined) throw unknownCommand(request.arg(0));
    const count = request.length;
    const arityError = checkArity(spec, count - 1);
    if (arityError !== undefined) throw arityError;
    if (spec.subcommands === undefined || count === 1) return spec;
    const sub = lookupSubcommand(spec, request.arg(1));
    if (sub === undefined) throw unknownSubcommand(spec, request.arg(1));
    const subArity = checkArity(sub, count - 2);
    if (subArity !== undefined) throw subArity;
    return sub;
  }

  /**
   * The checks in front of every command: shutting down, pub/sub mode, authentication, and a
   * restricted user's rights (which read the arguments).
   */
  #admit(spec: CommandSpec, session: Session, request: Request | Buffer[]): void {
    if (this.#hub.closing) throw new ServerError('SHUTTING_DOWN', 'the server is shutting down');
    if (session.subscriptions !== 0 && session.protocol === 2 && spec.flags.pubsub !== true) {
      throw new ServerError(
        'PUBSUB_ONLY',
        `'${spec.name}' cannot run on a RESP2 connection with subscriptions: only SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PING and QUIT can (send HELLO 3 before subscribing to run any command alongside)`,
      );
    }
    const user = session.user;
    if (user === null) {
      if (spec.access !== 'public') {
        throw new ServerError(
          'NOAUTH',
          `authentication required: send AUTH <password> or AUTH <username> <password> first`,
        );
      }
    } else if (!user.all) {
      checkAccess(user, spec, Array.isArray(request) ? request : request.args());
    }
    session.lastCommand = spec.name;
  }
}
