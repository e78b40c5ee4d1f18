// Type tests, run by `tsc` (the typecheck task of `npm test`), not by tap: the check fails if
// a line marked @ts-expect-error compiles, or if a documented type does not hold.
import { createClient, createRpcClient, type HatiClient, type StatsSnapshot } from '../src/index.js';

export function typeChecks(client: HatiClient): void {
  // @ts-expect-error: the storage type is 'memory' or 'hdd'
  void client.get('ram', 'k');
  // @ts-expect-error: ttl is a number
  void client.set('memory', 'k', 'v', { ttl: '10' });
  // @ts-expect-error: values are strings or bytes
  void client.set('memory', 'k', 42);
  // @ts-expect-error: GET takes a type and a key
  void client.call('GET', ['memory']);
  // @ts-expect-error: no such command
  void client.call('NOPE', []);
  const count: Promise<number> = client.count('hdd');
  const value: Promise<string | null> = client.get('hdd', 'k');
  const raw: Promise<Buffer | null> = client.call('GET', ['hdd', Buffer.from('k')]);
  const has: Promise<boolean> = client.call('HAS', ['memory', 'k']);
  const stats: Promise<StatsSnapshot> = client.stats();
  // @ts-expect-error: COUNT replies a number
  const wrong: Promise<string> = client.count('hdd');
  void [count, value, raw, has, stats, wrong];
}

export const factories = [createClient, createRpcClient];
