// One HTTP or HTTPS POST of a JSON body, for tests that need what rpcPost does not give: request
// headers (credentials), TLS options (a CA, a client certificate), a chosen agent, the response's
// headers.
import { type Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Address } from './raw-client.js';

export interface PostOptions {
  /** Extra request headers; `content-type: application/json` is always sent. */
  headers?: Record<string, string>;
  /** POST over HTTPS with these PEM strings (the CA to trust, a client certificate and its key). */
  tls?: { ca?: string; cert?: string; key?: string };
  /**
   * The agent: a keep-alive one to reuse a connection. @default false (a connection of its own,
   * closed after the answer, so that no socket left open holds a server's shutdown)
   */
  agent?: HttpAgent | false;
}

export interface PostAnswer {
  status: number;
  /** The parsed body, or undefined when it is empty. */
  json: unknown;
  headers: IncomingHttpHeaders;
}

/** POSTs `body` (a string as it is, anything else as JSON) to `/` of `address`. */
export function postJson(address: Address, body: unknown, options: PostOptions = {}): Promise<PostAnswer> {
  const request = options.tls === undefined ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: address.host,
        port: address.port,
        method: 'POST',
        path: '/',
        headers: { 'content-type': 'application/json', ...options.headers },
        agent: options.agent ?? false,
        ...options.tls,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: text === '' ? undefined : JSON.parse(text),
            headers: res.headers,
          }),
        );
      },
    );
    req.once('error', reject);
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}
