// An incremental reader of RESP2 and RESP3 replies, written apart from @hati/protocol on
// purpose: tests that read the server's bytes with it do not share the protocol package's bugs.
// It favours being obviously right over being fast: a payload is taken once it is complete, a
// line is looked for again whenever more bytes come.

/** An error reply (`-CODE message`, or a RESP3 blob error): `code` is the first word, `message` the rest. */
export class ReplyError extends Error {
  override readonly name = 'ReplyError';
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** A RESP3 map (`%`): its keys as text (a bulk key decoded as UTF-8), in the order sent. */
export interface ReplyMap {
  [key: string]: Reply;
}

/**
 * A reply as read. RESP2: `+` simple string → `string`; `-` error → `ReplyError`; `:` integer →
 * `number`; `$` bulk string → `Buffer` (a copy); `$-1` and `*-1` → `null`; `*` array → `Reply[]`.
 * RESP3: `_` null → `null`; `#` boolean → `boolean`; `,` double → `number` (`inf`, `-inf`,
 * `nan` included); `(` big number → `bigint`; `!` blob error → `ReplyError`; `=` verbatim string
 * → `Buffer` without its `txt:` format; `~` set and `>` push → `Reply[]`; `%` map → `ReplyMap`;
 * `|` attributes are read and dropped.
 */
export type Reply = string | number | bigint | boolean | Buffer | null | ReplyError | Reply[] | ReplyMap;

const CRLF = Buffer.from('\r\n');
const INTEGER = /^-?\d+$/;
const DOUBLE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Type bytes. */
const SIMPLE = 0x2b; // +
const ERROR = 0x2d; // -
const NUMBER = 0x3a; // :
const BULK = 0x24; // $
const ARRAY = 0x2a; // *
const NULL = 0x5f; // _
const BOOLEAN = 0x23; // #
const FLOAT = 0x2c; // ,
const BIG = 0x28; // (
const BLOB_ERROR = 0x21; // !
const VERBATIM = 0x3d; // =
const MAP = 0x25; // %
const SET = 0x7e; // ~
const PUSH = 0x3e; // >
const ATTRIBUTE = 0x7c; // |

/** An aggregate being filled: `remaining` elements to go (a map counts keys and values). */
interface Frame {
  readonly type: number;
  remaining: number;
  readonly items: Reply[];
}

/** `-CODE message` → ReplyError('CODE', 'message'). */
function errorOf(text: string): ReplyError {
  const space = text.indexOf(' ');
  return space === -1 ? new ReplyError(text, '') : new ReplyError(text.slice(0, space), text.slice(space + 1));
}

function integerOf(line: string, what: string): number {
  if (!INTEGER.test(line)) throw new Error(`invalid ${what} ${JSON.stringify(line)}`);
  return Number(line);
}

function keyText(key: Reply): string {
  if (Buffer.isBuffer(key)) return key.toString('utf8');
  if (typeof key === 'string') return key;
  return typeof key === 'object' && key !== null ? showReply(key) : String(key);
}

function build(frame: Frame): Reply {
  if (frame.type !== MAP) return frame.items;
  const map: ReplyMap = {};
  for (let i = 0; i < frame.items.length; i += 2) {
    // defineProperty: a key such as `__proto__` is a key like any other.
    Object.defineProperty(map, keyText(frame.items[i] as Reply), {
      value: frame.items[i + 1],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return map;
}

export class RespReader {
  readonly #onReply: (reply: Reply, push: boolean) => void;
  /** Bytes not yet consumed. */
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes the next step needs before it can get anywhere. */
  #need = 1;
  #stack: Frame[] = [];
  #error: Error | undefined;

  /** `onReply` gets each complete top-level reply in order; `push` is true for a RESP3 push (`>`). */
  constructor(onReply: (reply: Reply, push: boolean) => void) {
    this.#onReply = onReply;
  }

  /** Bytes held waiting for the rest of a reply. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Reads `chunk` (split anywhere), calling onReply per complete reply. Returns an error once the
   * stream cannot be read (and the same error for every later chunk); never throws.
   */
  push(chunk: Buffer): Error | undefined {
    if (this.#error !== undefined) return this.#error;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered < this.#need) return undefined;
    const buf = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    let pos = 0;
    try {
      for (;;) {
        const next = this.#step(buf, pos);
        if (next === undefined) break;
        pos = next;
      }
    } catch (err) {
      this.#error = new Error(`RESP: ${(err as Error).message} at byte ${pos} of the unread input`);
      this.#chunks = [];
      this.#buffered = 0;
      return this.#error;
    }
    const tail = buf.subarray(pos);
    this.#chunks = tail.length > 0 ? [tail] : [];
    this.#buffered = tail.length;
    return undefined;
  }

  /** Reads one header or scalar at `pos`: the position after it, or undefined (and #need) when incomplete. */
  #step(buf: Buffer, pos: number): number | undefined {
    if (pos >= buf.length) {
      this.#need = 1;
      return undefined;
    }
    const type = buf[pos] as number;
    const eol = buf.indexOf(CRLF, pos + 1);
    if (eol === -1) {
      this.#need = buf.length - pos + 1;
      return undefined;
    }
    const line = buf.toString('utf8', pos + 1, eol);
    const next = eol + 2;
    switch (type) {
      case SIMPLE:
        this.#value(line);
        return next;
      case ERROR:
        this.#value(errorOf(line));
        return next;
      case NUMBER:
        this.#value(integerOf(line, 'integer'));
        return next;
      case NULL:
        if (line !== '') throw new Error(`invalid null ${JSON.stringify(line)}`);
        this.#value(null);
        return next;
      case BOOLEAN:
        if (line !== 't' && line !== 'f') throw new Error(`invalid boolean ${JSON.stringify(line)}`);
        this.#value(line === 't');
        return next;
      case FLOAT: {
        const special: Record<string, number> = { inf: Infinity, '-inf': -Infinity, nan: Number.NaN };
        const value = special[line.toLowerCase()] ?? (DOUBLE.test(line) ? Number(line) : undefined);
        if (value === undefined) throw new Error(`invalid double ${JSON.stringify(line)}`);
        this.#value(value);
        return next;
      }
      case BIG:
        if (!INTEGER.test(line)) throw new Error(`invalid big number ${JSON.stringify(line)}`);
        this.#value(BigInt(line));
        return next;
      case BULK:
      case BLOB_ERROR:
      case VERBATIM: {
        const length = integerOf(line, 'length');
        if (length === -1 && type === BULK) {
          this.#value(null);
          return next;
        }
        if (length < 0) throw new Error(`invalid length ${length}`);
        const end = next + length;
        if (buf.length < end + 2) {
          this.#need = end + 2 - pos;
          return undefined;
        }
        if (buf[end] !== 0x0d || buf[end + 1] !== 0x0a) throw new Error('payload not followed by CRLF');
        const payload = Buffer.from(buf.subarray(next, end));
        if (type === BLOB_ERROR) this.#value(errorOf(payload.toString('utf8')));
        else if (type === BULK) this.#value(payload);
        else if (payload.length >= 4 && payload[3] === 0x3a) this.#value(payload.subarray(4));
        else throw new Error('verbatim string without its format');
        return end + 2;
      }
      case ARRAY:
      case SET:
      case PUSH:
      case MAP:
      case ATTRIBUTE: {
        const count = integerOf(line, 'length');
        if (count === -1 && type === ARRAY) {
          this.#value(null);
          return next;
        }
        if (count < 0) throw new Error(`invalid length ${count}`);
        const frame: Frame = { type, remaining: type === MAP || type === ATTRIBUTE ? 2 * count : count, items: [] };
        if (frame.remaining > 0) this.#stack.push(frame);
        else if (type !== ATTRIBUTE) this.#value(build(frame), type === PUSH);
        return next;
      }
      default:
        throw new Error(`unexpected type byte 0x${type.toString(16).padStart(2, '0')}`);
    }
  }

  /** A complete value: into the aggregate being filled, or out as a reply. */
  #value(reply: Reply, push = false): void {
    let value = reply;
    let isPush = push;
    for (;;) {
      const top = this.#stack.at(-1);
      if (top === undefined) {
        this.#onReply(value, isPush);
        return;
      }
      top.items.push(value);
      if (--top.remaining > 0) return;
      this.#stack.pop();
      // An attribute describes the value after it and is not an element of its own.
      if (top.type === ATTRIBUTE) return;
      value = build(top);
      isPush = top.type === PUSH && this.#stack.length === 0;
    }
  }
}

/** One command as a RESP array of bulk strings (strings as UTF-8). */
export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, CRLF);
  }
  return Buffer.concat(parts);
}

/** A reply as one readable line, for assertion and error messages. */
export function showReply(reply: Reply | undefined): string {
  if (reply === undefined) return 'no reply';
  if (reply instanceof ReplyError) return `-${reply.code}${reply.message === '' ? '' : ` ${reply.message}`}`;
  const text = JSON.stringify(reply, (_, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (v instanceof ReplyError) return showReply(v);
    if (typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'Buffer') {
      return Buffer.from((v as { data: number[] }).data).toString('utf8');
    }
    return v;
  });
  return text.length > 200 ? `${text.slice(0, 200)}… (${text.length} characters)` : text;
}
