// A JSON body read as it arrives, without parsing it: where each call of a batch starts and
// ends, how many there are, and how deeply each is nested.

/**
 * A request nested deeper than this, or holding more values (objects, arrays, list items), is
 * refused without being parsed: no Hati method needs either, and JSON.parse of a 16 MiB body of
 * `[[[[...` or `{},{},...` blocks the event loop for seconds.
 */
export const MAX_REQUEST_DEPTH = 32;
export const MAX_REQUEST_VALUES = 10_000;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isJsonWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** What a scan tells about a whole body (a BodyScanner after `finish`, or `smallSingleRequest`). */
export interface ScannedBody {
  /** Whether the body is a batch (its first byte that is not whitespace is `[`). */
  readonly batch: boolean | undefined;
  /** Not JSON, seen without parsing (see BodyScanner.invalid). */
  readonly invalid: boolean;
  /** The calls: the one request of a body that is not a batch. */
  readonly elements: readonly BodyElement[];
}

/** Where one request lies in the body, and whether it may be parsed. */
export interface BodyElement {
  start: number;
  end: number;
  /** Only whitespace: `[]`, or a hole as in `[1,,2]`. */
  blank: boolean;
  /** Over MAX_REQUEST_DEPTH or MAX_REQUEST_VALUES: refused unparsed. */
  tooComplex: boolean;
  depth: number;
  values: number;
}

/**
 * Reads a body as it arrives, without parsing it: tells a batch from a single request, finds
 * where each call of a batch starts and ends (commas at the top level, outside strings), and
 * counts them, so that a batch over the limit is refused before it is parsed or even fully
 * received, and a batch's calls can then be parsed a slice at a time instead of in one
 * JSON.parse that blocks the event loop. It does not validate JSON: JSON.parse of each call
 * does. Boundaries are ASCII bytes, so a call never splits a UTF-8 character.
 */
export class BodyScanner implements ScannedBody {
  readonly #maxBatch: number;
  /** Undefined until the first byte that is not whitespace; then whether it was `[`. */
  batch: boolean | undefined;
  /** The batch has more than maxBatch calls; scanning stopped. */
  tooMany = false;
  /** Bytes after the batch's closing `]`, or a `}` closing it: not JSON. */
  invalid = false;
  readonly elements: BodyElement[] = [];
  #current: BodyElement | undefined;
  #offset = 0;
  #depth = 0;
  #inString = false;
  #escaped = false;
  #closed = false;

  constructor(maxBatch: number) {
    this.#maxBatch = maxBatch;
  }

  /** Scans the next chunk; false once the batch is over the limit. */
  push(chunk: Uint8Array): boolean {
    if (this.tooMany) return false;
    // The state lives in locals while the loop runs and is stored back after it: a private
    // field read and written per byte cost more than the scan itself.
    let inString = this.#inString;
    let escaped = this.#escaped;
    let depth = this.#depth;
    const length = chunk.length;
    for (let i = 0; i < length; i++) {
      let byte = chunk[i] as number;
      if (inString) {
        // Most of a call is strings: run to the closing quote in a loop of its own.
        while (true) {
          if (escaped) escaped = false;
          else if (byte === BACKSLASH) escaped = true;
          else if (byte === QUOTE) {
            inString = false;
            break;
          }
          if (++i === length) break;
          byte = chunk[i] as number;
        }
        continue;
      }
      if (this.#closed) {
        if (!isJsonWhitespace(byte)) this.invalid = true;
        continue;
      }
      if (this.batch === undefined) {
        if (isJsonWhitespace(byte)) continue;
        this.batch = byte === OPEN_BRACKET;
        if (this.batch) {
          depth = 1;
          this.#open(this.#offset + i + 1);
          continue;
        }
        this.#open(0);
      }
      const current = this.#current as BodyElement;
      switch (byte) {
        case QUOTE:
          inString = true;
          current.blank = false;
          break;
        case OPEN_BRACE:
        case OPEN_BRACKET:
          depth++;
          count(current, this.batch ? depth - 1 : depth);
          break;
        case CLOSE_BRACE:
        case CLOSE_BRACKET:
          depth--;
          if (this.batch && depth === 0) {
            if (byte !== CLOSE_BRACKET) this.invalid = true;
            this.#close(this.#offset + i);
            this.#closed = true;
          }
          break;
        case COMMA:
          if (this.batch && depth === 1) {
            this.#close(this.#offset + i);
            if (this.elements.length >= this.#maxBatch) {
              this.tooMany = true;
              this.#depth = depth;
              return false;
            }
            this.#open(this.#offset + i + 1);
          } else {
            count(current, 0);
          }
          break;
        default:
          if (!isJsonWhitespace(byte)) current.blank = false;
      }
    }
    this.#inString = inString;
    this.#escaped = escaped;
    this.#depth = depth;
    this.#offset += length;
    return true;
  }

  /** Call at the end of the body. A single request is the whole body; a batch must be closed. */
  finish(): void {
    if (this.batch) {
      if (!this.#closed) this.invalid = true;
      return;
    }
    const single = this.#current ?? { start: 0, end: 0, blank: true, tooComplex: false, depth: 0, values: 0 };
    single.end = this.#offset;
    this.elements.push(single);
  }

  #open(start: number): void {
    this.#current = { start, end: start, blank: true, tooComplex: false, depth: 0, values: 0 };
  }

  #close(end: number): void {
    const current = this.#current as BodyElement;
    current.end = end;
    this.elements.push(current);
    this.#current = undefined;
  }
}

/** One more object, array or list item in `element`; `depth` 0 for a list item. */
function count(element: BodyElement, depth: number): void {
  element.blank = false;
  element.values++;
  if (depth > element.depth) element.depth = depth;
  if (element.depth > MAX_REQUEST_DEPTH || element.values > MAX_REQUEST_VALUES) element.tooComplex = true;
}

/**
 * A body too small to be over the limits needs no scan: with at most MAX_REQUEST_VALUES bytes it
 * cannot hold more values (each `{`, `[` or `,` is a byte), and with at most MAX_REQUEST_DEPTH
 * bytes `{` or `[` (in strings too) it cannot nest deeper. Counting those two bytes is a few
 * native searches, where the scan reads every byte in JavaScript and cost a third of what
 * JSON.parse of the same call costs. Returns what BodyScanner would for a single request, or
 * undefined when the body must be scanned: a batch, only whitespace, or too large to tell.
 */
export function smallSingleRequest(body: Uint8Array): ScannedBody | undefined {
  if (body.length > MAX_REQUEST_VALUES) return undefined;
  let i = 0;
  while (i < body.length && isJsonWhitespace(body[i] as number)) i++;
  if (i === body.length || body[i] === OPEN_BRACKET) return undefined;
  if (
    occurrences(body, OPEN_BRACE, MAX_REQUEST_DEPTH) + occurrences(body, OPEN_BRACKET, MAX_REQUEST_DEPTH) >
    MAX_REQUEST_DEPTH
  ) {
    return undefined;
  }
  // depth and values are not counted: the bounds above are all that is known, and enough.
  const element = { start: 0, end: body.length, blank: false, tooComplex: false, depth: 0, values: 0 };
  return { batch: false, invalid: false, elements: [element] };
}

/** How many times `byte` occurs in `body`, counted up to one more than `most`. */
function occurrences(body: Uint8Array, byte: number, most: number): number {
  let count = 0;
  for (let at = body.indexOf(byte); at !== -1 && count <= most; at = body.indexOf(byte, at + 1)) count++;
  return count;
}
