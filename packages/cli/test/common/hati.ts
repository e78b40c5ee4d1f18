// Test helpers: the real `hati` binary as a child process, and raw protocol clients (from
// @hati/test-helpers, with their own RESP reader), so tests see exactly what a user's terminal
// and tools see.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Address, encodeCommand, RawClient, type Run, rpcPost, run, text, within } from '@hati/test-helpers';
import type { Test } from 'tap';

export {
  type Address,
  RawClient,
  type Reply,
  ReplyError,
  type ReplyMap,
  tempDir,
  text,
  within,
} from '@hati/test-helpers';

export const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/bin.cjs');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A command that starts hati under another process: `wrapper` runs `sh -c '<prelude> && exec ...'`. */
interface Wrap {
  wrapper: string[];
  prelude: string;
}

/** `'a b'` → `'a b'` quoted for sh. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** One line of `hati start`'s log (stderr), text or json, as its reader sees it. */
export interface LogLine {
  /** error, warn, info or debug; undefined for a line that is not a log line (a usage error). */
  level: string | undefined;
  /** The message: `tcp listening on 127.0.0.1:4242` (the whole line when it is no log line). */
  msg: string;
  /** The structured fields of a json line (`listener`, `address`, ...); empty for text. */
  fields: Record<string, unknown>;
}

const TEXT_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (error|warn|info|debug) (.*)$/;

/** The log lines of a stream (`<ISO time> <level> <message>`, or pino's JSON objects). */
export function logLines(text: string): LogLine[] {
  return lines(text).map((line) => {
    const match = TEXT_LINE.exec(line);
    if (match) return { level: match[2], msg: match[3] as string, fields: {} };
    if (line.startsWith('{')) {
      try {
        const { level, msg, time: _time, pid: _pid, hostname: _hostname, ...fields } = JSON.parse(line);
        if (typeof level === 'string' && typeof msg === 'string') return { level, msg, fields };
      } catch {
        // Not JSON after all: a line as it is.
      }
    }
    return { level: undefined, msg: line, fields: {} };
  });
}

/** The messages of a stream's log lines, without time and level: what tests match, in either format. */
export function messages(text: string): string[] {
  return logLines(text).map((line) => line.msg);
}

/** The messages of a stream's log lines at `level` (`error`: why a start-up failed). */
export function logged(text: string, level: string): string[] {
  return logLines(text)
    .filter((line) => line.level === level)
    .map((line) => line.msg);
}

/** A running `node dist/bin.cjs ...`; killed (SIGKILL) after the test if still running. */
export class Hati {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  #waiters: Array<() => void> = [];

  constructor(t: Test, args: string[], env: Record<string, string> = {}, wrap?: Wrap) {
    // No HATI_* of the parent reaches the child: only what the test names.
    const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HATI_')));
    // tap re-adds its NODE_OPTIONS preload to every child it sees spawned; that preload starts
    // the thread pool before bin.cjs can size it, which a user's `hati` never has. `env -u`
    // drops it and execs node, so the pid is still hati's.
    const [command, prefix] =
      process.platform === 'win32' ? [process.execPath, []] : ['env', ['-u', 'NODE_OPTIONS', process.execPath]];
    let argv = [command, ...prefix, BIN, ...args];
    if (wrap !== undefined) {
      // Every step execs, so the pid is still hati's.
      argv = [...wrap.wrapper, 'sh', '-c', `${wrap.prelude} && exec ${argv.map(shellQuote).join(' ')}`];
    }
    this.child = spawn(argv[0] as string, argv.slice(1), {
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      this.stdout += text;
      this.#wake();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      this.stderr += text;
      this.#wake();
    });
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal };
        this.#wake();
        resolve(this.exit);
      });
    });
    t.teardown(async () => {
      if (this.exit === undefined) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    });
  }

  static spawn(t: Test, args: string[], env?: Record<string, string>): Hati {
    return new Hati(t, ['start', ...args], env);
  }

  /** `hati start <args>` run as `<wrapper> sh -c '<prelude> && exec hati start ...'` (a network namespace, a ulimit). */
  static wrapped(t: Test, wrapper: string[], prelude: string, args: string[]): Hati {
    return new Hati(t, ['start', ...args], {}, { wrapper, prelude });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** The lines logged so far (stderr), parsed. */
  get log(): LogLine[] {
    return logLines(this.stderr);
  }

  /** The messages of the log's lines at `level` (`error`: what made a start-up fail). */
  logged(level: string): string[] {
    return logged(this.stderr, level);
  }

  /** The messages logged so far (stderr), one per line, in text or json format alike. */
  get messages(): string[] {
    return messages(this.stderr);
  }

  /**
   * Waits until the log's messages (stderr, one per line, without time and level: `^` and `$`
   * with the `m` flag are a message's ends) match `pattern`; throws with both streams if the
   * child exits first or time runs out.
   */
  async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.messages.join('\n').match(pattern);
      if (match) return match;
      if (this.exit !== undefined || Date.now() > deadline) {
        throw new Error(
          `hati printed no ${pattern} (exit ${JSON.stringify(this.exit)})\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
        );
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** The TCP listener's address, from its start-up line (`tcp listening on` or `tcp (tls) listening on`). */
  async tcp(): Promise<Address> {
    const [, host, port] = (await this.waitFor(/^tcp(?: \(tls\))? listening on (\S+):(\d+)$/m)) as string[];
    return { host: host as string, port: Number(port) };
  }

  /** The JSON-RPC listener's address, from its start-up line (http or https). */
  async rpc(): Promise<Address> {
    const [, host, port] = (await this.waitFor(/^json-rpc listening on https?:\/\/(\S+):(\d+)\/$/m)) as string[];
    return { host: host as string, port: Number(port) };
  }

  /** The metrics listener's address (--metrics-port), from `metrics listening on http://<host:port>/metrics`. */
  async metrics(): Promise<Address> {
    const [, host, port] = (await this.waitFor(/^metrics listening on http:\/\/(\S+):(\d+)\/metrics$/m)) as string[];
    return { host: host as string, port: Number(port) };
  }

  async unix(): Promise<string> {
    return ((await this.waitFor(/^unix socket listening on (.+)$/m)) as string[])[1] as string;
  }

  /** Waits for the exit; a child still running after `timeoutMs` is an error (and is killed in teardown). */
  waitExit(timeoutMs = 15_000): Promise<Exit> {
    return within(this.exited, timeoutMs, () => `hati exit\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
  }

  /** Sends SIGHUP and waits for the `SIGHUP: ...` message it logs (what it reloaded, or why not); returns it. */
  async hangup(timeoutMs = 10_000): Promise<string> {
    const hangups = () => this.messages.filter((message) => message.startsWith('SIGHUP: '));
    const before = hangups().length;
    this.child.kill('SIGHUP');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const fresh = hangups()[before];
      if (fresh !== undefined) return fresh;
      if (this.exit !== undefined || Date.now() > deadline) {
        throw new Error(
          `no SIGHUP line (exit ${JSON.stringify(this.exit)})\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
        );
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

/**
 * Runs `hati ...args` to its end (the real binary), with `input` on stdin; of the HATI_*
 * variables only those in `env` reach it.
 */
export function runHati(
  args: string[],
  options: { input?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<Run> {
  // NODE_OPTIONS: tap's preload, which a user's `hati` never has (see Hati).
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('HATI_') && name !== 'NODE_OPTIONS'),
  );
  return run(process.execPath, [BIN, ...args], {
    input: options.input ?? '',
    env: { ...base, ...options.env },
    ...(options.cwd !== undefined && { cwd: options.cwd }),
  });
}

/** Lines of a stream's text, without the empty one after the last newline. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** Calls one JSON-RPC method; returns the HTTP status and the parsed response. */
export async function rpcCall(
  address: Address,
  method: string,
  params?: unknown,
): Promise<{ status: number; body: { result?: unknown; error?: unknown } }> {
  const { status, json } = await rpcPost(address, {
    jsonrpc: '2.0',
    id: 1,
    method,
    ...(params !== undefined && { params }),
  });
  return { status, body: json as { result?: unknown; error?: unknown } };
}

/**
 * Write load: `connections` clients, each keeping a window of pipelined
 * `SET hdd 0 key-<conn>-<n> v<n>` in flight until the server closes it. `acked` holds every
 * key whose reply was `+OK`, in the order acknowledged.
 */
export class WriteLoad {
  readonly clients: RawClient[];
  readonly acked: string[] = [];
  readonly otherReplies: unknown[] = [];
  sent = 0;
  #stopped = false;

  private constructor(clients: RawClient[]) {
    this.clients = clients;
  }

  static async start(t: Test, address: Address, connections = 20, batch = 50): Promise<WriteLoad> {
    const clients = await Promise.all(Array.from({ length: connections }, () => RawClient.open(t, address)));
    const load = new WriteLoad(clients);
    clients.forEach((client, c) => {
      const inFlight: string[] = [];
      let n = 0;
      const send = () => {
        if (load.#stopped || client.socket.destroyed || !client.socket.writable) return;
        const parts: Buffer[] = [];
        for (let i = 0; i < batch; i++, n++) {
          const key = `key-${c}-${n}`;
          inFlight.push(key);
          parts.push(encodeCommand(['SET', 'hdd', '0', key, `v${n}`]));
        }
        load.sent += batch;
        client.write(Buffer.concat(parts));
      };
      client.onReply = (reply) => {
        const key = inFlight.shift();
        if (reply === 'OK' && key !== undefined) load.acked.push(key);
        else load.otherReplies.push(reply);
        // Two batches in flight: the server always has requests it has read and not answered.
        if (inFlight.length <= batch) send();
      };
      send();
      send();
    });
    return load;
  }

  /** Stops sending new batches (replies still count). */
  stop(): void {
    this.#stopped = true;
  }

  async closed(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.closed()));
  }
}

/** The value `WriteLoad` wrote for a key. */
export function writtenValue(key: string): string {
  return `v${key.slice(key.lastIndexOf('-') + 1)}`;
}

/** GETs every key in pipelined batches; returns the keys whose value is missing or wrong. */
export async function missingKeys(client: RawClient, keys: string[], batch = 2_000): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < keys.length; i += batch) {
    const slice = keys.slice(i, i + batch);
    const from = client.replies.length;
    client.write(Buffer.concat(slice.map((key) => encodeCommand(['GET', 'hdd', key]))));
    const replies = await client.next(slice.length, from);
    slice.forEach((key, j) => {
      const reply = replies[j];
      if (reply === undefined || text(reply) !== writtenValue(key)) missing.push(key);
    });
  }
  return missing;
}
