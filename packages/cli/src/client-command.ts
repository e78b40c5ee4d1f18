import { readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createClient, type HatiClient } from '@hati/client';
import { type CommandSpec, commands, lookupCommand, type Reply, ReplyError } from '@hati/protocol';
import type { Io } from './main.js';
import { formatReply, rawReply } from './reply-format.js';
import { tokenize } from './tokenize.js';

export interface ClientFlags {
  tcpHost: string;
  tcpPort: number;
  unix?: string;
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

/** Connects, or explains why not. */
async function connectTo(flags: ClientFlags): Promise<{ client: HatiClient; name: string }> {
  const name = flags.unix ?? `${flags.tcpHost}:${flags.tcpPort}`;
  const client = createClient({
    ...(flags.unix !== undefined ? { path: flags.unix } : { host: flags.tcpHost, port: flags.tcpPort }),
    reconnect: false,
    connectTimeout: 5000,
  });
  let failure: Error | undefined;
  client.on('error', (err) => {
    failure ??= err;
  });
  await new Promise<void>((resolve) => {
    client.once('connect', resolve);
    client.once('close', resolve);
  });
  if (client.state !== 'ready') {
    const reason = (failure as NodeJS.ErrnoException | undefined)?.code ?? failure?.message ?? 'closed';
    throw new Error(`cannot connect to ${name}: ${reason}`);
  }
  return { client, name };
}

/**
 * `hati client`: runs one command (`hati client GET memory k`), the commands piped to stdin
 * one per line, or an interactive prompt with history. Replies print as redis-cli prints
 * them: on a terminal formatted ("quoted", (nil), (integer) 3, numbered arrays,
 * (error) CODE message), otherwise raw. Exit code 1 when a command failed.
 */
export async function runClient(flags: ClientFlags, io: Io, terminal: Terminal): Promise<number> {
  let connection: { client: HatiClient; name: string };
  try {
    connection = await connectTo(flags);
  } catch (err) {
    io.stderr(`hati: ${(err as Error).message}\n`);
    return 1;
  }
  const { client, name } = connection;
  const raw = flags.raw ?? terminal.stdout.isTTY !== true;
  const print = (reply: Reply) => {
    if (raw) terminal.stdout.write(Buffer.concat([rawReply(reply), Buffer.from('\n')]));
    else terminal.stdout.write(`${formatReply(reply)}\n`);
  };
  try {
    if (flags.command.length > 0) {
      const reply = await client.sendCommand(joinRest(flags.command));
      if (reply instanceof ReplyError) {
        io.stderr(`${formatReply(reply)}\n`);
        return 1;
      }
      print(reply);
      return 0;
    }
    if (terminal.stdin.isTTY !== true) return await piped(client, terminal, io, print);
    return await interactive(client, name, terminal, io, print);
  } catch (err) {
    io.stderr(`hati: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

/**
 * A command from the shell's words. As in the inline form, the argument that takes the rest of
 * the line (SET's value) takes the remaining words, joined by spaces:
 * `hati client SET memory 0 greeting hello world` stores `hello world`.
 */
function joinRest(words: string[]): string[] {
  const spec = lookupCommand(words[0] ?? '');
  if (spec?.inlineRest === undefined || words.length - 1 <= spec.maxArgs) return words;
  const cut = 1 + spec.inlineRest;
  return [...words.slice(0, cut), words.slice(cut).join(' ')];
}

/** Commands from a pipe, one per line; errors go to stderr and make the exit code 1. */
async function piped(client: HatiClient, terminal: Terminal, io: Io, print: (reply: Reply) => void): Promise<number> {
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
      print(reply);
    }
  }
  return failed ? 1 : 0;
}

const specs: readonly CommandSpec[] = Object.values(commands);

/** `help`: every command with its syntax and summary, from the protocol's command table. */
export function helpText(): string {
  const width = Math.max(...specs.map((spec) => spec.syntax.length));
  return `${specs.map((spec) => `${spec.syntax.padEnd(width)}  ${spec.summary}`).join('\n')}\n`;
}

/** Tab completion: command names first, then a storage type where the command takes one. */
export function complete(line: string): [string[], string] {
  const words = line.split(/\s+/);
  const word = words.at(-1) ?? '';
  if (words.length === 1) {
    const names = [...specs.map((spec) => spec.name), 'HELP', 'QUIT', 'EXIT'];
    return [[...new Set(names)].filter((name) => name.startsWith(word.toUpperCase())), word];
  }
  const spec = lookupCommand(words[0] ?? '');
  if (words.length === 2 && spec?.args[0]?.kind === 'storageType') {
    return [['memory', 'hdd'].filter((type) => type.startsWith(word.toLowerCase())), word];
  }
  return [[], word];
}

/** The prompt: `127.0.0.1:4242> `, with history kept in ~/.hati_history (HATI_HISTORY_FILE). */
async function interactive(
  client: HatiClient,
  name: string,
  terminal: Terminal,
  io: Io,
  print: (reply: Reply) => void,
): Promise<number> {
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
    writeFile(file, `${[...lines].reverse().join('\n')}\n`).catch(() => {
      /* history is a convenience: a read-only home must not stop the client */
    });
  let lastHistory = history;
  rl.on('history', (lines: string[]) => {
    lastHistory = lines;
  });
  rl.prompt();
  for await (const line of rl) {
    const trimmed = line.trim().toLowerCase();
    if (trimmed === 'quit' || trimmed === 'exit') break;
    if (trimmed === 'help') {
      terminal.stdout.write(helpText());
      rl.prompt();
      continue;
    }
    try {
      const args = tokenize(line);
      if (args !== undefined) print(await client.sendCommand(args));
    } catch (err) {
      terminal.stdout.write(`(error) ${(err as Error).message}\n`);
    }
    if (client.state === 'closed') {
      io.stderr(`hati: the connection to ${name} closed\n`);
      break;
    }
    rl.prompt();
  }
  rl.close();
  await saveHistory(lastHistory);
  return 0;
}
