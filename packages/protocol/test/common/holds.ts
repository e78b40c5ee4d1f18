import fc from 'fast-check';
import type { Test } from 'tap';

/**
 * Runs a fast-check property as tap assertions: fails with fast-check's report (the shrunk
 * counterexample and the seed to replay it) unless every one of the runs held.
 */
export async function holds<T>(
  t: Test,
  property: fc.IProperty<T> | fc.IAsyncProperty<T>,
  numRuns: number,
  what: string,
): Promise<void> {
  const details = await fc.check(property as fc.IAsyncProperty<T>, { numRuns });
  t.notOk(details.failed, details.failed ? (fc.defaultReportMessage(details) ?? 'failed') : what);
  t.equal(details.numRuns, numRuns, `${what}: all ${numRuns} runs made`);
}
