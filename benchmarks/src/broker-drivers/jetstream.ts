// NATS JetStream with the `nats` client: file storage, publish acknowledged by the stream (not
// fsynced in 2.9: the peer of Hati's `everysec`), durable pull consumers with explicit acks.
// A router's routing key is the subject `<router>.<key>`. Direct and topic queues are work-queue
// streams whose subjects are the queue's binding keys (JetStream's subject wildcards match as
// AMQP's `*` does). Streams may not share subjects, so a fan-out router is one stream with
// interest retention and a durable consumer per queue: each message stays until every queue has
// acknowledged it.
import {
  AckPolicy,
  connect,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  RetentionPolicy,
  StorageType,
} from 'nats';
import type { BrokerDriver, Consumer, OnMessage, Publisher, Topology } from '../broker-driver.js';

/** The stream and durable consumer that hold a queue. */
function placeOf(t: Topology, queue: string): { stream: string; durable: string } {
  return t.kind === 'fanout' ? { stream: t.router, durable: queue } : { stream: queue, durable: queue };
}

export class JetStreamDriver implements BrokerDriver {
  readonly label = 'JetStream';
  readonly kinds = ['direct', 'fanout', 'topic'] as const;
  readonly #servers: string;
  readonly #admin: NatsConnection;
  readonly #jsm: JetStreamManager;

  private constructor(servers: string, admin: NatsConnection, jsm: JetStreamManager) {
    this.#servers = servers;
    this.#admin = admin;
    this.#jsm = jsm;
  }

  static async connect(port: number): Promise<JetStreamDriver> {
    const servers = `127.0.0.1:${port}`;
    const admin = await connect({ servers, name: 'bench-admin' });
    return new JetStreamDriver(servers, admin, await admin.jetstreamManager());
  }

  async #js(name: string): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
    const nc = await connect({ servers: this.#servers, name });
    return { nc, js: nc.jetstream() };
  }

  async declare(t: Topology): Promise<void> {
    const file = { storage: StorageType.File };
    const consumer = (durable: string) => ({
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      // The default (1,000) is below the 4 × prefetch of the four-consumer row.
      max_ack_pending: 10_000,
    });
    if (t.kind === 'fanout') {
      const subjects = [`${t.router}.>`];
      await this.#jsm.streams.add({ ...file, name: t.router, subjects, retention: RetentionPolicy.Interest });
      for (const q of t.queues) await this.#jsm.consumers.add(t.router, consumer(q));
      return;
    }
    for (const q of t.queues) {
      const subjects = t.bindings.filter(([bound]) => bound === q).map(([, key]) => `${t.router}.${key}`);
      await this.#jsm.streams.add({ ...file, name: q, subjects, retention: RetentionPolicy.Workqueue });
      await this.#jsm.consumers.add(q, consumer(q));
    }
  }

  async remove(t: Topology): Promise<void> {
    const streams = t.kind === 'fanout' ? [t.router] : t.queues;
    for (const stream of streams) await this.#jsm.streams.delete(stream);
  }

  async publisher(t: Topology): Promise<Publisher> {
    const { nc, js } = await this.#js('bench-publisher');
    const prefix = `${t.router}.`;
    return {
      publish: async (key, body) => {
        await js.publish(prefix + key, body);
      },
      close: () => nc.close(),
    };
  }

  async consume(t: Topology, queue: string, prefetch: number, onMessage: OnMessage): Promise<Consumer> {
    const { nc, js } = await this.#js('bench-consumer');
    const { stream, durable } = placeOf(t, queue);
    const consumer = await js.consumers.get(stream, durable);
    const messages = await consumer.consume({
      max_messages: prefetch,
      callback: (m) => {
        onMessage(m.data);
        m.ack();
      },
    });
    return {
      close: async () => {
        await messages.close();
        await nc.close();
      },
    };
  }

  close(): Promise<void> {
    return this.#admin.close();
  }
}
