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

conformance(t, {
  open: async (clock) => {
    const dataDir = join(root, `store-${next++}`);
    const store = await HddEngine.open({ dataDir, clock, durability: 'no' });
    dirs.set(store, dataDir);
    return store;
  },
  reopen: async (store, clock) => {
    const dataDir = dirs.get(store) as string;
    await store.close();
    const again = await HddEngine.open({ dataDir, clock, durability: 'no' });
    dirs.set(again, dataDir);
    return again;
  },
});
