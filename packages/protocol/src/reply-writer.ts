// Encoding. The server writes the replies produced while handling one input chunk into one
// ReplyWriter and hands the socket a single buffer; the standalone encoders are for clients
// and tests.
//
// One writer speaks RESP2 or RESP3 (`resp3`, flipped per connection after `HELLO 3`). Most
// frames are the same in both; the methods whose frame differs write, in RESP2, what Redis
// writes there: a map as a flat array, a double or big number as a bulk string, a boolean as
// `:1`/`:0`, a push as a plain array (RESP2 pub/sub messages are arrays).

import {
  BANG,
  COLON,
  COMMA,
  CR,
  DOLLAR,
  EQUALS,
  GREATER_THAN,
  LEFT_PAREN,
  LF,
  MINUS,
  PERCENT,
  PLUS,
  STAR,
  TILDE,
  ZERO,
} from './bytes.js';
import { type Reply, ReplyError, ReplyMap, ReplyPush } from './reply-parser.js';

/** First buffer size; later ones grow with the batch. */
const SLAB = 16 * 1024;
/** After take(), a buffer larger than this is dropped rather than filled further. */
const MAX_KEPT = 1024 * 1024;
/** Growth beyond the bytes needed, at most this much (doubling a huge batch wastes memory). */
const MAX_GROWTH = 64 * 1024 * 1024;
/** Room for a type byte, a sign, 16 digits and CRLF. */
const HEADER_ROOM = 20;

const NIL = Buffer.from('$-1\r\n', 'latin1');
const NULL_ARRAY = Buffer.from('*-1\r\n', 'latin1');
/** RESP3's one null, for both null bulk and null array. */
const NULL = Buffer.from('_\r\n', 'latin1');
const TRUE = Buffer.from('#t\r\n', 'latin1');
const FALSE = Buffer.from('#f\r\n', 'latin1');
const ONE = Buffer.from(':1\r\n', 'latin1');
const ZERO_REPLY = Buffer.from(':0\r\n', 'latin1');
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const EMPTY = Buffer.alloc(0);
const LINE_BREAK = /[\r\n]/g;

/** Strings up to this length are checked for ASCII and copied byte by byte. */
const SHORT_STRING = 64;

/** Whether `text` is short and ASCII: then its UTF-8 length is its length, and a loop copies it faster than Buffer#write. */
function isShortAscii(text: string): boolean {
  if (text.length > SHORT_STRING) return false;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return false;
  }
  return true;
}

/** Simple strings and error messages are one line: CR and LF become spaces. */
function oneLine(text: string): string {
  return text.includes('\r') || text.includes('\n') ? text.replace(LINE_BREAK, ' ') : text;
}

function checkInteger(n: number, what: string): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} must be a safe integer, got ${String(n)}`);
}

function checkCount(n: number, what: string): void {
  checkInteger(n, what);
  if (n < 0) throw new RangeError(`${what} must be >= 0, got ${n}`);
}

/**
 * A double as RESP3 writes it: `inf`, `-inf`, `nan`, or the shortest decimal that reads back as
 * the same number (JavaScript's, which fits RESP3's grammar: `1.5`, `1e+300`, `5e-324`).
 */
function doubleText(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Number.POSITIVE_INFINITY) return 'inf';
  if (x === Number.NEGATIVE_INFINITY) return '-inf';
  // String(-0) is '0'; the sign is part of the value.
  return Object.is(x, -0) ? '-0' : String(x);
}

/** Whether `text` holds a line break, which a simple string or error line cannot carry. */
function hasLineBreak(text: string): boolean {
  return text.includes('\r') || text.includes('\n');
}

/** Decimal digits of a non-negative integer. */
function digitCount(n: number): number {
  let count = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    count++;
  }
  return count;
}

/** Writes `n` (a safe integer) in decimal at `pos`, without an intermediate string; returns the end. */
function writeInteger(buf: Buffer, pos: number, n: number): number {
  if (n < 0) {
    buf[pos++] = MINUS;
    n = -n;
  }
  const end = pos + digitCount(n);
  let i = end;
  do {
    const next = Math.floor(n / 10);
    buf[--i] = ZERO + (n - next * 10);
    n = next;
  } while (n > 0);
  return end;
}

/** Accumulates encoded RESP2 or RESP3 replies in one growing buffer, to be written to a socket in one go. */
export class ReplyWriter {
  /**
   * Whether to write RESP3 frames (the server sets it per connection after `HELLO 3`). Only the
   * methods documented as differing by version look at it.
   */
  resp3 = false;

  #buf: Buffer = EMPTY;
  /** First byte not yet taken. */
  #start = 0;
  /** Next byte to write. */
  #pos = 0;

  /** Bytes written since the last take(). */
  get length(): number {
    return this.#pos - this.#start;
  }

  /** `+OK\r\n` */
  ok(): void {
    this.#reserve(5);
    const buf = this.#buf;
    const pos = this.#pos;
    buf[pos] = PLUS;
    buf[pos + 1] = 0x4f; // O
    buf[pos + 2] = 0x4b; // K
    buf[pos + 3] = CR;
    buf[pos + 4] = LF;
    this.#pos = pos + 5;
  }

  /** `+text\r\n`; CR and LF in `text` become spaces. */
  simple(text: string): void {
    this.#line(PLUS, oneLine(text));
  }

  /** `-CODE message\r\n` (just `-CODE\r\n` when the message is empty); CR and LF become spaces. */
  error(code: string, message: string): void {
    this.#line(MINUS, message === '' ? oneLine(code) : `${oneLine(code)} ${oneLine(message)}`);
  }

  /**
   * `:n\r\n`; `n` must be a safe integer, or a bigint in the signed 64-bit range (written from its
   * own digits, never through a Number). Anything else is a RangeError and writes nothing.
   */
  integer(n: number | bigint): void {
    if (typeof n === 'bigint') {
      if (n < INT64_MIN || n > INT64_MAX) throw new RangeError(`integer reply must fit in 64 bits, got ${n}`);
      this.#line(COLON, n.toString());
      return;
    }
    checkInteger(n, 'integer reply');
    this.#reserve(HEADER_ROOM);
    this.#header(COLON, n);
  }

  /** `$len\r\n<bytes>\r\n`; a string is written as UTF-8, straight into the buffer. */
  bulk(value: string | Uint8Array): void {
    if (typeof value === 'string') {
      const ascii = isShortAscii(value);
      const length = ascii ? value.length : Buffer.byteLength(value, 'utf8');
      this.#reserve(HEADER_ROOM + length + 2);
      this.#header(DOLLAR, length);
      this.#text(value, length, ascii);
    } else {
      const length = value.byteLength;
      this.#reserve(HEADER_ROOM + length + 2);
      this.#header(DOLLAR, length);
      this.#buf.set(value, this.#pos);
      this.#pos += length;
    }
    this.#crlf();
  }

  /** `$len\r\n<bytes>\r\n` of `source[start..end)`, copied straight from there (no view made). */
  bulkRange(source: Buffer, start: number, end: number): void {
    const length = end - start;
    this.#reserve(HEADER_ROOM + length + 2);
    this.#header(DOLLAR, length);
    const buf = this.#buf;
    const pos = this.#pos;
    if (length <= SHORT_STRING) {
      // A loop costs less than Buffer#copy's checks for the small values most replies carry.
      for (let i = 0; i < length; i++) buf[pos + i] = source[start + i] as number;
      this.#pos = pos + length;
    } else {
      this.#pos = pos + source.copy(buf, pos, start, end);
    }
    this.#crlf();
  }

  /** The null bulk string: `$-1\r\n` in RESP2, `_\r\n` in RESP3. */
  nil(): void {
    this.raw(this.resp3 ? NULL : NIL);
  }

  /** The null array: `*-1\r\n` in RESP2, `_\r\n` in RESP3. */
  nullArray(): void {
    this.raw(this.resp3 ? NULL : NULL_ARRAY);
  }

  /** `*n\r\n`, to be followed by the n elements (`-1` writes the null array, as nullArray()). */
  arrayHeader(length: number): void {
    checkInteger(length, 'array length');
    if (length < 0) {
      if (length !== -1) throw new RangeError(`array length must be >= -1, got ${length}`);
      this.nullArray();
      return;
    }
    this.#reserve(HEADER_ROOM);
    this.#header(STAR, length);
  }

  /**
   * A map of `pairs` entries, to be followed by key, value, key, value...: `%pairs\r\n` in RESP3,
   * in RESP2 a flat array `*<2 × pairs>\r\n`, as Redis writes it.
   */
  mapHeader(pairs: number): void {
    checkCount(pairs, 'map size');
    this.#reserve(HEADER_ROOM);
    if (this.resp3) this.#header(PERCENT, pairs);
    else this.#header(STAR, pairs * 2);
  }

  /** A set of n elements, to be followed by them: `~n\r\n` in RESP3, `*n\r\n` in RESP2. */
  setHeader(length: number): void {
    checkCount(length, 'set length');
    this.#reserve(HEADER_ROOM);
    this.#header(this.resp3 ? TILDE : STAR, length);
  }

  /**
   * An out-of-band push of n elements (the first names its kind, as `message`), to be followed
   * by them: `>n\r\n` in RESP3, `*n\r\n` in RESP2 (where pub/sub messages are plain arrays).
   * Only at the top level, never inside another reply.
   */
  pushHeader(length: number): void {
    checkCount(length, 'push length');
    this.#reserve(HEADER_ROOM);
    this.#header(this.resp3 ? GREATER_THAN : STAR, length);
  }

  /** `#t\r\n` or `#f\r\n` in RESP3; `:1\r\n` or `:0\r\n` in RESP2. */
  boolean(value: boolean): void {
    if (this.resp3) this.raw(value ? TRUE : FALSE);
    else this.raw(value ? ONE : ZERO_REPLY);
  }

  /**
   * `,1.5\r\n` (also `,inf`, `,-inf`, `,nan`) in RESP3; in RESP2 a bulk string of the same text,
   * as Redis writes it.
   */
  double(x: number): void {
    const text = doubleText(x);
    if (this.resp3) this.#line(COMMA, text);
    else this.bulk(text);
  }

  /** A big number of any size: `(<digits>\r\n` in RESP3; in RESP2 a bulk string of the digits, as Redis writes it. */
  bigNumber(n: bigint): void {
    if (this.resp3) this.#line(LEFT_PAREN, n.toString());
    else this.bulk(n.toString());
  }

  /**
   * Text to be shown as it is (a report such as `LATENCY DOCTOR`'s): `=len\r\nfmt:<text>\r\n` in
   * RESP3, `format` being three ASCII characters (`txt`, or `mkd` for markdown); a bulk string
   * in RESP2.
   */
  verbatim(text: string | Uint8Array, format = 'txt'): void {
    if (format.length !== 3 || !isShortAscii(format)) {
      throw new RangeError(`verbatim format must be 3 ASCII characters, got '${format}'`);
    }
    if (!this.resp3) {
      this.bulk(text);
      return;
    }
    const ascii = typeof text === 'string' && isShortAscii(text);
    const length = typeof text !== 'string' ? text.byteLength : ascii ? text.length : Buffer.byteLength(text, 'utf8');
    this.#reserve(HEADER_ROOM + 4 + length + 2);
    this.#header(EQUALS, 4 + length);
    this.#text(format, 3, true);
    this.#buf[this.#pos++] = COLON;
    if (typeof text === 'string') {
      this.#text(text, length, ascii);
    } else {
      this.#buf.set(text, this.#pos);
      this.#pos += length;
    }
    this.#crlf();
  }

  /**
   * An error that may hold line breaks: RESP3's bulk error `!len\r\nCODE message\r\n`, kept byte
   * for byte; in RESP2, as error() writes it (line breaks become spaces).
   */
  bulkError(code: string, message: string): void {
    if (!this.resp3) {
      this.error(code, message);
      return;
    }
    const text = message === '' ? code : `${code} ${message}`;
    const length = Buffer.byteLength(text, 'utf8');
    this.#reserve(HEADER_ROOM + length + 2);
    this.#header(BANG, length);
    this.#text(text, length, false);
    this.#crlf();
  }

  /**
   * Any reply, so that the ReplyParser reads it back as it was (in RESP3; in RESP2 the RESP3
   * types come back as Redis writes them there): a string as a simple string; a number as an
   * integer when it is a safe integer, else as a double; a bigint as a big number; a boolean;
   * bytes as a bulk string; null as nil(); a ReplyError as `-CODE message` (in RESP3 as a bulk
   * error when it holds a line break); a ReplyMap with its keys as bulk strings; a ReplyPush as
   * a push (nested in another reply, where RESP3 has no push, as an array); an array as `*n`
   * and its elements.
   */
  reply(value: Reply | Uint8Array): void {
    this.#reply(value, true);
  }

  #reply(value: Reply | Uint8Array, top: boolean): void {
    if (typeof value === 'string') this.simple(value);
    else if (typeof value === 'number') {
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) this.integer(value);
      else this.double(value);
    } else if (value === null) this.nil();
    else if (value instanceof Uint8Array) this.bulk(value);
    else if (typeof value === 'boolean') this.boolean(value);
    else if (typeof value === 'bigint') this.bigNumber(value);
    else if (value instanceof ReplyError) {
      if (this.resp3 && (hasLineBreak(value.code) || hasLineBreak(value.message))) {
        this.bulkError(value.code, value.message);
      } else {
        this.error(value.code, value.message);
      }
    } else if (value instanceof ReplyMap) {
      this.mapHeader(value.size);
      for (const [key, item] of value) {
        this.bulk(key);
        this.#reply(item, false);
      }
    } else if (value instanceof ReplyPush) {
      if (top) this.pushHeader(value.items.length);
      else this.arrayHeader(value.items.length);
      for (const item of value.items) this.#reply(item, false);
    } else {
      this.arrayHeader(value.length);
      for (const item of value) this.#reply(item, false);
    }
  }

  /** Appends already-encoded reply bytes. */
  raw(bytes: Uint8Array): void {
    this.#reserve(bytes.byteLength);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.byteLength;
  }

  /**
   * Everything written since the last take(), as a Buffer the caller now owns: later writes
   * never touch it (they go after it, or into a new buffer).
   */
  take(): Buffer {
    const taken = this.#buf.subarray(this.#start, this.#pos);
    this.#start = this.#pos;
    if (this.#buf.length > MAX_KEPT) {
      // Do not let one large batch pin a large buffer for every later small one.
      this.#buf = EMPTY;
      this.#start = 0;
      this.#pos = 0;
    }
    return taken;
  }

  #reserve(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return;
    const pending = this.#pos - this.#start;
    const needed = pending + bytes;
    const next = Buffer.allocUnsafe(Math.max(SLAB, needed + Math.min(needed, MAX_GROWTH)));
    // Only the untaken bytes move; taken ones stay where their owner holds them.
    this.#buf.copy(next, 0, this.#start, this.#pos);
    this.#buf = next;
    this.#start = 0;
    this.#pos = pending;
  }

  /** Writes a type byte, an integer and CRLF; HEADER_ROOM bytes must be reserved. */
  #header(type: number, n: number): void {
    const buf = this.#buf;
    buf[this.#pos] = type;
    this.#pos = writeInteger(buf, this.#pos + 1, n);
    buf[this.#pos++] = CR;
    buf[this.#pos++] = LF;
  }

  #crlf(): void {
    this.#buf[this.#pos++] = CR;
    this.#buf[this.#pos++] = LF;
  }

  #line(type: number, text: string): void {
    const ascii = isShortAscii(text);
    const length = ascii ? text.length : Buffer.byteLength(text, 'utf8');
    this.#reserve(length + 3);
    this.#buf[this.#pos++] = type;
    this.#text(text, length, ascii);
    this.#crlf();
  }

  /** Writes `text` as UTF-8 (`length` bytes, room reserved), straight into the buffer. */
  #text(text: string, length: number, ascii: boolean): void {
    if (ascii) {
      const buf = this.#buf;
      const pos = this.#pos;
      for (let i = 0; i < length; i++) buf[pos + i] = text.charCodeAt(i);
      this.#pos = pos + length;
    } else if (length > 0) {
      this.#pos += this.#buf.write(text, this.#pos, length, 'utf8');
    }
  }
}

/** A request as a RESP array of bulk strings (strings as UTF-8), in a Buffer of its exact size. */
export function encodeCommand(args: ReadonlyArray<string | Uint8Array>): Buffer {
  const lengths = args.map((arg) => (typeof arg === 'string' ? Buffer.byteLength(arg, 'utf8') : arg.byteLength));
  let size = 1 + digitCount(args.length) + 2;
  for (const length of lengths) size += 1 + digitCount(length) + 2 + length + 2;
  const buf = Buffer.allocUnsafe(size);
  buf[0] = STAR;
  let pos = writeInteger(buf, 1, args.length);
  buf[pos++] = CR;
  buf[pos++] = LF;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string | Uint8Array;
    const length = lengths[i] as number;
    buf[pos] = DOLLAR;
    pos = writeInteger(buf, pos + 1, length);
    buf[pos++] = CR;
    buf[pos++] = LF;
    if (typeof arg === 'string') {
      if (length > 0) buf.write(arg, pos, length, 'utf8');
    } else {
      buf.set(arg, pos);
    }
    pos += length;
    buf[pos++] = CR;
    buf[pos++] = LF;
  }
  return buf;
}

/**
 * One reply, encoded as `ReplyWriter#reply` writes it (in RESP3 when `resp3` is `true`): the
 * inverse of the ReplyParser. Only `true` selects RESP3, so `replies.map(encodeReply)` (which
 * passes an index) stays RESP2.
 */
export function encodeReply(reply: Reply): Buffer;
export function encodeReply(reply: Reply, resp3: boolean): Buffer;
export function encodeReply(reply: Reply, resp3: unknown = false): Buffer {
  const writer = new ReplyWriter();
  writer.resp3 = resp3 === true;
  writer.reply(reply);
  const encoded = writer.take();
  // A small reply would otherwise pin the writer's whole first buffer.
  return encoded.length < SLAB / 2 ? Buffer.from(encoded) : encoded;
}
