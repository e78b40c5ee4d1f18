import { type Clock, Durability } from '@hati/storage';
import { Overflow, type QueueSettings } from './queue.js';

export interface BrokerOptions {
  /**
   * Where the broker keeps its definitions and hdd queues (`<dataDir>/broker/`). Without one,
   * definitions live in memory only and hdd queues are refused.
   * @default undefined
   */
  dataDir?: string;
  /** When an answered PUBLISH or ACK on an hdd queue is on disk (see @hati/storage). @default 'everysec' */
  durability?: Durability;
  /** Milliseconds since the epoch; tests inject one to move time. @default Date.now */
  clock?: Clock;
  /**
   * Bytes of hdd-queue payloads kept in memory (the rest are read from disk when delivered), so
   * that a long hdd queue costs memory for its index only.
   * @default 16 MiB
   */
  hddCacheBytes?: number;
  /** Table files the broker's LevelDB may keep open (the server budgets descriptors). @default 1000 */
  maxOpenFiles?: number;
  /** Whether the broker arms real timers for leases, delays and ttls; tests call `tick()`. @default true */
  timers?: boolean;
}

export const defaults = {
  durability: Durability.everysec,
  hddCacheBytes: 16 * 1024 * 1024,
} as const;

/** A queue's settings when CREATEQUEUE names none. */
export const queueDefaults: QueueSettings = {
  ackTimeoutMs: 30_000,
  maxDeliveries: 0,
  deadLetter: undefined,
  maxLength: 0,
  overflow: Overflow.reject,
  ttlMs: 0,
  dedupWindowMs: 120_000,
};

/** Most messages one FETCH returns. */
export const MAX_FETCH = 1000;
/** Longest FETCH wait, and longest delay, ttl or ack timeout: Node's timer limit (~24.8 days). */
export const MAX_MS = 2 ** 31 - 1;
/** Largest prefetch; 0 means no limit. */
export const MAX_PREFETCH = 65_535;
