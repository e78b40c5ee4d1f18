// kill -9 in the middle of publishing and acknowledging (a child process on the dist build; run
// `pnpm run build` first): every PUBLISH that was answered is there or was acknowledged, no
// answered ACK comes back, nothing never published appears, and deliveries counted before the
// kill still count (a MAXDELIVERIES 1 message delivered before it is dead-lettered).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { tempDir } from '@hati/test-helpers';
import t, { type Test } from 'tap';
import { Broker, type Delivery } from '../src/index.js';

const worker = fileURLToPath(new URL('./fixtures/crash-worker.mjs', import.meta.url));
const ROUNDS = 2;

interface Printed {
  /** Lines by their first word: `p` → the numbers printed with it. */
  [kind: string]: Set<number>;
}

/** Runs the worker until `target` publishes were answered (or 5 s passed), then SIGKILLs it. */
async function runAndKill(
  dataDir: string,
  durability: string,
  target: number,
): Promise<{ printed: Printed; signal: string | null }> {
  const child = spawn(process.execPath, [worker, dataDir, durability], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  let published = 0;
  const kill = () => child.kill('SIGKILL');
  const timer = setTimeout(kill, 5000);
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    published += chunk.split('\np ').length - 1;
    if (published >= target) kill();
  });
  const [, signal] = (await once(child, 'close')) as [number | null, string | null];
  clearTimeout(timer);
  // Only whole lines: the last one may have been cut by the kill.
  const lines = text.split('\n').slice(0, -1);
  const printed: Printed = { s: new Set(), p: new Set(), f: new Set(), t: new Set(), a: new Set(), l: new Set() };
  for (const line of lines) {
    const [kind, n] = line.split(' ');
    if (n !== undefined) printed[kind as string]?.add(Number(n));
  }
  return { printed, signal };
}

/** Every message of a queue, fetched once (their leases end when the broker closes). */
async function drain(broker: Broker, queue: string): Promise<Delivery[]> {
  const session = broker.openSession();
  const out: Delivery[] = [];
  for (
    let got = await broker.fetch(session, queue, 1000);
    got.length > 0;
    got = await broker.fetch(session, queue, 1000)
  )
    out.push(...got);
  return out;
}

const numbersOf = (deliveries: Delivery[]) => deliveries.map((d) => Number(d.message.toString().split(' ')[0]));
const missing = (expected: Iterable<number>, found: Set<number>) =>
  [...expected].filter((n) => !found.has(n)).slice(0, 10);

async function check(t: Test, dataDir: string, printed: Printed): Promise<void> {
  const broker = await Broker.open({ dataDir, timers: false });
  try {
    await broker.settled();
    const q = await drain(broker, 'q');
    const inQ = numbersOf(q);
    const present = new Set(inQ);
    t.equal(present.size, inQ.length, `q holds each message once (${inQ.length})`);
    const published = printed.p as Set<number>;
    const acking = printed.t as Set<number>;
    t.same(
      missing(
        [...published].filter((n) => !acking.has(n)),
        present,
      ),
      [],
      `every answered PUBLISH not being acknowledged is in q (${published.size} answered)`,
    );
    t.same(
      [...(printed.a as Set<number>)].filter((n) => present.has(n)),
      [],
      `no answered ACK came back (${printed.a?.size} answered)`,
    );
    t.same(missing(present, printed.s as Set<number>), [], 'nothing that was never published appeared');
    const fetchedBefore = [...(printed.f as Set<number>)].filter((n) => !acking.has(n));
    const counted = new Map(q.map((d, i) => [inQ[i] as number, d.deliveries]));
    t.same(
      fetchedBefore.filter((n) => (counted.get(n) ?? 0) < 2),
      [],
      `the ${fetchedBefore.length} deliveries made before the kill still count`,
    );
    // `limited` allows one delivery: what was delivered before the kill is dead now.
    const dead = await broker.deadLetters('limited', 1000);
    const deadNumbers = new Set(numbersOf(dead));
    const ready = new Set(numbersOf(await drain(broker, 'limited')));
    t.same(
      missing(printed.l as Set<number>, deadNumbers),
      [],
      `the ${printed.l?.size} delivered from limited are dead-lettered`,
    );
    t.ok(
      dead.every((d) => d.death.reason === 'delivery-limit' && d.death.deliveries === 1),
      'as delivery-limit, after one delivery',
    );
    t.same(
      missing(published, new Set([...ready, ...deadNumbers])),
      [],
      'every answered PUBLISH is in limited, ready or dead',
    );
  } finally {
    await broker.close();
  }
}

for (const durability of ['no', 'everysec', 'always'] as const) {
  t.test(`durability ${durability}: a killed broker keeps what it answered`, async (t) => {
    for (let round = 0; round < ROUNDS; round++) {
      const dataDir = await tempDir(t, 'hati-broker-crash-');
      const target = 300 + Math.floor(Math.random() * 1200);
      const { printed, signal } = await runAndKill(dataDir, durability, target);
      t.equal(signal, 'SIGKILL', 'the worker was killed, not closed');
      t.ok(
        (printed.p?.size ?? 0) > 0 && (printed.a?.size ?? 0) > 0,
        `it published (${printed.p?.size}) and acknowledged (${printed.a?.size})`,
      );
      await check(t, dataDir, printed);
    }
  });
}
