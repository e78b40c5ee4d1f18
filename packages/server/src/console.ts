// The web console's static assets (packages/server/console/), answered by the JSON-RPC
// listener's `GET /` and `GET /console/<asset>`. The pages call JSON-RPC from their own origin
// with the user's credentials; this module only hands out files.
import { readFileSync } from 'node:fs';

/** An answer to a GET of a console path; the listener writes it as it is (HEAD: without the body). */
export interface ConsoleResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Where the assets are: `console/` of the package, next to `src/` and `dist/`. */
const ASSETS = new URL('../console/', import.meta.url);

/**
 * The files served, by URL path. A fixed list rather than a directory lookup: no path a request
 * makes up (`..`, `%2e%2e`, a NUL, a symlink) can ever reach another file.
 */
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/console/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/console/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/**
 * Only this origin's files and JSON-RPC, no inline script or style, no plugins, no framing: keys
 * and messages shown by the pages are written by whoever can write to the server, so even a
 * rendering mistake must not be able to run their script or send data elsewhere.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // Revalidated on each load, so a server upgrade never runs a cached page against a new API.
  'cache-control': 'no-cache',
};

/** Each file as read once, on its first request. */
const cache = new Map<string, ConsoleResponse>();

/**
 * The answer to a GET (or HEAD) of `pathname` (the URL path, without the query string), or
 * undefined when it is no console file (the listener answers 404). A file missing from the
 * installed package is undefined too, and read again on the next request.
 */
export function consoleResponse(pathname: string): ConsoleResponse | undefined {
  const cached = cache.get(pathname);
  if (cached !== undefined) return cached;
  if (!Object.hasOwn(FILES, pathname)) return undefined;
  const { file, type } = FILES[pathname] as { file: string; type: string };
  let body: Buffer;
  try {
    body = readFileSync(new URL(file, ASSETS));
  } catch {
    return undefined;
  }
  // Shared by every request: frozen, so a caller that adds a header cannot add it to the next answer.
  const response: ConsoleResponse = Object.freeze({
    status: 200,
    headers: Object.freeze({ ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(body.length) }),
    body,
  });
  cache.set(pathname, response);
  return response;
}
