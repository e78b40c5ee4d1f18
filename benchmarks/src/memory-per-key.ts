// Child process of the storage benchmark, run with --expose-gc:
//   node --expose-gc dist/memory-per-key.js <engine|map-buffer|map-string> <keys>
// Fills one store with <keys> keys of 16 random hex chars and values of 16 random hex chars,
// and prints as JSON how much heap + external memory the filled store holds, per key. The keys
// and values are made while filling, so their own memory counts, as it does in a server.
import { randomBytes } from 'node:crypto';
import { MemoryEngine } from '@hati/storage';

const kinds = ['engine', 'map-buffer', 'map-string'] as const;
type Kind = (typeof kinds)[number];

function settle(gc: () => void): number {
  for (let i = 0; i < 4; i++) gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

function main(argv: string[]): number {
  const gc = globalThis.gc;
  const kind = argv[0] as Kind;
  const n = Number(argv[1]);
  if (gc === undefined || !kinds.includes(kind) || !Number.isSafeInteger(n) || n < 1) {
    process.stderr.write('usage: node --expose-gc memory-per-key.js <engine|map-buffer|map-string> <keys>\n');
    return 2;
  }
  // Random bytes for every key and value, allocated before the baseline and kept to the end,
  // so they weigh the same in both measurements.
  const random = randomBytes(n * 16);
  const key = (i: number) => random.toString('hex', i * 16, i * 16 + 8);
  const value = (i: number) => random.toString('hex', i * 16 + 8, i * 16 + 16);
  const before = settle(gc);
  let size: number;
  let store: unknown;
  if (kind === 'engine') {
    const engine = new MemoryEngine();
    for (let i = 0; i < n; i++) engine.set(key(i), value(i));
    store = engine;
    size = engine.count();
  } else if (kind === 'map-buffer') {
    const map = new Map<string, Buffer>();
    for (let i = 0; i < n; i++) map.set(key(i), Buffer.from(value(i), 'latin1'));
    store = map;
    size = map.size;
  } else {
    const map = new Map<string, string>();
    for (let i = 0; i < n; i++) map.set(key(i), value(i));
    store = map;
    size = map.size;
  }
  const after = settle(gc);
  if (size !== n || store === undefined || random.length !== n * 16) {
    process.stderr.write(`expected ${n} keys, the store holds ${size}\n`);
    return 1;
  }
  process.stdout.write(
    `${JSON.stringify({ kind, keys: n, bytes: after - before, bytesPerKey: (after - before) / n })}\n`,
  );
  return 0;
}

process.exitCode = main(process.argv.slice(2));
