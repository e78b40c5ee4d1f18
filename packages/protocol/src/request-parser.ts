// The server's request parser: one per connection, fed every chunk the socket reads.
//
// Requests are RESP arrays of bulk strings (`*<n>\r\n` then n × `$<len>\r\n<bytes>\r\n`) or
// inline lines (`SET memory 0 greeting hello world\n`), mixed freely and pipelined. The parser
// is a byte-driven state machine: integers are read from bytes, a bulk payload is skipped over
// once its length is known, and arguments are ranges of the chunk (a `Request`, one per parser,
// reused) whenever a command lies within one chunk, so a request allocates nothing. Between
// chunks it keeps only the unconsumed tail of the command in progress, copied, so it never pins
// a socket chunk (nor breaks if the caller reuses one).

import { COLON, CR, DOLLAR, LF, MAX_HEADER_DIGITS, NINE, SPACE, STAR, showByte, showText, TAB, ZERO } from './bytes.js';
import { type CommandSpec, lookupCommand, lookupOption } from './commands.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { HeldBytes } from './held-bytes.js';
import { type ParserLimits, resolveLimits } from './options.js';
import { Request } from './request.js';

// Parser states: where the next byte belongs.
/** At the start of a request. */
const IDLE = 0;
/** Inside an inline line; `#held` holds the part that came in earlier chunks. */
const INLINE = 1;
/** After `*`: reading the digits of the argument count. */
const ARRAY_LENGTH = 2;
/** After the `\r` of the array header: expecting `\n`. */
const ARRAY_LF = 3;
/** Expecting the `$` of the next bulk string. */
const BULK_TYPE = 4;
/** After `$`: reading the digits of the bulk length. */
const BULK_LENGTH = 5;
/** After the `\r` of the bulk header: expecting `\n`. */
const BULK_LF = 6;
/** Reading a bulk payload; `#held` holds the part that came in earlier chunks. */
const BULK_DATA = 7;
/** Payload read: expecting `\r`. */
const BULK_CR = 8;
/** Expecting the `\n` that ends a bulk string. */
const BULK_END_LF = 9;

const EMPTY_ARGS: Buffer[] = [];
const EMPTY = Buffer.alloc(0);

function isBlank(byte: number): boolean {
  return byte === SPACE || byte === TAB;
}

/** The methods of an HTTP request line (RFC 9110), which no inline Hati command can look like. */
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/**
 * True when an inline request is an HTTP request line (`POST / HTTP/1.1`) or header line
 * (`Host: example.com`): a browser or proxy talking to the TCP port. Any web page can make a
 * browser send such a request with a body of Hati commands, so the connection must stop here.
 * The request line is recognised by its shape (method, a target that starts with `/`, is `*`
 * or holds `://`, then `HTTP/`), so `GET memory HTTP/1.1` stays a command.
 */
function looksLikeHttp(request: Request): boolean {
  // Read in place first: every inline command passes through here, and few have three words.
  const data = request.data as Buffer;
  if (data[request.end(0) - 1] === COLON) return true;
  if (request.length !== 3) return false;
  const args = request.args();
  const first = args[0] as Buffer;
  if (!HTTP_METHODS.has(first.toString('latin1'))) return false;
  const target = args[1] as Buffer;
  const targetLooksHttp = target[0] === 0x2f || (target.length === 1 && target[0] === STAR) || target.includes('://');
  return targetLooksHttp && (args[2] as Buffer).toString('latin1', 0, 5) === 'HTTP/';
}

export class RequestParser {
  readonly #onCommand: (request: Request) => void;
  readonly #maxInline: number;
  readonly #maxBulk: number;
  readonly #maxArray: number;

  #state = IDLE;
  /** The integer being read from a header, and how many digits it had so far. */
  #number = 0;
  #digits = 0;
  /** The request in progress: its arguments in the current chunk, as ranges. */
  readonly #request = new Request();
  /** How many arguments the RESP request in progress announced. */
  #expected = 0;
  /** Its first arguments, copied at the end of earlier chunks; the rest are ranges of `#request`. */
  #argsHeld: Buffer[] = EMPTY_ARGS;
  #argsHeldBytes = 0;
  /** Length of the bulk string being read. */
  #bulkLength = 0;
  /** Copied parts of an incomplete inline line or bulk payload, concatenated once when complete. */
  readonly #held = new HeldBytes();
  #error: ProtocolError | undefined = undefined;
  /** `stop()` was called: `push` returns after the current command, keeping the rest in `#rest`. */
  #stopped = false;
  #rest: Buffer | undefined = undefined;

  /**
   * `onCommand` is called once per complete command, in order, with its arguments; argument 0 is
   * the command name as sent. The request (reused for every command) and its arguments are only
   * valid during the call: they are ranges or views of the chunk being parsed, so copy what you keep.
   */
  constructor(onCommand: (request: Request) => void, limits?: Partial<ParserLimits>) {
    this.#onCommand = onCommand;
    const resolved = resolveLimits(limits);
    this.#maxInline = resolved.maxInlineLength;
    this.#maxBulk = resolved.maxBulkLength;
    this.#maxArray = resolved.maxArrayLength;
  }

  /** Bytes held: the unfinished command, and the input kept by `stop()`. */
  get buffered(): number {
    return this.#held.length + this.#argsHeldBytes + (this.#rest?.length ?? 0);
  }

  /** True between `stop()` and `resume()`. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Called from onCommand: `push` returns once this command is delivered, keeping a copy of the
   * input it has not parsed yet, until `resume()`. Lets a server stop producing replies for a
   * client that does not read them without waiting for the end of a large chunk.
   */
  stop(): void {
    this.#stopped = true;
  }

  /** Parses the input kept by `stop()`; returns like `push` (and may stop again). */
  resume(): ProtocolError | undefined {
    this.#stopped = false;
    const rest = this.#rest;
    if (rest === undefined) return this.#error;
    this.#rest = undefined;
    return this.push(rest);
  }

  /**
   * Parses `chunk`, calling onCommand once per complete command, in order. Returns undefined, or
   * a ProtocolError (`PROTOCOL` or `TOO_LARGE`) when the stream cannot be read further; after
   * that the parser must not be fed again (it keeps returning the same error). Never throws on
   * any input; an exception thrown by onCommand propagates and leaves the parser unusable.
   * The parser does not keep `chunk` after returning.
   */
  push(input: Buffer | Uint8Array): ProtocolError | undefined {
    if (this.#error !== undefined) return this.#error;
    let chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (this.#stopped) {
      // Input while stopped waits behind what was kept.
      this.#rest = this.#rest === undefined ? Buffer.from(chunk) : Buffer.concat([this.#rest, chunk]);
      return undefined;
    }
    if (this.#rest !== undefined) {
      chunk = Buffer.concat([this.#rest, chunk]);
      this.#rest = undefined;
    }
    const end = chunk.length;
    // The arguments of a request in progress that lie in this chunk are ranges of it.
    this.#request.begin(chunk);
    let pos = 0;
    let state = this.#state;
    let number = this.#number;
    let digits = this.#digits;

    while (pos < end && !this.#stopped) {
      switch (state) {
        case IDLE: {
          if (chunk[pos] === STAR) {
            const next = this.#whole(chunk, pos, end);
            if (next !== -1) {
              pos = next;
              break;
            }
            pos++;
            state = ARRAY_LENGTH;
            number = 0;
            digits = 0;
          } else {
            state = INLINE;
          }
          break;
        }

        case INLINE: {
          const lineStart = pos;
          const held = this.#held.length;
          // The newline must come within the limit (+1 for a `\r`, +1 for the `\n`): a longer line
          // is rejected as soon as that much of it has arrived, without buffering it.
          const searchEnd = Math.min(end, pos + (this.#maxInline - held) + 2);
          let newline = chunk.indexOf(LF, pos);
          if (newline >= searchEnd) newline = -1;
          if (newline === -1) {
            const length = held + (end - pos);
            if (
              searchEnd < end ||
              length > this.#maxInline + 1 ||
              (length > this.#maxInline && chunk[end - 1] !== CR)
            ) {
              return this.#fail(ProtocolErrorCode.TOO_LARGE, this.#inlineTooLarge());
            }
            this.#held.hold(chunk.subarray(pos));
            pos = end;
            break;
          }
          pos = newline + 1;
          state = IDLE;
          let line = chunk;
          let start = lineStart;
          let stop = newline;
          if (held > 0) {
            line = this.#held.takeWith(chunk.subarray(lineStart, newline));
            start = 0;
            stop = line.length;
          }
          if (stop > start && line[stop - 1] === CR) stop--;
          if (stop - start > this.#maxInline) return this.#fail(ProtocolErrorCode.TOO_LARGE, this.#inlineTooLarge());
          const error = this.#inline(line, start, stop);
          if (error !== undefined) return error;
          break;
        }

        case ARRAY_LENGTH:
        case BULK_LENGTH: {
          const max = state === ARRAY_LENGTH ? this.#maxArray : this.#maxBulk;
          let byte = chunk[pos] as number;
          while (byte >= ZERO && byte <= NINE) {
            number = number * 10 + (byte - ZERO);
            if (number > max) return this.#fail(ProtocolErrorCode.TOO_LARGE, this.#tooLarge(state, number, chunk, pos));
            if (++digits > MAX_HEADER_DIGITS) return this.#fail(ProtocolErrorCode.PROTOCOL, this.#badHeader(state));
            if (++pos === end) break;
            byte = chunk[pos] as number;
          }
          if (pos === end) break;
          if (byte !== CR || digits === 0) return this.#fail(ProtocolErrorCode.PROTOCOL, this.#badHeader(state, byte));
          pos++;
          state = state === ARRAY_LENGTH ? ARRAY_LF : BULK_LF;
          break;
        }

        case ARRAY_LF: {
          const byte = chunk[pos] as number;
          if (byte !== LF) return this.#fail(ProtocolErrorCode.PROTOCOL, this.#badHeader(ARRAY_LENGTH, byte));
          pos++;
          if (number === 0) {
            // `*0`: an empty request, ignored.
            state = IDLE;
          } else {
            this.#request.begin(chunk);
            this.#expected = number;
            state = BULK_TYPE;
          }
          break;
        }

        case BULK_TYPE: {
          const byte = chunk[pos] as number;
          if (byte !== DOLLAR) {
            return this.#fail(
              ProtocolErrorCode.PROTOCOL,
              `expected '$' at the start of argument ${this.#argCount + 1}, got '${showByte(byte)}'`,
            );
          }
          pos++;
          state = BULK_LENGTH;
          number = 0;
          digits = 0;
          break;
        }

        case BULK_LF: {
          const byte = chunk[pos] as number;
          if (byte !== LF) return this.#fail(ProtocolErrorCode.PROTOCOL, this.#badHeader(BULK_LENGTH, byte));
          pos++;
          this.#bulkLength = number;
          state = BULK_DATA;
          break;
        }

        case BULK_DATA: {
          const length = this.#bulkLength;
          const held = this.#held.length;
          // The common case: the whole payload and its CRLF are in this chunk.
          if (held === 0 && end - pos >= length + 2) {
            const dataEnd = pos + length;
            if (chunk[dataEnd] !== CR || chunk[dataEnd + 1] !== LF) {
              return this.#fail(ProtocolErrorCode.PROTOCOL, this.#missingCrlf());
            }
            this.#request.add(pos, dataEnd);
            pos = dataEnd + 2;
            state = this.#argumentDone();
            break;
          }
          const needed = length - held;
          if (end - pos < needed) {
            this.#held.hold(chunk.subarray(pos));
            pos = end;
            break;
          }
          if (held === 0) {
            this.#request.add(pos, pos + needed);
          } else {
            // A payload spread over several chunks: concatenated once, now that it is complete.
            // Every earlier argument was copied at the end of an earlier chunk; this one is a copy too.
            this.#holdArgument(this.#held.takeWith(chunk.subarray(pos, pos + needed)));
          }
          pos += needed;
          state = BULK_CR;
          break;
        }

        case BULK_CR: {
          if (chunk[pos] !== CR) return this.#fail(ProtocolErrorCode.PROTOCOL, this.#missingCrlf());
          pos++;
          state = BULK_END_LF;
          break;
        }

        case BULK_END_LF: {
          if (chunk[pos] !== LF) return this.#fail(ProtocolErrorCode.PROTOCOL, this.#missingCrlf());
          pos++;
          state = this.#argumentDone();
          break;
        }
      }
    }

    // Stopped after a command (so in state IDLE): keep a copy of the rest for resume().
    if (pos < end) this.#rest = Buffer.from(chunk.subarray(pos));
    // The chunk is used up. Copy the arguments of a command still in progress that are ranges of
    // it: they must outlive it, and should not pin it.
    const request = this.#request;
    for (let i = 0; i < request.length; i++) {
      this.#holdArgument(Buffer.from(chunk.subarray(request.start(i), request.end(i))));
    }
    request.begin(EMPTY);
    this.#state = state;
    this.#number = number;
    this.#digits = digits;
    return undefined;
  }

  /**
   * The common case in one pass: reads the RESP request at `chunk[start]` (a `*`) when all of it
   * lies in the chunk, well formed and within the limits, delivers it, and returns the position
   * after it. Otherwise returns -1 having delivered nothing, and the state machine reads the
   * request byte by byte and says what is wrong with it. Each state of the machine is a turn of
   * its loop and a switch; a request of three arguments passes through about twenty.
   */
  #whole(chunk: Buffer, start: number, end: number): number {
    const request = this.#request;
    request.begin(chunk);
    let pos = start + 1;
    let count = 0;
    let digits = 0;
    for (; pos < end; pos++) {
      const byte = chunk[pos] as number;
      if (byte < ZERO || byte > NINE) break;
      count = count * 10 + (byte - ZERO);
      if (++digits > MAX_HEADER_DIGITS || count > this.#maxArray) return -1;
    }
    // `*0` (ignored) and everything unusual is left to the state machine.
    if (count === 0 || pos + 1 >= end || chunk[pos] !== CR || chunk[pos + 1] !== LF) return -1;
    pos += 2;
    const maxBulk = this.#maxBulk;
    for (let i = 0; i < count; i++) {
      if (pos >= end || chunk[pos] !== DOLLAR) break;
      let length = 0;
      digits = 0;
      for (pos++; pos < end; pos++) {
        const byte = chunk[pos] as number;
        if (byte < ZERO || byte > NINE) break;
        length = length * 10 + (byte - ZERO);
        if (++digits > MAX_HEADER_DIGITS || length > maxBulk) break;
      }
      if (digits === 0 || digits > MAX_HEADER_DIGITS || length > maxBulk) break;
      if (pos + 1 >= end || chunk[pos] !== CR || chunk[pos + 1] !== LF) break;
      const dataStart = pos + 2;
      const dataEnd = dataStart + length;
      if (dataEnd + 1 >= end || chunk[dataEnd] !== CR || chunk[dataEnd + 1] !== LF) break;
      request.add(dataStart, dataEnd);
      pos = dataEnd + 2;
    }
    if (request.length !== count) {
      request.begin(chunk);
      return -1;
    }
    this.#onCommand(request);
    request.clear();
    return pos;
  }

  /** Arguments of the request in progress so far. */
  get #argCount(): number {
    return this.#argsHeld.length + this.#request.length;
  }

  /** Keeps a copied argument of the request in progress. */
  #holdArgument(copy: Buffer): void {
    if (this.#argsHeld === EMPTY_ARGS) this.#argsHeld = [];
    this.#argsHeld.push(copy);
    this.#argsHeldBytes += copy.length;
  }

  /** Records a complete argument; delivers the command when it was the last. Returns the next state. */
  #argumentDone(): number {
    if (this.#argCount < this.#expected) return BULK_TYPE;
    const request = this.#request;
    const held = this.#argsHeld;
    if (held !== EMPTY_ARGS) {
      // Arguments from several chunks: the copies, then views of this chunk's ranges.
      const args = held;
      for (let i = 0; i < request.length; i++) args.push(request.arg(i));
      request.setList(args);
      this.#argsHeld = EMPTY_ARGS;
      this.#argsHeldBytes = 0;
    }
    this.#onCommand(request);
    request.clear();
    return IDLE;
  }

  /**
   * Splits an inline line (`line[start..stop)`, line ending removed) into arguments and delivers
   * them; returns the error when the line is HTTP.
   */
  #inline(line: Buffer, start: number, stop: number): ProtocolError | undefined {
    let pos = start;
    // Leading `\r`s are dropped too (as Redis does), so `\r\n\r\n` separators and a stray `\r`
    // before a command name do no harm.
    while (pos < stop && (isBlank(line[pos] as number) || line[pos] === CR)) pos++;
    if (pos === stop) return undefined; // blank line: ignored
    const request = this.#request;
    request.begin(line);
    // Token index of the argument that takes the rest of the line, if the command has one.
    let restAt = -1;
    let spec: CommandSpec | undefined;
    while (pos < stop) {
      let tokenEnd = pos + 1;
      while (tokenEnd < stop && !isBlank(line[tokenEnd] as number)) tokenEnd++;
      request.add(pos, tokenEnd);
      if (request.length === 1) {
        spec = lookupCommand(line.subarray(pos, tokenEnd));
        if (spec?.inlineRest !== undefined) restAt = spec.inlineRest + 1;
      }
      if (request.length === restAt && tokenEnd < stop) {
        // Options that come before the last argument (PUBLISH's DELAY ms) are words of their own.
        const words = spec?.optionsBeforeLast === true ? optionWordsAt(spec, line, tokenEnd + 1, stop) : 0;
        if (words > 0) {
          restAt += words;
        } else {
          // The rest of the line after the one separator, verbatim.
          request.add(tokenEnd + 1, stop);
          break;
        }
      }
      pos = tokenEnd;
      while (pos < stop && isBlank(line[pos] as number)) pos++;
    }
    if (looksLikeHttp(request)) {
      request.clear();
      return this.#fail(
        ProtocolErrorCode.CROSS_PROTOCOL,
        `an HTTP request ('${showText(line.subarray(start, Math.min(stop, start + 64)), 64)}') was sent to the Hati protocol port`,
      );
    }
    this.#onCommand(request);
    request.clear();
    return undefined;
  }

  #fail(code: ProtocolErrorCode, message: string): ProtocolError {
    this.#error = new ProtocolError(code, message);
    // Nothing more will be parsed: release what was held.
    this.#held.clear();
    this.#request.clear();
    this.#argsHeld = EMPTY_ARGS;
    this.#argsHeldBytes = 0;
    this.#rest = undefined;
    return this.#error;
  }

  #inlineTooLarge(): string {
    return `inline request longer than ${this.#maxInline} bytes`;
  }

  #tooLarge(state: number, number: number, chunk: Buffer, pos: number): string {
    // Show the length as sent: the digits read so far, then those that follow in this chunk.
    let shown = String(number);
    for (let i = pos + 1; i < chunk.length && shown.length < MAX_HEADER_DIGITS; i++) {
      const byte = chunk[i] as number;
      if (byte < ZERO || byte > NINE) break;
      shown += String.fromCharCode(byte);
    }
    return state === ARRAY_LENGTH
      ? `request of ${shown} arguments exceeds the limit of ${this.#maxArray}`
      : `bulk string of ${shown} bytes exceeds the limit of ${this.#maxBulk}`;
  }

  #badHeader(state: number, byte?: number): string {
    const what = state === ARRAY_LENGTH ? 'argument count' : 'bulk length';
    if (byte === undefined) return `invalid ${what}: more than ${MAX_HEADER_DIGITS} digits`;
    return `invalid ${what}: unexpected '${showByte(byte)}' (expected digits then CRLF)`;
  }

  #missingCrlf(): string {
    return `expected CRLF after the ${this.#bulkLength} bytes of argument ${this.#argCount + 1}`;
  }
}

/**
 * How many words the option at `line[pos..stop)` takes (its token and values), or 0 when the
 * next word is not an option of `spec`, or nothing would be left for the last argument after it
 * (then the words are that argument: `PUBLISH r k DELAY 5` publishes "DELAY 5").
 */
function optionWordsAt(spec: CommandSpec, line: Buffer, pos: number, stop: number): number {
  let end = pos;
  while (end < stop && !isBlank(line[end] as number)) end++;
  const word = line.subarray(pos, end);
  const option = lookupOption(spec, word);
  if (option === undefined) return 0;
  const words = 1 + (option.args?.length ?? 0);
  // Count the words that follow: the option's values, then at least one for the last argument.
  let seen = 1;
  let at = end;
  while (at < stop && seen <= words) {
    while (at < stop && isBlank(line[at] as number)) at++;
    if (at === stop) break;
    while (at < stop && !isBlank(line[at] as number)) at++;
    seen++;
  }
  return seen > words ? words : 0;
}
