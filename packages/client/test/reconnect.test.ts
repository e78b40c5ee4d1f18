import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createClient, HatiError } from '../src/index.js';
import { spawnServer } from './common/harness.js';

t.test('a killed server: unanswered calls reject as transient, the client reconnects', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hati-reconnect-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await spawnServer(t, dir);
  const client = createClient({ port: first.port, reconnect: { initialDelay: 20, maxDelay: 200 } });
  t.teardown(() => client.close());
  const events: string[] = [];
  client.on('reconnecting', ({ attempt }) => events.push(`reconnecting ${attempt}`));
  client.on('connect', () => events.push('connect'));
  t.equal(await client.set('hdd', 'before', 'kill'), undefined);

  // Many writes in flight, then the server dies without answering some of them.
  const inFlight = Array.from({ length: 2000 }, (_, i) => client.set('hdd', `k${i}`, 'v'));
  first.child.kill('SIGKILL');
  const outcomes = await Promise.all(
    inFlight.map((p) =>
      p.then(
        () => 'ok',
        (err: unknown) => (err instanceof HatiError ? `${err.code}:${err.transient}` : 'other'),
      ),
    ),
  );
  const lost = outcomes.filter((o) => o === 'CONNECTION_LOST:true').length;
  t.equal(outcomes.filter((o) => o !== 'ok' && o !== 'CONNECTION_LOST:true').length, 0, 'no other outcome');
  t.ok(lost > 0, `${lost} unanswered calls rejected with the transient CONNECTION_LOST`);

  // Calls made while the server is down wait in the offline queue and run once it is back.
  const waiting = client.get('hdd', 'before');
  await new Promise((resolve) => setTimeout(resolve, 100));
  await spawnServer(t, dir, first.port);
  t.equal(await waiting, 'kill', 'a call made while down ran after the reconnect');
  t.equal(await client.ping(), 'PONG', 'later calls succeed');
  t.ok(events.includes('reconnecting 1'), 'reconnecting was announced');
  t.equal(events.filter((e) => e === 'connect').length, 2);
});
