// Byte constants shared by the parsers and the writer.

export const TAB = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SPACE = 0x20;
export const PLUS = 0x2b;
export const MINUS = 0x2d;
export const COLON = 0x3a;
export const DOLLAR = 0x24;
export const STAR = 0x2a;
export const ZERO = 0x30;
export const NINE = 0x39;
export const UPPER_A = 0x41;
export const UPPER_Z = 0x5a;
export const LOWER_A = 0x61;
export const LOWER_Z = 0x7a;

// RESP3 type bytes, and the letters of its booleans.
export const BANG = 0x21;
export const HASH = 0x23;
export const PERCENT = 0x25;
export const LEFT_PAREN = 0x28;
export const COMMA = 0x2c;
export const EQUALS = 0x3d;
export const GREATER_THAN = 0x3e;
export const UNDERSCORE = 0x5f;
export const LOWER_F = 0x66;
export const LOWER_T = 0x74;
export const PIPE = 0x7c;
export const TILDE = 0x7e;

/**
 * Most digits accepted in a `*<n>` or `$<len>` header. Any limit fits in 16 digits; the slack
 * admits a few leading zeros while keeping a header line bounded (about 32 bytes).
 */
export const MAX_HEADER_DIGITS = 30;

/** Shows a byte in an error message: printable ASCII as itself, anything else as `\xHH`. */
export function showByte(byte: number): string {
  if (byte === 0x5c) return '\\\\';
  if (byte === 0x27) return "\\'";
  if (byte >= 0x20 && byte < 0x7f) return String.fromCharCode(byte);
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}

/** Shows a string in an error message: controls escaped, truncated to `max` characters. */
export function showText(text: string | Uint8Array, max: number): string {
  let shown = '';
  const length = Math.min(text.length, max);
  for (let i = 0; i < length; i++) {
    const code = typeof text === 'string' ? text.charCodeAt(i) : (text[i] as number);
    // Bytes above 0x7f are escaped (they may not be UTF-8); characters of a string are kept
    // unless they are controls.
    shown += typeof text === 'string' && code >= 0xa0 ? text.charAt(i) : showByte(code);
  }
  return text.length > max ? `${shown}...` : shown;
}
