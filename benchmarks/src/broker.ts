// The broker load benchmark: the same rows (broker-rows.ts) against Hati's broker and its peers,
// RabbitMQ (quorum queues) for Hati's hdd queues under `--hdd-durability always` and NATS
// JetStream (file storage) under `everysec`, with Redis Streams (AOF always / everysec) beside
// them. Every server is started here on 127.0.0.1 and stopped at the end, also on an error.
// A Hati without the broker commands is reported and left out: its rows are skipped, never
// made up. Prints a table with the targets and writes results/broker.json (broker.quick.json
// with BENCH_QUICK=1).
import { join } from 'node:path';
import { brokerConfig as cfg, type System } from './broker-config.js';
import type { BrokerDriver, Durability } from './broker-driver.js';
import { HatiDriver } from './broker-drivers/hati.js';
import { JetStreamDriver } from './broker-drivers/jetstream.js';
import { RabbitMqDriver } from './broker-drivers/rabbitmq.js';
import { RedisStreamsDriver } from './broker-drivers/redis-streams.js';
import { ensurePeers, type Peer, startJetStream, startRabbitMq, startRedisAof, stopPeer } from './broker-peers.js';
import { type BrokerRow, brokerRows, type RunResult, runRow, warmupRow } from './broker-rows.js';
import { assertAlive, type Hati, repoRoot, type Started, startHati, stopHati } from './procs.js';
import {
  finish,
  gitInfo,
  loadAtStart,
  loadedMachine,
  packageVersion,
  type Row,
  row,
  type Target,
  table,
  valueRow,
} from './report.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const DURABILITIES: readonly Durability[] = ['always', 'everysec'];

/** A system under one durability: a driver, the processes that must stay up, and how to stop them. */
interface Endpoint {
  system: System;
  durability: Durability;
  driver: BrokerDriver;
  processes: Started[];
  /** Stops the processes; says how each ended. */
  stop(): Promise<string[]>;
}

async function closeEndpoint(e: Endpoint): Promise<string[]> {
  await e.driver.close().catch(() => undefined);
  return e.stop();
}

interface RunRecord {
  row: string;
  durability: Durability;
  system: string;
  result?: RunResult;
  opsPerSec?: number;
  error?: string;
}

/** Hati's throughput over each peer's, by the peer's label: the targets. */
const RATIO_TARGETS: Readonly<Record<string, number>> = {
  RabbitMQ: cfg.targets.overRabbitMq,
  JetStream: cfg.targets.overJetStream,
};

function rowName(r: BrokerRow, durability: Durability, label: string): string {
  return `${r.name}_${durability}_${label}`;
}

/** Runs one row on one endpoint; an error is logged and recorded, and the benchmark goes on. */
async function measure(r: BrokerRow, e: Endpoint, records: RunRecord[], rows: Row[]): Promise<RunResult | undefined> {
  const name = rowName(r, e.durability, e.driver.label);
  const record: RunRecord = { row: r.name, durability: e.durability, system: e.driver.label };
  records.push(record);
  try {
    for (const p of e.processes) assertAlive(p);
    const result = await runRow(e.driver, r);
    record.result = result;
    if (r.metric === 'latency' && result.latency !== undefined) {
      const { p50Ms, p99Ms } = result.latency;
      log(`  ${name.padEnd(40)} p50 ${p50Ms} ms, p99 ${p99Ms} ms  (${result.note})`);
      const p99Target: Target | null =
        e.system === 'hati' ? { metric: 'value', op: '<=', limit: cfg.targets.p99Ms } : null;
      rows.push(valueRow(`${name}_p50`, p50Ms, 'ms', null, result.note));
      rows.push(valueRow(`${name}_p99`, p99Ms, 'ms', p99Target, result.note));
    } else {
      const opsPerSec = result.messages / result.seconds;
      record.opsPerSec = Math.round(opsPerSec);
      log(`  ${name.padEnd(40)} ${Math.round(opsPerSec).toLocaleString('en-US').padStart(9)} msg/s  (${result.note})`);
      rows.push(row(name, { nsPerOp: null, opsPerSec, ops: result.messages }, null, result.note));
    }
    return result;
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    record.error = message;
    log(`  ${name.padEnd(40)} FAILED: ${message}`);
    rows.push(row(name, { nsPerOp: null, opsPerSec: null }, null, `failed: ${message.split('\n')[0]}`));
    return undefined;
  }
}

/** The row on every endpoint of each durability in turn, then Hati's ratios to the peers of that durability. */
async function runEverywhere(r: BrokerRow, endpoints: readonly Endpoint[], records: RunRecord[], rows: Row[]) {
  for (const durability of DURABILITIES) {
    const results = new Map<string, RunResult>();
    for (const e of endpoints) {
      if (e.durability !== durability) continue;
      if (!e.driver.kinds.includes(r.kind)) {
        log(`  ${rowName(r, durability, e.driver.label).padEnd(40)} skipped: no ${r.kind} routing`);
        continue;
      }
      const result = await measure(r, e, records, rows);
      if (result !== undefined) results.set(e.driver.label, result);
    }
    const hati = results.get('Hati');
    if (r.metric !== 'throughput' || hati === undefined) continue;
    for (const [label, limit] of Object.entries(RATIO_TARGETS)) {
      const peer = results.get(label);
      if (peer === undefined) continue;
      const ratio = hati.messages / hati.seconds / (peer.messages / peer.seconds);
      rows.push(
        valueRow(`Hati/${label}_${r.name}_${durability}`, ratio, 'ratio', { metric: 'value', op: '>=', limit }),
      );
    }
  }
}

/**
 * Starts the Hati servers (one per durability). A Hati that does not know CREATEROUTER has no
 * broker yet: it is stopped at once and its rows are skipped. So are they when Hati does not
 * start, or refuses the probe otherwise, but then the benchmark fails at the end (false).
 */
async function startHatis(endpoints: Endpoint[], skipped: string[], stops: string[]): Promise<boolean> {
  const started: Endpoint[] = [];
  const skip = async (why: string) => {
    log(`Hati rows skipped: ${why}`);
    skipped.push(`Hati rows skipped: ${why}`);
    for (const e of started) stops.push(...(await closeEndpoint(e)));
  };
  for (const durability of DURABILITIES) {
    let hati: Hati;
    try {
      hati = await startHati({ durability, tcp: true, rpc: false });
    } catch (err) {
      await skip(`Hati did not start: ${(err as Error).message}`);
      return false;
    }
    const driver = HatiDriver.connect(hati.tcpPort as number);
    const stop = async () => [`${hati.name}: ${await stopHati(hati)}`];
    started.push({ system: 'hati', durability, driver, processes: [hati], stop });
    log(`${hati.name} on 127.0.0.1:${hati.tcpPort}`);
    const missing = await driver.missingBroker().catch((err: Error) => `the probe failed: ${err.message}`);
    if (missing === undefined) continue;
    const absent = /UNKNOWN_COMMAND|unknown command/i.test(missing);
    await skip(
      absent ? `this Hati has no broker commands yet (${missing})` : `Hati refused the broker probe: ${missing}`,
    );
    return absent;
  }
  endpoints.push(...started);
  return true;
}

/** A started peer as an endpoint; the peer is stopped again if its driver cannot connect. */
async function peerEndpoint(
  peer: Peer,
  system: System,
  durability: Durability,
  connect: (port: number) => Promise<BrokerDriver>,
): Promise<Endpoint> {
  try {
    const driver = await connect(peer.port);
    log(`${peer.name} ${peer.version} on 127.0.0.1:${peer.port}`);
    return { system, durability, driver, processes: peer.processes, stop: () => stopPeer(peer) };
  } catch (err) {
    await stopPeer(peer);
    throw err;
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  log(
    `broker benchmark: ${cfg.systems.join(', ')}${cfg.quick ? ' (BENCH_QUICK: smoke run, numbers not comparable)' : ''}`,
  );
  ensurePeers(log, cfg.systems);
  const load = await loadAtStart(log);
  const rows: Row[] = [];
  const records: RunRecord[] = [];
  const skipped: string[] = [];
  const stops: string[] = [];
  const endpoints: Endpoint[] = [];
  const versions: Record<string, string> = {};
  let hatiOk = true;
  let warmupFailed = false;
  const has = (system: System) => cfg.systems.includes(system);
  try {
    if (has('hati')) hatiOk = await startHatis(endpoints, skipped, stops);
    const peers: Array<[() => Promise<Peer>, System, Durability, (port: number) => Promise<BrokerDriver>]> = [];
    if (has('rabbitmq')) peers.push([startRabbitMq, 'rabbitmq', 'always', RabbitMqDriver.connect]);
    if (has('jetstream')) peers.push([startJetStream, 'jetstream', 'everysec', JetStreamDriver.connect]);
    for (const durability of has('redis') ? DURABILITIES : []) {
      peers.push([() => startRedisAof(durability), 'redis', durability, async (port) => new RedisStreamsDriver(port)]);
    }
    for (const [start, system, durability, connect] of peers) {
      const peer = await start();
      versions[peer.name] = peer.version;
      endpoints.push(await peerEndpoint(peer, system, durability, connect));
    }
    if (endpoints.length === 0) throw new Error('no system to benchmark');

    log(`warm-up: ${cfg.warmupMs} ms of end-to-end load on each system, not measured`);
    for (const e of [...endpoints]) {
      const failure = await runRow(e.driver, warmupRow).then(
        () => undefined,
        (err: Error) => err.message,
      );
      if (failure === undefined) continue;
      // A system that cannot take the warm-up would fail every row, each after its timeouts.
      const why = `${e.driver.label} (${e.durability}) rows skipped: the warm-up failed: ${failure}`;
      log(why);
      skipped.push(why);
      warmupFailed = true;
      endpoints.splice(endpoints.indexOf(e), 1);
      stops.push(...(await closeEndpoint(e)));
    }
    for (const r of brokerRows) {
      log(`${r.name}: ${r.about}`);
      await runEverywhere(r, endpoints, records, rows);
    }
  } finally {
    for (const e of endpoints.splice(0)) stops.push(...(await closeEndpoint(e)));
  }
  for (const line of stops) {
    if (line.includes('SIGKILL')) log(`warning: ${line}`);
  }

  process.stdout.write(`\n${table(rows)}\n\n`);
  for (const line of skipped) process.stdout.write(`${line}\n`);
  process.stdout.write(
    'The machine is shared: the clients, the brokers and this harness run on the same cores. Ratios compare rows of one run.\n',
  );
  if (load.busyWarning !== undefined) process.stdout.write(`${load.busyWarning}\n`);
  await finish('broker', cfg.quick, rows, {
    date: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: { ...loadedMachine(load), peers: versions, note: 'clients, brokers and harness share the machine cores' },
    hati: { version: packageVersion(join(repoRoot, 'packages/cli')), ...gitInfo(repoRoot) },
    config: cfg,
    rowsRun: brokerRows.map((r) => ({ name: r.name, kind: r.kind, about: r.about })),
    skipped,
    runs: records,
    serverExits: stops,
  });
  return hatiOk && !warmupFailed && records.every((r) => r.error === undefined) ? 0 : 1;
}

process.exitCode = await main();
