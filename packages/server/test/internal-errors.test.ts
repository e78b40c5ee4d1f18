// An error without one of Hati's codes (a bug, LevelDB's own LEVEL_* codes) reaches the wire as
// INTERNAL, never under its own code, and the server logs it with its stack.
import t from 'tap';
import { call, RawClient, ReplyError, startServer } from './common/harness.js';

function levelError(): Error {
  return Object.assign(new Error('leveldb went wrong'), { code: 'LEVEL_IO_ERROR' });
}

t.test('a failure with no Hati code is INTERNAL on TCP, and logged with its stack', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  // The TCP path reads memory keys with lookup (hot-path.ts).
  const memory = h.server.storage.memory as unknown as { lookup: () => never };
  memory.lookup = () => {
    throw new TypeError('boom');
  };
  const hdd = h.server.storage.hdd as unknown as { getBuffer: () => Promise<never> };
  hdd.getBuffer = () => Promise.reject(levelError());
  const sync = await c.command('GET', 'memory', 'k');
  t.ok(sync instanceof ReplyError);
  t.same([(sync as ReplyError).code, (sync as ReplyError).message], ['INTERNAL', 'boom']);
  const async = await c.command('GET', 'hdd', 'k');
  t.same([(async as ReplyError).code, (async as ReplyError).message], ['INTERNAL', 'leveldb went wrong']);
  const log = h.log.join('');
  t.match(log, /error internal error: TypeError: boom\n\s+at /, 'the sync failure is logged with its stack');
  t.match(log, /error internal error: Error: leveldb went wrong\n\s+at /, 'so is the failed disk read');
  t.equal(await c.command('PING'), 'PONG', 'the connection goes on');
});

t.test('the same over JSON-RPC: data.code INTERNAL, never LevelDB code', async (t) => {
  const h = await startServer(t);
  const hdd = h.server.storage.hdd as unknown as { getBuffer: () => Promise<never> };
  hdd.getBuffer = () => Promise.reject(levelError());
  const { error } = await call(h, 'Storage.Get', { type: 'hdd', key: 'k' });
  t.match(error, { code: -32000, message: 'leveldb went wrong', data: { code: 'INTERNAL' } });
  t.match(h.log.join(''), /leveldb went wrong\n\s+at /);
});

t.test('errors with Hati codes pass through unchanged and are not logged as internal', async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const reply = await c.command('GET', 'ram', 'k');
  t.equal((reply as ReplyError).code, 'STORAGE_TYPE_INVALID');
  t.notMatch(h.log.join(''), /internal error/);
});
