// The client's side of pub/sub: who listens to which channel or pattern (what a reconnect
// re-subscribes, as nats.js re-sends its subscriptions), and routing of RESP3 push frames.
import type { Reply } from '@hati/protocol';

/**
 * Called with each message of a channel or pattern subscribed to: the payload's bytes, the
 * channel (as UTF-8 text), and, for `psubscribe`, the pattern it matched.
 */
export type MessageListener = (message: Buffer, channel: string, pattern?: string) => void;

/** Called with the items of every RESP3 push frame, as parsed (`[kind, ...]`, bulk strings as Buffers). */
export type PushListener = (items: Reply[]) => void;

/** The pub/sub commands' confirmation frames, as Redis names them (the command's name in lower case). */
export type SubscriptionKind = 'subscribe' | 'unsubscribe' | 'psubscribe' | 'punsubscribe';

const CONFIRMATIONS: ReadonlySet<string> = new Set<SubscriptionKind>([
  'subscribe',
  'unsubscribe',
  'psubscribe',
  'punsubscribe',
]);

function text(item: Reply | undefined): string | undefined {
  if (Buffer.isBuffer(item)) return item.toString('utf8');
  return typeof item === 'string' ? item : undefined;
}

/** Listeners by channel, or by pattern. */
export class ListenerMap {
  readonly #listeners = new Map<string, Set<MessageListener>>();

  /** The channels (patterns) with at least one listener. */
  names(): string[] {
    return [...this.#listeners.keys()];
  }

  add(names: readonly string[], listener: MessageListener): void {
    for (const name of names) {
      let set = this.#listeners.get(name);
      if (set === undefined) {
        set = new Set();
        this.#listeners.set(name, set);
      }
      set.add(listener);
    }
  }

  /**
   * Removes `listener` (or every listener) from `names`; returns the names left without any, so
   * that the server can stop sending them (a name nobody listened to counts when no listener is given).
   */
  remove(names: readonly string[], listener?: MessageListener): string[] {
    const gone: string[] = [];
    for (const name of names) {
      const set = this.#listeners.get(name);
      if (set === undefined) {
        if (listener === undefined) gone.push(name);
        continue;
      }
      if (listener === undefined) set.clear();
      else set.delete(listener);
      if (set.size === 0) {
        this.#listeners.delete(name);
        gone.push(name);
      }
    }
    return gone;
  }

  clear(): void {
    this.#listeners.clear();
  }

  /** Calls the listeners of `name`; a listener that throws is reported to `onError`, not to the socket. */
  deliver(name: string, args: Parameters<MessageListener>, onError: (err: Error) => void): void {
    const set = this.#listeners.get(name);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        listener(...args);
      } catch (err) {
        onError(err as Error);
      }
    }
  }
}

export class Subscriptions {
  readonly channels = new ListenerMap();
  readonly patterns = new ListenerMap();
  readonly #pushListeners = new Set<PushListener>();
  /**
   * What the server has confirmed on the current connection, by name (latin1, so any bytes
   * survive): UNSUBSCRIBE without channels is confirmed once per channel subscribed.
   */
  readonly #confirmed = { channels: new Set<string>(), patterns: new Set<string>() };

  /** Calls `listener` with every push frame; returns the function that stops it. */
  onPush(listener: PushListener): () => void {
    this.#pushListeners.add(listener);
    return () => {
      this.#pushListeners.delete(listener);
    };
  }

  /**
   * Routes one push frame: to the push listeners, then a message to its channel's or pattern's
   * listeners. Returns the kind of a subscription confirmation, which answers a command.
   */
  route(items: Reply[], onError: (err: Error) => void): SubscriptionKind | undefined {
    for (const listener of this.#pushListeners) {
      try {
        listener(items);
      } catch (err) {
        onError(err as Error);
      }
    }
    const kind = text(items[0]);
    if (kind === 'message' && items.length === 3 && Buffer.isBuffer(items[2])) {
      const channel = text(items[1]);
      if (channel !== undefined) this.channels.deliver(channel, [items[2], channel], onError);
    } else if (kind === 'pmessage' && items.length === 4 && Buffer.isBuffer(items[3])) {
      const pattern = text(items[1]);
      const channel = text(items[2]);
      if (pattern !== undefined && channel !== undefined) {
        this.patterns.deliver(pattern, [items[3], channel, pattern], onError);
      }
    } else if (kind !== undefined && CONFIRMATIONS.has(kind)) {
      return kind as SubscriptionKind;
    }
    return undefined;
  }

  /**
   * Records a confirmation; returns how many channels (patterns, for the pattern kinds) were
   * subscribed before it.
   */
  confirm(kind: SubscriptionKind, name: Reply | undefined): number {
    const set = kind === 'subscribe' || kind === 'unsubscribe' ? this.#confirmed.channels : this.#confirmed.patterns;
    const before = set.size;
    if (Buffer.isBuffer(name)) {
      const key = name.toString('latin1');
      if (kind === 'subscribe' || kind === 'psubscribe') set.add(key);
      else set.delete(key);
    }
    return before;
  }

  /** The connection is gone, and with it what the server had confirmed. */
  disconnected(): void {
    this.#confirmed.channels.clear();
    this.#confirmed.patterns.clear();
  }
}
