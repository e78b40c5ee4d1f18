import type { CommandName } from '@hati/protocol';
import { type ArgsOf, type CallOptions, CommandMethods, type ReplyOf, type StorageTypeName } from './commands.js';
import { clientError, type HatiError, serverError } from './errors.js';
import { clientDefaults, type RpcClientOptions } from './options.js';

type Params = Record<string, unknown>;

/** JSON-RPC 2.0, as far as this client writes and reads it. */
interface RpcRequest {
  jsonrpc: '2.0';
  id: number;
  method: string;
  params: Params;
}
interface RpcError {
  code: number;
  message: string;
  data?: { code?: unknown };
}
interface RpcResponse {
  id: unknown;
  result?: unknown;
  error?: RpcError;
}

/** How a command of the table maps to a JSON-RPC method, and its result back. */
const rpcMethods: { [N in CommandName]?: { method: string; params: (args: ArgsOf<N>) => Params } } = {
  SET: { method: 'Storage.Set', params: ([type, ttl, key, value]) => ({ type, ttl, ...bytesParams({ key, value }) }) },
  // Always base64 (key included), so that binary values come back exactly.
  GET: { method: 'Storage.Get', params: ([type, key]) => ({ type, ...bytesParams({ key }, true) }) },
  HAS: { method: 'Storage.Has', params: ([type, key]) => ({ type, ...bytesParams({ key }) }) },
  DELETE: { method: 'Storage.Delete', params: ([type, key]) => ({ type, ...bytesParams({ key }) }) },
  FLUSHALL: { method: 'Storage.FlushAll', params: ([type]) => ({ type }) },
  COUNT: { method: 'Storage.Count', params: ([type]) => ({ type }) },
  STATS: { method: 'Server.Stats', params: () => ({}) },
};

/** Strings go as UTF-8 text; as soon as one param is bytes (or `base64` is asked), all go as base64. */
function bytesParams(params: Record<string, string | Uint8Array>, base64 = false): Params {
  if (!base64 && Object.values(params).every((v) => typeof v === 'string')) return params;
  return {
    ...Object.fromEntries(
      Object.entries(params).map(([k, v]) => [k, Buffer.from(v as Uint8Array | string).toString('base64')]),
    ),
    encoding: 'base64',
  };
}

function fromResult(name: CommandName, result: unknown): unknown {
  switch (name) {
    case 'SET':
    case 'FLUSHALL':
      return 'OK';
    case 'GET':
      return result === null ? null : Buffer.from(result as string, 'base64');
    default:
      return result;
  }
}

/** The JSON-RPC request of a command, or undefined when it has no JSON-RPC method. */
function requestFor<N extends CommandName>(name: N, args: ArgsOf<N>, id: number): RpcRequest | undefined {
  const mapping = rpcMethods[name];
  if (mapping === undefined) return undefined;
  return { jsonrpc: '2.0', id, method: mapping.method, params: (mapping.params as (args: ArgsOf<N>) => Params)(args) };
}

/** What a command returns from its JSON-RPC response; throws the response's error. */
function resultOf<N extends CommandName>(name: N, response: RpcResponse | undefined): ReplyOf<N> {
  if (response === undefined) throw clientError('BAD_REPLY', `${name}: the server's answer holds no response to it`);
  if (response.error) throw toHatiError(response.error);
  return fromResult(name, response.result) as ReplyOf<N>;
}

/** A call collected by `batch`, settled from its response (or the batch's failure). */
interface BatchEntry {
  request: RpcRequest;
  settle: (response: RpcResponse | undefined) => void;
  fail: (error: HatiError) => void;
}

function toHatiError(error: RpcError): HatiError {
  const code = typeof error.data?.code === 'string' ? error.data.code : `JSONRPC_${error.code}`;
  return serverError(code, String(error.message));
}

function isResponse(value: unknown): value is RpcResponse {
  if (typeof value !== 'object' || value === null || !('id' in value)) return false;
  const error = (value as { error?: unknown }).error;
  return 'result' in value || (typeof error === 'object' && error !== null);
}

/**
 * The same typed methods as HatiClient, over JSON-RPC 2.0 on HTTP (`fetch`). `batch` sends
 * several calls in one HTTP request. PING and QUIT have no JSON-RPC method: PING is answered
 * locally after a `Server.Stats` round trip proves the server answers.
 */
export class HatiRpcClient extends CommandMethods {
  readonly #url: string;
  readonly #headers: Record<string, string>;
  readonly #commandTimeout: number;

  constructor(options: RpcClientOptions = {}) {
    super();
    this.#url = options.url ?? clientDefaults.url;
    this.#headers = { 'content-type': 'application/json', ...options.headers };
    this.#commandTimeout = options.commandTimeout ?? clientDefaults.commandTimeout;
  }

  call<N extends CommandName>(name: N, args: ArgsOf<N>, options: CallOptions = {}): Promise<ReplyOf<N>> {
    if (name === 'PING') {
      return this.call('STATS', [], options).then(() => ((args as string[])[0] ?? 'PONG') as ReplyOf<N>);
    }
    const request = requestFor(name, args, this.#nextId());
    if (request === undefined) return Promise.reject(clientError('BAD_REPLY', `${name} has no JSON-RPC method`));
    return this.#exchange(request, options, name).then((responses) => resultOf(name, responses.get(request.id)));
  }

  /**
   * Several calls in one HTTP request. The builder's methods are this client's methods; the
   * result is their results, in order. A failed call rejects the whole batch with its error.
   *
   *     const [, value] = await rpc.batch((b) => [b.set('memory', 'k', 'v'), b.get('memory', 'k')]);
   */
  async batch<T extends readonly unknown[]>(
    build: (batch: CommandMethods) => [...T],
  ): Promise<{ [K in keyof T]: Awaited<T[K]> }> {
    const collected: BatchEntry[] = [];
    const builder = new BatchBuilder(this, collected, () => this.#nextId());
    const results = Promise.all(build(builder));
    // A call made outside the batch (PING) may fail while the batch is in flight: handled below.
    results.catch(() => undefined);
    if (collected.length > 0) {
      try {
        const responses = await this.#exchange(
          collected.map((c) => c.request),
          undefined,
          'batch',
        );
        for (const c of collected) c.settle(responses.get(c.request.id));
      } catch (err) {
        // The request as a whole failed: every call in it fails the same way.
        for (const c of collected) c.fail(err as HatiError);
      }
    }
    return (await results) as { [K in keyof T]: Awaited<T[K]> };
  }

  #id = 0;
  #nextId(): number {
    this.#id = (this.#id + 1) % Number.MAX_SAFE_INTEGER;
    return this.#id;
  }

  /**
   * POSTs one request or a batch and returns the responses by id. Throws a HatiError when the
   * exchange as a whole fails: ABORTED, TIMEOUT, HTTP_ERROR (no connection, or an HTTP error
   * status with no JSON-RPC answer), BAD_REPLY (a success status with no JSON-RPC answer), or
   * the server's code when it refused the whole request with a JSON-RPC error (`id: null`).
   */
  async #exchange(
    payload: RpcRequest | RpcRequest[],
    options: CallOptions | undefined,
    label: string,
  ): Promise<Map<unknown, RpcResponse>> {
    const signal = options?.signal;
    if (signal?.aborted) throw clientError('ABORTED', `${label}: aborted`, signal.reason);
    const timeout = options?.timeout ?? this.#commandTimeout;
    const timer = timeout > 0 ? AbortSignal.timeout(timeout) : undefined;
    const signals = [signal, timer].filter((s): s is AbortSignal => s !== undefined);
    let status: number;
    let text: string;
    try {
      const response = await fetch(this.#url, {
        method: 'POST',
        headers: this.#headers,
        body: JSON.stringify(payload),
        ...(signals.length > 0 && { signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) }),
      });
      status = response.status;
      // Inside the try: the timeout, an abort or a reset can also strike while the body streams in.
      text = await response.text();
    } catch (err) {
      if (signal?.aborted) throw clientError('ABORTED', `${label}: aborted`, signal.reason);
      if (timer?.aborted) throw clientError('TIMEOUT', `${label}: no reply within ${timeout} ms`, err);
      const reason = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : String(err);
      throw clientError('HTTP_ERROR', `${label}: cannot reach ${this.#url}: ${reason}`, err);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const responses = (Array.isArray(body) ? body : [body]).filter(isResponse);
    const whole = responses.length === 1 && !Array.isArray(body) ? responses[0] : undefined;
    if (whole?.error && (whole.id === null || whole.id === undefined)) {
      // An error about the request as a whole (too large, wrong path, not JSON): the server's code.
      throw toHatiError(whole.error);
    }
    if (responses.length === 0) {
      // An HTTP error page (a proxy, a wrong URL) is HTTP_ERROR; a success with nothing readable, BAD_REPLY.
      const code = status >= 200 && status <= 299 ? 'BAD_REPLY' : 'HTTP_ERROR';
      throw clientError(code, `${label}: HTTP ${status} from ${this.#url}, with no JSON-RPC answer`);
    }
    return new Map(responses.map((r) => [r.id, r]));
  }
}

/** Collects calls for `HatiRpcClient#batch` instead of sending them. */
class BatchBuilder extends CommandMethods {
  readonly #owner: HatiRpcClient;
  readonly #collected: BatchEntry[];
  readonly #nextId: () => number;

  constructor(owner: HatiRpcClient, collected: BatchEntry[], nextId: () => number) {
    super();
    this.#owner = owner;
    this.#collected = collected;
    this.#nextId = nextId;
  }

  call<N extends CommandName>(name: N, args: ArgsOf<N>): Promise<ReplyOf<N>> {
    const request = requestFor(name, args, this.#nextId());
    if (request === undefined) return this.#owner.call(name, args);
    return new Promise((resolve, reject) => {
      this.#collected.push({
        request,
        settle: (response) => {
          try {
            resolve(resultOf(name, response));
          } catch (err) {
            reject(err);
          }
        },
        fail: reject,
      });
    });
  }
}

export type { StorageTypeName };
