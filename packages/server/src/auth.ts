// Credentials and rights: who a session is, and what each command needs of it (docs/security.md).
// Without credentials every session is the default user with every right, and a command pays one
// boolean check for it; so does a user with every right.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CommandSpec } from '@hati/protocol';
import { globMatcher } from '@hati/storage';
import { ServerError } from './errors.js';
import type { Hub } from './hub.js';
import type { Logger } from './logger.js';
import {
  BROKER_RIGHTS,
  hashToken,
  type KEY_RIGHTS,
  type KeyRule,
  parseKeyRule,
  readUsersFile,
  type UserRecord,
  verifyPassword,
} from './users-file.js';

export type KeyRight = (typeof KEY_RIGHTS)[number];
export type BrokerRight = (typeof BROKER_RIGHTS)[number];
type StorageTypeName = 'memory' | 'hdd';

interface CompiledKeyRule {
  type: KeyRule['type'];
  prefix: Buffer;
}

/** Failed authentications an address may have in WINDOW_MS before it is refused for a while. */
const MAX_FAILURES = 10;
const WINDOW_MS = 60_000;
/** Addresses remembered by the limiter; past it the oldest are forgotten. */
const MAX_ADDRESSES = 10_000;
/**
 * The longest user name or password checked, in characters; a longer one is refused as a wrong
 * one without being hashed (a 512 MiB "password" would otherwise be scrypt's key).
 */
export const MAX_CREDENTIAL = 4096;
/** scrypt checks at once, and waiting: see Auth.#checkPassword. */
const MAX_RUNNING = 1;
const MAX_WAITING = 256;
/** Successful password checks remembered, so that a reconnecting client does not pay scrypt again. */
const MAX_VERIFIED = 10_000;

/** Whether `key` starts with `prefix`: a loop, cheaper than Buffer#compare's native call for prefixes this short. */
function startsWith(key: Buffer, prefix: Buffer): boolean {
  const length = prefix.length;
  if (key.length < length) return false;
  for (let i = 0; i < length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/** A user's rights, compiled for checking. */
export class User {
  readonly name: string;
  /** Every right: checks are skipped. */
  readonly all: boolean;
  readonly admin: boolean;
  readonly #keys: Record<KeyRight, CompiledKeyRule[]>;
  readonly #broker: Record<BrokerRight, Array<(name: Buffer) => boolean>>;

  constructor(record: UserRecord, all = false) {
    this.name = record.name;
    this.admin = all || record.admin === true;
    const keyRules = (texts: string[] | undefined) =>
      (texts ?? []).map(parseKeyRule).map(({ type, prefix }) => ({ type, prefix: Buffer.from(prefix) }));
    this.#keys = { read: keyRules(record.read), write: keyRules(record.write) };
    const globs = (texts: string[] | undefined) => (texts ?? []).map((text) => globMatcher(Buffer.from(text)));
    this.#broker = { publish: globs(record.publish), consume: globs(record.consume), manage: globs(record.manage) };
    const everything = (texts: string[] | undefined) => (texts ?? []).some((text) => text === '*' || text === '*:');
    this.all =
      all ||
      (this.admin &&
        everything(record.read) &&
        everything(record.write) &&
        BROKER_RIGHTS.every((right) => (record[right] ?? []).includes('*')));
  }

  /** Whether `right` holds on `key` of `type`, or on every key of it when `key` is undefined. */
  canKey(right: KeyRight, type: StorageTypeName, key: Buffer | undefined): boolean {
    if (this.all) return true;
    for (const rule of this.#keys[right]) {
      if (rule.type !== '*' && rule.type !== type) continue;
      const { prefix } = rule;
      if (prefix.length === 0) return true;
      if (key !== undefined && startsWith(key, prefix)) return true;
    }
    return false;
  }

  /** Whether `right` holds on the router or queue `name`. */
  canBroker(right: BrokerRight, name: Buffer): boolean {
    return this.all || this.#broker[right].some((matches) => matches(name));
  }

  /** Whether any broker right holds on `name` (GETQUEUE, and what LISTQUEUE shows). */
  canView(name: Buffer): boolean {
    return this.all || BROKER_RIGHTS.some((right) => this.canBroker(right, name));
  }
}

function noPerm(user: User, what: string): ServerError {
  return new ServerError('NOPERM', `user '${user.name}' has no permission to ${what}`);
}

const MEMORY = Buffer.from('memory');
const HDD = Buffer.from('hdd');

/** `memory` or `hdd` in any case, compared as bytes (no string per command). */
function typeOf(arg: Buffer | undefined): StorageTypeName | undefined {
  if (arg === undefined) return undefined;
  const word = arg.length === MEMORY.length ? MEMORY : arg.length === HDD.length ? HDD : undefined;
  if (word === undefined) return undefined;
  for (let i = 0; i < word.length; i++) {
    // ASCII letters: the 0x20 bit is case.
    if (((arg[i] as number) | 0x20) !== word[i]) return undefined;
  }
  return word === MEMORY ? 'memory' : 'hdd';
}

const BOTH_TYPES: readonly StorageTypeName[] = ['memory', 'hdd'];
const MEMORY_ONLY: readonly StorageTypeName[] = ['memory'];
const HDD_ONLY: readonly StorageTypeName[] = ['hdd'];

/** Each key command's storage-type argument position, found once per spec. */
const typeIndexes = new WeakMap<CommandSpec, number>();

function typeIndexOf(spec: CommandSpec): number {
  let index = typeIndexes.get(spec);
  if (index === undefined) {
    index = spec.args.findIndex((arg) => arg.kind === 'storageType');
    typeIndexes.set(spec, index);
  }
  return index;
}

/** The index in `spec.args` of the request's argument `i` (1-based), following repeats; -1 past them (options). */
function argIndex(spec: CommandSpec, i: number): number {
  const j = i - 1;
  const count = spec.args.length;
  if (j < count) return j;
  if (spec.repeat === 0) return -1;
  const first = count - spec.repeat;
  return first + ((j - first) % spec.repeat);
}

function checkKeys(user: User, spec: CommandSpec, args: Buffer[], right: KeyRight): void {
  const typeIndex = typeIndexOf(spec);
  const named = typeIndex === -1 ? undefined : typeOf(args[typeIndex + 1]);
  // A command without a valid type (DBSIZE alone, SCAN in Redis's form) reaches every type.
  const types = named === undefined ? BOTH_TYPES : named === 'memory' ? MEMORY_ONLY : HDD_ONLY;
  const verb = right === 'read' ? 'read' : 'write';
  let keys = 0;
  for (let i = 1; i < args.length; i++) {
    const index = argIndex(spec, i);
    if (index === -1) break;
    if (spec.args[index]?.kind !== 'key') continue;
    keys++;
    const key = args[i] as Buffer;
    for (const type of types) {
      if (!user.canKey(right, type, key)) {
        throw noPerm(user, `${verb} key '${key.toString('utf8', 0, 64)}' of ${type} (${spec.name})`);
      }
    }
  }
  if (keys > 0) return;
  for (const type of types) {
    if (!user.canKey(right, type, undefined)) {
      throw noPerm(user, `${verb} every key of ${type}, which ${spec.name} needs`);
    }
  }
}

const KEYSPACE = Buffer.from('__keyspace@');
const KEYEVENT = Buffer.from('__keyevent@');

/** Keyspace notifications tell key names and writes: a channel needs read on what it names. */
function checkSubscribe(user: User, spec: CommandSpec, args: Buffer[]): void {
  const pattern = spec.name === 'PSUBSCRIBE';
  for (let i = 1; i < args.length; i++) {
    const channel = args[i] as Buffer;
    if (pattern) {
      if (!user.canKey('read', 'memory', undefined) || !user.canKey('read', 'hdd', undefined)) {
        throw noPerm(user, 'subscribe to patterns, which needs read on every key of every type');
      }
      continue;
    }
    const space = channel.subarray(0, KEYSPACE.length);
    const isSpace = space.equals(KEYSPACE);
    if (!isSpace && !space.equals(KEYEVENT)) continue;
    const end = channel.indexOf('__:', KEYSPACE.length);
    const type = end === -1 ? undefined : typeOf(channel.subarray(KEYSPACE.length, end));
    if (type === undefined) continue;
    const key = isSpace ? channel.subarray(end + 3) : undefined;
    if (!user.canKey('read', type, key)) {
      throw noPerm(user, `subscribe to '${channel.toString('utf8', 0, 96)}', which needs read on what it names`);
    }
  }
}

function checkBroker(user: User, spec: CommandSpec, args: Buffer[], right: BrokerRight | 'view'): void {
  for (let i = 1; i < args.length; i++) {
    const index = argIndex(spec, i);
    if (index === -1) break;
    const kind = spec.args[index]?.kind;
    if (kind !== 'router' && kind !== 'queue') continue;
    const name = args[i] as Buffer;
    const allowed = right === 'view' ? user.canView(name) : user.canBroker(right, name);
    if (!allowed) {
      const what = right === 'view' ? 'see' : right;
      throw noPerm(user, `${what} ${kind} '${name.toString('utf8', 0, 64)}' (${spec.name})`);
    }
  }
  // An option naming a router (CREATEQUEUE's DEADLETTER) makes the queue publish into it.
  for (const option of spec.options) {
    if (!option.args?.some((arg) => arg.kind === 'router')) continue;
    for (let i = 1; i < args.length - 1; i++) {
      const word = args[i] as Buffer;
      if (word.length !== option.token.length || word.toString('latin1').toUpperCase() !== option.token) continue;
      const router = args[i + 1] as Buffer;
      if (!user.canBroker('publish', router)) {
        throw noPerm(user, `publish to router '${router.toString('utf8', 0, 64)}' (${spec.name} ${option.token})`);
      }
    }
  }
}

/**
 * Throws NOPERM unless `user` may run `spec` with `args` (args[0] is the command's name, as sent).
 * Called for users without every right only.
 */
export function checkAccess(user: User, spec: CommandSpec, args: Buffer[]): void {
  switch (spec.access) {
    case 'public':
    case 'connection':
      return;
    case 'admin':
      if (!user.admin) throw noPerm(user, `run '${spec.name}', which needs admin`);
      return;
    case 'read':
    case 'write':
      checkKeys(user, spec, spec.name.includes(' ') ? args.slice(1) : args, spec.access);
      return;
    case 'subscribe':
      checkSubscribe(user, spec, args);
      return;
    case 'publish':
    case 'consume':
    case 'manage':
    case 'view':
      checkBroker(user, spec, args, spec.access);
      return;
  }
}

/** Failed authentications per client address, over a sliding window. */
class FailureLimiter {
  readonly #byAddress = new Map<string, number[]>();

  /** Counts an attempt as failed until it succeeds; throws AUTH_RATE_LIMITED past the limit. */
  begin(address: string, now: number): void {
    const times = (this.#byAddress.get(address) ?? []).filter((time) => now - time < WINDOW_MS);
    if (times.length >= MAX_FAILURES) {
      const retry = Math.ceil((WINDOW_MS - (now - (times[0] as number))) / 1000);
      this.#byAddress.set(address, times);
      throw new ServerError(
        'AUTH_RATE_LIMITED',
        `too many failed authentications from this address; retry in ${retry} s`,
      );
    }
    times.push(now);
    this.#byAddress.delete(address);
    this.#byAddress.set(address, times);
    if (this.#byAddress.size > MAX_ADDRESSES) {
      this.#byAddress.delete(this.#byAddress.keys().next().value as string);
    }
  }

  /** The attempt succeeded: it no longer counts. */
  succeeded(address: string): void {
    this.#byAddress.get(address)?.pop();
  }

  failures(address: string): number {
    return this.#byAddress.get(address)?.length ?? 0;
  }
}

export interface AuthOptions {
  password?: string;
  usersFile?: string;
}

interface Users {
  byName: Map<string, { user: User; record: UserRecord }>;
  byToken: Map<string, User>;
}

function wrongPass(): ServerError {
  return new ServerError('WRONGPASS', 'invalid username-password pair or user is disabled');
}

/** How a log line names the user of an attempt. */
function userNamed(name: string): string {
  return `user '${name.slice(0, 64)}'`;
}

/** The host part of a session address (`[::1]:5000` → `::1`); a UNIX socket path stays whole. */
export function clientHost(address: string): string {
  if (address.startsWith('[')) return address.slice(1, address.indexOf(']'));
  const colon = address.lastIndexOf(':');
  return colon === -1 || address.startsWith('/') ? address : address.slice(0, colon);
}

/**
 * The server's users: who may log in with what, and the rights each has. Reads the users file at
 * start and on `reload()`; the default user of `password` has every right.
 */
export class Auth {
  /** True when credentials are configured: sessions start unauthenticated. */
  readonly required: boolean;
  readonly #options: AuthOptions;
  readonly #logger: Logger;
  readonly #limiter = new FailureLimiter();
  /** Keys the verified-password cache by an HMAC with a key of this process only. */
  readonly #cacheKey = randomBytes(32);
  readonly #verified = new Set<string>();
  readonly #defaultUser: User | undefined;
  readonly #defaultDigest: Buffer | undefined;
  #users: Users = { byName: new Map(), byToken: new Map() };
  #running = 0;
  #generation = 0;
  readonly #queue: Array<() => void> = [];
  /** The user of every session when no credentials are configured. */
  static readonly everyone = new User({ name: 'default' }, true);

  private constructor(options: AuthOptions, logger: Logger) {
    this.#options = options;
    this.#logger = logger;
    this.required = options.password !== undefined || options.usersFile !== undefined;
    if (options.password !== undefined) {
      this.#defaultUser = new User({ name: 'default' }, true);
      this.#defaultDigest = this.#digest(options.password);
    }
  }

  /** Reads the users file, if one is configured; throws USERS_FILE_INVALID or Node's ENOENT error. */
  static async create(options: AuthOptions, logger: Logger): Promise<Auth> {
    if (options.password === '') throw new ServerError('USERS_FILE_INVALID', 'the password may not be empty');
    const auth = new Auth(options, logger);
    if (options.usersFile !== undefined) auth.#users = await auth.#read(options.usersFile);
    return auth;
  }

  /** The user of a session that has not authenticated: null once credentials are configured. */
  get initialUser(): User | null {
    return this.required ? null : Auth.everyone;
  }

  /** The named user as configured now, if any. */
  user(name: string): User | undefined {
    if (name === 'default' && this.#defaultUser !== undefined) return this.#defaultUser;
    return this.#users.byName.get(name)?.user;
  }

  names(): string[] {
    return [...(this.#defaultUser ? ['default'] : []), ...this.#users.byName.keys()].sort();
  }

  /**
   * Checks a password. Synchronous for the default user of `password` and for a password that
   * succeeded before (remembered by an HMAC, never in clear); else a promise (scrypt runs on the
   * thread pool). Throws or rejects WRONGPASS, AUTH_RATE_LIMITED or AUTH_NOT_CONFIGURED.
   */
  login(name: string, password: string, address: string): User | Promise<User> {
    if (!this.required) {
      throw new ServerError(
        'AUTH_NOT_CONFIGURED',
        'AUTH: this server has no credentials configured (start it with --password or --users-file)',
      );
    }
    const host = clientHost(address);
    this.#limiter.begin(host, Date.now());
    if (name.length > MAX_CREDENTIAL || password.length > MAX_CREDENTIAL) {
      return this.#settle(undefined, userNamed(name), host);
    }
    if (name === 'default' && this.#defaultDigest !== undefined) {
      const match = timingSafeEqual(this.#digest(password), this.#defaultDigest);
      return this.#settle(match ? this.#defaultUser : undefined, userNamed(name), host);
    }
    const entry = this.#users.byName.get(name);
    const stored = entry?.record.password;
    const remembered = this.#digest(`${name}\0${stored ?? ''}\0${password}`).toString('base64');
    if (stored !== undefined && this.#verified.has(remembered)) return this.#settle(entry?.user, userNamed(name), host);
    return this.#checkPassword(password, stored).then((match) => {
      // The file may have been reloaded meanwhile: the user as it is now.
      const now = this.#users.byName.get(name);
      if (match && now !== undefined && now.record.password === stored) {
        if (this.#verified.size >= MAX_VERIFIED) this.#verified.clear();
        this.#verified.add(remembered);
        return this.#settle(now.user, userNamed(name), host);
      }
      return this.#settle(undefined, userNamed(name), host);
    });
  }

  /** scrypt checks running now, and waiting for their turn. */
  get verifications(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#queue.length };
  }

  /**
   * One scrypt check at a time: each takes a thread of the pool the hdd store reads, writes and
   * fsyncs on (and 128 MiB) for a few hundred ms, so a flood of logins from many addresses must
   * not take the pool from the disk. Past MAX_WAITING checks waiting, a login is refused
   * (AUTH_RATE_LIMITED) rather than queued without end.
   */
  async #checkPassword(password: string, stored: string | undefined): Promise<boolean> {
    if (this.#running >= MAX_RUNNING) {
      if (this.#queue.length >= MAX_WAITING) {
        throw new ServerError('AUTH_RATE_LIMITED', 'too many logins are being checked at once; retry in a few seconds');
      }
      // The slot is handed over by the check that ends: #running stays as it is.
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await verifyPassword(password, stored);
    } finally {
      const next = this.#queue.shift();
      if (next === undefined) this.#running--;
      else next();
    }
  }

  /** Checks a Bearer token (JSON-RPC). Throws WRONGPASS or AUTH_RATE_LIMITED. */
  loginToken(token: string, address: string): User {
    const host = clientHost(address);
    this.#limiter.begin(host, Date.now());
    return this.#settle(this.#users.byToken.get(hashToken(token)), 'a token', host);
  }

  /**
   * Credentials that cannot be checked at all (a JSON-RPC Authorization header that is neither
   * Basic nor Bearer), described by `what`: a failed attempt like any other. Throws WRONGPASS or
   * AUTH_RATE_LIMITED.
   */
  refuse(what: string, address: string): never {
    const host = clientHost(address);
    this.#limiter.begin(host, Date.now());
    return this.#settle(undefined, what, host) as never;
  }

  /** Whether there is a users file to read again. */
  get reloadable(): boolean {
    return this.#options.usersFile !== undefined;
  }

  /** Reads the users file again; an invalid one throws USERS_FILE_INVALID and changes nothing. */
  async reload(): Promise<void> {
    if (this.#options.usersFile === undefined) {
      throw new ServerError('AUTH_NOT_CONFIGURED', 'this server has no users file (start it with --users-file)');
    }
    this.#users = await this.#read(this.#options.usersFile);
    this.#generation++;
  }

  /** Counts reloads: what was decided under an older generation must be decided again. */
  get generation(): number {
    return this.#generation;
  }

  /** The attempt of `who` (`user 'app'`, `a token`) from `host` ends: the user, or a logged WRONGPASS. */
  #settle(user: User | undefined, who: string, host: string): User {
    if (user !== undefined) {
      this.#limiter.succeeded(host);
      return user;
    }
    const failures = this.#limiter.failures(host);
    this.#logger.warn(
      `authentication failed for ${who} from ${host} (${failures} failed in the last ${WINDOW_MS / 1000} s${failures >= MAX_FAILURES ? '; further attempts are refused for now' : ''})`,
    );
    throw wrongPass();
  }

  #digest(text: string): Buffer {
    return createHmac('sha256', this.#cacheKey).update(text).digest();
  }

  async #read(path: string): Promise<Users> {
    let file: Awaited<ReturnType<typeof readUsersFile>>;
    try {
      file = await readUsersFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ServerError('USERS_FILE_INVALID', `${path}: no such file (create it with hati users add)`);
      }
      throw err;
    }
    const users: Users = { byName: new Map(), byToken: new Map() };
    for (const record of file.users) {
      if (record.name === 'default' && this.#defaultUser !== undefined) {
        throw new ServerError(
          'USERS_FILE_INVALID',
          `${path}: defines the user 'default', which --password defines too; use one of them`,
        );
      }
      const user = new User(record);
      users.byName.set(record.name, { user, record });
      for (const token of record.tokens ?? []) users.byToken.set(token, user);
    }
    return users;
  }
}

/**
 * Reads the users file again (ACL LOAD, SIGHUP) and applies it to the sessions at once: each keeps
 * its connection with its user's new rights; a session whose user is gone is closed, as Redis does.
 * An invalid file throws USERS_FILE_INVALID and changes nothing.
 */
export async function reloadUsers(hub: Hub): Promise<void> {
  await hub.auth.reload();
  for (const session of hub.sessions) {
    const before = session.user;
    if (before === null || before === Auth.everyone) continue;
    const now = hub.auth.user(before.name);
    if (now !== undefined) {
      session.user = now;
    } else if (session.listener === 'rpc') {
      // Its next request carries its own credentials.
      session.user = null;
    } else {
      hub.logger.info(`closing connection ${session.id} (${session.address}): its user '${before.name}' was removed`);
      session.user = null;
      session.end();
    }
  }
}
