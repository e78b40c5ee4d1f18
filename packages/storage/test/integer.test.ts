// incrBy's integer rules (Redis string2ll) and arithmetic, against BigInt as the reference.
import { holds } from '@hati/test-helpers';
import fc from 'fast-check';
import t from 'tap';
import { StorageError } from '../src/index.js';
import { addInteger, INT64_MAX, INT64_MIN, parseInteger } from '../src/integer.js';

const CANONICAL = /^(0|-?[1-9][0-9]*)$/;

/** What string2ll makes of `text`: its value, or undefined when it is not a canonical int64. */
function reference(text: string): bigint | undefined {
  if (!CANONICAL.test(text)) return undefined;
  const value = BigInt(text);
  return value < INT64_MIN || value > INT64_MAX ? undefined : value;
}

function parsed(text: string): bigint | string {
  try {
    return BigInt(parseInteger(text));
  } catch (err) {
    return (err as StorageError).code;
  }
}

const int64 = fc.oneof(
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
  fc.bigInt({ min: -(2n ** 54n), max: 2n ** 54n }),
  fc.integer({ min: -1000, max: 1000 }).map(BigInt),
  fc.constantFrom(INT64_MIN, INT64_MAX, INT64_MIN + 1n, INT64_MAX - 1n, 2n ** 53n, -(2n ** 53n), 10n ** 15n - 1n, 0n),
);

t.test('parseInteger accepts exactly the canonical int64 texts', async (t) => {
  holds(
    t,
    fc.property(fc.string({ unit: fc.constantFrom(...'-+0123456789 a.'.split('')), maxLength: 22 }), (text) => {
      const want = reference(text);
      return parsed(text) === (want === undefined ? 'NOT_INTEGER' : want);
    }),
    20_000,
    'random digit strings parsed as string2ll parses them',
  );
  holds(
    t,
    fc.property(int64, (n) => parsed(String(n)) === n),
    5000,
    'every int64 round-trips through its text',
  );
  t.equal(typeof parseInteger('123456789012345'), 'number', '15 digits parse as a number');
  t.equal(typeof parseInteger('-123456789012345'), 'number');
  t.equal(typeof parseInteger('1234567890123456'), 'bigint', '16 digits as a bigint');
  for (const text of ['-0', '+1', ' 1', '007', '', '-', '9223372036854775808', '1\u0000']) {
    t.equal(parsed(text), 'NOT_INTEGER', JSON.stringify(text));
  }
});

t.test('addInteger is exact and stops at the int64 range', async (t) => {
  holds(
    t,
    fc.property(int64, int64, (a, b) => {
      const want = a + b;
      const current = a >= -(10n ** 15n) && a < 10n ** 15n ? Number(a) : a;
      let got: bigint | string;
      try {
        got = BigInt(addInteger(current, b));
      } catch (err) {
        got = err instanceof StorageError ? err.code : 'thrown';
      }
      return got === (want < INT64_MIN || want > INT64_MAX ? 'INTEGER_OVERFLOW' : want);
    }),
    20_000,
    'sums match BigInt arithmetic',
  );
  t.equal(addInteger(2 ** 53 - 1, 1n), 2n ** 53n, 'past 2^53 the sum is a bigint');
  t.equal(addInteger(5, -3n), 2, 'small sums stay numbers');
});
