import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Bytes, type KeyValueStore, StorageError, type StorageManager } from '@hati/storage';
import {
  JSONRPCErrorCode,
  JSONRPCErrorException,
  type JSONRPCParams,
  type JSONRPCResponse,
  JSONRPCServer,
} from 'json-rpc-2.0';
import { describeError, ServerError, ServerErrorCode } from './errors.js';
import type { Logger } from './logger.js';
import type { ServerStats } from './stats.js';

/** Codes of errors the caller can fix by changing the params: JSON-RPC "invalid params". */
const INPUT_CODES = new Set([
  'PARAMS_INVALID',
  'STORAGE_TYPE_INVALID',
  'KEY_EMPTY',
  'KEY_INVALID',
  'VALUE_INVALID',
  'TTL_INVALID',
]);

/** Our code for each error the JSON-RPC library makes itself. */
const STANDARD_CODES: Record<number, string> = {
  [JSONRPCErrorCode.ParseError]: ServerErrorCode.PARSE_ERROR,
  [JSONRPCErrorCode.InvalidRequest]: ServerErrorCode.INVALID_REQUEST,
  [JSONRPCErrorCode.MethodNotFound]: ServerErrorCode.METHOD_NOT_FOUND,
  [JSONRPCErrorCode.InvalidParams]: ServerErrorCode.PARAMS_INVALID,
  [JSONRPCErrorCode.InternalError]: ServerErrorCode.INTERNAL,
};

/** Turns any error into a JSON-RPC error whose `data.code` is the stable code. */
function rpcError(err: unknown): JSONRPCErrorException {
  const { code, message } = describeError(err);
  const rpcCode = INPUT_CODES.has(code) ? JSONRPCErrorCode.InvalidParams : -32000;
  return new JSONRPCErrorException(message, rpcCode, { code });
}

function paramsError(message: string): ServerError {
  return new ServerError('PARAMS_INVALID', message);
}

type Params = Record<string, unknown>;
type Encoding = 'utf8' | 'base64';

/** Params as an object, or (as the seed's Go server took them) an array holding one object. */
function paramsOf(params: JSONRPCParams | undefined): Params {
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

/** A string param as bytes: UTF-8 text, or base64 with `"encoding":"base64"`. */
function bytesParam(params: Params, name: string, encoding: Encoding): Bytes {
  const value = params[name];
  if (typeof value !== 'string')
    throw paramsError(`${name} must be a string, got ${value === null ? 'null' : typeof value}`);
  return encoding === 'base64' ? Buffer.from(value, 'base64') : value;
}

/** A ttl given as a number or a numeric string; 0 when absent. The engine checks its range. */
function ttlParam(params: Params): number {
  const ttl = params.ttl ?? 0;
  if (typeof ttl === 'number') return ttl;
  if (typeof ttl === 'string' && /^\d+$/.test(ttl)) return Number(ttl);
  throw new StorageError(
    'TTL_INVALID',
    `ttl must be a non-negative integer number of milliseconds, got ${JSON.stringify(ttl)}`,
  );
}

/**
 * JSON-RPC 2.0 over HTTP (`POST /`), with the seed's method names. Requests and batches are
 * run by `json-rpc-2.0`; this class reads bodies (bounded), maps errors to stable codes, and
 * implements the methods.
 */
export class RpcServer {
  readonly #rpc: JSONRPCServer;
  readonly #storage: StorageManager;
  readonly #stats: ServerStats;
  readonly #logger: Logger;
  readonly #maxBody: number;
  #closing = false;

  constructor(storage: StorageManager, stats: ServerStats, logger: Logger, maxBody: number) {
    this.#storage = storage;
    this.#stats = stats;
    this.#logger = logger;
    this.#maxBody = maxBody;
    this.#rpc = new JSONRPCServer({
      errorListener: (message, data) => {
        if (logger.debugEnabled) logger.debug(`json-rpc: ${message} ${String(data)}`);
      },
    });
    // Every method: counted, refused while shutting down, errors mapped to stable codes.
    // `takesParams: false` (Server.Stats) ignores params instead of requiring an object.
    const method = (name: string, run: (params: Params) => unknown, takesParams = true) => {
      this.#rpc.addMethod(name, async (params: JSONRPCParams | undefined) => {
        this.#stats.rpcCalls++;
        if (this.#closing) throw rpcError(new ServerError('SHUTTING_DOWN', 'the server is shutting down'));
        try {
          return await run(takesParams ? paramsOf(params) : {});
        } catch (err) {
          throw rpcError(err);
        }
      });
    };
    method('Storage.Set', async (p) => {
      const encoding = encodingOf(p);
      const engine = this.#engine(p);
      await engine.set(bytesParam(p, 'key', encoding), bytesParam(p, 'value', encoding), ttlParam(p));
      return true;
    });
    method('Storage.Get', async (p) => {
      const encoding = encodingOf(p);
      const value = await this.#engine(p).getBuffer(bytesParam(p, 'key', encoding));
      return value === undefined ? null : value.toString(encoding);
    });
    method('Storage.Has', async (p) => this.#engine(p).has(bytesParam(p, 'key', encodingOf(p))));
    method('Storage.Delete', async (p) => this.#engine(p).delete(bytesParam(p, 'key', encodingOf(p))));
    method('Storage.FlushAll', async (p) => {
      await this.#engine(p).flushAll();
      return true;
    });
    method('Storage.Count', async (p) => this.#engine(p).count());
    method('Server.Stats', () => this.#stats.snapshot(this.#storage), false);
  }

  /** From now on every call answers SHUTTING_DOWN. */
  close(): void {
    this.#closing = true;
  }

  #engine(params: Params): KeyValueStore {
    if (typeof params.type !== 'string') throw paramsError('type must be a string: memory or hdd');
    return this.#storage.engine(params.type);
  }

  /** The HTTP request handler. */
  handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      this.#send(
        res,
        405,
        errorBody('INVALID_REQUEST', JSONRPCErrorCode.InvalidRequest, 'use POST with a JSON-RPC 2.0 body'),
      );
      req.resume();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.#maxBody) {
      this.#tooLarge(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.#maxBody) {
        if (!res.headersSent) this.#tooLarge(req, res);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > this.#maxBody) return;
      this.#answer(Buffer.concat(chunks, size).toString('utf8'), res).catch((err: unknown) => {
        this.#logger.error(`json-rpc: ${(err as Error)?.stack ?? String(err)}`);
        if (!res.headersSent)
          this.#send(res, 500, errorBody('INTERNAL', JSONRPCErrorCode.InternalError, 'internal error'));
      });
    });
  };

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

  async #answer(body: string, res: ServerResponse): Promise<void> {
    let request: unknown;
    try {
      request = JSON.parse(body);
    } catch {
      return this.#send(res, 200, errorBody('PARSE_ERROR', JSONRPCErrorCode.ParseError, 'invalid JSON'));
    }
    if (Array.isArray(request) && request.length === 0) {
      return this.#send(res, 200, errorBody('INVALID_REQUEST', JSONRPCErrorCode.InvalidRequest, 'empty batch'));
    }
    const response = await this.#rpc.receive(request as never);
    if (response === null || (Array.isArray(response) && response.length === 0)) {
      res.statusCode = 204;
      res.end();
      return;
    }
    const responses = Array.isArray(response) ? response : [response];
    for (const r of responses) withStableCode(r);
    this.#send(res, 200, JSON.stringify(response));
  }

  #send(res: ServerResponse, status: number, body: string): void {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-length', Buffer.byteLength(body));
    res.end(body);
  }
}

/** Adds `data.code` to the errors json-rpc-2.0 makes itself (parse, invalid request, unknown method). */
function withStableCode(response: JSONRPCResponse): void {
  const error = response.error;
  if (error === undefined) return;
  if (typeof error.data?.code === 'string') return;
  error.data = { ...(error.data ?? {}), code: STANDARD_CODES[error.code] ?? ServerErrorCode.INTERNAL };
}

function errorBody(code: string, rpcCode: number, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: rpcCode, message, data: { code } } });
}
