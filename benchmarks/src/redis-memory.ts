// Redis's memory per key, for the storage benchmark's `*_BytesPerKey` rows: the growth of
// `used_memory` (INFO memory) of a new redis-server while it takes the same keys as the memory
// engine's row (16 random hex characters, values the same).
import { randomBytes } from 'node:crypto';
import { RawClient, showReply } from '@hati/test-helpers';
import { ensureRedisTools, startRedis, stopProcess } from './procs.js';

async function usedMemory(client: RawClient): Promise<number> {
  const reply = (await client.send([['INFO', 'memory']]))[0];
  const text = Buffer.isBuffer(reply) ? reply.toString('latin1') : '';
  const match = /^used_memory:(\d+)\r?$/m.exec(text);
  if (match?.[1] === undefined) throw new Error(`INFO memory without used_memory: ${showReply(reply)}`);
  return Number(match[1]);
}

/** Bytes per key Redis uses for `keys` keys of 16 hex characters with 16-character values. */
export async function redisBytesPerKey(keys: number, log: (line: string) => void): Promise<number> {
  ensureRedisTools(log, ['redis-server']);
  const redis = await startRedis();
  try {
    const client = await RawClient.connect({ host: '127.0.0.1', port: redis.port });
    try {
      const random = randomBytes(keys * 16);
      const before = await usedMemory(client);
      const chunk = 1000;
      for (let i = 0; i < keys; i += chunk) {
        const commands: string[][] = [];
        for (let j = i; j < Math.min(keys, i + chunk); j++) {
          commands.push([
            'SET',
            random.toString('hex', j * 16, j * 16 + 8),
            random.toString('hex', j * 16 + 8, j * 16 + 16),
          ]);
        }
        const replies = await client.send(commands);
        const bad = replies.find((reply) => reply !== 'OK');
        if (bad !== undefined) throw new Error(`Redis SET got ${showReply(bad)}`);
      }
      const count = (await client.send([['DBSIZE']]))[0];
      if (count !== keys) throw new Error(`Redis holds ${showReply(count)} keys, want ${keys}`);
      return ((await usedMemory(client)) - before) / keys;
    } finally {
      client.close();
    }
  } finally {
    await stopProcess(redis);
  }
}
