import type { Delivery } from '@hati/broker';
import {
  allCommands,
  type CommandSpec,
  checkArity,
  lookupCommand,
  lookupSubcommand,
  type ReplyKind,
  type ReplyWriter,
  unknownCommand,
  unknownSubcommand,
} from '@hati/protocol';
import { checkAccess } from './auth.js';
import { writeDelivery } from './broker-handlers.js';
import { describeError, ServerError } from './errors.js';
import { type Handler, type HandlerName, handlers } from './handlers.js';
import type { Hub } from './hub.js';
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

/**
 * Runs a command for every front end (TCP, UNIX socket, JSON-RPC): finds it in the table,
 * checks its arity, applies the checks that hold for every command (shutting down, pub/sub
 * mode, authentication and rights; later cluster redirects), and calls its handler with the caller's
 * session. Memory commands stay synchronous: no promise and no closure per call.
 */
export class Dispatcher {
  readonly #hub: Hub;
  readonly #handlers = new Map<CommandSpec, Handler>();
  readonly #errorReply: (err: unknown) => WriteReply;

  constructor(hub: Hub) {
    this.#hub = hub;
    for (const spec of allCommands()) {
      const handler = handlers[spec.name as HandlerName];
      if (handler === undefined) throw new Error(`no handler for ${spec.name}`);
      this.#handlers.set(spec, handler);
    }
    this.#errorReply = (err) => {
      const { code, message } = describeError(err, hub.logger);
      return (out) => out.error(code, message);
    };
  }

  /**
   * TCP and UNIX socket: runs one command (`args[0]` is its name). Writes the reply to `out` and
   * returns undefined, or returns a promise of the function that writes it. Never throws: every
   * failure becomes an error reply.
   */
  execute(session: Session, args: Buffer[], out: ReplyWriter): PendingReply | undefined {
    this.#hub.stats.commandsProcessed++;
    try {
      const spec = this.#resolve(args);
      const value = this.#run(spec, session, args);
      if (isPromise(value)) {
        const kind = spec.reply;
        return value.then((result) => (writer: ReplyWriter) => writeReply(kind, result, writer), this.#errorReply);
      }
      writeReply(spec.reply, value, out);
      if (spec.flags.closes === true) session.end();
    } catch (err) {
      const { code, message } = describeError(err, this.#hub.logger);
      out.error(code, message);
    }
    return undefined;
  }

  /** JSON-RPC: runs a command already resolved from its method; its value, or a promise of it. Throws on failure. */
  call(spec: CommandSpec, session: Session, args: Buffer[]): unknown {
    const arityError = checkArity(spec, args.length - (spec.name.includes(' ') ? 2 : 1));
    if (arityError !== undefined) throw arityError;
    return this.#run(spec, session, args);
  }

  /** The spec a request names (a subcommand's, for CLIENT SETNAME), with its arity checked. */
  #resolve(args: Buffer[]): CommandSpec {
    const spec = lookupCommand(args[0] as Buffer);
    if (spec === undefined) throw unknownCommand(args[0] as Buffer);
    const arityError = checkArity(spec, args.length - 1);
    if (arityError !== undefined) throw arityError;
    if (spec.subcommands === undefined || args.length === 1) return spec;
    const sub = lookupSubcommand(spec, args[1] as Buffer);
    if (sub === undefined) throw unknownSubcommand(spec, args[1] as Buffer);
    const subArity = checkArity(sub, args.length - 2);
    if (subArity !== undefined) throw subArity;
    return sub;
  }

  /** The checks in front of every command, then its handler. */
  #run(spec: CommandSpec, session: Session, args: Buffer[]): unknown {
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
      checkAccess(user, spec, args);
    }
    session.lastCommand = spec.name;
    return (this.#handlers.get(spec) as Handler)(this.#hub, session, args);
  }
}
