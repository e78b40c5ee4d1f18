export {
  BACKUP_RECORD_FIELDS,
  type BackupRecord,
  BackupRecordError,
  type BackupRecordKind,
  type BackupStorageType,
  type BindingRecord,
  type DeadRecord,
  type KeyRecord,
  type MessageRecord,
  type QueueRecord,
  type RouterRecord,
  recordFromFields,
  recordToFields,
} from './backup.js';
export {
  type AclSubcommand,
  type ArgKind,
  type ArgSpec,
  allCommands,
  type BackupSubcommand,
  type ClientSubcommand,
  type CommandAccess,
  type CommandFlags,
  type CommandGroup,
  type CommandName,
  type CommandSpec,
  type CommandSubcommand,
  checkArity,
  commands,
  lookupCommand,
  lookupCommandIn,
  lookupSubcommand,
  type OptionSpec,
  type OptionValues,
  type ReplyKind,
  readOptions,
  type TypedCommandSpec,
  unknownCommand,
  unknownSubcommand,
} from './commands.js';
export {
  BrokerWireCode,
  isWireCode,
  ProtocolError,
  ProtocolErrorCode,
  ServerErrorCode,
  StorageWireCode,
  WireErrorCode,
} from './errors.js';
export { defaultLimits, type ParserLimits } from './options.js';
export { type Reply, ReplyError, ReplyMap, ReplyParser, type ReplyParserOptions, ReplyPush } from './reply-parser.js';
export { encodeCommand, encodeReply, ReplyWriter } from './reply-writer.js';
export { Request, sameWord } from './request.js';
export { RequestParser } from './request-parser.js';
export type {
  ClientInfo,
  ConnectionCounts,
  LatencyHistogram,
  ListenerName,
  QueueStats,
  StatsSnapshot,
} from './stats.js';
