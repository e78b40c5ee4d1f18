// What every broker test file needs: a fake clock, error codes as values, a broker opened with
// the clock and no timers (in a temporary directory when it needs one), and the queue types to
// run the shared behaviour on. Tests branch on what a type supports, never on its name.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { type FakeClock, fakeClock, tempDir } from '@hati/test-helpers';
import type { Test } from 'tap';
import {
  Broker,
  type BrokerOptions,
  type BrokerSession,
  type Delivery,
  type PublishOptions,
  type PushTarget,
  type QueueOptions,
  QueueType,
} from '../../src/index.js';

export { type FakeClock, fakeClock };

/** The `.code` `fn` fails with (a BrokerError's or a StorageError's), or undefined when it succeeds. */
export async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw err;
  }
  return undefined;
}

/** What a queue type can do, as the tests need to know it. */
export interface Supports {
  /** Messages survive a restart. */
  persistence: boolean;
}

export const queueTypes: readonly { type: QueueType; supports: Supports }[] = [
  { type: QueueType.memory, supports: { persistence: false } },
  { type: QueueType.hdd, supports: { persistence: true } },
];

/** A broker under test, with the clock it reads and a way to restart it on the same data. */
export interface Env {
  broker: Broker;
  clock: FakeClock;
  dataDir: string;
  /** Closes the broker and opens the same data directory again (same clock, same options). */
  reopen(): Promise<Broker>;
}

/** A broker with a fake clock and no timers, on a fresh data directory, closed after the test. */
export async function openBroker(t: Test, options: Partial<BrokerOptions> = {}): Promise<Env> {
  const clock = fakeClock();
  const dataDir = await tempDir(t, 'hati-broker-');
  const all: BrokerOptions = { clock, timers: false, durability: 'no', dataDir, ...options };
  const env: Env = {
    broker: await Broker.open(all),
    clock,
    dataDir,
    async reopen() {
      await env.broker.close();
      env.broker = await Broker.open(all);
      return env.broker;
    },
  };
  t.teardown(() => env.broker.close());
  return env;
}

/**
 * Defines the usual fixture: a direct router `r`, queue `q` of `type` bound to it with key `k`.
 * Returns a publisher of texts to it.
 */
export async function withQueue(broker: Broker, type: QueueType, options: QueueOptions = {}): Promise<Publish> {
  await broker.createRouter('r', 'direct');
  await broker.createQueue('q', type, options);
  await broker.bind('q', 'r', 'k');
  return async (text, publish) => broker.publish('r', 'k', text, publish);
}

/** Publishes a text to router `r` with key `k` (see `withQueue`). */
export type Publish = (text: string, options?: PublishOptions) => Promise<number>;

/**
 * `openBroker` with the usual fixture of `withQueue`; `publish` goes to whichever broker `env`
 * holds (after `env.reopen()` too).
 */
export async function openWithQueue(
  t: Test,
  type: QueueType,
  queueOptions: QueueOptions = {},
  brokerOptions: Partial<BrokerOptions> = {},
): Promise<{ env: Env; publish: Publish }> {
  const env = await openBroker(t, brokerOptions);
  await withQueue(env.broker, type, queueOptions);
  return { env, publish: async (text, options) => env.broker.publish('r', 'k', text, options) };
}

/** A broker without a data directory or timers, closed after the test. */
export async function memoryBroker(t: Test): Promise<Broker> {
  const broker = await Broker.open({ timers: false });
  t.teardown(() => broker.close());
  return broker;
}

/** The payloads of deliveries, as text. */
export function texts(deliveries: readonly Delivery[]): string[] {
  return deliveries.map((delivery) => delivery.message.toString());
}

/** Lets queued dispatches and store writes run (a few turns of the event loop). */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await nextTurn();
}

/** Waits until `done()` holds, turning the event loop; fails after `ms`. */
export async function until(what: string, done: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await nextTurn();
  }
}

/** A session whose pushed deliveries are collected, per consumer tag. */
export interface Pushed {
  session: BrokerSession;
  /** Every push, in order. */
  all: { tag: string; queue: string; delivery: Delivery }[];
  /** Texts pushed to `tag`, in order. */
  of(tag: string): string[];
}

export function pushSession(broker: Broker): Pushed {
  const all: Pushed['all'] = [];
  const push: PushTarget = (tag, queue, delivery) => {
    all.push({ tag, queue, delivery });
  };
  return {
    session: broker.openSession(push),
    all,
    of: (tag) => all.filter((p) => p.tag === tag).map((p) => p.delivery.message.toString()),
  };
}
