import type { Db } from '@hati/storage';
import { StorageError } from '@hati/storage';

export type Op = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/**
 * Group commit over one LevelDB: changes are queued and written as one batch once the current
 * synchronous work is done (every command of the input chunks read in this turn has queued its
 * changes by then); while one batch is written the next one gathers. `commit()` resolves once
 * the batch holding everything queued so far is written, fsynced when `sync` says so.
 */
export class GroupCommit {
  readonly #db: Db;
  readonly #sync: boolean;
  /** Called with a batch's ops just before it is written, to add to them. */
  readonly #beforeWrite: ((ops: Op[]) => void) | undefined;
  #ops: Op[] = [];
  #waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  /** The batch being written: rejects when the write failed (`#pending` never rejects). */
  #inflight: Promise<void> | undefined;
  #pending: Promise<void> | undefined;
  #writing = false;
  #scheduled = false;
  /** Whether a batch was written without fsync since `unsynced` was last cleared. */
  unsynced = false;
  closed = false;

  constructor(db: Db, sync: boolean, beforeWrite?: (ops: Op[]) => void) {
    this.#db = db;
    this.#sync = sync;
    this.#beforeWrite = beforeWrite;
  }

  put(key: Buffer, value: Buffer): void {
    this.#ops.push({ type: 'put', key, value });
    this.#schedule();
  }

  del(key: Buffer): void {
    this.#ops.push({ type: 'del', key });
    this.#schedule();
  }

  /** Resolves once everything queued so far is written; rejects when that failed. */
  commit(): Promise<void> {
    if (this.#ops.length === 0) return this.#inflight ?? Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  /** Writes what is queued and waits for every batch (failed ones too). */
  async drain(): Promise<void> {
    while (this.#writing || this.#ops.length > 0) {
      this.#write();
      await this.#pending;
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#write();
    });
  }

  #write(): void {
    if (this.#ops.length === 0 || this.#writing) return;
    const ops = this.#ops;
    const waiters = this.#waiters;
    this.#beforeWrite?.(ops);
    this.#ops = [];
    this.#waiters = [];
    this.#writing = true;
    const sync = this.#sync;
    const written = this.closed
      ? Promise.reject(new StorageError('STORAGE_CLOSED', 'the broker store is closed'))
      : this.#batch(ops, sync);
    const batch = written.then(
      () => {
        if (!sync) this.unsynced = true;
        for (const waiter of waiters) waiter.resolve();
      },
      (err: unknown) => {
        const error =
          err instanceof StorageError
            ? err
            : new StorageError('STORAGE_IO', `a broker write failed: ${(err as Error).message}`, { cause: err });
        for (const waiter of waiters) waiter.reject(error);
        throw error;
      },
    );
    this.#inflight = batch;
    this.#pending = batch.catch(() => {});
    this.#pending.finally(() => {
      this.#writing = false;
      this.#pending = undefined;
      this.#inflight = undefined;
      if (this.#ops.length > 0) this.#write();
    });
  }

  /**
   * Writes `ops` as one chained batch: abstract-level copies an options object into every
   * operation of an array batch, which costs more than the write itself.
   */
  #batch(ops: Op[], sync: boolean): Promise<void> {
    const batch = this.#db.batch();
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
    return batch.write({ sync });
  }
}
