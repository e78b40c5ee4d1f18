import { StorageError } from './errors.js';
import { HddEngine } from './hdd-engine.js';
import { MemoryEngine } from './memory-engine.js';
import { defaults, type StorageManagerOptions } from './options.js';
import type { KeyValueStore, StorageType } from './store.js';

/**
 * Both engines behind one object, as the server uses them: `memory` and `hdd` are separate
 * keyspaces chosen per command by a storage type name.
 */
export class StorageManager {
  readonly memory: MemoryEngine;
  readonly hdd: HddEngine;

  private constructor(memory: MemoryEngine, hdd: HddEngine) {
    this.memory = memory;
    this.hdd = hdd;
  }

  static async open(options: StorageManagerOptions = {}): Promise<StorageManager> {
    const clock = options.clock ?? Date.now;
    const memory = new MemoryEngine({ shards: options.shards ?? defaults.shards, clock });
    try {
      const hdd = await HddEngine.open({
        dataDir: options.dataDir ?? defaults.dataDir,
        // Omitted, the store's own count (see HddEngineOptions.shards).
        shards: options.shards,
        durability: options.durability ?? defaults.durability,
        clock,
        recoveryIntervalMs: options.recoveryIntervalMs,
        maxOpenFiles: options.maxOpenFiles,
        onStateChange: options.onStateChange,
      });
      return new StorageManager(memory, hdd);
    } catch (err) {
      await memory.close();
      throw err;
    }
  }

  /** The engine for a storage type name (`memory` or `hdd`, any case). */
  engine(type: string): KeyValueStore {
    const engine = this.engineOrUndefined(type);
    if (engine === undefined) {
      throw new StorageError('STORAGE_TYPE_INVALID', `unknown storage type '${type}' (expected memory or hdd)`);
    }
    return engine;
  }

  /** Like `engine`, without throwing: for hot paths that report the error themselves. */
  engineOrUndefined(type: string): MemoryEngine | HddEngine | undefined {
    switch (type) {
      case 'memory':
        return this.memory;
      case 'hdd':
        return this.hdd;
    }
    switch (type.toLowerCase() as StorageType) {
      case 'memory':
        return this.memory;
      case 'hdd':
        return this.hdd;
      default:
        return undefined;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.memory.close(), this.hdd.close()]);
  }
}
