/** Bounds on what one request (or reply) may hold; beyond them a parser reports `TOO_LARGE`. */
export interface ParserLimits {
  /**
   * Bytes of one inline line, without its line ending. Detected while the line is still
   * incomplete, so a line without newline is never buffered much beyond this.
   * @default 64 * 1024
   */
  maxInlineLength: number;
  /**
   * Bytes of one bulk string. Detected as soon as its `$<len>` header is read, before any of
   * its payload is buffered.
   * @default 512 * 1024 * 1024
   */
  maxBulkLength: number;
  /**
   * Elements of one array (arguments of one RESP request). Detected as soon as its `*<n>`
   * header is read.
   * @default 1024 * 1024
   */
  maxArrayLength: number;
}

export const defaultLimits: ParserLimits = Object.freeze({
  maxInlineLength: 64 * 1024,
  maxBulkLength: 512 * 1024 * 1024,
  maxArrayLength: 1024 * 1024,
});

/** Fills in defaults and checks each limit is a whole number of bytes (or elements). */
export function resolveLimits(limits: Partial<ParserLimits> | undefined): ParserLimits {
  const resolved: ParserLimits = {
    maxInlineLength: limits?.maxInlineLength ?? defaultLimits.maxInlineLength,
    maxBulkLength: limits?.maxBulkLength ?? defaultLimits.maxBulkLength,
    maxArrayLength: limits?.maxArrayLength ?? defaultLimits.maxArrayLength,
  };
  for (const [name, value] of Object.entries(resolved)) {
    // A programming error, not a wire error: it never reaches a client, so no protocol code.
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`parser limit ${name} must be a whole number >= 0, got ${String(value)}`);
    }
  }
  return resolved;
}
