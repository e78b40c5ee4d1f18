// A small pipelined RESP2 client for the server benchmark's set-up: preloading keys and checking
// replies. Requests are sent as RESP arrays of bulk strings; replies of type +, -, : and $ only.
import { connect, type Socket } from 'node:net';

export type Reply =
  | { type: 'status'; value: string }
  | { type: 'error'; value: string }
  | { type: 'integer'; value: number }
  | { type: 'bulk'; value: string | null };

function encode(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return out;
}

export class RespClient {
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: { count: number; replies: Reply[]; resolve: (r: Reply[]) => void; reject: (e: Error) => void }[] =
    [];
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      try {
        this.drain();
      } catch (err) {
        this.fail(err as Error);
      }
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host, () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new RespClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends the commands at once (pipelined) and resolves with their replies, in order. */
  send(commands: readonly (readonly string[])[]): Promise<Reply[]> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ count: commands.length, replies: [], resolve, reject });
      this.socket.write(commands.map(encode).join(''));
    });
  }

  async command(...args: string[]): Promise<Reply> {
    return (await this.send([args]))[0] as Reply;
  }

  close(): void {
    this.socket.destroy();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  private drain(): void {
    let offset = 0;
    while (this.waiting.length > 0) {
      const parsed = this.parse(offset);
      if (parsed === undefined) break;
      offset = parsed.next;
      const head = this.waiting[0];
      if (head === undefined) throw new Error(`unexpected reply ${JSON.stringify(parsed.reply)}`);
      head.replies.push(parsed.reply);
      if (head.replies.length === head.count) {
        this.waiting.shift();
        head.resolve(head.replies);
      }
    }
    this.buffer = this.buffer.subarray(offset);
  }

  private parse(offset: number): { reply: Reply; next: number } | undefined {
    const end = this.buffer.indexOf('\r\n', offset);
    if (end === -1) return undefined;
    const kind = String.fromCharCode(this.buffer[offset] as number);
    const line = this.buffer.toString('utf8', offset + 1, end);
    switch (kind) {
      case '+':
        return { reply: { type: 'status', value: line }, next: end + 2 };
      case '-':
        return { reply: { type: 'error', value: line }, next: end + 2 };
      case ':':
        return { reply: { type: 'integer', value: Number(line) }, next: end + 2 };
      case '$': {
        const length = Number(line);
        if (length < 0) return { reply: { type: 'bulk', value: null }, next: end + 2 };
        if (this.buffer.length < end + 2 + length + 2) return undefined;
        const value = this.buffer.toString('utf8', end + 2, end + 2 + length);
        return { reply: { type: 'bulk', value }, next: end + 2 + length + 2 };
      }
      default:
        throw new Error(`unsupported reply type '${kind}' (${JSON.stringify(line.slice(0, 80))})`);
    }
  }
}

export function describeReply(reply: Reply | undefined): string {
  if (reply === undefined) return 'no reply';
  return `${reply.type} ${JSON.stringify(reply.value)}`;
}
