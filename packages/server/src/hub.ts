import type { Broker, BrokerSession } from '@hati/broker';
import type { StorageManager } from '@hati/storage';
import type { Auth } from './auth.js';
import type { Logger } from './logger.js';
import type { PubSub } from './pubsub.js';
import type { Sessions } from './session.js';
import type { ServerStats } from './stats.js';

/** What commands reach of the server: one instance per server, handed to every handler. */
export interface Hub {
  readonly storage: StorageManager;
  readonly broker: Broker;
  /**
   * The broker session of every JSON-RPC call: leases taken by `Broker.Fetch` outlive the HTTP
   * connection (they end by ACK, NACK or the ack timeout).
   */
  readonly rpcBroker: BrokerSession;
  readonly stats: ServerStats;
  /** The users, and who a session starts as. */
  readonly auth: Auth;
  readonly logger: Logger;
  readonly pubsub: PubSub;
  readonly sessions: Sessions;
  /** Set once shutdown starts: every command answers SHUTTING_DOWN. */
  closing: boolean;
}
