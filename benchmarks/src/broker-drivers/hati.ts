// Hati's broker over RESP with @hati/client (RESP3, every call of a tick in one write): routers
// and queues as they are, hdd queues, deliveries of CONSUME as push frames.
import { createClient, type HatiClient, type Reply } from '@hati/client';
import type { BrokerDriver, Consumer, OnMessage, Publisher, Topology } from '../broker-driver.js';

function connect(port: number, name: string): HatiClient {
  return createClient({ host: '127.0.0.1', port, reconnect: false, name });
}

/** A reply as one line: an error as `-CODE message`, bulk strings as text. */
function show(reply: Reply | Reply[]): string {
  if (reply instanceof Error) return `-${(reply as Error & { code?: string }).code ?? 'ERR'} ${reply.message}`;
  // JSON.stringify hands a Buffer over as { type: 'Buffer', data }.
  const text = (_: string, v: unknown) => {
    const bytes = v as { type?: unknown; data?: number[] } | null;
    return bytes?.type === 'Buffer' && Array.isArray(bytes.data) ? Buffer.from(bytes.data).toString('utf8') : v;
  };
  return JSON.stringify(reply, text).slice(0, 200);
}

/** Sends a command and throws unless `ok(reply)`. */
async function expect(
  client: HatiClient,
  args: ReadonlyArray<string | Buffer>,
  ok: (reply: Reply) => boolean,
): Promise<Reply> {
  const reply = await client.sendCommand(args);
  if (!ok(reply)) throw new Error(`Hati: ${args.slice(0, 3).join(' ')} got ${show(reply)}`);
  return reply;
}

const isOk = (reply: Reply) => reply === 'OK';
const isCount = (reply: Reply) => typeof reply === 'number';

class HatiConsumer implements Consumer {
  readonly #client: HatiClient;
  readonly #queue: string;
  readonly #tag: string;
  /** Ids delivered in this tick, acknowledged together by one ACK. */
  #ids: Buffer[] = [];
  #failure: Error | undefined;

  constructor(client: HatiClient, queue: string, tag: string) {
    this.#client = client;
    this.#queue = queue;
    this.#tag = tag;
  }

  static async start(port: number, queue: string, prefetch: number, onMessage: OnMessage): Promise<HatiConsumer> {
    const client = connect(port, 'bench-consumer');
    let consumer: HatiConsumer | undefined;
    // Deliveries may come before CONSUME's reply has been read: they wait for the tag.
    const early: Reply[][] = [];
    client.onPush((items) => {
      if (consumer === undefined) early.push(items);
      else consumer.#deliver(items, onMessage);
    });
    const tag = await expect(client, ['CONSUME', queue, String(prefetch)], Buffer.isBuffer);
    consumer = new HatiConsumer(client, queue, (tag as Buffer).toString('utf8'));
    for (const items of early.splice(0)) consumer.#deliver(items, onMessage);
    return consumer;
  }

  /** A push `["delivery", tag, queue, [id, deliveries, routingKey, message]]` (docs/protocol.md, Broker). */
  #deliver(items: Reply[], onMessage: OnMessage): void {
    if (String(items[0]) !== 'delivery' || String(items[1]) !== this.#tag) return;
    const delivery = Array.isArray(items[3]) ? items[3] : [];
    const id = delivery[0];
    const message = delivery[3];
    if (!Buffer.isBuffer(id) || !Buffer.isBuffer(message)) {
      this.#failure ??= new Error(`Hati: a delivery push that is not [.., id, .., .., message]: ${show(items)}`);
      return;
    }
    onMessage(message);
    if (this.#ids.length === 0) queueMicrotask(() => this.#ack());
    this.#ids.push(id);
  }

  #ack(): void {
    const ids = this.#ids;
    this.#ids = [];
    this.#client.sendCommand(['ACK', this.#queue, ...ids]).then(
      (reply) => {
        if (reply !== ids.length) this.#failure ??= new Error(`Hati: ACK of ${ids.length} ids got ${show(reply)}`);
      },
      (err: Error) => {
        this.#failure ??= err;
      },
    );
  }

  async close(): Promise<void> {
    await expect(this.#client, ['CANCEL', this.#tag], isCount).finally(() => this.#client.close());
    if (this.#failure !== undefined) throw this.#failure;
  }
}

export class HatiDriver implements BrokerDriver {
  readonly label = 'Hati';
  readonly kinds = ['direct', 'fanout', 'topic'] as const;
  readonly #port: number;
  readonly #admin: HatiClient;

  private constructor(port: number, admin: HatiClient) {
    this.#port = port;
    this.#admin = admin;
  }

  static connect(port: number): HatiDriver {
    return new HatiDriver(port, connect(port, 'bench-admin'));
  }

  /**
   * Undefined when the server has the broker commands; else why not (the error reply of a
   * CREATEROUTER, UNKNOWN_COMMAND while the broker is not there).
   */
  async missingBroker(): Promise<string | undefined> {
    const probe = `bench-probe-${process.pid}`;
    const reply = await this.#admin.sendCommand(['CREATEROUTER', probe, 'direct']);
    if (reply !== 'OK') return `CREATEROUTER got ${show(reply)}`;
    await expect(this.#admin, ['DELETEROUTER', probe], isCount);
    return undefined;
  }

  async declare(t: Topology): Promise<void> {
    // Pipelined: every call of this tick goes out in one write.
    await Promise.all([
      expect(this.#admin, ['CREATEROUTER', t.router, t.kind], isOk),
      ...t.queues.map((q) => expect(this.#admin, ['CREATEQUEUE', q, 'hdd'], isOk)),
      ...t.bindings.map(([q, key]) => expect(this.#admin, ['BIND', q, t.router, key], isOk)),
    ]);
  }

  async remove(t: Topology): Promise<void> {
    await Promise.all([
      ...t.queues.map((q) => expect(this.#admin, ['DELETEQUEUE', q], isCount)),
      expect(this.#admin, ['DELETEROUTER', t.router], isCount),
    ]);
  }

  async publisher(t: Topology): Promise<Publisher> {
    const client = connect(this.#port, 'bench-publisher');
    const router = t.router;
    // The reply counts the queues the message reached: none would be a routing mistake.
    const reached = (reply: Reply) => typeof reply === 'number' && reply > 0;
    return {
      publish: async (key, body) => {
        await expect(client, ['PUBLISH', router, key, body], reached);
      },
      close: () => client.close(),
    };
  }

  consume(_t: Topology, queue: string, prefetch: number, onMessage: OnMessage): Promise<Consumer> {
    return HatiConsumer.start(this.#port, queue, prefetch, onMessage);
  }

  close(): Promise<void> {
    return this.#admin.close();
  }
}
