import { type Reply, ReplyError, ReplyMap, ReplyPush } from '@hati/protocol';

/** A bulk string as redis-cli shows it: quoted, with non-printable bytes escaped. */
export function quote(bytes: Buffer): string {
  let out = '"';
  for (const byte of bytes) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x5c) out += '\\\\';
    else if (byte === 0x0a) out += '\\n';
    else if (byte === 0x0d) out += '\\r';
    else if (byte === 0x09) out += '\\t';
    else if (byte < 0x20 || byte >= 0x7f) out += `\\x${byte.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(byte);
  }
  // Valid UTF-8 text above ASCII reads better as text, as redis-cli --no-raw shows it escaped;
  // we keep redis-cli's escaping so output is unambiguous.
  return `${out}"`;
}

/** Numbered lines, as redis-cli shows arrays (`1) ...`) and maps (`1# key => value`). */
function numbered(items: string[][], mark: string, indent: string): string {
  const width = String(items.length).length;
  return items
    .map((parts, i) => {
      const label = `${String(i + 1).padStart(width)}${mark} `;
      const inner = `${indent}${' '.repeat(label.length)}`;
      const body = parts.length === 1 ? (parts[0] as string) : `${parts[0]} => ${parts[1]}`;
      return `${i === 0 ? '' : indent}${label}${body.split('\n').join(`\n${inner.slice(indent.length)}`)}`;
    })
    .join('\n');
}

/** A reply formatted as redis-cli does on a terminal (RESP3 types included, as redis-cli -3 shows them). */
export function formatReply(reply: Reply, indent = ''): string {
  if (reply instanceof ReplyError) return `(error) ${reply.code}${reply.message === '' ? '' : ` ${reply.message}`}`;
  if (reply === null) return '(nil)';
  if (typeof reply === 'number') return Number.isInteger(reply) ? `(integer) ${reply}` : `(double) ${reply}`;
  if (typeof reply === 'bigint') return `(big number) ${reply}`;
  if (typeof reply === 'boolean') return `(${reply})`;
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return quote(reply);
  if (reply instanceof ReplyMap) {
    if (reply.size === 0) return '(empty hash)';
    return numbered(
      [...reply].map(([key, value]) => [quote(Buffer.from(key)), formatReply(value, '')]),
      '#',
      indent,
    );
  }
  const items = reply instanceof ReplyPush ? reply.items : reply;
  if (items.length === 0) return '(empty array)';
  return numbered(
    items.map((item) => [formatReply(item, '')]),
    ')',
    indent,
  );
}

/** A reply as redis-cli --raw prints it (what scripts read): bytes as they are. */
export function rawReply(reply: Reply): Buffer {
  if (reply instanceof ReplyError) return Buffer.from(`${reply.code} ${reply.message}`);
  if (reply === null) return Buffer.alloc(0);
  if (typeof reply !== 'object') return Buffer.from(String(reply));
  if (Buffer.isBuffer(reply)) return reply;
  const items =
    reply instanceof ReplyMap
      ? [...reply].flatMap(([key, value]) => [Buffer.from(key), value])
      : reply instanceof ReplyPush
        ? reply.items
        : reply;
  return Buffer.concat(items.flatMap((item, i) => (i === 0 ? [rawReply(item)] : [Buffer.from('\n'), rawReply(item)])));
}

/** A bulk string holding a JSON document (STATS), indented for reading; undefined if it is not JSON. */
export function prettyJson(reply: Reply): string | undefined {
  if (!Buffer.isBuffer(reply)) return undefined;
  try {
    return JSON.stringify(JSON.parse(reply.toString('utf8')), null, 2);
  } catch {
    return undefined;
  }
}
