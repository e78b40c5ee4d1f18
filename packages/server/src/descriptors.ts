import { readFileSync } from 'node:fs';

/** What the process may use when the open-file limit cannot be read (the usual Linux default). */
const ASSUMED_LIMIT = 1024;
/** Descriptors for everything but clients and LevelDB: stdio, libuv, the listeners, the lock. */
const PROCESS_RESERVE = 32;
/** LevelDB keeps 10 descriptors for its own files and clamps max_open_files to at least 74. */
const LEVELDB_MIN_OPEN_FILES = 74;
const LEVELDB_MAX_OPEN_FILES = 1000;
/** Redis's default, a sane ceiling for one process. */
const DEFAULT_MAX_CLIENTS = 10_000;

/** The soft open-file limit of this process (`ulimit -n`), from /proc; undefined elsewhere. */
export function openFileLimit(): number | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (match === null) return undefined;
    return match[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(match[1]);
  } catch {
    return undefined;
  }
}

export interface DescriptorBudget {
  /** The open-file limit the budget was made for. */
  limit: number;
  /** Table files each hdd shard's LevelDB may keep open. */
  maxOpenFilesPerShard: number;
  /** Descriptors kept for the storage and the process itself. */
  reserved: number;
  /** Client connections that fit in what is left (at least 1). */
  maxClients: number;
}

/**
 * Splits the process's descriptors between the storage and the clients, so that idle clients
 * can never take the descriptors LevelDB needs to write ("Too many open files"). At most half
 * the limit goes to LevelDB, within LevelDB's own bounds; the clients get what is left.
 */
export function descriptorBudget(shards: number, limit = openFileLimit() ?? ASSUMED_LIMIT): DescriptorBudget {
  const perShard = Math.floor((limit / 2 - PROCESS_RESERVE) / shards);
  const maxOpenFilesPerShard = Math.max(LEVELDB_MIN_OPEN_FILES, Math.min(LEVELDB_MAX_OPEN_FILES, perShard));
  const reserved = PROCESS_RESERVE + shards * maxOpenFilesPerShard;
  return {
    limit,
    maxOpenFilesPerShard,
    reserved,
    maxClients: Math.max(1, Math.min(DEFAULT_MAX_CLIENTS, limit - reserved)),
  };
}
