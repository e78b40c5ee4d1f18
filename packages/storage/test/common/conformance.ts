// The conformance suite every engine passes (the abstract-level way): `conformance` takes a
// factory and registers the same tests for any engine. Tests branch on `supports`, never on names.

import { type FakeClock, fakeClock } from '@hati/test-helpers';
import type { Test } from 'tap';
import { type KeyValueStore, type MemoryEngine, StorageError, type StoredEntry } from '../../src/index.js';
import { commandAreas } from './conformance-commands.js';

export { type FakeClock, fakeClock };

export interface Harness {
  /**
   * Opens a fresh, empty store reading time from `clock`. The areas move `clock` by hand. An
   * engine whose calls wait for real I/O, so that a sweeper on a real timer can run in the middle
   * of an area, must be opened with that sweeper out of the way: it would remove expired records
   * at a moment that depends on the machine's load, and what an area sees of them (a scan's
   * budget counts the expired records it reads) would pass or fail with it. Each engine's
   * sweeper has tests of its own.
   */
  open(clock: FakeClock): Promise<KeyValueStore>;
  /** For persistent engines: closes `store` and opens the same data again. */
  reopen?(store: KeyValueStore, clock: FakeClock): Promise<KeyValueStore>;
}

/** The StorageError code `fn` fails with, or undefined when it succeeds. */
export async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof StorageError) return err.code;
    throw err;
  }
  return undefined;
}

/** `setRange` of either engine (the memory one returns, the hdd one resolves). */
type SetRange = (...args: Parameters<MemoryEngine['setRange']>) => unknown;

/**
 * The `setRange` calls every engine refuses, with the code of each, over `request` (at least 20
 * bytes): checked before anything is stored.
 */
export function setRangeRefusals(setRange: SetRange, request: Buffer): Array<[string, () => unknown, string]> {
  const notBytes = (text: string) => text as unknown as Uint8Array;
  return [
    ['an empty key', () => setRange(request, 4, 4, request, 0, 1, 0), 'KEY_EMPTY'],
    ['a string key', () => setRange(notBytes('k'), 0, 1, request, 0, 1, 0), 'KEY_INVALID'],
    ['a string value', () => setRange(request, 0, 1, notBytes('v'), 0, 1, 0), 'VALUE_INVALID'],
    ['a key past the end', () => setRange(request, 20, 30, request, 0, 1, 0), 'ARGUMENT_INVALID'],
    ['a reversed key range', () => setRange(request, 5, 4, request, 0, 1, 0), 'ARGUMENT_INVALID'],
    ['a value past the end', () => setRange(request, 0, 3, request, 10, 100, 0), 'ARGUMENT_INVALID'],
    ['a fractional value start', () => setRange(request, 0, 3, request, 1.5, 2, 0), 'ARGUMENT_INVALID'],
    ['a negative ttl', () => setRange(request, 0, 3, request, 0, 1, -1), 'TTL_INVALID'],
  ];
}

async function collect(store: KeyValueStore): Promise<Map<string, StoredEntry>> {
  const out = new Map<string, StoredEntry>();
  for await (const entry of store.entries()) out.set(entry.key.toString('hex'), entry);
  return out;
}

const DAY = 24 * 60 * 60 * 1000;

export function conformance(t: Test, harness: Harness): void {
  // Each area runs on a fresh store, and for persistent engines also on one that was filled,
  // closed and opened again (whatever the body expects must hold after a restart too).
  const variants: Array<{ name: string; make: (clock: FakeClock) => Promise<KeyValueStore> }> = [
    { name: 'fresh', make: (clock) => harness.open(clock) },
  ];
  const reopen = harness.reopen;
  if (reopen !== undefined) {
    variants.push({
      name: 'reopened',
      make: async (clock) => {
        const store = await harness.open(clock);
        await store.set('warm-up', 'x');
        await store.delete('warm-up');
        return reopen(store, clock);
      },
    });
  }

  for (const variant of variants) {
    const area = (name: string, body: (t: Test, store: KeyValueStore, clock: FakeClock) => Promise<void>) => {
      t.test(`${name} (${variant.name})`, async (t) => {
        const clock = fakeClock();
        let store = await variant.make(clock);
        t.teardown(() => store.close());
        await body(t, store, clock);
        // The same store must still be consistent after a restart.
        if (reopen !== undefined && variant.name === 'reopened') {
          const before = await collect(store);
          store = await reopen(store, clock);
          t.same(await collect(store), before, 'entries survive a restart');
          t.equal(await store.count(), before.size, 'count survives a restart');
        }
      });
    };

    area('set, get, has, delete, count', async (t, store) => {
      t.equal(await store.get('missing'), undefined);
      t.equal(await store.getBuffer('missing'), undefined);
      t.equal(await store.has('missing'), false);
      t.equal(await store.delete('missing'), false);
      t.equal(await store.ttl('missing'), undefined);
      t.equal(await store.count(), 0);

      t.equal(await store.set('greeting', 'hello world'), undefined);
      t.equal(await store.get('greeting'), 'hello world');
      t.same(await store.getBuffer('greeting'), Buffer.from('hello world'));
      t.equal(await store.has('greeting'), true);
      t.equal(await store.ttl('greeting'), 0);
      t.equal(await store.count(), 1);

      await store.set('greeting', 'bye');
      t.equal(await store.get('greeting'), 'bye', 'overwrite replaces the value');
      t.equal(await store.count(), 1, 'overwrite does not change the count');

      await store.set('empty-value', '');
      t.equal(await store.get('empty-value'), '', 'an empty value is a value');
      t.equal(await store.has('empty-value'), true);
      t.equal(await store.count(), 2);

      t.equal(await store.delete('greeting'), true);
      t.equal(await store.delete('greeting'), false, 'a second delete removes nothing');
      t.equal(await store.get('greeting'), undefined);
      t.equal(await store.count(), 1);
    });

    area('calls take effect in call order, awaited or not', async (t, store) => {
      // A pipelining server issues every command of a request before awaiting any.
      const results = await Promise.all([
        store.set('k', 'v1'),
        store.get('k'),
        store.ttl('k'),
        store.delete('k'),
        store.has('k'),
        store.get('k'),
        store.set('k', 'v2', 500),
        store.getBuffer('k'),
        store.ttl('k'),
        store.count(),
        store.set('other', 'x'),
        store.count(),
        store.flushAll(),
        store.get('k'),
        store.count(),
      ]);
      t.same(results, [
        undefined,
        'v1',
        0,
        true,
        false,
        undefined,
        undefined,
        Buffer.from('v2'),
        500,
        1,
        undefined,
        2,
        undefined,
        undefined,
        0,
      ]);
    });

    area('binary keys and values', async (t, store) => {
      const key = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80]);
      const value = Buffer.from([0x00, 0x0d, 0x0a, 0xff, 0xfe, 0xc3]);
      await store.set(key, value);
      t.same(await store.getBuffer(key), value, 'bytes round-trip exactly');
      t.equal(await store.has(new Uint8Array(key)), true, 'a Uint8Array names the same key');
      t.equal(await store.has(Buffer.from([0x00, 0xff, 0x0d, 0x0a])), false, 'a prefix is another key');

      await store.set('é', 'ünï');
      t.equal(await store.get(Buffer.from('é')), 'ünï', 'a string key is its UTF-8 bytes');
      t.same(await store.getBuffer('é'), Buffer.from('ünï', 'utf8'));
      await store.set(Buffer.from('bytes-key'), Buffer.from('text in bytes'));
      t.equal(await store.get('bytes-key'), 'text in bytes');

      const big = Buffer.alloc(1024 * 1024, 7);
      await store.set('big', big);
      t.same(await store.getBuffer('big'), big, 'a 1 MiB value round-trips');

      const copy = await store.getBuffer(key);
      copy?.fill(0);
      t.same(await store.getBuffer(key), value, 'getBuffer returns a copy the caller may change');

      const entries = await collect(store);
      t.same(entries.get(key.toString('hex'))?.value, value, 'entries() yields binary keys');
      t.equal(entries.size, 4);
      t.equal(await store.count(), 4);
    });

    area('bad input is refused with a code', async (t, store) => {
      t.equal(await codeOf(() => store.set('', 'v')), 'KEY_EMPTY');
      t.equal(await codeOf(() => store.set(Buffer.alloc(0), 'v')), 'KEY_EMPTY');
      t.equal(await codeOf(() => store.get('')), 'KEY_EMPTY');
      t.equal(await codeOf(() => store.has('')), 'KEY_EMPTY');
      t.equal(await codeOf(() => store.delete('')), 'KEY_EMPTY');
      t.equal(await codeOf(() => store.set(42 as unknown as string, 'v')), 'KEY_INVALID');
      t.equal(await codeOf(() => store.set('k', { a: 1 } as unknown as string)), 'VALUE_INVALID');
      for (const ttl of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10', null, 2 ** 53]) {
        t.equal(await codeOf(() => store.set('k', 'v', ttl as number)), 'TTL_INVALID', `ttl ${String(ttl)}`);
      }
      t.equal(await store.count(), 0, 'nothing was stored by refused calls');
      t.equal(await store.has('k'), false);
    });

    area('ttl', async (t, store, clock) => {
      await store.set('forever', 'v', 0);
      await store.set('short', 'v', 1);
      await store.set('ten', 'v', 10);
      t.equal(await store.ttl('forever'), 0);
      t.equal(await store.ttl('ten'), 10);
      t.equal(await store.get('short'), 'v', 'readable before its ttl has passed');
      t.equal(await store.count(), 3);

      // The exact boundary: a key with ttl N is live at set + N and gone at set + N + 1, since a
      // clock in whole ms cannot tell set + N from up to 1 ms less than N having passed.
      clock.now += 1;
      t.equal(await store.get('short'), 'v', 'a 1 ms key is still readable when the clock reads set + 1');
      t.equal(await store.has('short'), true);
      t.equal(await store.ttl('short'), 1, 'a live key with a ttl reports at least 1 ms, never 0 or less');
      t.equal(await store.count(), 3);
      clock.now += 1;
      t.equal(await store.get('short'), undefined, 'a 1 ms key is gone at set + 2');
      t.equal(await store.has('short'), false);
      t.equal(await store.ttl('short'), undefined);
      t.equal(await store.ttl('ten'), 8, 'ttl counts down');
      t.equal(await store.count(), 2, 'an expired key is not counted');

      clock.now += 8;
      t.equal(await store.get('ten'), 'v', 'still readable at set + 10');
      t.equal(await store.ttl('ten'), 1);
      clock.now += 1;
      t.equal(await store.get('ten'), undefined, 'gone at set + 11');
      t.equal(await store.delete('ten'), false, 'deleting an expired key removes no live key');
      t.equal(await store.count(), 1);
      t.equal(await store.get('forever'), 'v');
    });

    area('expiry boundary in count, delete, entries and the sweeper', async (t, store, clock) => {
      const set = clock.now;
      for (let i = 0; i < 50; i++) await store.set(`b${i}`, 'v', 5);
      clock.now = set + 5;
      t.equal(await store.count(), 50, 'counted at set + N');
      t.equal((await collect(store)).size, 50, 'iterated at set + N');
      t.equal(await store.delete('b0'), true, 'deleted as a live key at set + N');
      clock.now = set + 6;
      t.equal(await store.count(), 0, 'none counted at set + N + 1');
      t.equal((await collect(store)).size, 0);
      t.equal(await store.delete('b1'), false);
    });

    area('overwrite replaces the ttl', async (t, store, clock) => {
      await store.set('a', 'v1', 100);
      await store.set('a', 'v2');
      t.equal(await store.ttl('a'), 0, 'set without ttl makes the key permanent');
      clock.now += 1000;
      t.equal(await store.get('a'), 'v2');

      await store.set('b', 'v1');
      await store.set('b', 'v2', 50);
      t.equal(await store.ttl('b'), 50, 'set with a ttl gives a permanent key one');
      await store.set('b', 'v3', 500);
      clock.now += 100;
      t.equal(await store.get('b'), 'v3', 'the later, longer ttl counts');
      t.equal(await store.ttl('b'), 400);
      clock.now += 400;
      t.equal(await store.get('b'), 'v3', 'live at set + N');
      clock.now += 1;
      t.equal(await store.get('b'), undefined, 'gone at set + N + 1');
      t.equal(await store.count(), 1);
    });

    area('keys that expire unread leave the count', async (t, store, clock) => {
      for (let i = 0; i < 500; i++) await store.set(`k${i}`, 'v', i % 2 === 0 ? 10 : 0);
      t.equal(await store.count(), 500);
      clock.now += 10;
      t.equal(await store.count(), 500, 'keys are counted up to set + N');
      clock.now += 1;
      t.equal(await store.count(), 250, 'expired keys are not counted, read or not');
      const counts = await store.shardCounts();
      t.equal(counts.length, store.shards);
      t.equal(
        counts.reduce((a, b) => a + b, 0),
        250,
        'shard counts add up to the count',
      );
      t.ok(counts.filter((n) => n > 0).length > 1, 'keys spread over more than one shard');
      t.equal((await collect(store)).size, 250, 'entries() skips expired keys');
    });

    area('ttls longer than the 24.8-day timer limit', async (t, store, clock) => {
      const long = 40 * DAY;
      await store.set('long', 'v', long);
      clock.now += 2 ** 31;
      t.equal(await store.get('long'), 'v', 'alive past 2^31 ms');
      clock.now = clock.now - 2 ** 31 + long - 1;
      t.equal(await store.ttl('long'), 1);
      clock.now += 1;
      t.equal(await store.get('long'), 'v', 'live at exactly 40 days');
      clock.now += 1;
      t.equal(await store.get('long'), undefined, 'gone 1 ms after 40 days');
    });

    area('count under overwrite, delete and expiry', async (t, store, clock) => {
      for (let i = 0; i < 100; i++) await store.set(`k${i}`, `v${i}`);
      for (let i = 0; i < 100; i++) await store.set(`k${i}`, `w${i}`, i < 30 ? 5 : 0);
      t.equal(await store.count(), 100, 'overwrites add nothing');
      for (let i = 90; i < 100; i++) t.equal(await store.delete(`k${i}`), true);
      t.equal(await store.count(), 90);
      clock.now += 6;
      t.equal(await store.count(), 60);
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.set(`c${i % 10}`, `${i}`)));
      t.equal(await store.count(), 70, 'concurrent writes to the same keys count once');
      t.equal(await store.get('c9'), '49', 'the last write wins');
    });

    area('flushAll', async (t, store, clock) => {
      for (let i = 0; i < 200; i++) await store.set(`k${i}`, 'v', i % 3 === 0 ? 5 : 0);
      await store.flushAll();
      t.equal(await store.count(), 0);
      t.same(await store.shardCounts(), new Array(store.shards).fill(0));
      t.equal(await store.get('k1'), undefined);
      t.equal((await collect(store)).size, 0);
      clock.now += 10;
      await store.set('after', 'v', 5);
      t.equal(await store.count(), 1, 'the store works after a flush');
      t.equal(await store.get('after'), 'v');
    });

    area('entries', async (t, store, clock) => {
      await store.set('a', '1');
      await store.set('b', '2', 1000);
      const entries = await collect(store);
      t.same(entries.get(Buffer.from('a').toString('hex')), {
        key: Buffer.from('a'),
        value: Buffer.from('1'),
        expiresAt: 0,
      });
      t.same(entries.get(Buffer.from('b').toString('hex')), {
        key: Buffer.from('b'),
        value: Buffer.from('2'),
        expiresAt: clock.now + 1000,
      });
    });

    commandAreas(area);
  }

  t.test('use after close', async (t) => {
    const store = await harness.open(fakeClock());
    await store.set('k', 'v');
    await store.close();
    await store.close();
    for (const op of [
      () => store.get('k'),
      () => store.set('k', 'v'),
      () => store.has('k'),
      () => store.delete('k'),
      () => store.count(),
      () => store.flushAll(),
      () => store.setIf('k', 'v', 0, 'absent'),
      () => store.expire('k', 10),
      () => store.incrBy('k', 1n),
      () => store.getMany(['k']),
      () => store.setMany([['k', 'v']]),
      () => store.scan('0'),
      () => store.keys('*'),
    ]) {
      t.equal(await codeOf(op), 'STORAGE_CLOSED');
    }
  });
}
