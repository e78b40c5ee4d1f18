// `hati backup export|import|inspect`: a consistent snapshot of a running server into a backup
// file (src/backup-file.ts), and back into a running server (BACKUP LOAD, pipelined) or a
// stopped one's data directory (openBackupTarget). docs/backup.md is the user's side of this.
import { once } from 'node:events';
import { createReadStream, unlinkSync } from 'node:fs';
import { type FileHandle, open, rename, stat, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import type { HatiClient } from '@hati/client';
import { type BackupRecord, type BackupRecordKind, type Reply, ReplyError, recordToFields } from '@hati/protocol';
import type { Argv } from 'yargs';
import {
  BackupDecoder,
  BackupEncoder,
  BackupFileError,
  type BackupHeader,
  type DecodedBlock,
  emptyCounts,
  type KindCounts,
} from './backup-file.js';
import { type ConnectionFlags, connect, connectionOptions, serverName } from './connection.js';
import type { Io } from './main.js';
import { formatBytes, formatCount, Progress } from './progress.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export interface BackupFlags extends ConnectionFlags {
  /** export: the file to write, or `-` for stdout. */
  out?: string;
  /** import: the file to read, or `-` for stdin. */
  in?: string;
  /** inspect: the file to read. */
  file?: string;
  /** export: memory keys too. */
  memory?: boolean;
  /** import: empty the server first. */
  replace?: boolean;
  /** import: into this stopped server's data directory instead of a running server. */
  dataDir?: string;
  shards?: number;
  hddDurability?: string;
  /** inspect: as JSON. */
  json?: boolean;
  /** Draw the progress bar: undefined = when stderr is a terminal. */
  progress?: boolean;
}

type Action = 'export' | 'import' | 'inspect';

/** A failure shown as one `hati: ...` line, with its exit code (1: it failed; 2: bad input). */
class BackupError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** The `hati backup` subcommands, for yargs; `setRun` receives what the chosen one does. */
export function backupCommands(y: Argv, io: Io, setRun: (run: () => Promise<number>) => void): Argv {
  const handler = (action: Action) => (args: unknown) => {
    setRun(() => runBackup(action, args as BackupFlags, io));
  };
  const progress = (c: Argv) =>
    c.option('progress', {
      type: 'boolean',
      description: 'Draw the progress bar on stderr (default: when stderr is a terminal; --no-progress: never)',
    });
  return y
    .command(
      'export',
      'Write a consistent snapshot of a running server to a file: hdd keys, broker definitions, hdd queue messages and dead letters (and memory keys with --memory)',
      (c) =>
        progress(connectionOptions(c))
          .option('out', {
            alias: 'o',
            type: 'string',
            requiresArg: true,
            description: 'The file to write (written under a temporary name, renamed when complete), or - for stdout',
          })
          .option('memory', { type: 'boolean', description: 'Memory keys too (a snapshot of them at the same moment)' })
          .check((argv) => {
            if ((argv as unknown as BackupFlags).out === undefined) {
              throw new Error('name the file to write: --out <file>, or --out - for stdout');
            }
            return true;
          })
          .epilogue(
            'Needs a user with the admin right. The server keeps serving while the snapshot is read: writes after it began are not in the file. See docs/backup.md.',
          ),
      handler('export'),
    )
    .command(
      'import',
      'Load a backup file into a running server (merged, or --replace), or into a stopped server with --data-dir',
      (c) =>
        progress(connectionOptions(c))
          .option('in', {
            alias: 'i',
            type: 'string',
            requiresArg: true,
            description:
              'The backup to read, or - for stdin. A file is checked whole before anything is loaded; stdin block by block as it is loaded',
          })
          .option('replace', {
            type: 'boolean',
            description:
              'First remove every key (memory and hdd), every queue (with its messages and dead letters) and every router: the server then holds exactly what the file holds',
          })
          .option('data-dir', {
            type: 'string',
            requiresArg: true,
            description:
              'Load into the data directory of a stopped server (hati start --data-dir) instead of a running one',
          })
          .option('shards', {
            requiresArg: true,
            coerce: positive('shards'),
            description:
              'With --data-dir: the shard count the server runs with (as hati start --shards; default: the count the store was written with, 1 for a new one)',
          })
          .option('hdd-durability', {
            type: 'string',
            requiresArg: true,
            choices: ['always', 'everysec', 'no'],
            description:
              'With --data-dir: as hati start --hdd-durability (what is loaded is on disk when the import ends, unless no)',
          })
          .check((argv) => {
            const flags = argv as unknown as BackupFlags;
            if (flags.in === undefined) throw new Error('name the file to read: --in <file>, or --in - for stdin');
            if (flags.dataDir === '') throw new Error('--data-dir is empty');
            if (flags.dataDir !== undefined && flags.replace === true) {
              throw new Error(
                "--replace is for a running server; to replace a stopped server's data, move its data directory away and import into an empty one",
              );
            }
            if (flags.dataDir === undefined && (flags.shards !== undefined || flags.hddDurability !== undefined)) {
              throw new Error('--shards and --hdd-durability go with --data-dir');
            }
            return true;
          })
          .epilogue(
            'Keys keep their absolute expiry (those already expired are skipped); without --replace, a key in the file overwrites the same key on the server, and a router or queue defined differently on the server stops the import. On any failure it stops and says what it loaded. See docs/backup.md.',
          ),
      handler('import'),
    )
    .command(
      'inspect <file>',
      'Check every checksum of a backup file and print what it holds',
      (c) =>
        progress(
          c
            .positional('file', { type: 'string', description: 'The backup file (- for stdin)' })
            .option('json', { type: 'boolean', description: 'As one JSON document' }),
        ),
      handler('inspect'),
    )
    .demandCommand(1, 'name what to do: hati backup export, import or inspect')
    .epilogue('A backup file is versioned, compressed (Brotli) and checksummed per block; see docs/backup.md.');
}

function positive(name: string) {
  return (value: unknown) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > 1024 || String(value).trim() === '') {
      throw new Error(`--${name} must be an integer from 1 to 1024, got '${String(value)}'`);
    }
    return n;
  };
}

/** Runs one `hati backup` subcommand; returns the exit code. */
export async function runBackup(action: Action, flags: BackupFlags, io: Io): Promise<number> {
  const progress = new Progress({
    write: io.stderr,
    enabled: flags.progress ?? process.stderr.isTTY === true,
    label: action === 'export' ? 'exporting' : 'verifying',
    // 0 when the terminal does not say (a pty without a size).
    columns: process.stderr.columns || 80,
  });
  try {
    switch (action) {
      case 'export':
        return await runExport(flags, io, progress);
      case 'import':
        return await runImport(flags, io, progress);
      case 'inspect':
        return await runInspect(flags, io, progress);
    }
  } catch (err) {
    progress.clear();
    if (err instanceof BackupError) {
      io.stderr(`hati: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Descriptions

const KIND_NAMES: ReadonlyArray<[BackupRecordKind, string, string]> = [
  ['router', 'router', 'routers'],
  ['queue', 'queue', 'queues'],
  ['binding', 'binding', 'bindings'],
  ['message', 'message', 'messages'],
  ['dead', 'dead letter', 'dead letters'],
];

const counted = (n: number, one: string, many: string) => `${formatCount(n)} ${n === 1 ? one : many}`;

/** `3 keys (2 hdd, 1 memory), 1 router, 0 queues, ...`: every kind, so a reader sees what is absent too. */
export function describeCounts(counts: KindCounts, keys: { hdd: number; memory: number }): string {
  const parts = [
    `${counted(counts.key, 'key', 'keys')} (${formatCount(keys.hdd)} hdd, ${formatCount(keys.memory)} memory)`,
  ];
  for (const [kind, one, many] of KIND_NAMES) parts.push(counted(counts[kind], one, many));
  return parts.join(', ');
}

/** What a header says the file holds, in words. */
function describeContents(header: BackupHeader): string {
  const parts: string[] = [];
  if (header.contents?.hdd) parts.push('hdd keys');
  if (header.contents?.memory) parts.push('memory keys');
  if (header.contents?.broker) parts.push('broker definitions, hdd queue messages and dead letters');
  return parts.length === 0 ? 'nothing' : parts.join(', ');
}

/** `12.3 MB in 2.1 s: 47,619 records/s, 5.86 MB/s` (bytes of the file). */
function describePace(bytes: number, records: number, seconds: number): string {
  const s = Math.max(seconds, 0.001);
  return `${formatBytes(bytes)} in ${seconds.toFixed(1)} s: ${formatCount(records / s)} records/s, ${formatBytes(bytes / s)}/s`;
}

/** A damaged file's message, with its code and offset: what the user reads and what a script matches. */
function fileProblem(name: string, err: BackupFileError): string {
  return `${name}: ${err.message} (${err.code} at byte ${err.offset})`;
}

/** A record named for a message: `key hdd 'user:1'`, `queue 'jobs'`. */
function describeRecord(record: BackupRecord): string {
  const quote = (text: string) => JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
  switch (record.kind) {
    case 'key':
      return `${record.type} key ${quote(record.key.toString('utf8'))}`;
    case 'router':
      return `router ${quote(record.name)}`;
    case 'queue':
      return `queue ${quote(record.name)}`;
    case 'binding':
      return `binding of queue ${quote(record.queue)} to router ${quote(record.router)} (${quote(record.bindingKey)})`;
    case 'message':
      return `message of queue ${quote(record.queue)}`;
    case 'dead':
      return `dead letter of queue ${quote(record.queue)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Talking to the server

/** Sends a command; a server error becomes a BackupError naming the command. */
async function call(client: HatiClient, args: Array<string | Uint8Array>, what: string): Promise<Reply> {
  let reply: Reply;
  try {
    reply = await client.sendCommand(args);
  } catch (err) {
    throw new BackupError(`${what}: ${(err as Error).message}`);
  }
  if (reply instanceof ReplyError) {
    if (reply.code === 'UNKNOWN_COMMAND') {
      throw new BackupError(`${what}: the server does not know BACKUP (it is older than this hati ${version})`);
    }
    throw new BackupError(`${what}: ${reply.code} ${reply.message}`);
  }
  return reply;
}

async function connectOrFail(flags: BackupFlags, io: Io): Promise<HatiClient> {
  try {
    return await connect(flags, io);
  } catch (err) {
    throw new BackupError((err as Error).message);
  }
}

// ---------------------------------------------------------------------------------------------
// export

/** Where an export's bytes go: a file under a temporary name, renamed at the end; or stdout. */
interface Output {
  write: (chunk: Buffer) => Promise<void>;
  /** Makes the output whole (the file durable and under its name). */
  finish: () => Promise<void>;
  /** After a failure: no half file is left. */
  abort: () => Promise<void>;
  name: string;
}

async function fileOutput(path: string): Promise<Output> {
  const target = resolve(path);
  const temporary = join(dirname(target), `.${basename(target)}.${process.pid}.partial`);
  let handle: FileHandle;
  try {
    // 0600: a backup holds every value of the server.
    handle = await open(temporary, 'wx', 0o600);
  } catch (err) {
    throw new BackupError(
      `cannot write ${temporary}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  // Ctrl-C, a kill, a closed terminal: the temporary file goes, then the signal does what it does.
  const onSignal = (signal: NodeJS.Signals) => {
    stopWatching();
    try {
      unlinkSync(temporary);
    } catch {
      // Already gone.
    }
    process.kill(process.pid, signal);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.once(signal, onSignal);
  const stopWatching = () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
  return {
    name: target,
    write: async (chunk) => {
      for (let at = 0; at < chunk.length; ) {
        const { bytesWritten } = await handle.write(chunk, at, chunk.length - at);
        at += bytesWritten;
      }
    },
    finish: async () => {
      await handle.sync();
      await close();
      await rename(temporary, target);
      stopWatching();
      // The rename itself survives a crash once the directory is synced (where the OS allows it).
      const directory = await open(dirname(target), 'r').catch(() => undefined);
      await directory?.sync().catch(() => undefined);
      await directory?.close();
    },
    abort: async () => {
      await close().catch(() => undefined);
      await unlink(temporary).catch(() => undefined);
      stopWatching();
    },
  };
}

function streamOutput(stream: NodeJS.WritableStream): Output {
  let failure: Error | undefined;
  const onError = (err: Error) => {
    failure ??= err;
  };
  stream.on('error', onError);
  const check = () => {
    if (failure !== undefined) {
      throw new BackupError(`cannot write to stdout: ${(failure as NodeJS.ErrnoException).code ?? failure.message}`);
    }
  };
  return {
    name: 'stdout',
    write: async (chunk) => {
      check();
      if (!stream.write(chunk)) {
        await Promise.race([once(stream, 'drain'), once(stream, 'error')]).catch(() => undefined);
      }
      check();
    },
    finish: async () => {
      // Resolves once everything before it is handed to the OS.
      await new Promise<void>((resolve) => stream.write('', () => resolve()));
      check();
      stream.off('error', onError);
    },
    abort: async () => {
      stream.off('error', onError);
    },
  };
}

async function runExport(flags: BackupFlags, io: Io, progress: Progress): Promise<number> {
  const toStdout = flags.out === '-';
  const stdout = (io.terminal?.stdout ?? process.stdout) as NodeJS.WritableStream & { isTTY?: boolean };
  if (toStdout && stdout.isTTY === true) {
    throw new BackupError(
      'not writing a backup to a terminal: redirect stdout (> file, | ssh ...) or give --out <file>',
      2,
    );
  }
  const client = await connectOrFail(flags, io);
  let output: Output;
  try {
    output = toStdout ? streamOutput(stdout) : await fileOutput(flags.out as string);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
  const encoder = new BackupEncoder(output.write);
  let snapshot: string | undefined;
  try {
    // The total for the bar's ETA, when the server's counts are at hand (an estimate: memory
    // queues' messages are counted and are not exported).
    try {
      const stats = await client.stats();
      const messages = Object.values(stats.broker.perQueue).reduce(
        (sum, q) => sum + q.ready + q.leased + q.delayed + q.dead,
        0,
      );
      progress.total = {
        records: (stats.storage.hdd.keys ?? 0) + (flags.memory === true ? stats.storage.memory.keys : 0) + messages,
      };
    } catch {
      // No total: the bar shows counts and rate without a percentage.
    }
    const begin = await call(client, ['BACKUP', 'BEGIN', ...(flags.memory === true ? ['MEMORY'] : [])], 'BACKUP BEGIN');
    snapshot = Buffer.isBuffer(begin) ? begin.toString('latin1') : String(begin);
    const id = snapshot;
    await encoder.begin({
      created: new Date().toISOString(),
      hati: version,
      server: client.serverInfo?.hati_version ?? null,
      source: serverName(flags),
      contents: { hdd: true, memory: flags.memory === true, broker: true },
    });
    const next = () => call(client, ['BACKUP', 'NEXT', id, 'COUNT', '10000'], 'BACKUP NEXT');
    // One reply read ahead: the server reads the next while this one is compressed and written.
    let ahead = next();
    for (;;) {
      const reply = await ahead;
      if (!Array.isArray(reply)) throw new BackupError(`BACKUP NEXT: the server replied ${typeof reply}, not records`);
      if (reply.length === 0) break;
      ahead = next();
      // Not left unhandled while this batch is written: its failure is thrown by the await above.
      ahead.catch(() => undefined);
      for (const record of reply) {
        let wait: Promise<void> | undefined;
        try {
          wait = encoder.add(record as Uint8Array[]);
        } catch (err) {
          throw new BackupError(`the server sent a record that is not one: ${(err as Error).message}`);
        }
        if (wait) await wait;
      }
      progress.update(encoder.records, encoder.bytes);
    }
    // Read to the end: the server has released the snapshot.
    snapshot = undefined;
    await encoder.end();
    await output.finish();
  } catch (err) {
    await output.abort();
    if (snapshot !== undefined) await client.sendCommand(['BACKUP', 'END', snapshot]).catch(() => undefined);
    await client.close().catch(() => undefined);
    const why =
      err instanceof BackupError ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    throw new BackupError(`export failed: ${why}${toStdout ? '' : ` (no file was written at ${output.name})`}`);
  }
  await client.close().catch(() => undefined);
  progress.clear();
  io.stderr(
    `hati: exported ${describeCounts(encoder.counts, encoder.keys)} from ${serverName(flags)} to ${output.name} (${describePace(encoder.bytes, encoder.records, progress.elapsed)})\n`,
  );
  return 0;
}

// ---------------------------------------------------------------------------------------------
// import

/** Where a record stands in the file. */
interface Position {
  block: DecodedBlock;
  /** 1 for the block's first record. */
  index: number;
}

/** An import that stopped: why, and where. */
class ImportStopped extends Error {
  constructor(
    message: string,
    readonly at: Position | undefined,
  ) {
    super(message);
  }
}

/** Applies records to a target and counts them; throws ImportStopped at the first failure. */
interface Applier {
  readonly applied: KindCounts;
  /** Keys applied, per storage type. */
  readonly keys: { hdd: number; memory: number };
  /** Records the target skipped: keys and messages already expired. */
  readonly skipped: KindCounts;
  /** Memory keys not loaded because the target cannot hold them (a stopped server). */
  readonly memoryKeysLeft: number;
  /** Returns a promise only when the caller must wait (a window of commands is full). */
  add(record: BackupRecord, at: Position): Promise<void> | undefined;
  /** Waits for everything sent; throws ImportStopped if something failed. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** A window of BACKUP LOAD commands written together. */
interface Window {
  replies: Promise<Reply[]>;
  records: BackupRecord[];
  positions: Position[];
}

/**
 * BACKUP LOAD into a running server, pipelined: windows of up to WINDOW_COMMANDS commands (or
 * WINDOW_BYTES) are written at once, and at most WINDOWS_IN_FLIGHT wait for their replies, so
 * the server always has work and the client's memory stays bounded. Between kinds (routers,
 * queues, bindings, keys, messages, dead letters) it waits for every reply.
 */
class ServerApplier implements Applier {
  static readonly WINDOW_COMMANDS = 2000;
  static readonly WINDOW_BYTES = 1 << 20;
  static readonly WINDOWS_IN_FLIGHT = 3;
  readonly applied = emptyCounts();
  readonly keys = { hdd: 0, memory: 0 };
  readonly skipped = emptyCounts();
  readonly memoryKeysLeft = 0;
  readonly #client: HatiClient;
  #window: { promises: Promise<Reply>[]; records: BackupRecord[]; positions: Position[] };
  #bytes = 0;
  /** The kind of the records sent last. */
  #kind: BackupRecordKind | undefined;
  readonly #inFlight: Window[] = [];
  #failure: ImportStopped | undefined;

  constructor(client: HatiClient) {
    this.#client = client;
    this.#window = ServerApplier.#empty();
  }

  static #empty() {
    return { promises: [], records: [], positions: [] };
  }

  add(record: BackupRecord, at: Position): Promise<void> | undefined {
    // A new kind waits for every reply of the kinds before it: a refused definition (a queue
    // defined otherwise on the server) stops the import before any binding, key or message of
    // it is sent. Only the records of one kind run ahead of a failure.
    if (record.kind !== this.#kind && this.#kind !== undefined) {
      this.#kind = record.kind;
      return this.drain().then(() => this.add(record, at));
    }
    this.#kind = record.kind;
    const fields = recordToFields(record);
    const window = this.#window;
    window.promises.push(this.#client.sendCommand(['BACKUP', 'LOAD', ...fields]));
    window.records.push(record);
    window.positions.push(at);
    for (const field of fields) this.#bytes += field.length;
    if (window.promises.length < ServerApplier.WINDOW_COMMANDS && this.#bytes < ServerApplier.WINDOW_BYTES) {
      return undefined;
    }
    this.#close();
    return this.#inFlight.length >= ServerApplier.WINDOWS_IN_FLIGHT ? this.#settleOldest() : undefined;
  }

  async drain(): Promise<void> {
    this.#close();
    while (this.#inFlight.length > 0) await this.#settleOldest();
  }

  async close(): Promise<void> {
    await this.#client.close().catch(() => undefined);
  }

  #close(): void {
    const window = this.#window;
    if (window.promises.length === 0) return;
    this.#window = ServerApplier.#empty();
    this.#bytes = 0;
    const replies = Promise.all(window.promises);
    // Read in order by #settleOldest; until then its failure must not count as unhandled.
    replies.catch(() => undefined);
    this.#inFlight.push({ replies, records: window.records, positions: window.positions });
  }

  /** Counts the oldest window's replies; after a failure, the windows already sent are counted too, then it throws. */
  async #settleOldest(): Promise<void> {
    const window = this.#inFlight.shift() as Window;
    let replies: Reply[];
    try {
      replies = await window.replies;
    } catch (err) {
      // The connection is gone: what the server did with this window is unknown.
      this.#failure ??= new ImportStopped(
        `the connection failed (${(err as Error).message}); ${formatCount(window.records.length)} records sent last may or may not have been loaded`,
        window.positions[0],
      );
      this.#inFlight.length = 0;
      throw this.#failure;
    }
    this.#count(window, replies);
    if (this.#failure !== undefined) {
      // Those already written ran on the server: counted, so the report is exact.
      while (this.#inFlight.length > 0) {
        const later = this.#inFlight.shift() as Window;
        this.#count(later, await later.replies.catch(() => [] as Reply[]));
      }
      throw this.#failure;
    }
  }

  /** Counts a window's replies: `:1` applied, `:0` skipped (expired); the first error is the failure. */
  #count(window: Window, replies: Reply[]): void {
    replies.forEach((reply, i) => {
      const record = window.records[i] as BackupRecord;
      if (reply instanceof ReplyError) {
        this.#failure ??= new ImportStopped(
          `the server refused the ${describeRecord(record)}: ${reply.code} ${reply.message}`,
          window.positions[i],
        );
      } else if (reply === 1) {
        this.applied[record.kind]++;
        if (record.kind === 'key') this.keys[record.type]++;
      } else {
        this.skipped[record.kind]++;
      }
    });
  }
}

/** The part of @hati/server's `openBackupTarget` this command uses (contract C6). */
interface BackupTarget {
  apply(record: BackupRecord): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Into a stopped server's data directory, through the server's own apply. Keys go in
 * KEYS_IN_FLIGHT at a time (the storage batches concurrent writes); definitions, messages and
 * dead letters one after another, so a queue's messages keep their order. Between kinds it waits
 * for all, as the running server's import does.
 */
class DataDirApplier implements Applier {
  static readonly KEYS_IN_FLIGHT = 256;
  readonly applied = emptyCounts();
  readonly keys = { hdd: 0, memory: 0 };
  readonly skipped = emptyCounts();
  memoryKeysLeft = 0;
  readonly #target: BackupTarget;
  readonly #inFlight = new Set<Promise<void>>();
  #failure: ImportStopped | undefined;

  constructor(target: BackupTarget) {
    this.#target = target;
  }

  add(record: BackupRecord, at: Position): Promise<void> | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    // A stopped server keeps no memory keys: counted apart, not as expired.
    if (record.kind === 'key' && record.type === 'memory') {
      this.memoryKeysLeft++;
      return undefined;
    }
    if (record.kind !== 'key') {
      return this.drain()
        .then(() => this.#apply(record, at))
        .then(() => this.#check());
    }
    const one = this.#apply(record, at);
    this.#inFlight.add(one);
    void one.finally(() => this.#inFlight.delete(one));
    return this.#inFlight.size >= DataDirApplier.KEYS_IN_FLIGHT
      ? Promise.race(this.#inFlight).then(() => this.#check())
      : undefined;
  }

  async drain(): Promise<void> {
    await Promise.all(this.#inFlight);
    this.#check();
  }

  close(): Promise<void> {
    return this.#target.close();
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Applies one record and counts it; a failure is kept (the first) and never rejects. */
  async #apply(record: BackupRecord, at: Position): Promise<void> {
    let done: boolean;
    try {
      done = await this.#target.apply(record);
    } catch (err) {
      const code = (err as { code?: string }).code;
      this.#failure ??= new ImportStopped(
        `the ${describeRecord(record)} was refused: ${code === undefined ? '' : `${code} `}${(err as Error).message}`,
        at,
      );
      return;
    }
    if (!done) this.skipped[record.kind]++;
    else {
      this.applied[record.kind]++;
      if (record.kind === 'key') this.keys[record.type]++;
    }
  }
}

async function openDataDir(flags: BackupFlags): Promise<Applier> {
  const server = (await import('@hati/server')) as unknown as {
    openBackupTarget?: (options: { dataDir: string; shards?: number; durability?: string }) => Promise<BackupTarget>;
  };
  if (typeof server.openBackupTarget !== 'function') {
    throw new BackupError('this hati cannot import into a data directory (@hati/server has no openBackupTarget)');
  }
  try {
    const target = await server.openBackupTarget({
      dataDir: resolve(flags.dataDir as string),
      ...(flags.shards !== undefined && { shards: flags.shards }),
      ...(flags.hddDurability !== undefined && { durability: flags.hddDurability }),
    });
    return new DataDirApplier(target);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'DATA_DIR_LOCKED') {
      throw new BackupError(
        `${resolve(flags.dataDir as string)} is in use by a running server: stop it first, or import into the running server without --data-dir`,
      );
    }
    throw new BackupError(
      `cannot open ${resolve(flags.dataDir as string)}: ${code === undefined ? '' : `${code} `}${(err as Error).message}`,
    );
  }
}

/** The source of an import or inspect: a file (its size known, readable twice) or stdin. */
interface Input {
  name: string;
  size: number | undefined;
  open: () => AsyncIterable<Uint8Array>;
}

async function input(path: string, io: Io): Promise<Input> {
  if (path === '-') {
    const stdin = io.terminal?.stdin ?? process.stdin;
    if ((stdin as { isTTY?: boolean }).isTTY === true) {
      throw new BackupError('not reading a backup from a terminal: redirect stdin (< file) or give the file', 2);
    }
    return { name: 'stdin', size: undefined, open: () => stdin as AsyncIterable<Uint8Array> };
  }
  const file = resolve(path);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(file);
  } catch (err) {
    throw new BackupError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const open = () => createReadStream(file, { highWaterMark: 1 << 20 });
  // A named pipe or a device is read once, as stdin is.
  return { name: file, size: info.isFile() ? info.size : undefined, open };
}

/** Reads a whole file, checking every block; returns the decoder with its counts, or throws a BackupError. */
async function verify(
  source: Input,
  progress: Progress,
  what: string,
): Promise<{ decoder: BackupDecoder; header: BackupHeader }> {
  progress.reset('verifying', { bytes: source.size });
  const decoder = new BackupDecoder(source.open());
  try {
    const header = await decoder.header();
    while ((await decoder.next()) !== undefined) progress.update(decoder.records, decoder.offset);
    return { decoder, header };
  } catch (err) {
    await decoder.close().catch(() => undefined);
    if (err instanceof BackupFileError) throw new BackupError(`${fileProblem(source.name, err)}${what}`);
    throw new BackupError(
      `cannot read ${source.name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** Empties a running server for --replace; returns what it removed, in words. */
async function emptyServer(client: HatiClient): Promise<string> {
  const memory = Number(await call(client, ['COUNT', 'memory'], 'COUNT memory'));
  const hdd = Number(await call(client, ['COUNT', 'hdd'], 'COUNT hdd'));
  await call(client, ['FLUSHALL', 'memory'], 'FLUSHALL memory');
  await call(client, ['FLUSHALL', 'hdd'], 'FLUSHALL hdd');
  // Queues first: deleting one takes its bindings, messages and dead letters with it.
  const queues = (await call(client, ['LISTQUEUE'], 'LISTQUEUE')) as Buffer[];
  for (const queue of queues) await call(client, ['DELETEQUEUE', queue], `DELETEQUEUE ${queue.toString()}`);
  const routers = (await call(client, ['LISTROUTER'], 'LISTROUTER')) as Buffer[];
  for (const router of routers) await call(client, ['DELETEROUTER', router], `DELETEROUTER ${router.toString()}`);
  return `${counted(memory, 'memory key', 'memory keys')}, ${counted(hdd, 'hdd key', 'hdd keys')}, ${counted(queues.length, 'queue', 'queues')} (with their messages, dead letters and bindings) and ${counted(routers.length, 'router', 'routers')}`;
}

async function runImport(flags: BackupFlags, io: Io, progress: Progress): Promise<number> {
  const source = await input(flags.in as string, io);
  const seekable = source.size !== undefined;
  const started = Date.now();
  // A file is checked whole before anything changes on the server.
  if (seekable) await verify(source, progress, '; nothing was imported');
  const target = flags.dataDir !== undefined ? resolve(flags.dataDir) : serverName(flags);
  let client: HatiClient | undefined;
  let applier: Applier;
  if (flags.dataDir !== undefined) {
    applier = await openDataDir(flags);
  } else {
    client = await connectOrFail(flags, io);
    applier = new ServerApplier(client);
  }
  progress.reset('importing', { bytes: source.size });
  const decoder = new BackupDecoder(source.open());
  let replaced: string | undefined;
  let lastBlock: DecodedBlock | undefined;
  /** How many records were read from the file and sent. */
  let sent = 0;
  try {
    await decoder.header();
    // The next block is read and checked while this one is loaded.
    let ahead = decoder.next();
    ahead.catch(() => undefined);
    for (;;) {
      const block = await ahead;
      // --replace empties the server only once the header and the first block (or the end) read well.
      if (flags.replace === true && replaced === undefined && client !== undefined) {
        replaced = await emptyServer(client);
        progress.clear();
        io.stderr(`hati: --replace: removed ${replaced} from ${target}\n`);
      }
      if (block === undefined) break;
      lastBlock = block;
      ahead = decoder.next();
      ahead.catch(() => undefined);
      let index = 0;
      for (const record of block.records) {
        index++;
        sent++;
        const wait = applier.add(record, { block, index });
        if (wait) await wait;
      }
      progress.update(sent, block.end);
    }
    await applier.drain();
  } catch (err) {
    // What was sent before the damage was found is loaded: waited for, so the counts are exact.
    if (!(err instanceof ImportStopped)) await applier.drain().catch(() => undefined);
    await decoder.close().catch(() => undefined);
    await applier.close().catch(() => undefined);
    progress.clear();
    const loaded = describeCounts(applier.applied, applier.keys);
    const skipped = total(applier.skipped);
    const what =
      total(applier.applied) + skipped === 0
        ? '; nothing was imported'
        : `; loaded before stopping: ${loaded}${skipped > 0 ? ` (and skipped ${formatCount(skipped)} already expired)` : ''}`;
    if (err instanceof BackupFileError) throw new BackupError(`${fileProblem(source.name, err)}${what}`);
    if (err instanceof ImportStopped) {
      const at =
        err.at === undefined
          ? ''
          : ` at record ${formatCount(err.at.index)} of block ${err.at.block.index} (byte ${err.at.block.offset} of ${source.name})`;
      throw new BackupError(`import stopped${at}: ${err.message}${what}`);
    }
    if (err instanceof BackupError) throw new BackupError(`${err.message}${what}`);
    const where = lastBlock === undefined ? '' : ` after block ${lastBlock.index}`;
    throw new BackupError(
      `import stopped${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}${what}`,
    );
  }
  await applier.close();
  progress.clear();
  const skipped = total(applier.skipped);
  const notes = [
    ...(skipped > 0 ? [`skipped ${counted(skipped, 'record', 'records')} already expired`] : []),
    ...(applier.memoryKeysLeft > 0
      ? [
          `left out ${counted(applier.memoryKeysLeft, 'memory key', 'memory keys')} (a stopped server keeps none: import them into the running server)`,
        ]
      : []),
  ];
  io.stderr(
    `hati: imported ${describeCounts(applier.applied, applier.keys)} into ${target}${notes.map((note) => `; ${note}`).join('')} (${describePace(decoder.offset, sent, (Date.now() - started) / 1000)})\n`,
  );
  return 0;
}

function total(counts: KindCounts): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

// ---------------------------------------------------------------------------------------------
// inspect

async function runInspect(flags: BackupFlags, io: Io, progress: Progress): Promise<number> {
  // yargs reads a lone `-` in a positional's place as an empty flag: '' (or true untyped).
  const file = flags.file === '' || (flags.file as unknown) === true ? '-' : (flags.file as string);
  const source = await input(file, io);
  const { decoder, header } = await verify(source, progress, '');
  progress.clear();
  const trailer = decoder.trailer;
  const rawBytes = trailer?.rawBytes ?? 0;
  const bytes = decoder.offset;
  if (flags.json === true) {
    io.stdout(
      `${JSON.stringify(
        {
          file: source.name,
          bytes,
          format: 1,
          header,
          blocks: decoder.blocks,
          rawBytes,
          records: decoder.records,
          counts: decoder.counts,
          keys: decoder.keys,
          checksums: 'ok',
        },
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  const rows: Array<[string, string]> = [
    ['file', `${source.name} (${formatBytes(bytes)})`],
    ['format', 'hati backup, version 1'],
    ['created', header.created],
    [
      'from',
      `${header.source}${header.server === null ? '' : ` (hati ${header.server})`}, written by hati ${header.hati}`,
    ],
    ['holds', describeContents(header)],
    [
      'blocks',
      `${formatCount(decoder.blocks)}, every checksum good; ${formatBytes(rawBytes)} of records in a file of ${formatBytes(bytes)}${rawBytes === 0 ? '' : ` (${Math.round((bytes / rawBytes) * 100)}%)`}`,
    ],
    [
      'keys',
      `${formatCount(decoder.counts.key)} (${formatCount(decoder.keys.hdd)} hdd, ${formatCount(decoder.keys.memory)} memory)`,
    ],
    ...KIND_NAMES.map(([kind, , many]): [string, string] => [many, formatCount(decoder.counts[kind])]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length)) + 1;
  for (const [name, value] of rows) io.stdout(`${`${name}:`.padEnd(width)} ${value}\n`);
  return 0;
}
