// What the broker benchmark asks of each system: one driver per system (broker-drivers/), one
// row runner for all of them (broker-rows.ts). A driver maps a router with queues and bindings
// onto its system's own objects and hides its client; the rows only publish, consume and count.

/** The durability a row runs under: Hati's `--hdd-durability`, and the peer it is compared with. */
export type Durability = 'always' | 'everysec';

export type RouterKind = 'direct' | 'fanout' | 'topic';

/** One row's routing: a router, its queues and their bindings; names are new for every run. */
export interface Topology {
  router: string;
  kind: RouterKind;
  queues: readonly string[];
  /** [queue, binding key]; a fan-out router ignores the keys. */
  bindings: ReadonlyArray<readonly [string, string]>;
}

export interface Publisher {
  /** Resolves once the broker has confirmed the message stored (for a durable queue, as durable as it gets). */
  publish(routingKey: string, body: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface Consumer {
  /** Stops the deliveries and closes the consumer's connection. */
  close(): Promise<void>;
}

/** Called with each delivered body; the driver acknowledges the message after the call. */
export type OnMessage = (body: Uint8Array) => void;

export interface BrokerDriver {
  /** The system's name in row names: Hati, RabbitMQ, JetStream, Redis. */
  readonly label: string;
  /** Router kinds it can run; a row needing another one is skipped for it. */
  readonly kinds: readonly RouterKind[];
  /** Creates the router, its queues and bindings, empty. */
  declare(topology: Topology): Promise<void>;
  /** Deletes what `declare` created, messages included. */
  remove(topology: Topology): Promise<void>;
  /** A publisher into the topology's router, on a connection of its own. */
  publisher(topology: Topology): Promise<Publisher>;
  /** Consumes `queue` on a connection of its own, holding at most `prefetch` unacknowledged deliveries. */
  consume(topology: Topology, queue: string, prefetch: number, onMessage: OnMessage): Promise<Consumer>;
  /** Closes the driver's own connection. */
  close(): Promise<void>;
}
