/**
 * The listeners a node counts connections for. `metrics` is the listener of `--metrics-port`
 * (`GET /metrics`, `/healthz`, `/readyz`): its connections count against the client limit, but
 * they run no commands, so they never appear among the clients.
 */
export type ListenerName = 'tcp' | 'unix' | 'rpc' | 'metrics';

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
    /** How long the commands of `processed` took, as a histogram since start (see LatencyHistogram). */
    latencyUs: LatencyHistogram;
  };
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
  /** One entry per client connection (TCP, UNIX socket, and JSON-RPC's HTTP connections). */
  clients: ClientInfo[];
  pubsub: {
    /** Channels and patterns with at least one subscriber. */
    channels: number;
    patterns: number;
    /** Messages delivered to subscribers since start (one per receiver). */
    delivered: number;
  };
  /** The broker: totals since start, and each queue's counts now. */
  broker: {
    routers: number;
    queues: number;
    /** PUBLISH calls that found their router. */
    published: number;
    /** Deliveries (leases begun), redeliveries among them, acknowledgements, dead letters. */
    delivered: number;
    redelivered: number;
    acked: number;
    deadLettered: number;
    perQueue: Record<string, QueueStats>;
  };
}

/**
 * Time in microseconds, bucketed: `counts[i]` holds the commands that took at most `bounds[i]`
 * and more than `bounds[i - 1]`; the last count (`counts.length === bounds.length + 1`) those
 * over the last bound. Counts only grow, so the difference of two snapshots is the histogram of
 * the commands in between, from which live percentiles are read.
 */
export interface LatencyHistogram {
  bounds: number[];
  counts: number[];
}

/** A queue's counts now (`ready` ... `consumers`) and its totals since start (`published` ...). */
export interface QueueStats {
  ready: number;
  leased: number;
  delayed: number;
  dead: number;
  consumers: number;
  /** Messages routed into it. */
  published: number;
  /** Deliveries (leases begun), redeliveries among them, acknowledgements, dead letters. */
  delivered: number;
  redelivered: number;
  acked: number;
  deadLettered: number;
}

/** One client connection, as `STATS` and `CLIENT LIST` show it. */
export interface ClientInfo {
  id: number;
  listener: ListenerName;
  /** `host:port`, or the socket path for a UNIX socket client. */
  address: string;
  /** Set by `CLIENT SETNAME` or `HELLO ... SETNAME`. */
  name: string | null;
  /** The user it authenticated as (`default` when the server has no credentials), or null before AUTH. */
  user: string | null;
  /** RESP version: 2, or 3 after `HELLO 3`. */
  protocol: 2 | 3;
  /** Set by `CLIENT SETINFO LIB-NAME` / `LIB-VER`. */
  libName: string | null;
  libVersion: string | null;
  ageMs: number;
  /** Since its last input. */
  idleMs: number;
  subscriptions: number;
  patterns: number;
  /** The last command it ran, or null. */
  lastCommand: string | null;
}
