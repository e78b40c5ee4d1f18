import { type Reply, ReplyError } from '@hati/protocol';

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

/** A reply formatted as redis-cli does on a terminal. */
export function formatReply(reply: Reply, indent = ''): string {
  if (reply instanceof ReplyError) return `(error) ${reply.code}${reply.message === '' ? '' : ` ${reply.message}`}`;
  if (reply === null) return '(nil)';
  if (typeof reply === 'number') return `(integer) ${reply}`;
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return quote(reply);
  if (reply.length === 0) return '(empty array)';
  const width = String(reply.length).length;
  return reply
    .map((item, i) => {
      const label = `${String(i + 1).padStart(width)}) `;
      const body = formatReply(item, `${indent}${' '.repeat(label.length)}`);
      return `${i === 0 ? '' : indent}${label}${body}`;
    })
    .join('\n');
}

/** A reply as redis-cli --raw prints it (what scripts read): bytes as they are. */
export function rawReply(reply: Reply): Buffer {
  if (reply instanceof ReplyError) return Buffer.from(`${reply.code} ${reply.message}`);
  if (reply === null) return Buffer.alloc(0);
  if (typeof reply === 'number' || typeof reply === 'string') return Buffer.from(String(reply));
  if (Buffer.isBuffer(reply)) return reply;
  return Buffer.concat(reply.flatMap((item, i) => (i === 0 ? [rawReply(item)] : [Buffer.from('\n'), rawReply(item)])));
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
