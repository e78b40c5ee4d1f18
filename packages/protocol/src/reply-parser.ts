// An incremental parser of RESP2 and RESP3 replies, for clients and tests. Same contract as the
// RequestParser: fed chunks split anywhere, it never throws on any input and reports a
// malformed or oversized stream as a ProtocolError.
//
// Every RESP3 type is read, whatever the connection's protocol version: a RESP2 server never
// sends the new type bytes, and a client reading `HELLO 3`'s reply must already understand
// them. Not supported: RESP3's streamed strings (`$?`) and streamed aggregates (`*?`, ending in
// `.`), which no Redis command and no Hati command sends; they are ProtocolErrors.

import {
  BANG,
  COLON,
  COMMA,
  CR,
  DOLLAR,
  EQUALS,
  GREATER_THAN,
  HASH,
  LEFT_PAREN,
  LF,
  LOWER_F,
  LOWER_T,
  MAX_HEADER_DIGITS,
  MINUS,
  NINE,
  PERCENT,
  PIPE,
  PLUS,
  SPACE,
  STAR,
  showByte,
  TILDE,
  UNDERSCORE,
  ZERO,
} from './bytes.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { HeldBytes } from './held-bytes.js';
import { type ParserLimits, resolveLimits } from './options.js';

/** An error reply, `-CODE message` or RESP3's `!<len>`: `code` is the first word, `message` the rest. */
export class ReplyError extends Error {
  override readonly name = 'ReplyError';
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * A RESP3 map (`%`), keyed by text. A Map compares Buffer and array keys by identity, so with
 * the wire's own values as keys `get('field')` could never hit; and the keys Redis and Hati
 * send (field names, the fields of `HELLO`, `CONFIG GET`, `XINFO`) are text. So a bulk or
 * simple string key is decoded as UTF-8, a number, big number or boolean key is written in
 * decimal or as `true`/`false`, null as `null`, an error as its `CODE message` line, and an
 * aggregate key (possible from a script) as its elements' texts in brackets, `[a, b]` (a map
 * as `{k: v}`), cut at 128 characters (then ending in `…`). Keys equal as text keep the last
 * value. Bytes that are not valid UTF-8 do not
 * survive: a command whose field names are binary is better read in RESP2, where a map is a
 * flat array of bulk strings.
 */
export class ReplyMap extends Map<string, Reply> {}

/**
 * A RESP3 push frame (`>`): out-of-band data such as a pub/sub message, sent between replies
 * and never the answer to a command. `items[0]` names its kind (`message`, `subscribe`, ...).
 * The parser hands it to `onPush` when one is given, otherwise to `onReply` as this object.
 */
export class ReplyPush {
  readonly items: Reply[];

  constructor(items: Reply[]) {
    this.items = items;
  }
}

/**
 * A parsed reply:
 * - a simple string (`+`) is a `string`;
 * - an integer (`:`) a `number` (beyond 2^53 rounded, as before RESP3: an integer reply keeps
 *   one type whatever its size), a RESP3 double (`,`, including `inf`, `-inf`, `nan`) a
 *   `number`, a big number (`(`) a `bigint`, a boolean (`#t`, `#f`) a `boolean`;
 * - a bulk string (`$`) a `Buffer` (a copy the caller owns); a verbatim string (`=`) the same,
 *   holding the text after its `xxx:` format prefix (the format is dropped: callers that take
 *   a bulk reply take a verbatim one unchanged, and the text stays binary-safe);
 * - null (`$-1`, `*-1` or RESP3's `_`) `null`;
 * - an error (`-` or `!`) a `ReplyError`;
 * - an array (`*`) or a set (`~`) a `Reply[]`; a map (`%`) a `ReplyMap`; a push (`>`, only at
 *   the top level) a `ReplyPush` unless `onPush` takes it.
 * An attribute (`|`) is read and dropped: the reply it annotates is delivered as usual.
 */
export type Reply = string | number | bigint | boolean | Buffer | null | ReplyError | ReplyMap | ReplyPush | Reply[];

/** The ReplyParser's options: the limits, and where RESP3 pushes go. */
export interface ReplyParserOptions extends Partial<ParserLimits> {
  /**
   * Called with the items of each RESP3 push frame (`>`), in stream order with the replies.
   * Without it, a push is passed to `onReply` as a `ReplyPush`.
   */
  onPush?: ((items: Reply[]) => void) | undefined;
}

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

/** Longest short line (`:`, `$`, `*`, `%`, ..., `_`, `#`): a sign and the digits. */
const MAX_NUMBER_LINE = MAX_HEADER_DIGITS + 1;

// What a type byte starts.
const NOT_A_TYPE = 0;
/** A line of text (`+`, `-`, `,`, `(`), bounded by maxInlineLength: TOO_LARGE beyond it. */
const TEXT_LINE = 1;
/** A short line (a number, a length, a count, `_`, `#`): PROTOCOL beyond MAX_NUMBER_LINE. */
const SHORT_LINE = 2;
const LINE_KIND = new Uint8Array(256);
for (const byte of [PLUS, MINUS, COMMA, LEFT_PAREN]) LINE_KIND[byte] = TEXT_LINE;
for (const byte of [COLON, DOLLAR, STAR, UNDERSCORE, HASH, BANG, EQUALS, PERCENT, TILDE, PIPE, GREATER_THAN]) {
  LINE_KIND[byte] = SHORT_LINE;
}

// Aggregate kinds. A set is read as an array.
const ARRAY = 0;
const MAP = 1;
const ATTRIBUTE = 2;
const PUSH = 3;
type AggregateKind = typeof ARRAY | typeof MAP | typeof ATTRIBUTE | typeof PUSH;

/** The `xxx:` before a verbatim string's text. */
const VERBATIM_PREFIX = 4;

const EMPTY = Buffer.alloc(0);

/** A RESP3 double, as Redis writes it (`-`, digits, optional fraction and exponent). */
const DOUBLE = /^-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
/** Infinities and NaN: `inf`, `-inf`, `nan`, plus what libc printed before Redis 7.2 (`-nan`, `NAN`, `nan(...)`). */
const SPECIAL_DOUBLE = /^([+-]?)(?:(inf(?:inity)?)|nan(?:\([0-9A-Za-z_]*\))?)$/i;
const BIG_NUMBER = /^[+-]?[0-9]+$/;

interface Frame {
  readonly kind: AggregateKind;
  readonly items: Reply[];
  /** Elements to read: twice the pairs of a map or attribute. */
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

/** The double in `text`, or undefined when it is not one. */
function parseDouble(text: string): number | undefined {
  if (DOUBLE.test(text)) return Number(text);
  const special = SPECIAL_DOUBLE.exec(text);
  if (special === null) return undefined;
  if (special[2] === undefined) return Number.NaN;
  return special[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}

/** `CODE message` in `bytes[start..stop)` as a ReplyError. */
function replyError(bytes: Buffer, start: number, stop: number): ReplyError {
  let space = start;
  while (space < stop && bytes[space] !== SPACE) space++;
  const code = bytes.toString('utf8', start, space);
  const message = space < stop ? bytes.toString('utf8', space + 1, stop) : '';
  return new ReplyError(code, message);
}

/**
 * Most characters of an aggregate key's text. Each key holds the text of the keys nested in it,
 * so without a bound a hostile stream of maps keyed by arrays of maps keyed by ... would make
 * text grow with the square of its length.
 */
const MAX_AGGREGATE_KEY = 128;

/** The text of a scalar key, at most `room` characters of it. */
function scalarKey(key: Reply, room: number): string {
  if (typeof key === 'string') return key.length > room ? key.slice(0, room) : key;
  // A UTF-16 unit takes at most three bytes of UTF-8: decode no more than needed.
  if (Buffer.isBuffer(key)) return key.toString('utf8', 0, Math.min(key.length, room * 3)).slice(0, room);
  if (key === null) return 'null';
  if (key instanceof ReplyError) return (key.message === '' ? key.code : `${key.code} ${key.message}`).slice(0, room);
  return String(key).slice(0, room);
}

/** The items of an aggregate key as an iterator (map entries as `[key, value]`), or undefined for a scalar. */
function aggregateOf(key: Reply): KeyFrame | undefined {
  if (key instanceof ReplyMap) return { map: true, entries: key.entries(), items: undefined, first: true };
  if (Array.isArray(key)) return { map: false, entries: undefined, items: key.values(), first: true };
  if (key instanceof ReplyPush) return { map: false, entries: undefined, items: key.items.values(), first: true };
  return undefined;
}

interface KeyFrame {
  readonly map: boolean;
  readonly entries: Iterator<[string, Reply]> | undefined;
  readonly items: Iterator<Reply> | undefined;
  first: boolean;
}

/**
 * A map key as text (see ReplyMap). An aggregate is walked without recursion (a hostile key may
 * nest deeply) and its text cut at MAX_AGGREGATE_KEY characters, ending in `…`.
 */
function mapKey(key: Reply): string {
  const top = aggregateOf(key);
  if (top === undefined) return scalarKey(key, Number.POSITIVE_INFINITY);
  let text = top.map ? '{' : '[';
  const frames = [top];
  // Every turn adds a character or more (a bracket, a separator), except after an empty first item.
  while (frames.length > 0 && text.length < MAX_AGGREGATE_KEY) {
    const frame = frames[frames.length - 1] as KeyFrame;
    let item: Reply;
    let prefix = frame.first ? '' : ', ';
    if (frame.entries !== undefined) {
      const next = frame.entries.next();
      if (next.done === true) {
        text += '}';
        frames.pop();
        continue;
      }
      prefix += `${next.value[0].slice(0, MAX_AGGREGATE_KEY)}: `;
      item = next.value[1];
    } else {
      const next = (frame.items as Iterator<Reply>).next();
      if (next.done === true) {
        text += ']';
        frames.pop();
        continue;
      }
      item = next.value;
    }
    frame.first = false;
    text += prefix;
    const inner = aggregateOf(item);
    if (inner === undefined) {
      text += scalarKey(item, Math.max(0, MAX_AGGREGATE_KEY - text.length));
    } else {
      text += inner.map ? '{' : '[';
      frames.push(inner);
    }
  }
  return frames.length > 0 || text.length > MAX_AGGREGATE_KEY ? `${text.slice(0, MAX_AGGREGATE_KEY)}…` : text;
}

/** A map's flat key, value, key, value... as a ReplyMap. */
function toMap(items: Reply[]): ReplyMap {
  const map = new ReplyMap();
  for (let i = 0; i < items.length; i += 2) map.set(mapKey(items[i] as Reply), items[i + 1] as Reply);
  return map;
}

export class ReplyParser {
  readonly #onReply: (reply: Reply) => void;
  readonly #onPush: ((items: Reply[]) => void) | undefined;
  readonly #maxLine: number;
  readonly #maxBulk: number;
  readonly #maxArray: number;

  #state = TYPE;
  /** Type byte of the line being read. */
  #lineType = 0;
  /** Whether that line is text (bounded by maxLine) rather than a short line. */
  #lineText = false;
  /** Type byte of the bulk being read: `$`, `!` or `=`. */
  #bulkType = 0;
  #bulkLength = 0;
  /** A bulk payload read, waiting for its CRLF. */
  #bulkValue: Buffer = EMPTY;
  readonly #held = new HeldBytes();
  /** Aggregates being filled, innermost last. */
  #stack: Frame[] = [];
  #error: ProtocolError | undefined = undefined;

  /**
   * `onReply` is called once per complete top-level reply, in order; `options` holds the limits
   * (a map or attribute of n pairs counts as 2n elements against maxArrayLength) and `onPush`.
   */
  constructor(onReply: (reply: Reply) => void, options?: ReplyParserOptions) {
    this.#onReply = onReply;
    this.#onPush = options?.onPush;
    const resolved = resolveLimits(options);
    this.#maxLine = resolved.maxInlineLength;
    this.#maxBulk = resolved.maxBulkLength;
    this.#maxArray = resolved.maxArrayLength;
  }

  /** Bytes held waiting for the rest of a reply (not counting elements of unfinished aggregates). */
  get buffered(): number {
    return this.#held.length;
  }

  /**
   * Parses `chunk`, calling onReply (or onPush) once per complete reply, in order. Returns
   * undefined, or a ProtocolError (`PROTOCOL` or `TOO_LARGE`) when the stream cannot be read
   * further; after that the parser must not be fed again (it keeps returning the same error).
   * Never throws on any input. The parser does not keep `chunk` after returning.
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
          const kind = LINE_KIND[byte];
          if (kind === NOT_A_TYPE) {
            return this.#fail(ProtocolErrorCode.PROTOCOL, `unexpected '${showByte(byte)}' at the start of a reply`);
          }
          this.#lineType = byte;
          this.#lineText = kind === TEXT_LINE;
          this.#state = LINE;
          pos++;
          break;
        }

        case LINE: {
          const held = this.#held.length;
          const max = this.#lineText ? this.#maxLine : MAX_NUMBER_LINE;
          const searchEnd = Math.min(end, pos + (max - held) + 2);
          let newline = chunk.indexOf(LF, pos);
          if (newline >= searchEnd) newline = -1;
          if (newline === -1) {
            const length = held + (end - pos);
            if (searchEnd < end || length > max + 1 || (length > max && chunk[end - 1] !== CR)) {
              return this.#lineTooLong(max);
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
          // The same test as for an unfinished line, so that where the chunks split never
          // changes the error.
          const length = stop - start;
          if (length > max + 1 || (length > max && line[stop - 1] !== CR)) return this.#lineTooLong(max);
          if (length === 0 || line[stop - 1] !== CR) {
            return this.#fail(ProtocolErrorCode.PROTOCOL, 'reply line not ended by CRLF');
          }
          stop--;
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
          if (this.#bulkType === DOLLAR) {
            this.#emit(value);
          } else if (this.#bulkType === BANG) {
            this.#emit(replyError(value, 0, value.length));
          } else {
            if (value[VERBATIM_PREFIX - 1] !== COLON) {
              return this.#fail(ProtocolErrorCode.PROTOCOL, "verbatim string without its 'xxx:' format prefix");
            }
            this.#emit(value.subarray(VERBATIM_PREFIX));
          }
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
      case MINUS:
        this.#emit(replyError(line, start, stop));
        return undefined;
      case COLON: {
        const value = parseInteger(line, start, stop);
        if (Number.isNaN(value)) return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid integer reply');
        this.#emit(value);
        return undefined;
      }
      case DOLLAR:
      case BANG:
      case EQUALS:
        return this.#bulkHeader(line, start, stop);
      case STAR: {
        const size = parseInteger(line, start, stop);
        if (Number.isNaN(size) || size < -1) return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid array length');
        if (size === -1) {
          this.#emit(null);
          return undefined;
        }
        return this.#aggregate(ARRAY, size, size, 'array');
      }
      case UNDERSCORE:
        if (stop !== start) return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid null reply');
        this.#emit(null);
        return undefined;
      case HASH: {
        const byte = line[start];
        if (stop - start !== 1 || (byte !== LOWER_T && byte !== LOWER_F)) {
          return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid boolean reply');
        }
        this.#emit(byte === LOWER_T);
        return undefined;
      }
      case COMMA: {
        const value = parseDouble(line.toString('latin1', start, stop));
        if (value === undefined) return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid double reply');
        this.#emit(value);
        return undefined;
      }
      case LEFT_PAREN: {
        const text = line.toString('latin1', start, stop);
        if (!BIG_NUMBER.test(text)) return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid big number reply');
        this.#emit(BigInt(text));
        return undefined;
      }
      default: {
        // `%`, `~`, `|` and `>`: a count, never -1.
        const type = this.#lineType;
        const what = type === PERCENT ? 'map' : type === TILDE ? 'set' : type === PIPE ? 'attribute' : 'push';
        if (type === GREATER_THAN && this.#stack.length > 0) {
          return this.#fail(ProtocolErrorCode.PROTOCOL, 'push frame inside another reply');
        }
        const count = parseInteger(line, start, stop);
        if (Number.isNaN(count) || count < 0) return this.#fail(ProtocolErrorCode.PROTOCOL, `invalid ${what} length`);
        const kind = type === PERCENT ? MAP : type === TILDE ? ARRAY : type === PIPE ? ATTRIBUTE : PUSH;
        return this.#aggregate(kind, count, kind === MAP || kind === ATTRIBUTE ? count * 2 : count, what);
      }
    }
  }

  /** A line longer than `max` bytes: TOO_LARGE for text, PROTOCOL for a number or another short line. */
  #lineTooLong(max: number): ProtocolError {
    return this.#lineText
      ? this.#fail(ProtocolErrorCode.TOO_LARGE, `reply line longer than ${max} bytes`)
      : this.#fail(ProtocolErrorCode.PROTOCOL, `invalid '${showByte(this.#lineType)}' line: more than ${max} bytes`);
  }

  /** `$`, `!` or `=`: a length, then (unless null) the payload. */
  #bulkHeader(line: Buffer, start: number, stop: number): ProtocolError | undefined {
    const type = this.#lineType;
    const length = parseInteger(line, start, stop);
    if (Number.isNaN(length) || length < -1 || (length === -1 && type !== DOLLAR)) {
      return this.#fail(ProtocolErrorCode.PROTOCOL, 'invalid bulk length');
    }
    if (length === -1) {
      this.#emit(null);
    } else if (length > this.#maxBulk) {
      return this.#fail(
        ProtocolErrorCode.TOO_LARGE,
        `bulk string of ${length} bytes exceeds the limit of ${this.#maxBulk}`,
      );
    } else if (type === EQUALS && length < VERBATIM_PREFIX) {
      return this.#fail(ProtocolErrorCode.PROTOCOL, "verbatim string without its 'xxx:' format prefix");
    } else {
      this.#bulkType = type;
      this.#bulkLength = length;
      this.#state = BULK_DATA;
    }
    return undefined;
  }

  /** Opens an aggregate of `count` entries (`size` elements), or delivers it when empty. */
  #aggregate(kind: AggregateKind, count: number, size: number, what: string): ProtocolError | undefined {
    if (size > this.#maxArray) {
      const unit = kind === MAP || kind === ATTRIBUTE ? 'pairs' : 'elements';
      return this.#fail(
        ProtocolErrorCode.TOO_LARGE,
        `${what} of ${count} ${unit} exceeds the limit of ${this.#maxArray} elements`,
      );
    }
    if (size > 0) {
      this.#stack.push({ kind, items: [], size });
    } else if (kind === ARRAY) {
      this.#emit([]);
    } else if (kind === MAP) {
      this.#emit(new ReplyMap());
    } else if (kind === PUSH) {
      this.#deliverPush([]);
    }
    // An empty attribute annotates nothing: nothing to do.
    return undefined;
  }

  /** Delivers a complete value: into the innermost open aggregate, or to onReply. */
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
      if (frame.kind === ARRAY) {
        reply = frame.items;
      } else if (frame.kind === MAP) {
        reply = toMap(frame.items);
      } else if (frame.kind === PUSH) {
        // Only ever at the bottom of the stack: nothing encloses it.
        this.#deliverPush(frame.items);
        return;
      } else {
        // An attribute is dropped; the aggregate below it still waits for the value it annotates.
        return;
      }
    }
  }

  #deliverPush(items: Reply[]): void {
    if (this.#onPush !== undefined) this.#onPush(items);
    else this.#onReply(new ReplyPush(items));
  }

  #fail(code: ProtocolErrorCode, message: string): ProtocolError {
    this.#error = new ProtocolError(code, message);
    this.#held.clear();
    this.#stack = [];
    this.#bulkValue = EMPTY;
    return this.#error;
  }
}
