/**
 * Topic matching, as AMQP topic exchanges do it: keys are words separated by `.`; in a binding
 * key `*` matches exactly one word and `#` zero or more words. Words may be empty (`a..b` has
 * three words, the middle one empty; the empty key is one empty word).
 *
 * Bindings are held in a trie of words, so routing costs the length of the key times the
 * wildcards on the way, not the number of bindings.
 */
let nextNodeId = 0;

class TopicNode<T> {
  readonly id = nextNodeId++;
  readonly words = new Map<string, TopicNode<T>>();
  star: TopicNode<T> | undefined;
  hash: TopicNode<T> | undefined;
  /**
   * Targets whose binding key ends at this node, with how many of their binding keys do: `#` and
   * `#.#` end at the same node, and unbinding one must keep the other.
   */
  readonly targets = new Map<T, number>();

  get empty(): boolean {
    return this.words.size === 0 && this.star === undefined && this.hash === undefined && this.targets.size === 0;
  }
}

export class TopicTrie<T> {
  readonly #root = new TopicNode<T>();

  add(bindingKey: string, target: T): void {
    let node = this.#root;
    for (const word of wordsOf(bindingKey)) {
      if (word === '*') node = node.star ??= new TopicNode<T>();
      else if (word === '#') node = node.hash ??= new TopicNode<T>();
      else {
        let next = node.words.get(word);
        if (next === undefined) {
          next = new TopicNode<T>();
          node.words.set(word, next);
        }
        node = next;
      }
    }
    node.targets.set(target, (node.targets.get(target) ?? 0) + 1);
  }

  remove(bindingKey: string, target: T): void {
    const path: [TopicNode<T>, string][] = [];
    let node: TopicNode<T> | undefined = this.#root;
    for (const word of wordsOf(bindingKey)) {
      path.push([node, word]);
      node = word === '*' ? node.star : word === '#' ? node.hash : node.words.get(word);
      if (node === undefined) return;
    }
    const count = node.targets.get(target);
    if (count === undefined) return;
    if (count > 1) {
      node.targets.set(target, count - 1);
      return;
    }
    node.targets.delete(target);
    // Prune the nodes left empty, from the leaf up.
    for (let i = path.length - 1; i >= 0 && node.empty; i--) {
      const [parent, word] = path[i] as [TopicNode<T>, string];
      if (word === '*') parent.star = undefined;
      else if (word === '#') parent.hash = undefined;
      else parent.words.delete(word);
      node = parent;
    }
  }

  /** Adds to `out` every target with a binding key that matches `routingKey`. */
  match(routingKey: string, out: Set<T>): void {
    visit(this.#root, routingKey.split('.'), 0, out, new Set());
  }
}

/** A binding key's words, with runs of `#` collapsed (`#.#` matches what `#` matches). */
function wordsOf(bindingKey: string): string[] {
  return bindingKey.split('.').filter((word, i, words) => word !== '#' || words[i - 1] !== '#');
}

/**
 * Matches `words[at..]` below `node`. `seen` holds the (`#` node, position) pairs already tried:
 * without it, keys such as `#.a.#.a.#` cost exponential time on long routing keys.
 */
function visit<T>(node: TopicNode<T>, words: string[], at: number, out: Set<T>, seen: Set<number>): void {
  const hash = node.hash;
  if (hash !== undefined) {
    // `#` takes zero or more words: try every split. A `#` node is never below itself, so a run
    // of splits, once begun, is tried to the end before another begins: the first split already
    // tried means all later ones were too, and the whole key costs each `#` node one pass.
    for (let i = at; i <= words.length; i++) {
      const state = hash.id * (words.length + 1) + i;
      if (seen.has(state)) break;
      seen.add(state);
      visit(hash, words, i, out, seen);
    }
  }
  if (at === words.length) {
    for (const target of node.targets.keys()) out.add(target);
    return;
  }
  const exact = node.words.get(words[at] as string);
  if (exact !== undefined) visit(exact, words, at + 1, out, seen);
  if (node.star !== undefined) visit(node.star, words, at + 1, out, seen);
}
