// `hati backup export|import|inspect` against real `hati start` processes: a round trip keeps
// every key, value, expiry, definition, message and delivery count (into a running server, and
// into a stopped one's data directory); `-` streams through a pipe with nothing but the summary on
// stderr; a damaged file is refused with the offset and nothing applied; merge, --replace, and an
// import stopped by the server say what they did.
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createClient, type HatiClient } from '@hati/client';
import { run } from '@hati/test-helpers';
import t, { type Test } from 'tap';
import { BackupDecoder } from '../src/backup-file.js';
import { BIN, Hati, shellQuote, tempDir } from './common/hati.js';
import { type Captured, inProcess } from './common/in-process.js';

/** `hati backup <args>` through main() in this process, stderr captured; `stdin` for `-`. */
function backup(args: string[], stdin?: NodeJS.ReadableStream): Promise<Captured> {
  return inProcess(['backup', ...args, '--no-progress'], {}, stdin);
}

/** A `hati start` with TCP on a free port and its own data directory. */
async function server(t: Test, dataDir?: string): Promise<{ hati: Hati; port: string; dataDir: string }> {
  const dir = dataDir ?? join(await tempDir(t), 'data');
  const hati = Hati.spawn(t, ['--tcp', '--tcp-host', '127.0.0.1', '--tcp-port', '0', '--data-dir', dir]);
  const { port } = await hati.tcp();
  return { hati, port: String(port), dataDir: dir };
}

async function clientOf(t: Test, port: string): Promise<HatiClient> {
  const client = createClient({ host: '127.0.0.1', port: Number(port), reconnect: false });
  t.teardown(() => client.close());
  return client;
}

const HOUR = 3_600_000;

/**
 * Keys of both types (binary, with and without expiry, one larger than a block), routers,
 * queues with settings, bindings, and messages: one given back once (2 deliveries, leased at
 * the snapshot), one with a dedup id, one delayed, and a dead letter.
 */
async function fill(client: HatiClient): Promise<void> {
  await client.set('hdd', 'plain', 'value one');
  await client.set('hdd', Buffer.from([0, 1, 2, 255]), Buffer.from([9, 8, 7, 0]), { ttl: HOUR });
  await client.set('hdd', 'big', Buffer.alloc(1_500_000, 'b'));
  await Promise.all(Array.from({ length: 500 }, (_, i) => client.set('hdd', `k:${i}`, `v:${i}`)));
  await client.set('memory', 'session', 'abc', { ttl: HOUR });
  await client.set('memory', 'counter', '42');
  await client.createRouter('orders', 'topic');
  await client.createRouter('audit', 'fanout');
  await client.createQueue('jobs', 'hdd', { maxDeliveries: 5, ackTimeoutMs: 60_000, dedupWindowMs: 5_000 });
  await client.createQueue('strict', 'hdd', { maxDeliveries: 1 });
  await client.createQueue('live', 'memory', { maxLength: 10 });
  await client.bind('jobs', 'orders', 'eu.*');
  await client.bind('strict', 'orders', 'strict');
  await client.bind('live', 'audit', '');
  await client.publish('orders', 'eu.paris', 'first');
  await client.publish('orders', 'eu.rome', 'second', { id: 'dedup-2' });
  await client.publish('orders', 'eu.oslo', 'later', { delayMs: HOUR });
  const [first] = await client.fetch('jobs');
  await client.nack('jobs', (first as { id: string }).id);
  // Leased again (2 deliveries) and left unacknowledged at the snapshot.
  await client.fetch('jobs');
  await client.publish('orders', 'strict', 'doomed');
  const [doomed] = await client.fetch('strict');
  await client.nack('strict', (doomed as { id: string }).id, { drop: true });
}

/** The records of a backup file as sorted lines (bytes as hex): what two snapshots compare by. */
async function dump(file: string): Promise<string[]> {
  const decoder = new BackupDecoder([await readFile(file)]);
  const lines: string[] = [];
  for (let block = await decoder.next(); block !== undefined; block = await decoder.next()) {
    for (const record of block.records) {
      lines.push(
        Object.entries(record)
          .map(([name, v]) => `${name}=${Buffer.isBuffer(v) ? v.toString('hex') : JSON.stringify(v)}`)
          .join(' '),
      );
    }
  }
  return lines.sort();
}

/** What a user sees of the filled data on a server. */
async function visible(client: HatiClient) {
  const jobs = await client.getQueue('jobs');
  return {
    plain: await client.get('hdd', 'plain'),
    binary: (await client.getBuffer('hdd', Buffer.from([0, 1, 2, 255])))?.toString('hex'),
    binaryTtl: (await client.ttl('hdd', Buffer.from([0, 1, 2, 255]))) > HOUR - 60_000,
    big: (await client.getBuffer('hdd', 'big'))?.length,
    hddKeys: await client.count('hdd'),
    memoryKeys: await client.count('memory'),
    session: await client.get('memory', 'session'),
    routers: await client.listRouters(),
    queues: await client.listQueues(),
    orders: await client.getRouter('orders'),
    jobs: {
      maxDeliveries: jobs.maxDeliveries,
      ackTimeoutMs: jobs.ackTimeoutMs,
      dedupWindowMs: jobs.dedupWindowMs,
      ready: jobs.ready,
      delayed: jobs.delayed,
    },
    live: (await client.getQueue('live')).maxLength,
    // Ready messages in order, with their delivery counts (then given back).
    fetched: (await client.fetch('jobs', { count: 10 })).map((d) => [d.message.toString(), d.deliveries]),
    dead: (await client.deadLetters('strict')).map((d) => [d.message.toString(), d.death.reason, d.death.deliveries]),
  };
}

const SUMMARY =
  /^hati: exported 505 keys \(503 hdd, 2 memory\), 2 routers, 3 queues, 3 bindings, 3 messages, 1 dead letter from 127\.0\.0\.1:\d+ to .* \([\d.]+ [kM]?B in [\d.]+ s: [\d,]+ records\/s, [\d.]+ [kM]?B\/s\)\n$/;

t.test(
  'export → import into a running server keeps keys, expiries, definitions, messages and deliveries',
  async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'all.hati');
    // Every running server of the subtests starts now: their start-ups overlap.
    const [source, target, merged, empty] = await Promise.all([server(t), server(t), server(t), server(t)]);
    await fill(await clientOf(t, source.port));

    const exported = await backup(['export', '--out', file, '--memory', '--tcp-port', source.port]);
    t.equal(exported.code, 0, exported.stderr);
    t.equal(exported.stdout, '');
    t.match(exported.stderr, SUMMARY);

    const imported = await backup(['import', '--in', file, '--tcp-port', target.port]);
    t.equal(imported.code, 0, imported.stderr);
    t.match(
      imported.stderr,
      /^hati: imported 505 keys \(503 hdd, 2 memory\), 2 routers, 3 queues, 3 bindings, 3 messages, 1 dead letter into 127\.0\.0\.1:\d+ \(.*\)\n$/,
    );

    // The target's own snapshot holds the same records, field for field.
    const again = join(dir, 'again.hati');
    t.equal((await backup(['export', '--out', again, '--memory', '--tcp-port', target.port])).code, 0);
    t.same(await dump(again), await dump(file));

    const seen = await visible(await clientOf(t, target.port));
    t.same(seen, {
      plain: 'value one',
      binary: '09080700',
      binaryTtl: true,
      big: 1_500_000,
      hddKeys: 503,
      memoryKeys: 2,
      session: 'abc',
      routers: ['audit', 'orders'],
      queues: ['jobs', 'live', 'strict'],
      orders: {
        name: 'orders',
        kind: 'topic',
        bindings: [
          { queue: 'jobs', bindingKey: 'eu.*' },
          { queue: 'strict', bindingKey: 'strict' },
        ],
      },
      jobs: { maxDeliveries: 5, ackTimeoutMs: 60_000, dedupWindowMs: 5_000, ready: 2, delayed: 1 },
      live: 10,
      // The message leased at the snapshot is ready again, its two deliveries kept (the fetch makes 3).
      fetched: [
        ['first', 3],
        ['second', 1],
      ],
      dead: [['doomed', 'rejected', 1]],
    });

    t.test('inspect prints the header and the counts; --json as one document', async (t) => {
      const text = await backup(['inspect', file]);
      t.equal(text.code, 0, text.stderr);
      t.match(
        text.stdout,
        new RegExp(
          [
            `^file: +${file.replaceAll('.', '\\.')} \\([\\d.]+ [kM]B\\)`,
            'format: +hati backup, version 1',
            'created: +\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z',
            `from: +127\\.0\\.0\\.1:${source.port} \\(hati [\\d.]+\\), written by hati [\\d.]+`,
            'holds: +hdd keys, memory keys, broker definitions, hdd queue messages and dead letters',
            'blocks: +\\d+, every checksum good; [\\d.]+ [kM]B of records in a file of [\\d.]+ [kM]?B \\(\\d+%\\)',
            'keys: +505 \\(503 hdd, 2 memory\\)',
            'routers: +2',
            'queues: +3',
            'bindings: +3',
            'messages: +3',
            'dead letters: 1\n$',
          ].join('\n'),
        ),
      );
      const json = await backup(['inspect', file, '--json']);
      t.match(JSON.parse(json.stdout), {
        file,
        format: 1,
        header: {
          hati: String,
          source: `127.0.0.1:${source.port}`,
          contents: { hdd: true, memory: true, broker: true },
        },
        records: 517,
        counts: { key: 505, router: 2, queue: 3, binding: 3, message: 3, dead: 1 },
        keys: { hdd: 503, memory: 2 },
        checksums: 'ok',
      });
      const piped = await backup(['inspect', '-', '--json'], createReadStream(file));
      t.match(JSON.parse(piped.stdout), { file: 'stdin', records: 517, checksums: 'ok' }, '- reads stdin');
    });

    t.test(
      'merge keeps what the file does not hold; --replace removes it; a queue defined otherwise stops the import',
      async (t) => {
        const client = await clientOf(t, merged.port);
        await client.set('hdd', 'plain', 'changed on the target');
        await client.set('hdd', 'extra', 'only on the target');
        await client.createQueue('other', 'memory');
        t.equal((await backup(['import', '--in', file, '--tcp-port', merged.port])).code, 0);
        t.same(
          [await client.get('hdd', 'plain'), await client.get('hdd', 'extra'), await client.listQueues()],
          ['value one', 'only on the target', ['jobs', 'live', 'other', 'strict']],
          'the file wins on the same key; the rest stays',
        );
        const replaced = await backup(['import', '--in', file, '--replace', '--tcp-port', merged.port]);
        t.equal(replaced.code, 0, replaced.stderr);
        t.match(
          replaced.stderr,
          /^hati: --replace: removed 2 memory keys, 504 hdd keys, 4 queues \(with their messages, dead letters and bindings\) and 2 routers from 127\.0\.0\.1:\d+\nhati: imported 505 keys/,
        );
        t.same(
          [await client.get('hdd', 'extra'), await client.listQueues(), (await client.getQueue('jobs')).ready],
          [null, ['jobs', 'live', 'strict'], 2],
          'exactly the file: no extra key or queue, no message twice',
        );

        // A queue of the file's name with other settings: the import stops at it, before any key or message.
        await client.deleteQueue('jobs');
        await client.createQueue('jobs', 'hdd', { maxDeliveries: 9 });
        await client.flushAll('hdd');
        const result = await backup(['import', '--in', file, '--tcp-port', merged.port]);
        t.equal(result.code, 1);
        t.match(
          result.stderr,
          /^hati: import stopped at record 3 of block 1 \(byte \d+ of .*all\.hati\): the server refused the queue "jobs": QUEUE_EXISTS queue 'jobs' exists with other settings \(GETQUEUE jobs shows them\); loaded before stopping: 0 keys \(0 hdd, 0 memory\), 2 routers, 2 queues, 0 bindings, 0 messages, 0 dead letters\n$/,
        );
        t.equal(await client.count('hdd'), 0, 'no key loaded after the refusal');
      },
    );

    t.test('into a stopped server: --data-dir, then hati start serves the same data', async (t) => {
      const dataDir = join(await tempDir(t), 'restored');
      const loaded = await backup(['import', '--in', file, '--data-dir', dataDir]);
      t.equal(loaded.code, 0, loaded.stderr);
      t.match(
        loaded.stderr,
        /^hati: imported 503 keys \(503 hdd, 0 memory\), 2 routers, 3 queues, 3 bindings, 3 messages, 1 dead letter into .*restored; left out 2 memory keys \(a stopped server keeps none: import them into the running server\) \(/,
      );
      const restored = await server(t, dataDir);
      const client = await clientOf(t, restored.port);
      const seen = await visible(client);
      // Memory keys do not outlive the process that loaded them: a stopped server has none.
      t.same(
        { ...seen, memoryKeys: undefined, session: undefined },
        {
          plain: 'value one',
          binary: '09080700',
          binaryTtl: true,
          big: 1_500_000,
          hddKeys: 503,
          memoryKeys: undefined,
          session: undefined,
          routers: ['audit', 'orders'],
          queues: ['jobs', 'live', 'strict'],
          orders: seen.orders,
          jobs: { maxDeliveries: 5, ackTimeoutMs: 60_000, dedupWindowMs: 5_000, ready: 2, delayed: 1 },
          live: 10,
          fetched: [
            ['first', 3],
            ['second', 1],
          ],
          dead: [['doomed', 'rejected', 1]],
        },
      );
    });

    t.test('a damaged file is refused with the offset and nothing applied; - streams through a pipe', async (t) => {
      const bytes = await readFile(file);
      const client = await clientOf(t, empty.port);
      const { blocks } = await (async () => {
        const decoder = new BackupDecoder([bytes]);
        const list = [];
        for (let block = await decoder.next(); block !== undefined; block = await decoder.next()) list.push(block);
        return { blocks: list };
      })();
      const last = blocks.at(-1) as { index: number; offset: number };
      const corrupt = Buffer.from(bytes);
      corrupt[last.offset + 40] = (corrupt[last.offset + 40] as number) ^ 0xff;
      const corruptFile = join(dir, 'corrupt.hati');
      await writeFile(corruptFile, corrupt);
      t.same(await backup(['import', '--in', corruptFile, '--tcp-port', empty.port]), {
        code: 1,
        stdout: '',
        stderr: `hati: ${corruptFile}: block ${last.index} at byte ${last.offset} is damaged: the checksum of its data does not match (BACKUP_CORRUPT at byte ${last.offset}); nothing was imported\n`,
      });
      const cut = bytes.length - 100;
      const truncatedFile = join(dir, 'truncated.hati');
      await writeFile(truncatedFile, bytes.subarray(0, cut));
      const truncated = await backup(['import', '--in', truncatedFile, '--tcp-port', empty.port]);
      t.equal(truncated.code, 1);
      t.match(
        truncated.stderr,
        new RegExp(
          `^hati: .*truncated\\.hati: the file ends at byte ${cut}, .*\\(BACKUP_TRUNCATED at byte ${cut}\\); nothing was imported\\n$`,
        ),
      );
      t.same(
        [
          await client.count('hdd'),
          await client.count('memory'),
          await client.listQueues(),
          await client.listRouters(),
        ],
        [0, 0, [], []],
        'nothing applied',
      );
      const inspect = await backup(['inspect', corruptFile]);
      t.same([inspect.code, inspect.stdout], [1, '']);
      t.match(inspect.stderr, /\(BACKUP_CORRUPT at byte \d+\)\n$/);

      // The same (empty) server, through a pipe: off a terminal stderr holds only the summaries.
      const target = empty;
      const node = (args: string) => `env -u NODE_OPTIONS ${shellQuote(process.execPath)} ${shellQuote(BIN)} ${args}`;
      const piped = await run('sh', [
        '-c',
        `${node(`backup export --out - --memory -p ${source.port}`)} | ${node(`backup import --in - -p ${target.port}`)}`,
      ]);
      t.equal(piped.code, 0, piped.stderr);
      const lines = piped.stderr.split('\n').filter((line) => line !== '');
      t.equal(lines.length, 2, piped.stderr);
      t.match(
        lines.find((line) => line.startsWith('hati: exported')),
        / to stdout \(/,
      );
      t.match(
        lines.find((line) => line.startsWith('hati: imported')),
        /^hati: imported 505 keys \(503 hdd, 2 memory\)/,
      );
      t.notOk(piped.stderr.includes('\r') || piped.stderr.includes('\u001b'), 'no progress drawn');
      const fetched = await (await clientOf(t, target.port)).fetch('jobs', { count: 10 });
      t.same(
        fetched.map((d) => [d.message.toString(), d.deliveries]),
        [
          ['first', 3],
          ['second', 1],
        ],
      );
    });
  },
);

t.test('a failed export leaves no file under the name, nor its temporary one', async (t) => {
  const dir = await tempDir(t);
  const usersFile = join(dir, 'users.json');
  // A user who may read every key but has no admin right: BACKUP BEGIN is refused.
  const stdin = new PassThrough();
  stdin.end('reader secret\n');
  t.equal((await inProcess(['users', 'add', 'reader', '--read', '*', '--users-file', usersFile], {}, stdin)).code, 0);
  const hati = Hati.spawn(t, [
    '--tcp-host',
    '127.0.0.1',
    '--tcp-port',
    '0',
    '--data-dir',
    join(dir, 'data'),
    '--users-file',
    usersFile,
  ]);
  const { port } = await hati.tcp();
  const file = join(dir, 'out', 'none.hati');
  await mkdir(join(dir, 'out'));
  const result = await backup([
    'export',
    '--out',
    file,
    '--tcp-port',
    String(port),
    '--user',
    'reader',
    '-a',
    'reader secret',
    '--no-auth-warning',
  ]);
  t.equal(result.code, 1);
  t.match(
    result.stderr,
    new RegExp(
      `^hati: export failed: BACKUP BEGIN: NOPERM .*\\(no file was written at ${file.replaceAll('.', '\\.')}\\)\n$`,
    ),
  );
  t.same(await readdir(join(dir, 'out')), []);
  const refused = await backup(['export', '--out', file, '--tcp-port', '1']);
  t.same(refused, { code: 1, stdout: '', stderr: 'hati: cannot connect to 127.0.0.1:1: ECONNREFUSED\n' });
});
