// `hati stats`: the server's STATS, as a live top-like view on a terminal, one logfmt line per
// interval when piped, or one JSON document with --once. Rates and latency percentiles come
// from the difference of two snapshots (docs/monitoring.md).
import type { HatiClient } from '@hati/client';
import type { StatsSnapshot } from '@hati/protocol';
import type { Argv } from 'yargs';
import { type ConnectionFlags, connect, connectionOptions, serverName } from './connection.js';
import type { Io } from './main.js';

export interface StatsFlags extends ConnectionFlags {
  /** Print one snapshot as JSON and exit. */
  once?: boolean;
  /** Seconds between refreshes. */
  interval: number;
  /** Refreshes before exiting; undefined: until interrupted. */
  count?: number;
}

/** Where the view is drawn and how it stops; tests and `main` pass their own. */
export interface StatsOutput {
  write: (text: string) => void;
  /** Redraw in place (a terminal): the live view; else one line per interval. */
  tty: boolean;
  columns: number;
  /** Resolves when the user asks to stop (q, Ctrl-C, SIGINT, SIGTERM). */
  stopped: Promise<void>;
  /** Called once the view ends, to restore the terminal. */
  close: () => void;
}

function positiveSeconds(value: unknown): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 3600 || String(value).trim() === '') {
    throw new Error(`--interval must be a number of seconds from 0.1 to 3600, got '${String(value)}'`);
  }
  return n;
}

function positiveInteger(value: unknown): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || String(value).trim() === '') {
    throw new Error(`--count must be a whole number of at least 1, got '${String(value)}'`);
  }
  return n;
}

/**
 * `hati stats`, for yargs (its only command is the default one, so it is registered as
 * `.command('stats', ..., (y) => statsCommands(y, io, setRun))`); `setRun` receives what it does.
 */
export function statsCommands(y: Argv, io: Io, setRun: (run: () => Promise<number>) => void): Argv {
  return y.command(
    '$0',
    'Show the server statistics live (top-like), or once as JSON',
    (c) =>
      connectionOptions(c)
        .option('once', {
          type: 'boolean',
          description: 'Print one STATS snapshot as a JSON document and exit',
        })
        .option('interval', {
          alias: 'i',
          requiresArg: true,
          default: 1,
          coerce: positiveSeconds,
          description: 'Seconds between refreshes',
        })
        .option('count', {
          alias: 'n',
          requiresArg: true,
          coerce: positiveInteger,
          description: 'Exit after this many refreshes (default: until q or Ctrl-C)',
        })
        .epilogue(
          'On a terminal the view is redrawn in place every --interval (q or Ctrl-C quits). When stdout is not a terminal, one line of key=value fields is printed per interval instead, each covering the interval before it. Rates and latency percentiles (p50, p99 of TCP and UNIX commands) are over the last interval. Needs the admin right when the server has credentials.',
        ),
    (args) => {
      setRun(() => runStats(args as unknown as StatsFlags, io));
    },
  );
}

/** Runs `hati stats`; the exit code. */
export async function runStats(flags: StatsFlags, io: Io, output?: StatsOutput): Promise<number> {
  let client: HatiClient;
  try {
    client = await connect(flags, io);
  } catch (err) {
    io.stderr(`hati: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    if (flags.once === true) {
      io.stdout(`${JSON.stringify(await client.stats(), null, 2)}\n`);
      return 0;
    }
    const out = output ?? terminalOutput(io);
    try {
      await watch(client, flags, serverName(flags), out);
    } finally {
      out.close();
    }
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    io.stderr(
      `hati: ${typeof code === 'string' && !(err as Error).message.startsWith(code) ? `${code} ` : ''}${(err as Error).message}\n`,
    );
    return 1;
  } finally {
    await client.close();
  }
}

/** Polls STATS every interval and draws each sample until stopped or `--count` is reached. */
async function watch(client: HatiClient, flags: StatsFlags, server: string, out: StatsOutput): Promise<void> {
  let stop = false;
  void out.stopped.then(() => {
    stop = true;
  });
  let previous: Sample | undefined;
  let drawn = 0;
  const intervalMs = flags.interval * 1000;
  // A terminal gets a first frame at once (totals, no rates yet); a line is printed only once it
  // covers an interval.
  for (;;) {
    const sample = { at: performance.now(), stats: await client.stats() };
    if (stop) return;
    if (out.tty) {
      out.write(frame(render(server, sample, previous, new Date()), out.columns));
      drawn++;
    } else if (previous !== undefined) {
      out.write(`${line(sample, previous, new Date())}\n`);
      drawn++;
    }
    if (flags.count !== undefined && drawn >= flags.count) return;
    previous = sample;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, intervalMs))), out.stopped]);
    // Stopped while waiting: the process must not wait for the interval to end.
    clearTimeout(timer);
    if (stop) return;
  }
}

interface Sample {
  /** performance.now() when it was taken. */
  at: number;
  stats: StatsSnapshot;
}

/** The terminal's output: the alternate screen while the view runs, q and Ctrl-C to quit. */
function terminalOutput(io: Io): StatsOutput {
  const stdout = (io.terminal?.stdout ?? process.stdout) as NodeJS.WritableStream & {
    isTTY?: boolean;
    columns?: number;
  };
  const stdin = (io.terminal?.stdin ?? process.stdin) as NodeJS.ReadStream;
  const tty = stdout.isTTY === true;
  const cleanups: Array<() => void> = [];
  const stopped = new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    cleanups.push(() => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
    if (tty && stdin.isTTY === true && typeof stdin.setRawMode === 'function') {
      // Raw: a key quits at once (no Enter), and Ctrl-C arrives as a byte rather than a signal.
      stdin.setRawMode(true);
      const onKey = (key: Buffer) => {
        if (key.includes(0x71) || key.includes(0x51) || key.includes(0x03)) resolve();
      };
      stdin.on('data', onKey);
      stdin.resume();
      cleanups.push(() => {
        stdin.off('data', onKey);
        stdin.setRawMode(false);
        stdin.pause();
      });
    }
  });
  // The alternate screen, as top: the shell's screen comes back when the view ends.
  if (tty) stdout.write('\x1b[?1049h\x1b[?25l');
  return {
    write: (text) => stdout.write(text),
    tty,
    // A pseudo-terminal may report 0 columns.
    columns: stdout.columns || 80,
    stopped,
    close: () => {
      for (const cleanup of cleanups) cleanup();
      if (tty) stdout.write('\x1b[?25h\x1b[?1049l');
    },
  };
}

/** A frame drawn over the last one: home, each line cut to the width and cleared to its end, then the rest cleared. */
function frame(lines: string[], columns: number): string {
  return `\x1b[H${lines.map((text) => `${text.slice(0, columns)}\x1b[K`).join('\n')}\n\x1b[J`;
}

/**
 * The latency (µs) under which a fraction `p` of the commands counted in `counts` fell,
 * interpolated inside its bucket as Prometheus's histogram_quantile does; the last bound when it
 * falls past it, undefined without commands.
 */
export function latencyPercentile(bounds: readonly number[], counts: readonly number[], p: number): number | undefined {
  let total = 0;
  for (const count of counts) total += count;
  if (total === 0) return undefined;
  const rank = p * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i] as number;
    if (count > 0 && seen + count >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const low = i === 0 ? 0 : (bounds[i - 1] as number);
      return low + ((bounds[i] as number) - low) * ((rank - seen) / count);
    }
    seen += count;
  }
  return bounds[bounds.length - 1];
}

/** What changed between two samples, per second. */
interface Rates {
  seconds: number;
  ops: number;
  commands: number;
  rpc: number;
  p50: number | undefined;
  p99: number | undefined;
  pubsub: number;
  queues: Record<
    string,
    { published: number; delivered: number; redelivered: number; acked: number; deadLettered: number }
  >;
}

function rates(now: Sample, before: Sample): Rates {
  const seconds = Math.max((now.at - before.at) / 1000, 0.001);
  const a = now.stats;
  const b = before.stats;
  const per = (x: number, y: number) => Math.max(0, x - y) / seconds;
  const { bounds, counts } = a.commands.latencyUs;
  const delta = counts.map((count, i) => count - (b.commands.latencyUs.counts[i] ?? 0));
  const queues: Rates['queues'] = {};
  for (const [name, q] of Object.entries(a.broker.perQueue)) {
    // A queue declared since the last sample counts from zero.
    const old = b.broker.perQueue[name] ?? { published: 0, delivered: 0, redelivered: 0, acked: 0, deadLettered: 0 };
    queues[name] = {
      published: per(q.published, old.published),
      delivered: per(q.delivered, old.delivered),
      redelivered: per(q.redelivered, old.redelivered),
      acked: per(q.acked, old.acked),
      deadLettered: per(q.deadLettered, old.deadLettered),
    };
  }
  const commands = per(a.commands.processed, b.commands.processed);
  const rpc = per(a.commands.rpcCalls, b.commands.rpcCalls);
  return {
    seconds,
    ops: commands + rpc,
    commands,
    rpc,
    p50: latencyPercentile(bounds, delta, 0.5),
    p99: latencyPercentile(bounds, delta, 0.99),
    pubsub: per(a.pubsub.delivered, b.pubsub.delivered),
    queues,
  };
}

/** 1234567 → `1,234,567`; fractions below 10 keep one decimal (rates). */
function count(n: number): string {
  return n < 10 && !Number.isInteger(n) ? n.toFixed(1) : Math.round(n).toLocaleString('en-US');
}

/** Bytes in binary units, as top shows memory. */
function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A latency: µs below 1 ms, then ms, then s. */
function latency(us: number | undefined): string {
  if (us === undefined) return '-';
  if (us < 1000) return `${us < 10 ? us.toFixed(1) : Math.round(us)} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

function duration(ms: number): string {
  let s = Math.floor(ms / 1000);
  const days = Math.floor(s / 86_400);
  s -= days * 86_400;
  const pad = (n: number) => String(n).padStart(2, '0');
  const hms = `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return days > 0 ? `${days}d ${hms}` : hms;
}

function plural(n: number, word: string): string {
  return `${count(n)} ${word}${n === 1 ? '' : 's'}`;
}

/** The lines of the live view. Rates are `-` until a second sample exists. */
export function render(server: string, sample: Sample, previous: Sample | undefined, now: Date): string[] {
  const s = sample.stats;
  const r = previous === undefined ? undefined : rates(sample, previous);
  const rate = (n: number | undefined) => (n === undefined ? '-' : count(n));
  const { memory, hdd } = s.storage;
  const connections = Object.entries(s.connections)
    .map(([listener, c]) => `${listener} ${count(c.current)}`)
    .join('  ');
  const accepted = Object.values(s.connections).reduce((sum, c) => sum + c.total, 0);
  const lines = [
    `hati ${server}  up ${duration(s.uptimeMs)}  ${now.toTimeString().slice(0, 8)}`,
    '',
    `ops/s    ${rate(r?.ops)}  (tcp/unix ${rate(r?.commands)}, json-rpc ${rate(r?.rpc)})   latency p50 ${latency(r?.p50)}  p99 ${latency(r?.p99)}`,
    `keys     memory ${count(memory.keys)} in ${plural(memory.shards.length, 'shard')}   hdd ${hdd.keys === null ? '-' : count(hdd.keys)} in ${plural(hdd.shards.length, 'shard')} (${hdd.state}, durability ${hdd.durability})`,
    `memory   rss ${bytes(s.memory.rss)}  heap ${bytes(s.memory.heapUsed)} of ${bytes(s.memory.heapTotal)}  external ${bytes(s.memory.external)}`,
    `conns    ${connections}  (${count(accepted)} accepted since start)`,
    `pubsub   ${plural(s.pubsub.channels, 'channel')}, ${plural(s.pubsub.patterns, 'pattern')}, ${rate(r?.pubsub)} delivered/s`,
    `broker   ${plural(s.broker.routers, 'router')}, ${plural(s.broker.queues, 'queue')}`,
    '',
  ];
  const header = [
    'QUEUE',
    'READY',
    'LEASED',
    'DELAYED',
    'DEAD',
    'CONSUMERS',
    'PUB/S',
    'DELIV/S',
    'REDELIV/S',
    'ACK/S',
    'DEAD/S',
  ];
  const rows = Object.entries(s.broker.perQueue)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, q]) => {
      const qr = r?.queues[name];
      return [
        name,
        count(q.ready),
        count(q.leased),
        count(q.delayed),
        count(q.dead),
        count(q.consumers),
        rate(qr?.published),
        rate(qr?.delivered),
        rate(qr?.redelivered),
        rate(qr?.acked),
        rate(qr?.deadLettered),
      ];
    });
  if (rows.length === 0) {
    lines.push('(no queues)');
    return lines;
  }
  const table = [header, ...rows];
  const widths = header.map((_, col) => Math.max(...table.map((row) => (row[col] as string).length)));
  for (const row of table) {
    lines.push(
      row
        .map((cell, col) => (col === 0 ? cell.padEnd(widths[col] as number) : cell.padStart(widths[col] as number)))
        .join('  '),
    );
  }
  return lines;
}

/**
 * One logfmt line (`key=value`, as `time=... ops_per_sec=...`) for a pipe or a log: the rates of
 * the interval since `previous`, and the counts now.
 */
export function line(sample: Sample, previous: Sample, now: Date): string {
  const s = sample.stats;
  const r = rates(sample, previous);
  const fixed = (n: number) => String(Math.round(n * 10) / 10);
  const fields: Array<[string, string | number]> = [
    ['time', now.toISOString()],
    ['uptime_s', Math.floor(s.uptimeMs / 1000)],
    ['ops_per_sec', fixed(r.ops)],
    ['commands_per_sec', fixed(r.commands)],
    ['rpc_per_sec', fixed(r.rpc)],
    ['p50_us', r.p50 === undefined ? '-' : fixed(r.p50)],
    ['p99_us', r.p99 === undefined ? '-' : fixed(r.p99)],
    ['keys_memory', s.storage.memory.keys],
    ['keys_hdd', s.storage.hdd.keys ?? '-'],
    ['hdd_state', s.storage.hdd.state],
    ['rss_bytes', s.memory.rss],
    ['heap_used_bytes', s.memory.heapUsed],
  ];
  for (const [listener, c] of Object.entries(s.connections)) fields.push([`conns_${listener}`, c.current]);
  fields.push(['pubsub_delivered_per_sec', fixed(r.pubsub)]);
  let ready = 0;
  let leased = 0;
  let dead = 0;
  let consumers = 0;
  for (const q of Object.values(s.broker.perQueue)) {
    ready += q.ready;
    leased += q.leased;
    dead += q.dead;
    consumers += q.consumers;
  }
  const total = (field: keyof Rates['queues'][string]) => Object.values(r.queues).reduce((sum, q) => sum + q[field], 0);
  fields.push(
    ['queues', s.broker.queues],
    ['queue_ready', ready],
    ['queue_leased', leased],
    ['queue_dead', dead],
    ['queue_consumers', consumers],
    ['queue_published_per_sec', fixed(total('published'))],
    ['queue_delivered_per_sec', fixed(total('delivered'))],
    ['queue_acked_per_sec', fixed(total('acked'))],
    ['queue_dead_lettered_per_sec', fixed(total('deadLettered'))],
  );
  return fields.map(([key, value]) => `${key}=${value}`).join(' ');
}
