import fc from 'fast-check';
import type { Test } from 'tap';

function report<T>(t: Test, details: fc.RunDetails<T>, numRuns: number, what: string): void {
  t.notOk(details.failed, details.failed ? (fc.defaultReportMessage(details) ?? 'failed') : what);
  t.equal(details.numRuns, numRuns, `${what}: all ${numRuns} runs made`);
}

/**
 * Runs a fast-check property as tap assertions: fails with fast-check's report (the shrunk
 * counterexample and the seed to replay it) unless every one of the runs held. A synchronous
 * property is checked at once; an asynchronous one returns a promise to await.
 */
export function holds<T>(t: Test, property: fc.IProperty<T>, numRuns: number, what: string): void;
export function holds<T>(t: Test, property: fc.IAsyncProperty<T>, numRuns: number, what: string): Promise<void>;
export function holds<T>(
  t: Test,
  property: fc.IProperty<T> | fc.IAsyncProperty<T>,
  numRuns: number,
  what: string,
): void | Promise<void> {
  if (property.isAsync()) {
    return fc.check(property as fc.IAsyncProperty<T>, { numRuns }).then((details) => report(t, details, numRuns, what));
  }
  report(t, fc.check(property as fc.IProperty<T>, { numRuns }), numRuns, what);
}
