// One queue against a plain model of its semantics, over random runs of PUBLISH, FETCH, ACK,
// NACK (requeue and drop), TOUCH, sessions closing, time passing (leases running out) and, for
// hdd queues, restarts: delivery order, delivery counts, counters and dead letters must agree.
import { join } from 'node:path';
import { holds, tempDir } from '@hati/test-helpers';
import fc from 'fast-check';
import t from 'tap';
import { Broker, type BrokerSession, type QueueType } from '../src/index.js';
import { fakeClock, queueTypes } from './common/harness.js';

const ACK_TIMEOUT = 1000;
const MAX_DELIVERIES = 3;

type Op =
  | { kind: 'publish' }
  | { kind: 'fetch'; session: number; count: number }
  | { kind: 'ack'; picks: number[] }
  | { kind: 'nack'; pick: number; drop: boolean }
  | { kind: 'touch'; pick: number }
  | { kind: 'close'; session: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'restart' };

interface Entry {
  seq: number;
  text: string;
  deliveries: number;
  state: 'waiting' | 'returned' | 'leased';
  holder: number;
  until: number;
}

interface Dead {
  text: string;
  reason: string;
  deliveries: number;
}

/** What the queue should do, written as plainly as possible. */
class Model {
  readonly entries = new Map<number, Entry>();
  readonly dead: Dead[] = [];
  nextSeq = 1;
  now = 0;
  counters = { published: 0, delivered: 0, redelivered: 0, acked: 0, deadLettered: 0 };

  publish(): string {
    const seq = this.nextSeq++;
    const text = `m${seq}`;
    this.entries.set(seq, { seq, text, deliveries: 0, state: 'waiting', holder: 0, until: 0 });
    this.counters.published++;
    return text;
  }

  /** Given back first, oldest first; then waiting ones in order. */
  fetch(holder: number, count: number): [string, string, number][] {
    const bySeq = [...this.entries.values()].sort((a, b) => a.seq - b.seq);
    const order = [...bySeq.filter((e) => e.state === 'returned'), ...bySeq.filter((e) => e.state === 'waiting')];
    return order.slice(0, count).map((e) => {
      e.state = 'leased';
      e.holder = holder;
      e.until = this.now + ACK_TIMEOUT;
      e.deliveries++;
      this.counters.delivered++;
      if (e.deliveries > 1) this.counters.redelivered++;
      return [String(e.seq), e.text, e.deliveries];
    });
  }

  leased(id: string): Entry | undefined {
    const e = this.entries.get(Number(id));
    return e?.state === 'leased' && String(e.seq) === id ? e : undefined;
  }

  ack(ids: string[]): number {
    let n = 0;
    for (const id of ids) {
      const e = this.leased(id);
      if (e === undefined) continue;
      this.entries.delete(e.seq);
      this.counters.acked++;
      n++;
    }
    return n;
  }

  nack(id: string, drop: boolean): number {
    const e = this.leased(id);
    if (e === undefined) return 0;
    if (drop) this.kill(e, 'rejected');
    else this.release(e);
    return 1;
  }

  touch(id: string): boolean {
    const e = this.leased(id);
    if (e !== undefined) e.until = this.now + ACK_TIMEOUT;
    return e !== undefined;
  }

  close(holder: number): void {
    for (const e of [...this.entries.values()]) if (e.state === 'leased' && e.holder === holder) this.release(e);
  }

  advance(ms: number): void {
    this.now += ms;
    for (const e of [...this.entries.values()]) if (e.state === 'leased' && e.until <= this.now) this.release(e);
  }

  /** Counters start again; leases end; a message out of deliveries is dead-lettered. */
  restart(): void {
    this.counters = { published: 0, delivered: 0, redelivered: 0, acked: 0, deadLettered: 0 };
    for (const e of [...this.entries.values()].sort((a, b) => a.seq - b.seq)) {
      if (e.deliveries >= MAX_DELIVERIES) this.kill(e, 'delivery-limit');
      else e.state = 'waiting';
    }
  }

  release(e: Entry): void {
    if (e.deliveries >= MAX_DELIVERIES) this.kill(e, 'delivery-limit');
    else e.state = 'returned';
  }

  kill(e: Entry, reason: string): void {
    this.entries.delete(e.seq);
    this.dead.push({ text: e.text, reason, deliveries: e.deliveries });
    this.counters.deadLettered++;
  }

  count(state: Entry['state']): number {
    return [...this.entries.values()].filter((e) => e.state === state).length;
  }
}

function check(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`);
}

const sortedDead = (dead: Dead[]) => dead.map((d) => JSON.stringify(d)).sort();

function opsFor(restarts: boolean): fc.Arbitrary<Op[]> {
  const pick = fc.nat({ max: 40 });
  const op: fc.WeightedArbitrary<Op>[] = [
    { weight: 4, arbitrary: fc.constant<Op>({ kind: 'publish' }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('fetch' as const),
        session: fc.nat({ max: 1 }),
        count: fc.integer({ min: 1, max: 4 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('ack' as const),
        picks: fc.array(pick, { minLength: 1, maxLength: 3 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('nack' as const), pick, drop: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('touch' as const), pick }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const), session: fc.nat({ max: 1 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(0, 400, 999, 1000, 1500) }),
    },
  ];
  if (restarts) op.push({ weight: 1, arbitrary: fc.constant<Op>({ kind: 'restart' }) });
  return fc.array(fc.oneof(...op), { minLength: 1, maxLength: 40 });
}

async function runOps(type: QueueType, root: string, run: number, ops: Op[]): Promise<void> {
  const clock = fakeClock();
  const options = {
    clock,
    timers: false,
    durability: 'no' as const,
    // A cache for a few payloads only: the rest are read from disk when delivered or dead-lettered.
    hddCacheBytes: 12,
    dataDir: type === 'hdd' ? join(root, `run-${run}`) : undefined,
  };
  let broker = await Broker.open(options);
  try {
    await broker.createRouter('r', 'direct');
    await broker.createQueue('q', type, { ackTimeoutMs: ACK_TIMEOUT, maxDeliveries: MAX_DELIVERIES });
    await broker.bind('q', 'r', 'k');
    const model = new Model();
    model.now = clock.now;
    // Session slots: the broker's session, and the model's token for it.
    let sessions: BrokerSession[] = [broker.openSession(), broker.openSession()];
    let tokens = [1, 2];
    let nextToken = 3;
    const ids: string[] = ['0', 'junk'];
    // Small picks (fast-check favours them) name the latest deliveries; larger ones older, stale or junk ids.
    const idOf = (pick: number) => ids[ids.length - 1 - (pick % ids.length)] as string;
    for (const [step, op] of ops.entries()) {
      const at = `step ${step} (${JSON.stringify(op)})`;
      switch (op.kind) {
        case 'publish':
          check(await broker.publish('r', 'k', model.publish()), 1, at);
          break;
        case 'fetch': {
          const got = await broker.fetch(sessions[op.session] as BrokerSession, 'q', op.count);
          const seen = got.map((d) => [d.id, d.message.toString(), d.deliveries]);
          check(seen, model.fetch(tokens[op.session] as number, op.count), at);
          for (const d of got) ids.push(d.id);
          break;
        }
        case 'ack': {
          const picked = op.picks.map(idOf);
          check(await broker.ack('q', picked), model.ack(picked), at);
          break;
        }
        case 'nack':
          check(
            await broker.nack('q', idOf(op.pick), op.drop ? 'drop' : 'requeue'),
            model.nack(idOf(op.pick), op.drop),
            at,
          );
          break;
        case 'touch':
          check(broker.touch('q', idOf(op.pick)), model.touch(idOf(op.pick)), at);
          break;
        case 'close':
          broker.closeSession(sessions[op.session] as BrokerSession);
          model.close(tokens[op.session] as number);
          sessions[op.session] = broker.openSession();
          tokens[op.session] = nextToken++;
          break;
        case 'advance':
          clock.now += op.ms;
          broker.tick();
          model.advance(op.ms);
          break;
        case 'restart':
          await broker.close();
          broker = await Broker.open(options);
          sessions = [broker.openSession(), broker.openSession()];
          tokens = [nextToken++, nextToken++];
          model.restart();
          break;
      }
      await broker.settled();
      const info = broker.getQueue('q');
      check(
        [info.ready, info.leased, info.dead, info.delayed],
        [model.count('waiting') + model.count('returned'), model.count('leased'), model.dead.length, 0],
        `${at}: ready, leased, dead, delayed`,
      );
      check(
        [info.published, info.delivered, info.redelivered, info.acked, info.deadLettered],
        Object.values(model.counters),
        `${at}: counters`,
      );
    }
    const dead = await broker.deadLetters('q', 1000);
    check(
      sortedDead(
        dead.map((d) => ({ text: d.message.toString(), reason: d.death.reason, deliveries: d.death.deliveries })),
      ),
      sortedDead(model.dead),
      'dead letters',
    );
  } finally {
    await broker.close();
  }
}

for (const { type, supports } of queueTypes) {
  t.test(`${type}: a queue behaves as its model`, async (t) => {
    const root = await tempDir(t, 'hati-broker-model-');
    let run = 0;
    await holds(
      t,
      fc.asyncProperty(opsFor(supports.persistence), async (ops) => {
        await runOps(type, root, run++, ops);
      }),
      supports.persistence ? 200 : 300,
      `${type} queue and model agree`,
    );
  });
}
