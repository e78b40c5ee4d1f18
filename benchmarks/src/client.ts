// The client benchmark: @hati/client against `hati start` next to ioredis against redis-server,
// one client each, over TCP on 127.0.0.1. Rows: SET and GET pipelined (every call issued before
// any is awaited) and SET and GET awaited one by one. Every reply is checked. Each Redis row is
// followed at once by the matching Hati row. Prints a table with the targets and writes
// results/client.json (results/client.quick.json with BENCH_QUICK=1).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type HatiClient } from '@hati/client';
import { Redis } from 'ioredis';
import { clientConfig as cfg } from './client-config.js';
import {
  assertAlive,
  ensureRedisTools,
  type Hati,
  repoRoot,
  type Started,
  startHati,
  startRedis,
  stopHati,
  stopProcess,
  toolVersion,
} from './procs.js';
import {
  finish,
  gitInfo,
  loadAtStart,
  loadedMachine,
  median,
  packageVersion,
  type Row,
  row,
  table,
  valueRow,
} from './report.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

type Op = 'SET' | 'GET';
type Mode = 'pipelined' | 'awaited';

/** One side of the comparison: a client library against its server. */
interface Side {
  /** Row prefix: `ioredis` or `Hati`. */
  name: string;
  server: Started;
  /** The call of a row; `pipelined` picks the client (ioredis: the auto-pipelining one). */
  call: (op: Op, mode: Mode, key: string) => Promise<unknown>;
  /** What every SET resolves with. */
  setReply: unknown;
  flush: () => Promise<void>;
  count: () => Promise<number>;
}

interface Run {
  row: string;
  round: number;
  calls: number;
  ms: number;
  opsPerSec: number;
}

const runs: Run[] = [];

/** Rejects when `promise` has not settled within the row timeout. */
async function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${cfg.rowTimeoutMs} ms`)), cfg.rowTimeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Issues `n` calls without awaiting any, then awaits them all. */
async function pipelined(
  call: (key: string) => Promise<unknown>,
  keys: readonly string[],
  n: number,
  what: string,
): Promise<{ ms: number; results: unknown[] }> {
  const promises: Promise<unknown>[] = new Array(n);
  const start = performance.now();
  for (let i = 0; i < n; i++) promises[i] = call(keys[i] as string);
  const results = await bounded(Promise.all(promises), what);
  return { ms: performance.now() - start, results };
}

/** Makes `n` calls, each awaited before the next. */
async function awaited(
  call: (key: string) => Promise<unknown>,
  keys: readonly string[],
  n: number,
  what: string,
): Promise<{ ms: number; results: unknown[] }> {
  const results: unknown[] = new Array(n);
  const loop = async () => {
    for (let i = 0; i < n; i++) results[i] = await call(keys[i % keys.length] as string);
  };
  const start = performance.now();
  await bounded(loop(), what);
  return { ms: performance.now() - start, results };
}

/** Throws unless every result is `want`. */
function verify(results: readonly unknown[], want: unknown, what: string): void {
  const bad = results.findIndex((r) => r !== want);
  if (bad !== -1) {
    throw new Error(`${what}: call ${bad} resolved with ${JSON.stringify(results[bad])}, want ${JSON.stringify(want)}`);
  }
}

/** Runs one row of one side, checks every reply, and returns its time and ops/s. */
async function measure(
  side: Side,
  op: Op,
  mode: Mode,
  keys: readonly string[],
  n: number,
): Promise<{ ms: number; opsPerSec: number }> {
  assertAlive(side.server);
  const name = `${side.name}_${op}_${mode}`;
  const call = (key: string) => side.call(op, mode, key);
  const { ms, results } = await (mode === 'pipelined' ? pipelined : awaited)(call, keys, n, name);
  assertAlive(side.server);
  verify(results, op === 'SET' ? side.setReply : cfg.value, name);
  return { ms, opsPerSec: (n / ms) * 1000 };
}

/** Closes a client, waiting at most `ms` for it. */
async function closeWithin(close: () => Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    close().catch(() => undefined),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

const ROWS: ReadonlyArray<[Op, Mode]> = [
  ['SET', 'pipelined'],
  ['GET', 'pipelined'],
  ['SET', 'awaited'],
  ['GET', 'awaited'],
];

async function benchRows(redisSide: Side, hatiSide: Side, rows: Row[]): Promise<void> {
  const sides = [redisSide, hatiSide];
  const keys = Array.from({ length: cfg.pipelined }, (_, i) => `key:${i}`);

  log(
    `warm-up (not measured): ${cfg.warmup.pipelined} pipelined and ${cfg.warmup.sequential} awaited calls of SET and GET per client`,
  );
  for (const side of sides) {
    for (const [op, mode] of ROWS) {
      const n = mode === 'pipelined' ? cfg.warmup.pipelined : cfg.warmup.sequential;
      await measure(side, op, mode, keys, Math.min(n, keys.length));
    }
  }

  const perRound = new Map<string, number[]>();
  for (let round = 1; round <= cfg.rounds; round++) {
    log(`round ${round} of ${cfg.rounds}:`);
    // Every round's SET pipelined row adds new keys to an empty store, in both servers.
    for (const side of sides) {
      await side.flush();
      const count = await side.count();
      if (count !== 0) throw new Error(`${side.name}: ${count} keys after the flush, want 0`);
    }
    for (const [op, mode] of ROWS) {
      const n = mode === 'pipelined' ? cfg.pipelined : cfg.sequential;
      for (const side of sides) {
        const name = `${side.name}_${op}_${mode}`;
        const { ms, opsPerSec } = await measure(side, op, mode, keys, n);
        const list = perRound.get(name) ?? [];
        list.push(opsPerSec);
        perRound.set(name, list);
        runs.push({ row: name, round, calls: n, ms: Math.round(ms * 1000) / 1000, opsPerSec: Math.round(opsPerSec) });
        log(
          `  ${name.padEnd(24)} ${Math.round(opsPerSec).toLocaleString('en-US').padStart(9)} ops/s  (${n} calls in ${ms.toFixed(0)} ms)`,
        );
        if (op === 'SET' && mode === 'pipelined') {
          const count = await side.count();
          if (count !== cfg.pipelined)
            throw new Error(`${side.name}: ${count} keys after ${name}, want ${cfg.pipelined}`);
        }
      }
    }
  }

  for (const [op, mode] of ROWS) {
    const n = mode === 'pipelined' ? cfg.pipelined : cfg.sequential;
    const medians = sides.map((side) => {
      const name = `${side.name}_${op}_${mode}`;
      const values = perRound.get(name) ?? [];
      const note = `median of ${values.length} rounds of ${n} calls: ${values.map((v) => Math.round(v)).join(', ')} ops/s`;
      const opsPerSec = median(values);
      rows.push(row(name, { nsPerOp: null, opsPerSec, ops: n * values.length }, null, note));
      return opsPerSec;
    });
    const [redisOps, hatiOps] = medians as [number, number];
    rows.push(
      valueRow(`Hati/ioredis_${op}_${mode}`, hatiOps / redisOps, 'ratio', { metric: 'value', op: '>=', limit: 1 }),
    );
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  log(`client benchmark${cfg.quick ? ' (BENCH_QUICK: smoke run, numbers not comparable)' : ''}`);
  ensureRedisTools(log, ['redis-server']);
  const load = await loadAtStart(log);

  const rows: Row[] = [];
  const stops: string[] = [];
  const clientErrors: string[] = [];
  let redis: Started | undefined;
  let hati: Hati | undefined;
  let hatiClient: HatiClient | undefined;
  const redisClients: Redis[] = [];
  try {
    const r = await startRedis();
    redis = r;
    const h = await startHati({ durability: 'no', tcp: true, rpc: false });
    hati = h;
    const hatiPort = h.tcpPort as number;
    log(`redis-server on 127.0.0.1:${r.port}, hati (durability no) on 127.0.0.1:${hatiPort}`);

    // ioredis with its defaults for the awaited rows; with its automatic pipelining for the others.
    const plain = new Redis({ host: '127.0.0.1', port: r.port });
    redisClients.push(plain);
    const auto = new Redis({ host: '127.0.0.1', port: r.port, enableAutoPipelining: true });
    redisClients.push(auto);
    for (const client of redisClients) {
      client.on('error', (err: Error) => clientErrors.push(`ioredis: ${err.message}`));
    }
    const client = createClient({ host: '127.0.0.1', port: hatiPort });
    hatiClient = client;
    client.on('error', (err) => clientErrors.push(`@hati/client: ${err.message}`));
    for (const [name, ping] of [
      ['ioredis', () => plain.ping()],
      ['ioredis (auto-pipelining)', () => auto.ping()],
      ['@hati/client', () => client.ping()],
    ] as const) {
      const pong = await bounded(ping(), `${name} PING`);
      if (pong !== 'PONG') throw new Error(`${name}: PING got ${JSON.stringify(pong)}`);
    }

    const value = cfg.value;
    const redisSide: Side = {
      name: 'ioredis',
      server: r,
      call: (op, mode, key) => {
        const c = mode === 'pipelined' ? auto : plain;
        return op === 'SET' ? c.set(key, value) : c.get(key);
      },
      setReply: 'OK',
      flush: async () => {
        await plain.flushdb();
      },
      count: () => plain.dbsize(),
    };
    const hatiSide: Side = {
      name: 'Hati',
      server: h,
      call: (op, _mode, key) => (op === 'SET' ? client.set('memory', key, value) : client.get('memory', key)),
      setReply: undefined,
      flush: () => client.flushAll('memory'),
      count: () => client.count('memory'),
    };
    await benchRows(redisSide, hatiSide, rows);
  } finally {
    if (hatiClient !== undefined) {
      const c = hatiClient;
      await closeWithin(() => c.close(), 5000);
    }
    for (const c of redisClients) {
      await closeWithin(() => c.quit(), 5000);
      c.disconnect();
    }
    if (hati !== undefined) stops.push(`${hati.name}: ${await stopHati(hati)}`);
    if (redis !== undefined) stops.push(`redis-server: ${await stopProcess(redis)}`);
  }
  for (const line of stops) {
    if (!line.includes('exited (code 0,')) log(`warning: ${line}`);
  }
  for (const line of clientErrors) log(`warning: client error event: ${line}`);

  process.stdout.write(`\n${table(rows)}\n\n`);
  process.stdout.write(
    'One client per row, on the same cores as both servers; ioredis uses enableAutoPipelining for the pipelined rows.\n',
  );
  if (load.busyWarning !== undefined) process.stdout.write(`${load.busyWarning}\n`);
  await finish('client', cfg.quick, rows, {
    date: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: {
      ...loadedMachine(load),
      redisServer: toolVersion('redis-server'),
      note: 'clients, servers and harness share the machine cores',
    },
    hati: { version: packageVersion(join(repoRoot, 'packages/cli')), ...gitInfo(repoRoot) },
    clients: {
      hati: `@hati/client ${packageVersion(join(repoRoot, 'packages/client'))}`,
      ioredis: `ioredis ${packageVersion(fileURLToPath(new URL('../node_modules/ioredis/', import.meta.url)))}`,
    },
    config: cfg,
    runs,
    clientErrors,
    serverExits: stops,
  });
  return 0;
}

process.exitCode = await main();
