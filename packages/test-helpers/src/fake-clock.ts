/** A clock for code that takes `clock: () => number`: read it by calling, move it by setting `now`. */
export interface FakeClock {
  now: number;
  (): number;
}

/** A fake clock starting at `start` (ms since the epoch); it moves only when a test sets `now`. */
export function fakeClock(start = 1_700_000_000_000): FakeClock {
  const clock = (() => clock.now) as FakeClock;
  clock.now = start;
  return clock;
}
