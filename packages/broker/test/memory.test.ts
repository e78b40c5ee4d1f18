// What a queued message costs: 200k messages of 100 bytes, measured in a child process with
// --expose-gc (heapUsed + external, after collecting) against the dist build (`pnpm run build`).
import { fileURLToPath } from 'node:url';
import { run, tempDir } from '@hati/test-helpers';
import t, { type Test } from 'tap';

const COUNT = 200_000;
const PAYLOAD = 100;
const probe = fileURLToPath(new URL('./fixtures/memory-probe.mjs', import.meta.url));

interface Probe {
  ready: number;
  bytesPerMessage: number;
  grown: number;
}

async function measure(t: Test, type: string, count: number, cacheBytes?: number): Promise<Probe> {
  const dataDir = await tempDir(t, 'hati-broker-memory-');
  const args = ['--expose-gc', probe, type, String(count), dataDir];
  if (cacheBytes !== undefined) args.push(String(cacheBytes));
  const result = await run(process.execPath, args, { timeoutMs: 60_000 });
  t.equal(result.code, 0, `the ${type} probe ran: ${result.stderr.slice(0, 500)}`);
  const found = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as Probe;
  t.equal(found.ready, count, 'every message was queued');
  return found;
}

t.test(
  `a memory queue keeps ${COUNT} messages of ${PAYLOAD} bytes for at most 250 bytes each beyond the payload`,
  async (t) => {
    const { bytesPerMessage } = await measure(t, 'memory', COUNT);
    const overhead = bytesPerMessage - PAYLOAD;
    t.ok(overhead <= 250, `${bytesPerMessage.toFixed(1)} bytes per message: ${overhead.toFixed(1)} beyond the payload`);
  },
);

t.test('an hdd queue keeps no payload beyond its cache, and an index entry per message', async (t) => {
  const index = await measure(t, 'hdd', COUNT, 0);
  t.ok(
    index.bytesPerMessage <= 250 - PAYLOAD,
    `without a cache: ${index.bytesPerMessage.toFixed(1)} bytes per message`,
  );
  const cache = 4 * 1024 * 1024;
  const half = COUNT / 4;
  const cached = await measure(t, 'hdd', half, cache);
  const forCache = cached.grown - index.bytesPerMessage * half;
  // A cached 100-byte payload costs its bytes and a string header (16 bytes, rounded up to 8).
  t.ok(forCache <= cache * 1.3, `a ${cache}-byte cache grew memory by ${Math.round(forCache)} bytes`);
  t.ok(forCache >= cache * 0.9, 'and the cache was used');
});
