// Run sizes of the broker benchmark, in one place. BENCH_QUICK=1 shrinks every row for a smoke
// run; the numbers of a quick run are not comparable with the targets.
import { intFromEnv, quick } from './config.js';

/** The systems the benchmark knows, in the order their rows are printed. */
export const SYSTEMS = ['hati', 'rabbitmq', 'jetstream', 'redis'] as const;
export type System = (typeof SYSTEMS)[number];

/** What BENCH_BROKER_PEERS may name; `nats` is JetStream. */
const SYSTEM_NAMES: Readonly<Record<string, System>> = {
  hati: 'hati',
  rabbitmq: 'rabbitmq',
  nats: 'jetstream',
  jetstream: 'jetstream',
  redis: 'redis',
};

/** BENCH_BROKER_PEERS=rabbitmq,nats runs only those systems; unset or empty, all of them. */
function systemsFromEnv(): readonly System[] {
  const text = process.env.BENCH_BROKER_PEERS?.trim();
  if (text === undefined || text === '' || text === 'all') return SYSTEMS;
  const chosen = new Set<System>();
  for (const word of text.split(',')) {
    const name = word.trim().toLowerCase();
    const system = SYSTEM_NAMES[name];
    if (system === undefined) {
      throw new Error(
        `BENCH_BROKER_PEERS: unknown system '${name}' (expected a comma-separated list of ${Object.keys(SYSTEM_NAMES).join(', ')})`,
      );
    }
    chosen.add(system);
  }
  return SYSTEMS.filter((s) => chosen.has(s));
}

export const brokerConfig = {
  quick,
  systems: systemsFromEnv(),
  /** Bytes of every message body. */
  messageBytes: 256,
  /** Confirms kept in flight by the publish rows. */
  windows: [1, 64, 1024] as const,
  /** Consumers of the one queue in the end-to-end rows, each on a connection of its own. */
  consumers: [1, 4] as const,
  /** How long every throughput row publishes, ms (the row then waits for the consumers). */
  publishMs: quick ? 200 : 3000,
  /** Most messages one row publishes, whatever its time: the queues stay bounded. */
  maxMessages: 2_000_000,
  /** Confirms in flight of the publisher of the end-to-end, fan-out and topic rows, and of the backlog preload. */
  loadWindow: 256,
  preloadWindow: 1024,
  /** Unacknowledged deliveries each consumer may hold (prefetch, pull batch, COUNT). */
  prefetch: 256,
  fanoutQueues: 10,
  topicQueues: 10,
  /** Binding keys `t.<i>.*`, i < topicBindings, spread over the topic queues. */
  topicBindings: 1000,
  /** Messages preloaded before the drain row. */
  backlog: intFromEnv('BENCH_BROKER_BACKLOG', quick ? 3_000 : 100_000),
  latency: { ratePerSec: 2000, ms: quick ? 500 : 5000 },
  /** Unmeasured end-to-end load against every system before its rows (JIT warm-up of the Node processes), ms. */
  warmupMs: quick ? 100 : 2000,
  /** After the publisher stops, how long the consumers get to receive the rest, ms. */
  settleTimeoutMs: 60_000,
  /** A run (declare, load, remove) that has not finished by then fails, ms. */
  runTimeoutMs: 240_000,
  /** Targets: Hati's throughput over RabbitMQ's (`always`) and JetStream's (`everysec`), Hati's p99. */
  targets: { overRabbitMq: 2, overJetStream: 1.5, p99Ms: 2 },
} as const;

export type BrokerConfig = typeof brokerConfig;
