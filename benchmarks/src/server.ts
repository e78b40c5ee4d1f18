// The server load benchmark: redis-benchmark against redis-server and against `hati start`
// (TCP, memory and hdd storage), row by row, interleaved; then JSON-RPC load with autocannon.
// Every server is started here on 127.0.0.1 and stopped at the end, also on an error.
// Prints a table with the targets and writes results/server.json (results/server.quick.json
// with BENCH_QUICK=1).
import { join } from 'node:path';
import { RawClient, showReply } from '@hati/test-helpers';
import { type EchoComparison, rpcVersusEcho, startHttpEcho, stopHttpEcho } from './http-echo.js';
import {
  assertAlive,
  cpuMicros,
  ensureRedisTools,
  type Hati,
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
import { RAND_KEY, type RedisBenchmarkResult, randKey, redisBenchmark, redisBenchmarkArgs } from './redis-benchmark.js';
import {
  finish,
  gitInfo,
  loadAtStart,
  loadedMachine,
  median,
  packageVersion,
  type Row,
  row,
  type Target,
  table,
  valueRow,
} from './report.js';
import { expectedResponse, preloadRpc, type RpcLoadResult, rpcCall, rpcLoad } from './rpc-load.js';
import { serverConfig as cfg, type Pipeline } from './server-config.js';

/** The seed's Go server on this machine: Storage.Get over JSON-RPC, requests/s. */
const GO_SEED_RPC_GET_PER_SEC = 23_000;

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Endpoint {
  name: string;
  port: number;
  server: Started;
}

interface RawRun {
  row: string;
  server: string;
  /** redis-benchmark's arguments. */
  args: string[];
  result: RedisBenchmarkResult;
}

const raw: RawRun[] = [];
const rawRpc: Record<string, RpcLoadResult | EchoComparison> = {};

async function bench(
  target: Endpoint,
  command: readonly string[],
  pipeline: number,
  requests: number,
  rowName?: string,
): Promise<RedisBenchmarkResult> {
  assertAlive(target.server);
  const run = {
    port: target.port,
    command,
    clients: cfg.clients,
    requests,
    pipeline,
    keyspace: cfg.keyspace,
    timeoutMs: cfg.rowTimeoutMs,
  };
  let result: RedisBenchmarkResult;
  try {
    result = await redisBenchmark(run);
  } catch (err) {
    throw new Error(`${target.name}: ${(err as Error).message}\nserver output:\n${target.server.output().trimEnd()}`);
  }
  assertAlive(target.server);
  if (rowName !== undefined) {
    raw.push({ row: rowName, server: target.name, args: redisBenchmarkArgs(run), result });
    log(
      `  ${rowName.padEnd(26)} ${Math.round(result.rps).toLocaleString('en-US').padStart(9)} req/s  (n ${requests}, p50 ${result.p50LatencyMs} ms, p99 ${result.p99LatencyMs} ms, ${(result.wallMs / 1000).toFixed(1)} s)`,
    );
  }
  return result;
}

function rpsRow(name: string, r: RedisBenchmarkResult, requests: number, target: Target | null = null): Row {
  const note = `n ${requests}, p50 ${r.p50LatencyMs} ms, p99 ${r.p99LatencyMs} ms`;
  return row(name, { nsPerOp: null, opsPerSec: r.rps, ops: requests }, target, note);
}

function ratioRow(name: string, numerator: number, denominator: number, target: Target | null): Row {
  return valueRow(name, numerator / denominator, 'ratio', target);
}

/** Sets every key of the keyspace to the value with pipelined RESP commands, and checks the count. */
async function preload(port: number, set: (k: string) => string[], count: string[], what: string): Promise<void> {
  const client = await RawClient.connect({ host: '127.0.0.1', port });
  try {
    const chunk = 1000;
    for (let i = 0; i < cfg.keyspace; i += chunk) {
      const commands: string[][] = [];
      for (let j = i; j < Math.min(i + chunk, cfg.keyspace); j++) commands.push(set(randKey(j)));
      const replies = await client.send(commands);
      const bad = replies.find((r) => r !== 'OK');
      if (bad !== undefined) throw new Error(`preload of ${what}: ${commands[0]?.join(' ')} got ${showReply(bad)}`);
    }
    const counted = (await client.send([count]))[0];
    if (counted !== cfg.keyspace) {
      throw new Error(`preload of ${what}: ${count.join(' ')} got ${showReply(counted)}, want ${cfg.keyspace}`);
    }
  } finally {
    client.close();
  }
}

/** Sends one request of a row with our own client and checks the reply, so a row never measures errors. */
async function probe(port: number, command: readonly string[], want: string, what: string): Promise<void> {
  const client = await RawClient.connect({ host: '127.0.0.1', port });
  try {
    const args = command.map((arg) => arg.replace('__rand_int__', '000000000042'));
    const reply = (await client.send([args]))[0];
    const got = Buffer.isBuffer(reply) ? reply.toString('utf8') : reply;
    if (got !== want) {
      throw new Error(`${what}: ${args.join(' ')} got ${showReply(reply)}, want ${JSON.stringify(want)}`);
    }
  } finally {
    client.close();
  }
}

async function hatiStats(hati: Hati): Promise<unknown> {
  if (hati.tcpPort === undefined) return null;
  const client = await RawClient.connect({ host: '127.0.0.1', port: hati.tcpPort });
  try {
    const reply = (await client.send([['STATS']]))[0];
    return Buffer.isBuffer(reply) ? JSON.parse(reply.toString('utf8')) : showReply(reply);
  } finally {
    client.close();
  }
}

/** The servers of the TCP rows: Redis without and with its append-only file, Hati at each durability. */
interface TcpServers {
  redis: Endpoint;
  /** `appendonly yes`, `appendfsync everysec` (Redis's default for the AOF). */
  redisEverysec: Endpoint;
  /** `appendonly yes`, `appendfsync always`. */
  redisAlways: Endpoint;
  hatiNo: Endpoint;
  hatiEverysec: Endpoint;
  hatiAlways: Endpoint;
}

/** The target of a persistent-write ratio (issue 12): Hati's hdd SET against Redis's AOF at the same fsync policy. */
const AOF_TARGET: Target = { metric: 'value', op: '>=', limit: 0.8, floor: 0.5 };

async function tcpRows(servers: TcpServers, rows: Row[]): Promise<void> {
  const { redis, redisEverysec, redisAlways, hatiNo, hatiEverysec, hatiAlways } = servers;
  const v = cfg.value;
  const cmd = {
    redisSet: ['SET', RAND_KEY, v],
    redisGet: ['GET', RAND_KEY],
    memSet: ['SET', 'memory', '0', RAND_KEY, v],
    memGet: ['GET', 'memory', RAND_KEY],
    hddSet: ['SET', 'hdd', '0', RAND_KEY, v],
    hddGet: ['GET', 'hdd', RAND_KEY],
  };

  log(`preloading ${cfg.keyspace} keys (Redis with and without AOF; Hati memory and hdd)`);
  await preload(redis.port, (k) => ['SET', k, v], ['DBSIZE'], 'Redis');
  await preload(redisEverysec.port, (k) => ['SET', k, v], ['DBSIZE'], 'Redis (AOF everysec)');
  await preload(redisAlways.port, (k) => ['SET', k, v], ['DBSIZE'], 'Redis (AOF always)');
  await preload(hatiNo.port, (k) => ['SET', 'memory', '0', k, v], ['COUNT', 'memory'], 'Hati memory');
  await preload(hatiNo.port, (k) => ['SET', 'hdd', '0', k, v], ['COUNT', 'hdd'], 'Hati hdd (durability no)');
  await preload(
    hatiEverysec.port,
    (k) => ['SET', 'hdd', '0', k, v],
    ['COUNT', 'hdd'],
    'Hati hdd (durability everysec)',
  );
  await preload(hatiAlways.port, (k) => ['SET', 'hdd', '0', k, v], ['COUNT', 'hdd'], 'Hati hdd (durability always)');
  await probe(redis.port, cmd.redisSet, 'OK', 'Redis');
  await probe(redis.port, cmd.redisGet, v, 'Redis');
  await probe(redisEverysec.port, cmd.redisSet, 'OK', 'Redis (AOF everysec)');
  await probe(redisAlways.port, cmd.redisSet, 'OK', 'Redis (AOF always)');
  for (const [target, c] of [
    [hatiNo, cmd.memSet],
    [hatiNo, cmd.memGet],
    [hatiNo, cmd.hddSet],
    [hatiNo, cmd.hddGet],
    [hatiEverysec, cmd.hddSet],
    [hatiAlways, cmd.hddSet],
  ] as const) {
    await probe(target.port, c, c[0] === 'SET' ? 'OK' : v, target.name);
  }

  log(`warm-up (${cfg.warmupRequests} requests per command at -P 16, not measured)`);
  for (const [target, c] of [
    [redis, cmd.redisSet],
    [redis, cmd.redisGet],
    [hatiNo, cmd.memSet],
    [hatiNo, cmd.memGet],
    [hatiNo, cmd.hddSet],
    [hatiNo, cmd.hddGet],
    [redisEverysec, cmd.redisSet],
    [hatiEverysec, cmd.hddSet],
  ] as const) {
    await bench(target, c, 16, cfg.warmupRequests);
  }

  const pair = async (p: Pipeline, name: string, target: Endpoint, c: readonly string[], n: number) => {
    const r = await bench(target, c, p, n, `${name}_P${p}`);
    rows.push(rpsRow(`${name}_P${p}`, r, n));
    return r;
  };
  for (const p of cfg.pipelines) {
    const n = cfg.requests[p];
    log(`-P ${p}, -n ${n}, -c ${cfg.clients}, -r ${cfg.keyspace}:`);
    // Issue 12: at least Redis's rate, and resolved at 0.8 (-P 16) or 0.9 (-P 1).
    const memTarget: Target = { metric: 'value', op: '>=', limit: 1, floor: p === 16 ? 0.8 : 0.9 };
    const side = (name: string, target: Endpoint, command: readonly string[], requests = n): Side => ({
      name,
      target,
      command,
      requests,
    });
    const memory = await alternatingRounds(p, cfg.memoryRounds, {
      SET: { peer: side('Redis_SET', redis, cmd.redisSet), hati: side('Hati_SET_memory', hatiNo, cmd.memSet) },
      GET: { peer: side('Redis_GET', redis, cmd.redisGet), hati: side('Hati_GET_memory', hatiNo, cmd.memGet) },
    });
    pushRounds(rows, p, memory, (pair) => [`Hati/Redis_${pair}_memory_P${p}`, memTarget]);
    const hddNo = await pair(p, 'Hati_SET_hdd_no', hatiNo, cmd.hddSet, n);
    await pair(p, 'Hati_GET_hdd', hatiNo, cmd.hddGet, n);
    const aofTarget = p === 16 ? AOF_TARGET : null;
    // fsync before every reply: -n from a short probe run of each, so a row takes about alwaysSeconds.
    const persistent = await alternatingRounds(p, cfg.aofRounds, {
      everysec: {
        peer: side('Redis_SET_aof_everysec', redisEverysec, cmd.redisSet),
        hati: side('Hati_SET_hdd_everysec', hatiEverysec, cmd.hddSet),
      },
      always: {
        peer: side(
          'Redis_SET_aof_always',
          redisAlways,
          cmd.redisSet,
          await sizedAlways(redisAlways, cmd.redisSet, p, n),
        ),
        hati: side('Hati_SET_hdd_always', hatiAlways, cmd.hddSet, await sizedAlways(hatiAlways, cmd.hddSet, p, n)),
      },
    });
    pushRounds(rows, p, persistent, (pair) => [`Hati/Redis_SET_hdd_${pair}_P${p}`, aofTarget]);
    if (p === 16) {
      rows.push(
        ratioRow(`Hati_SET_hdd_no/Redis_SET_P${p}`, hddNo.rps, meanRps(memory.rows.Redis_SET ?? []), {
          metric: 'value',
          op: '>=',
          limit: 0.5,
        }),
      );
    }
  }
}

/** One side of a compared pair: a row name, its server, its command and -n. */
interface Side {
  name: string;
  target: Endpoint;
  command: readonly string[];
  requests: number;
}

interface Rounds {
  /** Every round's result, by row name. */
  rows: Record<string, RedisBenchmarkResult[]>;
  /** The -n of each row. */
  requests: Record<string, number>;
  /** Hati's rate over its peer's, round by round, by pair. */
  ratios: Record<string, number[]>;
  /** The server's CPU time per request (all its threads), µs, round by round, by row name. */
  cpu: Record<string, number[]>;
  /** Hati's CPU time per request over its peer's, round by round, by pair. */
  cpuRatios: Record<string, number[]>;
  /** The row names of each pair's peer and Hati. */
  sides: Record<string, [string, string]>;
}

/**
 * Runs `pairs` (peer, then Hati) one after the other, `count` rounds: the ratio of a pair is
 * then the median of rounds run minutes apart, not one run on a machine whose load drifts.
 */
async function alternatingRounds(
  p: Pipeline,
  count: number,
  pairs: Record<string, { peer: Side; hati: Side }>,
): Promise<Rounds> {
  const rows: Record<string, RedisBenchmarkResult[]> = {};
  const requests: Record<string, number> = {};
  const ratios: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const cpuRatios: Record<string, number[]> = {};
  const sides: Record<string, [string, string]> = {};
  const run = async (side: Side) => {
    const pid = side.target.server.child.pid as number;
    const before = cpuMicros(pid);
    const r = await bench(side.target, side.command, p, side.requests, `${side.name}_P${p}`);
    const perRequest = (cpuMicros(pid) - before) / side.requests;
    rows[side.name] = [...(rows[side.name] ?? []), r];
    cpu[side.name] = [...(cpu[side.name] ?? []), perRequest];
    requests[side.name] = side.requests;
    return { rps: r.rps, cpu: perRequest };
  };
  for (let round = 0; round < count; round++) {
    for (const [pair, { peer, hati }] of Object.entries(pairs)) {
      const peerRun = await run(peer);
      const hatiRun = await run(hati);
      ratios[pair] = [...(ratios[pair] ?? []), hatiRun.rps / peerRun.rps];
      cpuRatios[pair] = [...(cpuRatios[pair] ?? []), hatiRun.cpu / peerRun.cpu];
      sides[pair] = [peer.name, hati.name];
    }
  }
  return { rows, requests, ratios, cpu, cpuRatios, sides };
}

/**
 * The rows of `alternatingRounds`: each side's mean rate with its rounds, and each pair's median
 * ratio (named and targeted by `ratioOf`) with the ratio of every round. Then, per pair, the
 * server CPU time per request of Hati over its peer's (`<ratio row>_cpu`, no target): it moves
 * far less than the rates when the machine is busy, so it says whether a change of ratio
 * between runs is the code's or the machine's.
 */
function pushRounds(
  rows: Row[],
  p: Pipeline,
  result: Rounds,
  ratioOf: (pair: string) => [string, Target | null],
): void {
  for (const [name, r] of Object.entries(result.rows)) {
    rows.push(meanRow(`${name}_P${p}`, r, result.requests[name] as number));
  }
  for (const [pair, ratios] of Object.entries(result.ratios)) {
    const [name, target] = ratioOf(pair);
    rows.push(valueRow(name, median(ratios), 'ratio', target, `median; per round ${perRound(ratios)}`));
  }
  for (const [pair, ratios] of Object.entries(result.cpuRatios)) {
    const [name] = ratioOf(pair);
    const micros = (result.sides[pair] ?? [])
      .map((side) => `${side} ${median(result.cpu[side] ?? []).toFixed(2)} µs`)
      .join(', ');
    rows.push(
      valueRow(`${name}_cpu`, median(ratios), 'ratio', null, `median; per round ${perRound(ratios)}; ${micros}`),
    );
  }
}

function perRound(ratios: readonly number[]): string {
  return ratios.map((x) => x.toFixed(2)).join(' ');
}

function meanRps(results: readonly RedisBenchmarkResult[]): number {
  return results.reduce((sum, r) => sum + r.rps, 0) / results.length;
}

/** A rate row of several rounds: their mean, with each round's rate in the note. */
function meanRow(name: string, results: readonly RedisBenchmarkResult[], requests: number): Row {
  const rounds = results.map((r) => Math.round(r.rps / 1000)).join('k ');
  const last = results.at(-1) as RedisBenchmarkResult;
  const note = `n ${requests} × ${results.length}; rounds ${rounds}k; last p50 ${last.p50LatencyMs} ms, p99 ${last.p99LatencyMs} ms`;
  return row(name, { nsPerOp: null, opsPerSec: meanRps(results), ops: requests * results.length }, null, note);
}

/** -n for a row that fsyncs before every reply: about `alwaysSeconds` of its rate in a short probe run, at most `n`. */
async function sizedAlways(target: Endpoint, command: readonly string[], p: Pipeline, n: number): Promise<number> {
  const probeN = cfg.alwaysProbeRequests[p];
  const probeRun = await bench(target, command, p, probeN);
  const sized = Math.round((probeRun.rps * cfg.alwaysSeconds) / 1000) * 1000;
  return Math.min(n, Math.max(probeN, sized));
}

async function rpcRows(hati: Hati, rows: Row[]): Promise<void> {
  const port = hati.rpcPort as number;
  const keys = Array.from({ length: 1000 }, (_, i) => randKey(i));
  await preloadRpc(port, keys, cfg.value);
  for (const method of ['Storage.Get', 'Storage.Set'] as const) {
    const params =
      method === 'Storage.Set'
        ? { type: 'memory', key: randKey(1), value: cfg.value, ttl: 0 }
        : { type: 'memory', key: randKey(1) };
    const check = await rpcCall(port, { jsonrpc: '2.0', id: 1, method, params });
    if (check.status !== 200 || check.text !== expectedResponse(method, cfg.value)) {
      throw new Error(`JSON-RPC ${method}: HTTP ${check.status} ${check.text.slice(0, 300)}`);
    }
  }
  log(
    `JSON-RPC: ${cfg.clients} keep-alive connections, ${cfg.rpc.durationSeconds} s per method after ${cfg.rpc.warmupSeconds} s of warm-up, ${keys.length} preloaded keys`,
  );
  for (const method of ['Storage.Get', 'Storage.Set'] as const) {
    const load = { port, method, keys, value: cfg.value, connections: cfg.clients };
    await rpcLoad({ ...load, durationSeconds: cfg.rpc.warmupSeconds });
    assertAlive(hati);
    const r = await rpcLoad({ ...load, durationSeconds: cfg.rpc.durationSeconds });
    assertAlive(hati);
    rawRpc[method] = r;
    const failures = r.non2xx + r.errors + r.timeouts + r.mismatches;
    log(
      `  ${`Hati_RPC_${method}`.padEnd(26)} ${Math.round(r.requestsPerSec).toLocaleString('en-US').padStart(9)} req/s  (${r.requests} requests in ${r.durationSeconds} s, p50 ${r.p50LatencyMs} ms, p99 ${r.p99LatencyMs} ms; non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}, wrong bodies ${r.mismatches})`,
    );
    const target: Target | null = method === 'Storage.Get' ? { metric: 'opsPerSec', op: '>=', limit: 30_000 } : null;
    const note = `${r.requests} requests in ${r.durationSeconds} s, p50 ${r.p50LatencyMs} ms, p99 ${r.p99LatencyMs} ms`;
    const rpcRow = row(
      `Hati_RPC_${method}`,
      { nsPerOp: null, opsPerSec: r.requestsPerSec, ops: r.requests },
      target,
      note,
    );
    if (method === 'Storage.Get') rpcRow.goSeedOpsPerSec = GO_SEED_RPC_GET_PER_SEC;
    rows.push(rpcRow);
    rows.push(
      valueRow(
        `Hati_RPC_${method}_failures`,
        failures,
        'responses',
        { metric: 'value', op: '<=', limit: 0 },
        `non-2xx ${r.non2xx}, connection errors ${r.errors}, timeouts ${r.timeouts}, bodies other than the expected result ${r.mismatches}`,
      ),
    );
  }
  await rpcVersusEchoRows(hati, keys, rows);
}

/** Issue 12: Storage.Get at least 0.9 of what a bare node:http server answering the same JSON does. */
const ECHO_TARGET: Target = { metric: 'value', op: '>=', limit: 0.9 };

async function rpcVersusEchoRows(hati: Hati, keys: string[], rows: Row[]): Promise<void> {
  const echo = await startHttpEcho(cfg.value);
  try {
    log(
      `JSON-RPC Storage.Get against a bare node:http JSON echo on :${echo.port}: ${cfg.rpc.echoRounds} alternating rounds of ${cfg.rpc.echoSeconds} s after ${cfg.rpc.echoWarmupSeconds} s of warm-up each`,
    );
    const c = await rpcVersusEcho({
      hatiPort: hati.rpcPort as number,
      echoPort: echo.port,
      method: 'Storage.Get',
      keys,
      value: cfg.value,
      connections: cfg.clients,
      durationSeconds: cfg.rpc.echoSeconds,
      warmupSeconds: cfg.rpc.echoWarmupSeconds,
      rounds: cfg.rpc.echoRounds,
      afterRun: (side) => assertAlive(side === 'hati' ? hati : echo),
    });
    rawRpc.versusEcho = c;
    const perRound = c.ratios.map((r) => r.toFixed(2)).join(' ');
    log(`  Hati/echo per round: ${perRound}`);
    const rate = (runs: RpcLoadResult[]) => runs.reduce((sum, r) => sum + r.requestsPerSec, 0) / runs.length;
    const requests = (runs: RpcLoadResult[]) => runs.reduce((sum, r) => sum + r.requests, 0);
    rows.push(
      row(
        'Echo_RPC_Storage.Get',
        { nsPerOp: null, opsPerSec: rate(c.echo), ops: requests(c.echo) },
        null,
        'bare node:http JSON echo, mean of the rounds',
      ),
    );
    rows.push(
      row(
        'Hati_RPC_Storage.Get_vs_echo',
        { nsPerOp: null, opsPerSec: rate(c.hati), ops: requests(c.hati) },
        null,
        'the same rounds',
      ),
    );
    rows.push(
      valueRow('Hati/echo_RPC_Storage.Get', c.medianRatio, 'ratio', ECHO_TARGET, `median; per round ${perRound}`),
    );
    rows.push(
      valueRow('Hati/echo_RPC_failures', c.hatiFailures + c.echoFailures, 'responses', {
        metric: 'value',
        op: '<=',
        limit: 0,
      }),
    );
  } finally {
    log(`http-echo: ${await stopHttpEcho(echo)}`);
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  log(`server benchmark${cfg.quick ? ' (BENCH_QUICK: smoke run, numbers not comparable)' : ''}`);
  ensureRedisTools(log);
  const load = await loadAtStart(log);
  const rows: Row[] = [];
  const stops: string[] = [];
  const stats: Record<string, unknown> = {};

  const redises: Array<{ name: string; server: Started; dir: string | undefined }> = [];
  const hatis: Hati[] = [];
  const stopAll = async () => {
    for (const hati of hatis.splice(0)) stops.push(`${hati.name}: ${await stopHati(hati)}`);
    for (const redis of redises.splice(0)) {
      stops.push(`${redis.name}: ${await stopProcess(redis.server)}`);
      if (redis.dir !== undefined) await removeDataDir(redis.dir);
    }
  };
  /** redis-server, with its append-only file in a new temporary directory when `fsync` is given. */
  const redisEndpoint = async (name: string, fsync?: 'everysec' | 'always'): Promise<Endpoint> => {
    const dir = fsync === undefined ? undefined : await tempDataDir('redis-bench-aof-');
    const args = dir === undefined ? [] : ['--dir', dir, '--appendonly', 'yes', '--appendfsync', fsync as string];
    const server = await startRedis(args);
    redises.push({ name, server, dir });
    return { name, port: server.port, server };
  };
  const hatiEndpoint = async (durability: 'no' | 'everysec' | 'always'): Promise<Endpoint> => {
    const hati = await startHati({ durability, tcp: true, rpc: false });
    hatis.push(hati);
    return { name: hati.name, port: hati.tcpPort as number, server: hati };
  };
  try {
    const servers: TcpServers = {
      redis: await redisEndpoint('redis-server'),
      redisEverysec: await redisEndpoint('redis-server (AOF everysec)', 'everysec'),
      redisAlways: await redisEndpoint('redis-server (AOF always)', 'always'),
      hatiNo: await hatiEndpoint('no'),
      hatiEverysec: await hatiEndpoint('everysec'),
      hatiAlways: await hatiEndpoint('always'),
    };
    log(
      Object.values(servers)
        .map((e) => `${e.name} on 127.0.0.1:${e.port}`)
        .join(', '),
    );
    await tcpRows(servers, rows);
    for (const hati of hatis) stats[hati.name] = await hatiStats(hati);
    await stopAll();

    const hatiRpc = await startHati({ durability: 'no', tcp: false, rpc: true });
    hatis.push(hatiRpc);
    log(`hati (json-rpc) on http://127.0.0.1:${hatiRpc.rpcPort}/`);
    await rpcRows(hatiRpc, rows);
  } finally {
    await stopAll();
  }
  for (const line of stops) {
    if (!line.includes('exited (code 0,')) log(`warning: ${line}`);
  }

  process.stdout.write(`\n${table(rows)}\n\n`);
  process.stdout.write(
    `Seed Go server on this machine: about ${GO_SEED_RPC_GET_PER_SEC.toLocaleString('en-US')} Storage.Get/s over JSON-RPC.\n`,
  );
  process.stdout.write(
    'The machine is shared: redis-benchmark (or autocannon), the server under test and this harness run on the same cores.\n',
  );
  if (load.busyWarning !== undefined) process.stdout.write(`${load.busyWarning}\n`);
  await finish('server', cfg.quick, rows, {
    date: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: {
      ...loadedMachine(load),
      redisServer: toolVersion('redis-server'),
      redisBenchmark: toolVersion('redis-benchmark'),
      note: 'client, server and harness share the machine cores',
    },
    hati: { version: packageVersion(join(repoRoot, 'packages/cli')), ...gitInfo(repoRoot) },
    config: cfg,
    goSeedRpcGetPerSec: GO_SEED_RPC_GET_PER_SEC,
    redisBenchmarkRuns: raw,
    rpcRuns: rawRpc,
    hatiStatsAfterTcpRows: stats,
    serverExits: stops,
  });
  return 0;
}

process.exitCode = await main();
