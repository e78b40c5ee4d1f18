// Stopping `hati` while clients write as fast as they can: SIGTERM must answer, flush and exit
// 0; SIGKILL with `--hdd-durability always` must lose no acknowledged write.
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { Hati, missingKeys, RawClient, tempDir, WriteLoad, within } from './common/hati.js';

const LOCAL = ['--tcp-host', '127.0.0.1', '--tcp-port', '0'];
const CONNECTIONS = 20;

t.test('SIGTERM under write load: exit 0, connections closed, every acknowledged write kept', async (t) => {
  const dir = await tempDir(t);
  const args = [...LOCAL, '--hdd-durability', 'no', '--data-dir', join(dir, 'data')];
  const hati = Hati.spawn(t, args);
  const load = await WriteLoad.start(t, await hati.tcp(), CONNECTIONS);
  await delay(1_000);
  const ackedBefore = load.acked.length;
  t.ok(ackedBefore > 0, `writes were acknowledged before the signal (${ackedBefore})`);
  hati.child.kill('SIGTERM');
  t.same(await hati.waitExit(), { code: 0, signal: null });
  t.same(hati.messages.slice(-2), ['SIGTERM: shutting down', 'stopped']);
  t.same(hati.logged('error'), [], 'no error logged');
  t.same(hati.logged('warn'), [], 'no warning logged');

  // The server closed every connection; none was left open for the client to close.
  await within(load.closed(), 5_000, 'every connection closed');
  const closedBy = new Set(load.clients.map((client) => client.closedBy));
  t.ok(
    [...closedBy].every((how) => how === 'end' || how === 'ECONNRESET' || how === 'EPIPE'),
    `closed by the server (${[...closedBy].join(', ')})`,
  );
  t.same(load.otherReplies, [], 'every reply was +OK');
  t.equal(new Set(load.acked).size, load.acked.length);

  const again = Hati.spawn(t, args);
  const client = await RawClient.open(t, await again.tcp());
  t.same(await missingKeys(client, load.acked), [], `all ${load.acked.length} acknowledged keys are there`);
  t.comment(`checked ${load.acked.length} acknowledged keys (${load.sent} sent) after SIGTERM`);
  again.child.kill('SIGTERM');
  t.same(await again.waitExit(), { code: 0, signal: null });
});

t.test('SIGKILL under write load with --hdd-durability always: no acknowledged write lost', async (t) => {
  const dir = await tempDir(t);
  const args = [...LOCAL, '--hdd-durability', 'always', '--data-dir', join(dir, 'data')];
  const hati = Hati.spawn(t, args);
  const load = await WriteLoad.start(t, await hati.tcp(), CONNECTIONS);
  await delay(1_000);
  t.ok(load.acked.length > 0, `writes were acknowledged before the kill (${load.acked.length})`);
  hati.child.kill('SIGKILL');
  t.same(await hati.waitExit(), { code: null, signal: 'SIGKILL' });
  await within(load.closed(), 5_000, 'every connection closed');
  load.stop();
  t.same(load.otherReplies, [], 'every reply was +OK');

  const again = Hati.spawn(t, args);
  const client = await RawClient.open(t, await again.tcp());
  t.same(await missingKeys(client, load.acked), [], `all ${load.acked.length} acknowledged keys are there`);
  t.comment(`checked ${load.acked.length} acknowledged keys (${load.sent} sent) after SIGKILL`);
  again.child.kill('SIGTERM');
  t.same(await again.waitExit(), { code: 0, signal: null });
});
