// The memory engine's compact store: the zero-copy read and write calls a server uses (lookup,
// valueSlab/valueStart/valueLength, setRange), entries at the edges of the byte layout, reuse of
// slab space, and the ids that the expiry heap and scans hold.
import t from 'tap';
import { hashBytes } from '../src/hash.js';
import { MemoryEngine } from '../src/index.js';
import { chunkSize, MAX_SMALL_CHUNK, MemorySlabs } from '../src/memory-slabs.js';
import { MemoryTable, NO_ENTRY } from '../src/memory-table.js';
import { codeOf, fakeClock, setRangeRefusals } from './common/conformance.js';

/** The value a handle names, as text (latin1: one character a byte). */
function valueAt(store: MemoryEngine, handle: number): string {
  const start = store.valueStart(handle);
  return store.valueSlab(handle).toString('latin1', start, start + store.valueLength(handle));
}

/** `store.lookup` of a string key placed in the middle of a larger buffer, as in a request. */
function lookupIn(store: MemoryEngine, key: string): number {
  const request = Buffer.from(`*2\r\n$3\r\nGET\r\n${key}\r\n`, 'latin1');
  const start = request.indexOf(key, 13, 'latin1');
  return store.lookup(request, start, start + Buffer.byteLength(key, 'latin1'));
}

t.test('lookup finds a key by its bytes in place; -1 when missing', async (t) => {
  const store = new MemoryEngine();
  t.teardown(() => store.close());
  store.set('user:1', 'ada');
  store.set(Buffer.from([0xff, 0x00]), Buffer.from([0x01, 0x02, 0x03]));
  store.set('é', 'accent');
  const handle = lookupIn(store, 'user:1');
  t.ok(Number.isSafeInteger(handle) && handle >= 0, `a handle is a non-negative integer (${handle})`);
  t.equal(valueAt(store, handle), 'ada');
  t.equal(store.valueLength(handle), 3);
  t.equal(lookupIn(store, 'user:2'), -1, 'a missing key');
  t.equal(lookupIn(store, 'user:'), -1, 'a prefix is another key');
  const binary = store.lookup(Buffer.from([0x00, 0xff, 0x00, 0x00]), 1, 3);
  t.same([...store.valueSlab(binary).subarray(store.valueStart(binary), store.valueStart(binary) + 3)], [1, 2, 3]);
  t.equal(valueAt(store, store.lookup(Buffer.from('é'), 0, 2)), 'accent', "the string 'é' is the key c3 a9");
  store.set('a\ud800', 'lone');
  t.equal(
    valueAt(store, store.lookup(Buffer.from([0x61, 0xef, 0xbf, 0xbd]), 0, 4)),
    'lone',
    'a lone surrogate is U+FFFD',
  );

  t.equal(await codeOf(() => store.lookup(Buffer.from('abc'), 1, 1)), 'KEY_EMPTY');
  t.equal(await codeOf(() => store.lookup('abc' as unknown as Uint8Array, 0, 3)), 'KEY_INVALID');
  t.equal(await codeOf(() => store.lookup(Buffer.from('abc'), 0, 4)), 'ARGUMENT_INVALID', 'past the end');
  t.equal(await codeOf(() => store.lookup(Buffer.from('abc'), -1, 2)), 'ARGUMENT_INVALID', 'before the start');
  t.equal(await codeOf(() => store.lookup(Buffer.from('abc'), 0.5, 2)), 'ARGUMENT_INVALID', 'not an integer');
  await store.close();
  t.equal(await codeOf(() => store.lookup(Buffer.from('abc'), 0, 3)), 'STORAGE_CLOSED');
});

t.test('a handle names the value as written last: overwrite, delete and expiry', async (t) => {
  const clock = fakeClock();
  const store = new MemoryEngine({ clock, shards: 2 });
  t.teardown(() => store.close());
  const heard: string[] = [];
  store.onExpired = (key) => {
    heard.push(key.toString());
  };
  store.set('k', 'first');
  const before = lookupIn(store, 'k');
  store.set('k', 'other');
  t.equal(valueAt(store, lookupIn(store, 'k')), 'other', 'an overwrite of the same size, in place');
  t.equal(lookupIn(store, 'k'), before, 'the entry keeps its handle');
  store.set('k', 'a much longer value than the first one, in another size class');
  t.equal(valueAt(store, lookupIn(store, 'k')), 'a much longer value than the first one, in another size class');
  const large = 'L'.repeat(MAX_SMALL_CHUNK + 10);
  store.set('k', large);
  const handle = lookupIn(store, 'k');
  t.equal(store.valueLength(handle), large.length, 'a large value');
  t.equal(valueAt(store, handle), large);
  store.set('k', 's');
  t.equal(valueAt(store, lookupIn(store, 'k')), 's', 'a large value replaced by a small one');
  store.set('k', '');
  t.equal(store.valueLength(lookupIn(store, 'k')), 0, 'an empty value');
  t.equal(store.delete('k'), true);
  t.equal(lookupIn(store, 'k'), -1, 'deleted');

  store.set('brief', 'v', 10);
  clock.now += 10;
  t.equal(valueAt(store, lookupIn(store, 'brief')), 'v', 'live at set + ttl');
  clock.now += 1;
  t.equal(lookupIn(store, 'brief'), -1, 'expired');
  t.same(heard, ['brief'], 'the hook was told, as a read tells it');
  t.equal(store.heldKeys(), 0, 'and the key was removed');
});

t.test('setRange stores ranges of its arrays, checked as set is', async (t) => {
  const clock = fakeClock();
  const store = new MemoryEngine({ clock });
  t.teardown(() => store.close());
  const request = Buffer.from('SET counter 12345 more', 'latin1');
  store.setRange(request, 4, 11, request, 12, 17, 0);
  t.equal(store.get('counter'), '12345');
  t.equal(store.incrBy('counter', 1n), 12346n, 'the value is an integer as any other');
  store.setRange(request, 4, 11, request, 12, 12, 500);
  t.equal(store.get('counter'), '', 'an empty range is an empty value');
  t.equal(store.ttl('counter'), 500, 'with the ttl given');
  store.setRange(new Uint8Array([1, 2, 3]), 0, 3, new Uint8Array([4, 5]), 0, 2, 0);
  t.same(store.getBuffer(Buffer.from([1, 2, 3])), Buffer.from([4, 5]), 'any Uint8Array');

  const bad = setRangeRefusals((...args) => store.setRange(...args), request);
  for (const [what, call, code] of bad) t.equal(await codeOf(call), code, what);
  t.equal(store.count(), 2, 'refused calls stored nothing');
});

t.test('setRange may take its value from the store itself', async (t) => {
  const store = new MemoryEngine({ shards: 1 });
  t.teardown(() => store.close());
  store.set('a', 'hello');
  store.set('b', 'world');
  const key = Buffer.from('a');
  let from = store.lookup(Buffer.from('b'), 0, 1);
  store.setRange(key, 0, 1, store.valueSlab(from), store.valueStart(from), store.valueStart(from) + 5, 0);
  t.equal(store.get('a'), 'world', "another key's value, in the same page");
  from = store.lookup(key, 0, 1);
  store.setRange(key, 0, 1, store.valueSlab(from), store.valueStart(from) + 1, store.valueStart(from) + 3, 0);
  t.equal(store.get('a'), 'or', 'part of its own value, overwritten in place');
  // 130 bytes need a two-byte length; 100 a one-byte one: the header shrinks under the copy.
  const long = Array.from({ length: 130 }, (_, i) => String.fromCharCode(65 + (i % 26))).join('');
  store.set('a', long);
  from = store.lookup(key, 0, 1);
  store.setRange(key, 0, 1, store.valueSlab(from), store.valueStart(from) + 30, store.valueStart(from) + 130, 0);
  t.equal(store.get('a'), long.slice(30), 'a part of its own value whose length has a shorter header');
  t.equal(store.get('b'), 'world', 'the source is left as it was');
  // Another view of the same memory, starting on the key: copied forward in place, the key byte
  // would run over the whole value ('kkkkkkk').
  store.set('k', 'abcdefgh');
  from = store.lookup(Buffer.from('k'), 0, 1);
  const view = store.valueSlab(from).subarray(0);
  const at = store.valueStart(from);
  store.setRange(Buffer.from('k'), 0, 1, view, at - 1, at + 6, 0);
  t.equal(store.get('k'), 'kabcdef', "a view of the store's memory that is not valueSlab's Buffer, over the key");
});

t.test('keys and values of every length class round-trip', async (t) => {
  const clock = fakeClock();
  const store = new MemoryEngine({ clock, shards: 3 });
  t.teardown(() => store.close());
  // Around the one- and two-byte length headers, the small/large chunk limit and a snapshot block.
  const lengths = [0, 1, 127, 128, 129, 4090, MAX_SMALL_CHUNK, 16_383, 16_384, 70_000, (1 << 20) + 5];
  const made = new Map<string, Buffer>();
  for (const keyLength of [1, 127, 128, 16_384]) {
    for (const valueLength of lengths) {
      const key = Buffer.alloc(keyLength, `k${valueLength}`);
      const value = Buffer.alloc(valueLength, `v${keyLength}`);
      store.set(key, value, valueLength % 2 === 0 ? 0 : 60_000);
      made.set(key.toString('hex'), value);
    }
  }
  t.equal(store.count(), made.size);
  let wrong = 0;
  for (const [hex, value] of made) {
    const key = Buffer.from(hex, 'hex');
    const handle = store.lookup(key, 0, key.length);
    const start = store.valueStart(handle);
    const held = store.valueSlab(handle).subarray(start, start + store.valueLength(handle));
    if (!held.equals(value) || !store.getBuffer(key)?.equals(value)) wrong++;
  }
  t.equal(wrong, 0, 'every value read back exactly, by lookup and by getBuffer');
  const seen = new Map<string, Buffer>();
  for await (const entry of store.entries()) seen.set(entry.key.toString('hex'), entry.value);
  t.same(seen, made, 'entries() yields them all');
  const snapshot = store.snapshot();
  const read = new Map<string, Buffer>();
  for (let page = snapshot.read(3, 1 << 20); page.length > 0; page = snapshot.read(3, 1 << 20)) {
    for (const entry of page) read.set(entry.key.toString('hex'), entry.value);
  }
  t.same(read, made, 'a snapshot holds them all, over several blocks');
});

t.test('a snapshot is a copy: writes in place after it change nothing in it', async (t) => {
  const store = new MemoryEngine({ shards: 1 });
  t.teardown(() => store.close());
  store.set('k', 'aaaa');
  store.set('n', '10');
  const snapshot = store.snapshot();
  store.set('k', 'bbbb');
  store.incrBy('n', 5n);
  store.delete('k');
  store.set('k2', 'cccc');
  const entries = snapshot.read(10, 1000).map((e) => `${e.key}=${e.value}`);
  t.same(entries.sort(), ['k=aaaa', 'n=10']);
  t.equal(snapshot.size, 2);
  t.same(snapshot.read(10, 1000), []);
  t.equal(snapshot.done, true);
});

t.test('the expiry heap ignores pairs of keys removed, even when their slot is reused', async (t) => {
  const clock = fakeClock();
  const store = new MemoryEngine({ clock, shards: 1, sweepIntervalMs: 1_000_000 });
  t.teardown(() => store.close());
  const heard: string[] = [];
  store.onExpired = (key) => {
    heard.push(key.toString());
  };
  store.set('a', 'v', 10);
  const slot = store.lookup(Buffer.from('a'), 0, 1);
  store.delete('a');
  store.set('b', 'v', 20);
  t.equal(store.lookup(Buffer.from('b'), 0, 1), slot, "b took a's slot");
  clock.now += 11;
  t.equal(store.count(), 1, "a's expiry, popped from the heap, does not remove b");
  t.equal(store.get('b'), 'v');
  store.set('b', 'w', 5);
  clock.now += 6;
  t.equal(store.count(), 0, "b expires at its new time, not the old one's");
  t.same(heard, ['b'], 'once');
});

t.test('a scan returns each key present throughout exactly once while the table grows', async (t) => {
  const store = new MemoryEngine({ shards: 2 });
  t.teardown(() => store.close());
  for (let i = 0; i < 100; i++) store.set(`old-${i}`, 'v');
  const returned: string[] = [];
  let cursor = '0';
  let added = 0;
  let calls = 0;
  do {
    const page = store.scan(cursor, { count: 7 });
    for (const key of page.keys) returned.push(key.toString());
    cursor = page.cursor;
    // Between the first calls: enough new keys to double the tables several times, some deleted again.
    if (++calls <= 10) {
      for (let i = 0; i < 150; i++) store.set(`new-${added++}`, 'v');
      for (let i = added - 150; i < added; i += 3) store.delete(`new-${i}`);
    }
  } while (cursor !== '0' && calls < 10_000);
  t.equal(cursor, '0', `the scan ended (${calls} calls)`);
  const old = returned.filter((k) => k.startsWith('old-'));
  t.equal(old.length, 100, 'every old key, none twice');
  t.equal(new Set(old).size, 100);
  t.equal(new Set(returned).size, returned.length, 'and no new key twice either');
});

t.test('an onExpired hook may call the store back', async (t) => {
  const clock = fakeClock();
  const store = new MemoryEngine({ clock, shards: 1 });
  t.teardown(() => store.close());
  store.onExpired = (key) => {
    // String keys, encoded while the interrupted call still holds its own key's bytes.
    store.set(`echo:${key}`, `${store.get('other') ?? 'none'}`);
  };
  store.set('other', 'o');
  store.set('some-key', 'old', 5);
  clock.now += 6;
  store.set('some-key', 'new');
  t.equal(store.get('some-key'), 'new', 'the interrupted set stored its own key');
  t.equal(store.get('echo:some-key'), 'o', "and the hook's set its own");
  t.equal(store.count(), 3);
  store.set('n', '41', 5);
  clock.now += 6;
  t.equal(store.incrBy('n', 1n), 1n, 'an expired counter starts again at 0');
  t.equal(store.get('echo:n'), 'o');
});

t.test('size classes', async (t) => {
  t.equal(chunkSize(1), 4);
  t.equal(chunkSize(34), 36, 'a 16-byte key and value with their two length bytes');
  t.equal(chunkSize(128), 128);
  t.equal(chunkSize(129), 160);
  t.equal(chunkSize(MAX_SMALL_CHUNK), MAX_SMALL_CHUNK);
  const classes = new Set<number>();
  const wasteful: number[] = [];
  for (let size = 1; size <= MAX_SMALL_CHUNK; size++) {
    const chunk = chunkSize(size);
    classes.add(chunk);
    // Up to 128 bytes at most 3 bytes are wasted, past it at most a quarter of the size.
    if (chunk < size || chunk % 4 !== 0 || chunk - size > Math.max(3, size / 4)) wasteful.push(size);
  }
  t.same(wasteful, [], 'every chunk holds its size, with little to spare');
  t.equal(classes.size, 32 + 4 * 5, '32 classes to 128 bytes, then 4 per doubling to 4096');
});

t.test('slab space freed by deletes and overwrites is reused', async (t) => {
  const slabs = new MemorySlabs();
  const a = slabs.alloc(40);
  slabs.free(a, 40);
  t.equal(slabs.alloc(38), a, 'a freed chunk goes to the next chunk of its class');
  const large = slabs.alloc(MAX_SMALL_CHUNK + 1);
  t.ok(large < 0, 'a large chunk has an address of its own kind');
  t.equal(slabs.buffer(large).length, MAX_SMALL_CHUNK + 1);
  const held = slabs.bytes;
  slabs.free(large, MAX_SMALL_CHUNK + 1);
  t.equal(slabs.bytes, held - MAX_SMALL_CHUNK - 1, 'a freed large chunk is let go');

  // 3000 bytes take a 3072-byte chunk: 21 fill a 64 KiB page, and the 1024 bytes left over
  // become a free chunk of their class once the 22nd opens a new page.
  const pages = new MemorySlabs();
  const first = pages.alloc(3000);
  for (let i = 1; i < 22; i++) pages.alloc(3000);
  const tail = pages.alloc(1000);
  t.equal(pages.buffer(tail), pages.buffer(first), "a page's tail is used");
  t.equal(pages.offset(tail), 21 * 3072);
  t.equal(pages.bytes, 2 * 64 * 1024);

  const table = new MemoryTable();
  const fill = (round: number) => {
    for (let i = 0; i < 20_000; i++) {
      const key = Buffer.from(`key-${i}`);
      const value = Buffer.alloc(10 + ((i + round) % 50), round);
      const hash = hashBytes(key, 0, key.length);
      const id = table.find(hash, key, 0, key.length);
      if (id === NO_ENTRY) table.insert(hash, key, 0, key.length, value, 0, value.length);
      else table.update(id, key, 0, key.length, value, 0, value.length);
    }
  };
  fill(0);
  const after = table.bytes;
  for (let round = 1; round < 6; round++) fill(round);
  t.equal(table.bytes, after, 'overwrites of other sizes took no new memory');
  for (let i = 0; i < 20_000; i++) {
    const key = Buffer.from(`key-${i}`);
    table.remove(table.find(hashBytes(key, 0, key.length), key, 0, key.length));
  }
  t.equal(table.size, 0);
  fill(7);
  // At most: the buckets the table had before its last doubling were let go meanwhile, once the
  // inserts had moved every chain out of them.
  t.ok(table.bytes <= after, `deleted keys made room for as many new ones (${table.bytes} <= ${after} bytes)`);
  const key = Buffer.from('key-19999');
  const id = table.find(hashBytes(key, 0, key.length), key, 0, key.length);
  t.same(table.valueCopy(id), Buffer.alloc(10 + ((19_999 + 7) % 50), 7));
});

t.test('an entry keeps its id as the table grows', async (t) => {
  const table = new MemoryTable();
  const ids: number[] = [];
  const keyOf = (i: number) => Buffer.from(`entry:${i}`);
  for (let i = 0; i < 50_000; i++) {
    const key = keyOf(i);
    ids.push(table.insert(hashBytes(key, 0, key.length), key, 0, key.length, key, 0, key.length));
  }
  let moved = 0;
  for (let i = 0; i < 50_000; i++) {
    const key = keyOf(i);
    if (table.find(hashBytes(key, 0, key.length), key, 0, key.length) !== ids[i]) moved++;
  }
  t.equal(moved, 0, 'found under the id insert gave, after the table doubled twelve times');
  t.equal(table.top, 50_000);
  t.equal(table.find(hashBytes(Buffer.from('x'), 0, 1), Buffer.from('x'), 0, 1), NO_ENTRY);
});

t.test('every key stays found as chunks move, entries leave their chains and the table grows', async (t) => {
  // A bucket links to its first chunk and each chunk to the next: moving a chunk (a value of
  // another size class) or removing one must relink whatever pointed at it, first in its chain
  // or not. 3,000 keys over at most 4,096 buckets make chains of two and three.
  const table = new MemoryTable();
  const keyOf = (i: number) => Buffer.from(`chain:${i}`);
  const values = new Map<number, Buffer>();
  const write = (i: number, value: Buffer) => {
    const key = keyOf(i);
    const hash = hashBytes(key, 0, key.length);
    const id = table.find(hash, key, 0, key.length);
    if (id === NO_ENTRY) table.insert(hash, key, 0, key.length, value, 0, value.length);
    else table.update(id, key, 0, key.length, value, 0, value.length);
    values.set(i, value);
  };
  const check = (what: string, upTo: number) => {
    let wrong = 0;
    for (let i = 0; i < upTo; i++) {
      const key = keyOf(i);
      const id = table.find(hashBytes(key, 0, key.length), key, 0, key.length);
      const want = values.get(i);
      if (want === undefined ? id !== NO_ENTRY : id === NO_ENTRY || !table.valueCopy(id).equals(want)) wrong++;
    }
    t.equal(wrong, 0, `${what}: every key found with its value, and no removed one`);
    t.equal(table.size, values.size, `${what}: size`);
  };
  for (let i = 0; i < 3000; i++) write(i, Buffer.alloc(4, i));
  check('inserted', 3000);
  for (let i = 0; i < 3000; i += 3) write(i, Buffer.alloc(100, i));
  check('every third value moved to a larger chunk', 3000);
  for (let i = 1; i < 3000; i += 3) write(i, Buffer.alloc(MAX_SMALL_CHUNK + 1, i));
  check('every third value moved to a chunk of its own', 3000);
  // Removed in an order unrelated to the order of insert, so that chains lose heads, middles, tails.
  for (let n = 0; n < 1500; n++) {
    const i = (n * 7919) % 3000;
    const key = keyOf(i);
    table.remove(table.find(hashBytes(key, 0, key.length), key, 0, key.length));
    values.delete(i);
  }
  check('half removed', 3000);
  for (let i = 3000; i < 9000; i++) write(i, Buffer.alloc(8, i));
  check('freed ids reused, then the table grew twice', 9000);
  t.equal(table.top, 7500, 'the 1,500 freed ids were taken before new ones');
});
