// The Logger's two formats as a reader of the log sees them: text lines for a terminal, one
// JSON object per line for a collector; levels below the chosen one are not written at all.
import { hostname } from 'node:os';
import t from 'tap';
import { Logger } from '../src/index.js';

function capture(): { lines: string[]; write: (line: string) => void } {
  const lines: string[] = [];
  return { lines, write: (line) => lines.push(line) };
}

t.test('text: `<ISO time> <level> <message>`, one line each, fields not shown', async (t) => {
  const { lines, write } = capture();
  const logger = new Logger('info', write);
  t.equal(logger.format, 'text');
  logger.info('tcp listening on 127.0.0.1:4242', { listener: 'tcp', address: '127.0.0.1:4242' });
  logger.warn('protected mode is on');
  t.equal(lines.length, 2);
  t.match(lines[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info tcp listening on 127\.0\.0\.1:4242\n$/);
  t.match(lines[1], /^\S+ warn protected mode is on\n$/);
});

t.test('json: pino objects with the level by name, ISO time, pid, hostname, msg and the fields', async (t) => {
  const { lines, write } = capture();
  const logger = new Logger('info', write, 'json');
  t.equal(logger.format, 'json');
  const before = Date.now();
  logger.info('tcp listening on 127.0.0.1:4242', { listener: 'tcp', address: '127.0.0.1:4242' });
  logger.error('hdd store refusing writes: disk full');
  t.equal(lines.length, 2);
  t.ok(
    lines.every((line) => line.endsWith('}\n') && !line.slice(0, -1).includes('\n')),
    'one object per line',
  );
  const [first, second] = lines.map((line) => JSON.parse(line));
  t.same(
    { ...first, time: undefined },
    {
      level: 'info',
      time: undefined,
      pid: process.pid,
      hostname: hostname(),
      listener: 'tcp',
      address: '127.0.0.1:4242',
      msg: 'tcp listening on 127.0.0.1:4242',
    },
  );
  t.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.ok(Date.parse(first.time) >= before - 1, 'the time is now');
  t.same({ level: second.level, msg: second.msg }, { level: 'error', msg: 'hdd store refusing writes: disk full' });
});

for (const format of ['text', 'json'] as const) {
  t.test(`${format}: --log-level error writes errors only; debug writes all`, async (t) => {
    const quiet = capture();
    const errorsOnly = new Logger('error', quiet.write, format);
    errorsOnly.debug('d');
    errorsOnly.info('i');
    errorsOnly.warn('w');
    errorsOnly.error('e', { code: 'X' });
    t.equal(quiet.lines.length, 1);
    t.match(quiet.lines[0], format === 'json' ? /"level":"error".*"msg":"e"/ : / error e\n$/);
    t.equal(errorsOnly.debugEnabled, false);

    const loud = capture();
    const all = new Logger('debug', loud.write, format);
    all.debug('d');
    all.info('i');
    all.warn('w');
    all.error('e');
    t.equal(loud.lines.length, 4);
    t.equal(all.debugEnabled, true);
    const levels = loud.lines.map((line) =>
      format === 'json' ? JSON.parse(line).level : (line.split(' ')[1] as string),
    );
    t.same(levels, ['debug', 'info', 'warn', 'error']);
  });
}

t.test('json: a message with quotes and newlines stays one line of valid JSON', async (t) => {
  const { lines, write } = capture();
  new Logger('info', write, 'json').warn('bad "value"\nsecond line', { path: 'C:\\x' });
  t.equal(lines.length, 1);
  const line = JSON.parse(lines[0] as string);
  t.equal(line.msg, 'bad "value"\nsecond line');
  t.equal(line.path, 'C:\\x');
});
