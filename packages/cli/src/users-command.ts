import { resolve } from 'node:path';
import {
  BROKER_RIGHTS,
  checkUserRecord,
  hashPassword,
  KEY_RIGHTS,
  newToken,
  parseBrokerRule,
  parseKeyRule,
  readUsersFile,
  type UserRecord,
  type UsersFile,
  writeUsersFile,
} from '@hati/server/users-file';
import type { Argv } from 'yargs';
import type { Io } from './main.js';
import { type PasswordInput, PasswordInputError, readPassword } from './password-input.js';

export interface UsersFlags {
  usersFile: string;
  name: string;
  admin?: boolean;
  read?: string | string[];
  write?: string | string[];
  publish?: string | string[];
  consume?: string | string[];
  manage?: string | string[];
  token?: boolean;
  tokenOnly?: boolean;
  replace?: boolean;
  json?: boolean;
}

type Action = 'add' | 'set' | 'passwd' | 'remove' | 'list' | 'token';

const RIGHTS = [...KEY_RIGHTS, ...BROKER_RIGHTS] as const;

/** A failure shown as one `hati: ...` line, with its exit code (1: the file's state; 2: bad input). */
class UsersError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

const RELOAD_HINT = 'hati: a running server sees the change after SIGHUP (kill -HUP <pid of hati start>) or ACL LOAD\n';

/** The `hati users` subcommands, for yargs; `setRun` receives what the chosen one does. */
export function usersCommands(
  y: Argv,
  io: Io,
  stdin: () => PasswordInput,
  setRun: (run: () => Promise<number>) => void,
): Argv {
  const handler = (action: Action) => (args: unknown) => {
    setRun(() => runUsers(action, args as UsersFlags, io, stdin()));
  };
  const name = (c: Argv) =>
    c.positional('name', { type: 'string', description: 'The user name (A-Z a-z 0-9 _ . @ -)' });
  const rights = (c: Argv) =>
    name(c)
      .option('admin', {
        type: 'boolean',
        description: 'May run FLUSHALL, STATS, INFO, CLIENT LIST, ACL USERS and ACL LOAD',
      })
      .option('read', {
        type: 'string',
        requiresArg: true,
        description: 'May read keys matching <type>:<prefix> (memory:cache:, hdd:, *:) or * (repeatable)',
      })
      .option('write', {
        type: 'string',
        requiresArg: true,
        description: 'May write and delete keys matching <type>:<prefix> or * (repeatable)',
      })
      .option('publish', {
        type: 'string',
        requiresArg: true,
        description: 'May publish to routers matching this glob (orders.*) (repeatable)',
      })
      .option('consume', {
        type: 'string',
        requiresArg: true,
        description: 'May consume from queues matching this glob (repeatable)',
      })
      .option('manage', {
        type: 'string',
        requiresArg: true,
        description: 'May create, bind and delete routers and queues matching this glob (repeatable)',
      });
  return y
    .option('users-file', {
      type: 'string',
      requiresArg: true,
      default: './users.json',
      description: 'The users file to edit (also HATI_USERS_FILE); the one hati start --users-file reads',
    })
    .command(
      'add <name>',
      'Add a user; its password is read from stdin when piped (first line), or asked twice on a terminal',
      (c) =>
        rights(c)
          .option('token', {
            type: 'boolean',
            description: 'Also make a token (JSON-RPC Authorization: Bearer), printed once on stdout',
          })
          .option('token-only', {
            type: 'boolean',
            description: 'No password: the user logs in with tokens only (implies --token)',
          }),
      handler('add'),
    )
    .command(
      'set <name>',
      "Set a user's rights to exactly those given (none given: no rights); its password and tokens stay",
      rights,
      handler('set'),
    )
    .command('passwd <name>', "Change a user's password (read as for add)", name, handler('passwd'))
    .command('remove <name>', 'Remove a user', name, handler('remove'))
    .command(
      'list',
      'List the users and their rights (never their password hashes or tokens)',
      (c) => c.option('json', { type: 'boolean', description: 'As JSON, one object per user' }),
      handler('list'),
    )
    .command(
      'token <name>',
      'Make a new token for a user, printed once on stdout; its other tokens keep working unless --replace',
      (c) => name(c).option('replace', { type: 'boolean', description: "Drop the user's earlier tokens" }),
      handler('token'),
    )
    .demandCommand(1, 'name what to do: hati users add, set, passwd, remove, list or token')
    .epilogue(
      'Files are written whole and atomically, readable by their owner only (0600); passwords are stored as scrypt hashes and tokens as SHA-256 hashes. A running hati start re-reads its users file on SIGHUP or ACL LOAD.',
    );
}

/** A list flag as given once, several times, or not at all. */
function many(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** Runs one `hati users` subcommand; returns the exit code. */
export async function runUsers(action: Action, flags: UsersFlags, io: Io, input: PasswordInput): Promise<number> {
  const path = resolve(flags.usersFile);
  try {
    switch (action) {
      case 'add':
        return await add(path, flags, io, input);
      case 'set': {
        const granted = rightsOf(flags);
        const file = await load(path);
        const user = find(file, flags.name, path);
        for (const right of ['admin', ...RIGHTS] as const) delete user[right];
        Object.assign(user, granted);
        await save(path, file);
        io.stderr(`hati: set the rights of '${flags.name}' in ${path}: ${describeRights(user)}\n${RELOAD_HINT}`);
        return 0;
      }
      case 'passwd': {
        const file = await load(path);
        const user = find(file, flags.name, path);
        user.password = await hashPassword(await readPassword(input, io.stderr, flags.name));
        await save(path, file);
        io.stderr(`hati: changed the password of '${flags.name}' in ${path}\n${RELOAD_HINT}`);
        return 0;
      }
      case 'remove': {
        const file = await load(path);
        find(file, flags.name, path);
        file.users = file.users.filter((user) => user.name !== flags.name);
        await save(path, file);
        io.stderr(`hati: removed user '${flags.name}' from ${path}\n${RELOAD_HINT}`);
        return 0;
      }
      case 'list':
        return await list(path, flags, io);
      case 'token': {
        const file = await load(path);
        const user = find(file, flags.name, path);
        const earlier = user.tokens ?? [];
        const kept = flags.replace === true ? [] : earlier;
        const { token, stored } = newToken();
        user.tokens = [...kept, stored];
        await save(path, file);
        const others =
          earlier.length === 0
            ? ''
            : earlier.length === 1
              ? `; its other token ${flags.replace === true ? 'no longer works' : 'still works (--replace drops it)'}`
              : `; its ${earlier.length} other tokens ${flags.replace === true ? 'no longer work' : 'still work (--replace drops them)'}`;
        io.stderr(`hati: a new token for '${flags.name}', shown this once (${path} keeps only its hash)${others}:\n`);
        io.stdout(`${token}\n`);
        io.stderr(RELOAD_HINT);
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof UsersError) {
      io.stderr(`hati: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof PasswordInputError) {
      io.stderr(`hati: ${err.message}; nothing changed\n`);
      return 1;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'USERS_FILE_INVALID') {
      io.stderr(`hati: ${(err as Error).message}\n`);
      return 1;
    }
    io.stderr(`hati: cannot write ${path}: ${code ?? (err as Error).message}\n`);
    return 1;
  }
}

/** The rights the flags give, checked; a bad rule is a usage error (exit 2). */
function rightsOf(flags: UsersFlags): Partial<UserRecord> {
  const rights: Partial<UserRecord> = {};
  if (flags.admin === true) rights.admin = true;
  for (const right of RIGHTS) {
    const rules = many(flags[right]);
    for (const rule of rules) {
      try {
        if ((KEY_RIGHTS as readonly string[]).includes(right)) parseKeyRule(rule);
        else parseBrokerRule(rule);
      } catch (err) {
        throw new UsersError(`--${right}: ${(err as Error).message}`, 2);
      }
    }
    if (rules.length > 0) rights[right] = rules;
  }
  try {
    checkUserRecord({ name: flags.name, ...rights });
  } catch (err) {
    throw new UsersError((err as Error).message, 2);
  }
  return rights;
}

async function add(path: string, flags: UsersFlags, io: Io, input: PasswordInput): Promise<number> {
  const rights = rightsOf(flags);
  // Checked before the password is asked for, so a typo costs no typing.
  const file = await load(path, true);
  if (file.users.some((user) => user.name === flags.name)) {
    throw new UsersError(
      `user '${flags.name}' already exists in ${path}; hati users passwd changes its password, hati users remove removes it`,
    );
  }
  // The credentials first in the file, then the rights, as a reader looks for them.
  const password =
    flags.tokenOnly === true ? undefined : await hashPassword(await readPassword(input, io.stderr, flags.name));
  let token: string | undefined;
  let tokens: string[] | undefined;
  if (flags.token === true || flags.tokenOnly === true) {
    const made = newToken();
    token = made.token;
    tokens = [made.stored];
  }
  const user: UserRecord = {
    name: flags.name,
    ...(password !== undefined && { password }),
    ...(tokens !== undefined && { tokens }),
    ...rights,
  };
  // Read again: another `hati users` may have written while the password was typed.
  const current = await load(path, true);
  if (current.users.some((user) => user.name === flags.name)) {
    throw new UsersError(`user '${flags.name}' was added to ${path} meanwhile; nothing changed`);
  }
  current.users.push(user);
  await save(path, current);
  io.stderr(`hati: added user '${flags.name}' to ${path}: ${describeRights(user)}\n`);
  if (token !== undefined) {
    io.stderr(`hati: its token, shown this once (${path} keeps only its hash):\n`);
    io.stdout(`${token}\n`);
  }
  io.stderr(RELOAD_HINT);
  return 0;
}

/** The users file; a missing one is empty when `create`, otherwise an error naming the flag. */
async function load(path: string, create = false): Promise<UsersFile> {
  try {
    return await readUsersFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (create) return { version: 1, users: [] };
    throw new UsersError(
      `no users file at ${path} (hati users add creates it; --users-file or HATI_USERS_FILE names another)`,
    );
  }
}

async function save(path: string, file: UsersFile): Promise<void> {
  await writeUsersFile(path, file);
}

function find(file: UsersFile, name: string, path: string): UserRecord {
  const user = file.users.find((one) => one.name === name);
  if (user === undefined) {
    const names = file.users.map((one) => one.name);
    throw new UsersError(
      `no user '${name}' in ${path} (${names.length === 0 ? 'it has none' : `it has ${names.join(', ')}`})`,
    );
  }
  return user;
}

/** A rule as shown: quoted when it has spaces or separators in it. */
function showRule(rule: string): string {
  return /[\s,;"']/.test(rule) || rule === '' ? JSON.stringify(rule) : rule;
}

/** `admin; read memory:cache:, hdd:; publish orders.*`, or `no rights`. */
function describeRights(user: UserRecord): string {
  const parts: string[] = [];
  if (user.admin === true) parts.push('admin');
  for (const right of RIGHTS) {
    const rules = user[right] ?? [];
    if (rules.length > 0) parts.push(`${right} ${rules.map(showRule).join(', ')}`);
  }
  return parts.length === 0 ? 'no rights' : parts.join('; ');
}

/** How the user logs in: `password`, `password, 2 tokens`, `1 token`, or `cannot log in`. */
function describeLogin(user: UserRecord): string {
  const tokens = user.tokens?.length ?? 0;
  const parts = [
    ...(user.password !== undefined ? ['password'] : []),
    ...(tokens > 0 ? [`${tokens} token${tokens === 1 ? '' : 's'}`] : []),
  ];
  return parts.length === 0 ? 'cannot log in' : parts.join(', ');
}

/** `hati users list`: one line per user (`app: read hdd:; write hdd: (password, 1 token)`), or JSON; never a hash. */
async function list(path: string, flags: UsersFlags, io: Io): Promise<number> {
  const file = await load(path);
  if (flags.json === true) {
    const users = file.users.map((user) => ({
      name: user.name,
      admin: user.admin === true,
      ...Object.fromEntries(RIGHTS.map((right) => [right, user[right] ?? []])),
      password: user.password !== undefined,
      tokens: user.tokens?.length ?? 0,
    }));
    io.stdout(`${JSON.stringify(users, null, 2)}\n`);
    return 0;
  }
  if (file.users.length === 0) {
    io.stderr(`hati: no users in ${path}\n`);
    return 0;
  }
  const width = Math.max(...file.users.map((user) => user.name.length));
  for (const user of file.users) {
    io.stdout(`${`${user.name}:`.padEnd(width + 1)} ${describeRights(user)} (${describeLogin(user)})\n`);
  }
  return 0;
}
