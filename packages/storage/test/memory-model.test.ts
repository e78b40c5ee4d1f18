// Property-based test: the memory engine behaves like a plain Map plus expiry times, for any
// sequence of operations and clock moves (fast-check shrinks a failure to the shortest one).

import { holds } from '@hati/test-helpers';
import fc from 'fast-check';
import t from 'tap';
import { MemoryEngine } from '../src/index.js';
import { fakeClock } from './common/conformance.js';

type Op =
  | { op: 'set'; key: string; value: string; ttl: number }
  | { op: 'get' | 'has' | 'delete' | 'ttl'; key: string }
  | { op: 'count' | 'flushAll' | 'entries' }
  | { op: 'advance'; ms: number };

// A few short keys (some non-ASCII) so that operations collide often.
const key = fc.constantFrom('a', 'b', 'c', 'é', 'key:1', 'a-much-longer-key-that-is-sampled-when-hashed', '\u{1f600}');
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 25,
    arbitrary: fc.record({
      op: fc.constant('set' as const),
      key,
      value: fc.string(),
      ttl: fc.constantFrom(0, 0, 1, 2, 5, 100),
    }),
  },
  {
    weight: 15,
    arbitrary: fc.record({
      op: fc.constantFrom('get' as const, 'has' as const, 'delete' as const, 'ttl' as const),
      key,
    }),
  },
  { weight: 5, arbitrary: fc.record({ op: fc.constantFrom('count' as const, 'entries' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('flushAll' as const) }) },
  { weight: 10, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 6 }) }) },
);

t.test('the memory engine matches a Map model', async (t) => {
  await holds(
    t,
    fc.asyncProperty(fc.array(op, { maxLength: 80 }), fc.integer({ min: 1, max: 5 }), async (ops, shards) => {
      const clock = fakeClock();
      const store = new MemoryEngine({ clock, shards });
      const model = new Map<string, { value: string; expiresAt: number }>();
      const live = (k: string) => {
        const entry = model.get(k);
        // The exact rule: live through expiresAt itself, gone once the clock is past it.
        if (entry !== undefined && entry.expiresAt !== 0 && clock.now > entry.expiresAt) {
          model.delete(k);
          return undefined;
        }
        return entry;
      };
      try {
        for (const o of ops) {
          switch (o.op) {
            case 'set':
              store.set(o.key, o.value, o.ttl);
              model.set(o.key, { value: o.value.toWellFormed(), expiresAt: o.ttl === 0 ? 0 : clock.now + o.ttl });
              break;
            case 'get':
              if (store.get(o.key) !== live(o.key)?.value) return false;
              break;
            case 'has':
              if (store.has(o.key) !== (live(o.key) !== undefined)) return false;
              break;
            case 'ttl': {
              const entry = live(o.key);
              const want =
                entry === undefined ? undefined : entry.expiresAt === 0 ? 0 : Math.max(1, entry.expiresAt - clock.now);
              if (store.ttl(o.key) !== want) return false;
              break;
            }
            case 'delete': {
              const existed = live(o.key) !== undefined;
              model.delete(o.key);
              if (store.delete(o.key) !== existed) return false;
              break;
            }
            case 'count':
              for (const k of [...model.keys()]) live(k);
              if (store.count() !== model.size) return false;
              break;
            case 'entries': {
              for (const k of [...model.keys()]) live(k);
              const seen = new Map<string, string>();
              for await (const entry of store.entries()) seen.set(entry.key.toString(), entry.value.toString());
              if (seen.size !== model.size) return false;
              for (const [k, entry] of model) if (seen.get(k) !== entry.value) return false;
              break;
            }
            case 'flushAll':
              store.flushAll();
              model.clear();
              break;
            case 'advance':
              clock.now += o.ms;
              break;
          }
        }
        return true;
      } finally {
        await store.close();
      }
    }),
    400,
    'random operation sequences matched the model',
  );
});

t.test('any bytes round-trip as keys and values', async (t) => {
  const store = new MemoryEngine();
  t.teardown(() => store.close());
  await holds(
    t,
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (k, v) => {
      store.set(k, v);
      const got = store.getBuffer(Buffer.from(k));
      return got !== undefined && Buffer.compare(got, Buffer.from(v)) === 0;
    }),
    2000,
    'random byte keys and values round-tripped',
  );
});
