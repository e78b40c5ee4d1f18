// The servers of the load benchmarks: redis-server and `hati start` (and the broker peers that
// broker-peers.ts starts with these helpers), child processes bound to 127.0.0.1 that are
// stopped when the benchmark ends, also on an error or a signal.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const hatiBin = join(repoRoot, 'packages/cli/dist/bin.cjs');

const running = new Set<ChildProcess>();
const dataDirs = new Set<string>();

// Last resort: a child still running when the harness exits (an uncaught error) is killed and
// the data directories are removed, so nothing outlives the benchmark.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});
// On a signal the servers get SIGTERM and up to 5 s to stop before the harness exits.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    process.stderr.write(`benchmark: ${signal}, stopping the servers\n`);
    const exits = [...running].map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of running) child.kill('SIGTERM');
    const timer = setTimeout(() => process.exit(130), 5000);
    void Promise.all(exits).then(() => {
      clearTimeout(timer);
      process.exit(130);
    });
  });
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** A command a benchmark runs, and the Debian package that installs it. */
export interface Tool {
  command: string;
  pkg: string;
}

/**
 * Makes sure the commands a benchmark needs are installed: when one is missing, installs its
 * Debian package with apt-get if the benchmark runs as root, else fails saying how to install it.
 * `command` may be a path (RabbitMQ's real scripts are not on PATH).
 */
export function ensureTools(log: (line: string) => void, tools: readonly Tool[]): void {
  const missing = tools.filter((t) => !onPath(t.command));
  if (missing.length === 0) return;
  const names = missing.map((t) => t.command).join(' and ');
  const packages = [...new Set(missing.map((t) => t.pkg))];
  const how = `apt-get update && apt-get install -y ${packages.join(' ')}`;
  if (process.getuid?.() !== 0 || !onPath('apt-get')) {
    throw new Error(
      `${names} not found. The benchmark needs them; install them (as root: ${how}) and run it again. It installs them itself only when run as root on a system with apt-get.`,
    );
  }
  log(`${names} not found: installing them (${how})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', ...packages]]) {
    const result = spawnSync('apt-get', args, { stdio: ['ignore', 2, 2], env });
    if (result.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (status ${result.status})`);
  }
  const still = missing.filter((t) => !onPath(t.command));
  if (still.length > 0)
    throw new Error(`${still.map((t) => t.command).join(' and ')} still not found after apt-get install`);
}

/**
 * Makes sure the Redis commands a benchmark needs (redis-server and redis-benchmark unless told)
 * are installed, as `ensureTools` does.
 */
export function ensureRedisTools(
  log: (line: string) => void,
  needed: readonly string[] = ['redis-server', 'redis-benchmark'],
): void {
  ensureTools(
    log,
    needed.map((command) => ({ command, pkg: command === 'redis-server' ? 'redis-server' : 'redis-tools' })),
  );
}

export function toolVersion(command: string): string {
  try {
    return execFileSync(command, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject()));
    });
  });
}

export interface Started {
  name: string;
  child: ChildProcess;
  /** The child's stdout and stderr so far, for error messages. */
  output: () => string;
  /** The match of `ready` on the output. */
  match: RegExpMatchArray;
}

/** Spawns a server and resolves once a line of its output matches `ready`. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  ready: RegExp,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 30_000,
): Promise<Started> {
  const child = spawn(command, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let text = '';
  const output = () => text;
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name}: ${why}\n${text.trimEnd()}`));
    };
    const timer = setTimeout(() => fail(`no line matching ${ready} within ${timeoutMs} ms`), timeoutMs);
    const onData = (chunk: Buffer) => {
      // Keeps the head of the output (errors at start-up) and a bounded tail.
      text = (text + chunk.toString()).slice(-64 * 1024);
      const match = text.match(ready);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ name, child, output, match });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => fail(err.message));
    child.once('exit', (code, signal) => {
      running.delete(child);
      fail(`exited before it was ready (code ${code}, signal ${signal})`);
    });
  });
}

/** Clock ticks a second, the unit of the CPU times in /proc/<pid>/stat. */
let clockTicks: number | undefined;

/**
 * CPU time a process has used so far, user and system, all its threads (LevelDB's and libuv's
 * included), in µs; read from /proc/<pid>/stat (proc(5)), in clock ticks of 10 ms here.
 */
export function cpuMicros(pid: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): the state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[14 - 3]) + Number(fields[15 - 3])) * 1e6) / clockTicks;
}

/** Throws, with the server's output, when it has exited. */
export function assertAlive(server: Started): void {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) {
    throw new Error(
      `${server.name} exited during the benchmark (code ${child.exitCode}, signal ${child.signalCode}):\n${server.output().trimEnd()}`,
    );
  }
}

/** Stops a server with SIGTERM (SIGKILL after `graceMs`) and resolves with how it ended. */
export function stopProcess(started: Started, graceMs = 15_000): Promise<string> {
  const { child } = started;
  if (child.exitCode !== null || child.signalCode !== null) {
    running.delete(child);
    return Promise.resolve(`had already exited (code ${child.exitCode}, signal ${child.signalCode})`);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve(
        signal === 'SIGKILL' ? 'killed (SIGKILL) after the grace period' : `exited (code ${code}, signal ${signal})`,
      );
    });
    child.kill('SIGTERM');
  });
}

/** Kills a process with SIGKILL, as a crash would, and resolves once it has exited. */
export function killProcess(started: Started): Promise<string> {
  const { child } = started;
  if (child.exitCode !== null || child.signalCode !== null) {
    running.delete(child);
    return Promise.resolve(`had already exited (code ${child.exitCode}, signal ${child.signalCode})`);
  }
  return new Promise((resolve) => {
    child.once('exit', (_code, signal) => {
      running.delete(child);
      resolve(`killed (${signal})`);
    });
    child.kill('SIGKILL');
  });
}

/** A new temporary directory, removed when the harness exits if `removeDataDir` has not removed it before. */
export async function tempDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dataDirs.add(dir);
  return dir;
}

export async function removeDataDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  dataDirs.delete(dir);
}

/**
 * redis-server on a free 127.0.0.1 port, without persistence or a config file; `extraArgs` come
 * last and so override those (`--dir <tmp> --appendonly yes --appendfsync always`).
 */
export async function startRedis(extraArgs: readonly string[] = []): Promise<Started & { port: number }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const args = [
      '--save',
      '',
      '--appendonly',
      'no',
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--daemonize',
      'no',
      ...extraArgs,
    ];
    try {
      return { ...(await startProcess('redis-server', 'redis-server', args, /Ready to accept connections/)), port };
    } catch (err) {
      lastError = err; // the port may have been taken in between: try another
    }
  }
  throw lastError;
}

export interface HatiOptions {
  durability: 'no' | 'everysec' | 'always';
  tcp: boolean;
  rpc: boolean;
  /** More `hati start` flags, after the others (`--users-file <path>`, `--tcp-tls --tls-cert <file> ...`). */
  args?: readonly string[];
  /** Variables for the server (`HATI_PASSWORD`), set after the harness's own HATI_* are left out. */
  env?: Readonly<Record<string, string>>;
  /** How messages name the server, instead of its durability. */
  label?: string;
  /** Options for node itself, before the script (`--cpu-prof`). */
  nodeArgs?: readonly string[];
  /**
   * A data directory to open instead of a new temporary one (a store written by an earlier
   * start, to measure its reopening); the caller removes it.
   */
  dataDir?: string;
}

export type Hati = Started & { tcpPort: number | undefined; rpcPort: number | undefined; dataDir: string };

/**
 * `hati start` on 127.0.0.1 with a new temporary data directory, on ports the server picks
 * (port 0) and reports in its "listening" lines. HATI_* variables are not passed on.
 */
export async function startHati(options: HatiOptions): Promise<Hati> {
  const dataDir = options.dataDir ?? (await tempDataDir('hati-bench-server-'));
  const args = [
    ...(options.nodeArgs ?? []),
    hatiBin,
    'start',
    '--data-dir',
    dataDir,
    '--hdd-durability',
    options.durability,
  ];
  if (options.tcp) args.push('--tcp', '--tcp-host', '127.0.0.1', '--tcp-port', '0');
  if (options.rpc) args.push('--rpc', '--rpc-host', '127.0.0.1', '--rpc-port', '0');
  args.push(...(options.args ?? []));
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HATI_'))),
    ...options.env,
  };
  // A TLS listener says so: `tcp (tls) listening on ...`.
  const tcpLine = /tcp(?: \(tls\))? listening on 127\.0\.0\.1:(\d+)/;
  const last = options.rpc ? /json-rpc listening on http:\/\/127\.0\.0\.1:(\d+)\// : tcpLine;
  const name = `hati (${options.label ?? `durability ${options.durability}`}${options.rpc ? ', json-rpc' : ''})`;
  try {
    const started = await startProcess(name, process.execPath, args, last, env);
    const port = (re: RegExp) => {
      const m = started.output().match(re);
      return m?.[1] === undefined ? undefined : Number(m[1]);
    };
    return {
      ...started,
      tcpPort: options.tcp ? port(tcpLine) : undefined,
      rpcPort: options.rpc ? port(/json-rpc listening on http:\/\/127\.0\.0\.1:(\d+)\//) : undefined,
      dataDir,
    };
  } catch (err) {
    if (options.dataDir === undefined) await removeDataDir(dataDir);
    throw err;
  }
}

/** Stops a Hati server and removes its data directory. */
export async function stopHati(hati: Hati): Promise<string> {
  const how = await stopProcess(hati);
  await removeDataDir(hati.dataDir);
  return how;
}
