// Redis Streams with ioredis: a router is one stream, each of its queues a consumer group
// (XADD, XREADGROUP ... COUNT <prefetch> BLOCK, XACK). A fan-out router is then what a stream
// is; a direct router has one queue. Redis does not route by key, so no topic rows. Durability
// comes from the server's AOF (`appendfsync always` or `everysec`): XADD answers after it.
import { Redis } from 'ioredis';
import type { BrokerDriver, Consumer, OnMessage, Publisher, Topology } from '../broker-driver.js';

/** How long a consumer's XREADGROUP waits for new entries, ms: bounds how long `close` takes. */
const BLOCK_MS = 100;

type Entry = [id: Buffer, fields: Buffer[]];
type ReadReply = Array<[stream: Buffer, entries: Entry[]]> | null;

/** A connection that does not reconnect: a lost server fails the calls, and the run, at once. */
function connect(port: number, name: string): Redis {
  const redis = new Redis({ host: '127.0.0.1', port, connectionName: name, retryStrategy: () => null });
  // Errors reject the calls in flight; unheard, ioredis would also print each one.
  redis.on('error', () => {});
  return redis;
}

export class RedisStreamsDriver implements BrokerDriver {
  readonly label = 'Redis';
  readonly kinds = ['direct', 'fanout'] as const;
  readonly #port: number;
  readonly #admin: Redis;

  constructor(port: number) {
    this.#port = port;
    this.#admin = connect(port, 'bench-admin');
  }

  async declare(t: Topology): Promise<void> {
    if (t.kind === 'direct' && t.queues.length !== 1) throw new Error('Redis Streams: a direct router has one queue');
    for (const q of t.queues) await this.#admin.call('XGROUP', 'CREATE', t.router, q, '$', 'MKSTREAM');
  }

  async remove(t: Topology): Promise<void> {
    await this.#admin.del(t.router);
  }

  async publisher(t: Topology): Promise<Publisher> {
    const redis = connect(this.#port, 'bench-publisher');
    const stream = t.router;
    return {
      publish: async (_key, body) => {
        await redis.call('XADD', stream, '*', 'm', body);
      },
      close: async () => {
        await redis.quit();
      },
    };
  }

  async consume(t: Topology, queue: string, prefetch: number, onMessage: OnMessage): Promise<Consumer> {
    const redis = connect(this.#port, 'bench-consumer');
    const stream = t.router;
    const name = `c${Math.random().toString(36).slice(2)}`;
    const read = ['GROUP', queue, name, 'COUNT', String(prefetch), 'BLOCK', String(BLOCK_MS), 'STREAMS', stream, '>'];
    let stopped = false;
    let failure: Error | undefined;
    const loop = async () => {
      while (!stopped) {
        const reply = (await redis.callBuffer('XREADGROUP', ...read)) as ReadReply;
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) continue;
        for (const [, fields] of entries) onMessage(fields[1] as Buffer);
        // Written ahead of the next XREADGROUP on the same connection, so it is not held up by its BLOCK.
        redis.call('XACK', stream, queue, ...entries.map(([id]) => id)).catch((err: Error) => {
          failure ??= err;
        });
      }
    };
    const running = loop().catch((err: Error) => {
      failure ??= err;
    });
    return {
      close: async () => {
        stopped = true;
        await running;
        await redis.quit();
        if (failure !== undefined) throw failure;
      },
    };
  }

  async close(): Promise<void> {
    await this.#admin.quit();
  }
}
