// A one-line progress bar for long commands (`hati backup`), redrawn in place on a terminal:
// records, bytes, rate, and a bar with the time left when the total is known. Off the terminal
// it draws nothing (a cron job's mail or a log file holds no carriage returns); the final summary
// is written either way, by the caller.

export interface ProgressOptions {
  /** Where the bar goes (stderr: stdout may carry the backup itself). */
  write: (text: string) => void;
  /** Draw at all: stderr is a terminal (or --progress). */
  enabled: boolean;
  /** What is being done, first on the line: `exporting`, `verifying`, `importing`. */
  label: string;
  /** Width of the terminal; the line is cut to fit. @default 80 */
  columns?: number;
  /** @default Date.now */
  now?: () => number;
  /** Least time between redraws, in ms. @default 100 */
  intervalMs?: number;
}

/** What the bar measures its fraction done by: bytes (a file's size) or records (the server's counts). */
export interface ProgressTotal {
  bytes?: number;
  records?: number;
}

/** 1234567 → `1,234,567`. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 1234567 → `1.2 MB` (decimal units, as the rate's MB/s). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

/** Seconds → `0:07`, `12:34`, `1:02:03`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

const BAR = 16;

export class Progress {
  readonly #options: Required<Omit<ProgressOptions, 'columns'>> & { columns: number };
  readonly #started: number;
  #total: ProgressTotal = {};
  #records = 0;
  #bytes = 0;
  #lastDraw = Number.NEGATIVE_INFINITY;
  /** A line is on the screen (to be erased before anything else is written). */
  #shown = false;

  constructor(options: ProgressOptions) {
    this.#options = {
      columns: 80,
      now: Date.now,
      intervalMs: 100,
      ...options,
    };
    this.#started = this.#options.now();
  }

  /** Sets what 100% is; the label may change with it (`verifying`, then `importing`). */
  reset(label: string, total: ProgressTotal = {}): void {
    this.#options.label = label;
    this.#total = total;
    this.#records = 0;
    this.#bytes = 0;
    this.#lastDraw = Number.NEGATIVE_INFINITY;
  }

  set total(total: ProgressTotal) {
    this.#total = total;
  }

  /** Seconds since the bar was made. */
  get elapsed(): number {
    return (this.#options.now() - this.#started) / 1000;
  }

  /** Records and bytes done so far; redraws when the last draw is older than the interval. */
  update(records: number, bytes: number): void {
    this.#records = records;
    this.#bytes = bytes;
    if (!this.#options.enabled) return;
    const now = this.#options.now();
    if (now - this.#lastDraw < this.#options.intervalMs) return;
    this.#lastDraw = now;
    this.#options.write(`\r${this.line(now)}\x1b[K`);
    this.#shown = true;
  }

  /** The bar's text at `now`, cut to the terminal's width. */
  line(now = this.#options.now()): string {
    const seconds = Math.max((now - this.#started) / 1000, 0.001);
    const rate = this.#bytes / seconds;
    const parts = [
      this.#options.label,
      `${formatCount(this.#records)} records`,
      formatBytes(this.#bytes),
      `${formatBytes(rate)}/s`,
    ];
    const fraction = this.#fraction();
    if (fraction !== undefined) {
      const filled = Math.round(fraction * BAR);
      parts.push(`[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${Math.floor(fraction * 100)}%`);
      // Time left at the average pace so far; none until there is a pace.
      if (fraction > 0 && fraction < 1) parts.push(`ETA ${formatDuration((seconds * (1 - fraction)) / fraction)}`);
    }
    // A width too small to say anything is taken as unknown.
    const width = this.#options.columns < 20 ? 80 : this.#options.columns;
    return parts.join(' ').slice(0, width - 1);
  }

  /** Erases the bar (before a message or the summary is written). */
  clear(): void {
    if (!this.#shown) return;
    this.#options.write('\r\x1b[K');
    this.#shown = false;
    this.#lastDraw = Number.NEGATIVE_INFINITY;
  }

  #fraction(): number | undefined {
    const { bytes, records } = this.#total;
    if (bytes !== undefined && bytes > 0) return Math.min(this.#bytes / bytes, 1);
    if (records !== undefined && records > 0) return Math.min(this.#records / records, 1);
    return undefined;
  }
}
