// The commands that make up most traffic, run with their arguments read in place. A request's
// arguments are ranges of the input chunk (see Request in @hati/protocol); turning each into a
// Buffer costs about 100 ns, as much as a whole memory GET should. So GET and SET of the memory
// store read the ranges and write their reply straight into the connection's writer, and SET of
// the hdd store hands the ranges to the engine, which copies each once into the record it writes.
//
// A hot handler only skips work: it answers the plain form it knows and returns false for
// anything else (another storage type, options, arguments that came in several chunks, a value
// it would have to reject), and the dispatcher then runs the command's handler in handlers.ts,
// which defines the behaviour and every error. The dispatcher has already resolved the command,
// checked its arity and applied the checks in front of every command.
import type { CommandName, ReplyWriter, Request } from '@hati/protocol';
import { ttlIn } from './arguments.js';
import { setEvents } from './handlers.js';
import type { Hub } from './hub.js';

/**
 * Answers `request` into `out` and returns true; or returns a promise of the reply's value, which
 * the dispatcher writes as it writes the value of the command's handler; or returns false having
 * done nothing.
 */
export type HotHandler = (hub: Hub, request: Request, out: ReplyWriter) => boolean | Promise<unknown>;

const MEMORY = Buffer.from('MEMORY');
const HDD = Buffer.from('HDD');
/** SET's reply value once stored: `+OK` (reply kind `stored`). */
const stored = (): true => true;

export const hotHandlers: Partial<Record<CommandName, HotHandler>> = {
  /** `GET memory <key>` */
  GET(hub, request, out) {
    const data = request.data;
    if (data === undefined || !request.is(1, MEMORY)) return false;
    const memory = hub.storage.memory;
    const handle = memory.lookup(data, request.start(2), request.end(2));
    if (handle === -1) {
      out.nil();
    } else {
      const start = memory.valueStart(handle);
      out.bulkRange(memory.valueSlab(handle), start, start + memory.valueLength(handle));
    }
    return true;
  },

  /** `SET memory|hdd <ttl> <key> <value>`, without options. */
  SET(hub, request, out) {
    const data = request.data;
    if (data === undefined || request.length !== 5) return false;
    const memory = request.is(1, MEMORY);
    if (!memory && !request.is(1, HDD)) return false;
    const ttl = ttlIn(data, request.start(2), request.end(2));
    if (ttl < 0) return false;
    const pubsub = hub.pubsub;
    if (memory) {
      hub.storage.memory.setRange(data, request.start(3), request.end(3), data, request.start(4), request.end(4), ttl);
      // The key as a Buffer only when someone listens for keyspace events.
      if (pubsub.active) setEvents(pubsub, 'memory', request.arg(3), ttl);
      out.ok();
      return true;
    }
    const written = hub.storage.hdd.setRange(
      data,
      request.start(3),
      request.end(3),
      data,
      request.start(4),
      request.end(4),
      ttl,
    );
    if (!pubsub.active) return written.then(stored);
    // Copied now: the input chunk may be reused before the write is done.
    const key = Buffer.from(request.arg(3));
    return written.then(() => {
      setEvents(pubsub, 'hdd', key, ttl);
      return true;
    });
  },
};
