import type { CommandName } from '@hati/protocol';
import { JSONRPCClient, type JSONRPCRequest, type JSONRPCResponse } from 'json-rpc-2.0';
import { type ArgsOf, type CallOptions, CommandMethods, type ReplyOf, type StorageTypeName } from './commands.js';
import { clientError, type HatiError, serverError } from './errors.js';
import { clientDefaults, type RpcClientOptions } from './options.js';

type Params = Record<string, unknown>;

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
function requestFor<N extends CommandName>(name: N, args: ArgsOf<N>, id: number): JSONRPCRequest | undefined {
  const mapping = rpcMethods[name];
  if (mapping === undefined) return undefined;
  return { jsonrpc: '2.0', id, method: mapping.method, params: (mapping.params as (args: ArgsOf<N>) => Params)(args) };
}

/** What a command returns from its JSON-RPC response; throws the response's error. */
function resultOf<N extends CommandName>(name: N, response: JSONRPCResponse): ReplyOf<N> {
  if (response.error) throw toHatiError(response.error);
  return fromResult(name, response.result) as ReplyOf<N>;
}

/** A call collected by `batch`, settled from its response. */
interface BatchEntry {
  request: JSONRPCRequest;
  settle: (response: JSONRPCResponse) => void;
}

function toHatiError(error: { code: number; message: string; data?: { code?: unknown } }): HatiError {
  const code = typeof error.data?.code === 'string' ? error.data.code : `JSONRPC_${error.code}`;
  return serverError(code, error.message);
}

/**
 * The same typed methods as HatiClient, over JSON-RPC 2.0 on HTTP (json-rpc-2.0's client and
 * fetch). `batch` sends several calls in one HTTP request. PING and QUIT have no JSON-RPC
 * method: PING is answered locally after a `Server.Stats` round trip proves the server answers.
 */
export class HatiRpcClient extends CommandMethods {
  readonly #url: string;
  readonly #headers: Record<string, string>;
  readonly #commandTimeout: number;
  readonly #client: JSONRPCClient<CallOptions | undefined>;

  constructor(options: RpcClientOptions = {}) {
    super();
    this.#url = options.url ?? clientDefaults.url;
    this.#headers = { 'content-type': 'application/json', ...options.headers };
    this.#commandTimeout = options.commandTimeout ?? clientDefaults.commandTimeout;
    this.#client = new JSONRPCClient((request, options) => this.#post(request, options));
  }

  call<N extends CommandName>(name: N, args: ArgsOf<N>, options: CallOptions = {}): Promise<ReplyOf<N>> {
    if (name === 'PING') {
      return this.call('STATS', [], options).then(() => ((args as string[])[0] ?? 'PONG') as ReplyOf<N>);
    }
    const request = requestFor(name, args, this.#nextId());
    if (request === undefined) return Promise.reject(clientError('BAD_REPLY', `${name} has no JSON-RPC method`));
    return Promise.resolve(this.#client.requestAdvanced(request, options)).then((response) => resultOf(name, response));
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
    const responses = await this.#client.requestAdvanced(
      collected.map((c) => c.request),
      undefined,
    );
    const byId = new Map(responses.map((r) => [r.id, r]));
    for (const c of collected) {
      const response = byId.get(c.request.id as number);
      c.settle(
        response ?? {
          jsonrpc: '2.0',
          id: c.request.id ?? null,
          error: { code: -32603, message: 'no response for this call' },
        },
      );
    }
    return (await results) as { [K in keyof T]: Awaited<T[K]> };
  }

  #id = 0;
  #nextId(): number {
    this.#id = (this.#id + 1) % Number.MAX_SAFE_INTEGER;
    return this.#id;
  }

  async #post(request: JSONRPCRequest | JSONRPCRequest[], options: CallOptions | undefined): Promise<void> {
    const timeout = options?.timeout ?? this.#commandTimeout;
    const signals = [options?.signal, timeout > 0 ? AbortSignal.timeout(timeout) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    let response: Response;
    try {
      response = await fetch(this.#url, {
        method: 'POST',
        headers: this.#headers,
        body: JSON.stringify(request),
        ...(signals.length > 0 && { signal: AbortSignal.any(signals) }),
      });
    } catch (err) {
      if (options?.signal?.aborted) throw clientError('ABORTED', 'aborted', options.signal.reason);
      if ((err as Error).name === 'TimeoutError') throw clientError('TIMEOUT', `no reply within ${timeout} ms`, err);
      throw clientError('HTTP_ERROR', `cannot reach ${this.#url}: ${(err as Error).message}`, err);
    }
    if (response.status === 204) return;
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw clientError('HTTP_ERROR', `HTTP ${response.status} from ${this.#url}`, err);
    }
    const single = !Array.isArray(body) ? (body as JSONRPCResponse) : undefined;
    if (single?.error && (single.id === null || single.id === undefined)) {
      // An error about the request as a whole (too large, not JSON): fail every call in it.
      throw toHatiError(single.error);
    }
    this.#client.receive(body as JSONRPCResponse | JSONRPCResponse[]);
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
      });
    });
  }
}

export type { StorageTypeName };
