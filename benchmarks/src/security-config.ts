// Run sizes of the credentials and TLS benchmark, in one place. BENCH_QUICK=1 shrinks every row
// for a smoke run; the numbers of a quick run are not comparable with the targets.
import { intFromEnv, quick } from './config.js';

const rounds = intFromEnv('BENCH_SECURITY_ROUNDS', quick ? 1 : 2);
if (rounds > 10) throw new Error(`BENCH_SECURITY_ROUNDS must be at most 10, got ${rounds}`);

export const securityConfig = {
  quick,
  /** redis-benchmark connections (-c), and autocannon connections for the JSON-RPC rows. */
  clients: 50,
  /** Keys hit by the rows (-r): key:000000000000 to key:000000099999, all preloaded before the rows. */
  keyspace: 100_000,
  /** The value of every SET, 16 bytes. */
  value: 'v123456789abcdef',
  /** Pipeline depths (-P) of the redis-benchmark rows. */
  pipelines: [1, 16] as const,
  /** Requests per redis-benchmark run (-n), by pipeline depth: one to three seconds per run. */
  requests: quick ? { 1: 10_000, 16: 50_000 } : { 1: 100_000, 16: 500_000 },
  /**
   * Rounds of each row: a round runs plain, password, users, tls one after the other, and one
   * more plain run closes the last round, so every run with credentials or TLS lies between two
   * plain runs (BENCH_SECURITY_ROUNDS, at most 10).
   */
  rounds,
  /** Unmeasured redis-benchmark runs against every server before the rows, per command, at -P 16. */
  warmupRequests: quick ? 10_000 : 100_000,
  /** Kills a redis-benchmark run that takes longer than this, ms. */
  rowTimeoutMs: 120_000,
  /** The user of the users file: reads and writes only keys under this prefix, memory storage. */
  user: { name: 'bench', keyRule: 'memory:key:' },
  rpc: {
    /** Measured seconds per JSON-RPC run (one round: plain, Basic, Basic, Bearer, plain). */
    durationSeconds: quick ? 1 : 4,
    /** Unmeasured seconds of each JSON-RPC run's kind first. */
    warmupSeconds: quick ? 0.5 : 1.5,
    /** Keys of the JSON-RPC requests (the first ones of the preloaded keyspace). */
    keys: 1000,
  },
} as const;

export type Pipeline = (typeof securityConfig.pipelines)[number];
