// docs/security.md lists the right every command needs; this keeps that table and the command
// table's `access` the same, both ways.
import { readFile } from 'node:fs/promises';
import { allCommands } from '@hati/protocol';
import t from 'tap';

t.test('docs/security.md names the right of every command, as the command table does', async (t) => {
  const doc = await readFile(new URL('../../../docs/security.md', import.meta.url), 'utf8');
  const documented = new Map<string, string>();
  for (const match of doc.matchAll(/^\| `([a-z]+)` +\| (`[A-Z].*?) *\|$/gm)) {
    const [, access, names] = match as unknown as [string, string, string];
    for (const name of names.split(', ')) documented.set(name.replaceAll('`', ''), access);
  }
  const table = new Map(allCommands().map((spec) => [spec.name, spec.access as string]));
  t.same([...documented.entries()].sort(), [...table.entries()].sort(), 'one row per right, every command once');
});
