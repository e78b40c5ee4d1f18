// An incremental parser of RESP2 replies, for clients and tests. Same contract as the
// RequestParser: fed chunks split anywhere, it never throws on any input and reports a
// malformed or oversized stream as a ProtocolError.

import { COLON, CR, DOLLAR, LF, MAX_HEADER_DIGITS, MINUS, NINE, PLUS, SPACE, STAR, showByte, ZERO } from './bytes.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { HeldBytes } from './held-bytes.js';
import { type ParserLimits, resolveLimits } from './options.js';

/** An error reply, `-CODE message`: `code` is the first word, `message` the rest. */
export class ReplyError extends Error {
  override readonly name = 'ReplyError';
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * A parsed reply: a simple string is a `string`, an integer a `number`, a bulk string a `Buffer`
 * (a copy the caller owns), a null bulk (`$-1`) or null array (`*-1`) `null`, an error reply a
 * `ReplyError`, an array a `Reply[]`.
 */
export type Reply = string | number | Buffer | null | ReplyError | Reply[];

// Parser states.
/** Expecting the type byte of the next reply. */
const TYPE = 0;
/** Reading a line (`#lineType` says which); `#held` holds what came in earlier chunks. */
const LINE = 1;
/** Reading a bulk payload; `#held` holds what came in earlier chunks. */
const BULK_DATA = 2;
/** Payload read: expecting `\r`. */
const BULK_CR = 3;
/** Expecting the `\n` that ends a bulk string. */
const BULK_LF = 4;

/** Longest `:`, `$` or `*` line: a sign and the digits. */
const MAX_NUMBER_LINE = MAX_HEADER_DIGITS + 1;

const EMPTY = Buffer.alloc(0);

interface Frame {
  readonly items: Reply[];
  readonly size: number;
}

/** The integer in `bytes[start..stop)` (optional `-`, then digits), or NaN. */
function parseInteger(bytes: Buffer, start: number, stop: number): number {
  let pos = start;
  const negative = bytes[pos] === MINUS;
  if (negative) pos++;
  if (pos === stop || stop - pos > MAX_HEADER_DIGITS) return Number.NaN;
  let value = 0;
  for (let i = pos; i < stop; i++) {
    const byte = bytes[i] as number;
    if (byte < ZERO || byte > NINE) return Number.NaN;
    value = value * 10 + (byte - ZERO);
  }
  // Beyond 2^53 the sum above may round differently from the decimal; let Number round it.
  if (value > Number.MAX_SAFE_INTEGER) value = Number(bytes.toString('latin1', pos, stop));
  return negative ? -value : value;
}

export class ReplyParser {
  readonly #onReply: (reply: Reply) => void;
  readonly #maxLine: number;
  readonly #maxBulk: number;
  readonly #maxArray: number;

  #state = TYPE;
  /** Type byte of the line being read. */
  #lineType = 0;
  #bulkLength = 0;
  /** A bulk payload read, waiting for its CRLF. */
  #bulkValue: Buffer = EMPTY;
  readonly #held = new HeldBytes();
  /** Arrays being filled, innermost last. */
  #stack: Frame[] = [];
  #error: ProtocolError | undefined = undefined;

  /** `onReply` is called once per complete top-level reply, in order. */
  constructor(onReply: (reply: Reply) => void, limits?: Partial<ParserLimits>) {
    this.#onReply = onReply;
    const resolved = resolveLimits(limits);
    this.#maxLine = resolved.maxInlineLength;
    this.#maxBulk = resolved.maxBulkLength;
    this.#maxArray = resolved.maxArrayLength;
  }

  /** Bytes held waiting for the rest of a reply (not counting elements of unfinished arrays). */
  get buffered(): number {
    return this.#held.length;
  }

  /**
   * Parses `chunk`, calling onReply once per complete reply, in order. Returns undefined, or a
   * ProtocolError (`PROTOCOL` or `TOO_LARGE`) when the stream cannot be read further; after
   * that the parser must not be fed again (it keeps returning the same error). Never throws on
   * any input. The parser does not keep `chunk` after returning.
   */
  push(input: Buffer | Uint8Array): ProtocolError | undefined {
    if (this.#error !== undefined) return this.#error;
    const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      switch (this.#state) {
        case TYPE: {
          const byte = chunk[pos] as number;
          if (byte !== PLUS && byte !== MINUS && byte !== COLON && byte !== DOLLAR && byte !== STAR) {
            return this.#fail(ProtocolErrorCode.PROTOCOL, `unexpected '${showByte(byte)}' at the start of a reply`);
          }
          this.#lineType = byte;
          this.#state = LINE;
          pos++;
          break;
        }

        case LINE: {
          const held = this.#held.length;
          const text = this.#lineType === PLUS || this.#lineType === MINUS;
          const max = text ? this.#maxLine : MAX_NUMBER_LINE;
          const searchEnd = Math.min(end, pos + (max - held) + 2);
          let newline = chunk.indexOf(LF, pos);
          if (newline >= searchEnd) newline = -1;
          if (newline === -1) {
            const length = held + (end - pos);
            if (searchEnd < end || length > max + 1 || (length > max && chunk[end - 1] !== CR)) {
              return text
                ? this.#fail(ProtocolErrorCode.TOO_LARGE, `reply line longer than ${max} bytes`)
                : this.#fail(ProtocolErrorCode.PROTOCOL, `invalid number: more than ${max} bytes`);
            }
            this.#held.hold(chunk.subarray(pos));
            pos = end;
            break;
          }
          let line = chunk;
          let start = pos;
          let stop = newline;
          if (held > 0) {
            line = this.#held.takeWith(chunk.subarray(pos, newline));
            start = 0;
            stop = line.length;
          }
          pos = newline + 1;
          if (stop === start || line[stop - 1] !== CR) {
            return this.#fail(ProtocolErrorCode.PROTOCOL, 'reply line not ended by CRLF');
          }
          stop--;
          if (text && stop - start > max) {
            return this.#fail(ProtocolErrorCode.TOO_LARGE, `reply line longer than ${max} bytes`);
          }
          const error = this.#line(line, start, stop);
          if (error !== undefined) return error;
          break;
        }

        case BULK_DATA: {
          const length = this.#bulkLength;
          const held = this.#held.length;
          const needed = length - held;
          if (end - pos < needed) {
            this.#held.hold(chunk.subarray(pos));
            pos = end;
            break;
          }
          const last = chunk.subarray(pos, pos + needed);
          let value: Buffer;
          if (held === 0) {
            value = Buffer.from(last);
          } else {
            value = this.#held.takeWith(last);
          }
          pos += needed;
          this.#state = BULK_CR;
          this.#bulkValue = value;
          break;
        }

        case BULK_CR: {
          if (chunk[pos] !== CR) return this.#fail(ProtocolErrorCode.PROTOCOL, 'expected CRLF after bulk data');
          pos++;
          this.#state = BULK_LF;
          break;
        }

        case BULK_LF: {
          if (chunk[pos] !== LF) return this.#fail(ProtocolErrorCode.PROTOCOL, 'expected CRLF after bulk data');
          pos++;
          this.#state = TYPE;
          const value = this.#bulkValue;
          this.#bulkValue = EMPTY;
          this.#emit(value);
          break;
        }
      }
    }
    return undefined;
  }

  /** Handles a complete line (`line[start..stop)`, CRLF removed). */
  #line(line: Buffer, start: number, stop: number): ProtocolError | undefined {
    this.#state = TYPE;
    switch (this.#lineType) {
      case PLUS:
        this.#emit(line.toString('utf8', start, stop));
        return undefined;
      case MINUS: {
        let space = start;
        while (space < stop && line[space] !== SPACE) space++;
        const code = line.toString('utf8', start, space);
        const message = space < stop ? line.toString('utf8', space + 1, stop) : '';
        this.#emit(new ReplyError(code, message));
        return undefined;
      }
      case COLON: {
        const value = parseInteger(line, start, stop);
        if (Number.isNaN(value)) return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid integer reply');
        this.#emit(value);
        return undefined;
      }
      case DOLLAR: {
        const length = parseInteger(line, start, stop);
        if (Number.isNaN(length) || length < -1) return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid bulk length');
        if (length === -1) {
          this.#emit(null);
        } else if (length > this.#maxBulk) {
          return this.#fail(
            ProtocolErrorCode.TOO_LARGE,
            `bulk string of ${length} bytes exceeds the limit of ${this.#maxBulk}`,
          );
        } else {
          this.#bulkLength = length;
          this.#state = BULK_DATA;
        }
        return undefined;
      }
      default: {
        const size = parseInteger(line, start, stop);
        if (Number.isNaN(size) || size < -1) return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid array length');
        if (size === -1) {
          this.#emit(null);
        } else if (size > this.#maxArray) {
          return this.#fail(
            ProtocolErrorCode.TOO_LARGE,
            `array of ${size} elements exceeds the limit of ${this.#maxArray}`,
          );
        } else if (size === 0) {
          this.#emit([]);
        } else {
          this.#stack.push({ items: [], size });
        }
        return undefined;
      }
    }
  }

  /** Delivers a complete value: into the innermost open array, or to onReply. */
  #emit(value: Reply): void {
    let reply = value;
    for (;;) {
      const frame = this.#stack[this.#stack.length - 1];
      if (frame === undefined) {
        this.#onReply(reply);
        return;
      }
      frame.items.push(reply);
      if (frame.items.length < frame.size) return;
      this.#stack.pop();
      reply = frame.items;
    }
  }

  #fail(code: ProtocolErrorCode, message: string): ProtocolError {
    this.#error = new ProtocolError(code, message);
    this.#held.clear();
    this.#stack = [];
    return this.#error;
  }
}
