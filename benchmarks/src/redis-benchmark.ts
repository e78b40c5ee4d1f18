// Runs redis-benchmark (the same client for Redis and Hati) and parses its --csv output.
import { spawn } from 'node:child_process';

/** A key argument redis-benchmark draws at random with -r: `__rand_int__` becomes a 12-digit number. */
export const RAND_KEY = 'key:__rand_int__';

/** The i-th key RAND_KEY can become (for preloading the keyspace -r draws from). */
export function randKey(i: number): string {
  return `key:${String(i).padStart(12, '0')}`;
}

export interface RedisBenchmarkRun {
  port: number;
  /** The command and its arguments, `__rand_int__` expanded by redis-benchmark (-r). */
  command: readonly string[];
  clients: number;
  requests: number;
  pipeline: number;
  keyspace: number;
  timeoutMs: number;
  /** AUTH with this password on every connection (-a); with `user`, `AUTH <user> <password>` (--user). */
  password?: string;
  user?: string;
  /** Connects over TLS and verifies the server's certificate with this CA file, PEM (--tls --cacert). */
  tlsCaFile?: string;
  /** Reads the full report instead of --csv, for its percentile table (p99.9). */
  percentiles?: boolean;
}

export interface RedisBenchmarkResult {
  rps: number;
  avgLatencyMs: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  maxLatencyMs: number;
  /** With `percentiles`: the latency at or below which 99.9% of the requests finished, ms. */
  p999LatencyMs?: number;
  /** Wall time of the redis-benchmark process, ms. */
  wallMs: number;
}

export function redisBenchmarkArgs(run: RedisBenchmarkRun): string[] {
  return [
    '-h',
    '127.0.0.1',
    '-p',
    String(run.port),
    '-c',
    String(run.clients),
    '-n',
    String(run.requests),
    '-r',
    String(run.keyspace),
    '-P',
    String(run.pipeline),
    ...(run.password === undefined ? [] : ['-a', run.password]),
    ...(run.user === undefined ? [] : ['--user', run.user]),
    ...(run.tlsCaFile === undefined ? [] : ['--tls', '--cacert', run.tlsCaFile]),
    ...(run.percentiles === true ? [] : ['-q', '--csv']),
    ...run.command,
  ];
}

/** The arguments as logs and results show them: the password of -a replaced. */
export function shownArgs(args: readonly string[]): string[] {
  return args.map((arg, i) => (args[i - 1] === '-a' ? '<password>' : arg));
}

/** Splits one CSV line of redis-benchmark's output (every field quoted, no quotes inside). */
function csvFields(line: string): string[] {
  return line.split(',').map((field) => field.trim().replace(/^"(.*)"$/, '$1'));
}

export function parseCsv(stdout: string): RedisBenchmarkResult | undefined {
  const lines = stdout.split('\n').filter((line) => line.trim() !== '');
  const headerAt = lines.findIndex((line) => line.startsWith('"test"'));
  const header = lines[headerAt];
  const data = lines[headerAt + 1];
  if (header === undefined || data === undefined) return undefined;
  const names = csvFields(header);
  // The test name (the command line) may hold commas; the numbers are the last fields.
  const values = csvFields(data).slice(-(names.length - 1));
  const field = (name: string): number => {
    const i = names.indexOf(name);
    const value = i < 1 ? Number.NaN : Number(values[i - 1]);
    if (!Number.isFinite(value)) throw new Error(`redis-benchmark CSV: no numeric '${name}' in ${data}`);
    return value;
  };
  return {
    rps: field('rps'),
    avgLatencyMs: field('avg_latency_ms'),
    p50LatencyMs: field('p50_latency_ms'),
    p99LatencyMs: field('p99_latency_ms'),
    maxLatencyMs: field('max_latency_ms'),
    wallMs: 0,
  };
}

/**
 * The full report (without --csv): the throughput and latency summaries, and from the
 * "Latency by percentile distribution" table the first line at or above 99.9%.
 */
export function parseReport(stdout: string): RedisBenchmarkResult | undefined {
  const text = stdout.replace(/\r/g, '\n');
  const rps = /throughput summary: ([\d.]+) requests per second/.exec(text)?.[1];
  const summary = /latency summary \(msec\):\s*\n\s*avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n\s*([\d.\s]+)\n/.exec(
    text,
  )?.[1];
  if (rps === undefined || summary === undefined) return undefined;
  const [avg, , p50, , p99, max] = summary.trim().split(/\s+/).map(Number);
  let p999: number | undefined;
  for (const match of text.matchAll(/^\s*([\d.]+)% <= ([\d.]+) milliseconds/gm)) {
    if (Number(match[1]) >= 99.9) {
      p999 = Number(match[2]);
      break;
    }
  }
  return {
    rps: Number(rps),
    avgLatencyMs: avg as number,
    p50LatencyMs: p50 as number,
    p99LatencyMs: p99 as number,
    maxLatencyMs: max as number,
    ...(p999 !== undefined && { p999LatencyMs: p999 }),
    wallMs: 0,
  };
}

/** Runs redis-benchmark once; rejects on a non-zero exit (an error reply ends it), a timeout or no CSV. */
export function redisBenchmark(run: RedisBenchmarkRun): Promise<RedisBenchmarkResult> {
  const args = redisBenchmarkArgs(run);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-16 * 1024);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, run.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      // Against Hati, redis-benchmark's CONFIG GET gets an error reply: it warns and goes on.
      const messages = stderr
        .split('\n')
        .filter((line) => line.trim() !== '' && !line.includes('Could not fetch server CONFIG'))
        .join('\n');
      const what = `redis-benchmark ${shownArgs(args).join(' ')}`;
      if (timedOut) return reject(new Error(`${what}: no result within ${run.timeoutMs} ms\n${messages}`));
      if (code !== 0) return reject(new Error(`${what}: exit code ${code}, signal ${signal}\n${messages}`));
      try {
        const result = run.percentiles === true ? parseReport(stdout) : parseCsv(stdout);
        if (result === undefined)
          return reject(new Error(`${what}: no result in\n${stdout.slice(-4000)}\n${messages}`));
        resolve({ ...result, wallMs });
      } catch (err) {
        reject(err);
      }
    });
  });
}
