// Issue 7, hostile load: one client (or a few) trying to take all of the server's memory,
// descriptors or event loop. Each test runs the real `hati start` and checks that the damage
// stays bounded: the server's resident memory as the kernel reports it, PING latency for the
// other clients, and the error the offender gets.
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeCommand } from '@hati/protocol';
import t, { type Test } from 'tap';
import { type Address, Hati, RawClient, tempDir, text, within } from './common/hati.js';
import {
  errorCode,
  httpRequest,
  LOCAL_RPC,
  LOCAL_TCP,
  MB,
  Pinger,
  pingOnce,
  RssSampler,
  show,
  until,
} from './common/hostile.js';

const JSON_TYPE = { 'content-type': 'application/json' };
const NO_PROC =
  process.platform !== 'linux' && "reads the server's memory from /proc/<pid>/status, which only Linux has";

t.test('7. bounded under hostile load: JSON-RPC batch', async (t) => {
  // 8 MB of `[1,1,...]` is under the body limit and holds 4,000,000 invalid calls: answering
  // each builds a response of hundreds of MB and blocks the event loop for every client.
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, [...LOCAL_TCP, ...LOCAL_RPC, '--data-dir', join(dir, 'data')]);
  const [tcp, rpc] = await Promise.all([hati.tcp(), hati.rpc()]);
  const huge = `[${'1,'.repeat(3_999_999)}1]`;
  const pinger = await Pinger.start(t, tcp, 5);
  const started = performance.now();
  const refused = await httpRequest(rpc, { headers: JSON_TYPE, body: huge }, 10_000).catch((err: Error) => err);
  const elapsed = performance.now() - started;
  const worst = await pinger.stop();
  if (refused instanceof Error) {
    t.fail(`a 4,000,000-call batch: ${refused.message}`);
  } else {
    t.equal(refused.status, 413, `a 4,000,000-call batch: HTTP 413 (${refused.text.slice(0, 200)})`);
    t.equal(refused.json.error?.data?.code, 'BATCH_TOO_LARGE');
  }
  t.ok(elapsed < 5_000, `refused within a few seconds (${Math.round(elapsed)} ms)`);
  t.ok(worst < 1_000, `PING answered during it (worst ${Math.round(worst)} ms, failures ${pinger.failures.length})`);
  t.ok((await pingOnce(t, tcp, 3_000)) < 1_000, 'PING answers after it');

  // A batch as large as --rpc-max-batch allows runs without stalling the other clients.
  const allowed = Hati.spawn(t, [
    ...LOCAL_TCP,
    ...LOCAL_RPC,
    '--rpc-max-batch',
    '20000',
    '--data-dir',
    join(dir, 'data-batch'),
  ]);
  const [tcp2, rpc2] = await Promise.all([allowed.tcp(), allowed.rpc()]);
  const batch = JSON.stringify(
    Array.from({ length: 20_000 }, (_, i) => ({
      jsonrpc: '2.0',
      id: i,
      method: 'Storage.Set',
      params: { type: 'memory', key: `b${i}`, value: `v${i}` },
    })),
  );
  const pinger2 = await Pinger.start(t, tcp2, 5);
  await delay(200);
  pinger2.reset();
  const done = await httpRequest(rpc2, { headers: JSON_TYPE, body: batch }, 20_000);
  const worst2 = await pinger2.stop();
  const results = Array.isArray(done.json) ? (done.json as Array<{ result?: unknown }>) : [];
  t.equal(done.status, 200, `a 20,000-call batch: HTTP 200 (${done.text.slice(0, 200)})`);
  t.equal(results.filter((r) => r.result === true).length, 20_000, 'all 20,000 results are true');
  // Before the fix the batch held the process for seconds. The 50 ms bound is checked in
  // process (packages/server/test/rpc-security.test.ts); across processes on a busy 2-core CI
  // machine the scheduler alone can add tens of ms, so this end-to-end check only shows no stall.
  t.ok(
    worst2 < 250,
    `PING every 5 ms during the batch: worst ${worst2.toFixed(1)} ms (${pinger2.latencies.length} PINGs)`,
  );
  t.same(pinger2.failures, []);
  for (const server of [hati, allowed]) server.child.kill('SIGTERM');
  t.same(await Promise.all([hati.waitExit(), allowed.waitExit()]), [
    { code: 0, signal: null },
    { code: 0, signal: null },
  ]);
});

t.test('8. unread replies are bounded', { skip: NO_PROC }, async (t) => {
  // 64 KB of `GET memory big\n` asks for 4,369 copies of a 100 KB value (437 MB). A client
  // that never reads them must not make the server hold them all.
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, [...LOCAL_TCP, '--data-dir', join(dir, 'data')]);
  const address = await hati.tcp();
  const owner = await RawClient.open(t, address);
  t.equal(await owner.command('SET', 'memory', '0', 'big', 'b'.repeat(100_000)), 'OK');
  const baseline = await new RssSampler(hati.pid).stop();

  const pinger = await Pinger.start(t, address, 20);
  const sampler = new RssSampler(hati.pid, 25);
  const reader = await openIdle(t, address);
  reader.socket.write('GET memory big\n'.repeat(Math.floor(65_536 / 15)));
  await delay(2_000);
  const peak = await sampler.stop();
  const worst = await pinger.stop();
  t.ok(peak < 250 * MB, `server RSS stays under 250 MB (peak ${mb(peak)}, before ${mb(baseline)})`);
  t.ok(worst < 200, `another client's PING answered within 200 ms (worst ${Math.round(worst)} ms)`);
  t.same(pinger.failures, []);
  t.comment(`the reader was ${reader.closedBy ?? 'left open (paused)'}`);
  t.equal(await owner.command('PING'), 'PONG', 'the server is fine after');
  // Gone before the shutdown, which would otherwise wait for it to take its replies.
  reader.socket.destroy();
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
});

t.test('9. connection limit', async (t) => {
  // Too many clients at once (a leak in an application, or on purpose): past --max-clients the
  // newcomer is told so and disconnected, instead of the server running out of descriptors.
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, [...LOCAL_TCP, '--max-clients', '50', '--data-dir', join(dir, 'data')]);
  const address = await hati.tcp();
  const clients = await Promise.all(Array.from({ length: 50 }, () => RawClient.open(t, address)));
  const pongs = await Promise.all(clients.map((client) => within(client.command('PING'), 5_000, 'PING')));
  t.equal(pongs.filter((reply) => reply === 'PONG').length, 50, '50 clients are served');
  const extra = await RawClient.open(t, address);
  await within(extra.closed(), 3_000, 'the 51st client closed').catch(() => undefined);
  t.equal(errorCode(extra.replies[0]), 'MAX_CLIENTS', `the 51st client: ${show(extra.replies[0])}`);
  t.not(extra.closedBy, undefined, `then it is disconnected (${extra.closedBy})`);
  for (const client of clients.slice(0, 5)) client.socket.destroy();
  const accepted = await until(
    async () => {
      const client = await RawClient.open(t, address);
      const reply = await Promise.race([client.command('PING'), delay(1_000).then(() => undefined)]);
      client.socket.destroy();
      return reply === 'PONG';
    },
    3_000,
    100,
  );
  t.ok(accepted, 'after 5 clients leave, a new one is served');
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });

  // The descriptor limit: `ulimit -n 1024` (no root needed) and the default --max-clients.
  // 1,100 idle clients must not leave LevelDB without descriptors.
  const limited = Hati.wrapped(t, [], 'ulimit -n 1024', [
    ...LOCAL_TCP,
    '--shards',
    '8',
    '--data-dir',
    join(dir, 'data-limited'),
  ]);
  const limitedAddress = await limited.tcp();
  const crowd = await openCrowd(t, limitedAddress, 1_100);
  await delay(500);
  const kinds = await Promise.all(crowd.map((client) => classify(client)));
  const count = (kind: string) => kinds.filter((k) => k === kind).length;
  const tally = new Map<string, number>();
  for (const kind of kinds) tally.set(kind, (tally.get(kind) ?? 0) + 1);
  t.comment(`1,100 connections: ${JSON.stringify(Object.fromEntries(tally))}`);
  t.ok(count('MAX_CLIENTS') > 0, `some connections get MAX_CLIENTS (${count('MAX_CLIENTS')})`);
  t.ok(count('PONG') > 0, `some are served (${count('PONG')})`);
  // A refused client may linger to read its error; past 64 such at once the server drops the
  // others without a reply, so that refusing cannot take the storage's descriptors either.
  t.ok(count('MAX_CLIENTS') >= 64, `at least 64 refused clients read why (${count('MAX_CLIENTS')})`);
  const dropped = kinds.filter((kind) => kind.startsWith('no reply (') && kind !== 'no reply (open)').length;
  t.equal(
    count('PONG') + count('MAX_CLIENTS') + dropped,
    1_100,
    'each connection is served, told MAX_CLIENTS, or closed by the server: none is left hanging',
  );
  const served = crowd[kinds.indexOf('PONG')];
  if (served === undefined) {
    t.fail('no served connection to write with');
  } else {
    // 256 KB values: 50 MB in all, so that every shard flushes its write buffer to a new table
    // file, which needs descriptors the crowd must not have taken.
    const value = (i: number) => `${i}:${'v'.repeat(256 * 1024)}`;
    const from = served.replies.length;
    for (let i = 0; i < 200; i++) served.write(encodeCommand(['SET', 'hdd', '0', `crowd:${i}`, value(i)]));
    const replies = await served.next(200, from);
    const bad = replies.filter((reply) => reply !== 'OK').map(show);
    t.same([replies.length, [...new Set(bad)]], [200, []], 'with all of them open, 200 SET hdd: all +OK');
    for (const i of [0, 100, 199]) {
      const got = await served.command('GET', 'hdd', `crowd:${i}`);
      t.ok(text(got) === value(i), `crowd:${i} reads back (${show(got).slice(0, 120)})`);
    }
  }
  t.equal(limited.exit, undefined, 'the server still runs');
  for (const client of crowd) client.socket.destroy();
  limited.child.kill('SIGTERM');
  t.same(await limited.waitExit(), { code: 0, signal: null });
});

t.test('10. total input buffer bound', { skip: NO_PROC }, async (t) => {
  // Each client starts a 150 MB value and sends 40 MB of it, never finishing. Each request is
  // under the 512 MiB bulk limit; together they would hold memory without bound, so
  // --max-input-buffer caps what unfinished requests hold across all connections.
  const dir = await tempDir(t);
  const hati = Hati.spawn(t, [...LOCAL_TCP, '--max-input-buffer', '100000000', '--data-dir', join(dir, 'data')]);
  const address = await hati.tcp();
  const sampler = new RssSampler(hati.pid, 50);
  const pinger = await Pinger.start(t, address, 20);
  const header = '*5\r\n$3\r\nSET\r\n$6\r\nmemory\r\n$1\r\n0\r\n$1\r\nk\r\n$150000000\r\n';
  const payload = Buffer.alloc(40_000_000, 'p');
  const hogs = await Promise.all([0, 1, 2].map(() => RawClient.open(t, address)));
  for (const hog of hogs) {
    hog.write(header);
    hog.write(payload);
  }
  const refused = (hog: RawClient) => errorCode(hog.replies[0]) === 'TOO_LARGE' && hog.closedBy !== undefined;
  const anyRefused = await until(() => hogs.some(refused), 15_000, 100);
  await delay(500);
  const peak = await sampler.stop();
  const worst = await pinger.stop();
  t.ok(
    anyRefused,
    `a client gets TOO_LARGE and is closed (${hogs.map((h) => `${show(h.replies[0])}/${h.closedBy}`).join(', ')})`,
  );
  t.ok(peak < 400 * MB, `server RSS stays under 400 MB (peak ${mb(peak)})`);
  t.ok(worst < 1_000, `PING works meanwhile (worst ${Math.round(worst)} ms)`);
  t.same(pinger.failures, []);
  for (const hog of hogs) hog.socket.destroy();
  const after = await RawClient.open(t, address);
  t.equal(await within(after.command('PING'), 3_000, 'PING after'), 'PONG', 'a new client is served after');
  t.equal(await after.command('SET', 'memory', '0', 'k', 'small'), 'OK');
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
});

function mb(bytes: number): string {
  return `${Math.round(bytes / MB)} MB`;
}

/** A connection that never reads: its replies pile up in the kernel and then in the server. */
async function openIdle(t: Test, address: Address): Promise<{ socket: Socket; closedBy: string | undefined }> {
  const socket = connect(address.port, address.host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.pause();
  t.teardown(() => {
    socket.destroy();
  });
  const idle = { socket, closedBy: undefined as string | undefined };
  socket.on('error', (err: NodeJS.ErrnoException) => {
    idle.closedBy ??= err.code ?? err.message;
  });
  socket.on('close', () => {
    idle.closedBy ??= 'close';
  });
  return idle;
}

/** `count` connections, opened 100 at a time; a connection not set up within 5 s is left out. */
async function openCrowd(t: Test, address: Address, count: number): Promise<RawClient[]> {
  const crowd: RawClient[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, () =>
        within(RawClient.open(t, address), 5_000, 'connect').catch(() => undefined),
      ),
    );
    for (const client of batch) if (client !== undefined) crowd.push(client);
  }
  t.equal(crowd.length, count, `${count} connections opened`);
  return crowd;
}

/** 'PONG' if the connection is served, the error code if refused, else what happened. */
async function classify(client: RawClient): Promise<string> {
  const first = () => errorCode(client.replies[0]) ?? (client.replies[0] === 'PONG' ? 'PONG' : undefined);
  if (client.closedBy === undefined) client.write('PING\r\n');
  await until(() => first() !== undefined || client.closedBy !== undefined, 5_000, 50);
  return first() ?? `no reply (${client.closedBy ?? 'open'})`;
}
