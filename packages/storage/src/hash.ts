// Shard selection (FNV-1a, fixed forever) and the memory engine's hash (murmur3, seeded).
import { randomBytes } from 'node:crypto';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * The shard of the key in `bytes[start..]`; the hdd engine's layout depends on it, so it must
 * never change.
 */
export function shardOfBytes(bytes: Uint8Array, start: number, shards: number): number {
  // One shard, the default of a new hdd store: nothing to hash (1.3% of a SET's main thread).
  if (shards === 1) return 0;
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

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** murmur3's mix of one 4-byte block. */
function mixBlock(block: number): number {
  const k = Math.imul(block, C1);
  return Math.imul((k << 15) | (k >>> 17), C2);
}

/**
 * The memory engine's hash of the key `bytes[start, end)`, an int32: murmur3 (32-bit), seeded
 * per process, so that every bit depends on every byte. It takes four bytes a step; FNV-1a's one
 * byte a step made hashing a 36-byte key 1.5x slower. The table takes the low bits for its bucket
 * and `shardOfHash` the high ones for the shard.
 */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let hash = MEMORY_SEED;
  let i = start;
  for (const last = end - 3; i < last; i += 4) {
    const block =
      (bytes[i] as number) |
      ((bytes[i + 1] as number) << 8) |
      ((bytes[i + 2] as number) << 16) |
      ((bytes[i + 3] as number) << 24);
    hash ^= mixBlock(block);
    hash = (hash << 13) | (hash >>> 19);
    hash = (Math.imul(hash, 5) + 0xe6546b64) | 0;
  }
  let tail = 0;
  for (let shift = 0; i < end; i++, shift += 8) tail |= (bytes[i] as number) << shift;
  hash ^= mixBlock(tail);
  hash ^= end - start;
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
