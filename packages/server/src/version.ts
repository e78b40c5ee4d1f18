import { createRequire } from 'node:module';

/** This server's version, from its package.json. */
export const HATI_VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/**
 * The Redis version Hati answers to Redis clients (HELLO's `version`, INFO's `redis_version`):
 * they compare it to decide which commands they may send, and Hati speaks what Redis 7.2's
 * clients send when they connect (HELLO, CLIENT SETINFO). Dragonfly and KeyDB do the same.
 */
export const REDIS_COMPATIBLE_VERSION = '7.2.0';
