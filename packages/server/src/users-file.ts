// The users file: named users with hashed passwords, hashed tokens and rights, as `hati users`
// writes it and the server reads it (docs/security.md). Plain text never reaches the disk.
import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { chmod, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ServerError } from './errors.js';

/** One user, as stored. Every right list may be absent (no right). */
export interface UserRecord {
  name: string;
  /** `scrypt$<N>$<r>$<p>$<salt>$<hash>` (base64); absent: the user cannot log in with a password. */
  password?: string;
  /** `sha256$<hex>` of each Bearer token. */
  tokens?: string[];
  /** FLUSHALL, STATS, INFO, CLIENT LIST, ACL USERS, ACL LOAD. */
  admin?: boolean;
  /** Key rules `<type>:<prefix>` (`memory:cache:`, `hdd:`, `*:`), or `*` for every key. */
  read?: string[];
  write?: string[];
  /** Globs over router names. */
  publish?: string[];
  /** Globs over queue names. */
  consume?: string[];
  /** Globs over router and queue names. */
  manage?: string[];
}

export interface UsersFile {
  version: 1;
  users: UserRecord[];
}

/** The storage types a key rule may name; `*` is both. */
export type RuleType = 'memory' | 'hdd' | '*';

export interface KeyRule {
  type: RuleType;
  /** Keys that start with these bytes (latin1); empty: every key of the type. */
  prefix: string;
}

export const KEY_RIGHTS = ['read', 'write'] as const;
export const BROKER_RIGHTS = ['publish', 'consume', 'manage'] as const;

/** scrypt with OWASP's parameters (N=2^17, r=8, p=1: 128 MiB and a few hundred ms per hash). */
const SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;
const MIN_COST = 2 ** 10;
const MAX_COST = 2 ** 20;
const KEY_LENGTH = 32;
const NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
const MAX_RULE = 1024;

function invalid(message: string): ServerError {
  return new ServerError('USERS_FILE_INVALID', message);
}

function scrypt(password: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export interface HashOptions {
  /**
   * scrypt's N, a power of two from 2^10 to 2^20. Lower is faster to check and to guess offline:
   * meant for tests. @default 2^17
   */
  cost?: number;
}

/** The stored form of a password: a random salt and its scrypt hash, with the parameters. */
export async function hashPassword(password: string, options: HashOptions = {}): Promise<string> {
  if (password === '') throw invalid('a password may not be empty');
  const N = options.cost ?? SCRYPT.N;
  if (!Number.isInteger(N) || N < MIN_COST || N > MAX_COST || (N & (N - 1)) !== 0) {
    throw invalid(`the scrypt cost must be a power of two from ${MIN_COST} to ${MAX_COST}, got ${N}`);
  }
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, N, SCRYPT.r, SCRYPT.p);
  return ['scrypt', N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), hash.toString('base64')].join('$');
}

interface StoredHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

function parseHash(stored: string): StoredHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4] as string, 'base64');
  const hash = Buffer.from(parts[5] as string, 'base64');
  const powerOfTwo = Number.isInteger(N) && N >= MIN_COST && N <= MAX_COST && (N & (N - 1)) === 0;
  if (!powerOfTwo || !Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) {
    return undefined;
  }
  if (salt.length < 8 || hash.length !== KEY_LENGTH) return undefined;
  return { N, r, p, salt, hash };
}

/**
 * Whether `password` matches a stored hash, compared in constant time. An unusable stored hash
 * still costs a full scrypt, so that timing says nothing about which users exist.
 */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const parsed = stored === undefined ? undefined : parseHash(stored);
  const { N, r, p, salt, hash } = parsed ?? { ...SCRYPT, salt: DUMMY_SALT, hash: Buffer.alloc(KEY_LENGTH) };
  const actual = await scrypt(password, salt, N, r, p);
  return timingSafeEqual(actual, hash) && parsed !== undefined;
}

const DUMMY_SALT = randomBytes(16);

/** The stored form of a Bearer token. Tokens are random 256-bit strings, so SHA-256 is enough. */
export function hashToken(token: string): string {
  return `sha256$${createHash('sha256').update(token).digest('hex')}`;
}

/** A new Bearer token: `token` is shown once; `stored` goes into the users file. */
export function newToken(): { token: string; stored: string } {
  const token = `hati_${randomBytes(32).toString('base64url')}`;
  return { token, stored: hashToken(token) };
}

/** A key rule's text → its type and prefix; throws USERS_FILE_INVALID naming the problem. */
export function parseKeyRule(text: string): KeyRule {
  if (text === '*') return { type: '*', prefix: '' };
  const colon = text.indexOf(':');
  const type = colon === -1 ? text : text.slice(0, colon);
  if (type !== 'memory' && type !== 'hdd' && type !== '*') {
    throw invalid(
      `key rule '${text.slice(0, 64)}': expected <type>:<prefix> with type memory, hdd or * (e.g. memory:cache:), or *`,
    );
  }
  if (text.length > MAX_RULE) throw invalid(`key rule longer than ${MAX_RULE} characters`);
  return { type, prefix: colon === -1 ? '' : text.slice(colon + 1) };
}

/** A broker rule: a glob over router or queue names (`orders.*`); throws USERS_FILE_INVALID. */
export function parseBrokerRule(text: string): string {
  if (text === '' || text.length > MAX_RULE || /[\s]/.test(text)) {
    throw invalid(
      `broker rule '${text.slice(0, 64)}': expected a glob over router or queue names (orders.*), no spaces`,
    );
  }
  return text;
}

function stringList(record: Record<string, unknown>, field: string, who: string): string[] {
  const value = record[field];
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
    throw invalid(`${who}: '${field}' must be a list of strings`);
  }
  return value as string[];
}

const FIELDS = new Set(['name', 'password', 'tokens', 'admin', ...KEY_RIGHTS, ...BROKER_RIGHTS]);

/** Checks one user as stored; throws USERS_FILE_INVALID naming the user and the problem. */
export function checkUserRecord(record: UserRecord): void {
  const raw = record as unknown as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('a user must be an object');
  if (typeof raw.name !== 'string' || !NAME.test(raw.name)) {
    throw invalid(`user name '${String(raw.name).slice(0, 64)}': 1 to 64 of A-Z a-z 0-9 _ . @ -`);
  }
  const who = `user '${raw.name}'`;
  for (const field of Object.keys(raw)) {
    if (!FIELDS.has(field)) throw invalid(`${who}: unknown field '${field.slice(0, 64)}'`);
  }
  if (raw.password !== undefined && (typeof raw.password !== 'string' || parseHash(raw.password) === undefined)) {
    // Plain text here would be a password at rest: refused, never used.
    throw invalid(`${who}: 'password' must be a hash written by hati users (scrypt$...), never the password itself`);
  }
  for (const token of stringList(raw, 'tokens', who)) {
    if (!/^sha256\$[0-9a-f]{64}$/.test(token)) throw invalid(`${who}: a token must be stored as sha256$<hex>`);
  }
  if (raw.admin !== undefined && typeof raw.admin !== 'boolean') throw invalid(`${who}: 'admin' must be true or false`);
  for (const right of KEY_RIGHTS) {
    for (const rule of stringList(raw, right, who)) parseKeyRule(rule);
  }
  for (const right of BROKER_RIGHTS) {
    for (const rule of stringList(raw, right, who)) parseBrokerRule(rule);
  }
}

/** Parses and checks a users file's text; `path` names it in errors. */
export function parseUsersFile(text: string, path: string): UsersFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(`${path}: not JSON (${(err as Error).message})`);
  }
  const file = value as Partial<UsersFile> | null;
  if (file === null || typeof file !== 'object' || file.version !== 1 || !Array.isArray(file.users)) {
    throw invalid(`${path}: expected {"version": 1, "users": [...]}`);
  }
  const names = new Set<string>();
  for (const user of file.users) {
    try {
      checkUserRecord(user);
    } catch (err) {
      throw invalid(`${path}: ${(err as Error).message}`);
    }
    if (names.has(user.name)) throw invalid(`${path}: user '${user.name}' is defined twice`);
    names.add(user.name);
  }
  return { version: 1, users: file.users };
}

/** Reads and checks a users file. A missing file throws Node's ENOENT error; anything else wrong USERS_FILE_INVALID. */
export async function readUsersFile(path: string): Promise<UsersFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
    throw invalid(`${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseUsersFile(text, path);
}

/**
 * Writes a users file atomically (a temporary file in the same directory, fsynced, renamed over
 * it), readable by its owner only: it holds hashes, which an attacker could try offline.
 */
export async function writeUsersFile(path: string, file: UsersFile): Promise<void> {
  for (const user of file.users) checkUserRecord(user);
  const temporary = join(dirname(path), `.${randomBytes(6).toString('hex')}.users.tmp`);
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw err;
  }
  await handle.close();
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}
