// What credentials and TLS cost: redis-benchmark against four `hati start` servers that differ
// only in that (plain; a password, given as HATI_PASSWORD; a users file whose one user may touch
// one key prefix, so every command goes through the permission check; TLS), run after run,
// interleaved, so that each run with credentials or TLS lies between two plain runs; redis-server
// plain and with TLS beside them; then JSON-RPC Storage.Get with and without Authorization. Every
// server is started here on 127.0.0.1 and stopped at the end, also on an error. Prints a table
// with the targets and writes results/security.json (results/security.quick.json with BENCH_QUICK=1).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect as connectTcp, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as connectTls, TLSSocket } from 'node:tls';
import * as server from '@hati/server';
import { RawClient, type Reply, ReplyError, showReply } from '@hati/test-helpers';
import {
  assertAlive,
  ensureRedisTools,
  freePort,
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
import {
  RAND_KEY,
  type RedisBenchmarkResult,
  randKey,
  redisBenchmark,
  redisBenchmarkArgs,
  shownArgs,
} from './redis-benchmark.js';
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
import { expectedResponse, type RpcLoadResult, rpcCall, rpcLoad } from './rpc-load.js';
import { securityConfig as cfg, type Pipeline } from './security-config.js';

type ServerModule = typeof server;

const log = (line: string) => process.stderr.write(`${line}\n`);
const VARIANTS = ['plain', 'password', 'users', 'tls'] as const;
type Variant = (typeof VARIANTS)[number];
type System = 'Hati' | 'Redis';

interface Endpoint {
  system: System;
  variant: Variant;
  name: string;
  port: number;
  server: Started;
  /** AUTH [user] password on every connection. */
  password?: string;
  user?: string;
  /** The CA file that verifies the server's certificate: the endpoint speaks TLS. */
  tlsCaFile?: string;
}

interface Secrets {
  dir: string;
  caFile: string;
  caPem: string;
  certFile: string;
  keyFile: string;
  usersFile: string;
  defaultPassword: string;
  userPassword: string;
  token: string;
  /** Time to make the three certificates and to hash the user's password (scrypt), ms. */
  certificatesMs: number;
  hashMs: number;
}

interface Run {
  system: System;
  variant: Variant;
  command: 'SET' | 'GET';
  pipeline: Pipeline;
  round: number;
  args: string[];
  result: RedisBenchmarkResult;
  /** CPU time of the server and of redis-benchmark during the run, ms (null off Linux). */
  serverCpuMs: number | null;
  clientCpuMs: number | null;
}

const runs: Run[] = [];
const rpcRuns: Array<{ kind: string; round: number; result: RpcLoadResult }> = [];

function commandArgs(system: System, command: 'SET' | 'GET'): string[] {
  if (system === 'Redis') return command === 'SET' ? ['SET', RAND_KEY, cfg.value] : ['GET', RAND_KEY];
  return command === 'SET' ? ['SET', 'memory', '0', RAND_KEY, cfg.value] : ['GET', 'memory', RAND_KEY];
}

/** The certificates, the users file and the passwords, in a new temporary directory. */
async function makeSecrets(hati: ServerModule): Promise<Secrets> {
  const dir = await tempDataDir('hati-bench-security-');
  let at = performance.now();
  const certificates = hati.createCertificates({ hosts: ['127.0.0.1', 'localhost'] });
  const certificatesMs = performance.now() - at;
  const file = (name: string) => join(dir, name);
  await writeFile(file('ca.pem'), certificates.ca.cert);
  await writeFile(file('server.pem'), certificates.server.cert);
  await writeFile(file('server-key.pem'), certificates.server.key, { mode: 0o600 });
  const defaultPassword = randomBytes(18).toString('base64url');
  const userPassword = randomBytes(18).toString('base64url');
  at = performance.now();
  const hashed = await hati.hashPassword(userPassword);
  const hashMs = performance.now() - at;
  const { token, stored } = hati.newToken();
  const usersFile = file('users.json');
  await hati.writeUsersFile(usersFile, {
    version: 1,
    users: [
      {
        name: cfg.user.name,
        password: hashed,
        tokens: [stored],
        read: [cfg.user.keyRule],
        write: [cfg.user.keyRule],
      },
    ],
  });
  return {
    dir,
    caFile: file('ca.pem'),
    caPem: certificates.ca.cert,
    certFile: file('server.pem'),
    keyFile: file('server-key.pem'),
    usersFile,
    defaultPassword,
    userPassword,
    token,
    certificatesMs,
    hashMs,
  };
}

/** A connection to the endpoint, over TLS when it speaks TLS; without AUTH. */
function open(target: Endpoint, caPem: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      target.tlsCaFile === undefined
        ? connectTcp(target.port, '127.0.0.1')
        : connectTls({ host: '127.0.0.1', port: target.port, ca: caPem });
    socket.once(target.tlsCaFile === undefined ? 'connect' : 'secureConnect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Our own client on the endpoint, logged in as redis-benchmark logs in (AUTH). */
async function client(target: Endpoint, caPem: string, login = true): Promise<RawClient> {
  const c = new RawClient(await open(target, caPem));
  if (login && target.password !== undefined) {
    const args = target.user === undefined ? [target.password] : [target.user, target.password];
    const reply = await c.command('AUTH', ...args);
    if (reply !== 'OK') {
      c.close();
      throw new Error(`${target.name}: AUTH got ${showReply(reply)}`);
    }
  }
  return c;
}

/** What our TLS client negotiated with a TLS endpoint (redis-benchmark's OpenSSL picks the same by default). */
interface TlsFacts {
  protocol: string | null;
  cipher: string;
}

function expectError(reply: Reply, code: string, what: string): void {
  if (!(reply instanceof ReplyError) || reply.code !== code) {
    throw new Error(`${what}: got ${showReply(reply)}, want -${code}`);
  }
}

/**
 * Checks that each endpoint does what its row claims to measure (one SET and one GET of a row's
 * kind answer right; without AUTH a protected server answers NOAUTH; the users' user gets NOPERM
 * outside its prefix, so the permission check runs), then preloads the keyspace.
 */
async function probeAndPreload(target: Endpoint, caPem: string): Promise<TlsFacts | undefined> {
  let tls: TlsFacts | undefined;
  if (target.password !== undefined) {
    const anonymous = await client(target, caPem, false);
    try {
      expectError(
        await anonymous.command(...commandArgs(target.system, 'GET').map((a) => a.replace('__rand_int__', '1'))),
        'NOAUTH',
        `${target.name}: GET before AUTH`,
      );
    } finally {
      anonymous.close();
    }
  }
  const c = await client(target, caPem);
  try {
    if (c.socket instanceof TLSSocket) {
      tls = { protocol: c.socket.getProtocol(), cipher: c.socket.getCipher().standardName };
    }
    if (target.variant === 'users') {
      expectError(await c.command('GET', 'memory', 'other:1'), 'NOPERM', `${target.name}: GET outside the prefix`);
      expectError(await c.command('GET', 'hdd', randKey(1)), 'NOPERM', `${target.name}: GET of another storage type`);
    }
    const set = (k: string) =>
      target.system === 'Redis' ? ['SET', k, cfg.value] : ['SET', 'memory', '0', k, cfg.value];
    const chunk = 1000;
    for (let i = 0; i < cfg.keyspace; i += chunk) {
      const commands: string[][] = [];
      for (let j = i; j < Math.min(i + chunk, cfg.keyspace); j++) commands.push(set(randKey(j)));
      const replies = await c.send(commands);
      const bad = replies.find((r) => r !== 'OK');
      if (bad !== undefined) throw new Error(`${target.name}: preload ${commands[0]?.join(' ')} got ${showReply(bad)}`);
    }
    // COUNT needs the right to read every key of memory, which the users' user lacks.
    if (target.variant !== 'users') {
      const count = target.system === 'Redis' ? ['DBSIZE'] : ['COUNT', 'memory'];
      const counted = (await c.send([count]))[0];
      if (counted !== cfg.keyspace) {
        throw new Error(`${target.name}: ${count.join(' ')} got ${showReply(counted)}, want ${cfg.keyspace}`);
      }
    }
    for (const i of [0, 42, cfg.keyspace - 1]) {
      const got = await c.command(...commandArgs(target.system, 'GET').map((a) => a.replace(RAND_KEY, randKey(i))));
      if (!Buffer.isBuffer(got) || got.toString() !== cfg.value) {
        throw new Error(`${target.name}: GET ${randKey(i)} got ${showReply(got)}, want ${cfg.value}`);
      }
    }
  } finally {
    c.close();
  }
  return tls;
}

/**
 * CPU time (user + system) of a process from /proc, ms; with `children`, of its children that
 * have exited and been waited for (so the harness sees each finished redis-benchmark's). Linux
 * only (null elsewhere); clock ticks taken as 10 ms, Linux's USER_HZ.
 */
function cpuMs(pid: number | 'self', children = false): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name, from field 3 (state): utime is field 14, cutime 16.
    const fields = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    const [user, system] = children ? [fields[13], fields[14]] : [fields[11], fields[12]];
    return user === undefined || system === undefined ? null : (user + system) * 10;
  } catch {
    return null;
  }
}

function delta(after: number | null, before: number | null): number | null {
  return after === null || before === null ? null : after - before;
}

async function bench(
  target: Endpoint,
  command: 'SET' | 'GET',
  pipeline: Pipeline,
  requests: number,
  round?: number,
): Promise<RedisBenchmarkResult> {
  assertAlive(target.server);
  const run = {
    port: target.port,
    command: commandArgs(target.system, command),
    clients: cfg.clients,
    requests,
    pipeline,
    keyspace: cfg.keyspace,
    timeoutMs: cfg.rowTimeoutMs,
    ...(target.password !== undefined && { password: target.password }),
    ...(target.user !== undefined && { user: target.user }),
    ...(target.tlsCaFile !== undefined && { tlsCaFile: target.tlsCaFile }),
  };
  const pid = target.server.child.pid as number;
  const before = { server: cpuMs(pid), client: cpuMs('self', true) };
  let result: RedisBenchmarkResult;
  try {
    result = await redisBenchmark(run);
  } catch (err) {
    throw new Error(`${target.name}: ${(err as Error).message}\nserver output:\n${target.server.output().trimEnd()}`);
  }
  const serverCpuMs = delta(cpuMs(pid), before.server);
  const clientCpuMs = delta(cpuMs('self', true), before.client);
  assertAlive(target.server);
  if (round !== undefined) {
    const args = shownArgs(redisBenchmarkArgs(run));
    runs.push({
      system: target.system,
      variant: target.variant,
      command,
      pipeline,
      round,
      args,
      result,
      serverCpuMs,
      clientCpuMs,
    });
    const label = `${target.system}_${target.variant}_${command}_P${pipeline}`;
    const cpu =
      serverCpuMs === null || clientCpuMs === null
        ? ''
        : `; cpu: server ${Math.round((100 * serverCpuMs) / result.wallMs)} %, redis-benchmark ${Math.round((100 * clientCpuMs) / result.wallMs)} %`;
    log(
      `  ${label.padEnd(24)} ${Math.round(result.rps).toLocaleString('en-US').padStart(9)} req/s  (round ${round}, p50 ${result.p50LatencyMs} ms, p99 ${result.p99LatencyMs} ms, ${(result.wallMs / 1000).toFixed(1)} s${cpu})`,
    );
  }
  return result;
}

/** (max - min) / mean of the plain runs: how far two runs of the same server drift apart. */
function spread(values: readonly number[]): number {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return (Math.max(...values) - Math.min(...values)) / mean;
}

/**
 * The ratio of each variant run to the mean of the plain runs just before and just after it
 * (round r lies between plain runs r and r + 1); the median over the rounds.
 */
function bracketedRatio(plain: readonly number[], variant: readonly number[]): number {
  return median(variant.map((v, r) => v / (((plain[r] as number) + (plain[r + 1] as number)) / 2)));
}

function runsText(values: readonly number[]): string {
  return values.map((v) => Math.round(v).toLocaleString('en-US')).join(', ');
}

/** Runs of one system, one command and one depth: a round is plain then each other variant; one more plain at the end. */
async function interleaved(
  targets: readonly Endpoint[],
  command: 'SET' | 'GET',
  p: Pipeline,
): Promise<Map<Variant, number[]>> {
  const rps = new Map<Variant, number[]>(targets.map((t) => [t.variant, []]));
  const plain = targets.find((t) => t.variant === 'plain') as Endpoint;
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const target of targets) {
      rps.get(target.variant)?.push((await bench(target, command, p, cfg.requests[p], round)).rps);
    }
  }
  rps.get('plain')?.push((await bench(plain, command, p, cfg.requests[p], cfg.rounds + 1)).rps);
  return rps;
}

function tcpRows(system: System, rps: Map<Variant, number[]>, command: string, p: Pipeline, rows: Row[]): void {
  const suffix = `${command}_P${p}`;
  const plain = rps.get('plain') as number[];
  const plainSpread = spread(plain);
  const n = cfg.requests[p];
  for (const [variant, values] of rps) {
    rows.push(
      row(
        `${system}_${variant}_${suffix}`,
        { nsPerOp: null, opsPerSec: median(values), ops: n * values.length },
        null,
        `median of runs ${runsText(values)}`,
      ),
    );
  }
  rows.push(
    valueRow(
      `${system}_plain_spread_${suffix}`,
      plainSpread,
      'ratio',
      null,
      '(max - min) / mean of the plain runs: the drift between runs of one unchanged server',
    ),
  );
  for (const variant of VARIANTS) {
    const values = rps.get(variant);
    if (variant === 'plain' || values === undefined) continue;
    let target: Target | null = null;
    if (variant === 'password' || variant === 'users') {
      // "No measurable cost": the ratio is no further below 1 than the plain runs are apart.
      target = { metric: 'value', op: '>=', limit: 1 - plainSpread };
    } else if (system === 'Hati' && p === 16) {
      target = { metric: 'value', op: '>=', limit: 0.6 };
    }
    rows.push(
      valueRow(
        `${system}_${variant}/plain_${suffix}`,
        bracketedRatio(plain, values),
        'ratio',
        target,
        'each run over the mean of the plain runs before and after it; median of the rounds',
      ),
    );
  }
}

interface CpuSummary {
  row: string;
  serverUsPerRequest: number;
  serverCorePercent: number;
  clientUsPerRequest: number;
  clientCorePercent: number;
}

/** Per row: CPU time per request of the server and of redis-benchmark, and the share of a core each used (medians). */
function cpuSummary(): CpuSummary[] {
  const groups = new Map<string, Run[]>();
  for (const r of runs) {
    const name = `${r.system}_${r.variant}_${r.command}_P${r.pipeline}`;
    groups.set(name, [...(groups.get(name) ?? []), r]);
  }
  const out: CpuSummary[] = [];
  for (const [name, list] of groups) {
    if (list.some((r) => r.serverCpuMs === null || r.clientCpuMs === null)) continue;
    const requests = cfg.requests[list[0]?.pipeline as Pipeline];
    const of = (f: (r: Run) => number) => Number(median(list.map(f)).toFixed(2));
    out.push({
      row: name,
      serverUsPerRequest: of((r) => ((r.serverCpuMs as number) * 1000) / requests),
      serverCorePercent: of((r) => (100 * (r.serverCpuMs as number)) / r.result.wallMs),
      clientUsPerRequest: of((r) => ((r.clientCpuMs as number) * 1000) / requests),
      clientCorePercent: of((r) => (100 * (r.clientCpuMs as number)) / r.result.wallMs),
    });
  }
  return out;
}

function cpuTable(summary: readonly CpuSummary[]): string {
  const lines = summary.map((c) =>
    [
      c.row.padEnd(22),
      c.serverUsPerRequest.toFixed(2).padStart(12),
      `${Math.round(c.serverCorePercent)} %`.padStart(13),
      c.clientUsPerRequest.toFixed(2).padStart(16),
      `${Math.round(c.clientCorePercent)} %`.padStart(17),
    ].join('  '),
  );
  const header = `${'row'.padEnd(22)}  server µs/req  server a core  redis-bench µs/req  redis-bench a core`;
  return [header, ...lines].join('\n');
}

function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

interface RpcKind {
  kind: string;
  hati: Hati;
  headers: Record<string, string>;
}

async function rpcRows(kinds: readonly RpcKind[], protectedServer: Hati, rows: Row[]): Promise<void> {
  const keys = Array.from({ length: cfg.rpc.keys }, (_, i) => randKey(i));
  const call = { jsonrpc: '2.0', id: 1, method: 'Storage.Get', params: { type: 'memory', key: randKey(1) } };
  // Without credentials a protected server refuses: the rows with credentials cannot pass by accident.
  const refused = await rpcCall(protectedServer.rpcPort as number, call);
  const code = (JSON.parse(refused.text) as { error?: { data?: { code?: string } } }).error?.data?.code;
  if (refused.status !== 401 || code !== 'NOAUTH') {
    throw new Error(
      `JSON-RPC without credentials: HTTP ${refused.status} ${refused.text.slice(0, 300)}, want 401 NOAUTH`,
    );
  }
  for (const { kind, hati, headers } of kinds) {
    const check = await rpcCall(hati.rpcPort as number, call, headers);
    if (check.status !== 200 || check.text !== expectedResponse('Storage.Get', cfg.value)) {
      throw new Error(`JSON-RPC Storage.Get (${kind}): HTTP ${check.status} ${check.text.slice(0, 300)}`);
    }
  }
  log(
    `JSON-RPC Storage.Get: ${cfg.clients} keep-alive connections, ${cfg.rpc.durationSeconds} s per run after ${cfg.rpc.warmupSeconds} s of warm-up of each kind, ${keys.length} keys`,
  );
  const load = (k: RpcKind, durationSeconds: number) =>
    rpcLoad({
      port: k.hati.rpcPort as number,
      method: 'Storage.Get',
      keys,
      value: cfg.value,
      connections: cfg.clients,
      durationSeconds,
      headers: k.headers,
    });
  for (const k of kinds) {
    await load(k, cfg.rpc.warmupSeconds);
    assertAlive(k.hati);
  }
  const measured = new Map<string, number[]>(kinds.map((k) => [k.kind, []]));
  let failures = 0;
  const measure = async (k: RpcKind, round: number) => {
    const r = await load(k, cfg.rpc.durationSeconds);
    assertAlive(k.hati);
    rpcRuns.push({ kind: k.kind, round, result: r });
    measured.get(k.kind)?.push(r.requestsPerSec);
    const bad = r.non2xx + r.errors + r.timeouts + r.mismatches;
    failures += bad;
    log(
      `  ${`Hati_RPC_Get_${k.kind}`.padEnd(26)} ${Math.round(r.requestsPerSec).toLocaleString('en-US').padStart(9)} req/s  (p50 ${r.p50LatencyMs} ms, p99 ${r.p99LatencyMs} ms${bad === 0 ? '' : `; ${bad} failed`})`,
    );
  };
  for (const k of kinds) await measure(k, 1);
  await measure(kinds[0] as RpcKind, 2);

  const plain = measured.get('plain') as number[];
  for (const [kind, values] of measured) {
    rows.push(
      row(`Hati_RPC_Get_${kind}`, { nsPerOp: null, opsPerSec: median(values) }, null, `runs ${runsText(values)}`),
    );
  }
  rows.push(valueRow('Hati_RPC_Get_plain_spread', spread(plain), 'ratio', null));
  for (const [kind, values] of measured) {
    if (kind === 'plain') continue;
    rows.push(valueRow(`Hati_RPC_Get_${kind}/plain`, bracketedRatio(plain, values), 'ratio', null));
  }
  rows.push(
    valueRow(
      'Hati_RPC_failures',
      failures,
      'responses',
      { metric: 'value', op: '<=', limit: 0 },
      'non-2xx, connection errors, timeouts and bodies other than the expected result, over every measured run',
    ),
  );
}

/** Times the first AUTH of the users' user (scrypt) and a second one (remembered), ms. */
async function authTimes(target: Endpoint, caPem: string): Promise<{ firstMs: number; againMs: number }> {
  const once = async () => {
    const at = performance.now();
    (await client(target, caPem)).close();
    return performance.now() - at;
  };
  const firstMs = await once();
  return { firstMs, againMs: await once() };
}

async function main(): Promise<number> {
  const started = Date.now();
  log(`credentials and TLS benchmark${cfg.quick ? ' (BENCH_QUICK: smoke run, numbers not comparable)' : ''}`);
  ensureRedisTools(log);
  const load = await loadAtStart(log);
  const rows: Row[] = [];
  const stops: string[] = [];
  const negotiated: Record<string, TlsFacts> = {};

  const secrets = await makeSecrets(server);
  const hatis: Hati[] = [];
  const redises: Started[] = [];
  const stopAll = async () => {
    for (const hati of hatis.splice(0)) stops.push(`${hati.name}: ${await stopHati(hati)}`);
    for (const redis of redises.splice(0)) stops.push(`${redis.name}: ${await stopProcess(redis)}`);
  };
  let redisTlsSkipped: string | undefined;
  let auth: { firstMs: number; againMs: number } | undefined;
  try {
    const hati = async (variant: Variant, rpc: boolean, args: string[], env: Record<string, string> = {}) => {
      const h = await startHati({ durability: 'no', tcp: true, rpc, args, env, label: variant });
      hatis.push(h);
      return h;
    };
    const hPlain = await hati('plain', true, []);
    const hPassword = await hati('password', true, [], { HATI_PASSWORD: secrets.defaultPassword });
    const hUsers = await hati('users', true, ['--users-file', secrets.usersFile]);
    const hTls = await hati('tls', false, ['--tcp-tls', '--tls-cert', secrets.certFile, '--tls-key', secrets.keyFile]);
    const endpoint = (h: Hati, variant: Variant, extra: Partial<Endpoint> = {}): Endpoint => ({
      system: 'Hati',
      variant,
      name: h.name,
      port: h.tcpPort as number,
      server: h,
      ...extra,
    });
    const hatiTargets = [
      endpoint(hPlain, 'plain'),
      endpoint(hPassword, 'password', { password: secrets.defaultPassword }),
      endpoint(hUsers, 'users', { user: cfg.user.name, password: secrets.userPassword }),
      endpoint(hTls, 'tls', { tlsCaFile: secrets.caFile }),
    ];

    const rPlain = await startRedis();
    redises.push(rPlain);
    const redisTargets: Endpoint[] = [
      { system: 'Redis', variant: 'plain', name: 'redis-server', port: rPlain.port, server: rPlain },
    ];
    const tlsPort = await freePort();
    try {
      const rTls = await startRedis([
        '--port',
        '0',
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        secrets.certFile,
        '--tls-key-file',
        secrets.keyFile,
        '--tls-ca-cert-file',
        secrets.caFile,
        '--tls-auth-clients',
        'no',
      ]);
      redises.push(rTls);
      redisTargets.push({
        system: 'Redis',
        variant: 'tls',
        name: 'redis-server (tls)',
        port: tlsPort,
        server: rTls,
        tlsCaFile: secrets.caFile,
      });
    } catch (err) {
      redisTlsSkipped = (err as Error).message.split('\n').slice(0, 4).join(' | ');
      log(`redis-server with TLS did not start, its rows are left out: ${redisTlsSkipped}`);
    }
    log(
      `hati on 127.0.0.1: ${hatiTargets.map((t) => `${t.variant} :${t.port}`).join(', ')}; redis-server: ${redisTargets.map((t) => `${t.variant} :${t.port}`).join(', ')}`,
    );

    const usersTarget = hatiTargets[2] as Endpoint;
    auth = await authTimes(usersTarget, secrets.caPem);
    log(
      `users file: AUTH of '${cfg.user.name}' took ${auth.firstMs.toFixed(0)} ms the first time (scrypt), ${auth.againMs.toFixed(1)} ms the second (remembered)`,
    );
    log(`probing and preloading ${cfg.keyspace} keys into every server`);
    for (const target of [...hatiTargets, ...redisTargets]) {
      const tls = await probeAndPreload(target, secrets.caPem);
      if (tls !== undefined) negotiated[target.system] = tls;
    }

    log(`warm-up (${cfg.warmupRequests} requests per command at -P 16, not measured)`);
    for (const target of [...hatiTargets, ...redisTargets]) {
      for (const command of ['SET', 'GET'] as const) await bench(target, command, 16, cfg.warmupRequests);
    }

    for (const p of cfg.pipelines) {
      for (const command of ['SET', 'GET'] as const) {
        log(
          `${command}, -P ${p}, -n ${cfg.requests[p]}, -c ${cfg.clients}, -r ${cfg.keyspace}, ${cfg.rounds} round(s):`,
        );
        tcpRows('Hati', await interleaved(hatiTargets, command, p), command, p, rows);
        tcpRows('Redis', await interleaved(redisTargets, command, p), command, p, rows);
      }
    }

    await rpcRows(
      [
        { kind: 'plain', hati: hPlain, headers: {} },
        { kind: 'password_Basic', hati: hPassword, headers: basic('default', secrets.defaultPassword) },
        { kind: 'users_Basic', hati: hUsers, headers: basic(cfg.user.name, secrets.userPassword) },
        { kind: 'users_Bearer', hati: hUsers, headers: { authorization: `Bearer ${secrets.token}` } },
      ],
      hPassword,
      rows,
    );
  } finally {
    await stopAll();
    await removeDataDir(secrets.dir);
  }
  for (const line of stops) {
    if (!line.includes('exited (code 0,')) log(`warning: ${line}`);
  }
  if (auth !== undefined) {
    rows.push(valueRow('Hati_users_first_AUTH_ms', auth.firstMs, 'ms', null, 'scrypt (N=2^17) on the first login'));
    rows.push(valueRow('Hati_users_later_AUTH_ms', auth.againMs, 'ms', null, 'connect + AUTH, password remembered'));
  }

  const cpu = cpuSummary();
  process.stdout.write(`\n${table(rows)}\n\n`);
  if (cpu.length > 0) {
    process.stdout.write(
      `CPU per request and share of one core used, server and redis-benchmark (medians of the runs):\n${cpuTable(cpu)}\n\n`,
    );
  }
  process.stdout.write(
    `Ratios: each run with credentials or TLS over the mean of the plain runs of the same server just before and after it (median of ${cfg.rounds} round(s)); spread: (max - min) / mean of the plain runs.\n`,
  );
  process.stdout.write(
    'The machine is shared: redis-benchmark (or autocannon), the server under test and this harness run on the same cores.\n',
  );
  if (redisTlsSkipped !== undefined) process.stdout.write(`redis-server TLS rows left out: ${redisTlsSkipped}\n`);
  if (load.busyWarning !== undefined) process.stdout.write(`${load.busyWarning}\n`);
  await finish('security', cfg.quick, rows, {
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
    setup: {
      certificatesMs: Math.round(secrets.certificatesMs),
      hashPasswordMs: Math.round(secrets.hashMs),
      firstAuthMs: auth?.firstMs,
      laterAuthMs: auth?.againMs,
      tlsNegotiated: negotiated,
      redisTlsSkipped: redisTlsSkipped ?? null,
    },
    cpuPerRequest: cpu,
    redisBenchmarkRuns: runs,
    rpcRuns,
    serverExits: stops,
  });
  return 0;
}

process.exitCode = await main();
