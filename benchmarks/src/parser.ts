// The request parser on its own: nanoseconds per command for pipelines of 16 commands fed as one
// chunk, as redis-benchmark -P 16 sends them, in one process, no sockets. For before/after
// comparisons of parser changes (the server rows move by a few percent at most for a parser
// change, less than this machine's noise). Writes results/parser.json.
import { encodeCommand, RequestParser } from '@hati/protocol';
import { Bench } from 'tinybench';
import { quick } from './config.js';
import { finish, machine, type Row, row, table } from './report.js';

const PIPELINE = 16;
/** Chunks parsed per tinybench iteration: the timer's own cost is spread over them. */
const CHUNKS = 1000;

const key = (i: number) => `key:${String(i).padStart(12, '0')}`;
const pipeline = (command: (i: number) => Buffer) =>
  Buffer.concat(Array.from({ length: PIPELINE }, (_, i) => command(i)));
const workloads: Record<string, Buffer> = {
  Parse_GET_P16: pipeline((i) => encodeCommand(['GET', 'memory', key(i)])),
  Parse_SET_P16: pipeline((i) => encodeCommand(['SET', 'memory', '0', key(i), 'v123456789abcdef'])),
  Parse_SET_1KiB_P16: pipeline((i) => encodeCommand(['SET', 'memory', '0', key(i), 'v'.repeat(1024)])),
  Parse_Inline_SET_P16: pipeline((i) => Buffer.from(`SET memory 0 ${key(i)} v123456789abcdef\r\n`)),
};

async function main(): Promise<number> {
  const rows: Row[] = [];
  let commands = 0;
  for (const [name, chunk] of Object.entries(workloads)) {
    const parser = new RequestParser((request) => {
      commands += request.length;
    });
    const bench = new Bench({ time: quick ? 100 : 1000, warmupTime: quick ? 20 : 200, throws: true });
    bench.add(name, () => {
      for (let i = 0; i < CHUNKS; i++) {
        if (parser.push(chunk) !== undefined) throw new Error(`${name}: the parser failed`);
      }
    });
    await bench.run();
    const result = bench.getTask(name)?.result;
    if (result === undefined || result.state !== 'completed') throw new Error(`${name}: not completed`);
    const nsPerOp = (result.latency.mean * 1e6) / (CHUNKS * PIPELINE);
    const measured = { nsPerOp, opsPerSec: 1e9 / nsPerOp, rmePercent: Number(result.latency.rme.toFixed(2)) };
    rows.push(row(name, measured, null, `${PIPELINE} commands a chunk, ${chunk.length} bytes`));
  }
  if (commands === 0) throw new Error('no command was parsed');
  process.stdout.write(`\n${table(rows)}\n\n`);
  await finish('parser', quick, rows, { date: new Date().toISOString(), machine: machine() });
  return 0;
}

process.exitCode = await main();
