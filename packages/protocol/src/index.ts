export {
  type ArgKind,
  type ArgSpec,
  type CommandName,
  type CommandSpec,
  checkArity,
  commands,
  lookupCommand,
  type ReplyKind,
  type TypedCommandSpec,
  unknownCommand,
} from './commands.js';
export { ProtocolError, ProtocolErrorCode } from './errors.js';
export { defaultLimits, type ParserLimits } from './options.js';
export { type Reply, ReplyError, ReplyParser } from './reply-parser.js';
export { encodeCommand, encodeReply, ReplyWriter } from './reply-writer.js';
export { RequestParser } from './request-parser.js';
export type { ConnectionCounts, ListenerName, StatsSnapshot } from './stats.js';
