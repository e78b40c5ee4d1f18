export { Auth, checkAccess, User } from './auth.js';
export {
  applyRecord,
  BACKUP_DEFAULT_COUNT,
  BACKUP_MAX_COUNT,
  BACKUP_MAX_SNAPSHOTS,
  BACKUP_REPLY_BYTES,
  type BackupParts,
  type BackupTarget,
  type BackupTargetOptions,
  backupSnapshotsHeld,
  openBackupTarget,
} from './backup.js';
export {
  type CertificateOptions,
  type CertificatePair,
  type CertificateSet,
  certificateDefaults,
  createCertificates,
} from './certificates.js';
export { Dispatcher, type PendingReply, type WriteReply, writeReply } from './dispatcher.js';
export { describeError, ListenError, ServerError, ServerErrorCode } from './errors.js';
export { type Handler, type HandlerName, handlers } from './handlers.js';
export type { ListenerAddress } from './hati-server.js';
export { HatiServer, type ServerAddresses } from './hati-server.js';
export { type LogFields, LogFormat, Logger, LogLevel } from './logger.js';
export { type Durability, type ListenAddress, type ServerOptions, serverDefaults, type TlsFiles } from './options.js';
export { type KeyEvent, PubSub } from './pubsub.js';
export { RpcServer } from './rpc-server.js';
export { Session, type SessionInfo, Sessions } from './session.js';
export { type ConnectionCounts, Listener, ServerStats, type StatsSnapshot } from './stats.js';
export { type AuthClients, authClientsOf, TLS_HANDSHAKE_MS } from './tls.js';
export {
  BROKER_RIGHTS,
  checkUserRecord,
  type HashOptions,
  hashPassword,
  KEY_RIGHTS,
  newToken,
  parseBrokerRule,
  parseKeyRule,
  readUsersFile,
  type UserRecord,
  type UsersFile,
  writeUsersFile,
} from './users-file.js';
