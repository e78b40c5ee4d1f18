// Pub/sub over sessions: SUBSCRIBE/PSUBSCRIBE and keyspace events. Nothing is kept or paid for
// while nobody is subscribed: `keyEvent` returns after one check.
import type { ReplyWriter } from '@hati/protocol';
import { globMatcher } from '@hati/storage';
import type { Session } from './session.js';

const MESSAGE = Buffer.from('message');
const PMESSAGE = Buffer.from('pmessage');

/** The kinds of confirmation a (un)subscribe writes, as Redis names them. */
export type SubscriptionKind = 'subscribe' | 'unsubscribe' | 'psubscribe' | 'punsubscribe';

/** Writes one `[kind, channel, count]` frame: a push in RESP3, an array in RESP2 (Redis's form). */
export function writeConfirmation(out: ReplyWriter, kind: SubscriptionKind, channel: Buffer | null, count: number) {
  out.pushHeader(3);
  out.bulk(kind);
  if (channel === null) out.nil();
  else out.bulk(channel);
  out.integer(count);
}

interface Pattern {
  readonly match: (channel: Buffer) => boolean;
  readonly sessions: Set<Session>;
}

/** Key events, as published on `__keyspace@<type>__:<key>` and `__keyevent@<type>__:<event>`. */
export type KeyEvent = 'set' | 'del' | 'expire' | 'persist' | 'expired' | 'incrby' | 'flushall';

export class PubSub {
  readonly #channels = new Map<string, Set<Session>>();
  readonly #patterns = new Map<string, Pattern>();
  readonly #prefixes = {
    memory: { keyspace: Buffer.from('__keyspace@memory__:'), keyevent: '__keyevent@memory__:' },
    hdd: { keyspace: Buffer.from('__keyspace@hdd__:'), keyevent: '__keyevent@hdd__:' },
  } as const;
  /** Messages delivered to subscribers since start. */
  delivered = 0;

  /** Channels and patterns with at least one subscriber. */
  counts(): { channels: number; patterns: number } {
    return { channels: this.#channels.size, patterns: this.#patterns.size };
  }

  /** Someone is subscribed to something. */
  get active(): boolean {
    return this.#channels.size !== 0 || this.#patterns.size !== 0;
  }

  /** Subscribes `session` to `channel`; the session's subscription count after it. */
  subscribe(session: Session, channel: Buffer): number {
    const name = channel.toString('latin1');
    if (!session.channels.has(name)) {
      session.channels.add(name);
      let sessions = this.#channels.get(name);
      if (sessions === undefined) {
        sessions = new Set();
        this.#channels.set(name, sessions);
      }
      sessions.add(session);
    }
    return session.subscriptions;
  }

  unsubscribe(session: Session, channel: Buffer): number {
    const name = channel.toString('latin1');
    if (session.channels.delete(name)) {
      const sessions = this.#channels.get(name);
      sessions?.delete(session);
      if (sessions?.size === 0) this.#channels.delete(name);
    }
    return session.subscriptions;
  }

  psubscribe(session: Session, pattern: Buffer): number {
    const name = pattern.toString('latin1');
    if (!session.patterns.has(name)) {
      let entry = this.#patterns.get(name);
      if (entry === undefined) {
        entry = { match: globMatcher(pattern), sessions: new Set() };
        this.#patterns.set(name, entry);
      }
      entry.sessions.add(session);
      session.patterns.set(name, entry.match);
    }
    return session.subscriptions;
  }

  punsubscribe(session: Session, pattern: Buffer): number {
    const name = pattern.toString('latin1');
    if (session.patterns.delete(name)) {
      const entry = this.#patterns.get(name);
      entry?.sessions.delete(session);
      if (entry?.sessions.size === 0) this.#patterns.delete(name);
    }
    return session.subscriptions;
  }

  /** Every subscription of a session that is gone. */
  drop(session: Session): void {
    for (const name of session.channels) this.unsubscribe(session, Buffer.from(name, 'latin1'));
    for (const name of session.patterns.keys()) this.punsubscribe(session, Buffer.from(name, 'latin1'));
  }

  /** Delivers `message` to the subscribers of `channel` and of matching patterns; how many got it. */
  publish(channel: Buffer, message: Buffer | string): number {
    let receivers = 0;
    const sessions = this.#channels.get(channel.toString('latin1'));
    if (sessions !== undefined) {
      for (const session of sessions) {
        const sent = session.push((out) => {
          out.pushHeader(3);
          out.bulk(MESSAGE);
          out.bulk(channel);
          out.bulk(message);
        });
        if (sent) receivers++;
      }
    }
    for (const [name, { match, sessions }] of this.#patterns) {
      if (!match(channel)) continue;
      const pattern = Buffer.from(name, 'latin1');
      for (const session of sessions) {
        const sent = session.push((out) => {
          out.pushHeader(4);
          out.bulk(PMESSAGE);
          out.bulk(pattern);
          out.bulk(channel);
          out.bulk(message);
        });
        if (sent) receivers++;
      }
    }
    this.delivered += receivers;
    return receivers;
  }

  /**
   * A key changed: published as Redis's keyspace notifications, with the storage type in place
   * of the database number. Free while nobody is subscribed.
   */
  keyEvent(type: 'memory' | 'hdd', event: Exclude<KeyEvent, 'flushall'>, key: Buffer | string): void {
    if (!this.active) return;
    const prefixes = this.#prefixes[type];
    const keyBytes = typeof key === 'string' ? Buffer.from(key) : key;
    this.publish(Buffer.concat([prefixes.keyspace, keyBytes]), event);
    this.publish(Buffer.from(prefixes.keyevent + event), keyBytes);
  }

  /** Every key of a storage type was removed: `__keyevent@<type>__:flushall`, the type as message. */
  flushed(type: 'memory' | 'hdd'): void {
    if (!this.active) return;
    this.publish(Buffer.from(`${this.#prefixes[type].keyevent}flushall`), type);
  }
}
