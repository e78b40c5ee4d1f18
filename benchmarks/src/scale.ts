// The scale benchmark, in two parts.
// - memory: the memory store with 10M keys (BENCH_SCALE_KEYS), next to Redis with the same keys.
//   Throughput and latency percentiles (p50, p99, p99.9) of GET and SET at -P 16 over the whole
//   keyspace, the same rows over the first 100,000 keys (the server benchmark's keyspace) to see
//   what size costs, and each server's resident memory once loaded.
// - hdd: the hdd store with 20M keys (BENCH_SCALE_HDD_KEYS), durability everysec: SET and GET over
//   the whole keyspace and over the first 100,000 keys, and the time to open the store again after
//   a graceful stop and after a kill -9.
// Prints a table and writes results/scale.json (results/scale.quick.json with BENCH_QUICK=1;
// results/scale.memory.json or scale.hdd.json when BENCH_SCALE_ONLY runs one part).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RawClient, showReply } from '@hati/test-helpers';
import { intFromEnv, quick } from './config.js';
import {
  assertAlive,
  ensureRedisTools,
  type Hati,
  killProcess,
  removeDataDir,
  repoRoot,
  type Started,
  startHati,
  startRedis,
  stopHati,
  stopProcess,
  tempDataDir,
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
  /** Which parts run: `memory` (against Redis) and `hdd` (BENCH_SCALE_ONLY=memory or hdd for one). */
  parts: (process.env.BENCH_SCALE_ONLY ?? 'memory,hdd').split(','),
  /** Keys preloaded into Redis and Hati's memory store; the rows draw from all of them (-r). */
  keys: intFromEnv('BENCH_SCALE_KEYS', quick ? 1_000_000 : 10_000_000),
  /** Keys preloaded into Hati's hdd store. */
  hddKeys: intFromEnv('BENCH_SCALE_HDD_KEYS', quick ? 1_000_000 : 20_000_000),
  /** Issue 12: a store of `hddKeys` keys opens again within this (from `hati start` to listening). */
  reopenTargetSeconds: 5,
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

/** Sets `keys` keys with pipelined requests, several windows in flight, and checks the count. */
async function preload(
  target: Endpoint,
  keys: number,
  set: (key: string) => string[],
  count: string[],
): Promise<number> {
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
        while (next < keys) {
          const from = next;
          next = Math.min(keys, next + chunk);
          const commands: string[][] = [];
          for (let i = from; i < next; i++) commands.push(set(randKey(i)));
          const replies = await client.send(commands, 120_000);
          const bad = replies.find((reply) => reply !== 'OK');
          if (bad !== undefined) throw new Error(`preload of ${target.name}: got ${showReply(bad)}`);
        }
      }),
    );
  } finally {
    for (const client of clients) client.close();
  }
  const seconds = (performance.now() - started) / 1000;
  await expectCount(target, count, keys);
  log(`  ${target.name}: ${keys.toLocaleString('en-US')} keys in ${seconds.toFixed(1)} s`);
  return keys / seconds;
}

/** Throws unless the server counts `keys` keys. */
async function expectCount(target: Endpoint, count: string[], keys: number): Promise<void> {
  const client = await RawClient.connect({ host: '127.0.0.1', port: target.port });
  try {
    const counted = (await client.send([count]))[0];
    if (counted !== keys) throw new Error(`${target.name} holds ${showReply(counted)} keys, want ${keys}`);
  } finally {
    client.close();
  }
}

/** The bytes of the files under `dir`, MB. */
function dirMb(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += statSync(join(entry.parentPath, entry.name)).size;
  }
  return bytes / 1024 / 1024;
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

/** Where the rows and the raw redis-benchmark runs go, and how each server ended. */
interface Report {
  rows: Row[];
  raw: Record<string, RedisBenchmarkResult>;
  stops: string[];
}

/** The memory store with `cfg.keys` keys, next to Redis with the same keys. */
async function memoryPart(report: Report): Promise<void> {
  const { rows, stops } = report;
  let redisServer: Started | undefined;
  let hati: Hati | undefined;
  try {
    const r = await startRedis();
    redisServer = r;
    hati = await startHati({ durability: 'no', tcp: true, rpc: false });
    const redis: Endpoint = { name: 'redis-server', port: r.port, server: r };
    const hatiEnd: Endpoint = { name: hati.name, port: hati.tcpPort as number, server: hati };
    const v = cfg.value;
    log(`preloading ${cfg.keys.toLocaleString('en-US')} keys of ${randKey(0).length} B with ${v.length}-byte values`);
    const redisLoad = await preload(redis, cfg.keys, (k) => ['SET', k, v], ['DBSIZE']);
    const hatiLoad = await preload(hatiEnd, cfg.keys, (k) => ['SET', 'memory', '0', k, v], ['COUNT', 'memory']);
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
    const large = millions(cfg.keys);
    log(`-P ${cfg.pipeline}, -n ${cfg.requests}, -c ${cfg.clients}:`);
    for (const name of ['GET', 'SET'] as const) {
      const results: Record<string, RedisBenchmarkResult> = {};
      for (const [who, target, command, keyspace] of [
        ['Redis', redis, commands[name].redis, cfg.keys],
        ['Hati', hatiEnd, commands[name].hati, cfg.keys],
        ['Hati_100k', hatiEnd, commands[name].hati, cfg.smallKeyspace],
      ] as const) {
        const rowName =
          who === 'Hati_100k'
            ? `Hati_${name}_memory_100k`
            : `${who}_${name}${who === 'Hati' ? '_memory' : ''}_${large}`;
        results[who] = await benchRow(report, rowName, target, command, keyspace);
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
      rows.push(sizeCostRow(`Hati_${name}_memory_${large}/100k`, hatiLarge, results.Hati_100k as RedisBenchmarkResult));
      for (const who of ['Redis', 'Hati'] as const) {
        const r999 = (results[who] as RedisBenchmarkResult).p999LatencyMs;
        if (r999 !== undefined) rows.push(valueRow(`${who}_${name}_${large}_p99.9`, r999, 'ms', null));
      }
    }
  } finally {
    if (hati !== undefined) stops.push(`${hati.name}: ${await stopHati(hati)}`);
    if (redisServer !== undefined) stops.push(`redis-server: ${await stopProcess(redisServer)}`);
  }
}

/**
 * The hdd store (durability everysec, the server rows' default) with `cfg.hddKeys` keys: SET and
 * GET over the whole keyspace against the first 100,000 keys, then how long the server takes to
 * open that store again, after a graceful stop (the key filters saved) and after a kill -9 (the
 * filters rebuilt in the background, and LevelDB's logs replayed).
 */
async function hddPart(report: Report): Promise<void> {
  const { rows, stops } = report;
  const keys = cfg.hddKeys;
  const large = millions(keys);
  const dataDir = await tempDataDir('hati-bench-scale-hdd-');
  const start = (label: string) =>
    startHati({ durability: 'everysec', tcp: true, rpc: false, dataDir, label: `hdd everysec, ${label}` });
  let hati: Hati | undefined;
  try {
    hati = await start('new store');
    let target: Endpoint = { name: hati.name, port: hati.tcpPort as number, server: hati };
    const v = cfg.value;
    log(`preloading ${keys.toLocaleString('en-US')} keys into the hdd store (durability everysec)`);
    const load = await preload(target, keys, (k) => ['SET', 'hdd', '0', k, v], ['COUNT', 'hdd']);
    rows.push(
      row(
        'Hati_preload_hdd',
        { nsPerOp: null, opsPerSec: load, ops: keys },
        null,
        '4 connections, 5000 SETs per window',
      ),
    );
    rows.push(valueRow('Hati_hdd_disk', dirMb(dataDir), 'MB', null, `${keys} keys loaded`));

    const commands = { SET: ['SET', 'hdd', '0', RAND_KEY, v], GET: ['GET', 'hdd', RAND_KEY] };
    log('warm-up (not measured)');
    await bench(target, commands.SET, keys);
    log(`-P ${cfg.pipeline}, -n ${cfg.requests}, -c ${cfg.clients}:`);
    for (const name of ['SET', 'GET'] as const) {
      const whole = await benchRow(report, `Hati_${name}_hdd_${large}`, target, commands[name], keys);
      const small = await benchRow(report, `Hati_${name}_hdd_100k`, target, commands[name], cfg.smallKeyspace);
      rows.push(sizeCostRow(`Hati_${name}_hdd_${large}/100k`, whole, small));
    }

    // Reopening: from `hati start` to its tcp listener's line, which comes once the store is open.
    for (const how of ['graceful', 'kill'] as const) {
      const ended = how === 'graceful' ? await stopProcess(hati) : await killProcess(hati);
      stops.push(`${hati.name}: ${ended}`);
      const began = performance.now();
      hati = await start(how === 'graceful' ? 'reopened' : 'reopened after kill -9');
      const seconds = (performance.now() - began) / 1000;
      target = { name: hati.name, port: hati.tcpPort as number, server: hati };
      await expectCount(target, ['COUNT', 'hdd'], keys);
      const rowName = how === 'graceful' ? `Hati_reopen_hdd_${large}` : `Hati_reopen_hdd_${large}_after_kill`;
      log(`  ${rowName.padEnd(28)} ${seconds.toFixed(2)} s to the listening line; COUNT ${keys}`);
      rows.push(
        valueRow(
          rowName,
          seconds,
          's',
          { metric: 'value', op: '<=', limit: cfg.reopenTargetSeconds },
          `hati start to its listening line, ${keys} keys, ${how === 'graceful' ? 'after SIGTERM' : 'after SIGKILL'}`,
        ),
      );
    }
    // After the kill, the filter is rebuilt while the server runs: SETs read their keys until then.
    const afterKill = await benchRow(report, `Hati_SET_hdd_${large}_after_kill`, target, commands.SET, keys);
    rows.push(
      valueRow(
        `Hati_SET_hdd_${large}_after_kill/before`,
        afterKill.rps / (report.raw[`Hati_SET_hdd_${large}`] as RedisBenchmarkResult).rps,
        'ratio',
        null,
        'right after the reopen, while the key filter is rebuilt',
      ),
    );
  } finally {
    if (hati !== undefined) stops.push(`${hati.name}: ${await stopProcess(hati)}`);
    await removeDataDir(dataDir);
  }
}

/** One redis-benchmark row: logged, kept in the raw runs and added to the rows. */
async function benchRow(
  report: Report,
  rowName: string,
  target: Endpoint,
  command: readonly string[],
  keyspace: number,
): Promise<RedisBenchmarkResult> {
  const result = await bench(target, command, keyspace);
  report.raw[rowName] = result;
  log(
    `  ${rowName.padEnd(28)} ${Math.round(result.rps).toLocaleString('en-US').padStart(9)} req/s  (${latencyNote(result)})`,
  );
  report.rows.push(
    row(rowName, { nsPerOp: null, opsPerSec: result.rps, ops: cfg.requests }, null, latencyNote(result)),
  );
  return result;
}

/** What the size costs: the large keyspace's rate over the small one's, with issue 12's target. */
function sizeCostRow(name: string, large: RedisBenchmarkResult, small: RedisBenchmarkResult): Row {
  return valueRow(name, large.rps / small.rps, 'ratio', { metric: 'value', op: '>=', limit: cfg.scaleTarget });
}

function millions(keys: number): string {
  return `${keys / 1_000_000}M`;
}

async function main(): Promise<number> {
  const started = Date.now();
  log(`scale benchmark${cfg.quick ? ' (BENCH_QUICK: smoke run, numbers not comparable)' : ''}`);
  ensureRedisTools(log);
  const unknown = cfg.parts.filter((part) => part !== 'memory' && part !== 'hdd');
  if (unknown.length > 0) throw new Error(`BENCH_SCALE_ONLY: ${unknown.join(', ')} is not a part (memory, hdd)`);
  const load = await loadAtStart(log);
  const report: Report = { rows: [], raw: {}, stops: [] };
  if (cfg.parts.includes('memory')) await memoryPart(report);
  if (cfg.parts.includes('hdd')) await hddPart(report);
  process.stdout.write(`\n${table(report.rows)}\n\n`);
  if (load.busyWarning !== undefined) process.stdout.write(`${load.busyWarning}\n`);
  // One part alone writes a file of its own, so that it does not replace the whole run's.
  const both = cfg.parts.includes('memory') && cfg.parts.includes('hdd');
  await finish(both ? 'scale' : `scale.${cfg.parts.join('-')}`, cfg.quick, report.rows, {
    date: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: {
      ...loadedMachine(load),
      redisServer: toolVersion('redis-server'),
      redisBenchmark: toolVersion('redis-benchmark'),
    },
    hati: { version: packageVersion(join(repoRoot, 'packages/cli')), ...gitInfo(repoRoot) },
    config: cfg,
    redisBenchmarkRuns: report.raw,
    serverExits: report.stops,
  });
  return 0;
}

process.exitCode = await main();
