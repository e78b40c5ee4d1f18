// Where a server's time goes: runs `hati start` under V8's sampling profiler (--cpu-prof) while
// redis-benchmark sends one workload, then prints the functions with the most self time.
// `npm run bench -- profile` profiles each workload in its own server process; BENCH_QUICK=1
// sends fewer requests. The summaries in benchmarks/README.md come from here.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quick } from './config.js';
import { ensureRedisTools, startHati, stopHati } from './procs.js';
import { RAND_KEY, redisBenchmark } from './redis-benchmark.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Workload {
  name: string;
  durability: 'no' | 'everysec' | 'always';
  commands: string[][];
}

const VALUE = 'v123456789abcdef';
const workloads: Workload[] = [
  {
    name: 'memory GET and SET, -P 16',
    durability: 'no',
    commands: [
      ['SET', 'memory', '0', RAND_KEY, VALUE],
      ['GET', 'memory', RAND_KEY],
    ],
  },
  {
    name: 'hdd SET, durability everysec, -P 16',
    durability: 'everysec',
    commands: [['SET', 'hdd', '0', RAND_KEY, VALUE]],
  },
];
const REQUESTS = quick ? 100_000 : 1_000_000;
const TOP = 20;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name, file and line), in ms, and the total and idle time. */
function selfTimes(profile: Profile): { byFunction: Map<string, number>; totalMs: number; idleMs: number } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const frame = byId.get(profile.samples[i] as number)?.callFrame;
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    if (frame === undefined) continue;
    if (frame.functionName === '(idle)') idleMs += ms;
    const file = frame.url === '' ? '' : ` ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
    const name = `${frame.functionName || '(anonymous)'}${file}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  }
  return { byFunction, totalMs, idleMs };
}

async function profileOne(workload: Workload): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hati-profile-'));
  try {
    const hati = await startHati({
      durability: workload.durability,
      tcp: true,
      rpc: false,
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir],
    });
    try {
      const run = { port: hati.tcpPort as number, clients: 50, pipeline: 16, keyspace: 100_000, timeoutMs: 300_000 };
      for (const command of workload.commands) {
        const result = await redisBenchmark({ ...run, command, requests: REQUESTS });
        log(`  ${command.join(' ')}: ${Math.round(result.rps).toLocaleString('en-US')} req/s`);
      }
    } finally {
      await stopHati(hati);
    }
    const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error(`no .cpuprofile written in ${dir}`);
    const { byFunction, totalMs, idleMs } = selfTimes(JSON.parse(await readFile(join(dir, file), 'utf8')) as Profile);
    const busy = totalMs - idleMs;
    process.stdout.write(
      `\n${workload.name}: ${(busy / 1000).toFixed(1)} s busy of ${(totalMs / 1000).toFixed(1)} s; self time, % of busy:\n`,
    );
    const top = [...byFunction].filter(([name]) => !name.startsWith('(idle)')).sort((a, b) => b[1] - a[1]);
    for (const [name, ms] of top.slice(0, TOP)) {
      process.stdout.write(`${((100 * ms) / busy).toFixed(1).padStart(6)}%  ${name}\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  ensureRedisTools(log);
  for (const workload of workloads) {
    log(`profiling: ${workload.name}, ${REQUESTS} requests per command`);
    await profileOne(workload);
  }
  return 0;
}

process.exitCode = await main();
