// The progress bar of `hati backup` (src/progress.ts), on a clock the test moves: what a terminal
// shows, how often it is redrawn, and that nothing is drawn off a terminal.
import t from 'tap';
import { formatBytes, formatDuration, Progress } from '../src/progress.js';

function bar(enabled: boolean, columns = 120) {
  let now = 1_000_000;
  const written: string[] = [];
  const progress = new Progress({
    write: (text) => written.push(text),
    enabled,
    label: 'importing',
    columns,
    now: () => now,
  });
  return {
    progress,
    written,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

t.test('on a terminal: records, bytes, rate, bar and ETA, redrawn in place at most every 100 ms', async (t) => {
  const { progress, written, advance } = bar(true);
  progress.total = { bytes: 10_000_000 };
  advance(2000);
  progress.update(12_345, 2_500_000);
  t.same(written, ['\rimporting 12,345 records 2.50 MB 1.25 MB/s [####............] 25% ETA 0:06\x1b[K']);
  advance(50);
  progress.update(12_400, 2_600_000);
  t.equal(written.length, 1, 'not redrawn within 100 ms');
  advance(50);
  progress.update(20_000, 5_000_000);
  t.equal(written.length, 2, 'redrawn once 100 ms have passed');
  t.match(written[1], /50% ETA 0:02/);
  progress.clear();
  t.equal(written[2], '\r\x1b[K', 'cleared before the summary');
  progress.clear();
  t.equal(written.length, 3, 'nothing to clear twice');
});

t.test('without a total: no bar and no ETA; the line fits the terminal', async (t) => {
  const { progress, written, advance } = bar(true, 30);
  advance(1000);
  progress.update(5, 1500);
  t.same(written, ['\rimporting 5 records 1.50 kB 1\x1b[K'], 'cut to the width less one');
  const unknown = bar(true, 0);
  unknown.advance(1000);
  unknown.progress.update(5, 1500);
  t.same(unknown.written, ['\rimporting 5 records 1.50 kB 1.50 kB/s\x1b[K'], 'a width of 0 is unknown: 80');
});

t.test('off a terminal nothing is drawn', async (t) => {
  const { progress, written, advance } = bar(false);
  progress.total = { records: 10 };
  advance(1000);
  progress.update(5, 100);
  progress.clear();
  t.same(written, []);
  t.match(progress.line(), /^importing 5 records 100 B 100 B\/s \[#{8}\.{8}\] 50% ETA 0:01$/);
});

t.test('units', async (t) => {
  t.same([999, 1000, 12_345, 1_234_567, 98_765_432_100].map(formatBytes), [
    '999 B',
    '1.00 kB',
    '12.3 kB',
    '1.23 MB',
    '98.8 GB',
  ]);
  t.same([0, 7.4, 754, 3723].map(formatDuration), ['0:00', '0:07', '12:34', '1:02:03']);
});
