import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** A limit a row must meet; `metric` names the row field it applies to. */
export interface Target {
  metric: 'nsPerOp' | 'opsPerSec' | 'value';
  op: '<=' | '>=' | '<';
  limit: number;
  /** A looser limit (same metric and op): a row below its target but past its floor is a soft miss. */
  floor?: number;
}

export interface Row {
  name: string;
  /** Mean time per single op (for the closed-loop rows: elapsed time / ops, i.e. 1 / throughput). */
  nsPerOp: number | null;
  opsPerSec: number | null;
  /** For rows measured in another unit (ms, bytes per key, a ratio). */
  value?: number;
  unit?: string;
  /** Relative margin of error of the mean, in percent (tinybench rows). */
  rmePercent?: number;
  /** Ops measured. */
  ops?: number;
  target: Target | null;
  pass: boolean | null;
  /** The seed's Go benchmark on this machine, ns/op. */
  goSeedNsPerOp?: number;
  /** The seed's Go server on this machine, requests/s (server benchmark). */
  goSeedOpsPerSec?: number;
  /** Whether the row meets its target's floor (only when the target has one). */
  floorPass?: boolean;
  note?: string;
}

export type Measured = Pick<Row, 'nsPerOp' | 'opsPerSec' | 'rmePercent' | 'ops'>;

/** The seed's Go benchmarks (`go test -bench` in storage/), run on this machine. */
export const goSeedNsPerOp: Readonly<Record<string, number>> = {
  MemoryStorage_Set_Ttl0: 6014,
  MemoryStorage_Set_Ttl10: 7208,
  MemoryStorage_Get: 539,
  MemoryStorage_Has: 555,
  MemoryStorage_CountKeys: 99,
  MemoryStorage_Delete: 809,
};

const UNIT: Record<Target['metric'], string> = { nsPerOp: 'ns/op', opsPerSec: 'ops/s', value: '' };

export function row(name: string, measured: Measured, target: Target | null, note?: string): Row {
  const out: Row = { name, ...measured, target, pass: null };
  const seed = goSeedNsPerOp[name];
  if (seed !== undefined) out.goSeedNsPerOp = seed;
  if (note !== undefined) out.note = note;
  judgeRow(out);
  return out;
}

export function valueRow(name: string, value: number, unit: string, target: Target | null, note?: string): Row {
  const out: Row = { name, nsPerOp: null, opsPerSec: null, value, unit, target, pass: null };
  if (note !== undefined) out.note = note;
  judgeRow(out);
  return out;
}

function judgeRow(r: Row): void {
  r.pass = judge(r, r.target?.limit);
  if (r.target?.floor !== undefined) r.floorPass = judge(r, r.target.floor) ?? false;
}

function judge(r: Row, limit: number | undefined): boolean | null {
  if (r.target === null || limit === undefined) return null;
  const actual = r[r.target.metric];
  if (actual === null || actual === undefined) return false;
  switch (r.target.op) {
    case '<=':
      return actual <= limit;
    case '>=':
      return actual >= limit;
    default:
      return actual < limit;
  }
}

function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined) return '';
  if (digits === 0 && Math.abs(n) < 100) digits = Math.abs(n) < 10 ? 2 : 1;
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function targetText(r: Row): string {
  if (r.target === null) return '';
  const unit = r.target.metric === 'value' ? (r.unit ?? '') : UNIT[r.target.metric];
  const op = r.target.op === '<=' ? '≤' : r.target.op === '>=' ? '≥' : '<';
  const digits = unit === 'ratio' ? 2 : 0;
  const floor = r.target.floor === undefined ? '' : ` (floor ${fmt(r.target.floor, digits)})`;
  return `${op} ${fmt(r.target.limit, digits)} ${unit}`.trimEnd() + floor;
}

function resultText(r: Row): string {
  if (r.pass === null) return '';
  if (r.pass) return 'PASS';
  if (r.floorPass === undefined) return 'MISS';
  return r.floorPass ? 'MISS (floor ok)' : 'MISS (below floor)';
}

/** The results as a fixed-width table; a column that is empty in every row is left out. */
export function table(rows: readonly Row[]): string {
  const all = ['row', 'ns/op', 'ops/s', 'other', 'target', 'result', 'Go seed ns/op', 'Go seed ops/s'];
  const cells = rows.map((r) => [
    r.name,
    fmt(r.nsPerOp),
    fmt(r.opsPerSec),
    r.value === undefined ? '' : `${fmt(r.value, r.unit === 'ratio' ? 2 : 0)} ${r.unit ?? ''}`.trimEnd(),
    targetText(r),
    resultText(r),
    fmt(r.goSeedNsPerOp),
    fmt(r.goSeedOpsPerSec),
  ]);
  const keep = all.map((_, i) => i === 0 || cells.some((line) => line[i] !== ''));
  const header = all.filter((_, i) => keep[i]);
  const lines = cells.map((line) => line.filter((_, i) => keep[i]));
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] as string).length)));
  const render = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)))
      .join('  ');
  return [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(render)].join('\n');
}

export function machine(): Record<string, unknown> {
  const list = cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: platform(),
    release: release(),
    arch: process.arch,
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    totalMemoryBytes: totalmem(),
  };
}

/** Cores' worth of idle CPU time over one second (cpus().length when nothing else runs). */
export async function idleCoresNow(): Promise<number> {
  const sample = () =>
    cpus().reduce((acc, c) => ({ idle: acc.idle + c.times.idle, at: performance.now() }), { idle: 0, at: 0 });
  const a = sample();
  await sleep(1000);
  const b = sample();
  // cpus() times are in ms.
  return (b.idle - a.idle) / (b.at - a.at);
}

/** The commit of the work tree at `cwd`, and whether packages/ has uncommitted changes. */
export function gitInfo(cwd: string): { commit: string; packagesDirty: boolean } {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
    return { commit: git('rev-parse', 'HEAD'), packagesDirty: git('status', '--porcelain', 'packages') !== '' };
  } catch {
    return { commit: 'unknown', packagesDirty: false };
  }
}

/** Writes pretty-printed JSON through a temporary file, so a crash never leaves half a file. */
export async function writeJson(path: string, data: unknown): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, `${JSON.stringify(data, null, 2)}\n`);
  await rename(tmp, path);
}

/** The machine's load as a load benchmark starts; `busyWarning` is set when other work was running. */
export interface LoadAtStart {
  loadavgBefore: number[];
  idleCores: number;
  busyWarning: string | undefined;
}

export async function loadAtStart(log: (line: string) => void): Promise<LoadAtStart> {
  const loadavgBefore = loadavg();
  const idleCores = await idleCoresNow();
  const n = cpus().length;
  const busyWarning =
    idleCores < n - 0.3
      ? `warning: other processes were using ${(n - idleCores).toFixed(1)} of the ${n} cores when the benchmark started: the numbers are not reliable`
      : undefined;
  if (busyWarning !== undefined) log(busyWarning);
  return { loadavgBefore, idleCores, busyWarning };
}

/** The machine fields of a load benchmark's JSON: the machine and its load before and after. */
export function loadedMachine(load: LoadAtStart): Record<string, unknown> {
  return {
    ...machine(),
    loadavgBefore: load.loadavgBefore,
    idleCoresAtStart: Number(load.idleCores.toFixed(2)),
    loadavgAfter: loadavg(),
  };
}

/** The `version` of the package.json in `dir`. */
export function packageVersion(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Ends a benchmark: prints which targets were missed, writes `results/<name>.json` (or
 * `<name>.quick.json` for a quick run, which git ignores) and says where.
 */
export async function finish(name: string, quick: boolean, rows: readonly Row[], data: object): Promise<void> {
  const missed = rows.filter((r) => r.pass === false).map((r) => r.name);
  process.stdout.write(`${missed.length === 0 ? 'every target met' : `missed: ${missed.join(', ')}`}\n`);
  const dir = new URL('../results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  const file = fileURLToPath(new URL(`${name}${quick ? '.quick' : ''}.json`, dir));
  await writeJson(file, { benchmark: name, ...data, rows });
  process.stdout.write(`results written to ${file}\n`);
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
