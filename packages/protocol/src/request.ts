// One parsed request, as the request parser hands it over: the arguments as ranges of a buffer
// rather than a Buffer per argument. Making a Buffer view costs about 100 ns, as much as a whole
// memory GET should cost, so the server's hot commands read their arguments in place and only
// the others ask for `args()`.

const EMPTY = Buffer.alloc(0);
const INITIAL_ARGS = 16;

/** ASCII upper case of a byte (a-z only). */
function upperAscii(byte: number): number {
  return byte >= 0x61 && byte <= 0x7a ? byte - 0x20 : byte;
}

/**
 * The arguments of one request; `arg 0` is the command name as sent. Valid only during the
 * parser's onCommand call: the parser reuses the object, and the ranges point into the chunk
 * being parsed. Copy what you keep.
 *
 * Most requests lie within one chunk: then every argument is a range of `data`
 * (`start(i)`..`end(i)`). A request whose arguments came in several chunks is held as copies,
 * one Buffer each: then `data` is undefined and `args()` has them.
 */
export class Request {
  /** Number of arguments, the command name included. */
  length = 0;
  /** The buffer every argument is a range of; undefined when they are separate buffers. */
  data: Buffer | undefined = EMPTY;
  #starts = new Int32Array(INITIAL_ARGS);
  #ends = new Int32Array(INITIAL_ARGS);
  #list: Buffer[] | undefined = undefined;

  /** Where argument `i` starts in `data`. */
  start(i: number): number {
    return this.#starts[i] as number;
  }

  /** Where argument `i` ends in `data` (exclusive). */
  end(i: number): number {
    return this.#ends[i] as number;
  }

  /** Length of argument `i` in bytes. */
  size(i: number): number {
    if (this.data === undefined) return (this.#list as Buffer[])[i]?.length ?? 0;
    return (this.#ends[i] as number) - (this.#starts[i] as number);
  }

  /** Argument `i` as a Buffer (a view of `data`, made now). */
  arg(i: number): Buffer {
    if (this.data === undefined) return (this.#list as Buffer[])[i] as Buffer;
    return this.data.subarray(this.#starts[i], this.#ends[i]);
  }

  /** Every argument as a Buffer, made once per request. */
  args(): Buffer[] {
    if (this.#list !== undefined) return this.#list;
    const data = this.data as Buffer;
    const list: Buffer[] = new Array(this.length);
    for (let i = 0; i < this.length; i++) list[i] = data.subarray(this.#starts[i], this.#ends[i]);
    this.#list = list;
    return list;
  }

  /** Whether argument `i` is `upper` (an upper-case ASCII word) in any case, compared in place. */
  is(i: number, upper: Uint8Array): boolean {
    if (this.data === undefined) {
      const arg = (this.#list as Buffer[])[i] as Buffer;
      return sameWord(arg, 0, arg.length, upper);
    }
    return sameWord(this.data, this.#starts[i] as number, this.#ends[i] as number, upper);
  }

  // The parser's side.

  /** Starts a request whose arguments are ranges of `data`. */
  begin(data: Buffer): void {
    this.data = data;
    this.length = 0;
    this.#list = undefined;
  }

  /** Adds the argument `data[start..end)`. */
  add(start: number, end: number): void {
    const i = this.length;
    if (i === this.#starts.length) this.#grow();
    this.#starts[i] = start;
    this.#ends[i] = end;
    this.length = i + 1;
  }

  /** Makes this the request of separate buffers `args` (arguments that came in several chunks). */
  setList(args: Buffer[]): void {
    this.data = undefined;
    this.length = args.length;
    this.#list = args;
  }

  /** Lets go of the chunk and the arguments once the request has run. */
  clear(): void {
    this.data = EMPTY;
    this.length = 0;
    this.#list = undefined;
  }

  #grow(): void {
    const starts = new Int32Array(this.#starts.length * 2);
    const ends = new Int32Array(this.#ends.length * 2);
    starts.set(this.#starts);
    ends.set(this.#ends);
    this.#starts = starts;
    this.#ends = ends;
  }
}

/** Whether `bytes[start..end)` is the upper-case ASCII word `upper`, in any case. */
export function sameWord(bytes: Uint8Array, start: number, end: number, upper: Uint8Array): boolean {
  if (end - start !== upper.length) return false;
  for (let i = 0; i < upper.length; i++) {
    if (upperAscii(bytes[start + i] as number) !== upper[i]) return false;
  }
  return true;
}
