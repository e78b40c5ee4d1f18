// The backup benchmark: fills a `hati start` with a large hdd data set, then runs
// `hati backup export` against it and `hati backup import` into a second, empty server (and,
// when the server package has it, into a stopped server's data directory), sampling the resident
// memory (RSS) of the `hati backup` process and of the server ten times a second. What it shows:
// the throughput of each, and that the client's memory stays bounded whatever the data set's
// size (the file is streamed a block at a time). Writes results/backup.json
// (results/backup.quick.json with BENCH_QUICK=1).
//
//   BENCH_BACKUP_BYTES=200000000 npm run bench -- backup   # bytes of values to fill (default 1 GB)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createClient, type HatiClient } from '@hati/client';
import { type Hati, hatiBin, removeDataDir, repoRoot, startHati, stopHati, tempDataDir } from './procs.js';
import { finish, gitInfo, loadAtStart, loadedMachine, packageVersion, type Row, table, valueRow } from './report.js';

const quick = process.env.BENCH_QUICK === '1';
const totalBytes = Number(process.env.BENCH_BACKUP_BYTES ?? (quick ? 20_000_000 : 1_000_000_000));
const valueBytes = Number(process.env.BENCH_BACKUP_VALUE_BYTES ?? 1000);
const keys = Math.max(1, Math.round(totalBytes / valueBytes));
/** Messages in an hdd queue besides the keys, so the broker's part of a snapshot is measured too. */
const messages = quick ? 1_000 : 20_000;
/** The client's peak RSS must stay under this whatever the data set's size. */
const CLIENT_RSS_LIMIT_MB = 256;

const log = (line: string) => process.stderr.write(`${line}\n`);
const MB = 1_000_000;

/**
 * The resident memory of a process, in bytes, from /proc (Linux); 0 once it has exited. `anon`
 * is its own memory (heap, buffers); RSS also counts file pages it maps, such as LevelDB's table
 * files read through mmap, which the kernel takes back when memory is short.
 */
function rss(pid: number, field: 'VmRSS' | 'RssAnon' = 'VmRSS'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = status.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm'))?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/** Samples the peak RSS (and peak anonymous RSS, as `<name>Anon`) of some processes every 100 ms until stopped. */
function sampler(pids: Record<string, number>) {
  const peaks: Record<string, number> = {};
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      peaks[name] = Math.max(peaks[name] ?? 0, rss(pid));
      peaks[`${name}Anon`] = Math.max(peaks[`${name}Anon`] ?? 0, rss(pid, 'RssAnon'));
    }
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop: () => {
      clearInterval(timer);
      return peaks;
    },
  };
}

interface Run {
  seconds: number;
  peakRss: Record<string, number>;
  stderr: string;
}

/** Runs `hati <args>` to its end, sampling its RSS and the server's (when given). */
function runHati(args: string[], server: number | undefined): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HATI_')));
  const child = spawn(process.execPath, [hatiBin, ...args], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const started = performance.now();
  const samples = sampler({ client: child.pid as number, ...(server !== undefined && { server }) });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      const peakRss = samples.stop();
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) reject(new Error(`hati ${args.slice(0, 2).join(' ')} exited with ${code}:\n${stderr}`));
      else resolve({ seconds, peakRss, stderr });
    });
  });
}

/** Fills the server: `keys` hdd keys of `valueBytes` (half random, half repeated: about 2:1 compressible), an hdd queue with messages. */
/** The peak RSS rows of a run: hati backup's (with its limit) and the server's, each also without mapped files. */
function rssRows(phase: 'export' | 'import', run: Run, serverIdleRss: number) {
  return [
    valueRow(`${phase}: hati backup peak RSS`, (run.peakRss.client as number) / MB, 'MB', {
      metric: 'value',
      op: '<=',
      limit: CLIENT_RSS_LIMIT_MB,
    }),
    valueRow(`${phase}: hati backup peak anon RSS`, (run.peakRss.clientAnon as number) / MB, 'MB', null),
    valueRow(
      `${phase}: server peak RSS`,
      (run.peakRss.server as number) / MB,
      'MB',
      null,
      `${(serverIdleRss / MB).toFixed(0)} MB before the ${phase}`,
    ),
    valueRow(
      `${phase}: server peak anon RSS`,
      (run.peakRss.serverAnon as number) / MB,
      'MB',
      null,
      'without mapped files',
    ),
  ];
}

async function fill(client: HatiClient): Promise<void> {
  const batch = 2000;
  const started = performance.now();
  for (let i = 0; i < keys; i += batch) {
    const calls: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(i + batch, keys); j++) {
      const half = randomBytes(valueBytes / 4).toString('hex');
      calls.push(client.set('hdd', `bench:key:${j}`, half + 'x'.repeat(valueBytes - half.length)));
    }
    await Promise.all(calls);
    if (i % 100_000 === 0 && i > 0) log(`  ${i.toLocaleString('en-US')} keys`);
  }
  await client.createRouter('bench.orders', 'direct');
  await client.createQueue('bench.jobs', 'hdd');
  await client.bind('bench.jobs', 'bench.orders', 'job');
  for (let i = 0; i < messages; i += batch) {
    const calls: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(i + batch, messages); j++) {
      calls.push(client.publish('bench.orders', 'job', `message ${j} ${'m'.repeat(200)}`));
    }
    await Promise.all(calls);
  }
  log(`filled in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function connect(hati: Hati): Promise<HatiClient> {
  const client = createClient({ host: '127.0.0.1', port: hati.tcpPort as number, reconnect: false });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  return client;
}

async function main(): Promise<number> {
  const started = Date.now();
  const load = await loadAtStart(log);
  const work = await tempDataDir('hati-bench-backup-');
  const file = join(work, 'backup.hati');
  const rows: Row[] = [];
  const data: Record<string, unknown> = {};
  const servers: Hati[] = [];
  try {
    log(
      `backup: ${keys.toLocaleString('en-US')} hdd keys of ${valueBytes} bytes (${(totalBytes / MB).toFixed(0)} MB) and ${messages.toLocaleString('en-US')} queue messages`,
    );
    const source = await startHati({ durability: 'no', tcp: true, rpc: false, label: 'backup source' });
    servers.push(source);
    const sourceClient = await connect(source);
    await fill(sourceClient);
    const sourceIdleRss = rss(source.child.pid as number);
    await sourceClient.close();

    log('export ...');
    const exported = await runHati(
      ['backup', 'export', '--out', file, '--no-progress', '--tcp-port', String(source.tcpPort)],
      source.child.pid,
    );
    const fileBytes = (await stat(file)).size;
    log(exported.stderr.trim());
    const dataMB = (keys * (valueBytes + 16)) / MB;
    rows.push(
      valueRow(
        'export: data MB/s',
        dataMB / exported.seconds,
        'MB/s',
        null,
        `${fileBytes.toLocaleString('en-US')} bytes written`,
      ),
      ...rssRows('export', exported, sourceIdleRss),
    );
    await stopHati(source);
    servers.length = 0;

    log('import into a running server ...');
    const target = await startHati({ durability: 'no', tcp: true, rpc: false, label: 'backup target' });
    servers.push(target);
    const targetIdleRss = rss(target.child.pid as number);
    const imported = await runHati(
      ['backup', 'import', '--in', file, '--no-progress', '--tcp-port', String(target.tcpPort)],
      target.child.pid,
    );
    log(imported.stderr.trim());
    const targetClient = await connect(target);
    const restored = await targetClient.count('hdd');
    const queue = await targetClient.getQueue('bench.jobs');
    await targetClient.close();
    if (restored !== keys) throw new Error(`the import restored ${restored} keys of ${keys}`);
    rows.push(
      valueRow(
        'import: data MB/s',
        dataMB / imported.seconds,
        'MB/s',
        null,
        'the file checked whole first, then loaded',
      ),
      ...rssRows('import', imported, targetIdleRss),
    );
    await stopHati(target);
    servers.length = 0;

    // Into a stopped server's data directory, when @hati/server has openBackupTarget.
    const server = (await import('@hati/server')) as Record<string, unknown>;
    let dataDirRun: Run | undefined;
    if (typeof server.openBackupTarget === 'function') {
      log('import into a data directory ...');
      const dir = await tempDataDir('hati-bench-backup-dir-');
      dataDirRun = await runHati(['backup', 'import', '--in', file, '--no-progress', '--data-dir', dir], undefined);
      log(dataDirRun.stderr.trim());
      rows.push(
        valueRow('import --data-dir: data MB/s', dataMB / dataDirRun.seconds, 'MB/s', null),
        valueRow(
          'import --data-dir: hati backup peak RSS',
          (dataDirRun.peakRss.client as number) / MB,
          'MB',
          null,
          'opens the storage in this process',
        ),
        valueRow(
          'import --data-dir: hati backup peak anon RSS',
          (dataDirRun.peakRss.clientAnon as number) / MB,
          'MB',
          null,
        ),
      );
      await removeDataDir(dir);
    }
    Object.assign(data, {
      fileBytes,
      compression: fileBytes / (keys * (valueBytes + 16)),
      export: exported,
      import: imported,
      importDataDir: dataDirRun,
      restoredKeys: restored,
      restoredMessages: queue,
    });
  } finally {
    for (const hati of servers) await stopHati(hati);
    await removeDataDir(work);
  }
  process.stdout.write(`\n${table(rows)}\n\n`);
  await finish('backup', quick, rows, {
    date: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: {
      ...loadedMachine(load),
      note: 'the hati backup process, the server and this harness share the machine cores',
    },
    hati: { version: packageVersion(join(repoRoot, 'packages/cli')), ...gitInfo(repoRoot) },
    config: { quick, totalBytes, valueBytes, keys, messages, clientRssLimitMB: CLIENT_RSS_LIMIT_MB },
    ...data,
  });
  return 0;
}

process.exitCode = await main();
