// The console's files and how they are served, without a browser: which paths answer, the
// security headers, and checks on the assets that keep the Content-Security-Policy workable and
// server data out of HTML parsing (the browser test, console.test.ts, shows it in use).
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import t from 'tap';
import { type ConsoleResponse, consoleResponse } from '../src/console.js';
import { startServer } from './common/harness.js';

const ASSETS = new URL('../console/', import.meta.url);

t.test('GET / is the page, /console/<asset> its files, with their types', async (t) => {
  const types: Record<string, string> = {
    '/': 'text/html; charset=utf-8',
    '/console/app.js': 'text/javascript; charset=utf-8',
    '/console/style.css': 'text/css; charset=utf-8',
    '/console/favicon.svg': 'image/svg+xml',
  };
  for (const [path, type] of Object.entries(types)) {
    const answer = consoleResponse(path);
    t.equal(answer?.status, 200, `${path} is served`);
    t.equal(answer?.headers['content-type'], type, `${path} is ${type}`);
    t.equal(answer?.headers['content-length'], String(answer?.body.length), `${path} says its length`);
  }
  const page = consoleResponse('/');
  t.equal(page?.body.toString(), await readFile(new URL('index.html', ASSETS), 'utf8'), '/ is index.html');
  t.equal(consoleResponse('/'), page, 'read once, then served from memory');
});

t.test('every answer forbids framing, sniffing and any script but its own', async (t) => {
  const { headers } = consoleResponse('/console/app.js') as ConsoleResponse;
  const csp = Object.fromEntries(
    (headers['content-security-policy'] ?? '').split('; ').map((directive: string) => {
      const [name, ...values] = directive.split(' ');
      return [name, values.join(' ')];
    }),
  );
  t.same(
    csp,
    {
      'default-src': "'none'",
      'script-src': "'self'",
      'style-src': "'self'",
      'img-src': "'self'",
      'connect-src': "'self'",
      'base-uri': "'none'",
      'form-action': "'none'",
      'frame-ancestors': "'none'",
    },
    'the Content-Security-Policy',
  );
  t.equal(headers['x-frame-options'], 'DENY');
  t.equal(headers['x-content-type-options'], 'nosniff');
  t.equal(headers['referrer-policy'], 'no-referrer');
  t.equal(headers['cache-control'], 'no-cache');
  t.throws(() => {
    (headers as Record<string, string>)['set-cookie'] = 'x=1';
  }, 'the shared headers cannot be changed by a caller');
});

t.test('any other path is no console file: 404', async (t) => {
  for (const path of [
    '',
    '/index.html',
    '/console',
    '/console/',
    '/console/index.html',
    '/console/../package.json',
    '/console/..%2fpackage.json',
    '/console/%2e%2e/src/console.ts',
    '/console/app.js/',
    '/console/APP.JS',
    '/console/app.js\0',
    '/../console/app.js',
    '//console/app.js',
    '/constructor',
    '/__proto__',
    '/toString',
  ]) {
    t.equal(consoleResponse(path), undefined, `${JSON.stringify(path)} is not found`);
  }
});

t.test('the page loads only its own files, and no script or style inline', async (t) => {
  const html = await readFile(new URL('index.html', ASSETS), 'utf8');
  const references = [...html.matchAll(/\b(?:src|href)="([^"#]+)"/g)].map((m) => m[1]);
  t.same(references.sort(), ['/console/app.js', '/console/favicon.svg', '/console/style.css']);
  for (const reference of references) t.ok(consoleResponse(reference as string), `${reference} is served`);
  t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script (the CSP would block it)');
  t.notMatch(html, /<style|\sstyle="|\son[a-z]+="/, 'no inline style or event handler attribute');
});

t.test('the script never hands text to an HTML parser', async (t) => {
  const script = await readFile(new URL('app.js', ASSETS), 'utf8');
  for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function']) {
    t.notOk(script.includes(sink), `app.js does not use ${sink}`);
  }
  t.notMatch(script, /localStorage/, 'credentials are never kept beyond the tab (sessionStorage only)');
});

/** A GET or HEAD to the server's JSON-RPC listener: status, headers and body. */
function get(address: { host: string; port: number }, path: string, method = 'GET') {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ host: address.host, port: address.port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

t.test('the JSON-RPC listener serves the console, unless it is turned off', async (t) => {
  const on = await startServer(t);
  const address = on.server.addresses.rpc as { host: string; port: number };
  const page = await get(address, '/');
  t.equal(page.status, 200);
  t.match(page.body, /<title>Hati console<\/title>/);
  t.equal(page.headers['x-frame-options'], 'DENY');
  const head = await get(address, '/console/app.js', 'HEAD');
  t.equal(head.status, 200, 'HEAD answers');
  t.equal(head.body, '', 'without a body');
  t.equal(head.headers['content-length'], String(consoleResponse('/console/app.js')?.body.length));
  t.equal((await get(address, '/console/../package.json')).status, 404, 'no way out of the assets');
  t.equal((await get(address, '/console/nope.js')).status, 404);

  const off = await startServer(t, { console: false });
  const refused = await get(off.server.addresses.rpc as { host: string; port: number }, '/');
  t.equal(refused.status, 405, 'console: false (`--console no`): GET / is refused, as POST is what / takes');
  t.notMatch(refused.body, /<html/i, 'no page');
});
