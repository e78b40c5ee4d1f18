// Child process of the storage benchmark: runs one group of hdd rows and prints them as JSON.
//   node dist/hdd-child.js <group>
import { hddGroups } from './hdd-rows.js';
import type { Row } from './report.js';

async function main(argv: string[]): Promise<number> {
  const run = hddGroups[argv[0] ?? ''];
  if (run === undefined) {
    process.stderr.write(`usage: node hdd-child.js <${Object.keys(hddGroups).join('|')}>\n`);
    return 2;
  }
  const rows: Row[] = [];
  await run((r) => rows.push(r));
  process.stdout.write(`${JSON.stringify(rows)}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
