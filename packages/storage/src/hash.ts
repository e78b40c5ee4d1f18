// Shard selection and the memory engine's hash. FNV-1a: simple, fast, and well spread for short
// keys.
import { randomBytes } from 'node:crypto';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * The shard of the key in `bytes[start..]`; the hdd engine's layout depends on it, so it must
 * never change.
 */
export function shardOfBytes(bytes: Uint8Array, start: number, shards: number): number {
  let hash = FNV_OFFSET;
  for (let i = start; i < bytes.length; i++) {
    hash = Math.imul(hash ^ (bytes[i] as number), FNV_PRIME);
  }
  return (hash >>> 0) % shards;
}

/**
 * Mixed into every memory hash, different in each process: keys chosen to collide in one process
 * (to make a table's chains long) do not collide in another. The memory engine keeps nothing
 * across restarts, so its hashes need not be stable; the hdd engine's `shardOfBytes` must be.
 */
const MEMORY_SEED = randomBytes(4).readInt32LE(0);

/**
 * The memory engine's hash of the key `bytes[start, end)`, an int32: FNV-1a over every byte,
 * then murmur3's finalizer, so that every bit depends on every byte. The table takes the low
 * bits for its bucket and `shardOfHash` the high ones for the shard.
 */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let hash = FNV_OFFSET ^ MEMORY_SEED;
  for (let i = start; i < end; i++) {
    hash = Math.imul(hash ^ (bytes[i] as number), FNV_PRIME);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return hash ^ (hash >>> 16);
}

/** The memory shard of a key with this `hashBytes` hash: its top 16 bits scaled to the shard count. */
export function shardOfHash(hash: number, shards: number): number {
  return ((hash >>> 16) * shards) >>> 16;
}
