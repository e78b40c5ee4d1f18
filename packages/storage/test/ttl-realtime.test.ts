// "A key with ttl N is readable for at least N ms", with the real clock. The clock reads whole
// milliseconds, so a rule of `now >= expiresAt` dropped keys up to 1 ms early; these tests poll
// in a tight loop and fail on any read that finds a key missing before N ms have passed. They
// only check "never early", which holds on any machine, however loaded, when the code is right:
// the time is taken after the read returns, an upper bound of the time at which it read.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { HddEngine, MemoryEngine } from '../src/index.js';

interface Pending {
  ttl: number;
  before: number;
}

t.test('memory: with the real clock, no key with ttl 1..100 ms is missing before its ttl', async (t) => {
  const store = new MemoryEngine({ shards: 4 });
  t.teardown(() => store.close());
  const early: string[] = [];
  let expired = 0;
  const rounds = 6;
  const perRound = 400;
  for (let round = 0; round < rounds; round++) {
    const pending = new Map<string, Pending>();
    for (let i = 0; i < perRound; i++) {
      const key = `r${round}-${i}`;
      const ttl = 1 + ((i * 7 + round) % 100);
      const before = performance.now();
      store.set(key, 'v', ttl);
      pending.set(key, { ttl, before });
    }
    while (pending.size > 0) {
      for (const [key, { ttl, before }] of pending) {
        const value = store.get(key);
        const elapsed = performance.now() - before;
        if (value !== undefined) continue;
        if (elapsed < ttl) early.push(`${key}: ttl ${ttl} ms, missing after ${elapsed.toFixed(3)} ms`);
        pending.delete(key);
        expired++;
      }
    }
    // Let timers (the sweeper) run between rounds.
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.same(early.slice(0, 20), [], `no key was missing early (${early.length} early)`);
  t.equal(expired, rounds * perRound, 'every key was seen expiring');
});

t.test('hdd: with the real clock, no key with ttl 5..50 ms is missing before its ttl', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'hati-ttl-'));
  const store = await HddEngine.open({ dataDir, durability: 'no', shards: 2, sweepIntervalMs: 1 });
  t.teardown(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const early: string[] = [];
  let expired = 0;
  const rounds = 15;
  const perRound = 16;
  for (let round = 0; round < rounds; round++) {
    // Few keys at a time, each polled by its own loop, so that one read round trip stays short.
    await Promise.all(
      Array.from({ length: perRound }, async (_, i) => {
        const key = `r${round}-${i}`;
        const ttl = 5 + ((i * 3 + round) % 46);
        const before = performance.now();
        await store.set(key, 'v', ttl);
        for (;;) {
          const value = await store.get(key);
          const elapsed = performance.now() - before;
          if (value !== undefined) continue;
          if (elapsed < ttl) early.push(`${key}: ttl ${ttl} ms, missing after ${elapsed.toFixed(3)} ms`);
          expired++;
          return;
        }
      }),
    );
  }
  t.same(early.slice(0, 20), [], `no key was missing early (${early.length} early)`);
  t.equal(expired, rounds * perRound, 'every key was seen expiring');
});
