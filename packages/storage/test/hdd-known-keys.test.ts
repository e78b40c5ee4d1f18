// The structures that let an hdd write skip the read of its key's previous record: the key
// filter (a key it never saw is certainly not stored) and the key states (what the shard wrote
// lately, exactly). Engine-level tests are in hdd-write-path.test.ts.
import t from 'tap';
import { ABSENT, KeyFilter, KeyStates, UNKNOWN } from '../src/hdd-known-keys.js';

const key = (i: number, prefix = 'key') => Buffer.from(`\x01${prefix}:${i}`);

t.test('KeyFilter: says "maybe" for everything until ready, then only for what was added', async (t) => {
  const filter = new KeyFilter(0);
  for (let i = 0; i < 1000; i++) filter.add(key(i));
  t.ok(filter.mayHold(key(5, 'never')), 'not ready: a key never added may be held');
  filter.ready = true;
  let missed = 0;
  for (let i = 0; i < 1000; i++) if (!filter.mayHold(key(i))) missed++;
  t.equal(missed, 0, 'every added key may be held');
  let falsePositives = 0;
  for (let i = 0; i < 20_000; i++) if (filter.mayHold(key(i, 'other'))) falsePositives++;
  t.ok(falsePositives < 200, `under 1% of 20000 keys never added look held (${falsePositives})`);
});

t.test('KeyFilter: grows past its size without losing a key or its precision', async (t) => {
  const filter = new KeyFilter(0);
  filter.ready = true;
  const small = filter.bytes;
  const n = 300_000;
  for (let i = 0; i < n; i++) filter.add(key(i));
  t.ok(filter.bytes > small, `it grew (${small} → ${filter.bytes} bytes)`);
  t.ok(filter.bytes < n * 4, `to under 32 bits per key (${filter.bytes} bytes)`);
  let missed = 0;
  for (let i = 0; i < n; i++) if (!filter.mayHold(key(i))) missed++;
  t.equal(missed, 0, 'every added key may be held');
  let falsePositives = 0;
  for (let i = 0; i < 20_000; i++) if (filter.mayHold(key(i, 'other'))) falsePositives++;
  t.ok(falsePositives < 600, `under 3% of keys never added look held (${falsePositives})`);
});

t.test('KeyFilter: keys that differ in one byte or in length are told apart', async (t) => {
  const filter = new KeyFilter(0);
  filter.ready = true;
  filter.add(Buffer.from('\x01abc'));
  t.ok(filter.mayHold(Buffer.from('\x01abc')));
  // A Bloom filter may say "maybe" for another key; over a few shapes, most must be "no".
  const others = ['\x01abd', '\x01ab', '\x01abcd', '\x01Abc', '\x02abc', 'abc'];
  const maybes = others.filter((other) => filter.mayHold(Buffer.from(other)));
  t.ok(maybes.length <= 1, `near misses are not held (${JSON.stringify(maybes)})`);
});

t.test('KeyFilter: saved and parsed, it answers as before', async (t) => {
  const filter = new KeyFilter(0);
  filter.ready = true;
  // Past the first layer, so that two layers are saved.
  for (let i = 0; i < 100_000; i++) filter.add(key(i));
  const bytes = Buffer.concat(filter.serialize());
  const parsed = KeyFilter.parse(bytes) as KeyFilter;
  t.ok(parsed?.ready, 'parsed, and ready');
  t.equal(parsed.bytes, filter.bytes);
  let differ = 0;
  for (let i = 0; i < 100_000; i++) if (!parsed.mayHold(key(i))) differ++;
  for (let i = 0; i < 20_000; i++) if (parsed.mayHold(key(i, 'other')) !== filter.mayHold(key(i, 'other'))) differ++;
  t.equal(differ, 0, 'the same answers, for keys added and not (the seed is kept)');
  parsed.add(key(1, 'later'));
  t.ok(parsed.mayHold(key(1, 'later')), 'and it takes more keys');
  t.equal(KeyFilter.parse(bytes.subarray(0, bytes.length - 4)), undefined, 'a truncated filter is refused');
  t.equal(KeyFilter.parse(Buffer.from('not a filter')), undefined, 'garbage is refused');
});

t.test('KeyStates: one entry per key, found by its bytes, UNKNOWN until set', async (t) => {
  const states = new KeyStates(1000, 1 << 20);
  const a = states.entry(Buffer.from('\x01a'));
  const ab = states.entry(Buffer.from('\x01ab'));
  const b = states.entry(Buffer.from('\x01b'));
  t.not(a, ab, 'a key and a longer key with it as prefix are two entries');
  t.not(a, b);
  t.equal(states.state(a), UNKNOWN);
  states.setState(a, 0);
  states.setState(ab, 1_700_000_000_123);
  states.setState(b, ABSENT);
  t.equal(states.entry(Buffer.from('\x01a')), a, 'another buffer with the same bytes finds the entry');
  t.equal(states.state(states.entry(Buffer.from('\x01a'))), 0);
  t.equal(states.state(states.entry(Buffer.from('\x01ab'))), 1_700_000_000_123, 'an expiry beyond int32 is kept');
  t.equal(states.state(states.entry(Buffer.from('\x01b'))), ABSENT);
  t.equal(states.size, 3);
  states.setBatch(a, 7, 3);
  t.same([states.batch(a), states.slot(a)], [7, 3]);
  t.equal(states.batch(b), -1, 'no batch has used a new entry');
});

t.test('KeyStates: entry numbers stay valid through as many new keys as were reserved', async (t) => {
  const states = new KeyStates(1 << 20, 1 << 26);
  const n = 20_000;
  states.reserve(n);
  const entries = Array.from({ length: n }, (_, i) => states.entry(key(i)));
  // Set through the numbers taken before the later keys were added: had the table grown (and
  // its entries moved) on the way, these would land on the wrong keys.
  for (let i = 0; i < n; i++) states.setState(entries[i] as number, i);
  let wrong = 0;
  for (let i = 0; i < n; i++) if (states.state(states.entry(key(i))) !== i) wrong++;
  t.equal(wrong, 0, 'each key reads back its own state');
  t.equal(states.size, n);
});

t.test('KeyStates: grows one key at a time without reserving, and keeps every state', async (t) => {
  const states = new KeyStates(1 << 20, 1 << 26);
  const n = 50_000;
  for (let i = 0; i < n; i++) states.setState(states.entry(key(i)), i % 3 === 0 ? ABSENT : i);
  let wrong = 0;
  for (let i = 0; i < n; i++) if (states.state(states.entry(key(i))) !== (i % 3 === 0 ? ABSENT : i)) wrong++;
  t.equal(wrong, 0);
});

t.test('KeyStates: bounded by two generations; a key in use stays known', async (t) => {
  const states = new KeyStates(100, 1 << 20);
  for (let i = 0; i < 50; i++) states.setState(states.entry(key(i)), 0);
  states.trim();
  t.equal(states.size, 50, 'a full young generation became the old one');
  // Used again: copied into the young generation, with its state.
  for (let i = 0; i < 10; i++) t.equal(states.state(states.entry(key(i))), 0, `key ${i} is still known`);
  for (let i = 100; i < 140; i++) states.setState(states.entry(key(i)), ABSENT);
  states.trim();
  for (let i = 0; i < 10; i++) t.equal(states.state(states.entry(key(i))), 0, `key ${i}, used lately, survives`);
  t.equal(states.state(states.entry(key(30))), UNKNOWN, 'a key not used for two generations is forgotten');
  t.equal(states.state(states.entry(key(120))), ABSENT, 'the last generation is kept');
  t.ok(states.size <= 2 * 50 + 2, `never much more than the bound (${states.size})`);
});

t.test('KeyStates: the bound on key bytes turns generations too', async (t) => {
  // 2000 bytes of keys per generation; each key is 205 bytes.
  const states = new KeyStates(1_000_000, 4000);
  const long = (i: number) => Buffer.from(`\x01${'x'.repeat(200)}:${i}`);
  for (let i = 0; i < 5; i++) states.setState(states.entry(long(i)), 0);
  states.trim();
  t.equal(states.size, 5, 'under the bytes of a generation: one generation');
  for (let i = 5; i < 10; i++) states.setState(states.entry(long(i)), 0);
  states.trim();
  for (let i = 10; i < 20; i++) states.setState(states.entry(long(i)), 0);
  states.trim();
  t.equal(states.state(states.entry(long(0))), UNKNOWN, 'the first keys are gone');
  t.equal(states.state(states.entry(long(19))), 0, 'the last ones are known');
});

t.test('KeyStates: a generation that one huge batch filled far past the bound is not kept', async (t) => {
  const states = new KeyStates(100, 1 << 20);
  states.reserve(1000);
  for (let i = 0; i < 1000; i++) states.setState(states.entry(key(i)), 0);
  states.trim();
  t.equal(states.size, 0, 'dropped, not held as the old generation');
  t.ok(states.bytes < 100_000, `the memory went with it (${states.bytes} bytes held)`);
});

t.test('KeyStates: clear forgets every key', async (t) => {
  const states = new KeyStates(1000, 1 << 20);
  for (let i = 0; i < 10; i++) states.setState(states.entry(key(i)), 0);
  states.trim();
  for (let i = 10; i < 20; i++) states.setState(states.entry(key(i)), 0);
  states.clear();
  t.equal(states.state(states.entry(key(1))), UNKNOWN);
  t.equal(states.state(states.entry(key(11))), UNKNOWN);
});
