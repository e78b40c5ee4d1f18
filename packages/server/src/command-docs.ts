// COMMAND, COMMAND INFO and COMMAND DOCS, in Redis 7's reply shapes, from the command table:
// redis-cli shows the docs as hints, and client libraries read key positions from the info.
import type { ArgSpec, CommandSpec, ReplyWriter } from '@hati/protocol';
import type { WriteFrame } from './session.js';

/** Redis's arity: counts the name; negative when it is a minimum. */
function arity(spec: CommandSpec): number {
  const fixed = spec.minArgs === spec.maxArgs;
  return fixed ? spec.minArgs + 1 : -(spec.minArgs + 1);
}

function flagsOf(spec: CommandSpec): string[] {
  const flags: string[] = [];
  if (spec.flags.write) flags.push('write');
  if (spec.flags.read) flags.push('readonly');
  if (spec.flags.admin) flags.push('admin');
  if (spec.flags.pubsub) flags.push('pubsub');
  if (spec.flags.connection) flags.push('fast');
  return flags;
}

/** First key, last key and step: Hati's keys come after the storage type. */
function keyPositions(spec: CommandSpec): [number, number, number] {
  const first = spec.args.findIndex((arg) => arg.kind === 'key');
  if (first === -1) return [0, 0, 0];
  if (spec.repeat > 0) return [first + 1, -1, spec.repeat];
  return [first + 1, first + 1, 1];
}

function writeStrings(out: ReplyWriter, items: string[], set = false): void {
  if (set) out.setHeader(items.length);
  else out.arrayHeader(items.length);
  for (const item of items) out.simple(item);
}

function writeInfo(out: ReplyWriter, spec: CommandSpec): void {
  const [first, last, step] = keyPositions(spec);
  const subcommands = Object.values(spec.subcommands ?? {});
  out.arrayHeader(10);
  out.bulk(spec.name.toLowerCase().replace(' ', '|'));
  out.integer(arity(spec));
  writeStrings(out, flagsOf(spec), true);
  out.integer(first);
  out.integer(last);
  out.integer(step);
  writeStrings(out, [`@${spec.group}`, ...(spec.flags.write ? ['@write'] : spec.flags.read ? ['@read'] : [])], true);
  out.arrayHeader(0);
  out.arrayHeader(0);
  out.arrayHeader(subcommands.length);
  for (const sub of subcommands) writeInfo(out, sub);
}

/** COMMAND / COMMAND INFO: one entry per spec (null for an unknown name with `nulls`). */
export function commandInfo(specs: Array<CommandSpec | undefined>, nulls = false): WriteFrame {
  const listed = nulls ? specs : specs.filter((spec) => spec !== undefined);
  return (out) => {
    out.arrayHeader(listed.length);
    for (const spec of listed) {
      if (spec === undefined) out.nullArray();
      else writeInfo(out, spec);
    }
  };
}

const TYPE_NAMES: Record<ArgSpec['kind'], string> = {
  storageType: 'string',
  ttl: 'integer',
  key: 'key',
  value: 'string',
  integer: 'integer',
  cursor: 'integer',
  pattern: 'pattern',
  channel: 'string',
  name: 'string',
  text: 'string',
  router: 'string',
  queue: 'string',
  routingKey: 'string',
  message: 'string',
  messageId: 'string',
  ms: 'integer',
  count: 'integer',
};

function writeArgument(out: ReplyWriter, arg: ArgSpec, multiple: boolean, token?: string): void {
  const flags = [...(arg.optional ? ['optional'] : []), ...(multiple ? ['multiple'] : [])];
  const fields = 3 + (token === undefined ? 0 : 1) + (flags.length > 0 ? 1 : 0);
  out.mapHeader(fields);
  out.bulk('name');
  out.bulk(arg.name);
  out.bulk('type');
  out.bulk(TYPE_NAMES[arg.kind]);
  out.bulk('display_text');
  out.bulk(arg.name);
  if (token !== undefined) {
    out.bulk('token');
    out.bulk(token);
  }
  if (flags.length > 0) {
    out.bulk('flags');
    writeStrings(out, flags, true);
  }
}

function writeDocs(out: ReplyWriter, spec: CommandSpec): void {
  const subcommands = Object.values(spec.subcommands ?? {});
  out.mapHeader(subcommands.length > 0 ? 5 : 4);
  out.bulk('summary');
  out.bulk(spec.summary);
  out.bulk('since');
  out.bulk(spec.since);
  out.bulk('group');
  out.bulk(spec.group);
  out.bulk('arguments');
  const repeatedFrom = spec.args.length - spec.repeat;
  out.arrayHeader(spec.args.length + spec.options.length);
  spec.args.forEach((arg, i) => {
    writeArgument(out, arg, spec.repeat > 0 && i >= repeatedFrom);
  });
  for (const option of spec.options) {
    const [first] = option.args ?? [];
    if (first === undefined) {
      out.mapHeader(4);
      out.bulk('name');
      out.bulk(option.token.toLowerCase());
      out.bulk('type');
      out.bulk('pure-token');
      out.bulk('token');
      out.bulk(option.token);
      out.bulk('flags');
      writeStrings(out, ['optional'], true);
    } else {
      writeArgument(out, { ...first, optional: true }, false, option.token);
    }
  }
  if (subcommands.length > 0) {
    out.bulk('subcommands');
    out.mapHeader(subcommands.length);
    for (const sub of subcommands) {
      out.bulk(sub.name.toLowerCase().replace(' ', '|'));
      writeDocs(out, sub);
    }
  }
}

/** COMMAND DOCS: a map of command name to its docs; unknown names are left out, as in Redis. */
export function commandDocs(specs: Array<CommandSpec | undefined>): WriteFrame {
  const listed = specs.filter((spec) => spec !== undefined);
  return (out) => {
    out.mapHeader(listed.length);
    for (const spec of listed) {
      out.bulk(spec.name.toLowerCase());
      writeDocs(out, spec);
    }
  };
}
