// `hati stats` against a spawned server: --once prints the STATS document, a pipe gets one
// logfmt line per interval, a terminal gets the live view redrawn in place.
import t from 'tap';
import { runStats, type StatsOutput } from '../src/stats-command.js';
import { Hati, lines, RawClient, runHati, tempDir } from './common/hati.js';

t.test('hati stats', async (t) => {
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, ['--tcp-host', '127.0.0.1', '--tcp-port', '0', '--data-dir', dir]);
  const address = await hati.tcp();
  const client = await RawClient.open(t, address);
  t.equal(await client.command('SET', 'memory', '0', 'a', '1'), 'OK');
  t.equal(await client.command('SET', 'memory', '0', 'b', '2'), 'OK');
  t.equal(await client.command('CREATEROUTER', 'orders', 'direct'), 'OK');
  t.equal(await client.command('CREATEQUEUE', 'jobs', 'memory'), 'OK');
  t.equal(await client.command('BIND', 'jobs', 'orders', 'new'), 'OK');
  t.equal(await client.command('PUBLISH', 'orders', 'new', 'm'), 1);
  const connection = ['-h', address.host, '-p', String(address.port)];

  t.test('--once: one JSON document, the STATS snapshot', async (t) => {
    const run = await runHati(['stats', '--once', ...connection]);
    t.same([run.code, run.stderr], [0, '']);
    const stats = JSON.parse(run.stdout);
    t.equal(stats.storage.memory.keys, 2);
    t.same(stats.broker.perQueue.jobs, {
      ready: 1,
      leased: 0,
      delayed: 0,
      dead: 0,
      consumers: 0,
      published: 1,
      delivered: 0,
      redelivered: 0,
      acked: 0,
      deadLettered: 0,
    });
    const { bounds, counts } = stats.commands.latencyUs;
    t.equal(counts.length, bounds.length + 1);
    t.equal(
      counts.reduce((a: number, b: number) => a + b, 0),
      stats.commands.processed - 1,
      'every command answered is in the latency histogram (the STATS itself was still running)',
    );
    t.ok(stats.commands.processed >= 6, `the 6 commands sent (${stats.commands.processed})`);
  });

  t.test('not a terminal: one key=value line per interval', async (t) => {
    const run = await runHati(['stats', '--interval', '0.2', '--count', '2', ...connection]);
    t.same([run.code, run.stderr], [0, '']);
    const printed = lines(run.stdout);
    t.equal(printed.length, 2, 'two lines for --count 2');
    for (const line of printed) {
      const fields = Object.fromEntries(line.split(' ').map((field) => field.split('=') as [string, string]));
      t.match(fields, {
        time: /^\d{4}-\d\d-\d\dT/,
        ops_per_sec: /^\d+(\.\d)?$/,
        keys_memory: '2',
        keys_hdd: '0',
        hdd_state: 'ok',
        conns_tcp: /^[12]$/,
        queues: '1',
        queue_ready: '1',
      });
    }
  });

  t.test('a terminal: the live view, redrawn in place', async (t) => {
    const frames: string[] = [];
    let closed = false;
    const output: StatsOutput = {
      write: (text) => frames.push(text),
      tty: true,
      columns: 200,
      stopped: new Promise(() => {}),
      close: () => {
        closed = true;
      },
    };
    let stderr = '';
    const io = { stdout: () => {}, stderr: (text: string) => (stderr += text), env: {} };
    const code = await runStats({ tcpHost: address.host, tcpPort: address.port, interval: 0.1, count: 2 }, io, output);
    t.same([code, stderr, closed], [0, '', true]);
    t.equal(frames.length, 2);
    const [first, second] = frames as [string, string];
    t.ok(first.startsWith('\x1b[H'), 'drawn from the top left');
    t.match(first, /^ops\/s +- /m, 'no rate before a second sample');
    t.match(second, /^ops\/s +\d/m, 'a rate once there are two');
    t.match(second, /latency p50 (\d|-)/);
    t.match(
      second,
      /^keys +memory 2 in 8 shards +hdd \d+ in 1 shard \(ok, durability /m,
      'a new hdd store: 1 shard, singular',
    );
    t.match(second, /^QUEUE +READY +LEASED +DELAYED +DEAD +CONSUMERS/m);
    t.match(second, /^jobs +1 +0 +0 +0 +0 /m);
  });

  t.test('a server that refuses: one line, exit 1', async (t) => {
    let [stdout, stderr] = ['', ''];
    const io = { stdout: (text: string) => (stdout += text), stderr: (text: string) => (stderr += text), env: {} };
    const code = await runStats({ tcpHost: '127.0.0.1', tcpPort: 1, interval: 1, once: true }, io);
    t.same([code, stdout], [1, '']);
    t.match(stderr, /^hati: .*127\.0\.0\.1:1/);
    t.equal(lines(stderr).length, 1);
  });
});
