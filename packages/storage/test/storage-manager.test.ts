import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HddEngine, type HddStateEvent, MemoryEngine, StorageManager } from '../src/index.js';

t.test('the manager holds both engines as separate keyspaces', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'hati-manager-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const manager = await StorageManager.open({ dataDir, shards: 4, durability: 'no' });
  t.ok(manager.memory instanceof MemoryEngine);
  t.ok(manager.hdd instanceof HddEngine);
  t.equal(manager.engine('memory'), manager.memory);
  t.equal(manager.engine('HDD'), manager.hdd, 'storage type names are case-insensitive');
  t.equal(manager.engine('Memory').shards, 4);
  t.throws(() => manager.engine('ram'), {
    code: 'STORAGE_TYPE_INVALID',
    message: "unknown storage type 'ram' (expected memory or hdd)",
  });
  t.equal(manager.engineOrUndefined('ram'), undefined);

  await manager.engine('memory').set('k', 'in memory');
  await manager.engine('hdd').set('k', 'on disk');
  t.equal(await manager.engine('memory').get('k'), 'in memory');
  t.equal(await manager.engine('hdd').get('k'), 'on disk');
  await manager.close();
  t.rejects(async () => manager.memory.get('k'), { code: 'STORAGE_CLOSED' });

  const again = await StorageManager.open({ dataDir, shards: 4 });
  t.equal(await again.engine('hdd').get('k'), 'on disk', 'hdd data survives');
  t.equal(await again.engine('memory').get('k'), undefined, 'memory data does not');
  await again.close();

  // Without a count: 8 memory tables; the hdd store keeps the 4 it was written with.
  const unset = await StorageManager.open({ dataDir });
  t.equal(unset.memory.shards, 8);
  t.equal(unset.hdd.shards, 4);
  t.equal(await unset.engine('hdd').get('k'), 'on disk');
  await unset.close();
});

t.test('the manager passes recoveryIntervalMs and onStateChange to the hdd engine', async (t) => {
  const parent = await mkdtemp(join(tmpdir(), 'hati-manager-'));
  t.teardown(() => rm(parent, { recursive: true, force: true }));
  const dataDir = join(parent, 'data');
  const events: HddStateEvent[] = [];
  const manager = await StorageManager.open({
    dataDir,
    durability: 'no',
    recoveryIntervalMs: 10,
    onStateChange: (event) => events.push(event),
  });
  t.teardown(() => manager.close());
  await manager.hdd.set('k', 'v');
  await rm(dataDir, { recursive: true, force: true });
  const deadline = Date.now() + 5000;
  while (events.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  t.match(events, [{ state: 'gone', reason: /was deleted/ }], 'the periodic check found the directory gone');
  t.equal(manager.hdd.state, 'gone');
  await t.rejects(manager.hdd.get('k'), { code: 'DATA_DIR_GONE' });
  t.equal(manager.engine('memory').set('m', 'v'), undefined, 'the memory engine is not affected');
});
