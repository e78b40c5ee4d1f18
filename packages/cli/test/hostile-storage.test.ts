// Issue 7, operator accidents around the disk: it fills up, the data directory is deleted or
// swapped under a running server, the server is stopped mid-load. Each test runs the real
// `hati start` on real files and checks what a user sees, then restarts and checks what stayed.
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { Hati, RawClient, type Reply, tempDir, text, within } from './common/hati.js';
import { errorCode, hasKeys, LOCAL_TCP, MB, needsRoot, PrefixWriter, run, show, until } from './common/hostile.js';

/** Writes zeros to `path` until the file system has no byte left. */
async function fillDisk(path: string): Promise<number> {
  const file = await open(path, 'w');
  let written = 0;
  try {
    for (const size of [MB, 4096, 512, 1]) {
      const zeros = Buffer.alloc(size);
      for (;;) {
        try {
          written += (await file.write(zeros)).bytesWritten;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    await file.close();
  }
  return written;
}

/** Sends `SET hdd 0 key value` for each entry, pipelined, and returns the replies in order. */
async function setAll(client: RawClient, entries: Array<[string, string]>): Promise<Reply[]> {
  const from = client.replies.length;
  client.write(entries.map(([key, value]) => `SET hdd 0 ${key} ${value}\r\n`).join(''));
  return client.next(entries.length, from);
}

t.test(
  '1. disk full then recovery',
  { skip: needsRoot('a 16 MiB tmpfs as the data disk', ['mount', 'umount']) },
  async (t) => {
    // The disk holding the data directory fills up (a log, another process). Writes must fail
    // loudly, not be acknowledged and lost; once space is back, writes resume on their own, and
    // everything acknowledged, before and after, is on disk.
    const mnt = await mkdtemp(join(tmpdir(), 'hati-full-'));
    const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]).catch((err: Error) => err);
    if (mounted instanceof Error) {
      // Root without CAP_SYS_ADMIN (an unprivileged container) cannot mount.
      await rm(mnt, { recursive: true, force: true });
      t.plan(0, `cannot mount a tmpfs here: ${mounted.message.split('\n')[0]}`);
      return;
    }
    const servers: Hati[] = [];
    // Registered first, so it runs last: the servers are dead before the unmount.
    t.teardown(async () => {
      for (const hati of servers) {
        if (hati.exit === undefined) {
          hati.child.kill('SIGKILL');
          await hati.exited;
        }
      }
      await run('umount', [mnt]).catch(() => run('umount', ['-l', mnt]));
      await rm(mnt, { recursive: true, force: true });
    });
    const args = [...LOCAL_TCP, '--hdd-durability', 'always', '--data-dir', join(mnt, 'data')];
    const hati = Hati.spawn(t, args);
    servers.push(hati);
    const client = await RawClient.open(t, await hati.tcp());

    /** Every key a SET was sent for, with its value; `acked` those that got +OK. */
    const sent = new Map<string, string>();
    const acked = new Set<string>();
    const set = async (key: string, value: string): Promise<Reply> => {
      sent.set(key, value);
      const reply = await client.command('SET', 'hdd', '0', key, value);
      if (reply === 'OK') acked.add(key);
      return reply;
    };

    for (let i = 0; i < 20; i++) t.equal(await set(`before:${i}`, `value ${i}`), 'OK', `before:${i} stored`);
    const filler = join(mnt, 'filler');
    t.comment(`filler: ${await fillDisk(filler)} bytes`);

    // The disk is full: SET until one fails (LevelDB may still have room in a page it holds).
    const big = 'x'.repeat(1000);
    let failed: Reply | undefined;
    for (let i = 0; i < 5_000 && failed === undefined; i++) {
      const reply = await set(`full:${i}`, `${i}:${big}`);
      if (reply !== 'OK') failed = reply;
    }
    t.ok(failed !== undefined, `a SET failed once the disk was full (${show(failed)})`);
    t.ok(
      ['STORAGE_IO', 'WRITES_SUSPENDED'].includes(errorCode(failed) ?? ''),
      `the failure is STORAGE_IO or WRITES_SUSPENDED (${show(failed)})`,
    );
    for (let i = 0; i < 5; i++) {
      const reply = await set(`suspended:${i}`, 'v');
      t.equal(errorCode(reply), 'WRITES_SUSPENDED', `a SET while the disk is full: ${show(reply)}`);
    }
    t.equal(text(await client.command('GET', 'hdd', 'before:0')), 'value 0', 'reads still work');
    t.equal(text(await client.command('GET', 'hdd', 'before:19')), 'value 19');

    // Space is back: writes resume without a restart.
    await rm(filler);
    let n = 0;
    const resumed = await until(async () => (await set(`recover:${n++}`, 'v')) === 'OK', 10_000, 200);
    t.ok(resumed, `SETs are accepted again within 10 s of freeing space (${n} tries)`);
    const fresh = Array.from({ length: 2_000 }, (_, i): [string, string] => [`after:${i}`, `after ${i}`]);
    for (const [key, value] of fresh) sent.set(key, value);
    const replies = await setAll(client, fresh);
    replies.forEach((reply, i) => {
      if (reply === 'OK') acked.add(`after:${i}`);
    });
    t.equal(replies.filter((reply) => reply === 'OK').length, 2_000, '2,000 new SETs: all +OK');

    hati.child.kill('SIGTERM');
    t.same(await hati.waitExit(), { code: 0, signal: null }, 'SIGTERM: exit 0');

    const again = Hati.spawn(t, args);
    servers.push(again);
    const reader = await RawClient.open(t, await again.tcp());
    const keys = [...sent.keys()];
    const from = reader.replies.length;
    reader.write(keys.map((key) => `GET hdd ${key}\r\n`).join(''));
    const values = await reader.next(keys.length, from);
    const lost: string[] = [];
    let readable = 0;
    keys.forEach((key, i) => {
      const value = values[i];
      if (Buffer.isBuffer(value)) readable++;
      if (acked.has(key) && text(value as Reply) !== sent.get(key)) lost.push(key);
    });
    t.same(
      lost.slice(0, 20),
      [],
      `every acknowledged key is there after a restart (${lost.length} of ${acked.size} lost)`,
    );
    t.equal(await reader.command('COUNT', 'hdd'), readable, `COUNT hdd equals the keys readable (${readable})`);
    t.ok(readable >= acked.size, `readable ${readable} >= acknowledged ${acked.size}`);
    again.child.kill('SIGTERM');
    t.same(await again.waitExit(), { code: 0, signal: null });
  },
);

t.test('2. data directory deleted while running', async (t) => {
  // `rm -rf data` (or a cleanup job) while the server runs: LevelDB keeps writing into unlinked
  // files, so every later write is acknowledged and then lost. The server must say so instead.
  const dir = await tempDir(t);
  const dataDir = join(dir, 'data');
  const hati = Hati.spawn(t, [...LOCAL_TCP, '--data-dir', dataDir]);
  const client = await RawClient.open(t, await hati.tcp());
  for (let i = 0; i < 10; i++) t.equal(await client.command('SET', 'hdd', '0', `k${i}`, `v${i}`), 'OK');

  await rm(dataDir, { recursive: true, force: true });
  for (const args of [
    ['SET', 'hdd', '0', 'after-rm', 'lost?'],
    ['GET', 'hdd', 'k0'],
    ['COUNT', 'hdd'],
  ]) {
    const reply = await client.command(...args);
    t.equal(errorCode(reply), 'DATA_DIR_GONE', `${args[0]} hdd after rm -rf: ${show(reply)}`);
  }
  t.ok(await until(() => hati.stderr.includes(dataDir), 3_000), `stderr names the directory: ${hati.stderr}`);
  t.equal(await client.command('SET', 'memory', '0', 'm', 'still here'), 'OK', 'memory SET works');
  t.equal(text(await client.command('GET', 'memory', 'm')), 'still here', 'memory GET works');

  // A second server on the same path starts, and its COUNT agrees with what it can read.
  const second = Hati.spawn(t, [...LOCAL_TCP, '--data-dir', dataDir]);
  const other = await RawClient.open(t, await second.tcp());
  let readable = 0;
  for (const key of [...Array.from({ length: 10 }, (_, i) => `k${i}`), 'after-rm']) {
    if (Buffer.isBuffer(await other.command('GET', 'hdd', key))) readable++;
  }
  t.equal(await other.command('COUNT', 'hdd'), readable, `the second server: COUNT hdd = keys readable (${readable})`);

  // Variant: the directory is moved away and an empty one put in its place.
  const swapped = join(dir, 'swapped');
  const third = Hati.spawn(t, [...LOCAL_TCP, '--data-dir', swapped]);
  const swapClient = await RawClient.open(t, await third.tcp());
  t.equal(await swapClient.command('SET', 'hdd', '0', 'k', 'v'), 'OK');
  await rename(swapped, join(dir, 'swapped-old'));
  await mkdir(swapped);
  for (const args of [
    ['SET', 'hdd', '0', 'after-swap', 'lost?'],
    ['GET', 'hdd', 'k'],
  ]) {
    const reply = await swapClient.command(...args);
    t.equal(errorCode(reply), 'DATA_DIR_GONE', `${args[0]} hdd after the swap: ${show(reply)}`);
  }

  for (const server of [hati, second, third]) server.child.kill('SIGTERM');
  const exits = await Promise.all([hati.waitExit(), second.waitExit(), third.waitExit()]);
  t.same(exits[1], { code: 0, signal: null }, 'the second server exits 0');
  t.comment(`exits of the servers whose directory went: ${JSON.stringify([exits[0], exits[2]])}`);
});

t.test('3. graceful shutdown answers every request it read', async (t) => {
  // SIGTERM while clients pipeline writes: every write the server applied must have had its
  // +OK delivered, and no connection may be reset. A key present after a restart without its
  // +OK means a client retrying it (or not) cannot know what happened.
  const dir = await tempDir(t);
  for (const [cycle, durability] of ['no', 'always', 'no'].entries()) {
    const args = [...LOCAL_TCP, '--hdd-durability', durability, '--data-dir', join(dir, `data-${cycle}`)];
    const hati = Hati.spawn(t, args);
    const address = await hati.tcp();
    const writers = await Promise.all([0, 1, 2, 3].map((c) => PrefixWriter.start(t, address, `c${c}:`)));
    await delay(1_000);
    hati.child.kill('SIGTERM');
    const what = `cycle ${cycle} (durability ${durability})`;
    t.same(await hati.waitExit(), { code: 0, signal: null }, `${what}: exit 0`);
    await within(Promise.all(writers.map((w) => w.client.closed())), 5_000, 'every connection closed');
    for (const w of writers) w.stop();
    t.same(
      writers.map((w) => w.client.closedBy),
      ['end', 'end', 'end', 'end'],
      `${what}: every connection ended cleanly (no reset)`,
    );

    const again = Hati.spawn(t, args);
    const reader = await RawClient.open(t, await again.tcp());
    for (const [c, w] of writers.entries()) {
      const keys = Array.from({ length: w.sent }, (_, n) => `${w.prefix}${n}`);
      const present = await hasKeys(reader, keys);
      const unanswered = present.flatMap((here, n) => (here && w.replies[n] !== 'OK' ? [n] : []));
      const lost = present.flatMap((here, n) => (!here && w.replies[n] === 'OK' ? [n] : []));
      const others = w.replies.filter((reply) => reply !== 'OK').map(show);
      t.same(
        { unanswered: unanswered.length, lost: lost.length },
        { unanswered: 0, lost: 0 },
        `${what}, c${c}: keys present = the ${w.acked} acknowledged (of ${w.sent} sent; first unanswered present: ${unanswered.slice(0, 3).join(', ')}; other replies: ${[...new Set(others)].join(', ')})`,
      );
    }
    t.comment(`${what}: acked ${writers.map((w) => w.acked).join(', ')}`);
    again.child.kill('SIGTERM');
    t.same(await again.waitExit(), { code: 0, signal: null });
  }
});
