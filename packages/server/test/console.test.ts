// The web console in a real browser: Debian's Chromium, driven headless by puppeteer-core, against
// a real server. One browser for the whole file; a screenshot of each page goes to
// test-output/console/ (or $HATI_SCREENSHOTS) for people to look at.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '@hati/test-helpers';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import t, { type Test } from 'tap';
import { hashPassword, newToken, writeUsersFile } from '../src/index.js';
import { type Harness, RawClient, type Reply, startServer } from './common/harness.js';

const CHROMIUM = process.env.HATI_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.HATI_SCREENSHOTS ?? new URL('../test-output/console/', import.meta.url).pathname;
const hasChromium = existsSync(CHROMIUM);
/** How long a page may take to show what a test waits for: generous for a loaded CI box. */
const WAIT_MS = 15_000;

if (!hasChromium && process.env.CI) {
  // In CI the browser test must run: scripts/test.sh installs Chromium as it does redis-tools.
  t.fail(`${CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does it as root)`);
}
const skip = hasChromium ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

let browser: Browser | undefined;
if (hasChromium) {
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox refuses to start as root (containers, CI).
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage', '--disable-gpu'],
  });
  t.teardown(() => browser?.close());
}

/** The console's address: the JSON-RPC listener's root. */
function consoleUrl(h: Harness, route = 'overview'): string {
  const { host, port } = h.server.addresses.rpc as { host: string; port: number };
  return `http://${host}:${port}/#/${route}`;
}

/**
 * A new tab (closed after the test) that fails the test on a script error, a Content Security
 * Policy violation or a dialog (a key's markup running as script would `alert`).
 */
async function openPage(t: Test): Promise<Page> {
  const page = await (browser as Browser).newPage();
  await page.setViewport({ width: 1280, height: 900 });
  t.teardown(() => page.close());
  page.on('pageerror', (err) => t.fail(`no script error in the page: ${(err as Error).message}`));
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) t.fail(`no CSP violation: ${message.text()}`);
  });
  page.on('dialog', (dialog) => {
    t.fail(`no dialog opens: ${dialog.type()} ${dialog.message()}`);
    void dialog.dismiss();
  });
  return page;
}

/** Waits until `check` holds, polled from here (no eval in the page: its CSP forbids it). */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`waited in vain for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until the element's text passes `test` and returns the text. */
async function waitText(page: Page, selector: string, test: (text: string) => boolean): Promise<string> {
  let last = '';
  const shows = async () => {
    last = await page.$eval(selector, (node) => node.textContent ?? '').catch(() => '');
    return test(last);
  };
  await until(shows, selector).catch(() => {
    throw new Error(`${selector} never showed what was awaited; it shows ${JSON.stringify(last)}`);
  });
  return last;
}

/** A rate as the page shows it (`950/s`, `7,494/s`, `12k/s`) as a number, NaN for `–`. */
function perSecond(text: string): number {
  const match = /^([\d,.]+)(k?)\/s$/.exec(text);
  return match === null ? Number.NaN : Number((match[1] as string).replace(/,/g, '')) * (match[2] === 'k' ? 1000 : 1);
}

/** Whether the element has the `hidden` attribute. */
const isHidden = (page: Page, selector: string) => page.$eval(selector, (node) => node.hasAttribute('hidden'));

const text = (page: Page, selector: string) => page.$eval(selector, (node) => node.textContent ?? '');

/** Saves a PNG of the page and checks it is one: the signature, and IHDR's width and height. */
async function screenshot(t: Test, page: Page, name: string): Promise<void> {
  const png = Buffer.from(await page.screenshot({ fullPage: true }));
  await mkdir(SCREENSHOTS, { recursive: true });
  await writeFile(join(SCREENSHOTS, `${name}.png`), png);
  t.same(png.subarray(0, 8), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), `${name}.png is a PNG`);
  t.equal(png.readUInt32BE(16), 1280, `${name}.png is as wide as the viewport`);
  t.ok(png.readUInt32BE(20) >= 900, `${name}.png is at least as tall as the viewport`);
}

async function ok(c: RawClient, ...words: string[]): Promise<Reply> {
  const reply = await c.command(...words);
  if (reply instanceof Error) throw reply;
  return reply;
}

t.test('the overview shows live numbers that move with traffic', { skip }, async (t) => {
  const h = await startServer(t);
  const page = await openPage(t);
  const response = await page.goto(consoleUrl(h));
  t.equal(response?.status(), 200, 'GET / answers the console');
  const headers = response?.headers() ?? {};
  t.match(headers['content-security-policy'], /script-src 'self'/, 'with a Content-Security-Policy');
  t.equal(headers['x-frame-options'], 'DENY');
  await waitText(page, '#keys-memory', (text) => text === '0');
  t.equal(await text(page, '#keys-hdd'), '0', 'no hdd keys yet');
  t.match(await text(page, '#hdd-state'), /^ok, durability no$/);

  const idle = await waitText(page, '#tp-now', (text) => perSecond(text) >= 0);
  t.ok(perSecond(idle) < 100, `idle, the throughput is the console's own polling: ${idle}`);

  // Traffic over TCP until the page shows it: 500 keys, written again and again.
  const c = await RawClient.tcp(t, h);
  await c.send(Array.from({ length: 40 }, (_, i) => ['SET', 'hdd', '0', `disk:${i}`, 'v']));
  let running = true;
  const traffic = (async () => {
    while (running) {
      await c.send(Array.from({ length: 500 }, (_, i) => ['SET', 'memory', '0', `load:${i}`, 'v']));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const keys = await waitText(page, '#keys-memory', (text) => text === '500');
  t.equal(keys, '500', 'the memory key count rose to the 500 keys written');
  const throughput = await waitText(page, '#tp-now', (text) => perSecond(text) >= 100);
  t.match(throughput, /^[\d,.]+k?\/s$/, `throughput shows the traffic: ${throughput}`);
  const connections = await waitText(page, '#conn-split', (text) => /tcp 1 /.test(text));
  t.match(connections, /^tcp 1 · unix 0 · rpc \d+$/, 'the TCP connection is counted');
  // Asked on a connection of its own: the traffic's replies are still coming on the other one.
  const stats = (await ok(await RawClient.tcp(t, h), 'STATS')) as Buffer;
  if (JSON.parse(stats.toString()).commands.latencyUs !== undefined) {
    const p99 = await waitText(page, '#lat-p99', (text) => /\d (µs|ms|s)$/.test(text));
    t.match(p99, /^[\d.]+ (µs|ms|s)$/, `p99 latency is shown: ${p99}`);
  } else {
    t.equal(await isHidden(page, '#latency-note'), false, 'no histogram, said so');
  }
  const shardTotal = await page.$$eval('#shards tr', (rows) =>
    rows.reduce((sum, row) => sum + Number(row.children[1]?.querySelector('.n')?.textContent ?? 0), 0),
  );
  t.equal(shardTotal, 500, 'the memory shards add up to the keys');
  t.equal(await waitText(page, '#keys-hdd', (text) => text === '40'), '40', 'the hdd key count');
  // A few seconds of samples, so that the screenshot's charts have lines.
  await until(async () => Number(await page.$eval('body', (body) => body.getAttribute('data-polls'))) >= 4, 'polls');
  running = false;
  await traffic;
  await screenshot(t, page, 'overview');
});

t.test('the key browser scans, shows a key as text, and deletes it', { skip }, async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  const hostile = '<img src=x onerror=alert(1)>';
  await ok(c, 'SET', 'memory', '60000', hostile, '<b>not bold</b>');
  await c.send(Array.from({ length: 120 }, (_, i) => ['SET', 'hdd', '0', `user:${i}`, `name ${i}`]));
  const page = await openPage(t);
  await page.goto(consoleUrl(h, 'keys'));

  await page.locator('#scan-pattern').fill('<*');
  await page.locator('#scan').click();
  await waitText(page, '#scan-result', (text) => text.includes('scan complete'));
  t.same(await page.$$eval('#keys li', (items) => items.map((item) => item.textContent)), [hostile], 'found as text');
  t.equal(await page.$$eval('img', (images) => images.length), 0, 'the markup in the key made no element');

  await page.locator('#keys li button').click();
  await waitText(page, '#key-ttl', (text) => text !== '');
  t.equal(await text(page, '#key-name'), hostile);
  t.equal(await text(page, '#key-value'), '<b>not bold</b>', 'the value is shown as text');
  t.equal(await page.$$eval('#key-value b', (nodes) => nodes.length), 0);
  t.equal(await text(page, '#key-ttl'), '60,000 ms (1m 0s)', 'the ttl (the server clock stands still)');
  t.equal(await text(page, '#key-size'), '15 B');
  await screenshot(t, page, 'keys');

  await page.locator('#key-delete').click();
  t.equal(await text(page, '#key-delete'), 'Delete: click again', 'a delete asks for a second click');
  await page.locator('#key-delete').click();
  await waitText(page, '#key-result', (text) => text === 'Deleted.');
  t.equal(await ok(c, 'HAS', 'memory', hostile), 0, 'the key is gone from the server');
  t.equal(await page.$$eval('#keys li', (items) => items.length), 0, 'and from the list');

  // Paging: 120 hdd keys, 50 and more per click, until the scan is complete.
  await page.select('#scan-type', 'hdd');
  await page.locator('#scan-pattern').fill('user:*');
  await page.locator('#scan').click();
  await waitText(page, '#scan-result', (text) => text.includes('more to scan'));
  const first = await page.$$eval('#keys li', (items) => items.length);
  t.ok(first >= 50 && first < 120, `a first page of keys (${first})`);
  while (!(await text(page, '#scan-result')).includes('scan complete')) {
    const before = await page.$$eval('#keys li', (items) => items.length);
    await page.locator('#scan-more').click();
    await until(async () => (await page.$$eval('#keys li', (items) => items.length)) > before, 'more keys listed');
    await waitText(page, '#scan-result', (text) => !text.startsWith('scanning'));
  }
  const all = await page.$$eval('#keys li', (items) => items.map((item) => item.textContent));
  t.equal(new Set(all).size, 120, 'every key was listed');
  t.equal(await text(page, '#scan-result'), '120 keys matching user:* in hdd, scan complete.');
  t.equal(await isHidden(page, '#scan-more'), true, 'no More at the end');
});

t.test('queues: publish, fetch, purge and replay dead letters', { skip }, async (t) => {
  const h = await startServer(t);
  const c = await RawClient.tcp(t, h);
  await ok(c, 'CREATEROUTER', 'orders', 'direct');
  await ok(c, 'CREATEQUEUE', 'jobs', 'memory');
  await ok(c, 'CREATEQUEUE', 'audit', 'hdd');
  await ok(c, 'BIND', 'jobs', 'orders', 'new');
  const page = await openPage(t);
  await page.goto(consoleUrl(h, 'queues'));
  await page.waitForSelector('#queues tr[data-queue="jobs"]', { timeout: WAIT_MS });
  t.same(
    await page.$$eval('#queues tr', (rows) => rows.map((row) => row.getAttribute('data-queue'))),
    ['audit', 'jobs'],
    'every queue, by name',
  );
  const cell = (queue: string, column: number) => `#queues tr[data-queue="${queue}"] td:nth-child(${column})`;

  await page.waitForSelector('#publish-router option[value="orders"]', { timeout: WAIT_MS });
  await page.select('#publish-router', 'orders');
  await page.locator('#publish-key').fill('new');
  await page.locator('#publish-message').fill('hello <i>world</i>');
  await page.locator('#publish').click();
  t.equal(
    await waitText(page, '#publish-result', (text) => text !== '' && text !== '…'),
    'Published to orders: reached 1 queue.',
  );
  await waitText(page, cell('jobs', 2), (text) => text === '1');

  await page.locator('#queues tr[data-queue="jobs"] button').click();
  await waitText(page, '#queue-settings', (text) => text.includes('bindings'));
  t.match(await text(page, '#queue-settings'), /orders ← new/, 'the queue shows its binding');
  await page.locator('#fetch').click();
  t.equal(
    await waitText(page, '#queue-result', (text) => text !== '' && text !== '…'),
    'Fetched 1, given back to the queue.',
  );
  t.equal(await text(page, '#messages .body'), 'hello <i>world</i>', 'the message, as text');
  t.match(await text(page, '#messages .meta'), /^#1 · delivery 1 · routing key new$/);
  t.equal(await page.$$eval('#messages i', (nodes) => nodes.length), 0);
  await screenshot(t, page, 'queues');

  await page.locator('#purge').click();
  await page.locator('#purge').click();
  t.equal(await waitText(page, '#queue-result', (text) => text !== '' && text !== '…'), 'Purged 1 waiting messages.');
  await waitText(page, cell('jobs', 2), (text) => text === '0');
  t.same(await ok(c, 'FETCH', 'jobs'), [], 'the server has nothing more to deliver');

  // A dead letter: fetched over TCP and dropped; the page replays it.
  await ok(c, 'PUBLISH', 'orders', 'new', 'doomed');
  const [delivery] = (await ok(c, 'FETCH', 'jobs')) as Buffer[][];
  await ok(c, 'NACK', 'jobs', String(delivery?.[0]), 'DROP');
  await waitText(page, cell('jobs', 5), (text) => text === '1');
  await page.locator('#dead-show').click();
  await waitText(page, '#messages .meta', (text) => text.includes('dead: rejected'));
  t.equal(await text(page, '#messages .body'), 'doomed');
  await page.locator('#dead-replay').click();
  await page.locator('#dead-replay').click();
  t.equal(await waitText(page, '#queue-result', (text) => text.startsWith('Replayed')), 'Replayed 1 dead letters.');
  await waitText(page, cell('jobs', 5), (text) => text === '0');
  t.equal(await text(page, cell('jobs', 2)), '1', 'the dead letter is ready again');
  await page.select('#fetch-mode', 'ack');
  await page.locator('#fetch').click();
  t.equal(await waitText(page, '#queue-result', (text) => text.startsWith('Fetched')), 'Fetched 1, acknowledged 1.');
  t.equal(await text(page, '#messages .body'), 'doomed');
  await waitText(page, cell('jobs', 2), (text) => text === '0');
});

t.test('with credentials the console asks to log in, and shows what the user may not do', { skip }, async (t) => {
  const token = newToken();
  const usersFile = join(await tempDir(t, 'hati-console-'), 'users.json');
  // A low scrypt cost keeps the test fast.
  await writeUsersFile(usersFile, {
    version: 1,
    users: [
      {
        name: 'ops',
        password: await hashPassword('ops secret', { cost: 2 ** 10 }),
        admin: true,
        read: ['*'],
        write: ['*'],
        publish: ['*'],
        consume: ['*'],
        manage: ['*'],
      },
      { name: 'reader', tokens: [token.stored], read: ['*'], consume: ['*'] },
    ],
  });
  const h = await startServer(t, { usersFile });
  const page = await openPage(t);
  await page.goto(consoleUrl(h));
  await page.waitForSelector('#login-form', { visible: true, timeout: WAIT_MS });
  t.equal(await isHidden(page, '#page-overview'), true, 'no page before login');
  await screenshot(t, page, 'login');

  await page.locator('#login-user').fill('ops');
  await page.locator('#login-password').fill('wrong');
  await page.locator('#login-submit').click();
  t.equal(
    await waitText(page, '#login-error', (text) => text !== '' && text !== 'checking…'),
    'Wrong user, password or token.',
  );

  await page.locator('#login-token').fill(token.token);
  await page.locator('#login-submit').click();
  await page.waitForSelector('#login', { hidden: true, timeout: WAIT_MS });
  t.equal(await text(page, '#who'), 'token', 'logged in with the token');
  const refused = await waitText(page, '#overview-error', (text) => text !== '');
  t.match(refused, /^Server\.Stats: NOPERM: user 'reader' has no permission/, 'a right the user lacks is named');

  const c = await RawClient.tcp(t, h);
  await ok(c, 'AUTH', 'ops', 'ops secret');
  await ok(c, 'SET', 'memory', '0', 'greeting', 'hello');
  await ok(c, 'CREATEQUEUE', 'jobs', 'memory');
  await page.goto(consoleUrl(h, 'keys'));
  await page.locator('#scan').click();
  t.equal(
    await waitText(page, '#scan-result', (text) => text.endsWith('.')),
    '1 key matching * in memory, scan complete.',
  );
  await page.locator('#keys li button').click();
  t.equal(await waitText(page, '#key-value', (text) => text !== ''), 'hello', 'a reader reads');
  await page.locator('#key-delete').click();
  await page.locator('#key-delete').click();
  t.equal(
    await waitText(page, '#key-result', (text) => text !== ''),
    "NOPERM: user 'reader' has no permission to write key 'greeting' of memory (DELETE)",
    'a refused action says why, next to it',
  );
  t.equal(await ok(c, 'HAS', 'memory', 'greeting'), 1, 'and did nothing');

  // Without the admin right for Server.Stats, the queues come from ListQueue and GetQueue.
  await page.goto(consoleUrl(h, 'queues'));
  await page.waitForSelector('#queues tr[data-queue="jobs"]', { timeout: WAIT_MS });
  t.equal(await text(page, '#queues tr[data-queue="jobs"] td:nth-child(2)'), '0', 'with its counts');

  await page.locator('#logout').click();
  await page.waitForSelector('#login-form', { visible: true, timeout: WAIT_MS });
  t.equal(
    await page.evaluate(() =>
      (globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } }).sessionStorage.getItem(
        'hati.auth',
      ),
    ),
    null,
    'log out forgets the credentials',
  );
  await page.locator('#login-user').fill('ops');
  await page.locator('#login-password').fill('ops secret');
  await page.locator('#login-submit').click();
  await page.waitForSelector('#login', { hidden: true, timeout: WAIT_MS });
  t.equal(await text(page, '#who'), 'user ops');
  await page.goto(consoleUrl(h, 'overview'));
  await page.reload();
  t.equal(await waitText(page, '#keys-memory', (text) => text === '1'), '1', 'a reload keeps the login of this tab');
  t.equal(await isHidden(page, '#login'), true);
});
