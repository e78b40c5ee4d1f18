/** The listeners a node counts connections for. */
export type ListenerName = 'tcp' | 'unix' | 'rpc';

export interface ConnectionCounts {
  /** Open now. */
  current: number;
  /** Accepted since start. */
  total: number;
}

/**
 * The JSON document `STATS` replies with (a bulk string) and `Server.Stats` returns. Part of
 * the wire contract: the client parses it into this type.
 */
export interface StatsSnapshot {
  uptimeMs: number;
  storage: {
    memory: { keys: number; shards: number[] };
    /**
     * `state`: `ok`; `suspended` while writes are refused after a failed disk write; `gone` once
     * the data directory was deleted or replaced (then `keys` is null and `shards` empty).
     */
    hdd: { state: 'ok' | 'suspended' | 'gone'; keys: number | null; shards: number[]; durability: string };
  };
  connections: Record<ListenerName, ConnectionCounts>;
  commands: {
    /** Commands answered over TCP and UNIX sockets (errors included). */
    processed: number;
    /** JSON-RPC calls answered (each call of a batch counts). */
    rpcCalls: number;
  };
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
}
