import t from 'tap';
import { MemoryEngine } from '../src/index.js';
import { conformance, fakeClock } from './common/conformance.js';

conformance(t, { open: async (clock) => new MemoryEngine({ clock }) });

t.test('active expiry removes keys nobody reads, a bounded number per run', async (t) => {
  const clock = fakeClock();
  const store = new MemoryEngine({ clock, shards: 4, sweepIntervalMs: 5, sweepLimit: 100 });
  t.teardown(() => store.close());
  for (let i = 0; i < 10_000; i++) store.set(`k${i}`, 'v', 10);
  for (let i = 0; i < 100; i++) store.set(`keep${i}`, 'v');
  t.equal(store.heldKeys(), 10_100);
  clock.now += 11;
  // Without any read, the sweeper empties the store over several runs of at most 400 keys.
  const deadline = Date.now() + 10_000;
  while (store.heldKeys() > 100 && Date.now() < deadline) {
    const before = store.heldKeys();
    await new Promise((resolve) => setTimeout(resolve, 1));
    t.ok(before - store.heldKeys() <= 4 * 100 * 2, 'no run removes more than its bound');
  }
  t.equal(store.heldKeys(), 100);
  t.equal(store.count(), 100);
});

t.test('rewriting ttls does not grow the expiry heap without bound', async (t) => {
  const clock = fakeClock();
  const store = new MemoryEngine({ clock, shards: 1 });
  t.teardown(() => store.close());
  for (let i = 0; i < 100_000; i++) store.set('same', `v${i}`, 60_000 + i);
  t.equal(store.ttl('same'), 60_000 + 99_999);
  clock.now += 60_000 + 99_999;
  t.equal(store.get('same'), 'v99999', 'live at set + N');
  clock.now += 1;
  t.equal(store.get('same'), undefined, 'gone at set + N + 1');
});

t.test('options are checked', async (t) => {
  for (const shards of [0, -1, 1.5, 2000, Number.NaN]) {
    t.throws(() => new MemoryEngine({ shards }), { code: 'OPTION_INVALID' }, `shards ${shards}`);
  }
  t.throws(() => new MemoryEngine({ sweepLimit: 0 }), { code: 'OPTION_INVALID' });
  const one = new MemoryEngine({ shards: 1 });
  one.set('a', 'b');
  t.same(one.shardCounts(), [1]);
  await one.close();
});

t.test('the memory engine answers synchronously', async (t) => {
  const store = new MemoryEngine();
  t.teardown(() => store.close());
  t.equal(store.set('k', 'v'), undefined);
  t.equal(store.get('k'), 'v', 'no promise on the hot path');
  t.equal(store.count(), 1);
});
