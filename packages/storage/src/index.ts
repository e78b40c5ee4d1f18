export { StorageError, StorageErrorCode } from './errors.js';
export { globMatcher } from './glob.js';
export { HddEngine } from './hdd-engine.js';
// The LevelDB helpers other Hati packages build on (@hati/broker keeps its queues with them), so
// that opening, locking and error codes of a LevelDB are written once.
export { type Db, type DbOptions, dirIdentity, ensureDir, identityChange, newDb, openDb } from './hdd-layout.js';
export type { IoObserver } from './hdd-shard.js';
export { HddSnapshot } from './hdd-snapshot.js';
export { MemoryEngine } from './memory-engine.js';
export { MemorySnapshot } from './memory-snapshot.js';
export {
  type Clock,
  checkDurability,
  Durability,
  defaults,
  type HddEngineOptions,
  HddState,
  type HddStateEvent,
  MAX_SHARDS,
  type MemoryEngineOptions,
  type StorageManagerOptions,
} from './options.js';
export { StorageManager } from './storage-manager.js';
export {
  type Bytes,
  type ExpiredHook,
  type KeyValueStore,
  type ScanOptions,
  type ScanResult,
  SetCondition,
  StorageType,
  type StoredEntry,
  type StoreSupports,
} from './store.js';
export { TimeHeap } from './time-heap.js';
