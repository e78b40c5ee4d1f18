// RabbitMQ with amqplib: an exchange of the router's kind, quorum queues (durable, confirmed after
// fsync: the peer of Hati's hdd queues under `always`), a confirm channel per publisher and a
// channel with a prefetch per consumer. Without `noDelay` amqplib leaves Nagle on and every
// confirm waits for it.
import { type Channel, type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import type { BrokerDriver, Consumer, OnMessage, Publisher, Topology } from '../broker-driver.js';

/**
 * A connection whose 'error' events (the broker stopping, a channel closed by it) are left to the
 * calls they reject: unheard, amqplib's emitter would throw them out of the harness.
 */
async function open(url: string): Promise<ChannelModel> {
  const conn = await connect(url, { noDelay: true });
  conn.on('error', () => {});
  return conn;
}

/** The same for a channel. */
function quiet<T extends Channel>(ch: T): T {
  ch.on('error', () => {});
  return ch;
}

export class RabbitMqDriver implements BrokerDriver {
  readonly label = 'RabbitMQ';
  readonly kinds = ['direct', 'fanout', 'topic'] as const;
  readonly #url: string;
  readonly #admin: ChannelModel;

  private constructor(url: string, admin: ChannelModel) {
    this.#url = url;
    this.#admin = admin;
  }

  static async connect(port: number): Promise<RabbitMqDriver> {
    const url = `amqp://guest:guest@127.0.0.1:${port}`;
    return new RabbitMqDriver(url, await open(url));
  }

  #connect(): Promise<ChannelModel> {
    return open(this.#url);
  }

  async declare(t: Topology): Promise<void> {
    const ch = quiet(await this.#admin.createChannel());
    try {
      await ch.assertExchange(t.router, t.kind, { durable: true });
      for (const q of t.queues) await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await Promise.all(t.bindings.map(([q, key]) => ch.bindQueue(q, t.router, key)));
    } finally {
      await ch.close();
    }
  }

  async remove(t: Topology): Promise<void> {
    const ch = quiet(await this.#admin.createChannel());
    try {
      for (const q of t.queues) await ch.deleteQueue(q);
      await ch.deleteExchange(t.router);
    } finally {
      await ch.close();
    }
  }

  async publisher(t: Topology): Promise<Publisher> {
    const conn = await this.#connect();
    const ch: ConfirmChannel = quiet(await conn.createConfirmChannel());
    const router = t.router;
    return {
      publish: (key, body) =>
        new Promise((resolve, reject) => {
          ch.publish(router, key, body, { persistent: true }, (err) => (err ? reject(err) : resolve()));
        }),
      close: () => conn.close(),
    };
  }

  async consume(_t: Topology, queue: string, prefetch: number, onMessage: OnMessage): Promise<Consumer> {
    const conn = await this.#connect();
    const ch = quiet(await conn.createChannel());
    await ch.prefetch(prefetch);
    const { consumerTag } = await ch.consume(queue, (msg) => {
      if (msg === null) return; // cancelled by the server
      onMessage(msg.content);
      ch.ack(msg);
    });
    return {
      close: async () => {
        await ch.cancel(consumerTag);
        await conn.close();
      },
    };
  }

  close(): Promise<void> {
    return this.#admin.close();
  }
}
