import type { Socket } from 'node:net';
import {
  type ParserLimits,
  ProtocolError,
  ProtocolErrorCode,
  ReplyWriter,
  type Request,
  RequestParser,
} from '@hati/protocol';
import type { Dispatcher, PendingReply, WriteReply } from './dispatcher.js';
import { describeError } from './errors.js';
import type { InputBudget } from './input-budget.js';
import type { Logger } from './logger.js';
import type { Session, SessionTransport } from './session.js';

/** A reply in request order: bytes ready now, or a writer once the disk has answered. */
interface Slot {
  done: boolean;
  bytes: Buffer | undefined;
  write: WriteReply | undefined;
}

export interface ConnectionOptions {
  limits: Partial<ParserLimits>;
  maxOutputBuffer: number;
  maxPendingReplies: number;
  /** Bytes held by unfinished requests, shared by every connection of the server. */
  inputBudget: InputBudget;
}

/**
 * Replies produced while handling one input chunk are written in one batch, unless they pass
 * this many bytes: then they go out at once, and if the socket does not take them the parser
 * stops until it drains, so one chunk of small requests cannot build a huge reply.
 */
const FLUSH_BYTES = 256 * 1024;
/** Bytes of ready replies that may queue behind one still waiting for the disk. */
const SLOT_BYTES = 1024 * 1024;
/** After its last reply, how long a connection waits for the client to close its side. */
const LINGER_MS = 5_000;

/**
 * Closes `socket` without losing what was written to it: half-close (the FIN follows the last
 * reply), then read and drop whatever the client still sends until it closes its side.
 * Closing a socket with unread input makes the kernel send RST, and an RST makes the client's
 * kernel drop the replies it has not read yet. A client that never stops sending is cut off
 * after LINGER_MS.
 */
export function closeGracefully(socket: Socket, last?: string): void {
  if (socket.destroyed) return;
  // A client that resets meanwhile is no error of ours.
  socket.on('error', () => {});
  socket.removeAllListeners('data');
  socket.on('data', () => {});
  if (last === undefined) socket.end();
  else socket.end(last);
  socket.resume();
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}

/**
 * One client of the TCP or UNIX listener: parses its requests, runs them, and writes the
 * replies in request order.
 *
 * - The replies produced while handling one input chunk go out in one write.
 * - A reply that waits for the disk holds back the replies behind it (slots), never the
 *   commands: those keep running, so pipelined hdd writes share group commits.
 * - Backpressure, checked after every command: while the socket does not drain, or too many
 *   replies (or reply bytes) wait behind the disk, the parser stops where it is and the
 *   connection stops reading. A client that leaves more than `maxOutputBuffer` bytes of
 *   replies unread is disconnected.
 * - Unfinished requests are charged to the server-wide input budget; the connection whose
 *   input passes it gets TOO_LARGE and is closed.
 * - Pushes (pub/sub messages) are written after the replies already owed, batched per microtask.
 * - After QUIT, a framing error, or the client's end of the stream, no further command is
 *   read; the connection closes gracefully once every reply owed has been written.
 * - An HTTP request line or header (a cross-protocol attack from a web page) closes the
 *   connection at once, with nothing after it run.
 */
export class Connection implements SessionTransport {
  readonly socket: Socket;
  readonly session: Session;
  readonly #dispatcher: Dispatcher;
  readonly #logger: Logger;
  readonly #options: ConnectionOptions;
  readonly #parser: RequestParser;
  readonly #out = new ReplyWriter();
  readonly #scratch = new ReplyWriter();
  #slots: Slot[] = [];
  #head = 0;
  /** Bytes of ready replies in `#slots`. */
  #slotBytes = 0;
  /** Bytes of unfinished input charged to the input budget. */
  #charged = 0;
  #ending = false;
  /** The client ended its side while the parser still kept input: end once that has run. */
  #inputEnded = false;
  #closing = false;
  #waitingForDrain = false;
  #slotsFull = false;
  /** An authentication is being checked: nothing after it runs until it settles (Session.barrier). */
  #authenticating = false;
  /**
   * Replies or pushes were written outside a chunk's parse; one flush, queued as a microtask,
   * sends all that the same turn produces (see #flushSoon).
   */
  #flushQueued = false;

  constructor(
    socket: Socket,
    dispatcher: Dispatcher,
    logger: Logger,
    options: ConnectionOptions,
    openSession: (transport: SessionTransport) => Session,
  ) {
    this.socket = socket;
    this.#dispatcher = dispatcher;
    this.session = openSession(this);
    this.#logger = logger;
    this.#options = options;
    this.#parser = new RequestParser((request) => this.#onCommand(request), options.limits);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('drain', () => {
      this.#waitingForDrain = false;
      this.#updateReading();
    });
    socket.on('error', (err) => {
      if (this.#logger.debugEnabled) this.#logger.debug(`connection error: ${err.message}`);
    });
    socket.once('close', () => {
      this.#release();
      this.session.close();
    });
  }

  setProtocol(version: 2 | 3): void {
    this.#out.resp3 = version === 3;
    this.#scratch.resp3 = version === 3;
  }

  /**
   * A frame out of band (a pub/sub message), after the replies already owed. Pushes made in one
   * turn go out in one write; a client that does not read them is cut off like one that does
   * not read its replies (maxOutputBuffer).
   */
  push(write: WriteReply): boolean {
    if (this.#ending || this.socket.destroyed) return false;
    this.#reply(write);
    this.#flushSoon();
    return true;
  }

  /** Stops running requests; closes once the replies owed are written (QUIT, shutdown, client's end). */
  end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#release();
    this.#closeIfDone();
  }

  /** The client's end of the stream: what it sent before still runs and is answered. */
  #onEnd(): void {
    if (this.#parser.stopped && this.#parser.buffered > 0) this.#inputEnded = true;
    else this.end();
  }

  get #pending(): number {
    return this.#slots.length - this.#head;
  }

  get #blocked(): boolean {
    return this.#waitingForDrain || this.#slotsFull || this.#authenticating;
  }

  #onData(chunk: Buffer): void {
    if (this.#ending) return;
    this.session.lastCommandAt = Date.now();
    this.#afterParse(this.#parser.push(chunk));
  }

  #afterParse(error: ProtocolError | undefined): void {
    // The commands of this chunk have run: the last one's time ends here (see Dispatcher.execute).
    this.#dispatcher.settle();
    if (error === undefined) this.#chargeInput();
    else this.#fail(error);
    this.#flush();
    this.#closeIfDone();
  }

  #onCommand(request: Request): void {
    if (this.#ending) return;
    if (this.#pending === 0) {
      const pending = this.#dispatcher.execute(this.session, request, this.#out);
      if (pending !== undefined) this.#wait(pending);
    } else {
      // A reply ahead is still waiting for the disk: this one queues behind it.
      const pending = this.#dispatcher.execute(this.session, request, this.#scratch);
      if (pending !== undefined) this.#wait(pending);
      else this.#queue(this.#scratch.take());
    }
    const barrier = this.session.barrier;
    if (barrier !== undefined) {
      this.session.barrier = undefined;
      this.#authenticating = true;
      const settled = () => {
        this.#authenticating = false;
        this.#updateReading();
      };
      barrier.then(settled, settled);
    }
    if (this.#out.length >= FLUSH_BYTES) this.#flush();
    if (this.#blocked) this.#parser.stop();
  }

  /** A reply produced now, in its turn. */
  #reply(write: WriteReply): void {
    if (this.#pending === 0) {
      write(this.#out);
    } else {
      write(this.#scratch);
      this.#queue(this.#scratch.take());
    }
  }

  #queue(bytes: Buffer): void {
    this.#slots.push({ done: true, bytes, write: undefined });
    this.#slotBytes += bytes.length;
    if (this.#slotBytes > SLOT_BYTES) this.#slotsFull = true;
  }

  #fail(error: ProtocolError): void {
    if (error.code === ProtocolErrorCode.CROSS_PROTOCOL) {
      this.#logger.warn(
        `closed a connection from ${this.socket.remoteAddress ?? 'a local socket'}: ${error.message} (possible cross-protocol attack from a web page)`,
      );
      this.#ending = true;
      this.#release();
      this.socket.destroy();
      return;
    }
    this.#reply((out) => out.error(error.code, error.message));
    this.end();
  }

  /** Charges what the parser holds to the server-wide budget; fails this connection past it. */
  #chargeInput(): void {
    const held = this.#parser.buffered;
    if (held === this.#charged) return;
    const budget = this.#options.inputBudget;
    budget.used += held - this.#charged;
    this.#charged = held;
    if (held > 0 && budget.used > budget.limit) {
      this.#fail(
        new ProtocolError(
          ProtocolErrorCode.TOO_LARGE,
          `unfinished requests of all clients hold more than ${budget.limit} bytes (this one ${held}); see --max-input-buffer`,
        ),
      );
    }
  }

  /** Gives back this connection's share of the input budget (nothing more will be parsed). */
  #release(): void {
    this.#options.inputBudget.used -= this.#charged;
    this.#charged = 0;
  }

  #wait(pending: PendingReply): void {
    const slot: Slot = { done: false, bytes: undefined, write: undefined };
    this.#slots.push(slot);
    if (this.#pending > this.#options.maxPendingReplies) this.#slotsFull = true;
    pending.then(
      (write) => {
        slot.write = write;
        slot.done = true;
        if (this.#slots[this.#head] === slot) this.#drainSlots();
      },
      (err: unknown) => {
        const { code, message } = describeError(err, this.#logger);
        slot.write = (out) => out.error(code, message);
        slot.done = true;
        if (this.#slots[this.#head] === slot) this.#drainSlots();
      },
    );
  }

  #drainSlots(): void {
    const slots = this.#slots;
    while (this.#head < slots.length) {
      const slot = slots[this.#head] as Slot;
      if (!slot.done) break;
      if (slot.bytes !== undefined) {
        this.#out.raw(slot.bytes);
        this.#slotBytes -= slot.bytes.length;
      } else {
        (slot.write as WriteReply)(this.#out);
      }
      this.#head++;
      if (this.#out.length >= FLUSH_BYTES) {
        this.#flush();
        if (this.socket.destroyed) return;
      }
    }
    if (this.#head === slots.length) {
      this.#slots = [];
      this.#head = 0;
    }
    this.#flushSoon();
    if (this.#slotsFull && this.#pending <= this.#options.maxPendingReplies / 2 && this.#slotBytes <= SLOT_BYTES / 2) {
      this.#slotsFull = false;
      this.#updateReading();
    }
    this.#closeIfDone();
  }

  /**
   * Flushes once the event loop's current I/O is handled (setImmediate runs right after the
   * poll phase). Group commits settle the replies of many requests at once, each in its own
   * promise reaction, and the shards' commits finish in the same poll; flushing in each would
   * make a write syscall per reply instead of one per connection and turn.
   */
  #flushSoon(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#out.length === 0 || this.socket.destroyed) return;
    // Judged on what was already waiting, so that one large reply (a value bigger than the
    // limit) still goes out to a client that reads.
    const unread = this.socket.writableLength;
    if (!this.socket.write(this.#out.take())) {
      this.#waitingForDrain = true;
      if (unread > this.#options.maxOutputBuffer) {
        this.#logger.warn(
          `disconnecting a client that left ${unread} bytes of replies unread (limit ${this.#options.maxOutputBuffer})`,
        );
        this.#ending = true;
        this.socket.destroy();
        return;
      }
      this.#updateReading();
    }
  }

  /** Reads while nothing blocks; first parses what the parser kept when it stopped. */
  #updateReading(): void {
    if (this.#ending || this.socket.destroyed) return;
    if (this.#blocked) {
      this.socket.pause();
      return;
    }
    if (this.#parser.stopped) {
      this.#afterParse(this.#parser.resume());
      // That may have blocked (and paused) again, or ended the connection.
      if (this.#ending || this.#blocked) return;
    }
    // The client's end came while input was kept: all of it has run now.
    if (this.#inputEnded) this.end();
    else this.socket.resume();
  }

  #closeIfDone(): void {
    if (!this.#ending || this.#pending !== 0 || this.#closing || this.socket.destroyed) return;
    this.#closing = true;
    this.#flush();
    closeGracefully(this.socket);
  }
}
