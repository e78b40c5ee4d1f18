// The scale benchmark: the memory store with 10M keys (BENCH_SCALE_KEYS), next to Redis with the
// same keys. Throughput and latency percentiles (p50, p99, p99.9) of GET and SET at -P 16 over
// the whole keyspace, the same rows over the first 100,000 keys (the server benchmark's
// keyspace) to see what size costs, and each server's resident memory once loaded.
// Prints a table and writes results/scale.json (results/scale.quick.json with BENCH_QUICK=1).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RawClient, showReply } from '@hati/test-helpers';
import { intFromEnv, quick } from './config.js';
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
import { RAND_KEY, type RedisBenchmarkResult, randKey, redisBenchmark } from './redis-benchmark.js';
import {
  finish,
  gitInfo,
  loadAtStart,
  loadedMachine,
  packageVersion,
  type Row,
  row,
  table,
  valueRow,
} from './report.js';

const cfg = {
  quick,
  /** Keys preloaded into both servers; the rows draw from all of them (-r). */
  keys: intFromEnv('BENCH_SCALE_KEYS', quick ? 1_000_000 : 10_000_000),
  /** The keyspace of the server benchmark, for the rows that show what size costs. */
  smallKeyspace: 100_000,
  value: 'v123456789abcdef',
  clients: 50,
  pipeline: 16,
  requests: quick ? 200_000 : 2_000_000,
  /** Issue 12: throughput over the large keyspace at least this share of the small one's. */
  scaleTarget: 0.7,
  rowTimeoutMs: 600_000,
};

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Endpoint {
  name: string;
  port: number;
  server: Started;
}

/** Resident memory of a process, MB. */
function rssMb(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  return kb / 1024;
}

/** Sets `cfg.keys` keys with pipelined requests, several windows in flight, and checks the count. */
async function preload(target: Endpoint, set: (key: string) => string[], count: string[]): Promise<number> {
  const started = performance.now();
  const windows = 4;
  const chunk = 5000;
  const clients = await Promise.all(
    Array.from({ length: windows }, () => RawClient.connect({ host: '127.0.0.1', port: target.port })),
  );
  try {
    let next = 0;
    await Promise.all(
      clients.map(async (client) => {
        while (next < cfg.keys) {
          const from = next;
          next = Math.min(cfg.keys, next + chunk);
          const commands: string[][] = [];
          for (let i = from; i < next; i++) commands.push(set(randKey(i)));
          const replies = await client.send(commands, 120_000);
          const bad = replies.find((reply) => reply !== 'OK');
          if (bad !== undefined) throw new Error(`preload of ${target.name}: got ${showReply(bad)}`);
        }
      }),
    );
    const counted = (await (clients[0] as RawClient).send([count]))[0];
    if (counted !== cfg.keys) throw new Error(`${target.name} holds ${showReply(counted)} keys, want ${cfg.keys}`);
  } finally {
    for (const client of clients) client.close();
  }
  const seconds = (performance.now() - started) / 1000;
  log(`  ${target.name}: ${cfg.keys.toLocaleString('en-US')} keys in ${seconds.toFixed(1)} s`);
  return cfg.keys / seconds;
}

async function bench(target: Endpoint, command: readonly string[], keyspace: number): Promise<RedisBenchmarkResult> {
  assertAlive(target.server);
  const result = await redisBenchmark({
    port: target.port,
    command,
    clients: cfg.clients,
    requests: cfg.requests,
    pipeline: cfg.pipeline,
    keyspace,
    timeoutMs: cfg.rowTimeoutMs,
    percentiles: true,
  });
  assertAlive(target.server);
  return result;
}

function latencyNote(r: RedisBenchmarkResult): string {
  return `p50 ${r.p50LatencyMs} ms, p99 ${r.p99LatencyMs} ms, p99.9 ${r.p999LatencyMs ?? '?'} ms, max ${r.maxLatencyMs} ms`;
}

async function main(): Promise<number> {
  const started = Date.now();
  log(`scale benchmark${cfg.quick ? ' (BENCH_QUICK: smoke run, numbers not comparable)' : ''}`);
  ensureRedisTools(log);
  const load = await loadAtStart(log);
  const rows: Row[] = [];
  const raw: Record<string, RedisBenchmarkResult> = {};
  let redisServer: Started | undefined;
  let hati: Hati | undefined;
  const stops: string[] = [];
  try {
    const r = await startRedis();
    redisServer = r;
    hati = await startHati({ durability: 'no', tcp: true, rpc: false });
    const redis: Endpoint = { name: 'redis-server', port: r.port, server: r };
    const hatiEnd: Endpoint = { name: hati.name, port: hati.tcpPort as number, server: hati };
    const v = cfg.value;
    log(`preloading ${cfg.keys.toLocaleString('en-US')} keys of ${randKey(0).length} B with ${v.length}-byte values`);
    const redisLoad = await preload(redis, (k) => ['SET', k, v], ['DBSIZE']);
    const hatiLoad = await preload(hatiEnd, (k) => ['SET', 'memory', '0', k, v], ['COUNT', 'memory']);
    rows.push(
      row(
        'Redis_preload',
        { nsPerOp: null, opsPerSec: redisLoad, ops: cfg.keys },
        null,
        '4 connections, 5000 SETs per window',
      ),
    );
    rows.push(row('Hati_preload_memory', { nsPerOp: null, opsPerSec: hatiLoad, ops: cfg.keys }, null, 'the same'));
    const redisRss = rssMb(r.child.pid);
    const hatiRss = rssMb(hati.child.pid);
    rows.push(valueRow('Redis_RSS', redisRss, 'MB', null, `${cfg.keys} keys loaded`));
    rows.push(valueRow('Hati_RSS', hatiRss, 'MB', null, `${cfg.keys} keys loaded`));

    const commands = {
      GET: { redis: ['GET', RAND_KEY], hati: ['GET', 'memory', RAND_KEY] },
      SET: { redis: ['SET', RAND_KEY, v], hati: ['SET', 'memory', '0', RAND_KEY, v] },
    };
    log('warm-up (not measured)');
    await bench(redis, commands.GET.redis, cfg.keys);
    await bench(hatiEnd, commands.GET.hati, cfg.keys);
    const large = `${cfg.keys / 1_000_000}M`;
    log(`-P ${cfg.pipeline}, -n ${cfg.requests}, -c ${cfg.clients}:`);
    for (const name of ['GET', 'SET'] as const) {
      const results: Record<string, RedisBenchmarkResult> = {};
      for (const [who, target, command, keyspace] of [
        ['Redis', redis, commands[name].redis, cfg.keys],
        ['Hati', hatiEnd, commands[name].hati, cfg.keys],
        ['Hati_100k', hatiEnd, commands[name].hati, cfg.smallKeyspace],
      ] as const) {
        const result = await bench(target, command, keyspace);
        const rowName =
          who === 'Hati_100k'
            ? `Hati_${name}_memory_100k`
            : `${who}_${name}${who === 'Hati' ? '_memory' : ''}_${large}`;
        raw[rowName] = result;
        results[who] = result;
        log(
          `  ${rowName.padEnd(24)} ${Math.round(result.rps).toLocaleString('en-US').padStart(9)} req/s  (${latencyNote(result)})`,
        );
        rows.push(row(rowName, { nsPerOp: null, opsPerSec: result.rps, ops: cfg.requests }, null, latencyNote(result)));
      }
      const hatiLarge = results.Hati as RedisBenchmarkResult;
      rows.push(
        valueRow(
          `Hati/Redis_${name}_memory_${large}`,
          hatiLarge.rps / (results.Redis as RedisBenchmarkResult).rps,
          'ratio',
          null,
        ),
      );
      rows.push(
        valueRow(
          `Hati_${name}_memory_${large}/100k`,
          hatiLarge.rps / (results.Hati_100k as RedisBenchmarkResult).rps,
          'ratio',
          {
            metric: 'value',
            op: '>=',
            limit: cfg.scaleTarget,
          },
        ),
      );
      for (const who of ['Redis', 'Hati'] as const) {
        const r999 = (results[who] as RedisBenchmarkResult).p999LatencyMs;
        if (r999 !== undefined) rows.push(valueRow(`${who}_${name}_${large}_p99.9`, r999, 'ms', null));
      }
    }
  } finally {
    if (hati !== undefined) stops.push(`${hati.name}: ${await stopHati(hati)}`);
    if (redisServer !== undefined) stops.push(`redis-server: ${await stopProcess(redisServer)}`);
  }
  process.stdout.write(`\n${table(rows)}\n\n`);
  if (load.busyWarning !== undefined) process.stdout.write(`${load.busyWarning}\n`);
  await finish('scale', cfg.quick, rows, {
    date: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: {
      ...loadedMachine(load),
      redisServer: toolVersion('redis-server'),
      redisBenchmark: toolVersion('redis-benchmark'),
    },
    hati: { version: packageVersion(join(repoRoot, 'packages/cli')), ...gitInfo(repoRoot) },
    config: cfg,
    redisBenchmarkRuns: raw,
    serverExits: stops,
  });
  return 0;
}

process.exitCode = await main();
