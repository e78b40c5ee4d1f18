import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HddEngine, type KeyValueStore } from '../src/index.js';
import { conformance } from './common/conformance.js';

const root = await mkdtemp(join(tmpdir(), 'hati-hdd-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
let next = 0;
const dirs = new WeakMap<KeyValueStore, string>();
// The areas move a fake clock; a sweep every 100 ms of real time (the default) would remove what
// expired at a point of an area that depends on the load (see Harness#open). An hour is never
// reached; the sweeper is tested in hdd-engine.test.ts and hdd-operations.test.ts.
// Eight shards, as a store written before one shard became the default has: batches split between them.
const options = { durability: 'no', sweepIntervalMs: 3_600_000, shards: 8 } as const;

conformance(t, {
  open: async (clock) => {
    const dataDir = join(root, `store-${next++}`);
    const store = await HddEngine.open({ dataDir, clock, ...options });
    dirs.set(store, dataDir);
    return store;
  },
  reopen: async (store, clock) => {
    const dataDir = dirs.get(store) as string;
    await store.close();
    const again = await HddEngine.open({ dataDir, clock, ...options });
    dirs.set(again, dataDir);
    return again;
  },
});
