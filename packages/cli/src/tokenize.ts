import { RequestParser } from '@hati/protocol';

/**
 * The arguments of one typed line. Plain lines follow the seed's inline form (the protocol's
 * own parser, so `SET memory 0 greeting hello world` stores `hello world`); a line with quotes
 * is split as redis-cli splits it: "..." with \n \r \t \" \\ \xHH escapes, or '...' verbatim.
 * Returns undefined for a blank line; throws on an unbalanced quote.
 */
export function tokenize(line: string): Buffer[] | undefined {
  if (/["']/.test(line)) return quotedTokens(line);
  let args: Buffer[] | undefined;
  const parser = new RequestParser((request) => {
    args = request.args().map((arg) => Buffer.from(arg));
  });
  const error = parser.push(Buffer.from(`${line}\n`));
  if (error !== undefined) throw new Error(error.message);
  return args;
}

function quotedTokens(line: string): Buffer[] | undefined {
  const tokens: Buffer[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i] as string)) i++;
    if (i >= line.length) break;
    const bytes: number[] = [];
    const quoteChar = line[i];
    if (quoteChar === '"' || quoteChar === "'") {
      i++;
      let closed = false;
      while (i < line.length) {
        const c = line[i] as string;
        if (c === quoteChar) {
          closed = true;
          i++;
          break;
        }
        if (c === '\\' && quoteChar === '"' && i + 1 < line.length) {
          const next = line[i + 1] as string;
          const hex = /^x([0-9a-fA-F]{2})/.exec(line.slice(i + 1));
          if (hex) {
            bytes.push(Number.parseInt(hex[1] as string, 16));
            i += 4;
            continue;
          }
          const escapes: Record<string, number> = { n: 10, r: 13, t: 9, b: 8, a: 7, '"': 34, '\\': 92 };
          bytes.push(...(escapes[next] !== undefined ? [escapes[next] as number] : Buffer.from(next)));
          i += 2;
          continue;
        }
        const char = String.fromCodePoint(line.codePointAt(i) as number);
        bytes.push(...Buffer.from(char));
        i += char.length;
      }
      if (!closed) throw new Error('unbalanced quotes');
      if (i < line.length && !/\s/.test(line[i] as string))
        throw new Error('a closing quote must be followed by a space');
    } else {
      while (i < line.length && !/\s/.test(line[i] as string)) {
        const char = String.fromCodePoint(line.codePointAt(i) as number);
        bytes.push(...Buffer.from(char));
        i += char.length;
      }
    }
    tokens.push(Buffer.from(bytes));
  }
  return tokens.length === 0 ? undefined : tokens;
}
