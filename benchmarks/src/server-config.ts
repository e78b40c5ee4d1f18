// Run sizes of the server benchmark, in one place. BENCH_QUICK=1 shrinks every row for a smoke
// run; the numbers of a quick run are not comparable with the targets.
import { quick } from './config.js';

export const serverConfig = {
  quick,
  /** redis-benchmark connections (-c), and autocannon connections for the JSON-RPC rows. */
  clients: 50,
  /** Keys hit by the rows (-r): key:000000000000 to key:000000099999, all preloaded before the rows. */
  keyspace: 100_000,
  /** The value of every SET, 16 bytes. */
  value: 'v123456789abcdef',
  /** Pipeline depths (-P) of the redis-benchmark rows. */
  pipelines: [1, 16] as const,
  /** Requests per redis-benchmark row (-n), by pipeline depth: a few seconds per row. */
  requests: quick ? { 1: 20_000, 16: 100_000 } : { 1: 200_000, 16: 1_000_000 },
  /**
   * The memory rows (Hati against Redis without persistence) run this many alternating rounds
   * (Redis SET, Hati SET, Redis GET, Hati GET); their ratio is the median of the rounds' ratios,
   * since two runs of one row here differ by up to 0.17 (a shared 2-core machine).
   */
  memoryRounds: quick ? 1 : 3,
  /** The same for the rows against Redis with its AOF (everysec pair, then always pair). */
  aofRounds: quick ? 1 : 3,
  /** Unmeasured redis-benchmark runs against every server before the rows (JIT warm-up), per command. */
  warmupRequests: quick ? 20_000 : 200_000,
  /**
   * Rows of the `--hdd-durability always` server fsync before every reply, far slower than the
   * others: their -n is sized from a short probe run to take about this long, capped at `requests`.
   */
  alwaysSeconds: quick ? 1 : 4,
  alwaysProbeRequests: { 1: 2_000, 16: 20_000 },
  /** Kills a redis-benchmark run that takes longer than this, ms. */
  rowTimeoutMs: 300_000,
  rpc: {
    /** Measured seconds per JSON-RPC row, after an unmeasured warm-up. */
    durationSeconds: quick ? 1 : 5,
    warmupSeconds: quick ? 0.5 : 2,
    /**
     * Storage.Get against a bare node:http JSON echo: alternating rounds of this many seconds
     * each, after a warm-up long enough for V8 to optimise Hati's larger code (seconds slower
     * than the echo's under load).
     */
    echoRounds: quick ? 1 : 5,
    echoSeconds: quick ? 1 : 3,
    echoWarmupSeconds: quick ? 0.5 : 10,
  },
} as const;

export type Pipeline = (typeof serverConfig.pipelines)[number];
