import { BrokerError } from './errors.js';
import { TopicTrie } from './topic.js';

export const RouterKind = { direct: 'direct', fanout: 'fanout', topic: 'topic' } as const;
export type RouterKind = (typeof RouterKind)[keyof typeof RouterKind];

export function routerKindOf(kind: string): RouterKind {
  const lower = typeof kind === 'string' ? kind.toLowerCase() : '';
  if (lower === 'direct' || lower === 'fanout' || lower === 'topic') return lower;
  throw new BrokerError(
    'ROUTER_KIND_INVALID',
    `unknown router kind '${String(kind).slice(0, 64)}' (expected direct, fanout or topic)`,
  );
}

/** One binding: messages whose routing key matches `bindingKey` go to `queue`. */
export interface Binding {
  readonly queue: string;
  readonly bindingKey: string;
}

/**
 * A router and its bindings. It knows queues by name only: the broker resolves names, so a
 * router never holds a deleted queue.
 */
export class Router {
  readonly name: string;
  readonly kind: RouterKind;
  /** bindingKey → queue names. */
  readonly #byKey = new Map<string, Set<string>>();
  readonly #topics: TopicTrie<string> | undefined;
  #size = 0;

  constructor(name: string, kind: RouterKind) {
    this.name = name;
    this.kind = kind;
    this.#topics = kind === 'topic' ? new TopicTrie<string>() : undefined;
  }

  get bindingCount(): number {
    return this.#size;
  }

  /** Adds a binding; false when it was there already. */
  bind(queue: string, bindingKey: string): boolean {
    let queues = this.#byKey.get(bindingKey);
    if (queues === undefined) {
      queues = new Set();
      this.#byKey.set(bindingKey, queues);
    }
    if (queues.has(queue)) return false;
    queues.add(queue);
    this.#topics?.add(bindingKey, queue);
    this.#size++;
    return true;
  }

  /** Removes a binding; false when there was none. */
  unbind(queue: string, bindingKey: string): boolean {
    const queues = this.#byKey.get(bindingKey);
    if (queues === undefined || !queues.delete(queue)) return false;
    if (queues.size === 0) this.#byKey.delete(bindingKey);
    this.#topics?.remove(bindingKey, queue);
    this.#size--;
    return true;
  }

  /** Removes every binding to `queue`; returns the binding keys removed. */
  unbindQueue(queue: string): string[] {
    const removed: string[] = [];
    for (const [bindingKey, queues] of this.#byKey) {
      if (queues.has(queue)) removed.push(bindingKey);
    }
    for (const bindingKey of removed) this.unbind(queue, bindingKey);
    return removed;
  }

  /** The names of the queues a message with `routingKey` goes to (each once). */
  route(routingKey: string, out: Set<string>): void {
    switch (this.kind) {
      case 'direct': {
        const queues = this.#byKey.get(routingKey);
        if (queues !== undefined) for (const queue of queues) out.add(queue);
        return;
      }
      case 'fanout':
        for (const queues of this.#byKey.values()) for (const queue of queues) out.add(queue);
        return;
      case 'topic':
        this.#topics?.match(routingKey, out);
        return;
    }
  }

  bindings(): Binding[] {
    const out: Binding[] = [];
    for (const [bindingKey, queues] of this.#byKey) for (const queue of queues) out.push({ queue, bindingKey });
    return out;
  }
}
