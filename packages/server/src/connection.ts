import type { Socket } from 'node:net';
import { type ParserLimits, type ProtocolError, ReplyWriter, RequestParser } from '@hati/protocol';
import type { CommandExecutor, PendingReply, WriteReply } from './command-executor.js';
import type { Logger } from './logger.js';

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
}

const QUIT = Buffer.from('quit');

function isQuit(name: Buffer): boolean {
  if (name.length !== 4) return false;
  for (let i = 0; i < 4; i++) if (((name[i] as number) | 0x20) !== QUIT[i]) return false;
  return true;
}

/**
 * One client of the TCP or UNIX listener: parses its requests, runs them, and writes the
 * replies in request order.
 *
 * - The replies produced while handling one input chunk go out in one write.
 * - A reply that waits for the disk holds back the replies behind it (slots), never the
 *   commands: those keep running, so pipelined hdd writes share group commits.
 * - Backpressure: while the socket does not drain, or too many replies wait for the disk,
 *   the connection stops reading; a client that leaves more than `maxOutputBuffer` bytes of
 *   replies unread is disconnected.
 * - After QUIT, a framing error, or the client's end of the stream, no further command is
 *   read; the connection closes once every reply owed has been written.
 */
export class Connection {
  readonly socket: Socket;
  readonly #executor: CommandExecutor;
  readonly #logger: Logger;
  readonly #options: ConnectionOptions;
  readonly #parser: RequestParser;
  readonly #out = new ReplyWriter();
  readonly #scratch = new ReplyWriter();
  #slots: Slot[] = [];
  #head = 0;
  #ending = false;
  #waitingForDrain = false;
  #tooManyPending = false;

  constructor(socket: Socket, executor: CommandExecutor, logger: Logger, options: ConnectionOptions) {
    this.socket = socket;
    this.#executor = executor;
    this.#logger = logger;
    this.#options = options;
    this.#parser = new RequestParser((args) => this.#onCommand(args), options.limits);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.end());
    socket.on('drain', () => {
      this.#waitingForDrain = false;
      this.#updateReading();
    });
    socket.on('error', (err) => {
      if (this.#logger.debugEnabled) this.#logger.debug(`connection error: ${err.message}`);
    });
  }

  /** Stops reading requests; closes once the replies owed are written (QUIT, shutdown, client's end). */
  end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.socket.pause();
    this.#closeIfDone();
  }

  get #pending(): number {
    return this.#slots.length - this.#head;
  }

  #onData(chunk: Buffer): void {
    if (this.#ending) return;
    const error = this.#parser.push(chunk);
    if (error !== undefined) this.#fail(error);
    this.#flush();
    this.#closeIfDone();
  }

  #onCommand(args: Buffer[]): void {
    if (this.#ending) return;
    if (isQuit(args[0] as Buffer)) {
      this.#reply((out) => out.ok());
      this.end();
      return;
    }
    if (this.#pending === 0) {
      const pending = this.#executor.execute(args, this.#out);
      if (pending !== undefined) this.#wait(pending);
      return;
    }
    // A reply ahead is still waiting for the disk: this one queues behind it.
    const pending = this.#executor.execute(args, this.#scratch);
    if (pending !== undefined) this.#wait(pending);
    else this.#slots.push({ done: true, bytes: this.#scratch.take(), write: undefined });
  }

  /** A reply produced now, in its turn. */
  #reply(write: WriteReply): void {
    if (this.#pending === 0) {
      write(this.#out);
    } else {
      write(this.#scratch);
      this.#slots.push({ done: true, bytes: this.#scratch.take(), write: undefined });
    }
  }

  #fail(error: ProtocolError): void {
    this.#reply((out) => out.error(error.code, error.message));
    this.end();
  }

  #wait(pending: PendingReply): void {
    const slot: Slot = { done: false, bytes: undefined, write: undefined };
    this.#slots.push(slot);
    if (this.#pending > this.#options.maxPendingReplies) {
      this.#tooManyPending = true;
      this.#updateReading();
    }
    pending.then(
      (write) => {
        slot.write = write;
        slot.done = true;
        if (this.#slots[this.#head] === slot) this.#drainSlots();
      },
      (err: unknown) => {
        slot.write = (out) => out.error('INTERNAL', (err as Error)?.message ?? String(err));
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
      if (slot.bytes !== undefined) this.#out.raw(slot.bytes);
      else (slot.write as WriteReply)(this.#out);
      this.#head++;
    }
    if (this.#head === slots.length) {
      this.#slots = [];
      this.#head = 0;
    }
    if (this.#tooManyPending && this.#pending <= this.#options.maxPendingReplies / 2) {
      this.#tooManyPending = false;
      this.#updateReading();
    }
    this.#flush();
    this.#closeIfDone();
  }

  #flush(): void {
    if (this.#out.length === 0 || this.socket.destroyed) return;
    if (!this.socket.write(this.#out.take())) {
      this.#waitingForDrain = true;
      this.#updateReading();
      if (this.socket.writableLength > this.#options.maxOutputBuffer) {
        this.#logger.warn(
          `disconnecting a client that left ${this.socket.writableLength} bytes of replies unread (limit ${this.#options.maxOutputBuffer})`,
        );
        this.socket.destroy();
      }
    }
  }

  #updateReading(): void {
    if (this.#ending || this.socket.destroyed) return;
    if (this.#waitingForDrain || this.#tooManyPending) this.socket.pause();
    else this.socket.resume();
  }

  #closeIfDone(): void {
    if (!this.#ending || this.#pending !== 0 || this.socket.destroyed) return;
    this.#flush();
    // Nothing more is read: close both directions once the last reply is out, so that a
    // client still sending (a line over the limit) is not left blocked.
    this.socket.end(() => this.socket.destroy());
  }
}
