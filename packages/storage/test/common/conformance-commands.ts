// Conformance areas for the Redis-style operations: setIf, expire, incrBy, getMany/setMany,
// scan, keys and the onExpired hook. Registered by `conformance` for every engine and variant.
import type { Test } from 'tap';
import type { KeyValueStore, ScanOptions, StorageError } from '../../src/index.js';
import { codeOf, type FakeClock } from './conformance.js';

export type Area = (name: string, body: (t: Test, store: KeyValueStore, clock: FakeClock) => Promise<void>) => void;

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/**
 * Runs a scan to its end (from `from`, "0" by default); returns every key returned (as text,
 * repeats kept), the calls made and the largest page.
 */
export async function scanAll(
  store: KeyValueStore,
  options?: ScanOptions,
  between?: (call: number) => Promise<void>,
  from = '0',
): Promise<{ keys: string[]; calls: number; largest: number }> {
  const keys: string[] = [];
  let cursor = from;
  let calls = 0;
  let largest = 0;
  do {
    const page = await store.scan(cursor, options);
    calls++;
    largest = Math.max(largest, page.keys.length);
    for (const key of page.keys) keys.push(key.toString());
    cursor = page.cursor;
    if (cursor !== '0' && between !== undefined) await between(calls);
  } while (cursor !== '0');
  return { keys, calls, largest };
}

const sorted = (keys: Buffer[]) => keys.map(String).sort();

export function commandAreas(area: Area): void {
  area('setIf stores only when absent (NX) or present (XX)', async (t, store, clock) => {
    t.equal(await store.setIf('k', 'v1', 0, 'present'), false, 'XX on a missing key stores nothing');
    t.equal(await store.has('k'), false);
    t.equal(await store.setIf('k', 'v1', 0, 'absent'), true, 'NX on a missing key stores');
    t.equal(await store.setIf('k', 'v2', 0, 'absent'), false, 'NX on a live key stores nothing');
    t.equal(await store.get('k'), 'v1');
    t.equal(await store.setIf('k', 'v3', 100, 'present'), true, 'XX on a live key stores');
    t.equal(await store.get('k'), 'v3');
    t.equal(await store.ttl('k'), 100, 'with the new ttl');
    t.equal(await store.setIf('k', 'v4', 0, 'present'), true);
    t.equal(await store.ttl('k'), 0, 'and ttl 0 makes it permanent, as set does');

    await store.set('e', 'old', 5);
    clock.now += 5;
    t.equal(await store.setIf('e', 'x', 0, 'absent'), false, 'live at set + N');
    clock.now += 1;
    t.equal(await store.setIf('e', 'new', 0, 'present'), false, 'an expired key is not present');
    t.equal(await store.get('e'), undefined);
    t.equal(await store.setIf('e', 'new', 50, 'absent'), true, 'an expired key is absent');
    t.equal(await store.get('e'), 'new');
    t.equal(await store.ttl('e'), 50);
    t.equal(await store.count(), 2);

    t.equal(await codeOf(() => store.setIf('c', 'v', 0, 'nx' as 'absent')), 'ARGUMENT_INVALID');
    t.equal(await codeOf(() => store.setIf('c', 'v', 0, undefined as unknown as 'absent')), 'ARGUMENT_INVALID');
    t.equal(await codeOf(() => store.setIf('c', 'v', -1, 'absent')), 'TTL_INVALID');
    t.equal(await codeOf(() => store.setIf('', 'v', 0, 'absent')), 'KEY_EMPTY');
    t.equal(await codeOf(() => store.setIf('c', 7 as unknown as string, 0, 'absent')), 'VALUE_INVALID');
    t.equal(await store.has('c'), false, 'refused calls store nothing');

    const raced = await Promise.all(Array.from({ length: 20 }, (_, i) => store.setIf('race', `${i}`, 0, 'absent')));
    t.equal(raced.filter(Boolean).length, 1, 'of 20 concurrent NX calls exactly one stores');
    t.equal(await store.get('race'), `${raced.indexOf(true)}`, 'and its value is the one kept');
  });

  area('expire sets the remaining ttl of a live key', async (t, store, clock) => {
    t.equal(await store.expire('missing', 100), false, 'a missing key');
    t.equal(await store.has('missing'), false, 'is not created');
    await store.set('k', 'v');
    t.equal(await store.expire('k', 50), true);
    t.equal(await store.ttl('k'), 50);
    t.equal(await store.get('k'), 'v', 'the value is kept');
    clock.now += 20;
    t.equal(await store.expire('k', 50), true, 'a later expire replaces the ttl');
    clock.now += 50;
    t.equal(await store.get('k'), 'v', 'live at expire + N');
    clock.now += 1;
    t.equal(await store.get('k'), undefined, 'gone at expire + N + 1');
    t.equal(await store.expire('k', 50), false, 'an expired key cannot be given a ttl');

    await store.set('p', 'v', 10);
    t.equal(await store.expire('p', 0), true, 'ttl 0');
    t.equal(await store.ttl('p'), 0, 'makes the key permanent');
    clock.now += 1000;
    t.equal(await store.get('p'), 'v');
    await store.set('q', 'v', 10);
    t.equal(await store.expire('q', 5000), true, 'a ttl can be lengthened');
    clock.now += 4000;
    t.equal(await store.get('q'), 'v');

    for (const ttl of [-1, 1.5, Number.NaN, '10', null, 2 ** 53]) {
      t.equal(await codeOf(() => store.expire('p', ttl as number)), 'TTL_INVALID', `ttl ${String(ttl)}`);
    }
    t.equal(await codeOf(() => store.expire('', 10)), 'KEY_EMPTY');
    t.equal(await store.ttl('p'), 0, 'refused calls change nothing');
    t.equal(await store.count(), 2);
  });

  area('incrBy counts in 64-bit signed integers stored as decimal text', async (t, store, clock) => {
    t.equal(await store.incrBy('n', 1n), 1n, 'a missing key starts at 0');
    t.equal(await store.get('n'), '1', 'the result is stored as text');
    t.equal(await store.ttl('n'), 0, 'with no ttl');
    t.equal(await store.incrBy('n', 41n), 42n);
    t.equal(await store.incrBy('n', -50n), -8n);
    t.equal(await store.get('n'), '-8');
    t.equal(await store.incrBy('n', 8n), 0n);
    t.equal(await store.get('n'), '0');

    await store.set('t', '10', 100);
    t.equal(await store.incrBy('t', 5n), 15n);
    t.equal(await store.ttl('t'), 100, 'an existing key keeps its ttl');
    clock.now += 101;
    t.equal(await store.incrBy('t', 1n), 1n, 'an expired key counts as missing');
    t.equal(await store.ttl('t'), 0, 'and the new key has no ttl');

    // Around the edges of the double fast path and of int64.
    await store.set('d', '999999999999999');
    t.equal(await store.incrBy('d', 1n), 1_000_000_000_000_000n, '15 to 16 digits');
    await store.set('s', '9007199254740991');
    t.equal(await store.incrBy('s', 1n), 9007199254740992n, 'past 2^53 stays exact');
    t.equal(await store.incrBy('s', 1n), 9007199254740993n);
    t.equal(await store.get('s'), '9007199254740993');
    t.equal(await store.incrBy('s', -9007199254740993n), 0n);
    t.equal(await store.incrBy('big', 2n ** 62n), 2n ** 62n, 'a delta past 2^53');
    await store.set('max', '9223372036854775806');
    t.equal(await store.incrBy('max', 1n), INT64_MAX);
    t.equal(await codeOf(() => store.incrBy('max', 1n)), 'INTEGER_OVERFLOW', 'past the int64 maximum');
    t.equal(await store.get('max'), '9223372036854775807', 'the key is unchanged');
    await store.set('min', '-9223372036854775807');
    t.equal(await store.incrBy('min', -1n), INT64_MIN);
    t.equal(await store.get('min'), '-9223372036854775808');
    t.equal(await codeOf(() => store.incrBy('min', -1n)), 'INTEGER_OVERFLOW', 'past the int64 minimum');
    t.equal(await store.incrBy('min', INT64_MAX), -1n, 'the full range of deltas');
    t.equal(await store.incrBy('from-zero', INT64_MIN), INT64_MIN, 'the smallest delta');

    const notIntegers = [
      '',
      ' 1',
      '1 ',
      '+1',
      '01',
      '00',
      '-0',
      '-',
      '--1',
      '1.5',
      '1e3',
      '0x10',
      'abc',
      '١٢',
      '9223372036854775808',
      '-9223372036854775809',
      '99999999999999999999',
      '123456789012345678901',
    ];
    for (const value of notIntegers) {
      await store.set('bad', value);
      t.equal(await codeOf(() => store.incrBy('bad', 1n)), 'NOT_INTEGER', `value ${JSON.stringify(value)}`);
      t.equal(await store.get('bad'), value, 'is left unchanged');
    }
    await store.set('bin', Buffer.from([0x31, 0xff]));
    t.equal(await codeOf(() => store.incrBy('bin', 1n)), 'NOT_INTEGER', 'bytes that are not text');
    await store.set('long', Buffer.alloc(1000, 0x31));
    t.equal(await codeOf(() => store.incrBy('long', 1n)), 'NOT_INTEGER', 'a long run of digits');

    for (const delta of [1, '1', 1.5, undefined, null]) {
      t.equal(
        await codeOf(() => store.incrBy('n', delta as unknown as bigint)),
        'NOT_INTEGER',
        `delta ${String(delta)}`,
      );
    }
    t.equal(await codeOf(() => store.incrBy('n', 2n ** 63n)), 'INTEGER_OVERFLOW', 'delta 2^63');
    t.equal(await codeOf(() => store.incrBy('n', INT64_MIN - 1n)), 'INTEGER_OVERFLOW', 'delta -2^63 - 1');
    t.equal(await codeOf(() => store.incrBy('', 1n)), 'KEY_EMPTY');
    t.equal(await store.get('n'), '0', 'refused calls change nothing');

    const results = await Promise.all(Array.from({ length: 100 }, () => store.incrBy('together', 1n)));
    t.same(
      results.map(Number).sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i + 1),
      '100 concurrent increments each see the one before',
    );
    t.equal(await store.get('together'), '100');
  });

  area('getMany and setMany', async (t, store, clock) => {
    t.same(await store.getMany([]), []);
    await store.setMany([]);
    t.equal(await store.count(), 0);

    await store.setMany([
      ['a', '1'],
      [Buffer.from([0x00, 0xff]), Buffer.from([0xff, 0x00])],
      ['a', '3'],
    ]);
    t.same(
      await store.getMany(['a', Buffer.from([0x00, 0xff]), 'missing', 'a']),
      [Buffer.from('3'), Buffer.from([0xff, 0x00]), undefined, Buffer.from('3')],
      'values in the keys order; a key listed twice gets its last value',
    );
    t.equal(await store.count(), 2);

    await store.set('p', 'old', 1000);
    await store.setMany([
      ['p', 'new'],
      ['t', 'x'],
    ]);
    t.equal(await store.ttl('p'), 0, 'setMany replaces ttls as set does');
    await store.setMany(
      [
        ['t1', 'x'],
        ['t2', 'y'],
      ],
      10,
    );
    t.equal(await store.ttl('t1'), 10, 'one ttl for every entry');
    t.equal(await store.ttl('t2'), 10);
    clock.now += 11;
    t.same(
      await store.getMany(['t1', 't2', 'p']),
      [undefined, undefined, Buffer.from('new')],
      'expired keys read as missing',
    );

    const copy = await store.getMany(['p']);
    copy[0]?.fill(0);
    t.equal(await store.get('p'), 'new', 'getMany returns copies the caller may change');

    const bad: Array<[string, () => unknown, string]> = [
      [
        'an empty key',
        () =>
          store.setMany([
            ['ok', 'v'],
            ['', 'v'],
          ]),
        'KEY_EMPTY',
      ],
      [
        'a bad value',
        () =>
          store.setMany([
            ['ok', 'v'],
            ['k', {} as unknown as string],
          ]),
        'VALUE_INVALID',
      ],
      [
        'a bad key',
        () =>
          store.setMany([
            ['ok', 'v'],
            [5 as unknown as string, 'v'],
          ]),
        'KEY_INVALID',
      ],
      [
        'an entry that is no pair',
        () => store.setMany([['ok', 'v'], 'kv' as unknown as [string, string]]),
        'ARGUMENT_INVALID',
      ],
      [
        'entries that are no array',
        () => store.setMany('nope' as unknown as Array<[string, string]>),
        'ARGUMENT_INVALID',
      ],
      ['a bad ttl', () => store.setMany([['ok', 'v']], -1), 'TTL_INVALID'],
      ['keys that are no array', () => store.getMany('ok' as unknown as string[]), 'ARGUMENT_INVALID'],
      ['an empty key to read', () => store.getMany(['ok', '']), 'KEY_EMPTY'],
    ];
    for (const [what, call, code] of bad) t.equal(await codeOf(call), code, what);
    t.equal(await store.has('ok'), false, 'a refused setMany stores none of its entries');

    const entries = Array.from({ length: 1000 }, (_, i): [string, string] => [`bulk-${i}`, `value-${i}`]);
    await store.setMany(entries);
    const values = await store.getMany(entries.map(([k]) => k));
    t.same(
      values.map(String),
      entries.map(([, v]) => v),
      '1000 entries across every shard',
    );
    t.equal(await store.count(), 1000 + 4);
  });

  area('scan returns every key, in bounded pages', async (t, store, clock) => {
    t.same(await store.scan('0'), { cursor: '0', keys: [] }, 'an empty store is scanned in one call');
    const live = new Set<string>();
    for (let i = 0; i < 250; i++) {
      await store.set(`k${i}`, 'v', i % 5 === 0 ? 10 : 0);
      if (i % 5 !== 0) live.add(`k${i}`);
    }
    clock.now += 11;
    const all = await scanAll(store, { count: 7 });
    t.same(new Set(all.keys), live, 'every live key, no expired one');
    t.equal(all.keys.length, live.size, 'each once when nothing changes');
    t.ok(all.largest <= 7, `no page holds more than count keys (largest ${all.largest})`);
    t.ok(all.calls >= Math.ceil(250 / 7), `the work is spread over calls (${all.calls})`);

    const byDefault = await store.scan('0');
    t.ok(byDefault.keys.length <= 10, 'count defaults to 10');
    t.not(byDefault.cursor, '0');
    t.match(byDefault.cursor, /^[1-9][0-9]*$/, 'a cursor is a decimal unsigned integer');
    t.ok(BigInt(byDefault.cursor) < 2n ** 64n, 'that fits 64 bits');

    const one = await store.scan('0', { count: 1_000_000_000 });
    t.equal(one.cursor, '0', 'a huge count (clamped to 100000) scans this store in one call');
    t.equal(one.keys.length, live.size);
    t.equal((await store.scan('000', { count: 1000 })).keys.length, live.size, "'000' is cursor 0 too");

    const matched = await scanAll(store, { match: 'k1*', count: 20 });
    t.same(new Set(matched.keys), new Set([...live].filter((k) => k.startsWith('k1'))), 'match filters by glob');

    for (const count of [0, -1, 1.5, '10', Number.NaN, null]) {
      t.equal(
        await codeOf(() => store.scan('0', { count: count as number })),
        'ARGUMENT_INVALID',
        `count ${String(count)}`,
      );
    }
    t.equal(await codeOf(() => store.scan('0', { match: 42 as unknown as string })), 'ARGUMENT_INVALID', 'match 42');
    t.equal(await codeOf(() => store.scan('0', 'k*' as unknown as ScanOptions)), 'ARGUMENT_INVALID', 'options');
    for (const cursor of ['', 'abc', '-1', '1.5', ' 1', '123456789012345678901', 42, undefined]) {
      t.equal(await codeOf(() => store.scan(cursor as string)), 'CURSOR_INVALID', `cursor ${JSON.stringify(cursor)}`);
    }
    try {
      await store.scan('12345');
      t.fail('an unknown cursor is refused');
    } catch (err) {
      t.equal((err as StorageError).code, 'CURSOR_INVALID', 'an unknown cursor');
      t.match((err as Error).message, /start the scan again from cursor 0/, 'the message says what to do');
    }

    const first = await store.scan('0', { count: 5 });
    const second = await store.scan(first.cursor, { count: 5 });
    t.not(second.cursor, '0');
    t.equal(
      await codeOf(() => store.scan(first.cursor, { count: 5 })),
      'CURSOR_INVALID',
      'a cursor is good for one call',
    );
    t.equal(await codeOf(() => store.scan(second.cursor, { count: 0 })), 'ARGUMENT_INVALID');
    t.equal(
      await codeOf(() => store.scan(second.cursor, { count: 5 })),
      undefined,
      'a call refused for its options keeps the cursor',
    );
  });

  area('scan keeps its promise while keys change between calls', async (t, store, clock) => {
    for (let i = 0; i < 100; i++) await store.set(`stay-${i}`, 'v');
    for (let i = 0; i < 100; i++) await store.set(`gone-${i}`, 'v');
    for (let i = 0; i < 50; i++) await store.set(`brief-${i}`, 'v', 5);
    const ever = new Set<string>();
    for (let i = 0; i < 100; i++) ever.add(`stay-${i}`).add(`gone-${i}`);
    for (let i = 0; i < 50; i++) ever.add(`brief-${i}`);
    let added = 0;
    const seen = await scanAll(store, { count: 9 }, async (call) => {
      // Between calls: delete some keys, add others, overwrite the ones that stay, move time.
      for (let i = call * 4; i < call * 4 + 4 && i < 100; i++) await store.delete(`gone-${i}`);
      for (let i = 0; i < 5; i++) {
        await store.set(`new-${added}`, 'v');
        ever.add(`new-${added++}`);
      }
      await store.set(`stay-${call % 100}`, `v${call}`);
      if (call === 3) clock.now += 6;
    });
    const returned = new Set(seen.keys);
    t.same(
      [...Array.from({ length: 100 }, (_, i) => `stay-${i}`)].filter((k) => !returned.has(k)),
      [],
      'every key live for the whole scan was returned',
    );
    t.same(
      seen.keys.filter((k) => !ever.has(k)),
      [],
      'nothing was returned that never existed',
    );

    // flushAll between two calls: the scan goes on and returns only keys that exist.
    const page = await store.scan('0', { count: 20 });
    t.not(page.cursor, '0');
    await store.flushAll();
    await store.set('after-flush', 'v');
    const rest = await scanAll(store, { count: 20 }, undefined, page.cursor);
    t.ok(
      rest.keys.every((k) => k === 'after-flush'),
      `after a flush only new keys come (${rest.keys.length} returned)`,
    );
    t.same((await scanAll(store)).keys, ['after-flush'], 'and a new scan sees the flushed store');
  });

  area('scan drops the least recently used of too many open scans', async (t, store) => {
    await store.set('a', '1');
    await store.set('b', '2');
    await store.set('c', '3');
    const cursors: string[] = [];
    for (let i = 0; i < 1025; i++) cursors.push((await store.scan('0', { count: 1 })).cursor);
    t.equal(new Set(cursors).size, 1025, 'every scan has its own cursor');
    t.notOk(cursors.includes('0'), 'and none is finished');
    t.equal(await codeOf(() => store.scan(cursors[0] as string)), 'CURSOR_INVALID', 'the oldest of 1025 was dropped');
    for (const cursor of [cursors[1], cursors[1024]] as string[]) {
      const rest = await scanAll(store, undefined, undefined, cursor);
      t.ok(rest.keys.length >= 2, 'the others finish');
    }
  });

  area('keys returns every live key matching a glob', async (t, store, clock) => {
    await store.set('user:1', 'a');
    await store.set('user:2', 'b');
    await store.set('user:3', 'c', 5);
    await store.set('session:1', 'd');
    await store.set(Buffer.from([0x75, 0xff]), 'e');
    t.same(sorted(await store.keys('user:*')), ['user:1', 'user:2', 'user:3']);
    t.same(sorted(await store.keys('user:[13]')), ['user:1', 'user:3']);
    t.same(sorted(await store.keys('*:1')), ['session:1', 'user:1']);
    t.same(await store.keys('nothing*'), []);
    t.same(
      (await store.keys(Buffer.from([0x75, 0x3f]))).map((k) => k.toString('hex')),
      ['75ff'],
      'binary keys and patterns',
    );
    t.equal((await store.keys('*')).length, 5);
    clock.now += 6;
    t.same(sorted(await store.keys('user:*')), ['user:1', 'user:2'], 'expired keys are left out');
    t.equal(await codeOf(() => store.keys(42 as unknown as string)), 'ARGUMENT_INVALID');
  });

  area('onExpired hears each key removed because its ttl ran out, once', async (t, store, clock) => {
    t.equal(store.onExpired, undefined, 'no hook by default');
    const heard: string[] = [];
    store.onExpired = (key) => {
      heard.push(key.toString());
    };
    for (const key of ['read', 'swept', 'replaced', 'deleted', 'counted-up']) await store.set(key, '1', 5);
    await store.set('forever', 'v');
    await store.set('later', 'v', 1000);
    clock.now += 6;
    t.equal(await store.get('read'), undefined);
    await store.set('replaced', 'new');
    t.equal(await store.delete('deleted'), false);
    t.equal(await store.incrBy('counted-up', 1n), 1n);
    t.equal(await store.count(), 4, 'the count sweeps the rest');
    t.same(heard.sort(), ['counted-up', 'deleted', 'read', 'replaced', 'swept'], 'every expired key, no live one');
    t.equal(await store.get('read'), undefined);
    t.equal(await store.count(), 4);
    t.equal(heard.length, 5, 'each once');

    store.onExpired = () => {
      throw new Error('a broken hook');
    };
    await store.set('x', 'v', 1);
    await store.set('y', 'v', 1);
    clock.now += 2;
    t.equal(await store.get('x'), undefined, 'a throwing hook does not break a read');
    t.equal(await store.count(), 4, 'nor a sweep');
    t.equal(await store.get('forever'), 'v');

    store.onExpired = undefined;
    await store.set('z', 'v', 1);
    clock.now += 2;
    t.equal(await store.get('z'), undefined);
    t.equal(heard.length, 5, 'an unset hook hears nothing');
    t.throws(
      () => {
        store.onExpired = 'log' as unknown as undefined;
      },
      { code: 'OPTION_INVALID' },
      'a hook must be a function',
    );
    t.equal(store.onExpired, undefined);
  });

  area('the new operations take effect in call order, awaited or not', async (t, store) => {
    const results = await Promise.all([
      store.setIf('k', 'a', 0, 'absent'),
      store.setIf('k', 'b', 0, 'absent'),
      store.incrBy('n', 5n),
      store.getMany(['k', 'n']),
      store.expire('k', 100),
      store.ttl('k'),
      store.setMany([
        ['k', 'c'],
        ['m', 'd'],
      ]),
      store.getMany(['k', 'm']),
      store.ttl('k'),
      store.incrBy('n', -2n),
      store.setIf('gone', 'x', 0, 'present'),
      store.get('n'),
      Promise.resolve(store.keys('*')).then(sorted),
      Promise.resolve(store.scan('0', { count: 100 })).then((page) => sorted(page.keys)),
      store.count(),
    ]);
    t.same(results, [
      true,
      false,
      5n,
      [Buffer.from('a'), Buffer.from('5')],
      true,
      100,
      undefined,
      [Buffer.from('c'), Buffer.from('d')],
      0,
      3n,
      false,
      '3',
      ['k', 'm', 'n'],
      ['k', 'm', 'n'],
      3,
    ]);
  });
}
