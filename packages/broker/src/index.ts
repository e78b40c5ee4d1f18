export {
  Broker,
  type BrokerStats,
  type DeadLetter,
  NackMode,
  type PublishOptions,
  type QueueInfo,
  type QueueOptions,
  type QueueStats,
  type RestoredDead,
  type RestoredMessage,
  type RouterInfo,
} from './broker.js';
export { BrokerError, BrokerErrorCode } from './errors.js';
export { DeadReason, type Death, type Delivery } from './message.js';
export { MAX_NAME, MAX_ROUTING_KEY } from './names.js';
export { type BrokerOptions, defaults, MAX_FETCH, MAX_MS, MAX_PREFETCH, queueDefaults } from './options.js';
export { Overflow, type QueueSettings, QueueType } from './queue.js';
export { RouterKind } from './router.js';
export { BrokerSession, type CancelTarget, type PushTarget } from './session.js';
export {
  type BindingItem,
  BrokerSnapshot,
  type DeadItem,
  type MessageItem,
  type QueueItem,
  type RouterItem,
  type SnapshotItem,
} from './snapshot.js';
