/**
 * The bytes of an unfinished line or payload, copied out of earlier chunks, so that a parser
 * keeps no reference to a chunk once `push` returns (callers may reuse their read buffers).
 * Joined once, when the rest has come: never quadratic copying.
 */
export class HeldBytes {
  #pieces: Buffer[] = [];
  #length = 0;

  /** Bytes held. */
  get length(): number {
    return this.#length;
  }

  /** Keeps a copy of `part`. */
  hold(part: Buffer): void {
    if (part.length === 0) return;
    this.#pieces.push(Buffer.from(part));
    this.#length += part.length;
  }

  /** What was held followed by `last` (not copied), as one new buffer; then holds nothing. */
  takeWith(last: Buffer): Buffer {
    this.#pieces.push(last);
    const joined = Buffer.concat(this.#pieces, this.#length + last.length);
    this.clear();
    return joined;
  }

  clear(): void {
    this.#pieces = [];
    this.#length = 0;
  }
}
