// Routers: direct, fanout and topic matching (with the edge cases of AMQP topic keys), checked
// through PUBLISH and, for the topic trie, against a plain reference matcher with fast-check.
import { holds } from '@hati/test-helpers';
import fc from 'fast-check';
import t from 'tap';
import { TopicTrie } from '../src/topic.js';
import { memoryBroker } from './common/harness.js';

/** The queues a topic binding key sends `routingKey` to, by the definition (no trie). */
function matches(bindingKey: string, routingKey: string): boolean {
  const pattern = bindingKey.split('.');
  const words = routingKey.split('.');
  // reachable[j]: the pattern so far can consume exactly words[0..j).
  let reachable = words.map((_, j) => j === 0).concat(words.length === 0);
  for (const p of pattern) {
    const next = new Array<boolean>(words.length + 1).fill(false);
    for (let j = 0; j <= words.length; j++) {
      if (!reachable[j]) continue;
      if (p === '#') for (let k = j; k <= words.length; k++) next[k] = true;
      else if (j < words.length && (p === '*' || p === words[j])) next[j + 1] = true;
    }
    reachable = next;
  }
  return reachable[words.length] === true;
}

function routed(trie: TopicTrie<string>, routingKey: string): string[] {
  const out = new Set<string>();
  trie.match(routingKey, out);
  return [...out].sort();
}

t.test('topic: * is exactly one word, # zero or more, words may be empty', async (t) => {
  const cases: [string, string, boolean][] = [
    ['#', '', true],
    ['#', 'a', true],
    ['#', 'a.b.c', true],
    ['#', '..', true],
    ['', '', true],
    ['', 'a', false],
    ['*', '', true],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['a.*', 'a', false],
    ['a.*', 'a.', true],
    ['a.*', 'a.b', true],
    ['a.*', 'a.b.c', false],
    ['a.#.b', 'a.b', true],
    ['a.#.b', 'a.x.b', true],
    ['a.#.b', 'a.x.y.b', true],
    ['a.#.b', 'a..b', true],
    ['a.#.b', 'a.b.c', false],
    ['a.#.b', 'b.a.b', false],
    ['a.*.b', 'a.b', false],
    ['a.*.b', 'a..b', true],
    ['a..b', 'a..b', true],
    ['a..b', 'a.b', false],
    ['#.a', 'a', true],
    ['#.a', 'b.a', true],
    ['#.a', 'a.b', false],
    ['a.#', 'a', true],
    ['a.#', 'ab', false],
    ['#.#', '', true],
    ['#.#', 'a.b', true],
    ['*.#', '', true],
    ['*.#', 'a.b', true],
    ['#.*', 'a', true],
    ['*.*', 'a', false],
    ['a.b', 'a.b', true],
    ['a.b', 'a.B', false],
    ['*.*.#.*', 'a.b', false],
    ['*.*.#.*', 'a.b.c', true],
  ];
  for (const [binding, key, expected] of cases) {
    t.equal(
      matches(binding, key),
      expected,
      `reference: '${binding}' ${expected ? 'matches' : 'does not match'} '${key}'`,
    );
    const trie = new TopicTrie<string>();
    trie.add(binding, 'q');
    t.same(
      routed(trie, key),
      expected ? ['q'] : [],
      `trie: '${binding}' ${expected ? 'matches' : 'does not match'} '${key}'`,
    );
  }
});

t.test('topic: the trie routes as the definition does, over random bindings and keys', async (t) => {
  const word = fc.constantFrom('a', 'b', '', 'ab');
  const bindingWord = fc.oneof(word, fc.constantFrom('*', '#'));
  const key = (w: fc.Arbitrary<string>) => fc.array(w, { minLength: 1, maxLength: 6 }).map((ws) => ws.join('.'));
  holds(
    t,
    fc.property(
      fc.array(key(bindingWord), { minLength: 1, maxLength: 8 }),
      fc.array(key(word), { maxLength: 10 }),
      fc.integer({ min: 0, max: 7 }),
      (bindings, keys, removeAt) => {
        const trie = new TopicTrie<string>();
        bindings.forEach((binding, i) => {
          trie.add(binding, `q${i}`);
        });
        // Removing one binding (and adding it back under another target) leaves the rest intact.
        const removed = removeAt % bindings.length;
        trie.remove(bindings[removed] as string, `q${removed}`);
        for (const routingKey of keys) {
          const expected = bindings
            .flatMap((b, i) => (i !== removed && matches(b, routingKey) ? [`q${i}`] : []))
            .sort();
          if (JSON.stringify(routed(trie, routingKey)) !== JSON.stringify(expected)) return false;
        }
        return true;
      },
    ),
    500,
    'trie and reference agree',
  );
});

t.test('topic: a hostile binding with a long routing key stays fast', async (t) => {
  const trie = new TopicTrie<string>();
  trie.add('#.a.#.a.#.a.#.a.#.a.#.b', 'hostile');
  trie.add('#.*.#.*.#.*.#.*.#.c', 'stars');
  const long = Array.from({ length: 500 }, () => 'a').join('.');
  const started = process.hrtime.bigint();
  for (let i = 0; i < 20; i++) t.same(routed(trie, long), [], 'no match, however it is split');
  t.same(routed(trie, `${long}.b`), ['hostile']);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.ok(ms < 1000, `21 routings of a 500-word key took ${ms.toFixed(1)} ms`);
});

t.test('routers route through PUBLISH: direct, fanout, topic; each queue once', async (t) => {
  const broker = await memoryBroker(t);
  broker.createRouter('d', 'direct');
  broker.createRouter('f', 'FANOUT');
  broker.createRouter('tp', 'Topic');
  for (const q of ['q1', 'q2', 'q3']) broker.createQueue(q, 'memory');
  const bindings = [
    ['q1', 'd', 'orders'],
    ['q2', 'd', 'orders'],
    ['q3', 'd', ''],
    ['q1', 'f', 'ignored'],
    ['q1', 'f', 'also ignored'],
    ['q2', 'f', ''],
    ['q1', 'tp', 'orders.*'],
    ['q1', 'tp', 'orders.#'],
    ['q2', 'tp', '#.eu'],
    ['q3', 'tp', '*.*.*'],
  ] as const;
  for (const [queue, router, key] of bindings) broker.bind(queue, router, key);
  t.equal(broker.publish('d', 'orders', 'x'), 2, 'direct: every queue bound with the key');
  t.equal(broker.publish('d', 'Orders', 'x'), 0, 'direct: keys compare exactly');
  t.equal(broker.publish('d', '', 'x'), 1, 'direct: the empty key is a key');
  t.equal(broker.publish('f', 'anything', 'x'), 2, 'fanout: every bound queue once, whatever the keys');
  t.equal(broker.publish('tp', 'orders.eu', 'x'), 2, 'topic: a queue matched by two bindings counts once');
  t.equal(broker.publish('tp', 'orders.new.eu', 'x'), 3);
  t.equal(broker.publish('tp', 'payments', 'x'), 0);
  t.same(
    ['q1', 'q2', 'q3'].map((q) => broker.getQueue(q).ready),
    [4, 4, 2],
  );
  t.same(
    broker.getRouter('tp').bindings.sort((a, b) => (a.bindingKey < b.bindingKey ? -1 : 1)),
    [
      { queue: 'q2', bindingKey: '#.eu' },
      { queue: 'q3', bindingKey: '*.*.*' },
      { queue: 'q1', bindingKey: 'orders.#' },
      { queue: 'q1', bindingKey: 'orders.*' },
    ],
  );
});

t.test('topic: unbinding one of two keys that match alike keeps the other', async (t) => {
  const broker = await memoryBroker(t);
  broker.createRouter('tp', 'topic');
  broker.createQueue('q', 'memory');
  broker.bind('q', 'tp', '#');
  broker.bind('q', 'tp', '#.#');
  t.equal(broker.unbind('q', 'tp', '#'), true);
  t.equal(broker.publish('tp', 'a.b', 'x'), 1, "'#.#' is still bound");
  t.equal(broker.unbind('q', 'tp', '#.#'), true);
  t.equal(broker.unbind('q', 'tp', '#.#'), false, 'a binding is removed once');
  t.equal(broker.publish('tp', 'a.b', 'x'), 0);
  broker.bind('q', 'tp', 'a.*');
  broker.bind('q', 'tp', 'a.b');
  broker.unbind('q', 'tp', 'a.b');
  t.equal(broker.publish('tp', 'a.c', 'x'), 1, 'removing a sibling branch keeps the other');
});
