// `kill -9` of a broker under load: publishers and consumers run against an hdd queue while the
// server is killed again and again. Afterwards every PUBLISH that was answered has been delivered
// (or is still in the queue), no ACKed message came back, and nothing was delivered that was never
// published.
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeCommand } from '@hati/test-helpers';
import t, { type Test } from 'tap';
import { type Address, Hati, RawClient, tempDir, within } from './common/hati.js';

const LOCAL = ['--tcp-host', '127.0.0.1', '--tcp-port', '0'];

/** What the clients saw, across every run of the server. */
class Ledger {
  readonly sent = new Set<string>();
  readonly answered = new Set<string>();
  readonly delivered = new Set<string>();
  readonly acked = new Set<string>();
  readonly violations: string[] = [];
  #next = 0;

  newMessage(): string {
    return `m${this.#next++}`;
  }

  /** A delivery as a consumer got it: it must have been sent, and not acknowledged before. */
  saw(message: string): void {
    if (!this.sent.has(message)) this.violations.push(`${message} was delivered but never published`);
    if (this.acked.has(message)) this.violations.push(`${message} came back after its ACK was answered`);
    this.delivered.add(message);
  }
}

/** Publishes with `window` PUBLISHes in flight on each connection. */
function publish(client: RawClient, ledger: Ledger, window: number): void {
  const inFlight: string[] = [];
  const send = () => {
    if (client.socket.destroyed || !client.socket.writable) return;
    const message = ledger.newMessage();
    ledger.sent.add(message);
    inFlight.push(message);
    client.write(encodeCommand(['PUBLISH', 'r', 'k', message]));
  };
  client.onReply = (reply) => {
    const message = inFlight.shift();
    if (reply === 1 && message !== undefined) ledger.answered.add(message);
    send();
  };
  for (let i = 0; i < window; i++) send();
}

/** FETCHes (waiting up to 100 ms) and ACKs each delivery with its own ACK, pipelined. */
function consume(client: RawClient, ledger: Ledger): void {
  // What each reply answers: a FETCH, or the ACK of a message.
  const pending: Array<string | null> = [];
  const fetch = () => {
    if (client.socket.destroyed || !client.socket.writable) return;
    pending.push(null);
    client.write(encodeCommand(['FETCH', 'q', '20', '100']));
  };
  client.onReply = (reply) => {
    const what = pending.shift();
    if (what === null) {
      const parts: Buffer[] = [];
      for (const delivery of reply as Buffer[][]) {
        const message = String(delivery[3]);
        ledger.saw(message);
        pending.push(message);
        parts.push(encodeCommand(['ACK', 'q', String(delivery[0])]));
      }
      if (parts.length > 0) client.write(Buffer.concat(parts));
      fetch();
    } else if (what !== undefined && reply === 1) {
      ledger.acked.add(what);
    }
  };
  fetch();
}

async function setUp(address: Address, t: Test): Promise<RawClient> {
  const admin = await RawClient.open(t, address);
  const replies = await admin.send([
    ['CREATEROUTER', 'r', 'direct'],
    ['CREATEQUEUE', 'q', 'hdd'],
    ['BIND', 'q', 'r', 'k'],
  ]);
  t.same(replies, ['OK', 'OK', 'OK'], 'the definitions are there (again)');
  return admin;
}

for (const [durability, kills] of [
  ['no', 3],
  ['always', 2],
] as const) {
  t.test(
    `hdd queue, --hdd-durability ${durability}: ${kills} × kill -9 under load lose nothing answered`,
    async (t) => {
      const dir = await tempDir(t);
      const args = [...LOCAL, '--hdd-durability', durability, '--data-dir', join(dir, 'data')];
      const ledger = new Ledger();
      for (let round = 0; round < kills; round++) {
        const hati = Hati.spawn(t, args);
        const address = await hati.tcp();
        (await setUp(address, t)).close();
        const clients = await Promise.all(Array.from({ length: 6 }, () => RawClient.open(t, address)));
        for (const client of clients.slice(0, 3)) publish(client, ledger, 16);
        for (const client of clients.slice(3)) consume(client, ledger);
        await delay(700);
        hati.child.kill('SIGKILL');
        t.same(await hati.waitExit(), { code: null, signal: 'SIGKILL' });
        await within(Promise.all(clients.map((client) => client.closed())), 5_000, 'every connection closed');
      }
      // The last run: take everything still in the queue, without acknowledging.
      const hati = Hati.spawn(t, args);
      const admin = await setUp(await hati.tcp(), t);
      const left = new Set<string>();
      for (;;) {
        const deliveries = (await admin.command('FETCH', 'q', '1000')) as Buffer[][];
        if (deliveries.length === 0) break;
        for (const delivery of deliveries) {
          const message = String(delivery[3]);
          ledger.saw(message);
          left.add(message);
        }
      }
      t.same(ledger.violations, [], 'nothing unpublished was delivered, no acknowledged message came back');
      const lost = [...ledger.answered].filter((message) => !ledger.delivered.has(message));
      t.same(lost, [], `every answered PUBLISH was delivered (${ledger.answered.size} answered)`);
      t.ok(ledger.answered.size > 100, `publishes were answered (${ledger.answered.size})`);
      t.ok(ledger.acked.size > 100, `acks were answered (${ledger.acked.size})`);
      t.comment(
        `${ledger.sent.size} sent, ${ledger.answered.size} answered, ${ledger.acked.size} acked, ${left.size} left after ${kills} kills`,
      );
      hati.child.kill('SIGTERM');
      t.same(await hati.waitExit(), { code: 0, signal: null });
    },
  );
}
