// Encoding. The server writes the replies produced while handling one input chunk into one
// ReplyWriter and hands the socket a single buffer; the standalone encoders are for clients
// and tests.

import { COLON, CR, DOLLAR, LF, MINUS, PLUS, STAR, ZERO } from './bytes.js';
import { type Reply, ReplyError } from './reply-parser.js';

/** First buffer size; later ones grow with the batch. */
const SLAB = 16 * 1024;
/** After take(), a buffer larger than this is dropped rather than filled further. */
const MAX_KEPT = 1024 * 1024;
/** Growth beyond the bytes needed, at most this much (doubling a huge batch wastes memory). */
const MAX_GROWTH = 64 * 1024 * 1024;
/** Room for a type byte, a sign, 16 digits and CRLF. */
const HEADER_ROOM = 20;

const NIL = Buffer.from('$-1\r\n', 'latin1');
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

/** Accumulates encoded RESP2 replies in one growing buffer, to be written to a socket in one go. */
export class ReplyWriter {
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

  /** `:n\r\n`; `n` must be a safe integer. */
  integer(n: number): void {
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

  /** `$-1\r\n`: the null bulk string. */
  nil(): void {
    this.raw(NIL);
  }

  /** `*n\r\n`, to be followed by the n elements (`-1` writes the null array `*-1`). */
  arrayHeader(length: number): void {
    checkInteger(length, 'array length');
    if (length < -1) throw new RangeError(`array length must be >= -1, got ${length}`);
    this.#reserve(HEADER_ROOM);
    this.#header(STAR, length);
  }

  /**
   * Any reply, as the ReplyParser would read it back: a string as a simple string, a number as
   * an integer, bytes as a bulk string, null as `$-1`, a ReplyError as `-CODE message`, an
   * array as `*n` and its elements.
   */
  reply(value: Reply | Uint8Array): void {
    if (typeof value === 'string') this.simple(value);
    else if (typeof value === 'number') this.integer(value);
    else if (value === null) this.nil();
    else if (value instanceof Uint8Array) this.bulk(value);
    else if (value instanceof ReplyError) this.error(value.code, value.message);
    else {
      this.arrayHeader(value.length);
      for (const item of value) this.reply(item);
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

/** One reply, encoded as `ReplyWriter#reply` writes it: the inverse of the ReplyParser. */
export function encodeReply(reply: Reply): Buffer {
  const writer = new ReplyWriter();
  writer.reply(reply);
  const encoded = writer.take();
  // A small reply would otherwise pin the writer's whole first buffer.
  return encoded.length < SLAB / 2 ? Buffer.from(encoded) : encoded;
}
