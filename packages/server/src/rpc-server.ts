import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Delivery } from '@hati/broker';
import { type ArgSpec, allCommands, type CommandSpec, type ReplyKind } from '@hati/protocol';
import { StorageError } from '@hati/storage';
import {
  type JSONRPCError,
  JSONRPCErrorCode,
  type JSONRPCID,
  type JSONRPCParams,
  type JSONRPCRequest,
  type JSONRPCResponse,
} from 'json-rpc-2.0';
import { Auth, type User } from './auth.js';
import { consoleResponse } from './console.js';
import type { Dispatcher, MapValue } from './dispatcher.js';
import { describeError, ServerError, ServerErrorCode } from './errors.js';
import type { Hub } from './hub.js';
import { type BodyElement, MAX_REQUEST_DEPTH, MAX_REQUEST_VALUES, type ScannedBody } from './json-body-scanner.js';
import type { Logger } from './logger.js';
import { hostPort, protectedModeMessage } from './net-address.js';
import { RpcBody } from './rpc-body.js';
import { RpcConnection } from './rpc-connection.js';
import type { SessionTransport } from './session.js';

/** The schemes a 401 names (RFC 9110 §11.6.1): Basic for a user and password, Bearer for a token. */
const CHALLENGE = 'Basic realm="hati", Bearer realm="hati"';

/** Codes of errors the caller can fix by changing the params: JSON-RPC "invalid params". */
const INPUT_CODES = new Set<string>([
  'PARAMS_INVALID',
  'STORAGE_TYPE_INVALID',
  'KEY_EMPTY',
  'KEY_INVALID',
  'VALUE_INVALID',
  'TTL_INVALID',
  'NOT_INTEGER',
  'CURSOR_INVALID',
  'ARGUMENT_INVALID',
  'SYNTAX',
]);

/** Turns any error into a JSON-RPC error object whose `data.code` is the stable code. */
function rpcError(err: unknown): JSONRPCError {
  const { code, message } = describeError(err);
  const rpcCode = INPUT_CODES.has(code) ? JSONRPCErrorCode.InvalidParams : -32000;
  return { code: rpcCode, message, data: { code } };
}

/** A method's result: a value when the engine answered synchronously (memory), else a promise. */
type MaybePromise<T> = T | Promise<T>;

/**
 * Every promise on this path is native: the engines', the broker's and auth's come from async
 * functions and their `then`. `instanceof` tells them from a value without reading a `then`
 * property off a Buffer, a string or a User, which at one call site seeing all of those cost
 * more than the rest of the check.
 */
function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return value instanceof Promise;
}

function paramsError(message: string): ServerError {
  return new ServerError('PARAMS_INVALID', message);
}

type Params = Record<string, unknown>;
type Encoding = 'utf8' | 'base64';

/** Params as an object, or (as the seed's Go server took them) an array holding one object. */
function paramsOf(params: JSONRPCParams | undefined, spec: CommandSpec): Params {
  // A command without arguments (Server.Stats) ignores params.
  if (spec.args.length === 0 && spec.options.length === 0) return {};
  // Nothing to pass to a method whose arguments are all optional (Server.Ping, Server.Info).
  if (params === undefined && spec.minArgs === 0) return {};
  const value = Array.isArray(params) && params.length === 1 ? params[0] : params;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw paramsError('params must be an object, or an array holding one object');
  }
  return value as Params;
}

function encodingOf(params: Params): Encoding {
  const encoding = params.encoding ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64') {
    throw paramsError(`encoding must be 'utf8' or 'base64', got ${JSON.stringify(encoding)}`);
  }
  return encoding;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/**
 * The two storage types as arguments, made once: nearly every call names one, and handlers only
 * read their arguments (any other string is made per call, and refused by the handler).
 */
const STORAGE_TYPES: ReadonlyMap<string, Buffer> = new Map(['memory', 'hdd'].map((type) => [type, Buffer.from(type)]));

/** Kinds whose params carry bytes, decoded per the call's `encoding`. */
const BYTE_KINDS: ReadonlySet<ArgSpec['kind']> = new Set(['key', 'value', 'pattern', 'message']);

/**
 * One param as the bytes the TCP protocol would carry, so that every front end reaches the same
 * argument parsers: strings as UTF-8 (or base64 for keys, values and patterns), numbers in
 * decimal. An absent or null param takes the argument's `rpcDefault` (SET's ttl, SCAN's
 * cursor), and SET's ttl may be `""` (the seed's Go server's string ttl, where empty meant none).
 */
function paramBytes(arg: ArgSpec, value: unknown, encoding: Encoding, name = arg.name): Buffer {
  if (value === undefined || value === null || (value === '' && arg.kind === 'ttl' && arg.rpcDefault !== undefined)) {
    if (arg.rpcDefault !== undefined) return Buffer.from(arg.rpcDefault);
    throw paramsError(`${name} is required`);
  }
  if (
    arg.kind === 'ttl' ||
    arg.kind === 'integer' ||
    arg.kind === 'cursor' ||
    arg.kind === 'ms' ||
    arg.kind === 'count'
  ) {
    if (typeof value === 'number' || (typeof value === 'string' && value !== '')) return Buffer.from(String(value));
    if (arg.kind === 'ttl') {
      throw new StorageError(
        'TTL_INVALID',
        `ttl must be a non-negative integer number of milliseconds, got ${JSON.stringify(value)}`,
      );
    }
    throw paramsError(`${name} must be an integer, got ${typeName(value)}`);
  }
  if (typeof value !== 'string') {
    throw paramsError(
      arg.kind === 'storageType'
        ? `${name} must be a string: memory or hdd`
        : `${name} must be a string, got ${typeName(value)}`,
    );
  }
  if (arg.kind === 'storageType') return STORAGE_TYPES.get(value) ?? Buffer.from(value, 'utf8');
  return BYTE_KINDS.has(arg.kind) ? Buffer.from(value, encoding) : Buffer.from(value, 'utf8');
}

/** The params a command's JSON-RPC method takes, by name (see rpcArgs). */
function paramNames(spec: CommandSpec): Set<string> {
  const fixed = spec.args.length - spec.repeat;
  const names = new Set(['encoding', ...spec.args.slice(0, fixed).map((arg) => arg.name)]);
  if (spec.repeat === 1) names.add(`${(spec.args[fixed] as ArgSpec).name}s`);
  if (spec.repeat === 2) names.add('entries');
  for (const option of spec.options) {
    const [first] = option.args ?? [];
    if (option.group !== undefined) names.add(option.group);
    else if (first !== undefined && first.kind !== 'storageType') names.add(first.name);
  }
  return names;
}

/**
 * The arguments of a command from JSON-RPC params named as in the table: positional arguments
 * by name; repeated ones as an array named in the plural (`keys`), or MSET's pairs as `entries`
 * (an object, or an array of `[key, value]`); an option group by its name (`"condition": "NX"`);
 * an option with a value by the value's name (`"pattern"`, `"count"`).
 */
function rpcArgs(spec: CommandSpec, name: Buffer, params: Params, encoding: Encoding, known: Set<string>): Buffer[] {
  // A misspelt param (`match` for `pattern`) would otherwise be ignored without a word.
  for (const param of Object.keys(params)) {
    if (!known.has(param)) {
      throw paramsError(`${spec.rpc} takes no param ${JSON.stringify(param)} (it takes ${[...known].join(', ')})`);
    }
  }
  const args = [name];
  const fixed = spec.args.length - spec.repeat;
  for (let i = 0; i < fixed; i++) {
    const arg = spec.args[i] as ArgSpec;
    const value = params[arg.name];
    if ((value === undefined || value === null) && arg.optional === true) break;
    args.push(paramBytes(arg, value, encoding));
  }
  if (spec.repeat === 1) {
    const arg = spec.args[fixed] as ArgSpec;
    const list = params[`${arg.name}s`];
    if (!Array.isArray(list) || list.length === 0) throw paramsError(`${arg.name}s must be a non-empty array`);
    list.forEach((item, i) => {
      args.push(paramBytes(arg, item, encoding, `${arg.name}s[${i}]`));
    });
  } else if (spec.repeat === 2) {
    const [keyArg, valueArg] = spec.args.slice(fixed) as [ArgSpec, ArgSpec];
    const entries = params.entries;
    const pairs = Array.isArray(entries) ? entries : isObject(entries) ? Object.entries(entries) : undefined;
    if (pairs === undefined || pairs.length === 0) {
      throw paramsError('entries must be a non-empty object of key to value, or an array of [key, value] pairs');
    }
    pairs.forEach((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) throw paramsError(`entries[${i}] must be a [key, value] pair`);
      args.push(paramBytes(keyArg, pair[0], encoding, `entries[${i}][0]`));
      args.push(paramBytes(valueArg, pair[1], encoding, `entries[${i}][1]`));
    });
  }
  if (spec.options.length === 0) return args;
  // PUBLISH's options come before its message.
  const last = spec.optionsBeforeLast === true ? args.pop() : undefined;
  pushOptions(args, spec, params, encoding);
  if (last !== undefined) args.push(last);
  return args;
}

/** A command's options from their params, in the table's order (see rpcArgs). */
function pushOptions(args: Buffer[], spec: CommandSpec, params: Params, encoding: Encoding): void {
  const groups = new Set<string>();
  for (const option of spec.options) {
    const [first] = option.args ?? [];
    if (option.group !== undefined) {
      if (groups.has(option.group)) continue;
      groups.add(option.group);
      const chosen = params[option.group];
      if (chosen === undefined || chosen === null) continue;
      const tokens = spec.options.filter((o) => o.group === option.group).map((o) => o.token);
      if (typeof chosen !== 'string' || !tokens.includes(chosen.toUpperCase())) {
        throw paramsError(`${option.group} must be one of ${tokens.join(', ')}`);
      }
      args.push(Buffer.from(chosen.toUpperCase()));
    } else if (first !== undefined && first.kind !== 'storageType' && params[first.name] !== undefined) {
      args.push(Buffer.from(option.token), paramBytes(first, params[first.name], encoding));
    }
  }
}

/** A bulk value as JSON: text, or base64 with `"encoding":"base64"`. */
function bulkJson(value: unknown, encoding: Encoding): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return encoding === 'utf8' ? value : Buffer.from(value).toString('base64');
  return (value as Buffer).toString(encoding);
}

/** A handler's value as the JSON result of its reply kind (see ReplyKind in @hati/protocol). */
function resultJson(kind: ReplyKind, value: unknown, encoding: Encoding): unknown {
  switch (kind) {
    case 'status':
      return value === 'OK' ? true : bulkJson(value, 'utf8');
    case 'bulk':
      return bulkJson(value, encoding);
    case 'integer':
      // Past 2^53 a JSON number loses digits: such a value is sent as a decimal string.
      return typeof value === 'bigint' ? (Number.isSafeInteger(Number(value)) ? Number(value) : String(value)) : value;
    case 'bulks':
    case 'keys':
      return (value as unknown[]).map((item) => bulkJson(item, encoding));
    case 'scan': {
      const { cursor, keys } = value as { cursor: string; keys: Buffer[] };
      return { cursor, keys: keys.map((key) => bulkJson(key, encoding)) };
    }
    case 'map':
      return Object.fromEntries(value as MapValue);
    case 'deliveries':
      return (value as Delivery[]).map(({ id, deliveries, routingKey, message, death }) => ({
        id,
        deliveries,
        routingKey,
        message: bulkJson(message, encoding),
        ...(death !== undefined && { death }),
      }));
    default:
      // stored, boolean, text, json: the value as it is.
      return value;
  }
}

/** A JSON-RPC method: the command it runs, its name as the first argument, the params it takes. */
interface RpcMethod {
  /**
   * The method's name as the table spells it. Counted under this string rather than the one
   * parsed from the request: the counters' lookups then compare one string with itself.
   */
  method: string;
  spec: CommandSpec;
  name: Buffer;
  params: Set<string>;
}

/** A session for each HTTP connection: it cannot push, and HTTP decides when it closes. */
const rpcTransport: SessionTransport = {
  push: () => false,
  setProtocol: () => {},
  end: () => {},
};

export interface RpcServerOptions {
  /** Largest request body, in bytes. */
  maxBody: number;
  /** Most calls in one batch; a longer batch is refused whole. */
  maxBatch: number;
  /** Origins whose web pages may call; any other `Origin` is refused. */
  corsOrigins: readonly string[];
  /** Host names accepted on a loopback listener besides `localhost` and IP addresses. */
  hosts: readonly string[];
  /** Refuse clients from non-loopback addresses (no credentials are configured). */
  protectedMode: boolean;
  /** Serve the web console at `GET /` and `GET /console/<asset>`. */
  console: boolean;
  /** The Prometheus text of `GET /metrics`. */
  metrics: () => Promise<{ contentType: string; body: string }>;
}

/** The body of `/healthz` and `/readyz`: a status word, and why it is not ready. */
export interface HealthBody {
  status: 'ok' | 'ready' | 'unready' | 'shutting-down';
  reasons?: string[];
}

/** Calls of a batch run per event-loop turn; between slices other clients are served. */
const BATCH_SLICE = 100;
/** Bytes of a body scanned, and of batch elements parsed, per event-loop turn, for the same reason. */
const SCAN_SLICE_BYTES = 256 * 1024;
const PARSE_SLICE_BYTES = 256 * 1024;

/** The name in a `Host` header: port and IPv6 brackets removed, lower case, no trailing dot. */
export function hostName(header: string): string {
  let name = header.trim().toLowerCase();
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    name = close === -1 ? name.slice(1) : name.slice(1, close);
  } else if (name.indexOf(':') === name.lastIndexOf(':')) {
    // One colon: `name:port`. More than one is a bare IPv6 address, kept whole.
    const colon = name.indexOf(':');
    if (colon !== -1) name = name.slice(0, colon);
  }
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/**
 * DNS rebinding: a web page at `evil.example` whose name is made to resolve to 127.0.0.1 reaches
 * this server as same-origin, so no `Origin` check sees it; its `Host` header still says
 * `evil.example`. `localhost` and IP literals cannot be rebound; other names must be listed.
 * A request without `Host` (HTTP/1.0) is not from a browser and passes.
 */
export function hostAllowed(header: string | undefined, hosts: ReadonlySet<string>): boolean {
  if (header === undefined) return true;
  const name = hostName(header);
  return name === 'localhost' || isIP(name) !== 0 || hosts.has(name);
}

/** An origin as compared: lower case (scheme and host are case-insensitive), no trailing slash. */
function normalOrigin(origin: string): string {
  const lower = origin.trim().toLowerCase();
  return lower.endsWith('/') ? lower.slice(0, -1) : lower;
}

/** The origin of the listener a request came to, as its Host header names it: `http(s)://<host>`. */
function ownOrigin(req: IncomingMessage): string {
  const scheme = (req.socket as Socket & { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
  return normalOrigin(`${scheme}://${req.headers.host ?? ''}`);
}

/** A request's URL path, without its query string. */
function pathOf(url: string | undefined): string {
  const path = url ?? '';
  const query = path.indexOf('?');
  return query === -1 ? path : path.slice(0, query);
}

/** Why the server is not ready to serve (`/readyz`); empty when it is. */
function unreadiness(hub: Hub): string[] {
  const reasons: string[] = [];
  if (hub.closing) reasons.push('shutting down');
  const { hdd } = hub.storage;
  if (hdd.state !== 'ok') reasons.push(`hdd store ${hdd.state}: ${hdd.stateReason}`);
  if (hub.broker.closed) reasons.push('broker closed');
  return reasons;
}

/** For messages: a header value shortened and quoted. */
function quoted(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value);
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Stands for a call refused by the scanner without being parsed. */
const TOO_COMPLEX = Symbol('too complex');

function isId(id: unknown): id is string | number | null {
  return typeof id === 'string' || typeof id === 'number' || id === null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Why a parsed call is not a JSON-RPC 2.0 request, or undefined; such a call does not run. The
 * `id` check matters: json-rpc-2.0, which ran calls before, ran one whatever its `id` was and then
 * failed to answer it (an id nested 100,000 deep: the write was applied, the reply was HTTP 500).
 */
function requestProblem(request: unknown): string | undefined {
  if (request === TOO_COMPLEX) {
    return `a request may not be nested over ${MAX_REQUEST_DEPTH} levels deep or hold over ${MAX_REQUEST_VALUES} values`;
  }
  if (!isObject(request)) return 'a request must be an object';
  // Without "jsonrpc" it is JSON-RPC 1.0, as the seed's Go server (net/rpc/jsonrpc) spoke it.
  if ('jsonrpc' in request && request.jsonrpc !== '2.0') return 'jsonrpc must be "2.0" (or absent, for JSON-RPC 1.0)';
  if (typeof request.method !== 'string') return 'method must be a string';
  if ('id' in request && !isId(request.id)) return 'id must be a string, a number or null';
  if (request.result !== undefined || request.error !== undefined) return 'a request has no result or error';
  return undefined;
}

/** The JSON text of a call's response, or null for a notification, which gets none. */
type RpcResponse = string | null;

function invalidRequest(request: unknown, message: string): string {
  const id = isObject(request) && isId(request.id) ? request.id : null;
  const response: JSONRPCResponse = {
    jsonrpc: '2.0',
    id,
    error: { code: JSONRPCErrorCode.InvalidRequest, message, data: { code: ServerErrorCode.INVALID_REQUEST } },
  };
  return JSON.stringify(response);
}

/**
 * JSON-RPC 2.0 over HTTP (`POST /`), with the seed's method names. This class guards the door
 * (Host, protected mode, path, method, Origin, content type, body and batch size), reads bodies,
 * runs calls through a table of methods, batches in slices, and maps errors to stable codes.
 * A call the engine answers synchronously (memory) runs without a promise, so a batch of them
 * is cheap and its slices are short.
 */
export class RpcServer {
  /** Method name → the command it runs. */
  readonly #methods = new Map<string, RpcMethod>();
  readonly #dispatcher: Dispatcher;
  readonly #hub: Hub;
  readonly #logger: Logger;
  /**
   * Each HTTP connection's session and what was decided for it (see RpcConnection). The metrics
   * listener's connections have none: their checks are made in full on every request.
   */
  readonly #connections = new WeakMap<Socket, RpcConnection>();
  readonly #maxBody: number;
  readonly #maxBatch: number;
  readonly #corsOrigins: ReadonlySet<string>;
  readonly #hosts: ReadonlySet<string>;
  readonly #protectedMode: boolean;
  readonly #console: boolean;
  readonly #metrics: RpcServerOptions['metrics'];

  constructor(dispatcher: Dispatcher, hub: Hub, options: RpcServerOptions) {
    this.#dispatcher = dispatcher;
    this.#hub = hub;
    this.#logger = hub.logger;
    this.#maxBody = options.maxBody;
    this.#maxBatch = options.maxBatch;
    this.#corsOrigins = new Set(options.corsOrigins.map(normalOrigin));
    this.#hosts = new Set(options.hosts.map(hostName));
    this.#protectedMode = options.protectedMode;
    this.#console = options.console;
    this.#metrics = options.metrics;
    // The methods are the table's: a command with a JSON-RPC method needs nothing more here.
    for (const spec of allCommands()) {
      if (spec.rpc !== null)
        this.#methods.set(spec.rpc, { method: spec.rpc, spec, name: Buffer.from(spec.name), params: paramNames(spec) });
    }
  }

  /** The JSON-RPC methods served, in table order. */
  get methods(): string[] {
    return [...this.#methods.keys()];
  }

  /** Opens the session of an HTTP connection; it closes with the socket. */
  openSession(socket: Socket): void {
    // Its user is set by each request's credentials.
    const session = this.#hub.sessions.open('rpc', hostPort(socket), rpcTransport, null);
    this.#connections.set(socket, new RpcConnection(socket, session, this.#protectedMode));
    socket.once('close', () => session.close());
  }

  /** A request's connection; one without a session for a socket openSession never saw (the metrics listener's). */
  #connectionOf(socket: Socket): RpcConnection {
    let connection = this.#connections.get(socket);
    if (connection === undefined) {
      connection = new RpcConnection(socket, undefined, this.#protectedMode);
      this.#connections.set(socket, connection);
    }
    return connection;
  }

  /**
   * Runs one call's method through the dispatcher: the call's response, or a promise of it when
   * the method waits for the disk. What the method throws at once is thrown (see #run).
   */
  #invoke(
    entry: RpcMethod,
    v1: boolean,
    id: JSONRPCID | undefined,
    params: JSONRPCParams | undefined,
    connection: RpcConnection,
    user: User,
  ): MaybePromise<RpcResponse> {
    const { method, spec, name, params: known } = entry;
    const session = connection.session;
    if (session === undefined) throw new ServerError('INTERNAL', 'a JSON-RPC call on a connection without a session');
    session.lastCommandAt = Date.now();
    // Per call: requests on one HTTP connection may carry different credentials.
    session.user = user;
    // Counted before its params are read: a call refused for its params was still answered.
    this.#hub.stats.rpcCalls++;
    const p = paramsOf(params, spec);
    const encoding = encodingOf(p);
    const value = this.#dispatcher.call(spec, session, rpcArgs(spec, name, p, encoding, known));
    if (isPromise(value)) {
      return value
        .then((settled) => resultJson(spec.reply, settled, encoding))
        .then(
          (result) => this.#succeeded(method, v1, id, result),
          (err: unknown) => this.#failed(v1, id, method, err),
        );
    }
    return this.#succeeded(method, v1, id, resultJson(spec.reply, value, encoding));
  }

  /**
   * The HTTP request handler of the JSON-RPC listener. Every check below runs before the body is
   * read, in this order, and answers with a JSON-RPC error body whose `data.code` says which
   * check refused. Besides `POST /`: `GET /healthz` and `/readyz` (no credentials, and not
   * refused by protected mode: they tell nothing, and a probe comes from another address),
   * `GET /metrics` (an admin's credentials when there are credentials), and the console
   * (`GET /`, `GET /console/<asset>`) unless it is turned off.
   */
  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const post = req.method === 'POST';
    // Every answer depends on the Origin header (CORS), so caches must key on it. Every answer to
    // a POST is written by #send or #noContent, which name it in their writeHead: one setHeader
    // less on the path of every call.
    if (!post) res.setHeader('vary', 'Origin');
    const connection = this.#connectionOf(req.socket);
    if (!this.#checkHost(req, res, connection)) return;
    if (req.method === 'GET' || req.method === 'HEAD') {
      const path = pathOf(req.url);
      if (path === '/healthz' || path === '/readyz') {
        this.#health(req, res, path);
        return;
      }
      if (!this.#checkProtectedMode(req, res, connection)) return;
      if (path === '/metrics') {
        this.#serveMetrics(req, res, connection);
        return;
      }
      const page = this.#console ? consoleResponse(path) : undefined;
      if (page !== undefined) {
        res.writeHead(page.status, page.headers);
        res.end(page.body);
        return;
      }
    } else if (!this.#checkProtectedMode(req, res, connection)) return;
    if (!this.#checkPath(req, res)) return;
    if (req.method === 'OPTIONS') {
      this.#preflight(req, res);
      return;
    }
    if (!post) {
      this.#refuseMethod(req, res);
      return;
    }
    if (!this.#checkOrigin(req, res)) return;
    if (!this.#checkContentType(req, res)) return;
    // Known at once for every request but the first with credentials on a connection: no
    // closure and no promise then.
    const known = this.#knownUser(req, connection);
    if (known !== undefined) this.#readBody(req, res, connection, known);
    else this.#authenticated(req, res, connection, (user) => this.#readBody(req, res, connection, user));
  };

  /**
   * The HTTP request handler of the metrics listener (`--metrics-port`): `GET /metrics`,
   * `/healthz` and `/readyz` with the same checks as on the JSON-RPC listener, nothing else.
   */
  handleMetrics = (req: IncomingMessage, res: ServerResponse): void => {
    const connection = this.#connectionOf(req.socket);
    if (!this.#checkHost(req, res, connection)) return;
    const path = pathOf(req.url);
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') {
      this.#refuse(
        req,
        res,
        404,
        ServerErrorCode.NOT_FOUND,
        `no such path ${quoted(req.url ?? '')}: this listener serves GET /metrics, /healthz and /readyz`,
      );
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      this.#refuse(req, res, 405, ServerErrorCode.INVALID_REQUEST, `use GET for ${path}`);
      return;
    }
    if (path === '/metrics') {
      if (this.#checkProtectedMode(req, res, connection)) this.#serveMetrics(req, res, connection);
    } else {
      this.#health(req, res, path);
    }
  };

  /** Calls `then` with the request's user once its credentials are accepted; else they were refused and answered. */
  #authenticated(
    req: IncomingMessage,
    res: ServerResponse,
    connection: RpcConnection,
    then: (user: User) => void,
  ): void {
    const user = this.#authenticate(req, res, connection);
    if (user === undefined) return;
    if (!isPromise(user)) then(user);
    else this.#whenLoggedIn(req, res, user, then);
  }

  /** Calls `then` once a login checked on the thread pool is accepted; a refusal has been answered. */
  #whenLoggedIn(
    req: IncomingMessage,
    res: ServerResponse,
    user: Promise<User | undefined>,
    then: (user: User) => void,
  ): void {
    user.then(
      (settled) => {
        if (settled !== undefined) then(settled);
      },
      (err: unknown) => {
        this.#logger.error(`json-rpc: ${(err as Error)?.stack ?? String(err)}`);
        if (!res.headersSent) this.#refuse(req, res, 500, ServerErrorCode.INTERNAL, 'internal error');
      },
    );
  }

  /** `GET /metrics`: with credentials configured, for users with the admin right only (as STATS). */
  #serveMetrics(req: IncomingMessage, res: ServerResponse, connection: RpcConnection): void {
    this.#authenticated(req, res, connection, (user) => {
      if (!user.admin) {
        this.#refuse(
          req,
          res,
          403,
          ServerErrorCode.NOPERM,
          `user '${user.name}' has no permission to read /metrics, which needs admin`,
        );
        return;
      }
      this.#metrics().then(
        ({ contentType, body }) => {
          res.statusCode = 200;
          res.setHeader('content-type', contentType);
          res.setHeader('content-length', Buffer.byteLength(body));
          res.end(body);
        },
        (err: unknown) => {
          this.#logger.error(`metrics: ${(err as Error)?.stack ?? String(err)}`);
          if (!res.headersSent) this.#refuse(req, res, 500, ServerErrorCode.INTERNAL, 'internal error');
        },
      );
    });
  }

  /**
   * `/healthz` (liveness): 200 while the process serves, 503 once it shuts down. `/readyz`:
   * 200 while the hdd store is open and writable and the broker open; else 503 with the reasons.
   */
  #health(req: IncomingMessage, res: ServerResponse, path: '/healthz' | '/readyz'): void {
    const hub = this.#hub;
    let status: number;
    let body: HealthBody;
    if (path === '/healthz') {
      [status, body] = hub.closing ? [503, { status: 'shutting-down' }] : [200, { status: 'ok' }];
    } else {
      const reasons = unreadiness(hub);
      [status, body] = reasons.length === 0 ? [200, { status: 'ready' }] : [503, { status: 'unready', reasons }];
    }
    // A probe's answer is for now only.
    res.setHeader('cache-control', 'no-store');
    this.#send(res, status, JSON.stringify(body));
    this.#discardBody(req);
  }

  /**
   * The user of a request, from `Authorization: Basic` (user and password) or `Bearer` (a token);
   * undefined when it was refused and answered. Checked before the body is read. A refusal never
   * says which part was wrong.
   */
  #authenticate(req: IncomingMessage, res: ServerResponse, connection: RpcConnection): MaybePromise<User | undefined> {
    const known = this.#knownUser(req, connection);
    if (known !== undefined) return known;
    const auth = this.#hub.auth;
    const header = req.headers.authorization;
    if (header === undefined) {
      res.setHeader('www-authenticate', CHALLENGE);
      this.#refuse(
        req,
        res,
        401,
        ServerErrorCode.NOAUTH,
        'authentication required: send Authorization: Basic or Bearer',
      );
      return undefined;
    }
    const address = hostPort(req.socket);
    const generation = auth.generation;
    const accepted = (user: User): User => {
      connection.login = { header, user, generation };
      return user;
    };
    const refused = (err: unknown): undefined => {
      const code = (err as { code?: unknown }).code;
      if (code === ServerErrorCode.AUTH_RATE_LIMITED) {
        res.setHeader('retry-after', String(60));
        this.#refuse(req, res, 429, ServerErrorCode.AUTH_RATE_LIMITED, (err as Error).message);
      } else if (code === ServerErrorCode.WRONGPASS) {
        res.setHeader('www-authenticate', CHALLENGE);
        this.#refuse(req, res, 401, ServerErrorCode.WRONGPASS, (err as Error).message);
      } else {
        throw err;
      }
      return undefined;
    };
    try {
      const space = header.indexOf(' ');
      const scheme = header.slice(0, space).toLowerCase();
      const credentials = header.slice(space + 1).trim();
      if (space !== -1 && scheme === 'bearer') return accepted(auth.loginToken(credentials, address));
      if (space === -1 || scheme !== 'basic') {
        // Counted as a failure like a wrong password, so a malformed header is no way around the limit.
        auth.refuse('an Authorization header that is neither Basic nor Bearer', address);
      }
      const decoded = Buffer.from(credentials, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const name = colon <= 0 ? 'default' : decoded.slice(0, colon);
      const user = auth.login(name, decoded.slice(colon + 1), address);
      return isPromise(user) ? user.then(accepted, refused) : accepted(user);
    } catch (err) {
      return refused(err);
    }
  }

  /**
   * The user of a request when nothing needs checking: everyone, without credentials configured;
   * else the one that logged in on this connection with the same Authorization header. A
   * keep-alive client sends the same header with every request, and checking it again (an HMAC,
   * the rate limiter) cost a quarter of a Storage.Get. Decided again after a reload of the users.
   */
  #knownUser(req: IncomingMessage, connection: RpcConnection): User | undefined {
    const auth = this.#hub.auth;
    if (!auth.required) return Auth.everyone;
    const remembered = connection.login;
    if (remembered === undefined || remembered.generation !== auth.generation) return undefined;
    return remembered.header === req.headers.authorization ? remembered.user : undefined;
  }

  /**
   * DNS rebinding (see hostAllowed); only for requests that arrived on a loopback address. The
   * Host header last accepted on the connection passes without being parsed again.
   */
  #checkHost(req: IncomingMessage, res: ServerResponse, connection: RpcConnection): boolean {
    if (!connection.loopback) return true;
    const host = req.headers.host;
    if (host !== undefined && host === connection.acceptedHost) return true;
    if (hostAllowed(host, this.#hosts)) {
      connection.acceptedHost = host;
      return true;
    }
    const name = hostName(host ?? '');
    this.#refuse(
      req,
      res,
      403,
      ServerErrorCode.HOST_FORBIDDEN,
      `Host ${quoted(name)} is not accepted on a loopback address (DNS-rebinding protection): only localhost, ` +
        `IP addresses and the names given to --rpc-hosts are. Start the server with --rpc-hosts ${name} to allow it`,
    );
    return false;
  }

  /** Without credentials, a listener on a public address would let anyone on the network in. */
  #checkProtectedMode(req: IncomingMessage, res: ServerResponse, connection: RpcConnection): boolean {
    if (!connection.protectedDenied) return true;
    res.setHeader('connection', 'close');
    this.#refuse(req, res, 403, ServerErrorCode.DENIED, protectedModeMessage('JSON-RPC'));
    return false;
  }

  /** JSON-RPC is served at `/` alone, so no other URL on this port can be made to act. */
  #checkPath(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.url === '/') return true;
    this.#refuse(
      req,
      res,
      404,
      ServerErrorCode.NOT_FOUND,
      `no such path ${quoted(req.url ?? '')}: JSON-RPC is served at POST / (without a query string)`,
    );
    return false;
  }

  /** JSON-RPC is POST alone. */
  #refuseMethod(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('allow', this.#console ? 'GET, HEAD, POST' : 'POST');
    this.#refuse(req, res, 405, ServerErrorCode.INVALID_REQUEST, 'use POST with a JSON-RPC 2.0 body');
  }

  /**
   * CSRF: a web page on another site can make a browser POST here (a form, or fetch in `no-cors`
   * mode) and the browser sends its `Origin`. Requests without `Origin` are not from a browser
   * page's script (curl, server-side clients) and pass. An allowed origin gets CORS headers, so
   * its page may read the answer.
   */
  #checkOrigin(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    // The console's own page calls from the listener's origin: same-origin, no CORS needed. Only
    // when Host is one that #checkHost accepts on loopback (localhost, an IP address, --rpc-hosts),
    // on every listener: a page whose name was rebound to this server's address is same-origin
    // too, and its Host names the attacker's domain.
    if (
      req.headers.host !== undefined &&
      hostAllowed(req.headers.host, this.#hosts) &&
      normalOrigin(origin) === ownOrigin(req)
    )
      return true;
    if (this.#corsOrigins.has(normalOrigin(origin))) {
      res.setHeader('access-control-allow-origin', origin);
      return true;
    }
    this.#refuse(
      req,
      res,
      403,
      ServerErrorCode.ORIGIN_FORBIDDEN,
      `web pages from Origin ${quoted(origin)} may not call JSON-RPC (CSRF protection). ` +
        `Start the server with --rpc-cors-origins ${origin} to allow them`,
    );
    return false;
  }

  /** The CORS preflight a browser sends before a cross-origin POST with a JSON body. */
  #preflight(req: IncomingMessage, res: ServerResponse): void {
    if (req.headers.origin === undefined) {
      res.setHeader('allow', 'POST');
      this.#refuse(req, res, 405, ServerErrorCode.INVALID_REQUEST, 'use POST with a JSON-RPC 2.0 body');
      return;
    }
    if (!this.#checkOrigin(req, res)) return;
    res.statusCode = 204;
    res.setHeader('access-control-allow-methods', 'POST');
    // authorization: for the credentials (HTTP Basic/Bearer) that are to come.
    res.setHeader('access-control-allow-headers', 'content-type, authorization');
    res.setHeader('access-control-max-age', '600');
    res.end();
    this.#discardBody(req);
  }

  /**
   * A body declared JSON. Browsers send `text/plain`, form and multipart bodies cross-site
   * without asking (no preflight); `application/json` needs a preflight, which #preflight
   * grants only to listed origins. Checked before the body is read.
   */
  #checkContentType(req: IncomingMessage, res: ServerResponse): boolean {
    const declared = req.headers['content-type'];
    // What clients send, accepted without splitting and lower-casing it.
    if (declared === 'application/json') return true;
    const type = (declared ?? '').split(';')[0]?.trim().toLowerCase();
    if (type === 'application/json') return true;
    this.#refuse(
      req,
      res,
      415,
      ServerErrorCode.CONTENT_TYPE_INVALID,
      `send the body with Content-Type: application/json (got ${declared === undefined ? 'none' : quoted(declared)})`,
    );
    return false;
  }

  /**
   * Reads the body, bounded by maxBody, scanning it as it arrives so a batch over maxBatch is
   * refused before it is parsed (4,000,000 × `1` once froze the server for 16 minutes).
   */
  #readBody(req: IncomingMessage, res: ServerResponse, connection: RpcConnection, user: User): void {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.#maxBody) {
      this.#tooLarge(req, res);
      return;
    }
    const body = new RpcBody(this.#maxBody, this.#maxBatch);
    let refused = false;
    // Bytes taken in this event-loop turn: a socket read hands over up to 2 MiB at once, so
    // past the budget the request is paused until the next turn, and other clients go first.
    let takenThisTurn = 0;
    req.on('data', (chunk: Buffer) => {
      if (refused) {
        // A refused body is not kept, and one longer than maxBody costs its connection.
        if (body.skip(chunk)) req.socket.destroy();
        return;
      }
      const refusal = body.add(chunk);
      if (refusal !== undefined) {
        refused = true;
        if (refusal === 'body too large') this.#tooLarge(req, res);
        else this.#batchTooLarge(res);
        return;
      }
      takenThisTurn += chunk.length;
      if (takenThisTurn >= SCAN_SLICE_BYTES) {
        req.pause();
        setImmediate(() => {
          takenThisTurn = 0;
          req.resume();
        });
      }
    });
    req.on('end', () => {
      if (refused) return;
      // Thrown here, an error would end the process: it is answered 500 instead.
      try {
        const scanned = body.end();
        if (scanned === 'batch too large') this.#batchTooLarge(res);
        else this.#answer(body.bytes, scanned, connection, res, user);
      } catch (err) {
        this.#internalError(res, err);
      }
    });
  }

  /** A failure of ours while answering: logged with its stack, answered 500 if nothing was sent yet. */
  #internalError(res: ServerResponse, err: unknown): void {
    this.#logger.error(`json-rpc: ${(err as Error)?.stack ?? String(err)}`);
    if (!res.headersSent) this.#send(res, 500, errorBody('INTERNAL', JSONRPCErrorCode.InternalError, 'internal error'));
  }

  /** Answered as soon as the scanner counts one call too many; the rest of the body is dropped. */
  #batchTooLarge(res: ServerResponse): void {
    this.#send(
      res,
      413,
      errorBody(
        ServerErrorCode.BATCH_TOO_LARGE,
        JSONRPCErrorCode.InvalidRequest,
        `a batch may hold at most ${this.#maxBatch} calls (--rpc-max-batch); this one holds more, and none of it was run`,
      ),
    );
  }

  #tooLarge(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('connection', 'close');
    this.#send(
      res,
      413,
      errorBody('BODY_TOO_LARGE', JSONRPCErrorCode.InvalidRequest, `request body over ${this.#maxBody} bytes`),
    );
    // Stop reading the rest of the body: the connection is closed after the reply.
    req.on('data', () => {});
    res.on('finish', () => req.socket.destroy());
  }

  /** Answers a refused request, and throws away its body without keeping it. */
  #refuse(req: IncomingMessage, res: ServerResponse, status: number, code: ServerErrorCode, message: string): void {
    this.#send(res, status, errorBody(code, JSONRPCErrorCode.InvalidRequest, message));
    this.#discardBody(req);
  }

  /** Reads and drops a body nobody will use; one longer than maxBody costs its connection. */
  #discardBody(req: IncomingMessage): void {
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.#maxBody) req.socket.destroy();
    });
  }

  /**
   * Answers a body read whole. A single call the engine answers at once (memory) is answered in
   * the same turn, without a promise; a batch, or a call that waits for the disk, later.
   */
  #answer(body: Buffer, scanner: ScannedBody, connection: RpcConnection, res: ServerResponse, user: User): void {
    if (scanner.invalid) {
      this.#parseError(res);
      return;
    }
    if (scanner.batch) {
      this.#answerBatch(body, scanner.elements, connection, res, user).catch((err: unknown) =>
        this.#internalError(res, err),
      );
      return;
    }
    const request = parseElement(body, scanner.elements[0] as BodyElement);
    if (request === PARSE_FAILED) {
      this.#parseError(res);
      return;
    }
    const response = this.#run(request, connection, user);
    // Text or null at once; an object only when the method waits for the disk.
    if (response === null || typeof response === 'string') {
      this.#respond(res, response);
      return;
    }
    response.then(
      (settled) => this.#respond(res, settled),
      (err: unknown) => this.#internalError(res, err),
    );
  }

  /** The response to a single call: 200 with its JSON, or 204 for a notification. */
  #respond(res: ServerResponse, response: RpcResponse): void {
    if (response === null) this.#noContent(res);
    else this.#send(res, 200, response);
  }

  async #answerBatch(
    body: Buffer,
    elements: readonly BodyElement[],
    connection: RpcConnection,
    res: ServerResponse,
    user: User,
  ): Promise<void> {
    if (elements.length === 1 && elements[0]?.blank) {
      return this.#send(res, 200, errorBody('INVALID_REQUEST', JSONRPCErrorCode.InvalidRequest, 'empty batch'));
    }
    const requests = await parseBatch(body, elements);
    if (requests === undefined) return this.#parseError(res);
    // In slices, yielding between them: one Promise.all over the whole batch would run every
    // call before any other client (TCP included) is served.
    const parts: string[] = [];
    for (let i = 0; i < requests.length; i += BATCH_SLICE) {
      if (i > 0) await nextTurn();
      const slice = requests.slice(i, i + BATCH_SLICE).map((request) => this.#run(request, connection, user));
      const responses = slice.some(isPromise) ? await Promise.all(slice) : (slice as RpcResponse[]);
      for (const response of responses) if (response !== null) parts.push(response);
    }
    if (parts.length === 0) return this.#noContent(res);
    this.#send(res, 200, `[${parts.join(',')}]`);
  }

  /**
   * One call: its response, or null for a notification; synchronous when the method answered
   * synchronously. Errors of the method become error responses with the stable code.
   */
  #run(request: unknown, connection: RpcConnection, user: User): MaybePromise<RpcResponse> {
    const problem = requestProblem(request);
    if (problem !== undefined) return invalidRequest(request, problem);
    const { id, params } = request as JSONRPCRequest;
    const v1 = !('jsonrpc' in (request as object));
    const entry = this.#methods.get((request as JSONRPCRequest).method);
    if (entry === undefined) {
      // Counted as `unknown`: the name sent would let any caller make up label values.
      this.#hub.stats.rpc.count('unknown', ServerErrorCode.METHOD_NOT_FOUND);
      const error = {
        code: JSONRPCErrorCode.MethodNotFound,
        message: `no method ${quoted((request as JSONRPCRequest).method)}`,
      };
      return replyTo(v1, id, undefined, { ...error, data: { code: ServerErrorCode.METHOD_NOT_FOUND } });
    }
    try {
      return this.#invoke(entry, v1, id, params, connection, user);
    } catch (err) {
      return this.#failed(v1, id, entry.method, err);
    }
  }

  /** A call that succeeded: its response, counted once made. */
  #succeeded(method: string, v1: boolean, id: JSONRPCID | undefined, result: unknown): RpcResponse {
    const response = replyTo(v1, id, result);
    this.#hub.stats.rpc.count(method, 'ok');
    return response;
  }

  #failed(v1: boolean, id: JSONRPCID | undefined, method: string, err: unknown): RpcResponse {
    const error = rpcError(err);
    this.#hub.stats.rpc.count(method, error.data.code);
    if (error.data.code === ServerErrorCode.INTERNAL) {
      this.#logger.error(`json-rpc: ${(err as Error)?.stack ?? String(err)}`);
    } else if (this.#logger.debugEnabled) {
      this.#logger.debug(`json-rpc: ${error.data.code} ${error.message}`);
    }
    return replyTo(v1, id, undefined, error);
  }

  #parseError(res: ServerResponse): void {
    this.#send(res, 200, errorBody('PARSE_ERROR', JSONRPCErrorCode.ParseError, 'invalid JSON'));
  }

  #noContent(res: ServerResponse): void {
    res.writeHead(204, VARY_ORIGIN);
    res.end();
  }

  /**
   * A JSON answer. The headers go to writeHead as one list, which skips setHeader's per-header
   * bookkeeping when nothing was set before (the path of every call); headers set before (CORS,
   * `allow`, `www-authenticate`) are kept.
   */
  #send(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, [
      'content-type',
      'application/json',
      'content-length',
      Buffer.byteLength(body),
      'vary',
      'Origin',
    ]);
    res.end(body);
  }
}

/** The headers of a 204, which has no body: only Vary (see handle). */
const VARY_ORIGIN = ['vary', 'Origin'];

/** A parse failure of one call: the whole body is answered PARSE_ERROR. */
const PARSE_FAILED = Symbol('parse failed');

function parseElement(body: Buffer, element: BodyElement): unknown {
  if (element.tooComplex) return TOO_COMPLEX;
  try {
    return JSON.parse(body.toString('utf8', element.start, element.end));
  } catch {
    return PARSE_FAILED;
  }
}

/**
 * The calls of a batch, parsed a slice of bytes at a time; undefined when one is not JSON (the
 * whole batch is then a parse error, and none of it runs).
 */
async function parseBatch(body: Buffer, elements: readonly BodyElement[]): Promise<unknown[] | undefined> {
  const requests: unknown[] = [];
  let bytes = 0;
  for (const element of elements) {
    // A hole, as in [1,,2] or [1,].
    if (element.blank) return undefined;
    const request = parseElement(body, element);
    if (request === PARSE_FAILED) return undefined;
    requests.push(request);
    bytes += element.end - element.start;
    if (bytes >= PARSE_SLICE_BYTES) {
      bytes = 0;
      await nextTurn();
    }
  }
  return requests;
}

/**
 * The JSON of the response to a call: JSON-RPC 2.0, or 1.0 for a request without "jsonrpc"
 * (`result` and `error` both present, one of them null, as Go's net/rpc/jsonrpc client expects).
 * Null for a notification, which gets none (2.0: no id; 1.0: a null or missing id).
 */
function replyTo(v1: boolean, id: JSONRPCID | undefined, result: unknown, error?: JSONRPCError): RpcResponse {
  if (v1) {
    if (id === undefined || id === null) return null;
    return JSON.stringify({ id, result: error === undefined ? result : null, error: error ?? null });
  }
  if (id === undefined) return null;
  return error === undefined ? successJson(id, result) : JSON.stringify({ jsonrpc: '2.0', id, error });
}

/**
 * A JSON-RPC 2.0 success, the text JSON.stringify makes of `{ jsonrpc: '2.0', id, result }`,
 * written without making that object: the path of every call that succeeds.
 */
function successJson(id: JSONRPCID, result: unknown): string {
  const json = JSON.stringify(result);
  // A result that JSON cannot hold (undefined) is left out, as JSON.stringify leaves out the key.
  if (json === undefined) return `{"jsonrpc":"2.0","id":${JSON.stringify(id)}}`;
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${json}}`;
}

/** A JSON-RPC error about the request as a whole (`id: null`), with its stable code. */
export function errorBody(code: string, rpcCode: number, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: rpcCode, message, data: { code } } });
}
