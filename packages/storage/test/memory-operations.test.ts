// The memory engine's Redis-style operations beyond the conformance suite: synchronous answers,
// the sweeper's onExpired calls, the open-scan bound, and a model-based property test.
import { holds } from '@hati/test-helpers';
import fc from 'fast-check';
import t from 'tap';
import { MemoryEngine, type StorageError } from '../src/index.js';
import { fakeClock } from './common/conformance.js';

t.test('the new operations answer synchronously', async (t) => {
  const store = new MemoryEngine();
  t.teardown(() => store.close());
  t.equal(store.setIf('k', 'v', 0, 'absent'), true);
  t.equal(store.expire('k', 100), true);
  t.equal(store.incrBy('n', 2n), 2n);
  t.same(store.getMany(['k', 'n', 'x']), [Buffer.from('v'), Buffer.from('2'), undefined]);
  t.equal(store.setMany([['a', 'b']]), undefined);
  const page = store.scan('0', { count: 100 });
  t.notOk(page instanceof Promise, 'scan');
  t.same(page.keys.map(String).sort(), ['a', 'k', 'n']);
  t.same(store.keys('?').map(String).sort(), ['a', 'k', 'n']);
  t.throws(() => store.incrBy('k', 1n), { code: 'NOT_INTEGER' }, 'errors are thrown, not rejected');
});

t.test('the active sweeper tells onExpired about keys nobody reads', async (t) => {
  const clock = fakeClock();
  const store = new MemoryEngine({ clock, shards: 4, sweepIntervalMs: 5, sweepLimit: 100 });
  t.teardown(() => store.close());
  const heard: string[] = [];
  store.onExpired = (key) => {
    heard.push(key.toString());
  };
  for (let i = 0; i < 2000; i++) store.set(`e${i}`, 'v', 10);
  store.set('keep', 'v');
  clock.now += 11;
  const deadline = Date.now() + 10_000;
  while (store.heldKeys() > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
  t.equal(store.heldKeys(), 1);
  t.equal(heard.length, 2000, 'every swept key once');
  t.equal(new Set(heard).size, 2000);
});

t.test('maxOpenScans bounds the open scans', async (t) => {
  t.throws(() => new MemoryEngine({ maxOpenScans: 0 }), { code: 'OPTION_INVALID' });
  t.throws(() => new MemoryEngine({ maxOpenScans: 1.5 }), { code: 'OPTION_INVALID' });
  const store = new MemoryEngine({ maxOpenScans: 3 });
  t.teardown(() => store.close());
  for (let i = 0; i < 20; i++) store.set(`k${i}`, 'v');
  const cursors = Array.from({ length: 4 }, () => store.scan('0', { count: 2 }).cursor);
  t.throws(() => store.scan(cursors[0] as string), { code: 'CURSOR_INVALID' }, 'the least recently used went');
  // Using a scan makes it the most recently used: the next one opened drops another.
  const moved = store.scan(cursors[1] as string, { count: 2 }).cursor;
  store.scan('0', { count: 2 });
  t.throws(() => store.scan(cursors[2] as string), { code: 'CURSOR_INVALID' });
  t.doesNotThrow(() => store.scan(moved, { count: 2 }));
  t.doesNotThrow(() => store.scan(cursors[3] as string, { count: 2 }));
});

type Op =
  | { op: 'set' | 'setIf-absent' | 'setIf-present'; key: string; value: string; ttl: number }
  | { op: 'expire'; key: string; ttl: number }
  | { op: 'incrBy'; key: string; delta: bigint }
  | { op: 'get' | 'ttl'; key: string }
  | { op: 'getMany' | 'keys' | 'scan'; keys: string[] }
  | { op: 'setMany'; keys: string[]; value: string; ttl: number }
  | { op: 'advance'; ms: number };

const KEYS = ['a', 'b', 'c', 'é', 'key:1', 'key:2', 'a-much-longer-key-that-is-sampled-when-hashed'];
const key = fc.constantFrom(...KEYS);
const ttl = fc.constantFrom(0, 0, 1, 2, 5, 100);
const value = fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('0', '9', '-3', '9223372036854775806', '01'));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constantFrom('set' as const, 'setIf-absent' as const, 'setIf-present' as const),
    key,
    value,
    ttl,
  }),
  fc.record({ op: fc.constant('expire' as const), key, ttl }),
  fc.record({
    op: fc.constant('incrBy' as const),
    key,
    delta: fc.oneof(fc.bigInt({ min: -5n, max: 5n }), fc.constantFrom(2n ** 62n, -(2n ** 63n))),
  }),
  fc.record({ op: fc.constantFrom('get' as const, 'ttl' as const), key }),
  fc.record({ op: fc.constantFrom('getMany' as const, 'keys' as const, 'scan' as const), keys: fc.array(key) }),
  fc.record({ op: fc.constant('setMany' as const), keys: fc.array(key, { maxLength: 3 }), value, ttl }),
  fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 6 }) }),
);

const INT64 = /^(0|-?[1-9][0-9]{0,18})$/;

t.test('the memory engine matches a Map model, new operations included', async (t) => {
  holds(
    t,
    fc.property(fc.array(op, { maxLength: 60 }), fc.integer({ min: 1, max: 4 }), (ops, shards) => {
      const clock = fakeClock();
      const store = new MemoryEngine({ clock, shards, sweepIntervalMs: 1_000_000 });
      const model = new Map<string, { value: string; expiresAt: number }>();
      const live = (k: string) => {
        const entry = model.get(k);
        if (entry !== undefined && entry.expiresAt !== 0 && clock.now > entry.expiresAt) {
          model.delete(k);
          return undefined;
        }
        return entry;
      };
      const expiry = (ttl: number) => (ttl === 0 ? 0 : clock.now + ttl);
      const liveKeys = () => KEYS.filter((k) => live(k) !== undefined).sort();
      try {
        for (const o of ops) {
          switch (o.op) {
            case 'set':
              store.set(o.key, o.value, o.ttl);
              model.set(o.key, { value: o.value.toWellFormed(), expiresAt: expiry(o.ttl) });
              break;
            case 'setIf-absent':
            case 'setIf-present': {
              const want = (live(o.key) === undefined) === (o.op === 'setIf-absent');
              if (store.setIf(o.key, o.value, o.ttl, o.op === 'setIf-absent' ? 'absent' : 'present') !== want) {
                return false;
              }
              if (want) model.set(o.key, { value: o.value.toWellFormed(), expiresAt: expiry(o.ttl) });
              break;
            }
            case 'expire': {
              const entry = live(o.key);
              if (store.expire(o.key, o.ttl) !== (entry !== undefined)) return false;
              if (entry !== undefined) entry.expiresAt = expiry(o.ttl);
              break;
            }
            case 'incrBy': {
              const entry = live(o.key);
              const current = entry === undefined ? 0n : INT64.test(entry.value) ? BigInt(entry.value) : undefined;
              let want: bigint | string = 'NOT_INTEGER';
              if (current !== undefined && BigInt.asIntN(64, current) === current) {
                const sum = current + o.delta;
                want = BigInt.asIntN(64, sum) === sum ? sum : 'INTEGER_OVERFLOW';
              }
              let got: bigint | string;
              try {
                got = store.incrBy(o.key, o.delta);
              } catch (err) {
                got = (err as StorageError).code;
              }
              if (got !== want) return false;
              if (typeof want === 'bigint') model.set(o.key, { value: String(want), expiresAt: entry?.expiresAt ?? 0 });
              break;
            }
            case 'get':
              if (store.get(o.key) !== live(o.key)?.value) return false;
              break;
            case 'ttl': {
              const entry = live(o.key);
              const want =
                entry === undefined ? undefined : entry.expiresAt === 0 ? 0 : Math.max(1, entry.expiresAt - clock.now);
              if (store.ttl(o.key) !== want) return false;
              break;
            }
            case 'getMany': {
              const got = store.getMany(o.keys).map((v) => v?.toString());
              if (got.some((v, i) => v !== live(o.keys[i] as string)?.value)) return false;
              break;
            }
            case 'setMany':
              store.setMany(
                o.keys.map((k): [string, string] => [k, o.value]),
                o.ttl,
              );
              for (const k of o.keys) model.set(k, { value: o.value.toWellFormed(), expiresAt: expiry(o.ttl) });
              break;
            case 'keys':
              if (store.keys('*').map(String).sort().join() !== liveKeys().join()) return false;
              break;
            case 'scan': {
              const seen = new Set<string>();
              let cursor = '0';
              do {
                const page = store.scan(cursor, { count: 2 });
                for (const k of page.keys) seen.add(k.toString());
                cursor = page.cursor;
              } while (cursor !== '0');
              if ([...seen].sort().join() !== liveKeys().join()) return false;
              break;
            }
            case 'advance':
              clock.now += o.ms;
              break;
          }
        }
        return store.count() === liveKeys().length;
      } finally {
        void store.close();
      }
    }),
    500,
    'random sequences of old and new operations matched the model',
  );
});
