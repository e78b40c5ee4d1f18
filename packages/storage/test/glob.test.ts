// The Redis glob matcher: Redis's own cases, a pathological pattern, and two references checked
// by fast-check: a regular expression built from a well-formed glob, and a line-by-line port of
// Redis's recursive stringmatchlen for any pattern at all (its corner cases included).
import { holds } from '@hati/test-helpers';
import fc from 'fast-check';
import t from 'tap';
import { globMatcher } from '../src/index.js';

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const DASH = 0x2d;

/**
 * Redis's stringmatchlen_impl (util.c, 7.x), ported statement by statement, case-sensitive, with
 * bytes compared unsigned. Reading past the pattern's end gives 0, as C reads the sds terminator.
 */
function redisMatch(pattern: Uint8Array, subject: Uint8Array): boolean {
  const at = (i: number) => (i < pattern.length ? (pattern[i] as number) : 0);
  const skipLonger = { value: false };
  const impl = (pi: number, plen: number, si: number, slen: number, nesting: number): boolean => {
    if (nesting > 1000) return false;
    while (plen > 0 && slen > 0) {
      const c = at(pi);
      if (c === STAR) {
        while (plen > 0 && at(pi + 1) === STAR) {
          pi++;
          plen--;
        }
        if (plen === 1) return true;
        while (slen > 0) {
          if (impl(pi + 1, plen - 1, si, slen, nesting + 1)) return true;
          if (skipLonger.value) return false;
          si++;
          slen--;
        }
        skipLonger.value = true;
        return false;
      }
      if (c === QUESTION) {
        si++;
        slen--;
      } else if (c === OPEN) {
        pi++;
        plen--;
        const not = at(pi) === CARET;
        if (not) {
          pi++;
          plen--;
        }
        let match = false;
        for (;;) {
          const b = subject[si] as number;
          if (at(pi) === BACKSLASH && plen >= 2) {
            pi++;
            plen--;
            if (at(pi) === b) match = true;
          } else if (at(pi) === CLOSE) {
            break;
          } else if (plen === 0) {
            pi--;
            plen++;
            break;
          } else if (plen >= 3 && at(pi + 1) === DASH) {
            let start = at(pi);
            let end = at(pi + 2);
            if (start > end) [start, end] = [end, start];
            pi += 2;
            plen -= 2;
            if (b >= start && b <= end) match = true;
          } else if (at(pi) === b) {
            match = true;
          }
          pi++;
          plen--;
        }
        if (not) match = !match;
        if (!match) return false;
        si++;
        slen--;
      } else {
        if (c === BACKSLASH && plen >= 2) {
          pi++;
          plen--;
        }
        if (at(pi) !== subject[si]) return false;
        si++;
        slen--;
      }
      pi++;
      plen--;
      if (slen === 0) {
        while (at(pi) === STAR) {
          pi++;
          plen--;
        }
        break;
      }
    }
    return plen === 0 && slen === 0;
  };
  return impl(0, pattern.length, 0, subject.length, 0);
}

const matches = (pattern: string | Uint8Array, key: string | Uint8Array) =>
  globMatcher(pattern)(Buffer.from(key as Uint8Array));

t.test('Redis glob cases', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['*', 'anything', true],
    ['**', 'x', true],
    ['h?llo', 'hello', true],
    ['h?llo', 'hllo', false],
    ['h*llo', 'hllo', true],
    ['h*llo', 'heeeello', true],
    ['h[ae]llo', 'hello', true],
    ['h[ae]llo', 'hillo', false],
    ['h[^e]llo', 'hallo', true],
    ['h[^e]llo', 'hello', false],
    ['h[!e]llo', 'h!llo', true], // only '^' negates
    ['h[!e]llo', 'hallo', false],
    ['h[a-b]llo', 'hbllo', true],
    ['h[b-a]llo', 'hallo', true], // a reversed range is swapped
    ['h[a-b]llo', 'hcllo', false],
    ['user:*', 'user:42', true],
    ['user:*', 'user:', true],
    ['user:*', 'use', false],
    ['*:42', 'user:42', true],
    ['*:42', 'user:420', false],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['a\\', 'a\\', true], // a trailing backslash is itself
    ['[\\]]', ']', true],
    ['[\\-]', '-', true],
    ['[]', 'x', false], // empty class
    ['[]x]', ']x]', false],
    ['[^]', 'x', true],
    ['[ab', 'b', true], // a class left open ends with the pattern
    ['[ab', 'bc', false],
    ['[a-]x]', 'x', true], // the range a..] takes the ']', the class goes on
    ['[a-]x]', '^', true],
    ['[a-]x]', ']', true],
    ['[a-]x]', 'b', false],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
    ['', 'x', false],
  ];
  for (const [pattern, key, want] of cases) t.equal(matches(pattern, key), want, `'${pattern}' ~ '${key}'`);
  t.equal(matches('', ''), true, 'the empty pattern matches the empty subject');
  t.equal(matches('*', ''), false, "as in Redis, '*' does not match an empty subject (keys are never empty)");
  t.equal(matches('é*', 'été'), true, 'a string pattern is its UTF-8 bytes');
  t.equal(matches('?t?', 'été'), false, "'?' is one byte, not one character");
  t.equal(matches(Buffer.from([0x00, STAR]), Buffer.from([0x00, 0xff, 0x80])), true, 'binary patterns and keys');
  t.equal(matches(Buffer.from([OPEN, 0x80, DASH, 0xff, CLOSE]), Buffer.from([0x90])), true, 'ranges compare unsigned');
  for (const pattern of [42, null, undefined, {}]) {
    t.throws(
      () => globMatcher(pattern as unknown as string),
      { code: 'ARGUMENT_INVALID' },
      `pattern ${String(pattern)}`,
    );
  }
});

t.test('a pathological pattern does not backtrack exponentially', async (t) => {
  const key = Buffer.alloc(10_000, 'a');
  t.equal(matches('a*a*a*a*a*a*a*a*a*a*b', key), false);
  t.equal(matches('a*a*a*a*a*a*a*a*a*a*a', key), true);
  t.equal(matches(`${'*a'.repeat(2000)}*b`, key), false, 'thousands of stars');
  t.equal(matches(`${'*?'.repeat(2000)}*`, key), true);
});

// Subjects over a few bytes, the pattern syntax among them, so that patterns and keys meet.
const ALPHABET = [0x61, 0x62, 0x63, STAR, QUESTION, OPEN, CLOSE, BACKSLASH, DASH, CARET, 0x00, 0x80, 0xff];
const byte = fc.constantFrom(...ALPHABET);
const subject = fc
  .uint8Array({ minLength: 1, maxLength: 12 })
  .map((raw) => raw.map((b) => ALPHABET[b % ALPHABET.length] as number));

t.test('any pattern agrees with Redis stringmatchlen', async (t) => {
  const pattern = fc.array(byte, { maxLength: 10 }).map((bytes) => Uint8Array.from(bytes));
  holds(
    t,
    fc.property(pattern, fc.array(subject, { minLength: 1, maxLength: 8 }), (p, subjects) => {
      const m = globMatcher(p);
      return subjects.every((s) => m(Buffer.from(s)) === redisMatch(p, s));
    }),
    5000,
    'random byte patterns matched as Redis matches them',
  );
  t.equal(redisMatch(Buffer.from('*'), Buffer.alloc(0)), false, 'the port has the empty-subject rule too');
  t.equal(matches('*', ''), redisMatch(Buffer.from('*'), Buffer.alloc(0)));
});

/** A well-formed glob, as the tokens that make it up; each renders as glob and as regex. */
type Token =
  | { kind: 'literal'; byte: number }
  | { kind: 'any' }
  | { kind: 'star' }
  | { kind: 'class'; negate: boolean; items: Array<{ from: number; to: number }> };

const hex = (b: number) => `\\x${b.toString(16).padStart(2, '0')}`;
const rangeEnd = fc.constantFrom(0x61, 0x62, 0x63, 0x30, 0x39);
const token: fc.Arbitrary<Token> = fc.oneof(
  { weight: 4, arbitrary: byte.map((b) => ({ kind: 'literal' as const, byte: b })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'any' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'star' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('class' as const),
      negate: fc.boolean(),
      items: fc.array(
        fc.oneof(
          byte.map((b) => ({ from: b, to: b })),
          fc.tuple(rangeEnd, rangeEnd).map(([from, to]) => ({ from, to })),
        ),
        { maxLength: 3 },
      ),
    }),
  },
);

function globOf(tokens: Token[]): Buffer {
  const out: number[] = [];
  for (const tok of tokens) {
    if (tok.kind === 'literal') out.push(BACKSLASH, tok.byte);
    else if (tok.kind === 'any') out.push(QUESTION);
    else if (tok.kind === 'star') out.push(STAR);
    else {
      out.push(OPEN);
      if (tok.negate) out.push(CARET);
      for (const { from, to } of tok.items) {
        if (from === to) out.push(BACKSLASH, from);
        else out.push(from, DASH, to);
      }
      out.push(CLOSE);
    }
  }
  return Buffer.from(out);
}

function regexOf(tokens: Token[]): RegExp {
  let source = '';
  for (const tok of tokens) {
    if (tok.kind === 'literal') source += hex(tok.byte);
    else if (tok.kind === 'any') source += '.';
    else if (tok.kind === 'star') source += '.*';
    else {
      const items = tok.items.map(({ from, to }) =>
        from === to ? hex(from) : `${hex(Math.min(from, to))}-${hex(Math.max(from, to))}`,
      );
      source += `[${tok.negate ? '^' : ''}${items.join('')}]`;
    }
  }
  return new RegExp(`^(?:${source})$`, 's');
}

t.test('well-formed globs agree with the regular expression they stand for', async (t) => {
  holds(
    t,
    fc.property(
      fc.array(token, { maxLength: 8 }),
      fc.array(subject, { minLength: 1, maxLength: 8 }),
      (tokens, subjects) => {
        const m = globMatcher(globOf(tokens));
        const re = regexOf(tokens);
        return subjects.every((s) => m(Buffer.from(s)) === re.test(Buffer.from(s).toString('latin1')));
      },
    ),
    5000,
    'random globs matched as their regular expressions do',
  );
});
