// Shard selection. FNV-1a: simple, fast, and well spread for short keys.

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
 * The memory engine's shard of a canonical key string. Reads are the hot path, and hashing
 * every character of a long key costs more than the map lookup itself, so keys longer than 16
 * characters are hashed on their length and about 8 characters spread over the whole key, the
 * last one always included. The shard only decides which map holds a key, never what a read
 * returns, so a skewed spread costs map size, not correctness.
 */
export function shardOfString(key: string, shards: number): number {
  const length = key.length;
  let hash = Math.imul(FNV_OFFSET ^ length, FNV_PRIME);
  const step = length > 16 ? length >>> 3 : 1;
  for (let i = length - 1; i >= 0; i -= step) {
    hash = Math.imul(hash ^ key.charCodeAt(i), FNV_PRIME);
  }
  return (hash >>> 0) % shards;
}
