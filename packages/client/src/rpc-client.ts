import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  type ArgKind,
  type ArgSpec,
  type CommandName,
  type CommandSpec,
  commands,
  ProtocolErrorCode,
  type ReplyKind,
} from '@hati/protocol';
import type { DeadReason, Delivery } from './broker.js';
import { type ArgsOf, type CallOptions, CommandMethods, type ReplyOf, type StorageTypeName } from './commands.js';
import { clientError, HatiError, isTlsFailure, serverError, tlsReason } from './errors.js';
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

/** Argument kinds that carry bytes: sent as text, or as base64 with `"encoding":"base64"`. */
const BYTE_KINDS: ReadonlySet<ArgKind> = new Set(['key', 'value', 'pattern', 'message']);

/** Reply kinds whose results carry bytes: always asked as base64, so binary values come back exactly. */
const BYTE_REPLIES: ReadonlySet<ReplyKind> = new Set(['bulk', 'bulks', 'keys', 'scan', 'deliveries']);

/** How a command of the table runs over JSON-RPC: its method, and the spec its params and result follow. */
export interface RpcMapping {
  readonly method: string;
  readonly spec: CommandSpec;
}

/**
 * Every command with a JSON-RPC method (`spec.rpc`), derived from the table: a command gains a
 * method here by having one there.
 */
export const rpcMethods: ReadonlyMap<CommandName, RpcMapping> = new Map(
  (Object.entries(commands) as Array<[CommandName, CommandSpec]>)
    .filter(([, spec]) => spec.rpc !== null)
    .map(([name, spec]) => [name, { method: spec.rpc as string, spec }]),
);

function notSupported(name: string, why: string): HatiError {
  return clientError('NOT_SUPPORTED', `${name}: ${why}`);
}

/**
 * A command's arguments (as `call` takes them, in the TCP order) as the params the server reads
 * by name, as the table names them: positional arguments by their name (`type`, `key`, `ttl`);
 * repeated ones as an array named in the plural (`keys`), or key-value pairs as `entries`; an
 * option of a group by the group's name (`condition: 'NX'`), an option with a value by the
 * value's name (`pattern`, `count`, PUBLISH's `delayMs`). Keys, values, patterns and messages go
 * as UTF-8 text unless one of them is bytes or the result carries bytes: then all go as base64
 * (`"encoding":"base64"`). A command whose options come before its last argument (PUBLISH) has
 * that argument last in `args`, as over TCP.
 */
function paramsOf(name: string, spec: CommandSpec, args: readonly unknown[]): Params {
  const base64 = BYTE_REPLIES.has(spec.reply) || args.some((arg) => arg instanceof Uint8Array);
  const value = (arg: ArgSpec, given: unknown): unknown => {
    if (BYTE_KINDS.has(arg.kind)) {
      return base64 ? Buffer.from(given as string | Uint8Array).toString('base64') : given;
    }
    // A 64-bit integer beyond 2^53 is exact only as text.
    return typeof given === 'bigint' ? given.toString() : given;
  };
  const params: Params = base64 ? { encoding: 'base64' } : {};
  const fixed = spec.args.length - spec.repeat;
  // The positional arguments before the options, then the words (the options) after them.
  let positional = fixed;
  let end = args.length;
  if (spec.optionsBeforeLast === true) {
    positional = fixed - 1;
    end = args.length - 1;
    const last = spec.args[positional] as ArgSpec;
    params[last.name] = value(last, args[end]);
  }
  let i = 0;
  for (; i < positional && i < end; i++) {
    const arg = spec.args[i] as ArgSpec;
    params[arg.name] = value(arg, args[i]);
  }
  if (spec.repeat === 1) {
    const arg = spec.args[fixed] as ArgSpec;
    params[`${arg.name}s`] = args.slice(fixed).map((item) => value(arg, item));
    return params;
  }
  if (spec.repeat === 2) {
    const [keyArg, valueArg] = spec.args.slice(fixed) as [ArgSpec, ArgSpec];
    const entries: unknown[][] = [];
    for (let j = fixed; j < args.length; j += 2) entries.push([value(keyArg, args[j]), value(valueArg, args[j + 1])]);
    params.entries = entries;
    return params;
  }
  while (i < end) {
    const word = String(args[i]).toUpperCase();
    const option = spec.options.find((candidate) => candidate.token === word);
    if (option === undefined) {
      throw new HatiError(ProtocolErrorCode.SYNTAX, `'${name}' has no option '${word.slice(0, 32)}': ${spec.syntax}`);
    }
    const values = option.args ?? [];
    const first = values[0];
    if (option.group !== undefined) {
      params[option.group] = option.token;
    } else if (first !== undefined && values.length === 1 && first.kind !== 'storageType') {
      params[first.name] = value(first, args[i + 1]);
    } else {
      throw notSupported(name, `the ${option.token} option has no JSON-RPC param`);
    }
    i += 1 + values.length;
  }
  return params;
}

function isBase64(value: unknown): value is string {
  return typeof value === 'string';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A delivery of a result, `{id, deliveries, routingKey, message, death?}` with the message in base64; undefined when it is not one. */
function deliveryOf(item: unknown): Delivery | undefined {
  if (!isObject(item)) return undefined;
  const { id, deliveries, routingKey, message, death } = item;
  if (typeof id !== 'string' || typeof deliveries !== 'number' || typeof routingKey !== 'string') return undefined;
  if (!isBase64(message)) return undefined;
  const delivery = { id, deliveries, routingKey, message: Buffer.from(message, 'base64') };
  if (death === undefined) return delivery;
  if (!isObject(death)) return undefined;
  const { reason, queue, deliveries: count } = death;
  if (typeof reason !== 'string' || typeof queue !== 'string' || typeof count !== 'number') return undefined;
  return { ...delivery, death: { reason: reason as DeadReason, queue, deliveries: count } };
}

/** A JSON-RPC result as the value the same command returns over TCP (`ReplyOf`). */
function fromResult(name: string, kind: ReplyKind, result: unknown): unknown {
  const bad = () =>
    clientError('BAD_REPLY', `${name}: unexpected result ${JSON.stringify(result)?.slice(0, 80)} for a ${kind} reply`);
  const bytes = (value: unknown): Buffer | null => {
    if (value === null) return null;
    if (!isBase64(value)) throw bad();
    return Buffer.from(value, 'base64');
  };
  const list = (value: unknown, nulls: boolean): Array<Buffer | null> => {
    if (!Array.isArray(value)) throw bad();
    return value.map((item) => {
      if (item === null && !nulls) throw bad();
      return bytes(item);
    });
  };
  switch (kind) {
    case 'status':
      // `true` for OK; PING's text as it is.
      if (result === true) return 'OK';
      if (typeof result === 'string') return result;
      break;
    case 'stored':
    case 'boolean':
      if (typeof result === 'boolean') return result;
      break;
    case 'bulk':
      return bytes(result);
    case 'bulks':
      return list(result, true);
    case 'keys':
      return list(result, false);
    case 'scan': {
      const { cursor, keys } = (result ?? {}) as { cursor?: unknown; keys?: unknown };
      if (typeof cursor === 'string' || typeof cursor === 'number')
        return { cursor: String(cursor), keys: list(keys, false) };
      break;
    }
    case 'integer':
      // Past 2^53 the server sends the decimal text.
      if (typeof result === 'number') return result;
      if (typeof result === 'string' && /^-?\d+$/.test(result)) return Number(result);
      break;
    case 'text':
      if (typeof result === 'string') return result;
      break;
    case 'map':
    case 'document':
      if (isObject(result)) return result;
      break;
    case 'deliveries':
      if (Array.isArray(result)) {
        const deliveries = result.map(deliveryOf);
        if (!deliveries.includes(undefined)) return deliveries;
      }
      break;
    default:
      // json: the value itself.
      return result;
  }
  throw bad();
}

/** The JSON-RPC request of a command; throws NOT_SUPPORTED when it has no JSON-RPC method. */
function requestFor<N extends CommandName>(name: N, args: ArgsOf<N>, id: number): RpcRequest {
  const mapping = rpcMethods.get(name);
  if (mapping === undefined) {
    throw notSupported(name, 'no JSON-RPC method runs this command; use the TCP or UNIX socket client');
  }
  return { jsonrpc: '2.0', id, method: mapping.method, params: paramsOf(name, mapping.spec, args as unknown[]) };
}

/** What a command returns from its JSON-RPC response; throws the response's error. */
function resultOf<N extends CommandName>(name: N, response: RpcResponse | undefined): ReplyOf<N> {
  if (response === undefined) throw clientError('BAD_REPLY', `${name}: the server's answer holds no response to it`);
  if (response.error) throw toHatiError(response.error);
  return fromResult(name, commands[name].reply, response.result) as ReplyOf<N>;
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

/** The `Authorization` header of the options' credentials, if any. */
function authorizationOf(options: RpcClientOptions): string | undefined {
  const { password, token } = options;
  if (password !== undefined && token !== undefined) {
    throw new TypeError('password and token: give one of them, not both');
  }
  if (token !== undefined) return `Bearer ${token}`;
  if (password === undefined) return undefined;
  const user = options.user ?? clientDefaults.user;
  // RFC 7617: the user name ends at the first colon.
  if (user.includes(':'))
    throw new TypeError('user: a user name sent with Basic authentication may not contain a colon');
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/**
 * One POST over `agent`: the status and the body's text. Rejects with Node's error (refused,
 * reset, a certificate that does not check, the body cut short) or the signal's.
 */
function post(
  url: URL,
  agent: HttpAgent,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal | undefined,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const onResponse = (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
    };
    const request = send(
      url,
      {
        method: 'POST',
        agent,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        ...(signal !== undefined && { signal }),
      },
      onResponse,
    );
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * The same typed methods as HatiClient, over JSON-RPC 2.0 on HTTP or HTTPS (`node:http`), for
 * every command of the table with a JSON-RPC method; `batch` sends several calls in one HTTP
 * request. A command without one (QUIT, HELLO, SUBSCRIBE...) rejects with NOT_SUPPORTED.
 *
 * `node:http` rather than `fetch`: Node 20's fetch cannot be given a CA or a client certificate
 * without undici's own Agent, a dependency this package does without.
 */
export class HatiRpcClient extends CommandMethods {
  readonly #url: string;
  readonly #target: URL;
  /** Holds the credentials' header: private, so `inspect` never shows it. */
  readonly #headers: Record<string, string>;
  readonly #commandTimeout: number;
  /** Keeps connections open between requests; an HTTPS one holds the `tls` options. */
  readonly #agent: HttpAgent;

  constructor(options: RpcClientOptions = {}) {
    super();
    this.#url = options.url ?? clientDefaults.url;
    this.#target = new URL(this.#url);
    if (this.#target.protocol !== 'http:' && this.#target.protocol !== 'https:') {
      throw new TypeError(`url: an http: or https: URL is expected, got ${this.#target.protocol}`);
    }
    // Header names are case-insensitive: one spelling each, the options' last.
    this.#headers = { 'content-type': 'application/json' };
    for (const [name, value] of Object.entries(options.headers ?? {})) this.#headers[name.toLowerCase()] = value;
    const authorization = authorizationOf(options);
    if (authorization !== undefined) this.#headers.authorization = authorization;
    this.#commandTimeout = options.commandTimeout ?? clientDefaults.commandTimeout;
    if (options.tls !== undefined && this.#target.protocol !== 'https:') {
      throw new TypeError(`tls: given for ${this.#url}, which is not an https: URL`);
    }
    this.#agent =
      this.#target.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, ...options.tls })
        : new HttpAgent({ keepAlive: true });
  }

  call<N extends CommandName>(name: N, args: ArgsOf<N>, options: CallOptions = {}): Promise<ReplyOf<N>> {
    let request: RpcRequest;
    try {
      request = requestFor(name, args, this.#nextId());
    } catch (err) {
      return Promise.reject(err);
    }
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
    const builder = new BatchBuilder(collected, () => this.#nextId());
    const results = Promise.all(build(builder));
    // A call refused before it joined the batch (NOT_SUPPORTED) fails at once: handled below.
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
   * status with no JSON-RPC answer), TLS_FAILED (a certificate that does not check), BAD_REPLY
   * (a success status with no JSON-RPC answer), or the server's code when it refused the whole
   * request with a JSON-RPC error (`id: null`: NOAUTH, WRONGPASS, AUTH_RATE_LIMITED...).
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
      // The timeout, an abort or a reset can also strike while the body streams in: `post` covers it.
      ({ status, text } = await post(
        this.#target,
        this.#agent,
        this.#headers,
        JSON.stringify(payload),
        signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals),
      ));
    } catch (err) {
      if (signal?.aborted) throw clientError('ABORTED', `${label}: aborted`, signal.reason);
      if (timer?.aborted) throw clientError('TIMEOUT', `${label}: no reply within ${timeout} ms`, err);
      const reason = err instanceof Error ? err.message : String(err);
      if (isTlsFailure(err)) {
        throw clientError('TLS_FAILED', `${label}: TLS with ${this.#url} failed: ${tlsReason(err)}`, err);
      }
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
  readonly #collected: BatchEntry[];
  readonly #nextId: () => number;

  constructor(collected: BatchEntry[], nextId: () => number) {
    super();
    this.#collected = collected;
    this.#nextId = nextId;
  }

  call<N extends CommandName>(name: N, args: ArgsOf<N>): Promise<ReplyOf<N>> {
    let request: RpcRequest;
    try {
      request = requestFor(name, args, this.#nextId());
    } catch (err) {
      return Promise.reject(err);
    }
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
