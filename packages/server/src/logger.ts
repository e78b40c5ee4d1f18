/** Log levels, most severe first; a level shows itself and everything above it. */
export const LogLevel = { error: 'error', warn: 'warn', info: 'info', debug: 'debug' } as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Lines to stderr, prefixed with time and level. Callers check `debugEnabled` before formatting debug output. */
export class Logger {
  readonly level: LogLevel;
  readonly debugEnabled: boolean;
  readonly #write: (line: string) => void;

  constructor(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(line)) {
    this.level = level;
    this.debugEnabled = rank[level] >= rank.debug;
    this.#write = write;
  }

  error(message: string): void {
    this.#log('error', message);
  }

  warn(message: string): void {
    this.#log('warn', message);
  }

  info(message: string): void {
    this.#log('info', message);
  }

  debug(message: string): void {
    this.#log('debug', message);
  }

  #log(level: LogLevel, message: string): void {
    if (rank[level] > rank[this.level]) return;
    this.#write(`${new Date().toISOString()} ${level} ${message}\n`);
  }
}
