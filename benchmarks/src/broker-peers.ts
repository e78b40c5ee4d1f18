// The broker benchmark's peers, started as /work/shared/PEERS.md says, on 127.0.0.1 and free
// ports, each with a new temporary directory, and stopped by PID (also on an error or a signal:
// procs.ts keeps every child). RabbitMQ gets an epmd of its own on a private port (ERL_EPMD_PORT),
// a foreground child like the others, so no daemon epmd outlives the benchmark.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { System } from './broker-config.js';
import type { Durability } from './broker-driver.js';
import {
  ensureRedisTools,
  ensureTools,
  freePort,
  removeDataDir,
  type Started,
  startProcess,
  startRedis,
  stopProcess,
  tempDataDir,
  toolVersion,
} from './procs.js';

/** RabbitMQ's real start script: the /usr/sbin wrappers switch user and pick up another Erlang cookie. */
const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

/** The first x.y.z in a tool's banner or `--version` line. */
function versionIn(text: string): string {
  return text.match(/\d+\.\d+\.\d+/)?.[0] ?? 'unknown';
}

/** A running peer: its processes, last started first stopped. */
export interface Peer {
  name: string;
  port: number;
  version: string;
  processes: Started[];
  dataDir: string;
}

/** Installs the Debian packages of the chosen peers that are missing (as root), as the server benchmark does for Redis. */
export function ensurePeers(log: (line: string) => void, systems: readonly System[]): void {
  if (systems.includes('rabbitmq')) {
    ensureTools(log, [
      { command: RABBITMQ_SERVER, pkg: 'rabbitmq-server' },
      { command: 'epmd', pkg: 'rabbitmq-server' },
    ]);
  }
  if (systems.includes('jetstream')) ensureTools(log, [{ command: 'nats-server', pkg: 'nats-server' }]);
  if (systems.includes('redis')) ensureRedisTools(log, ['redis-server']);
}

/** Starts a peer's processes in order in a new temporary directory; undoes what started if one fails. */
async function startPeer(
  name: string,
  start: (dataDir: string, processes: Started[]) => Promise<{ port: number; version: string }>,
): Promise<Peer> {
  const dataDir = await tempDataDir(`hati-bench-${name.toLowerCase().replace(/\W+/g, '-')}-`);
  const processes: Started[] = [];
  try {
    return { name, dataDir, processes, ...(await start(dataDir, processes)) };
  } catch (err) {
    await stopPeer({ name, port: 0, version: '', processes, dataDir });
    throw err;
  }
}

/** Stops the peer's processes, last started first, and removes its directory; says how each ended. */
export async function stopPeer(peer: Peer): Promise<string[]> {
  const how: string[] = [];
  for (const p of peer.processes.splice(0).reverse()) how.push(`${p.name}: ${await stopProcess(p)}`);
  await removeDataDir(peer.dataDir);
  return how;
}

/** RabbitMQ 3.10, its own node name, directories, Erlang cookie (HOME) and epmd; listens on 127.0.0.1 only. */
export function startRabbitMq(): Promise<Peer> {
  return startPeer('RabbitMQ', async (dir, processes) => {
    for (const sub of ['mnesia', 'log', 'home']) await mkdir(join(dir, sub));
    await writeFile(join(dir, 'enabled_plugins'), '[].\n');
    const [epmdPort, port, distPort] = [await freePort(), await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ERL_EPMD_PORT: String(epmdPort),
      HOME: join(dir, 'home'),
      RABBITMQ_NODENAME: `hatibench${process.pid}@localhost`,
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      // The script then execs the VM, so the PID we hold is the broker's own and SIGTERM stops it
      // cleanly; -noinput keeps the Erlang shell off, +B i lets a Ctrl-C reach us and not the VM.
      RABBITMQ_ALLOW_INPUT: 'true',
      RABBITMQ_SERVER_START_ARGS: '-noinput +B i',
    };
    // -d only to have a line that says it is up.
    const epmdArgs = ['-port', String(epmdPort), '-address', '127.0.0.1', '-d'];
    processes.push(await startProcess('epmd', 'epmd', epmdArgs, /epmd running/, env));
    const server = await startProcess(
      'rabbitmq-server',
      RABBITMQ_SERVER,
      [],
      /completed with \d+ plugins/,
      env,
      120_000,
    );
    processes.push(server);
    // The banner line is coloured: `RabbitMQ<escape codes> 3.10.8`.
    return { port, version: versionIn(server.output().match(/RabbitMQ\S*\s+\d+\.\d+\.\d+/)?.[0] ?? '') };
  });
}

/** nats-server 2.9 with JetStream, its store in the peer's directory, on a port it picks. */
export function startJetStream(): Promise<Peer> {
  return startPeer('JetStream', async (dir, processes) => {
    const args = ['-js', '-a', '127.0.0.1', '-p', '-1', '-sd', dir];
    const ready = /Listening for client connections on 127\.0\.0\.1:(\d+)[\s\S]*Server is ready/;
    const server = await startProcess('nats-server', 'nats-server', args, ready, process.env);
    processes.push(server);
    return { port: Number(server.match[1]), version: versionIn(toolVersion('nats-server')) };
  });
}

/** redis-server with its append-only file in the peer's directory, fsynced as `durability` says. */
export function startRedisAof(durability: Durability): Promise<Peer> {
  return startPeer(`Redis (AOF ${durability})`, async (dir, processes) => {
    const server = await startRedis(['--dir', dir, '--appendonly', 'yes', '--appendfsync', durability]);
    processes.push(server);
    return { port: server.port, version: versionIn(toolVersion('redis-server')) };
  });
}
