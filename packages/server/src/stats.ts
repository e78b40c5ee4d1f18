import { allCommands, type ConnectionCounts, type ListenerName, type StatsSnapshot } from '@hati/protocol';
import type { Hub } from './hub.js';
import { CommandCounters, HddIo, RpcCounters } from './metrics.js';

export type { ConnectionCounts, StatsSnapshot };

export const Listener = { tcp: 'tcp', unix: 'unix', rpc: 'rpc', metrics: 'metrics' } as const satisfies Record<
  ListenerName,
  ListenerName
>;
export type Listener = ListenerName;

/** The server's counters; one instance per server. */
export class ServerStats {
  readonly startedAt = Date.now();
  commandsProcessed = 0;
  rpcCalls = 0;
  /** TCP and UNIX commands by command, result and latency (the dispatcher counts). */
  readonly commands = new CommandCounters(allCommands());
  /** JSON-RPC calls by method and result. */
  readonly rpc = new RpcCounters();
  /** The hdd store's write batches and fsyncs. */
  readonly hddIo = new HddIo();
  readonly connections: Record<Listener, ConnectionCounts> = {
    tcp: { current: 0, total: 0 },
    unix: { current: 0, total: 0 },
    rpc: { current: 0, total: 0 },
    metrics: { current: 0, total: 0 },
  };

  opened(listener: Listener): void {
    this.connections[listener].current++;
    this.connections[listener].total++;
  }

  closed(listener: Listener): void {
    this.connections[listener].current--;
  }

  async snapshot(hub: Pick<Hub, 'storage' | 'broker' | 'sessions' | 'pubsub'>): Promise<StatsSnapshot> {
    const { storage, broker, sessions, pubsub } = hub;
    const memoryShards = storage.memory.shardCounts();
    // A store whose directory is gone has no count to give; STATS still answers.
    const hddShards = storage.hdd.state === 'gone' ? undefined : await storage.hdd.shardCounts();
    const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
    const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
    const now = Date.now();
    return {
      uptimeMs: Date.now() - this.startedAt,
      storage: {
        memory: { keys: sum(memoryShards), shards: memoryShards },
        hdd: {
          state: storage.hdd.state,
          keys: hddShards === undefined ? null : sum(hddShards),
          shards: hddShards ?? [],
          durability: storage.hdd.durability,
        },
      },
      connections: structuredClone(this.connections),
      commands: { processed: this.commandsProcessed, rpcCalls: this.rpcCalls, latencyUs: this.commands.latency() },
      memory: { rss, heapUsed, heapTotal, external },
      clients: [...sessions].map((session) => session.info(now)),
      pubsub: { ...pubsub.counts(), delivered: pubsub.delivered },
      broker: broker.stats(),
    };
  }
}
