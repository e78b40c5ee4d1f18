// The storage benchmark: the seed's Go benchmarks one to one (memory engine), the hdd engine
// under load, the baselines they are measured against, reopen time and memory per key.
// Prints a table with the targets and writes results/storage.json (results/storage.quick.json
// with BENCH_QUICK=1).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { config } from './config.js';
import { hddGroups } from './hdd-rows.js';
import { memoryRows } from './memory-rows.js';
import { redisBytesPerKey } from './redis-memory.js';
import { finish, goSeedNsPerOp, machine, type Row, table, valueRow } from './report.js';

const execFileAsync = promisify(execFile);

/** Runs one of this package's scripts in a new node process and parses its JSON output. */
async function child<T>(script: string, args: string[], nodeArgs: string[] = []): Promise<T> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const { stdout } = await execFileAsync(process.execPath, [...nodeArgs, path, ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as T;
}

async function bytesPerKey(kind: string): Promise<number> {
  const args = [kind, String(config.memoryPerKeyKeys)];
  return (await child<{ bytesPerKey: number }>('./memory-per-key.js', args, ['--expose-gc'])).bytesPerKey;
}

function describe(r: Row): string {
  if (r.opsPerSec !== null) return `${Math.round(r.opsPerSec)} ops/s, ${r.nsPerOp?.toFixed(1)} ns/op`;
  return `${r.value?.toFixed(r.unit === 'ratio' ? 2 : 1)} ${r.unit}`;
}

/** Issue 12's target for the memory engine: 1M keys of 16 B + 16 B in at most this many bytes each. */
const BYTES_PER_KEY_TARGET = 60;

async function memoryPerKeyRows(log: (line: string) => void): Promise<Row[]> {
  const note = `${config.memoryPerKeyKeys} keys, 16-char key and value, (heapUsed + external) after gc`;
  const engine = await bytesPerKey('engine');
  const redis = await redisBytesPerKey(config.memoryPerKeyKeys, log);
  return [
    valueRow(
      'MemoryStorage_BytesPerKey',
      engine,
      'B/key',
      { metric: 'value', op: '<=', limit: BYTES_PER_KEY_TARGET },
      note,
    ),
    valueRow(
      'Redis_BytesPerKey',
      redis,
      'B/key',
      null,
      `${config.memoryPerKeyKeys} keys of the same shape, growth of redis-server's used_memory`,
    ),
    valueRow('MemoryStorage/Redis_BytesPerKey', engine / redis, 'ratio', null),
    valueRow('Map_Buffer_BytesPerKey', await bytesPerKey('map-buffer'), 'B/key', null, `Map<string, Buffer>, ${note}`),
    valueRow('Map_String_BytesPerKey', await bytesPerKey('map-string'), 'B/key', null, `Map<string, string>, ${note}`),
  ];
}

async function main(): Promise<number> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const started = Date.now();
  log(`storage benchmark${config.quick ? ' (BENCH_QUICK: smoke run, numbers not comparable)' : ''}`);
  log('memory engine and Map baseline:');
  const rows = await memoryRows(log);
  log('hdd engine and classic-level baseline (one process per group):');
  for (const group of Object.keys(hddGroups)) {
    for (const r of await child<Row[]>('./hdd-child.js', [group])) {
      rows.push(r);
      log(`  ${r.name}: ${describe(r)}`);
    }
  }
  log('memory per key (one process per store):');
  for (const r of await memoryPerKeyRows(log)) {
    rows.push(r);
    log(`  ${r.name}: ${describe(r)}`);
  }

  process.stdout.write(`\n${table(rows)}\n\n`);
  process.stdout.write(
    `Seed Go benchmarks on this machine (ns/op): ${Object.entries(goSeedNsPerOp)
      .map(([name, ns]) => `${name.replace('MemoryStorage_', '')} ${ns}`)
      .join(', ')}\n`,
  );
  await finish('storage', config.quick, rows, {
    date: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: machine(),
    config,
  });
  return 0;
}

process.exitCode = await main();
