// What each command of the table does. Handlers read their arguments with the parsers of
// arguments.ts and return a value of their command's reply kind (or a promise of it, when the
// disk answers); the dispatcher encodes it for the front end that asked. The memory engine
// answers synchronously, so memory commands make no promise.
import {
  type AclSubcommand,
  type BackupSubcommand,
  type ClientSubcommand,
  type CommandName,
  type CommandSpec,
  type CommandSubcommand,
  commands,
  lookupCommand,
  readOptions,
} from '@hati/protocol';
import type { HddEngine, MemoryEngine } from '@hati/storage';
import { countArg, cursorArg, engineArg, integerArg, isStorageType, nameArg, ttlArg } from './arguments.js';
import { MAX_CREDENTIAL, reloadUsers } from './auth.js';
import { backupHandlers } from './backup.js';
import { brokerHandlers } from './broker-handlers.js';
import { commandDocs, commandInfo } from './command-docs.js';
import type { MapValue } from './dispatcher.js';
import { ServerError } from './errors.js';
import type { Hub } from './hub.js';
import { infoText } from './info.js';
import { type SubscriptionKind, writeConfirmation } from './pubsub.js';
import type { Session, WriteFrame } from './session.js';
import { HATI_VERSION, REDIS_COMPATIBLE_VERSION } from './version.js';

export type Handler = (hub: Hub, session: Session, args: Buffer[]) => unknown;

/** Every command and subcommand name of the table. */
export type HandlerName =
  | CommandName
  | `CLIENT ${ClientSubcommand}`
  | `COMMAND ${CommandSubcommand}`
  | `ACL ${AclSubcommand}`
  | `BACKUP ${BackupSubcommand}`;

const OK = 'OK';
const isMemory = (engine: MemoryEngine | HddEngine): engine is MemoryEngine => engine.type === 'memory';

/** The hdd engine's expired keys, published once someone listens; wired by the server. */
export function publishExpiries(hub: Hub): void {
  hub.storage.memory.onExpired = (key) => hub.pubsub.keyEvent('memory', 'expired', key);
  hub.storage.hdd.onExpired = (key) => hub.pubsub.keyEvent('hdd', 'expired', key);
}

function scan(hub: Hub, args: Buffer[]): unknown {
  // Hati's form names the storage type first; Redis's (SCAN <cursor> ... [TYPE <type>], as
  // redis-cli --scan sends it) starts with the cursor.
  const hatiForm = isStorageType(args[1] as Buffer);
  const spec = commands.SCAN;
  const options = readOptions(spec, args, hatiForm ? 3 : 2);
  const typeOption = options.get('TYPE')?.[0] as Buffer | undefined;
  if (hatiForm && typeOption !== undefined) {
    throw new ServerError('ARGUMENT_INVALID', 'SCAN <type> <cursor> takes no TYPE option: the type is named first');
  }
  const engine = engineArg(hub.storage, hatiForm ? (args[1] as Buffer) : (typeOption ?? Buffer.from('memory')));
  const cursorBytes = hatiForm ? args[2] : args[1];
  if (cursorBytes === undefined) throw new ServerError('ARGUMENT_INVALID', `SCAN needs a cursor: ${spec.syntax}`);
  const match = options.get('MATCH')?.[0];
  const count = options.get('COUNT')?.[0];
  return engine.scan(cursorArg(cursorBytes as Buffer), {
    ...(match !== undefined && { match }),
    ...(count !== undefined && { count: countArg(count as Buffer, 'COUNT', 1, 100_000) }),
  });
}

function subscribe(hub: Hub, session: Session, args: Buffer[], kind: SubscriptionKind): WriteFrame {
  const pubsub = hub.pubsub;
  const confirmations: Array<[Buffer | null, number]> = [];
  if (args.length === 1) {
    // UNSUBSCRIBE / PUNSUBSCRIBE without arguments: from every one (one frame when there are none).
    const names = kind === 'unsubscribe' ? [...session.channels] : [...session.patterns.keys()];
    for (const name of names) {
      const bytes = Buffer.from(name, 'latin1');
      const count = kind === 'unsubscribe' ? pubsub.unsubscribe(session, bytes) : pubsub.punsubscribe(session, bytes);
      confirmations.push([bytes, count]);
    }
    if (confirmations.length === 0) confirmations.push([null, session.subscriptions]);
  } else {
    for (const name of args.slice(1)) {
      const count =
        kind === 'subscribe'
          ? pubsub.subscribe(session, name)
          : kind === 'psubscribe'
            ? pubsub.psubscribe(session, name)
            : kind === 'unsubscribe'
              ? pubsub.unsubscribe(session, name)
              : pubsub.punsubscribe(session, name);
      confirmations.push([name, count]);
    }
  }
  return (out) => {
    for (const [name, count] of confirmations) writeConfirmation(out, kind, name, count);
  };
}

/** A SET's events, as Redis publishes them: `set`, then `expire` when it has a ttl. */
export function setEvents(pubsub: Hub['pubsub'], type: 'memory' | 'hdd', key: Buffer, ttl: number): void {
  pubsub.keyEvent(type, 'set', key);
  if (ttl !== 0) pubsub.keyEvent(type, 'expire', key);
}

function storageName(engine: MemoryEngine | HddEngine): 'memory' | 'hdd' {
  return engine.type;
}

/**
 * The handler of every command and subcommand. Typed as a record of every name, so a command
 * added to the table without a handler does not compile (and a test runs each one).
 */
export const handlers: Record<HandlerName, Handler> = {
  ...brokerHandlers,
  ...backupHandlers,
  GET(hub, _session, args) {
    // Memory answers at once, hdd with a promise; both give the bytes as a Buffer.
    return engineArg(hub.storage, args[1] as Buffer).getBuffer(args[2] as Buffer);
  },
  SET(hub, _session, args) {
    const engine = engineArg(hub.storage, args[1] as Buffer);
    const ttl = ttlArg(args[2] as Buffer);
    const key = args[3] as Buffer;
    const value = args[4] as Buffer;
    const pubsub = hub.pubsub;
    if (args.length === 5) {
      if (isMemory(engine)) {
        engine.set(key, value, ttl);
        setEvents(pubsub, 'memory', key, ttl);
        return true;
      }
      return engine.set(key, value, ttl).then(() => {
        setEvents(pubsub, 'hdd', key, ttl);
        return true;
      });
    }
    const options = readOptions(commands.SET, args, 5);
    const condition = options.has('NX') ? 'absent' : 'present';
    const stored = engine.setIf(key, value, ttl, condition);
    const after = (done: boolean) => {
      if (done) setEvents(pubsub, storageName(engine), key, ttl);
      return done;
    };
    return stored instanceof Promise ? stored.then(after) : after(stored);
  },
  HAS(hub, _session, args) {
    return engineArg(hub.storage, args[1] as Buffer).has(args[2] as Buffer);
  },
  DELETE(hub, _session, args) {
    const engine = engineArg(hub.storage, args[1] as Buffer);
    const key = args[2] as Buffer;
    const after = (removed: boolean) => {
      if (removed) hub.pubsub.keyEvent(storageName(engine), 'del', key);
      return removed;
    };
    const removed = engine.delete(key);
    return removed instanceof Promise ? removed.then(after) : after(removed);
  },
  FLUSHALL(hub, _session, args) {
    const engine = engineArg(hub.storage, args[1] as Buffer);
    const after = () => {
      hub.pubsub.flushed(storageName(engine));
      return OK;
    };
    const done = engine.flushAll();
    return done instanceof Promise ? done.then(after) : after();
  },
  COUNT(hub, _session, args) {
    return engineArg(hub.storage, args[1] as Buffer).count();
  },
  TTL(hub, _session, args) {
    // Redis's PTTL: -2 missing, -1 no expiry, else the remaining ms.
    const toReply = (ms: number | undefined) => (ms === undefined ? -2 : ms === 0 ? -1 : ms);
    const ttl = engineArg(hub.storage, args[1] as Buffer).ttl(args[2] as Buffer);
    return ttl instanceof Promise ? ttl.then(toReply) : toReply(ttl);
  },
  EXPIRE(hub, _session, args) {
    const engine = engineArg(hub.storage, args[1] as Buffer);
    const key = args[2] as Buffer;
    const ttl = ttlArg(args[3] as Buffer);
    const after = (done: boolean) => {
      // As Redis: removing the expiry is `persist`.
      if (done) hub.pubsub.keyEvent(storageName(engine), ttl === 0 ? 'persist' : 'expire', key);
      return done;
    };
    const done = engine.expire(key, ttl);
    return done instanceof Promise ? done.then(after) : after(done);
  },
  SCAN(hub, _session, args) {
    return scan(hub, args);
  },
  KEYS(hub, _session, args) {
    return engineArg(hub.storage, args[1] as Buffer).keys(args[2] as Buffer);
  },
  INCR(hub, _session, args) {
    return handlers.INCRBY(hub, _session, [args[0] as Buffer, args[1] as Buffer, args[2] as Buffer, ONE]);
  },
  INCRBY(hub, _session, args) {
    const engine = engineArg(hub.storage, args[1] as Buffer);
    const key = args[2] as Buffer;
    const after = (value: bigint) => {
      hub.pubsub.keyEvent(storageName(engine), 'incrby', key);
      return value;
    };
    const value = engine.incrBy(key, integerArg(args[3] as Buffer, 'the delta'));
    return value instanceof Promise ? value.then(after) : after(value);
  },
  MGET(hub, _session, args) {
    return engineArg(hub.storage, args[1] as Buffer).getMany(args.slice(2));
  },
  MSET(hub, _session, args) {
    const engine = engineArg(hub.storage, args[1] as Buffer);
    const entries: Array<[Buffer, Buffer]> = [];
    for (let i = 2; i < args.length; i += 2) entries.push([args[i] as Buffer, args[i + 1] as Buffer]);
    const after = () => {
      for (const [key] of entries) hub.pubsub.keyEvent(storageName(engine), 'set', key);
      return OK;
    };
    const done = engine.setMany(entries);
    return done instanceof Promise ? done.then(after) : after();
  },
  DBSIZE(hub, _session, args) {
    if (args.length > 1) return engineArg(hub.storage, args[1] as Buffer).count();
    return hub.storage.hdd.count().then((hdd) => hub.storage.memory.count() + hdd);
  },
  PING(_hub, session, args) {
    // Redis answers PING in RESP2 pub/sub mode with ["pong", message].
    if (session.protocol === 2 && session.subscriptions > 0) return [PONG, args[1] ?? EMPTY];
    if (args.length > 1) return args[1];
    return 'PONG';
  },
  ECHO(_hub, _session, args) {
    return args[1];
  },
  QUIT() {
    return OK;
  },
  AUTH(hub, session, args) {
    const [name, password] =
      args.length === 3
        ? [textOf(args[1] as Buffer), textOf(args[2] as Buffer)]
        : ['default', textOf(args[1] as Buffer)];
    return authenticate(hub, session, name, password, () => OK);
  },
  ACL(_hub, _session, args) {
    // Only reached without a subcommand, which the arity check refuses first.
    throw new ServerError('ARGUMENT_INVALID', `ACL needs a subcommand: ${commands.ACL.syntax} (${args.length})`);
  },
  'ACL WHOAMI'(_hub, session) {
    return session.user?.name;
  },
  'ACL USERS'(hub) {
    return hub.auth.names();
  },
  'ACL LOAD'(hub) {
    return reloadUsers(hub).then(() => OK);
  },
  HELLO(hub, session, args) {
    let protocol = session.protocol;
    let credentials: Buffer[] | undefined;
    let connectionName: string | null | undefined;
    if (args.length > 1) {
      const asked = args[1] as Buffer;
      if (asked.length !== 1 || (asked[0] !== 0x32 && asked[0] !== 0x33)) {
        throw new ServerError(
          'NOPROTO',
          `unsupported protocol version '${asked.toString('utf8', 0, 16)}' (Hati speaks 2 and 3)`,
        );
      }
      protocol = asked[0] === 0x32 ? 2 : 3;
      const options = readOptions(commands.HELLO, args, 2);
      credentials = options.get('AUTH') as Buffer[] | undefined;
      const name = options.get('SETNAME')?.[0];
      if (name !== undefined) connectionName = nameArg(name as Buffer);
    }
    // Applied once authenticated: a failed HELLO AUTH changes nothing.
    const switchProtocol = () => {
      if (connectionName !== undefined) session.name = connectionName;
      session.protocol = protocol;
      return serverMap(session, protocol);
    };
    if (credentials !== undefined) {
      const [user, password] = credentials as [Buffer, Buffer];
      return authenticate(hub, session, textOf(user), textOf(password), switchProtocol);
    }
    if (session.user === null) {
      throw new ServerError(
        'NOAUTH',
        'HELLO must be called with the client already authenticated, or with HELLO <protover> AUTH <username> <password>',
      );
    }
    return switchProtocol();
  },
  SELECT(_hub, _session, args) {
    // One database: the storage type names the keyspace. Clients configured with db 0 send this.
    const index = args[1] as Buffer;
    if (index.length !== 1 || index[0] !== 0x30) {
      throw new ServerError(
        'DB_INDEX_INVALID',
        `Hati has only database 0 (got '${index.toString('utf8', 0, 32)}'); memory and hdd are its keyspaces`,
      );
    }
    return OK;
  },
  CLIENT(_hub, _session, args) {
    // Only reached without a subcommand, which the arity check refuses first.
    throw new ServerError('ARGUMENT_INVALID', `CLIENT needs a subcommand: ${commands.CLIENT.syntax} (${args.length})`);
  },
  'CLIENT ID'(_hub, session) {
    return session.id;
  },
  'CLIENT SETNAME'(_hub, session, args) {
    session.name = nameArg(args[2] as Buffer);
    return OK;
  },
  'CLIENT GETNAME'(_hub, session) {
    return session.name;
  },
  'CLIENT SETINFO'(_hub, session, args) {
    const attribute = (args[2] as Buffer).toString('latin1').toUpperCase();
    const value = (args[3] as Buffer).toString('utf8');
    if (/[\s]/.test(value)) {
      throw new ServerError('ARGUMENT_INVALID', `CLIENT SETINFO: ${attribute} may not contain spaces or line breaks`);
    }
    if (attribute === 'LIB-NAME') session.libName = value;
    else if (attribute === 'LIB-VER') session.libVersion = value;
    else
      throw new ServerError(
        'ARGUMENT_INVALID',
        `CLIENT SETINFO takes LIB-NAME or LIB-VER, got '${attribute.slice(0, 32)}'`,
      );
    return OK;
  },
  'CLIENT INFO'(_hub, session) {
    return `${session.describe(Date.now())}\n`;
  },
  'CLIENT LIST'(hub) {
    const now = Date.now();
    return [...hub.sessions].map((session) => `${session.describe(now)}\n`).join('');
  },
  COMMAND() {
    return commandInfo(Object.values(commands));
  },
  'COMMAND COUNT'() {
    // As in Redis: the commands COMMAND lists, subcommands not counted.
    return Object.keys(commands).length;
  },
  'COMMAND DOCS'(_hub, _session, args) {
    return commandDocs(specsNamed(args.slice(2)));
  },
  'COMMAND INFO'(_hub, _session, args) {
    return commandInfo(specsNamed(args.slice(2)), true);
  },
  SUBSCRIBE(hub, session, args) {
    return subscribe(hub, session, args, 'subscribe');
  },
  UNSUBSCRIBE(hub, session, args) {
    return subscribe(hub, session, args, 'unsubscribe');
  },
  PSUBSCRIBE(hub, session, args) {
    return subscribe(hub, session, args, 'psubscribe');
  },
  PUNSUBSCRIBE(hub, session, args) {
    return subscribe(hub, session, args, 'punsubscribe');
  },
  STATS(hub) {
    return hub.stats.snapshot(hub);
  },
  INFO(hub, _session, args) {
    const section = args.length > 1 ? (args[1] as Buffer).toString('latin1') : undefined;
    return hub.stats.snapshot(hub).then((stats) => infoText(stats, section));
  },
};

const ONE = Buffer.from('1');
const PONG = Buffer.from('pong');
const EMPTY = Buffer.alloc(0);

/** HELLO's server map, as Redis answers it. */
function serverMap(session: Session, protocol: 2 | 3): MapValue {
  return [
    ['server', 'hati'],
    // What Redis clients compare to decide which commands they may send.
    ['version', REDIS_COMPATIBLE_VERSION],
    ['hati_version', HATI_VERSION],
    ['proto', protocol],
    ['id', session.id],
    ['mode', 'standalone'],
    ['role', 'master'],
    ['modules', []],
  ];
}

/** A user name or password: past MAX_CREDENTIAL it is refused anyway, so no more is decoded. */
function textOf(arg: Buffer): string {
  return arg.toString('utf8', 0, MAX_CREDENTIAL * 4 + 1);
}

/**
 * Logs the session in, then runs `then` (AUTH's OK, HELLO's switch). A check on the thread pool
 * (scrypt) is a barrier: the connection runs nothing after it until it settles. A failed attempt
 * leaves the session as it was, as in Redis.
 */
function authenticate<T>(hub: Hub, session: Session, name: string, password: string, then: () => T): T | Promise<T> {
  const user = hub.auth.login(name, password, session.address);
  if (!(user instanceof Promise)) {
    session.user = user;
    return then();
  }
  const done = user.then((settled) => {
    session.user = settled;
    return then();
  });
  session.barrier = done;
  return done;
}

/** The specs named (unknown names are left out, as Redis does), or every top-level one. */
function specsNamed(names: Buffer[]): Array<CommandSpec | undefined> {
  if (names.length === 0) return Object.values(commands);
  return names.map((name) => lookupCommand(name));
}
