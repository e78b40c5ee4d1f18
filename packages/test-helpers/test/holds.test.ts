import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { checkErrorsDoc, holds, tempDir } from '../src/index.js';

t.test('holds: a sync property at once, an async one awaited', async (t) => {
  holds(
    t,
    fc.property(fc.integer(), (n) => n + 0 === n),
    50,
    'sync',
  );
  await holds(
    t,
    fc.asyncProperty(fc.integer(), async (n) => n - n === 0),
    20,
    'async',
  );
});

t.test('holds: a property that fails is reported with its counterexample', async (t) => {
  const results: Array<{ ok: boolean; message: string }> = [];
  const fake = {
    notOk: (value: unknown, message: string) => results.push({ ok: !value, message }),
    equal: (a: unknown, b: unknown, message: string) => results.push({ ok: a === b, message }),
  } as unknown as Parameters<typeof holds>[0];
  holds(
    fake,
    fc.property(fc.nat(), (n) => n < 10),
    100,
    'small',
  );
  t.equal(results[0]?.ok, false);
  t.match(results[0]?.message, /Counterexample: \[10\]/);
});

t.test('checkErrorsDoc: a section is compared with the codes', async (t) => {
  const doc = join(await tempDir(t), 'errors.md');
  await writeFile(
    doc,
    '# Errors\n\n## Protocol\n\n| code | when |\n|---|---|\n| `PROTOCOL` | bad |\n| `TOO_LARGE` | big |\n\n## Storage\n\n| `KEY_NOT_EXIST` | x |\n',
  );
  await checkErrorsDoc(t, { section: 'Protocol', codes: ['TOO_LARGE', 'PROTOCOL'], doc });
  await checkErrorsDoc(t, { section: 'Storage', codes: ['KEY_NOT_EXIST'], doc });
});

t.test('checkErrorsDoc finds the repository docs/errors.md from the helper package', async (t) => {
  const { ERRORS_DOC } = await import('../src/index.js');
  t.match(ERRORS_DOC.pathname, /\/docs\/errors\.md$/);
  t.notMatch(ERRORS_DOC.pathname, /packages/);
});
