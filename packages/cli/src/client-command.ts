import { readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ClientErrorCode, type HatiClient, HatiError } from '@hati/client';
import {
  allCommands,
  type CommandSpec,
  commands,
  lookupCommand,
  lookupSubcommand,
  type Reply,
  ReplyError,
} from '@hati/protocol';
import {
  CLIENT_CODES,
  type ConnectionFlags,
  connectFailure,
  connectTo,
  lastServerError,
  serverName,
  type TlsSettings,
  tlsSettings,
} from './connection.js';
import type { Io } from './main.js';
import { askPassword } from './password-input.js';
import { formatReply, prettyJson, rawReply } from './reply-format.js';
import { tokenize } from './tokenize.js';

export interface ClientFlags extends ConnectionFlags {
  /** true: print replies as they are; false: as redis-cli on a terminal; undefined: by stdout. */
  raw?: boolean;
  /** A command to run once, then exit. */
  command: string[];
}

/** What `hati client` reads and writes besides Io: the terminal. */
export interface Terminal {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
}

const HISTORY_SIZE = 1000;

function historyFile(env: NodeJS.ProcessEnv): string {
  return env.HATI_HISTORY_FILE ?? join(homedir(), '.hati_history');
}

/**
 * Whether a typed line holds a password: AUTH, HELLO ... AUTH, ACL SETUSER. Such a line never
 * enters the history, as in redis-cli. Quoted words count; matching too much only forgets a line.
 */
export function holdsSecret(line: string): boolean {
  return (
    /^\s*["']?auth["']?(\s|$)/i.test(line) ||
    /^\s*["']?hello["']?\s.*\bauth\b/i.test(line) ||
    /^\s*["']?acl["']?\s+["']?setuser\b/i.test(line)
  );
}

/** Prints the messages a subscription pushes (its confirmations are the command's reply). */
type PushPrinter = (items: Reply[]) => void;

/** Pushes printed as they come: pub/sub messages and broker deliveries (confirmations answer commands). */
const MESSAGE_KINDS = new Set(['message', 'pmessage', 'delivery']);

/**
 * A call that failed, as printed: a refusal by the server (WRONGPASS for the password the client
 * logs in with, AUTH_RATE_LIMITED, or what the server said before closing the connection) as
 * `(error) CODE message` like any error reply; the client's own (TLS_FAILED) as `hati: message`.
 */
function callFailure(err: unknown, client?: HatiClient): string {
  const said = client === undefined ? undefined : lastServerError.get(client);
  const reason =
    err instanceof HatiError && err.code === ClientErrorCode.CONNECTION_LOST && said !== undefined ? said : err;
  if (reason instanceof HatiError && !CLIENT_CODES.has(reason.code)) {
    // The client names the command first (`GET: AUTH as 'app': ...`, `HELLO: ...`): not what the user typed.
    const named = /^([A-Z][A-Z.]*): /.exec(reason.message);
    const message =
      named !== null && lookupCommand(named[1] as string) !== undefined
        ? reason.message.slice(named[0].length)
        : reason.message;
    return `(error) ${reason.code} ${message}`;
  }
  if (reason instanceof HatiError && reason.code === ClientErrorCode.TLS_FAILED)
    return `hati: ${connectFailure(reason)}`;
  return `hati: ${(reason as Error).message}`;
}

/**
 * `help SET`, `help CLIENT SETNAME`: the syntax and summary from the command table (a command
 * with subcommands lists them); undefined for no such command.
 */
export function commandHelp(name: string, sub?: string): string | undefined {
  const spec = lookupCommand(name);
  if (spec === undefined) return undefined;
  const subSpec = sub === undefined ? undefined : lookupSubcommand(spec, sub);
  if (sub !== undefined && subSpec === undefined) return undefined;
  const shown = [subSpec ?? spec, ...(subSpec === undefined ? Object.values(spec.subcommands ?? {}) : [])];
  return shown.map((one) => `${one.syntax}\n  ${one.summary}\n`).join('');
}

/** The text `help [command [subcommand]]` prints, or its error. */
function help(words: string[]): { text: string } | { error: string } {
  const [name, sub] = words;
  if (name === undefined) return { text: helpText() };
  const text = commandHelp(name, sub);
  return text === undefined ? { error: `no command '${words.join(' ')}'; help lists them` } : { text };
}

/** A reply printer: raw bytes, or formatted as redis-cli does, with JSON replies (STATS) indented. */
function printer(raw: boolean, terminal: Terminal): (reply: Reply, command?: CommandSpec) => void {
  return (reply, command) => {
    if (raw) terminal.stdout.write(Buffer.concat([rawReply(reply), Buffer.from('\n')]));
    else terminal.stdout.write(`${(command?.reply === 'json' && prettyJson(reply)) || formatReply(reply)}\n`);
  };
}

/**
 * `hati client`: runs one command (`hati client GET memory k`), the commands piped to stdin
 * one per line, or an interactive prompt with history. Replies print as redis-cli prints
 * them: on a terminal formatted ("quoted", (nil), (integer) 3, numbered arrays,
 * (error) CODE message), otherwise raw. Exit code 1 when a command failed.
 */
export async function runClient(flags: ClientFlags, io: Io, terminal: Terminal): Promise<number> {
  const name = serverName(flags);
  const print = printer(flags.raw ?? terminal.stdout.isTTY !== true, terminal);
  // A one-shot command's reply prints first: pushes that arrive with it (CONSUME's first
  // deliveries) wait until it has.
  let replied = flags.command.length === 0;
  const early: Reply[][] = [];
  const printMessage: PushPrinter = (items) => {
    if (!MESSAGE_KINDS.has(String(items[0]))) return;
    if (replied) print(items);
    else early.push(items);
  };
  // `hati client help SET` needs no server.
  if (flags.command[0]?.toLowerCase() === 'help') {
    const answer = help(flags.command.slice(1));
    if ('error' in answer) {
      io.stderr(`hati: ${answer.error}\n`);
      return 1;
    }
    terminal.stdout.write(answer.text);
    return 0;
  }
  const prompt = flags.command.length === 0 && terminal.stdin.isTTY === true;
  let tls: TlsSettings | undefined;
  try {
    tls = await tlsSettings(flags);
    if (flags.askpass === true) flags = { ...flags, password: await askPassword(terminal.stdin, io.stderr) };
  } catch (err) {
    io.stderr(`hati: ${(err as Error).message}\n`);
    return 1;
  }
  let client: HatiClient | undefined;
  try {
    client = await connectTo(flags, name, tls, printMessage, io.stderr);
  } catch (err) {
    io.stderr(`hati: ${(err as Error).message}\n`);
    // The prompt opens anyway, as redis-cli's does: `not connected> `, connecting on each command.
    if (!prompt) return 1;
  }
  try {
    if (prompt) return await interactive(flags, name, tls, client, terminal, io, print, printMessage);
    const connected = client as HatiClient;
    if (flags.command.length > 0) {
      const args = joinRest(flags.command);
      const reply = await connected.sendCommand(args);
      if (reply instanceof ReplyError) {
        io.stderr(`${formatReply(reply)}\n`);
        return 1;
      }
      const spec = lookupCommand(args[0] ?? '');
      print(reply, spec);
      replied = true;
      for (const items of early.splice(0)) print(items);
      // SUBSCRIBE, PSUBSCRIBE and CONSUME print what is pushed until Ctrl-C or the connection's
      // end, as redis-cli does for subscriptions.
      if (spec !== undefined && keepsPushing(spec)) await untilInterrupted(connected);
      return 0;
    }
    return await piped(connected, terminal, io, print);
  } catch (err) {
    io.stderr(`${callFailure(err, client)}\n`);
    return 1;
  } finally {
    await client?.close();
  }
}

/** Whether the server pushes to the connection after this command's reply. */
function keepsPushing(spec: CommandSpec): boolean {
  return (spec.group === 'pubsub' && spec.args[0]?.optional !== true) || spec.name === 'CONSUME';
}

/** Resolves on Ctrl-C or when the connection closes. */
function untilInterrupted(client: HatiClient): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      resolve();
    };
    process.once('SIGINT', done);
    client.once('close', done);
  });
}

/**
 * A command from the shell's words. As in the inline form, the argument that takes the rest of
 * the line (SET's value) takes the remaining words, joined by spaces:
 * `hati client SET memory 0 greeting hello world` stores `hello world`. Words after it that
 * are all the command's flag options stay options: `SET memory 0 k v NX`.
 */
export function joinRest(words: string[]): string[] {
  const spec = lookupCommand(words[0] ?? '');
  if (spec?.inlineRest === undefined) return words;
  let cut = 1 + spec.inlineRest;
  // PUBLISH's options come before the message: `PUBLISH r k DELAY 500 hello world`.
  if (spec.optionsBeforeLast === true) {
    for (;;) {
      const option = spec.options.find((candidate) => candidate.token === words[cut]?.toUpperCase());
      const takes = 1 + (option?.args?.length ?? 0);
      if (option === undefined || cut + takes >= words.length) break;
      cut += takes;
    }
  }
  const after = words.slice(cut + 1);
  const flags = new Set(spec.options.filter((option) => option.args === undefined).map((option) => option.token));
  if (after.length === 0 || after.every((word) => flags.has(word.toUpperCase()))) return words;
  return [...words.slice(0, cut), words.slice(cut).join(' ')];
}

/** Commands from a pipe, one per line; errors go to stderr and make the exit code 1. */
async function piped(
  client: HatiClient,
  terminal: Terminal,
  io: Io,
  print: (reply: Reply, command?: CommandSpec) => void,
): Promise<number> {
  let failed = false;
  for await (const line of createInterface({ input: terminal.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
    let args: Buffer[] | undefined;
    try {
      args = tokenize(line);
    } catch (err) {
      io.stderr(`(error) ${(err as Error).message}\n`);
      failed = true;
      continue;
    }
    if (args === undefined) continue;
    const reply = await client.sendCommand(args);
    if (reply instanceof ReplyError) {
      io.stderr(`${formatReply(reply)}\n`);
      failed = true;
    } else {
      print(reply, lookupCommand(args[0] as Buffer));
    }
  }
  return failed ? 1 : 0;
}

const specs: readonly CommandSpec[] = allCommands();

/** `help`: every command and subcommand with its syntax and summary, from the protocol's command table. */
export function helpText(): string {
  const width = Math.max(...specs.map((spec) => spec.syntax.length));
  return `${specs.map((spec) => `${spec.syntax.padEnd(width)}  ${spec.summary}`).join('\n')}\n`;
}

/** Tab completion: command names first, then a subcommand or a storage type where the command takes one. */
export function complete(line: string): [string[], string] {
  const words = line.split(/\s+/);
  const word = words.at(-1) ?? '';
  if (words.length === 1) {
    const names = [...Object.keys(commands), 'HELP', 'QUIT', 'EXIT'];
    return [[...new Set(names)].filter((name) => name.startsWith(word.toUpperCase())), word];
  }
  const spec = lookupCommand(words[0] ?? '');
  if (words.length === 2 && spec?.subcommands !== undefined) {
    return [Object.keys(spec.subcommands).filter((name) => name.startsWith(word.toUpperCase())), word];
  }
  if (words.length === 2 && spec?.args[0]?.kind === 'storageType') {
    return [['memory', 'hdd'].filter((type) => type.startsWith(word.toLowerCase())), word];
  }
  return [[], word];
}

/**
 * The prompt: `127.0.0.1:4242> `, with history kept in ~/.hati_history (HATI_HISTORY_FILE).
 * While the server cannot be reached the prompt is `not connected> `, and each command first
 * connects again; a command whose connection broke is reported, never sent twice.
 */
async function interactive(
  flags: ClientFlags,
  name: string,
  tls: TlsSettings | undefined,
  connected: HatiClient | undefined,
  terminal: Terminal,
  io: Io,
  print: (reply: Reply, command?: CommandSpec) => void,
  printMessage: PushPrinter,
): Promise<number> {
  let client = connected;
  const file = historyFile(io.env);
  const history = await readFile(file, 'utf8')
    .then((text) =>
      text
        .split('\n')
        .filter((line) => line !== '')
        .reverse()
        .slice(0, HISTORY_SIZE),
    )
    .catch(() => [] as string[]);
  const rl = createInterface({
    input: terminal.stdin,
    output: terminal.stdout,
    prompt: `${name}> `,
    history,
    historySize: HISTORY_SIZE,
    terminal: true,
    completer: complete,
  });
  const saveHistory = (lines: string[]) =>
    writeFile(
      file,
      `${lines
        .filter((line) => !holdsSecret(line))
        .reverse()
        .join('\n')}\n`,
      { mode: 0o600 },
    ).catch(() => {
      /* history is a convenience: a read-only home must not stop the client */
    });
  let lastHistory = history;
  rl.on('history', (lines: string[]) => {
    // `lines` is the prompt's own history (readline lets a listener edit it): a line with a
    // password leaves it at once, so neither the file nor the up arrow ever shows it.
    if (lines[0] !== undefined && holdsSecret(lines[0])) lines.shift();
    lastHistory = lines;
  });
  // Ctrl-C clears a typed line; on an empty line it leaves, as Ctrl-D does.
  rl.on('SIGINT', () => {
    if (rl.line === '') {
      rl.close();
      return;
    }
    rl.write(null, { ctrl: true, name: 'e' });
    rl.write(null, { ctrl: true, name: 'u' });
  });
  const prompt = () => {
    rl.setPrompt(client?.state === 'ready' ? `${name}> ` : 'not connected> ');
    rl.prompt();
  };
  prompt();
  let quit = false;
  for await (const line of rl) {
    const words = line.trim().split(/\s+/);
    const first = words[0]?.toLowerCase();
    if (words.length === 1 && (first === 'quit' || first === 'exit')) {
      quit = true;
      break;
    }
    if (first === 'help') {
      const answer = help(words.slice(1));
      terminal.stdout.write('error' in answer ? `(error) ${answer.error}\n` : answer.text);
      prompt();
      continue;
    }
    let args: Buffer[] | undefined;
    try {
      args = tokenize(line);
    } catch (err) {
      terminal.stdout.write(`(error) ${(err as Error).message}\n`);
    }
    if (args !== undefined) {
      if (client?.state !== 'ready') {
        await client?.close();
        client = await connectTo(flags, name, tls, printMessage, io.stderr).catch((err: Error) => {
          terminal.stdout.write(`hati: ${err.message}\n`);
          return undefined;
        });
      }
      if (client !== undefined) {
        try {
          print(await client.sendCommand(args), lookupCommand(args[0] as Buffer));
        } catch (err) {
          const failure = callFailure(err, client);
          terminal.stdout.write(`${failure.startsWith('(error) ') ? failure : `(error) ${(err as Error).message}`}\n`);
        }
        if (client.state !== 'ready') terminal.stdout.write(`hati: the connection to ${name} closed\n`);
      }
    }
    prompt();
  }
  // Ctrl-D or Ctrl-C left the cursor after the prompt: the shell's prompt goes on a line of its own.
  if (!quit) terminal.stdout.write('\n');
  rl.close();
  await client?.close();
  await saveHistory(lastHistory);
  return 0;
}
