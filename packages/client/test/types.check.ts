// Type tests, run by `tsc` (the typecheck task of `npm test`), not by tap: the check fails if
// a line marked @ts-expect-error compiles, or if a documented type does not hold.
import {
  type Consumer,
  createClient,
  createRpcClient,
  type DeadLetter,
  type Delivery,
  type HatiClient,
  type HatiRpcClient,
  type HelloReply,
  type QueueInfo,
  type RouterInfo,
  type ScanReply,
  type StatsSnapshot,
} from '../src/index.js';

export function typeChecks(client: HatiClient): void {
  // @ts-expect-error: the storage type is 'memory' or 'hdd'
  void client.get('ram', 'k');
  // @ts-expect-error: ttl is a number
  void client.set('memory', 'k', 'v', { ttl: '10' });
  // @ts-expect-error: values are strings or bytes
  void client.set('memory', 'k', 42);
  // @ts-expect-error: GET takes a type and a key
  void client.call('GET', ['memory']);
  // @ts-expect-error: no such command
  void client.call('NOPE', []);
  const count: Promise<number> = client.count('hdd');
  const value: Promise<string | null> = client.get('hdd', 'k');
  const raw: Promise<Buffer | null> = client.call('GET', ['hdd', Buffer.from('k')]);
  const has: Promise<boolean> = client.call('HAS', ['memory', 'k']);
  const stats: Promise<StatsSnapshot> = client.stats();
  // @ts-expect-error: COUNT replies a number
  const wrong: Promise<string> = client.count('hdd');
  void [count, value, raw, has, stats, wrong];
}

export function optionTypes(client: HatiClient): void {
  // SET without a condition resolves with nothing; with one, whether it stored.
  const plain: Promise<void> = client.set('memory', 'k', 'v', { ttl: 10 });
  const stored: Promise<boolean> = client.set('memory', 'k', 'v', { condition: 'NX' });
  // @ts-expect-error: the condition is NX or XX
  void client.set('memory', 'k', 'v', { condition: 'YY' });
  // The table's options, typed in `call`: SET's NX|XX group is one optional slot.
  const viaCall: Promise<boolean> = client.call('SET', ['memory', 0, 'k', 'v', 'NX']);
  void client.call('SET', ['memory', 0, 'k', 'v']);
  // @ts-expect-error: NX and XX exclude each other
  void client.call('SET', ['memory', 0, 'k', 'v', 'NX', 'XX']);
  // @ts-expect-error: SET has no such option
  void client.call('SET', ['memory', 0, 'k', 'v', 'PX']);
  // SCAN's MATCH and COUNT, each with its value.
  const scan: Promise<ScanReply> = client.call('SCAN', ['memory', '0', 'MATCH', 'user:*', 'COUNT', 100]);
  void client.call('SCAN', ['hdd', 0, 'COUNT', 10]);
  // @ts-expect-error: MATCH needs its pattern
  void client.call('SCAN', ['memory', '0', 'MATCH']);
  // @ts-expect-error: the typed form names the storage type first: no TYPE option
  void client.call('SCAN', ['memory', '0', 'TYPE', 'hdd']);
  // HELLO: the protocol version, then its options; a map reply, typed.
  const hello: Promise<HelloReply> = client.call('HELLO', [3, 'SETNAME', 'worker-1']);
  void client.call('HELLO', []);
  void [plain, stored, viaCall, scan, hello];
}

export function repeatTypes(client: HatiClient): void {
  const values: Promise<Array<Buffer | null>> = client.call('MGET', ['memory', 'a', 'b', Buffer.from('c')]);
  // @ts-expect-error: MGET needs at least one key
  void client.call('MGET', ['memory']);
  void client.call('MSET', ['memory', 'a', '1', 'b', '2']);
  // @ts-expect-error: MSET needs at least one pair
  void client.call('MSET', ['memory']);
  void client.call('SUBSCRIBE', ['a', 'b']);
  // @ts-expect-error: SUBSCRIBE needs a channel
  void client.call('SUBSCRIBE', []);
  // UNSUBSCRIBE's channels are optional: none means all.
  void client.call('UNSUBSCRIBE', []);
  void values;
}

export function methodTypes(client: HatiClient, rpc: HatiRpcClient): void {
  const ttl: Promise<number> = client.ttl('memory', 'k');
  const expired: Promise<boolean> = rpc.expire('hdd', 'k', 1000);
  const page: Promise<ScanReply<string>> = client.scan('memory', '0', { match: 'user:*', count: 10 });
  const pageBytes: Promise<ScanReply<Buffer>> = rpc.scanBuffer('memory', 0);
  const iterator: AsyncIterable<string> = client.scanIterator('hdd', { match: 'a*' });
  const keys: Promise<string[]> = rpc.keys('memory', '*');
  const keysBytes: Promise<Buffer[]> = client.keysBuffer('memory', Buffer.from('*'));
  const incr: Promise<number> = client.incr('memory', 'n');
  const incrBy: Promise<number> = rpc.incrBy('memory', 'n', 2n ** 40n);
  const mget: Promise<Array<string | null>> = client.mget('memory', ['a', 'b']);
  const mgetBytes: Promise<Array<Buffer | null>> = rpc.mgetBuffer('memory', [Buffer.from('a')]);
  const mset: Promise<void> = client.mset('memory', { a: '1', b: Buffer.from([0]) });
  const msetPairs: Promise<void> = rpc.mset('hdd', [
    ['a', '1'],
    [Buffer.from([1]), '2'],
  ]);
  const info: Promise<string> = rpc.info('server');
  const ping: Promise<string> = rpc.ping();
  // @ts-expect-error: a delta is a number or a bigint
  void client.incrBy('memory', 'n', '5');
  // @ts-expect-error: ttl is a number of ms
  void client.expire('memory', 'k', '1s');
  void [ttl, expired, page, pageBytes, iterator, keys, keysBytes, incr, incrBy, mget, mgetBytes, mset, msetPairs];
  void [info, ping];
}

export function pushTypes(client: HatiClient, rpc: HatiRpcClient): void {
  const subscribed: Promise<void> = client.subscribe(['__keyspace@memory__:k'], (message, channel, pattern) => {
    const bytes: Buffer = message;
    const name: string = channel;
    const glob: string | undefined = pattern;
    void [bytes, name, glob];
  });
  void client.psubscribe('__keyevent@hdd__:*', () => {});
  void client.unsubscribe();
  void client.punsubscribe(['a*']);
  const stop: () => void = client.onPush((items) => void items);
  const protocol: 2 | 3 = client.protocol;
  // @ts-expect-error: a listener gets bytes, not a string
  void client.subscribe('c', (message: string) => void message);
  // @ts-expect-error: no pub/sub over JSON-RPC (no method in the table)
  void rpc.subscribe('c', () => {});
  // @ts-expect-error: nor QUIT
  void rpc.quit();
  void [subscribed, stop, protocol];
}

export function brokerTypes(client: HatiClient, rpc: HatiRpcClient): void {
  // PUBLISH's options come before its message (`optionsBeforeLast`), each optional, in table order.
  const reached: Promise<number> = client.call('PUBLISH', ['r', 'k', 'DELAY', 500, 'TTL', 1000, 'ID', 'x', 'hello']);
  void rpc.call('PUBLISH', ['r', 'k', Buffer.from([0])]);
  // @ts-expect-error: the options come before the message
  void client.call('PUBLISH', ['r', 'k', 'hello', 'DELAY', 500]);
  // @ts-expect-error: DELAY takes a number of ms
  void client.call('PUBLISH', ['r', 'k', 'DELAY', '500', 'hello']);
  // @ts-expect-error: a message is required
  void client.call('PUBLISH', ['r', 'k']);
  const fetched: Promise<Delivery[]> = client.call('FETCH', ['q', 10, 500]);
  const queue: Promise<QueueInfo> = rpc.getQueue('q');
  const router: Promise<RouterInfo> = client.call('GETROUTER', ['r']);
  const letters: Promise<DeadLetter[]> = rpc.deadLetters('q', 5);
  void client.call('NACK', ['q', '1', 'DROP']);
  // @ts-expect-error: REQUEUE and DROP exclude each other
  void client.call('NACK', ['q', '1', 'REQUEUE', 'DROP']);
  void client.call('CREATEQUEUE', ['q', 'hdd', 'ACKTIMEOUT', 1000, 'OVERFLOW', 'drop-head']);
  const acked: Promise<number> = client.ack('q', ['1', '2']);
  const nacked: Promise<number> = rpc.nack('q', '1', { drop: true });
  const touched: Promise<boolean> = client.touch('q', '1');
  const names: Promise<string[]> = rpc.listQueues('jobs.*');
  const published: Promise<number> = rpc.publish('r', 'k', Buffer.from([1]), { delayMs: 10, id: 'x' });
  const consumer: Promise<Consumer> = client.consume('q', { prefetch: 10, timeout: 1000 });
  // @ts-expect-error: no consume over JSON-RPC (CONSUME has no method)
  void rpc.consume('q');
  // @ts-expect-error: a router is direct, fanout or topic
  void client.createRouter('r', 'headers');
  // @ts-expect-error: overflow is reject or drop-head
  void client.createQueue('q', 'memory', { overflow: 'drop' });
  // @ts-expect-error: delayMs is a number of ms
  void client.publish('r', 'k', 'm', { delayMs: '5s' });
  void [reached, fetched, queue, router, letters, acked, nacked, touched, names, published, consumer];
}

export async function consumerTypes(consumer: Consumer): Promise<void> {
  for await (const message of consumer) {
    const bytes: Buffer = message.message;
    const count: number = message.deliveries;
    const acked: boolean = await message.ack();
    await message.nack({ drop: true });
    void [bytes, count, acked, message.death?.reason, message.queue];
  }
  const tag: string | undefined = consumer.tag;
  const cancelled: Promise<void> = consumer.cancel();
  void [tag, cancelled];
}

export const factories = [createClient, createRpcClient];

export function credentialTypes(): void {
  createClient({ port: 4242, user: 'app', password: 'pw', tls: { ca: 'PEM', servername: 'hati.internal' } });
  createClient({ host: 'hati.internal', password: 'pw', tls: true });
  createClient({ path: '/tmp/hati.sock', user: 'app', password: 'pw' });
  // @ts-expect-error: a UNIX socket has no TLS
  createClient({ path: '/tmp/hati.sock', tls: true });
  createRpcClient({
    url: 'https://hati.internal:6767/',
    token: 't',
    tls: { ca: Buffer.from('PEM'), rejectUnauthorized: true },
  });
  createRpcClient({ user: 'app', password: 'pw' });
  // @ts-expect-error: the JSON-RPC client's tls is { ca, cert, key, rejectUnauthorized }
  createRpcClient({ url: 'https://hati.internal:6767/', tls: true });
}
