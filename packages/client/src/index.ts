export type { ClientInfo, Reply, StatsSnapshot } from '@hati/protocol';
// Every code a server reply can carry, defined once in @hati/protocol: match `err.code` on these.
export { BrokerWireCode, ProtocolErrorCode, ServerErrorCode, StorageWireCode, WireErrorCode } from '@hati/protocol';
export type {
  CreateQueueOptions,
  DeadLetter,
  DeadReason,
  Death,
  Delivery,
  FetchOptions,
  NackOptions,
  PublishOptions,
  QueueInfo,
  RouterInfo,
  RouterKind,
} from './broker.js';
export type {
  ArgsOf,
  Bytes,
  CallOptions,
  HelloReply,
  ReplyOf,
  ScanOptions,
  ScanReply,
  SetOptions,
  StorageTypeName,
} from './commands.js';
export { CommandMethods } from './commands.js';
export type { ConsumeOptions, Consumer, ConsumerMessage } from './consumer.js';
export { ClientErrorCode, HatiError } from './errors.js';
export { type ClientEvents, type ClientState, HatiClient } from './hati-client.js';
export {
  type ClientOptions,
  clientDefaults,
  type ReconnectOptions,
  type RpcClientOptions,
  type RpcTlsOptions,
  type TcpClientOptions,
  type UnixClientOptions,
} from './options.js';
export { HatiRpcClient } from './rpc-client.js';
export type { MessageListener, PushListener } from './subscriptions.js';

import { HatiClient } from './hati-client.js';
import type { ClientOptions, RpcClientOptions } from './options.js';
import { HatiRpcClient } from './rpc-client.js';

/** A client over TCP (`{ host, port }`) or a UNIX socket (`{ path }`); it starts connecting at once. */
export function createClient(options: ClientOptions = {}): HatiClient {
  return new HatiClient(options);
}

/** A client over JSON-RPC 2.0 on HTTP (`{ url }`). */
export function createRpcClient(options: RpcClientOptions = {}): HatiRpcClient {
  return new HatiRpcClient(options);
}
