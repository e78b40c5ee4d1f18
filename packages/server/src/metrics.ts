// Metrics: counted on the hot path in plain typed arrays (an increment and a comparison or two per
// command), and turned into Prometheus metrics only when `GET /metrics` is scraped. prom-client
// is never called per command: its label hashing would cost more than a memory GET.
import type { CommandSpec, StatsSnapshot } from '@hati/protocol';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Upper bounds (µs) of the command latency buckets. A memory command takes a few µs, an hdd
 * write waits for its group commit (ms, or an fsync with durability `always`).
 */
export const LATENCY_BOUNDS_US: readonly number[] = [
  5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
  2_500_000, 5_000_000, 10_000_000,
];
const BUCKETS = LATENCY_BOUNDS_US.length + 1;
const LAST_BOUND = LATENCY_BOUNDS_US.length;

/** The bucket of a latency: a scan from the bottom, where nearly every command stops at once. */
function bucketOf(us: number): number {
  let bucket = 0;
  while (bucket < LAST_BOUND && us > (LATENCY_BOUNDS_US[bucket] as number)) bucket++;
  return bucket;
}

/** The command label: lower case, a subcommand after `|` (`client|setname`), as Redis's commandstats. */
function commandLabel(spec: CommandSpec): string {
  return spec.name.toLowerCase().replace(' ', '|');
}

/** The `command` label of requests that named no command (UNKNOWN_COMMAND). */
const UNKNOWN = 'unknown';

/**
 * Commands of the TCP and UNIX listeners: calls, failures by error code, and a latency
 * histogram, per command (a row per command of the table, and one for unknown names).
 */
export class CommandCounters {
  /** Row → command label; the last row is `unknown`. */
  readonly labels: readonly string[];
  /** The row of unknown command names. */
  readonly unknown: number;
  readonly #rows = new Map<CommandSpec, number>();
  /** Calls per row and latency bucket, row-major (`row * BUCKETS + bucket`). */
  readonly #buckets: Float64Array;
  /** Sum of the latencies per row, µs. */
  readonly #sumUs: Float64Array;
  /** Failed calls per row, by error code; rows without failures have none. */
  readonly #errors: Array<Map<string, number> | undefined>;

  constructor(specs: readonly CommandSpec[]) {
    specs.forEach((spec, row) => {
      this.#rows.set(spec, row);
    });
    this.labels = [...specs.map(commandLabel), UNKNOWN];
    this.unknown = specs.length;
    this.#buckets = new Float64Array(this.labels.length * BUCKETS);
    this.#sumUs = new Float64Array(this.labels.length);
    this.#errors = new Array(this.labels.length).fill(undefined);
  }

  /** The row of a command of the table; the dispatcher keeps it next to the handler. */
  rowOf(spec: CommandSpec): number {
    const row = this.#rows.get(spec);
    if (row === undefined) throw new Error(`${spec.name} is not a command of the table`);
    return row;
  }

  /** A call of `row` took `ms` milliseconds. */
  time(row: number, ms: number): void {
    const us = ms * 1000;
    const buckets = this.#buckets;
    const bucket = row * BUCKETS + bucketOf(us);
    buckets[bucket] = (buckets[bucket] as number) + 1;
    this.#sumUs[row] = (this.#sumUs[row] as number) + us;
  }

  /** A call of `row` failed with `code` (its time is counted by `time` like any call's). */
  failed(row: number, code: string): void {
    let errors = this.#errors[row];
    if (errors === undefined) {
      errors = new Map();
      this.#errors[row] = errors;
    }
    errors.set(code, (errors.get(code) ?? 0) + 1);
  }

  /** Calls of a row, failures included. */
  calls(row: number): number {
    let calls = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) calls += this.#buckets[row * BUCKETS + bucket] as number;
    return calls;
  }

  /** Failures of a row by error code. */
  errors(row: number): ReadonlyMap<string, number> {
    return this.#errors[row] ?? new Map();
  }

  /** A row's latency bucket counts (not cumulative), the last one over the last bound. */
  buckets(row: number): number[] {
    return Array.from(this.#buckets.subarray(row * BUCKETS, (row + 1) * BUCKETS));
  }

  sumUs(row: number): number {
    return this.#sumUs[row] as number;
  }

  /** Every command together, as `StatsSnapshot.commands.latencyUs`. */
  latency(): StatsSnapshot['commands']['latencyUs'] {
    const counts = new Array<number>(BUCKETS).fill(0);
    for (let i = 0; i < this.#buckets.length; i++) {
      counts[i % BUCKETS] = (counts[i % BUCKETS] as number) + (this.#buckets[i] as number);
    }
    return { bounds: [...LATENCY_BOUNDS_US], counts };
  }
}

/** JSON-RPC calls by method and result. Off the hot path: a map per method. */
export class RpcCounters {
  readonly #byMethod = new Map<string, Map<string, number>>();

  /** `method`: a method served, or `unknown` for a name that is not one (never the name sent). */
  count(method: string, result: string): void {
    let results = this.#byMethod.get(method);
    if (results === undefined) {
      results = new Map();
      this.#byMethod.set(method, results);
    }
    results.set(result, (results.get(result) ?? 0) + 1);
  }

  entries(): Array<[method: string, result: string, count: number]> {
    const all: Array<[string, string, number]> = [];
    for (const [method, results] of this.#byMethod) {
      for (const [result, count] of results) all.push([method, result, count]);
    }
    return all;
  }
}

/** Observations counted into fixed buckets: what a histogram of a few events per batch needs. */
export class Buckets {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let bucket = 0;
    while (bucket < this.bounds.length && value > (this.bounds[bucket] as number)) bucket++;
    this.counts[bucket] = (this.counts[bucket] as number) + 1;
    this.sum += value;
  }
}

/** Upper bounds of the hdd write and fsync durations, ms. */
const IO_BOUNDS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000];
/** Upper bounds of the records in one hdd write batch. */
const BATCH_BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000];

/** The hdd store's LevelDB write batches and fsyncs, as its `ioObserver` reports them. */
export class HddIo {
  readonly writeMs = new Buckets(IO_BOUNDS_MS);
  readonly fsyncMs = new Buckets(IO_BOUNDS_MS);
  readonly batchRecords = new Buckets(BATCH_BOUNDS);
  /**
   * With durability `always` LevelDB syncs inside each write, and the engine reports no fsync of
   * its own: each write is then an fsync too, timed with its write.
   */
  syncedWrites = false;

  /** The hdd engine's `ioObserver`: called once per write batch and once per fsync. */
  readonly observe = (event: 'write' | 'fsync', ms: number, ops: number): void => {
    if (event === 'write') {
      this.writeMs.observe(ms);
      this.batchRecords.observe(ops);
      if (this.syncedWrites) this.fsyncMs.observe(ms);
    } else {
      this.fsyncMs.observe(ms);
    }
  };
}

/** One labelled series of a histogram counted elsewhere. */
interface Series {
  labels: Record<string, string>;
  /** Per bucket, not cumulative; the last one over the last bound. */
  counts: ArrayLike<number>;
  sum: number;
}

type Metric = Awaited<ReturnType<Histogram<string>['get']>>;

/**
 * A prom-client histogram whose buckets are counted elsewhere (typed arrays, per command or per
 * batch) and read when scraped: the registry asks it for its values like any histogram.
 */
class CountedHistogram extends Histogram<string> {
  readonly #name: string;
  readonly #help: string;
  readonly #bounds: readonly number[];
  readonly #series: () => Series[];

  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: string[],
    bounds: readonly number[],
    series: () => Series[],
  ) {
    super({ name, help, labelNames, buckets: [...bounds], registers: [registry] });
    this.#name = name;
    this.#help = help;
    this.#bounds = bounds;
    this.#series = series;
  }

  override async get(): Promise<Metric> {
    // metricName: a histogram's lines are its _bucket, _sum and _count series.
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    const name = this.#name;
    for (const { labels, counts, sum } of this.#series()) {
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += counts[i] as number;
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: bound }, value: cumulative });
      });
      cumulative += counts[this.#bounds.length] as number;
      values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
      values.push({ metricName: `${name}_sum`, labels, value: sum });
      values.push({ metricName: `${name}_count`, labels, value: cumulative });
    }
    // What prom-client's own histogram returns (its type declares an enum where it writes the string).
    return { name, help: this.#help, type: 'histogram', values, aggregator: 'sum' } as unknown as Metric;
  }

  /** What the registry's text format reads (prom-client asks this first when a metric has it). */
  async getForPromString(): Promise<Metric> {
    return this.get();
  }
}

/** What `/metrics` reads: the counters above, and a stats snapshot taken per scrape. */
export interface MetricsSource {
  commands: CommandCounters;
  rpc: RpcCounters;
  hddIo: HddIo;
  snapshot(): Promise<StatsSnapshot>;
}

/**
 * A Registry of the server's metrics (docs/monitoring.md), plus prom-client's default process
 * metrics. One per server, never prom-client's global registry, so that two servers in a
 * process (tests, embedding) each report their own.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #source: MetricsSource;
  /** The snapshot the gauges of this scrape read; taken once per scrape. */
  #scrape: StatsSnapshot | undefined;

  constructor(source: MetricsSource) {
    this.#source = source;
    collectDefaultMetrics({ register: this.registry });
    this.#define();
  }

  /** The Prometheus text exposition of every metric, and its content type. */
  async text(): Promise<{ contentType: string; body: string }> {
    this.#scrape = await this.#source.snapshot();
    try {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      this.#scrape = undefined;
    }
  }

  #snapshot(): StatsSnapshot {
    if (this.#scrape === undefined) throw new Error('a metric was read outside of a scrape');
    return this.#scrape;
  }

  #define(): void {
    const registers = [this.registry];
    const { commands, rpc, hddIo } = this.#source;
    const snapshot = () => this.#snapshot();

    new Counter({
      name: 'hati_commands_total',
      help: 'Commands answered over TCP and UNIX sockets, by command and result (ok, or the error code).',
      labelNames: ['command', 'result'],
      registers,
      collect() {
        this.reset();
        commands.labels.forEach((command, row) => {
          const calls = commands.calls(row);
          if (calls === 0) return;
          let failed = 0;
          for (const [code, count] of commands.errors(row)) {
            this.inc({ command, result: code }, count);
            failed += count;
          }
          if (calls > failed) this.inc({ command, result: 'ok' }, calls - failed);
        });
      },
    });
    new CountedHistogram(
      this.registry,
      'hati_command_duration_seconds',
      'Time commands over TCP and UNIX sockets took, from being read to being answered (an hdd write includes its wait for the disk).',
      ['command'],
      LATENCY_BOUNDS_US.map((us) => us / 1e6),
      () =>
        commands.labels.flatMap((command, row) =>
          commands.calls(row) === 0
            ? []
            : [{ labels: { command }, counts: commands.buckets(row), sum: commands.sumUs(row) / 1e6 }],
        ),
    );
    new Counter({
      name: 'hati_rpc_calls_total',
      help: 'JSON-RPC calls answered, by method (unknown for a method that does not exist) and result.',
      labelNames: ['method', 'result'],
      registers,
      collect() {
        this.reset();
        for (const [method, result, count] of rpc.entries()) this.inc({ method, result }, count);
      },
    });
    new Gauge({
      name: 'hati_connections',
      help: 'Client connections open now, by listener.',
      labelNames: ['listener'],
      registers,
      collect() {
        for (const [listener, counts] of Object.entries(snapshot().connections)) this.set({ listener }, counts.current);
      },
    });
    new Counter({
      name: 'hati_connections_total',
      help: 'Client connections accepted since start, by listener.',
      labelNames: ['listener'],
      registers,
      collect() {
        this.reset();
        for (const [listener, counts] of Object.entries(snapshot().connections)) this.inc({ listener }, counts.total);
      },
    });
    new Gauge({
      name: 'hati_keys',
      help: 'Live keys, by storage type (hdd is absent while its data directory is gone).',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        const { memory, hdd } = snapshot().storage;
        this.set({ type: 'memory' }, memory.keys);
        if (hdd.keys !== null) this.set({ type: 'hdd' }, hdd.keys);
      },
    });
    new Gauge({
      name: 'hati_keys_per_shard',
      help: 'Live keys, by storage type and shard.',
      labelNames: ['type', 'shard'],
      registers,
      collect() {
        this.reset();
        const { memory, hdd } = snapshot().storage;
        for (const [type, shards] of [
          ['memory', memory.shards],
          ['hdd', hdd.shards],
        ] as const) {
          shards.forEach((keys, shard) => {
            this.set({ type, shard }, keys);
          });
        }
      },
    });
    new Gauge({
      name: 'hati_hdd_state',
      help: 'The hdd store state: 1 for the current one (ok, suspended: writes refused after a failed write, gone: data directory deleted).',
      labelNames: ['state'],
      registers,
      collect() {
        const { state } = snapshot().storage.hdd;
        for (const each of ['ok', 'suspended', 'gone']) this.set({ state: each }, each === state ? 1 : 0);
      },
    });
    new Counter({
      name: 'hati_hdd_write_batches_total',
      help: 'LevelDB write batches of the hdd store (group commits of hdd keys).',
      registers,
      collect() {
        this.reset();
        let batches = 0;
        for (const count of hddIo.batchRecords.counts) batches += count;
        this.inc(batches);
      },
    });
    const ioHistogram = (name: string, help: string, buckets: Buckets, scale: number) =>
      new CountedHistogram(
        this.registry,
        name,
        help,
        [],
        buckets.bounds.map((bound) => bound * scale),
        () => [{ labels: {}, counts: buckets.counts, sum: buckets.sum * scale }],
      );
    ioHistogram(
      'hati_hdd_write_batch_records',
      'Records per LevelDB write batch of the hdd store.',
      hddIo.batchRecords,
      1,
    );
    ioHistogram(
      'hati_hdd_write_duration_seconds',
      'Time a LevelDB write batch of the hdd store took.',
      hddIo.writeMs,
      1 / 1000,
    );
    ioHistogram(
      'hati_hdd_fsync_duration_seconds',
      'Time an fsync of the hdd store took (durability always: each write batch, synced as it is written; everysec: once a second).',
      hddIo.fsyncMs,
      1 / 1000,
    );
    new Counter({
      name: 'hati_pubsub_delivered_total',
      help: 'Pub/sub messages delivered to subscribers (one per receiver).',
      registers,
      collect() {
        this.reset();
        this.inc(snapshot().pubsub.delivered);
      },
    });
    new Gauge({
      name: 'hati_queue_messages',
      help: 'Messages in a broker queue now, by state: ready, leased (delivered, not yet acknowledged), delayed, dead (dead letters kept).',
      labelNames: ['queue', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [queue, counts] of Object.entries(snapshot().broker.perQueue)) {
          for (const state of ['ready', 'leased', 'delayed', 'dead'] as const)
            this.set({ queue, state }, counts[state]);
        }
      },
    });
    new Gauge({
      name: 'hati_queue_consumers',
      help: 'Consumers (CONSUME) of a broker queue now.',
      labelNames: ['queue'],
      registers,
      collect() {
        this.reset();
        for (const [queue, counts] of Object.entries(snapshot().broker.perQueue)) this.set({ queue }, counts.consumers);
      },
    });
    const queueTotal = (
      name: string,
      field: 'published' | 'delivered' | 'redelivered' | 'acked' | 'deadLettered',
      help: string,
    ) =>
      new Counter({
        name,
        help,
        labelNames: ['queue'],
        registers,
        collect() {
          this.reset();
          for (const [queue, counts] of Object.entries(snapshot().broker.perQueue)) this.inc({ queue }, counts[field]);
        },
      });
    queueTotal('hati_queue_published_total', 'published', 'Messages routed into a broker queue since start.');
    queueTotal(
      'hati_queue_delivered_total',
      'delivered',
      'Deliveries from a broker queue since start (FETCH and CONSUME leases; redeliveries included).',
    );
    queueTotal(
      'hati_queue_redelivered_total',
      'redelivered',
      'Deliveries of a message delivered before (its lease expired or it was NACKed).',
    );
    queueTotal('hati_queue_acked_total', 'acked', 'Messages of a broker queue acknowledged since start.');
    queueTotal(
      'hati_queue_dead_lettered_total',
      'deadLettered',
      'Messages of a broker queue dead-lettered since start (rejected, expired, or over the delivery limit).',
    );
  }
}
