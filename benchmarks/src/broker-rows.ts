// The broker benchmark's rows, written once against the BrokerDriver interface: every system
// runs the same code with the same sizes. A run declares a new topology, opens the publishers
// and consumers it needs (each on its own connection), measures, then closes them and removes
// the topology, also when it fails.
import { within } from '@hati/test-helpers';
import { brokerConfig as cfg } from './broker-config.js';
import type { BrokerDriver, Consumer, OnMessage, Publisher, RouterKind, Topology } from './broker-driver.js';

export interface Latency {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  samples: number;
}

export interface RunResult {
  /** Messages published (each one confirmed, and in the rows that consume, delivered to every queue it reached). */
  messages: number;
  /** The measured time, s. */
  seconds: number;
  latency?: Latency;
  note: string;
}

/** What a row's run may open; everything opened is closed when the run ends. */
interface RunContext {
  topology: Topology;
  publisher(): Promise<Publisher>;
  consume(queue: string, onMessage: OnMessage): Promise<Consumer>;
}

export interface BrokerRow {
  /** The row's name, without durability and system: publish_W64, e2e_4consumers, ... */
  name: string;
  kind: RouterKind;
  metric: 'throughput' | 'latency';
  /** What the row does, for the log and the JSON. */
  about: string;
  run(ctx: RunContext): Promise<RunResult>;
}

const now = () => performance.now();
const seconds = (ms: number) => Number((ms / 1000).toFixed(3));

/** One shared body for the throughput rows: the clients copy it into their frames. */
const BODY = Buffer.alloc(cfg.messageBytes, 'm');
const KEY = 'k';

function topologyOf(base: string, kind: RouterKind): Topology {
  const queue = (i: number) => `${base}-q${i}`;
  switch (kind) {
    case 'direct':
      return { router: base, kind, queues: [queue(0)], bindings: [[queue(0), KEY]] };
    case 'fanout': {
      const queues = Array.from({ length: cfg.fanoutQueues }, (_, i) => queue(i));
      return { router: base, kind, queues, bindings: queues.map((q) => [q, ''] as const) };
    }
    case 'topic': {
      const queues = Array.from({ length: cfg.topicQueues }, (_, i) => queue(i));
      const bindings = Array.from(
        { length: cfg.topicBindings },
        (_, i) => [queues[i % queues.length] as string, `t.${i}.*`] as const,
      );
      return { router: base, kind, queues, bindings };
    }
  }
}

/** Routing keys of the topic row: message i matches binding `t.<i mod bindings>.*` and no other. */
const topicKey = (i: number) => `t.${i % cfg.topicBindings}.x`;

/** Counts deliveries, with the times of the first and the last. */
class Deliveries {
  count = 0;
  firstAt = 0;
  lastAt = 0;
  #want = Number.POSITIVE_INFINITY;
  #reached: (() => void) | undefined;

  readonly onMessage: OnMessage = () => {
    const at = now();
    if (this.count === 0) this.firstAt = at;
    this.lastAt = at;
    if (++this.count >= this.#want) this.#reached?.();
  };

  /** Resolves once `want` deliveries came; fails after the settle timeout. */
  async reach(want: number, what: string): Promise<void> {
    if (this.count >= want) return;
    this.#want = want;
    const reached = new Promise<void>((resolve) => {
      this.#reached = resolve;
    });
    await within(reached, cfg.settleTimeoutMs, () => `${what}: ${this.count} of ${want} deliveries`);
  }
}

/**
 * Keeps `window` publishes in flight (each confirmation sends the next) while `more(sent)`;
 * resolves with the number published, all of them confirmed. Stops at the first failure.
 */
async function publishWindow(
  pub: Publisher,
  window: number,
  more: (sent: number) => boolean,
  keyOf: (i: number) => string = () => KEY,
): Promise<number> {
  let sent = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && more(sent)) {
      const i = sent++;
      try {
        await pub.publish(keyOf(i), BODY);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return sent;
}

/** `more` for a row that publishes for `ms` (and at most `maxMessages`). */
function forPublishTime(ms: number = cfg.publishMs): (sent: number) => boolean {
  const end = now() + ms;
  return (sent) => sent < cfg.maxMessages && now() < end;
}

function publishRow(window: number): BrokerRow {
  return {
    name: `publish_W${window}`,
    kind: 'direct',
    metric: 'throughput',
    about: `publish with confirms into one queue, ${window} in flight, no consumer`,
    async run(ctx) {
      const pub = await ctx.publisher();
      const t0 = now();
      const messages = await publishWindow(pub, window, forPublishTime());
      const ms = now() - t0;
      return { messages, seconds: seconds(ms), note: `${messages} confirmed in ${seconds(ms)} s` };
    },
  };
}

/**
 * Publishes for `publishMs` with `loadWindow` in flight while `consumersPerQueue` consumers of
 * every queue acknowledge what they get; measured from the first publish to the last delivery.
 */
async function endToEnd(
  ctx: RunContext,
  consumersPerQueue: number,
  copies: number,
  keyOf?: (i: number) => string,
  publishMs?: number,
): Promise<RunResult> {
  const deliveries = new Deliveries();
  for (const q of ctx.topology.queues) {
    for (let c = 0; c < consumersPerQueue; c++) await ctx.consume(q, deliveries.onMessage);
  }
  const pub = await ctx.publisher();
  const t0 = now();
  const messages = await publishWindow(pub, cfg.loadWindow, forPublishTime(publishMs), keyOf);
  const publishedMs = now() - t0;
  await deliveries.reach(messages * copies, 'after publishing stopped');
  const ms = deliveries.lastAt - t0;
  return {
    messages,
    seconds: seconds(ms),
    note: `${messages} published in ${seconds(publishedMs)} s, ${deliveries.count} deliveries acknowledged by ${seconds(ms)} s`,
  };
}

function endToEndRow(consumers: number): BrokerRow {
  return {
    name: `e2e_${consumers}consumer${consumers === 1 ? '' : 's'}`,
    kind: 'direct',
    metric: 'throughput',
    about: `publish (${cfg.loadWindow} in flight) → consume → ack, one queue, ${consumers} consumer(s)`,
    run: (ctx) => endToEnd(ctx, consumers, 1),
  };
}

const fanoutRow: BrokerRow = {
  name: `fanout_${cfg.fanoutQueues}queues`,
  kind: 'fanout',
  metric: 'throughput',
  about: `publish (${cfg.loadWindow} in flight) into a fan-out router bound to ${cfg.fanoutQueues} queues, one consumer per queue; messages/s, each delivered ${cfg.fanoutQueues} times`,
  run: (ctx) => endToEnd(ctx, 1, cfg.fanoutQueues),
};

const topicRow: BrokerRow = {
  name: `topic_${cfg.topicBindings}bindings`,
  kind: 'topic',
  metric: 'throughput',
  about: `publish (${cfg.loadWindow} in flight) into a topic router with ${cfg.topicBindings} bindings t.<i>.* over ${cfg.topicQueues} queues, keys t.<i>.x (one match each), one consumer per queue`,
  run: (ctx) => endToEnd(ctx, 1, 1, topicKey),
};

const drainRow: BrokerRow = {
  name: 'drain_backlog',
  kind: 'direct',
  metric: 'throughput',
  about: `${cfg.backlog} messages preloaded (${cfg.preloadWindow} in flight, not measured), then one consumer takes and acks them all; from the first delivery to the last`,
  async run(ctx) {
    const pub = await ctx.publisher();
    const preloadStart = now();
    await within(
      publishWindow(pub, cfg.preloadWindow, (sent) => sent < cfg.backlog),
      cfg.runTimeoutMs / 2,
      'preloading the backlog',
    );
    const preloadMs = now() - preloadStart;
    const deliveries = new Deliveries();
    await ctx.consume(ctx.topology.queues[0] as string, deliveries.onMessage);
    await deliveries.reach(cfg.backlog, 'draining the backlog');
    const ms = deliveries.lastAt - deliveries.firstAt;
    return {
      messages: cfg.backlog,
      seconds: seconds(ms),
      note: `backlog ${cfg.backlog} (preloaded in ${seconds(preloadMs)} s) drained in ${seconds(ms)} s`,
    };
  },
};

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

const round3 = (x: number) => Number(x.toFixed(3));

const latencyRow: BrokerRow = {
  name: `latency_${cfg.latency.ratePerSec}`,
  kind: 'direct',
  metric: 'latency',
  about: `publish at a fixed ${cfg.latency.ratePerSec} msg/s for ${cfg.latency.ms / 1000} s (open loop, confirms not awaited before the next), one consumer; publish → deliver time of every message`,
  async run(ctx) {
    const deliveries = new Deliveries();
    const samples: number[] = [];
    await ctx.consume(ctx.topology.queues[0] as string, (body) => {
      // The send time is the body's first 8 bytes: publisher and consumer share this clock.
      samples.push(now() - new DataView(body.buffer, body.byteOffset, 8).getFloat64(0, true));
      deliveries.onMessage(body);
    });
    const pub = await ctx.publisher();
    const total = Math.round((cfg.latency.ratePerSec * cfg.latency.ms) / 1000);
    const confirms: Promise<void>[] = [];
    let refused: unknown;
    const t0 = now();
    await new Promise<void>((resolve) => {
      // Every ms, whatever is due by now: the rate holds even when a timer fires late.
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((now() - t0) * cfg.latency.ratePerSec) / 1000) + 1);
        while (confirms.length < due) {
          const body = Buffer.from(BODY);
          body.writeDoubleLE(now(), 0);
          confirms.push(
            pub.publish(KEY, body).catch((err: unknown) => {
              refused ??= err;
            }),
          );
        }
        if (confirms.length >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const ms = now() - t0;
    await within(Promise.all(confirms), cfg.settleTimeoutMs, 'confirms of the latency row');
    if (refused !== undefined) throw refused;
    await deliveries.reach(total, 'latency row');
    samples.sort((a, b) => a - b);
    const latency = {
      p50Ms: round3(percentile(samples, 0.5)),
      p99Ms: round3(percentile(samples, 0.99)),
      maxMs: round3(samples.at(-1) ?? Number.NaN),
      samples: samples.length,
    };
    return {
      messages: total,
      seconds: seconds(ms),
      latency,
      note: `${total} messages in ${seconds(ms)} s: p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms, max ${latency.maxMs} ms`,
    };
  },
};

/** Every row, in the order they run and are printed. */
export const brokerRows: readonly BrokerRow[] = [
  ...cfg.windows.map(publishRow),
  ...cfg.consumers.map(endToEndRow),
  fanoutRow,
  topicRow,
  drainRow,
  latencyRow,
];

/** Unmeasured load before a system's rows: the one-consumer end-to-end row for `warmupMs`. */
export const warmupRow: BrokerRow = {
  name: 'warmup',
  kind: 'direct',
  metric: 'throughput',
  about: `unmeasured end-to-end load for ${cfg.warmupMs} ms`,
  run: (ctx) => endToEnd(ctx, 1, 1, undefined, cfg.warmupMs),
};

let runs = 0;

/**
 * Runs one row against one system: a new topology (names unique in this benchmark), the row,
 * then its publishers and consumers closed and the topology removed, also when it fails.
 * A close that fails (a consumer's ack that was refused) fails the run.
 */
export async function runRow(driver: BrokerDriver, row: BrokerRow): Promise<RunResult> {
  const topology = topologyOf(`b${++runs}-${row.name}`, row.kind);
  const opened: Array<Publisher | Consumer> = [];
  const track = async <T extends Publisher | Consumer>(open: Promise<T>): Promise<T> => {
    const it = await open;
    opened.push(it);
    return it;
  };
  const ctx: RunContext = {
    topology,
    publisher: () => track(driver.publisher(topology)),
    consume: (queue, onMessage) => track(driver.consume(topology, queue, cfg.prefetch, onMessage)),
  };
  await within(driver.declare(topology), 60_000, `declaring ${topology.router}`);
  let result: RunResult | undefined;
  let error: unknown;
  try {
    result = await within(row.run(ctx), cfg.runTimeoutMs, `${row.name} on ${driver.label}`);
  } catch (err) {
    error = err;
  }
  const closed = await Promise.allSettled(opened.map((it) => within(it.close(), 30_000, 'closing')));
  try {
    await within(driver.remove(topology), 60_000, `removing ${topology.router}`);
  } catch (err) {
    error ??= err;
  }
  const failedClose = closed.find((c) => c.status === 'rejected');
  if (failedClose !== undefined) error ??= failedClose.reason;
  if (error !== undefined || result === undefined) throw error;
  return result;
}
