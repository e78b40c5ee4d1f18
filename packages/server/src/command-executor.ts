import { checkArity, lookupCommand, type ReplyWriter, unknownCommand } from '@hati/protocol';
import { StorageError, type StorageManager } from '@hati/storage';
import { describeError, ServerError } from './errors.js';
import { infoText } from './info.js';
import type { Logger } from './logger.js';
import type { ServerStats, StatsSnapshot } from './stats.js';

/** Writes a reply that had to wait for the disk. */
export type WriteReply = (out: ReplyWriter) => void;
export type PendingReply = Promise<WriteReply>;

const writeOk: WriteReply = (out) => out.ok();
const writeOne: WriteReply = (out) => out.integer(1);
const writeZero: WriteReply = (out) => out.integer(0);
const writeNil: WriteReply = (out) => out.nil();
const okAfter = () => writeOk;
const booleanReply = (value: boolean) => (value ? writeOne : writeZero);
const bulkReply = (value: Buffer | undefined): WriteReply =>
  value === undefined ? writeNil : (out) => out.bulk(value);
const integerReply =
  (value: number): WriteReply =>
  (out) =>
    out.integer(value);

const MEMORY = Buffer.from('memory');
const HDD = Buffer.from('hdd');

/** ASCII case-insensitive comparison with a lower-case constant, without allocating. */
function isWord(arg: Buffer, lower: Buffer): boolean {
  if (arg.length !== lower.length) return false;
  for (let i = 0; i < arg.length; i++) {
    if (((arg[i] as number) | 0x20) !== lower[i]) return false;
  }
  return true;
}

function storageTypeError(arg: Buffer): StorageError {
  return new StorageError(
    'STORAGE_TYPE_INVALID',
    `unknown storage type '${arg.toString('utf8', 0, 64)}' (expected memory or hdd)`,
  );
}

/** A ttl from its decimal digits: a non-negative safe integer, or a TTL_INVALID error. */
function parseTtl(arg: Buffer): number {
  let n = 0;
  if (arg.length === 0 || arg.length > 16) n = -1;
  for (let i = 0; i < arg.length && n >= 0; i++) {
    const digit = (arg[i] as number) - 0x30;
    n = digit < 0 || digit > 9 ? -1 : n * 10 + digit;
  }
  if (n < 0 || !Number.isSafeInteger(n)) {
    throw new StorageError(
      'TTL_INVALID',
      `ttl must be a non-negative integer number of milliseconds, got '${arg.toString('utf8', 0, 64)}'`,
    );
  }
  return n;
}

/**
 * Runs the commands of the wire protocol against the storage. Memory commands answer
 * synchronously into the caller's writer; hdd commands return a promise of their reply, and
 * the connection keeps replies in request order.
 */
export class CommandExecutor {
  readonly #storage: StorageManager;
  readonly #stats: ServerStats;
  readonly #logger: Logger;
  /** The reply to a failed disk operation; made once, not per request. */
  readonly #errorReply: (err: unknown) => WriteReply;

  constructor(storage: StorageManager, stats: ServerStats, logger: Logger) {
    this.#storage = storage;
    this.#stats = stats;
    this.#logger = logger;
    this.#errorReply = (err) => {
      const { code, message } = describeError(err, logger);
      return (out) => out.error(code, message);
    };
  }

  /**
   * Runs one command (`args[0]` is its name). Writes the reply to `out` and returns undefined,
   * or returns a promise of the function that writes it. Never throws: every failure becomes
   * an error reply. QUIT is the connection's to handle.
   */
  execute(args: Buffer[], out: ReplyWriter): PendingReply | undefined {
    this.#stats.commandsProcessed++;
    try {
      return this.#run(args, out);
    } catch (err) {
      const { code, message } = describeError(err, this.#logger);
      out.error(code, message);
      return undefined;
    }
  }

  /** STATS and INFO: the server's statistics, rendered as a bulk string. */
  #statsReply(render: (stats: StatsSnapshot) => string): PendingReply {
    return this.#stats.snapshot(this.#storage).then((stats) => {
      const text = render(stats);
      return (out: ReplyWriter) => out.bulk(text);
    }, this.#errorReply);
  }

  #run(args: Buffer[], out: ReplyWriter): PendingReply | undefined {
    const spec = lookupCommand(args[0] as Buffer);
    if (spec === undefined) throw unknownCommand(args[0] as Buffer);
    const arityError = checkArity(spec, args.length - 1);
    if (arityError !== undefined) throw arityError;
    const storage = this.#storage;
    const errorReply = this.#errorReply;
    // One switch with the storage type tested in each case, on purpose: a table of per-engine
    // handler functions read the same but made an in-process GET 1.7x slower (a megamorphic
    // call per command).
    switch (spec.name) {
      case 'GET': {
        const type = args[1] as Buffer;
        if (isWord(type, MEMORY)) {
          const value = storage.memory.getStored(args[2] as Buffer);
          if (value === undefined) out.nil();
          else out.bulk(value);
          return undefined;
        }
        if (isWord(type, HDD)) return storage.hdd.getBuffer(args[2] as Buffer).then(bulkReply, errorReply);
        throw storageTypeError(type);
      }
      case 'SET': {
        const type = args[1] as Buffer;
        const ttl = parseTtl(args[2] as Buffer);
        if (isWord(type, MEMORY)) {
          storage.memory.set(args[3] as Buffer, args[4] as Buffer, ttl);
          out.ok();
          return undefined;
        }
        if (isWord(type, HDD))
          return storage.hdd.set(args[3] as Buffer, args[4] as Buffer, ttl).then(okAfter, errorReply);
        throw storageTypeError(type);
      }
      case 'HAS': {
        const type = args[1] as Buffer;
        if (isWord(type, MEMORY)) {
          out.integer(storage.memory.has(args[2] as Buffer) ? 1 : 0);
          return undefined;
        }
        if (isWord(type, HDD)) return storage.hdd.has(args[2] as Buffer).then(booleanReply, errorReply);
        throw storageTypeError(type);
      }
      case 'DELETE': {
        const type = args[1] as Buffer;
        if (isWord(type, MEMORY)) {
          out.integer(storage.memory.delete(args[2] as Buffer) ? 1 : 0);
          return undefined;
        }
        if (isWord(type, HDD)) return storage.hdd.delete(args[2] as Buffer).then(booleanReply, errorReply);
        throw storageTypeError(type);
      }
      case 'COUNT': {
        const type = args[1] as Buffer;
        if (isWord(type, MEMORY)) {
          out.integer(storage.memory.count());
          return undefined;
        }
        if (isWord(type, HDD)) return storage.hdd.count().then(integerReply, errorReply);
        throw storageTypeError(type);
      }
      case 'FLUSHALL': {
        const type = args[1] as Buffer;
        if (isWord(type, MEMORY)) {
          storage.memory.flushAll();
          out.ok();
          return undefined;
        }
        if (isWord(type, HDD)) return storage.hdd.flushAll().then(okAfter, errorReply);
        throw storageTypeError(type);
      }
      case 'PING':
        if (args.length > 1) out.bulk(args[1] as Buffer);
        else out.simple('PONG');
        return undefined;
      case 'ECHO':
        out.bulk(args[1] as Buffer);
        return undefined;
      case 'INFO': {
        const section = args.length > 1 ? (args[1] as Buffer).toString('latin1') : undefined;
        return this.#statsReply((stats) => infoText(stats, section));
      }
      case 'SELECT':
        // One database: the storage type names the keyspace. Clients configured with db 0 send this.
        if ((args[1] as Buffer).length !== 1 || (args[1] as Buffer)[0] !== 0x30) {
          throw new ServerError(
            'DB_INDEX_INVALID',
            `Hati has only database 0 (got '${(args[1] as Buffer).toString('utf8', 0, 32)}'); memory and hdd are its keyspaces`,
          );
        }
        out.ok();
        return undefined;
      case 'STATS':
        return this.#statsReply((stats) => JSON.stringify(stats));
      default:
        // A command in the table that this server does not run (QUIT is the connection's).
        throw unknownCommand(args[0] as Buffer);
    }
  }
}
