// The body of one JSON-RPC request as it arrives: kept whole, bounded by maxBody, and scanned
// (json-body-scanner.ts) only when it must be.
import { BodyScanner, MAX_REQUEST_VALUES, type ScannedBody, smallSingleRequest } from './json-body-scanner.js';

/** Why a body is refused before it has been received whole. */
export type BodyRefusal = 'body too large' | 'batch too large';

const EMPTY = Buffer.alloc(0);

/**
 * One request's body. A call comes in one chunk, small enough that its limits are checked once
 * it has ended, without a scan (smallSingleRequest). A first chunk larger than that, and every
 * chunk from the second on, go through a BodyScanner as they arrive, so that a batch over
 * maxBatch is refused before it has been received whole, let alone parsed.
 */
export class RpcBody {
  readonly #maxBody: number;
  readonly #maxBatch: number;
  #first: Buffer | undefined = undefined;
  /** Every chunk, the first included, once there is more than one. */
  #more: Buffer[] | undefined = undefined;
  #scanner: BodyScanner | undefined = undefined;
  /** Bytes received so far, kept or not. */
  size = 0;

  constructor(maxBody: number, maxBatch: number) {
    this.#maxBody = maxBody;
    this.#maxBatch = maxBatch;
  }

  /** Keeps the next chunk; a refusal once the body is over a limit (nothing is kept from then on). */
  add(chunk: Buffer): BodyRefusal | undefined {
    this.size += chunk.length;
    if (this.size > this.#maxBody) return this.#refuse('body too large');
    if (this.#first === undefined) {
      this.#first = chunk;
      return chunk.length > MAX_REQUEST_VALUES ? this.#scan(chunk) : undefined;
    }
    if (this.#more === undefined) {
      this.#more = [this.#first];
      // The first chunk was too small to be scanned as it came: it is scanned now, before this one.
      if (this.#scanner === undefined) {
        const refusal = this.#scan(this.#first);
        if (refusal !== undefined) return refusal;
      }
    }
    this.#more.push(chunk);
    return this.#scan(chunk);
  }

  /** Counts a chunk of a refused body, which is not kept; true once it is over maxBody. */
  skip(chunk: Buffer): boolean {
    this.size += chunk.length;
    return this.size > this.#maxBody;
  }

  /** At the end of the body: what the scan tells about it, or a refusal of a batch over maxBatch. */
  end(): ScannedBody | 'batch too large' {
    if (this.#scanner === undefined) {
      const small = smallSingleRequest(this.#first ?? EMPTY);
      if (small !== undefined) return small;
      // Under maxBody, so only the batch can be over its limit.
      if (this.#scan(this.#first ?? EMPTY) !== undefined) return 'batch too large';
    }
    const scanner = this.#scanner as BodyScanner;
    scanner.finish();
    return scanner;
  }

  /** The body's bytes: the one chunk as it came, or the chunks joined. */
  get bytes(): Buffer {
    return this.#more !== undefined ? Buffer.concat(this.#more, this.size) : (this.#first ?? EMPTY);
  }

  #scan(chunk: Buffer): BodyRefusal | undefined {
    this.#scanner ??= new BodyScanner(this.#maxBatch);
    return this.#scanner.push(chunk) ? undefined : this.#refuse('batch too large');
  }

  #refuse(why: BodyRefusal): BodyRefusal {
    this.#first = undefined;
    this.#more = undefined;
    return why;
  }
}
