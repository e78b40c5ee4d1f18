// docs/errors.md documents every code users can see; this keeps the Client section in step.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { ClientErrorCode } from '../src/index.js';

t.test('docs/errors.md lists exactly the client error codes', async (t) => {
  const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const section = doc.split(/^## /m).find((part) => part.startsWith('Client'));
  t.ok(section, 'the doc has a Client section');
  const documented = [...(section ?? '').matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]).sort();
  t.same(documented, Object.values(ClientErrorCode).sort());
});
