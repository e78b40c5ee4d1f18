// Run sizes, in one place. BENCH_QUICK=1 shrinks every row for a smoke run; the numbers of a
// quick run are not comparable with the targets.

export function intFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${text}`);
  return value;
}

export const quick = process.env.BENCH_QUICK === '1';

export const config = {
  quick,
  /** Keys in the store before the read, count and delete rows, as in the seed's Go benchmarks. */
  preloadKeys: 10_000,
  /** Synchronous ops per tinybench iteration: the timer is read once per batch, not per op. */
  batch: 1000,
  memory: {
    /** tinybench time budget per row, ms. */
    timeMs: quick ? 150 : 1000,
    warmupMs: quick ? 30 : 250,
    /**
     * Set rows run a fixed number of batches instead, so that every op sets a key that is not
     * in the store yet: the fresh keys are generated before the row, one per op.
     */
    setBatches: quick ? 60 : 900,
    setWarmupBatches: quick ? 10 : 100,
  },
  hdd: {
    /** Operations kept outstanding by the closed loop. */
    inFlight: 256,
    /** Measured time per row, ms (the row also stops when it runs out of fresh keys). */
    timeMs: quick ? 300 : 2000,
    warmupMs: quick ? 50 : 300,
    /** Fresh keys available to each set row. */
    setKeys: quick ? 200_000 : 1_000_000,
    /** Keys preloaded for the delete row; each is deleted at most once. */
    deletePool: quick ? 30_000 : 400_000,
    /** SETs per store in the shard rows, and the rounds of each shard count. */
    shardSets: quick ? 50_000 : 400_000,
    shardRounds: quick ? 1 : 2,
  },
  reopenKeys: intFromEnv('BENCH_REOPEN_KEYS', quick ? 50_000 : 1_000_000),
  memoryPerKeyKeys: quick ? 100_000 : 1_000_000,
} as const;
