// JSON-RPC load for the server benchmark: autocannon with keep-alive connections, each POST a
// Storage.Get or Storage.Set of one of a fixed list of preloaded keys (requests built once, so
// the client does as little work per request as it can).
import autocannon from 'autocannon';

export interface RpcLoad {
  port: number;
  method: 'Storage.Get' | 'Storage.Set';
  keys: readonly string[];
  value: string;
  connections: number;
  durationSeconds: number;
  /** More request headers (`authorization`). */
  headers?: Readonly<Record<string, string>>;
}

export interface RpcLoadResult {
  requestsPerSec: number;
  requests: number;
  durationSeconds: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** 2xx responses whose body was not the expected JSON-RPC result (an error object, say). */
  mismatches: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
}

function body(method: RpcLoad['method'], key: string, value: string): string {
  const params = method === 'Storage.Set' ? { type: 'memory', key, value, ttl: 0 } : { type: 'memory', key };
  return JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
}

/** The body every response must have. */
export function expectedResponse(method: RpcLoad['method'], value: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: 1, result: method === 'Storage.Set' ? true : value });
}

/** One JSON-RPC call with fetch; resolves with the response body. */
export async function rpcCall(
  port: number,
  payload: unknown,
  headers: Readonly<Record<string, string>> = {},
): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(payload),
  });
  return { status: response.status, text: await response.text() };
}

/** Sets every key to `value` with batches of Storage.Set, and checks each result. */
export async function preloadRpc(port: number, keys: readonly string[], value: string): Promise<void> {
  const batch = 1000;
  for (let i = 0; i < keys.length; i += batch) {
    const calls = keys.slice(i, i + batch).map((key, j) => ({
      jsonrpc: '2.0',
      id: i + j,
      method: 'Storage.Set',
      params: { type: 'memory', key, value, ttl: 0 },
    }));
    const { status, text } = await rpcCall(port, calls);
    const results = status === 200 ? (JSON.parse(text) as { result?: unknown }[]) : [];
    if (results.length !== calls.length || results.some((r) => r.result !== true)) {
      throw new Error(`JSON-RPC preload: HTTP ${status}, unexpected response ${text.slice(0, 300)}`);
    }
  }
}

export async function rpcLoad(load: RpcLoad): Promise<RpcLoadResult> {
  const expected = expectedResponse(load.method, load.value);
  const result = await autocannon({
    url: `http://127.0.0.1:${load.port}/`,
    connections: load.connections,
    pipelining: 1,
    duration: load.durationSeconds,
    headers: { 'content-type': 'application/json', ...load.headers },
    requests: load.keys.map((key) => ({ method: 'POST', path: '/', body: body(load.method, key, load.value) })),
    verifyBody: (text) => text === expected,
  });
  return {
    requestsPerSec: result.requests.total / result.duration,
    requests: result.requests.total,
    durationSeconds: result.duration,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches,
    p50LatencyMs: result.latency.p50,
    p99LatencyMs: result.latency.p99,
  };
}
