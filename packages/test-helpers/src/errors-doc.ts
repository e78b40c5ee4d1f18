// docs/errors.md documents every code users can see (as fastify's errors test keeps its
// Errors.md): one check, run by each package for its own section of the doc.
import { readFile } from 'node:fs/promises';
import type { Test } from 'tap';

/** The repository's docs/errors.md, found from this package (src/ or dist/), not from the caller. */
export const ERRORS_DOC = new URL('../../../docs/errors.md', import.meta.url);

export interface ErrorsDocSection {
  /** The doc's `## <section>` heading, e.g. 'Protocol'. */
  section: string;
  /** Every code the package exports, e.g. `Object.values(ProtocolErrorCode)`. */
  codes: readonly string[];
  /** The doc to read. @default ERRORS_DOC */
  doc?: URL | string;
}

/**
 * A test that fails when a code is missing from the doc's section or the section names a code
 * that does not exist: the section's table rows that start with a `CODE` are compared with `codes`.
 */
export async function checkErrorsDoc(t: Test, { section, codes, doc = ERRORS_DOC }: ErrorsDocSection): Promise<void> {
  await t.test(`docs/errors.md lists exactly the ${section.toLowerCase()} error codes`, async (t) => {
    const text = await readFile(doc, 'utf8');
    const part = text.split(/^## /m).find((part) => part.startsWith(section));
    t.ok(part, `the doc has a ${section} section`);
    const documented = [...(part ?? '').matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]).sort();
    t.same(documented, [...codes].sort(), `the ${section} section's codes are the exported codes`);
  });
}
