export { StorageError, StorageErrorCode } from './errors.js';
export { globMatcher } from './glob.js';
export { HddEngine } from './hdd-engine.js';
export { MemoryEngine } from './memory-engine.js';
export {
  type Clock,
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
