import { hostname } from 'node:os';
import { type Logger as Pino, pino } from 'pino';

/** Log levels, most severe first; a level shows itself and everything above it. */
export const LogLevel = { error: 'error', warn: 'warn', info: 'info', debug: 'debug' } as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

/**
 * How a line looks: `text` is `<ISO time> <level> <message>` for a terminal; `json` is one
 * JSON object per line (pino's shape: `level` as its name, `time` ISO, `pid`, `hostname`, `msg`
 * and the line's fields) for a log collector (journald, Loki, Elasticsearch).
 */
export const LogFormat = { text: 'text', json: 'json' } as const;
export type LogFormat = (typeof LogFormat)[keyof typeof LogFormat];

/** Structured data of a line (`{ listener: 'tcp', address: '127.0.0.1:4242' }`): json lines carry it; text lines show only the message. */
export type LogFields = Record<string, unknown>;

const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

let stderrSink: ReturnType<typeof pino.destination> | undefined;

/**
 * Writes to fd 2 synchronously: the last lines before an exit (`stopped`, a start-up failure)
 * are written before the process ends, whatever stderr is (a pipe to journald, a file).
 * pino's destination retries EAGAIN on a full non-blocking pipe instead of dropping the line.
 */
function writeStderr(line: string): void {
  if (stderrSink === undefined) {
    stderrSink = pino.destination({ dest: 2, sync: true });
    // A closed stderr (EPIPE, EBADF) loses the line; it must not take the server down.
    stderrSink.on('error', () => {});
  }
  stderrSink.write(line);
}

/**
 * Lines to stderr (or `write`), at `level` and above, as text or JSON. Callers check
 * `debugEnabled` before formatting debug output. A message is whole in itself (text lines show
 * nothing else); fields repeat its parts for machines.
 */
export class Logger {
  readonly level: LogLevel;
  readonly format: LogFormat;
  readonly debugEnabled: boolean;
  readonly #write: (line: string) => void;
  /** The JSON writer; only for the json format, so text lines cost no pino call. */
  readonly #pino: Pino | undefined;

  constructor(level: LogLevel = 'info', write: (line: string) => void = writeStderr, format: LogFormat = 'text') {
    this.level = level;
    this.format = format;
    this.debugEnabled = rank[level] >= rank.debug;
    this.#write = write;
    this.#pino =
      format === 'json'
        ? pino(
            {
              level,
              base: { pid: process.pid, hostname: hostname() },
              timestamp: pino.stdTimeFunctions.isoTime,
              // The level's name, not pino's number: `"level":"info"` reads the same in every collector.
              formatters: { level: (label) => ({ level: label }) },
            },
            // pino's own destination buffers asynchronously; this one writes at once.
            { write: (line: string) => write(line) },
          )
        : undefined;
  }

  error(message: string, fields?: LogFields): void {
    this.#log('error', message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.#log('warn', message, fields);
  }

  info(message: string, fields?: LogFields): void {
    this.#log('info', message, fields);
  }

  debug(message: string, fields?: LogFields): void {
    this.#log('debug', message, fields);
  }

  #log(level: LogLevel, message: string, fields: LogFields | undefined): void {
    if (rank[level] > rank[this.level]) return;
    if (this.#pino !== undefined) {
      if (fields === undefined) this.#pino[level](message);
      else this.#pino[level](fields, message);
      return;
    }
    this.#write(`${new Date().toISOString()} ${level} ${message}\n`);
  }
}
