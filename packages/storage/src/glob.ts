import { StorageError } from './errors.js';
import type { Bytes } from './store.js';

// Redis's glob dialect (util.c stringmatchlen), on bytes:
//   *        any run of bytes, the empty run included
//   ?        any one byte
//   [abc]    one of the bytes listed; [^abc] any other byte (only '^' negates: '[!a]' is '!' or 'a')
//   [a-z]    a range, ends included, either way round ([z-a] is [a-z])
//   \x       the byte x itself, inside a class too; a '\' ending the pattern is itself
// With Redis's corner cases: a class left open at the end of the pattern takes what it listed
// ('[ab' is '[ab]'); ']' right after '[' closes an empty class that matches nothing ('[]'); the
// end of a range may be ']' ('[a-]x]' is the range a..] plus 'x'); and an empty subject matches
// only the empty pattern ('*' does not match zero bytes, as in Redis, whose keys are never empty).
// Ranges compare bytes as unsigned (Redis compares C chars, signed on most platforms).
//
// Redis matches by recursion, which took exponential time on patterns like 'a*a*a*...b' until it
// learnt to cut the search short (CVE-2022-36021). Here the pattern is compiled once into tokens
// that each take exactly one byte (or, for '*', any run), and matched by the classic loop that
// remembers only the last '*': on a mismatch it lets that '*' take one more byte and retries, so a
// match costs at most (subject length × pattern length) steps, whatever the pattern.

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const DASH = 0x2d;

const T_LITERAL = 0;
const T_ANY = 1;
const T_STAR = 2;
const T_CLASS = 3;

/** A compiled pattern: token kinds, and per token its byte (literal) or class row. */
interface Tokens {
  kinds: Uint8Array;
  /** Literal byte, or class number for a class token. */
  args: Int32Array;
  /** 256 entries per class: 1 when the byte matches (negation already applied). */
  classes: Uint8Array;
}

function patternBytes(pattern: Bytes): Buffer {
  if (typeof pattern === 'string') return Buffer.from(pattern, 'utf8');
  if (pattern instanceof Uint8Array) return Buffer.from(pattern);
  throw new StorageError('ARGUMENT_INVALID', `a match pattern must be a string or a Uint8Array, got ${typeof pattern}`);
}

function compile(p: Buffer): Tokens {
  const n = p.length;
  const kinds: number[] = [];
  const args: number[] = [];
  const classes: Uint8Array[] = [];
  let i = 0;
  while (i < n) {
    const c = p[i] as number;
    if (c === STAR) {
      // Runs of '*' are one '*'.
      if (kinds[kinds.length - 1] !== T_STAR) {
        kinds.push(T_STAR);
        args.push(0);
      }
      i++;
    } else if (c === QUESTION) {
      kinds.push(T_ANY);
      args.push(0);
      i++;
    } else if (c === OPEN) {
      i++;
      const negate = i < n && p[i] === CARET;
      if (negate) i++;
      const set = new Uint8Array(256);
      for (;;) {
        if (i >= n) break; // left open: the pattern ends the class
        const b = p[i] as number;
        if (b === BACKSLASH && n - i >= 2) {
          i++;
          set[p[i] as number] = 1;
        } else if (b === CLOSE) {
          i++;
          break;
        } else if (n - i >= 3 && p[i + 1] === DASH) {
          let from = b;
          let to = p[i + 2] as number;
          if (from > to) [from, to] = [to, from];
          set.fill(1, from, to + 1);
          i += 2;
        } else {
          set[b] = 1;
        }
        i++;
      }
      if (negate) for (let b = 0; b < 256; b++) set[b] = 1 - (set[b] as number);
      kinds.push(T_CLASS);
      args.push(classes.length);
      classes.push(set);
    } else {
      // A '\' escapes the next byte; a '\' that ends the pattern is itself.
      if (c === BACKSLASH && i + 1 < n) i++;
      kinds.push(T_LITERAL);
      args.push(p[i] as number);
      i++;
    }
  }
  const table = new Uint8Array(classes.length * 256);
  classes.forEach((set, k) => {
    table.set(set, k * 256);
  });
  return { kinds: Uint8Array.from(kinds), args: Int32Array.from(args), classes: table };
}

function matchTokens(tokens: Tokens, key: Uint8Array): boolean {
  const { kinds, args, classes } = tokens;
  const m = kinds.length;
  const length = key.length;
  if (length === 0) return m === 0;
  let p = 0;
  let s = 0;
  // Where the last '*' was, and how far into the key it reaches so far.
  let starP = -1;
  let starS = 0;
  while (s < length) {
    if (p < m) {
      const kind = kinds[p] as number;
      if (kind === T_STAR) {
        starP = p++;
        starS = s;
        continue;
      }
      const b = key[s] as number;
      if (kind === T_ANY || (kind === T_LITERAL ? args[p] === b : classes[((args[p] as number) << 8) | b] === 1)) {
        p++;
        s++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP + 1;
    s = ++starS;
  }
  while (p < m && kinds[p] === T_STAR) p++;
  return p === m;
}

/**
 * A matcher for the Redis glob `pattern` (a string is taken as its UTF-8 bytes), compiled once:
 * call it on many keys. Matching takes time linear in the key for the common shapes ('prefix*',
 * a plain key, '*') and at most key length × pattern length steps for any pattern. Throws
 * StorageError ARGUMENT_INVALID when `pattern` is neither a string nor a Uint8Array.
 */
export function globMatcher(pattern: Bytes): (key: Buffer) => boolean {
  const bytes = patternBytes(pattern);
  const tokens = compile(bytes);
  const { kinds } = tokens;
  const stars = kinds.reduce((n, kind) => n + (kind === T_STAR ? 1 : 0), 0);
  const plain = kinds.every((kind) => kind === T_LITERAL || kind === T_STAR);
  if (plain && stars === 0) {
    const literal = Buffer.from(tokens.args);
    return (key) => key.equals(literal);
  }
  if (plain && stars === 1 && kinds[kinds.length - 1] === T_STAR) {
    const prefix = Buffer.from(tokens.args.subarray(0, kinds.length - 1));
    const n = prefix.length;
    return (key) => key.length > 0 && key.length >= n && prefix.compare(key, 0, n) === 0;
  }
  return (key) => matchTokens(tokens, key);
}
