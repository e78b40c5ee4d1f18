export { CommandExecutor, type PendingReply, type WriteReply } from './command-executor.js';
export { describeError, ServerError, ServerErrorCode } from './errors.js';
export { HatiServer, type ServerAddresses } from './hati-server.js';
export { Logger, LogLevel } from './logger.js';
export { type Durability, type ListenAddress, type ServerOptions, serverDefaults } from './options.js';
export { RpcServer } from './rpc-server.js';
export { type ConnectionCounts, Listener, ServerStats, type StatsSnapshot } from './stats.js';
