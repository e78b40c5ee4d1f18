// Run sizes of the client benchmark, in one place. BENCH_QUICK=1 shrinks every row for a smoke
// run; the numbers of a quick run are not comparable with the targets.
import { intFromEnv, quick } from './config.js';

function bounded(name: string, fallback: number, max: number): number {
  const value = intFromEnv(name, fallback);
  if (value > max) throw new Error(`${name} must be at most ${max}, got ${value}`);
  return value;
}

export const clientConfig = {
  quick,
  /** The value of every SET, 16 bytes. */
  value: 'v123456789abcdef',
  /** Calls of a pipelined row, all issued before any is awaited; keys key:0 to key:<n-1>. */
  pipelined: bounded('BENCH_CLIENT_PIPELINED', quick ? 10_000 : 100_000, 1_000_000),
  /** Calls of an awaited row, one at a time (key:i modulo `pipelined`). */
  sequential: bounded('BENCH_CLIENT_SEQUENTIAL', quick ? 2_000 : 20_000, 1_000_000),
  /** Rounds of every row (Redis then Hati each time); a row reports the median of its rounds. */
  rounds: bounded('BENCH_CLIENT_ROUNDS', quick ? 1 : 5, 20),
  /** Unmeasured calls of every row kind against each server first (JIT warm-up of both clients). */
  warmup: { pipelined: quick ? 5_000 : 50_000, sequential: quick ? 1_000 : 10_000 },
  /** A row whose calls have not all settled after this long fails, ms. */
  rowTimeoutMs: 120_000,
} as const;
