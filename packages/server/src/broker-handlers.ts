// What each broker command of the table does: arguments read with the parsers of arguments.ts,
// then one call on the broker. Memory queues answer synchronously; hdd queues answer with a
// promise that settles once the change is stored.
import type { BrokerSession, Delivery, QueueOptions } from '@hati/broker';
import { commands, type ReplyWriter, readOptions } from '@hati/protocol';
import { countArg, msArg, textArg } from './arguments.js';
import type { Hub } from './hub.js';
import type { Session } from './session.js';

type BrokerHandler = (hub: Hub, session: Session, args: Buffer[]) => unknown;

const OK = 'OK';

/** Writes one delivery: `[id, deliveries, routingKey, message]`, plus `[reason, queue, deliveries]` when dead-lettered. */
export function writeDelivery(out: ReplyWriter, delivery: Delivery): void {
  const death = delivery.death;
  out.arrayHeader(death === undefined ? 4 : 5);
  out.bulk(delivery.id);
  out.integer(delivery.deliveries);
  out.bulk(delivery.routingKey);
  out.bulk(delivery.message);
  if (death !== undefined) {
    out.arrayHeader(3);
    out.bulk(death.reason);
    out.bulk(death.queue);
    out.integer(death.deliveries);
  }
}

/**
 * The session's broker session, opened on first use; closing the connection closes it (its
 * consumers stop, its leased messages go back). JSON-RPC calls share the hub's.
 */
function brokerSession(hub: Hub, session: Session): BrokerSession {
  if (session.listener === 'rpc') return hub.rpcBroker;
  let opened = session.broker;
  if (opened === undefined) {
    opened = hub.broker.openSession(
      (tag, queue, delivery) => {
        // `delivery`, the consumer tag, the queue, then the delivery as FETCH replies it.
        session.push((out) => {
          out.pushHeader(4);
          out.bulk('delivery');
          out.bulk(tag);
          out.bulk(queue);
          writeDelivery(out, delivery);
        });
      },
      (tag, queue) => {
        // The queue was deleted: the consumer is gone (RabbitMQ's basic.cancel from the server).
        session.push((out) => {
          out.pushHeader(3);
          out.bulk('cancelled');
          out.bulk(tag);
          out.bulk(queue);
        });
      },
    );
    const broker = opened;
    session.broker = broker;
    session.onClose(() => hub.broker.closeSession(broker));
  }
  return opened;
}

function optionalCount(arg: Buffer | undefined, what: string, min: number, max: number, fallback: number): number {
  return arg === undefined ? fallback : countArg(arg, what, min, max);
}

const COUNT_MAX = 2 ** 32 - 1;

/** A listing shows only the names its user has some broker right on. */
function visible(session: Session, names: string[]): string[] {
  const user = session.user;
  if (user === null || user.all) return names;
  return names.filter((name) => user.canView(Buffer.from(name)));
}

export const brokerHandlers = {
  CREATEROUTER(hub, _session, args) {
    const created = hub.broker.createRouter(textArg(args[1] as Buffer), textArg(args[2] as Buffer));
    return created === undefined ? OK : created.then(() => OK);
  },
  CREATEQUEUE(hub, _session, args) {
    const options = readOptions(commands.CREATEQUEUE, args, 3);
    const value = (token: string) => options.get(token)?.[0] as Buffer | undefined;
    const ms = (token: string) => {
      const arg = value(token);
      return arg === undefined ? undefined : msArg(arg, token);
    };
    const count = (token: string) => {
      const arg = value(token);
      return arg === undefined ? undefined : countArg(arg, token, 0, Number.MAX_SAFE_INTEGER);
    };
    const deadLetter = value('DEADLETTER');
    const overflow = value('OVERFLOW');
    const settings: QueueOptions = {
      ackTimeoutMs: ms('ACKTIMEOUT'),
      maxDeliveries: count('MAXDELIVERIES'),
      deadLetter: deadLetter === undefined ? undefined : textArg(deadLetter),
      maxLength: count('MAXLENGTH'),
      overflow: overflow === undefined ? undefined : (textArg(overflow).toLowerCase() as QueueOptions['overflow']),
      ttlMs: ms('TTL'),
      dedupWindowMs: ms('DEDUPWINDOW'),
    };
    const created = hub.broker.createQueue(textArg(args[1] as Buffer), textArg(args[2] as Buffer), settings);
    return created === undefined ? OK : created.then(() => OK);
  },
  BIND(hub, _session, args) {
    const bound = hub.broker.bind(textArg(args[1] as Buffer), textArg(args[2] as Buffer), textArg(args[3] as Buffer));
    return bound === undefined ? OK : bound.then(() => OK);
  },
  UNBIND(hub, _session, args) {
    return hub.broker.unbind(textArg(args[1] as Buffer), textArg(args[2] as Buffer), textArg(args[3] as Buffer));
  },
  PUBLISH(hub, _session, args) {
    const last = args.length - 1;
    const options = readOptions(commands.PUBLISH, args, 3, last);
    const delay = options.get('DELAY')?.[0] as Buffer | undefined;
    const ttl = options.get('TTL')?.[0] as Buffer | undefined;
    const id = options.get('ID')?.[0] as Buffer | undefined;
    return hub.broker.publish(textArg(args[1] as Buffer), textArg(args[2] as Buffer), args[last] as Buffer, {
      ...(delay !== undefined && { delayMs: msArg(delay, 'DELAY') }),
      ...(ttl !== undefined && { ttlMs: msArg(ttl, 'TTL') }),
      ...(id !== undefined && { id: textArg(id) }),
    });
  },
  FETCH(hub, session, args) {
    const count = optionalCount(args[2], 'count', 1, 1000, 1);
    const waitMs = args[3] === undefined ? 0 : msArg(args[3], 'waitMs');
    return hub.broker.fetch(brokerSession(hub, session), textArg(args[1] as Buffer), count, waitMs);
  },
  ACK(hub, _session, args) {
    return hub.broker.ack(textArg(args[1] as Buffer), args.slice(2).map(textArg));
  },
  NACK(hub, _session, args) {
    const options = readOptions(commands.NACK, args, 3);
    return hub.broker.nack(
      textArg(args[1] as Buffer),
      textArg(args[2] as Buffer),
      options.has('DROP') ? 'drop' : 'requeue',
    );
  },
  TOUCH(hub, _session, args) {
    return hub.broker.touch(textArg(args[1] as Buffer), textArg(args[2] as Buffer));
  },
  CONSUME(hub, session, args) {
    const prefetch = optionalCount(args[2], 'prefetch', 0, 65_535, 0);
    return hub.broker.consume(brokerSession(hub, session), textArg(args[1] as Buffer), prefetch);
  },
  CANCEL(hub, session, args) {
    return session.broker === undefined ? false : hub.broker.cancel(session.broker, textArg(args[1] as Buffer));
  },
  GETQUEUE(hub, _session, args) {
    return hub.broker.getQueue(textArg(args[1] as Buffer));
  },
  GETROUTER(hub, _session, args) {
    return hub.broker.getRouter(textArg(args[1] as Buffer));
  },
  LISTQUEUE(hub, session, args) {
    return visible(session, hub.broker.listQueues(args[1] === undefined ? undefined : textArg(args[1])));
  },
  LISTROUTER(hub, session, args) {
    return visible(session, hub.broker.listRouters(args[1] === undefined ? undefined : textArg(args[1])));
  },
  FLUSH(hub, _session, args) {
    return hub.broker.flush(textArg(args[1] as Buffer));
  },
  DELETEQUEUE(hub, _session, args) {
    return hub.broker.deleteQueue(textArg(args[1] as Buffer));
  },
  DELETEROUTER(hub, _session, args) {
    return hub.broker.deleteRouter(textArg(args[1] as Buffer));
  },
  DEADLETTERS(hub, _session, args) {
    return hub.broker.deadLetters(textArg(args[1] as Buffer), optionalCount(args[2], 'count', 1, 1000, 10));
  },
  REPLAYDEAD(hub, _session, args) {
    return hub.broker.replayDead(textArg(args[1] as Buffer), optionalCount(args[2], 'count', 1, COUNT_MAX, 1000));
  },
  PURGEDEAD(hub, _session, args) {
    return hub.broker.purgeDead(textArg(args[1] as Buffer));
  },
} satisfies Record<string, BrokerHandler>;
