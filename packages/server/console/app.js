// Hati's web console: three pages over the server's JSON-RPC API, called from this page's own
// origin with the user's credentials. No framework and no build step: the server hands out this
// file as it is (packages/server/src/console.ts).
//
// Keys, values, queue names and messages are written by whoever can write to the server, so
// nothing the server sends is ever parsed as HTML: every text goes in through textContent or a
// text node (the Content-Security-Policy forbids inline script as a second line of defence).

const POLL_MS = 1000;
/** Samples kept for the charts: two minutes at one a second. */
const HISTORY = 120;
/** Seconds the charts show. */
const WINDOW_S = 60;
/** Keys a scan gathers before it stops and offers More. */
const SCAN_PAGE = 50;
/** SCAN calls one click makes at most (a MATCH may skip most keys). */
const SCAN_CALLS = 20;
const AUTH_KEY = 'hati.auth';
const USER_KEY = 'hati.user';

// ---- small helpers ----

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes, never markup. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
  return node;
}

function setText(id, text) {
  const node = $(id);
  if (node.textContent !== text) node.textContent = text;
}

function showResult(node, text, isError = false) {
  node.textContent = text;
  node.classList.toggle('error', isError);
}

const numberFormat = new Intl.NumberFormat('en');

function formatCount(n) {
  return typeof n === 'number' ? numberFormat.format(n) : '–';
}

function formatRate(n) {
  if (n === undefined || !Number.isFinite(n)) return '–';
  if (n >= 10_000) return `${numberFormat.format(Math.round(n / 1000))}k/s`;
  return `${numberFormat.format(n >= 100 ? Math.round(n) : Math.round(n * 10) / 10)}/s`;
}

function formatMicros(us) {
  if (us === undefined || !Number.isFinite(us)) return '–';
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1_000_000) return `${Math.round(us / 100) / 10} ms`;
  return `${Math.round(us / 100_000) / 10} s`;
}

function formatBytes(n) {
  if (typeof n !== 'number') return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function formatDuration(ms) {
  if (typeof ms !== 'number') return '–';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function formatTtl(ms) {
  if (ms === -1) return 'no expiry';
  if (ms === -2) return 'missing or expired';
  return `${numberFormat.format(ms)} ms (${formatDuration(ms)})`;
}

// Keys and messages travel as base64 so that any bytes survive; they are shown as UTF-8 text when
// they are valid UTF-8, else as escaped bytes.
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

function toBase64(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Bytes as text for people: UTF-8 when valid, else printable ASCII with `\xNN` for the rest. */
function showBytes(bytes) {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    let text = '';
    for (const byte of bytes) {
      text +=
        byte >= 0x20 && byte < 0x7f && byte !== 0x5c
          ? String.fromCharCode(byte)
          : `\\x${byte.toString(16).padStart(2, '0')}`;
    }
    return text;
  }
}

// ---- JSON-RPC ----

/** An error of a call: `code` is the server's stable code (NOPERM, QUEUE_NOT_FOUND, ...). */
class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
  toString() {
    return `${this.code}: ${this.message}`;
  }
}

let authorization = sessionStorage.getItem(AUTH_KEY);
let nextId = 1;

/** Sends one call, or a batch (an array of [method, params]); a refused request throws. */
async function post(body, header = authorization) {
  const headers = { 'content-type': 'application/json' };
  if (header) headers.authorization = header;
  let response;
  try {
    // credentials 'omit': the browser adds no credentials of its own and never shows its own
    // login dialog for the server's 401; this page sends the Authorization header itself.
    response = await fetch('/', { method: 'POST', headers, body: JSON.stringify(body), credentials: 'omit' });
  } catch (err) {
    setLink(false);
    throw new RpcError('UNREACHABLE', `the server did not answer (${err.message})`);
  }
  setLink(true);
  const text = await response.text();
  let json;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON-RPC's answer (a proxy's error page): reported by its status below.
  }
  if (json === undefined && response.ok) throw new RpcError(`HTTP_${response.status}`, 'an answer that is not JSON');
  if (response.status === 401 || response.status === 429 || (response.status >= 400 && !Array.isArray(json))) {
    const error = json?.error ?? {};
    const code = error.data?.code ?? `HTTP_${response.status}`;
    const failure = new RpcError(code, error.message ?? response.statusText);
    if (response.status === 401 && header === authorization) needLogin(failure);
    throw failure;
  }
  return json;
}

function unwrap(response) {
  if (response === undefined) throw new RpcError('NO_ANSWER', 'the server sent no answer to this call');
  if (response.error !== undefined) {
    throw new RpcError(response.error.data?.code ?? String(response.error.code), response.error.message);
  }
  return response.result;
}

async function call(method, params) {
  const request = { jsonrpc: '2.0', id: nextId++, method };
  if (params !== undefined) request.params = params;
  return unwrap(await post(request));
}

/** Calls per batch request, well under the server's `--rpc-max-batch` (1000 by default). */
const BATCH = 100;

/** Several calls in few requests: each answer as `{ result }` or `{ error: RpcError }`, in order. */
async function batch(calls) {
  const answers = [];
  for (let start = 0; start < calls.length; start += BATCH) {
    const requests = calls
      .slice(start, start + BATCH)
      .map(([method, params]) => ({ jsonrpc: '2.0', id: nextId++, method, params }));
    const responses = await post(requests);
    const byId = new Map(responses.map((response) => [response.id, response]));
    for (const request of requests) {
      try {
        answers.push({ result: unwrap(byId.get(request.id)) });
      } catch (error) {
        answers.push({ error });
      }
    }
  }
  return answers;
}

function setLink(up) {
  const link = $('link');
  link.textContent = up ? 'live' : 'server unreachable';
  link.classList.toggle('down', !up);
}

// ---- log in ----

let loginShown = false;

function needLogin(failure) {
  if (!loginShown) {
    loginShown = true;
    $('login').hidden = false;
    for (const page of document.querySelectorAll('.page')) page.hidden = true;
    $('login-password').focus();
  }
  // A stored login the server no longer takes (changed password, removed token) is said so.
  if (authorization) {
    showResult($('login-error'), `${failure.code}: ${failure.message}`, true);
    forget();
  }
}

function forget() {
  authorization = null;
  sessionStorage.removeItem(AUTH_KEY);
  sessionStorage.removeItem(USER_KEY);
  showWho();
}

function showWho() {
  const user = sessionStorage.getItem(USER_KEY);
  $('who').textContent = authorization ? (user ? `user ${user}` : 'token') : '';
  $('logout').hidden = !authorization;
}

async function logIn(event) {
  event.preventDefault();
  const user = $('login-user').value;
  const password = $('login-password').value;
  const token = $('login-token').value.trim();
  const header = token
    ? `Bearer ${token}`
    : `Basic ${toBase64(encoder.encode(`${user === '' ? 'default' : user}:${password}`))}`;
  const error = $('login-error');
  showResult(error, 'checking…');
  try {
    await post({ jsonrpc: '2.0', id: nextId++, method: 'Server.Ping', params: {} }, header);
  } catch (failure) {
    showResult(error, failure.code === 'WRONGPASS' ? 'Wrong user, password or token.' : String(failure), true);
    return;
  }
  authorization = header;
  sessionStorage.setItem(AUTH_KEY, header);
  if (token) sessionStorage.removeItem(USER_KEY);
  else sessionStorage.setItem(USER_KEY, user === '' ? 'default' : user);
  $('login-password').value = '';
  $('login-token').value = '';
  showResult(error, '');
  loginShown = false;
  $('login').hidden = true;
  showWho();
  route();
  poll();
}

// ---- buttons that ask twice ----

/** A destructive button runs its action only on a second click within 4 s. */
function confirming(button, action) {
  const label = button.textContent;
  let timer;
  button.addEventListener('click', () => {
    if (button.dataset.armed !== 'yes') {
      button.dataset.armed = 'yes';
      button.textContent = button.dataset.confirm;
      timer = setTimeout(() => {
        button.dataset.armed = '';
        button.textContent = label;
      }, 4000);
      return;
    }
    clearTimeout(timer);
    button.dataset.armed = '';
    button.textContent = label;
    action();
  });
}

// ---- charts ----

const COLORS = ['#2f7ed8', '#e4572e', '#17a673', '#8e5ec9'];

/** Draws line series over the last WINDOW_S seconds; each series is `{ label, points: [[t, v]] }`. */
function drawChart(canvas, series, format) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0) return;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const left = 64;
  const right = 10;
  const top = 24;
  const bottom = 20;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const now = Math.max(0, ...series.flatMap((s) => s.points.map(([t]) => t)));
  const from = now - WINDOW_S;
  let max = 0;
  for (const s of series) for (const [t, v] of s.points) if (t >= from && v > max) max = v;
  const scale = niceCeiling(max);
  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  g.strokeStyle = '#e3e6ea';
  g.fillStyle = '#6b7280';
  g.textBaseline = 'middle';
  g.textAlign = 'right';
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    g.beginPath();
    g.moveTo(left, Math.round(y) + 0.5);
    g.lineTo(left + plotW, Math.round(y) + 0.5);
    g.stroke();
    g.fillText(format((scale * i) / 4), left - 6, y);
  }
  g.textBaseline = 'alphabetic';
  g.textAlign = 'left';
  g.fillText(`-${WINDOW_S}s`, left, height - 4);
  g.textAlign = 'right';
  g.fillText('now', left + plotW, height - 4);
  let legendX = left;
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const last = s.points.at(-1);
    const text = `${s.label} ${last === undefined ? '–' : format(last[1])}`;
    g.fillStyle = color;
    g.fillRect(legendX, 8, 10, 10);
    g.fillStyle = '#1f2933';
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    g.fillText(text, legendX + 14, 13);
    legendX += g.measureText(text).width + 32;
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    let started = false;
    for (const [t, v] of s.points) {
      if (t < from) continue;
      const x = left + (plotW * (t - from)) / WINDOW_S;
      const y = top + plotH - (plotH * v) / scale;
      if (started) g.lineTo(x, y);
      else g.moveTo(x, y);
      started = true;
    }
    g.stroke();
    // A series of one sample (the first second) is a dot, not an invisible line.
    const shown = s.points.filter(([t]) => t >= from);
    if (shown.length === 1) {
      const [[t, v]] = shown;
      g.fillStyle = color;
      g.beginPath();
      g.arc(left + (plotW * (t - from)) / WINDOW_S, top + plotH - (plotH * v) / scale, 3, 0, 2 * Math.PI);
      g.fill();
    }
  });
}

/** 1, 2 or 5 times a power of ten, at least `n` (and at least 1). */
function niceCeiling(n) {
  if (!(n > 1)) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) if (step * power >= n) return step * power;
  return 10 * power;
}

// ---- statistics ----

/**
 * The latency at quantile q (0..1) of a histogram's counts, in µs: linear within the bucket it
 * falls in (a bucket holds the commands above the previous bound and up to its own); past the
 * last bound, the last bound.
 */
function percentile(bounds, counts, q) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] === 0) continue;
    if (seen + counts[i] >= rank) {
      if (i >= bounds.length) return bounds.at(-1);
      const low = i === 0 ? 0 : bounds[i - 1];
      return low + ((bounds[i] - low) * (rank - seen)) / counts[i];
    }
    seen += counts[i];
  }
  return bounds.at(-1);
}

/** The last two snapshots and the series derived from consecutive ones. */
const stats = {
  previous: undefined,
  latest: undefined,
  /** `{ t (s since the server started), ops, p50, p99 }` per poll. */
  samples: [],
  /** Set when Server.Stats is refused (NOPERM): the pages fall back to what the user may read. */
  denied: undefined,
};

function commandsOf(snapshot) {
  return snapshot.commands.processed + snapshot.commands.rpcCalls;
}

function addSnapshot(snapshot) {
  const latest = stats.latest;
  stats.denied = undefined;
  // A restarted server counts from zero again: start the series over.
  if (latest !== undefined && snapshot.uptimeMs < latest.uptimeMs) {
    stats.samples = [];
    stats.previous = undefined;
    stats.latest = snapshot;
    return;
  }
  // A poll right after an action is too close to the last one for a rate: the numbers are
  // shown, the rates keep their base.
  if (latest !== undefined && snapshot.uptimeMs - latest.uptimeMs < 500) {
    stats.latest = snapshot;
    return;
  }
  stats.previous = latest;
  stats.latest = snapshot;
  if (stats.previous === undefined) return;
  const seconds = (snapshot.uptimeMs - stats.previous.uptimeMs) / 1000;
  if (seconds <= 0) return;
  const sample = { t: snapshot.uptimeMs / 1000, ops: (commandsOf(snapshot) - commandsOf(stats.previous)) / seconds };
  const now = snapshot.commands.latencyUs;
  const before = stats.previous.commands.latencyUs;
  if (now !== undefined && before !== undefined && now.counts.length === before.counts.length) {
    const counts = now.counts.map((count, i) => count - before.counts[i]);
    sample.p50 = percentile(now.bounds, counts, 0.5);
    sample.p99 = percentile(now.bounds, counts, 0.99);
  }
  stats.samples.push(sample);
  if (stats.samples.length > HISTORY) stats.samples.shift();
}

/** Per-second rate of a counter between the last two snapshots, or undefined. */
function rate(pick) {
  const { previous, latest } = stats;
  if (previous === undefined || latest === undefined) return undefined;
  const now = pick(latest);
  const before = pick(previous);
  const seconds = (latest.uptimeMs - previous.uptimeMs) / 1000;
  if (typeof now !== 'number' || typeof before !== 'number' || seconds <= 0 || now < before) return undefined;
  return (now - before) / seconds;
}

// ---- overview ----

function renderOverview() {
  const s = stats.latest;
  if (stats.denied !== undefined) showResult($('overview-error'), `Server.Stats: ${stats.denied}`, true);
  else showResult($('overview-error'), '');
  if (s === undefined) return;
  const last = stats.samples.at(-1);
  setText('tp-now', last === undefined ? '–' : formatRate(last.ops));
  setText('lat-p50', formatMicros(last?.p50));
  setText('lat-p99', formatMicros(last?.p99));
  setText('keys-memory', formatCount(s.storage.memory.keys));
  setText('keys-hdd', s.storage.hdd.keys === null ? 'unknown' : formatCount(s.storage.hdd.keys));
  setText('hdd-state', `${s.storage.hdd.state}, durability ${s.storage.hdd.durability}`);
  const c = s.connections;
  setText('conn-total', formatCount(c.tcp.current + c.unix.current + c.rpc.current));
  setText('conn-split', `tcp ${c.tcp.current} · unix ${c.unix.current} · rpc ${c.rpc.current}`);
  setText('mem-rss', formatBytes(s.memory.rss));
  setText('uptime', formatDuration(s.uptimeMs));

  const hasLatency = s.commands.latencyUs !== undefined;
  $('latency-note').hidden = hasLatency;
  $('chart-latency').hidden = !hasLatency;
  drawChart(
    $('chart-throughput'),
    [{ label: 'commands/s', points: stats.samples.map((sample) => [sample.t, sample.ops]) }],
    (v) => formatRate(v).replace('/s', ''),
  );
  if (hasLatency) {
    const withLatency = stats.samples.filter((sample) => sample.p50 !== undefined);
    drawChart(
      $('chart-latency'),
      [
        { label: 'p50', points: withLatency.map((sample) => [sample.t, sample.p50]) },
        { label: 'p99', points: withLatency.map((sample) => [sample.t, sample.p99]) },
      ],
      formatMicros,
    );
  }

  const memory = s.storage.memory.shards;
  const hdd = s.storage.hdd.shards;
  const most = Math.max(1, ...memory, ...hdd);
  const bar = (n) => {
    const fill = el('span', { class: 'fill' });
    fill.style.width = `${(100 * (n ?? 0)) / most}%`;
    return el('td', { class: 'shard' }, el('span', { class: 'n' }, n === undefined ? '–' : formatCount(n)), fill);
  };
  $('shards').replaceChildren(
    ...Array.from({ length: Math.max(memory.length, hdd.length) }, (_, i) =>
      el('tr', {}, el('td', {}, String(i)), bar(memory[i]), bar(hdd[i])),
    ),
  );

  const b = s.broker;
  const facts = [
    ['routers', formatCount(b.routers)],
    ['queues', formatCount(b.queues)],
    ['published', `${formatCount(b.published)} (${formatRate(rate((x) => x.broker.published))})`],
    ['delivered', `${formatCount(b.delivered)} (${formatRate(rate((x) => x.broker.delivered))})`],
    ['acked', `${formatCount(b.acked)} (${formatRate(rate((x) => x.broker.acked))})`],
    ['redelivered', formatCount(b.redelivered)],
    ['dead-lettered', formatCount(b.deadLettered)],
    ['pub/sub delivered', formatCount(s.pubsub.delivered)],
  ];
  $('broker').replaceChildren(...facts.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, value)]));

  const clients = [...s.clients].sort((a, b) => a.id - b.id);
  setText('clients-count', `(${clients.length})`);
  $('clients').replaceChildren(
    ...clients
      .slice(0, 200)
      .map((client) =>
        el(
          'tr',
          {},
          el('td', {}, String(client.id)),
          el('td', {}, client.listener),
          el('td', { class: 'mono' }, client.address),
          el('td', {}, client.user ?? '–'),
          el('td', {}, client.name ?? ''),
          el('td', {}, formatDuration(client.ageMs)),
          el('td', {}, formatDuration(client.idleMs)),
          el('td', { class: 'mono' }, client.lastCommand ?? ''),
        ),
      ),
  );
}

// ---- queues ----

const queues = {
  selected: undefined,
  /** Without Server.Stats (NOPERM): the last rows read through GetQueue and when, for rates. */
  rows: undefined,
  rowsAt: 0,
};

/** The rows to show: from Server.Stats, or from ListQueue and GetQueue for a user without admin. */
async function queueRows() {
  if (stats.denied === undefined && stats.latest !== undefined) {
    const { previous, latest } = stats;
    const seconds = previous === undefined ? 0 : (latest.uptimeMs - previous.uptimeMs) / 1000;
    return Object.entries(latest.broker.perQueue).map(([name, q]) => ({
      name,
      ...q,
      rates: queueRates(q, previous?.broker.perQueue[name], seconds),
    }));
  }
  if (stats.denied === undefined) return undefined;
  const names = await call('Broker.ListQueue', {});
  const answers = await batch(names.map((name) => ['Broker.GetQueue', { name }]));
  const at = performance.now();
  const before = queues.rows;
  const seconds = (at - queues.rowsAt) / 1000;
  const rows = names.flatMap((name, i) => {
    const info = answers[i].result;
    if (info === undefined) return [];
    return [
      {
        name,
        ...info,
        rates: queueRates(
          info,
          before?.find((row) => row.name === name),
          seconds,
        ),
      },
    ];
  });
  queues.rows = rows;
  queues.rowsAt = at;
  return rows;
}

function queueRates(now, before, seconds) {
  const rateOf = (field) =>
    before === undefined || seconds <= 0 || typeof now[field] !== 'number' || now[field] < before[field]
      ? undefined
      : (now[field] - before[field]) / seconds;
  return { published: rateOf('published'), delivered: rateOf('delivered'), acked: rateOf('acked') };
}

async function renderQueues() {
  let rows;
  try {
    rows = await queueRows();
    showResult($('queues-error'), stats.denied === undefined ? '' : `Server.Stats: ${stats.denied}`, false);
  } catch (failure) {
    showResult($('queues-error'), String(failure), true);
    return;
  }
  if (rows === undefined) return;
  rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  setText('queues-count', `(${rows.length})`);
  $('queues-empty').hidden = rows.length > 0;
  const num = (n) => el('td', { class: 'num' }, formatCount(n));
  $('queues').replaceChildren(
    ...rows.map((row) =>
      el(
        'tr',
        {
          class: row.name === queues.selected ? 'selected' : '',
          'data-queue': row.name,
          onclick: () => selectQueue(row.name),
        },
        el('td', { class: 'mono' }, el('button', { type: 'button', class: 'link-button' }, row.name)),
        num(row.ready),
        num(row.leased),
        num(row.delayed),
        num(row.dead),
        num(row.consumers),
        el('td', { class: 'num' }, formatRate(row.rates.published)),
        el('td', { class: 'num' }, formatRate(row.rates.delivered)),
        el('td', { class: 'num' }, formatRate(row.rates.acked)),
      ),
    ),
  );
}

async function selectQueue(name) {
  queues.selected = name;
  for (const row of $('queues').children) row.classList.toggle('selected', row.dataset.queue === name);
  $('queue-detail').hidden = false;
  setText('queue-name', name);
  $('messages').replaceChildren();
  showResult($('queue-result'), '');
  try {
    const info = await call('Broker.GetQueue', { name });
    const settings = [
      ['type', info.type],
      ['ack timeout', `${formatCount(info.ackTimeoutMs)} ms`],
      ['max deliveries', info.maxDeliveries ? formatCount(info.maxDeliveries) : 'no limit'],
      ['dead-letter router', info.deadLetter ?? 'none (kept in the queue)'],
      ['max length', info.maxLength ? `${formatCount(info.maxLength)} (${info.overflow})` : 'no limit'],
      ['message ttl', info.ttlMs ? `${formatCount(info.ttlMs)} ms` : 'none'],
      ['bindings', (info.bindings ?? []).map((b) => `${b.router} ← ${b.bindingKey}`).join(', ') || 'none'],
    ];
    $('queue-settings').replaceChildren(
      ...settings
        .filter(([, value]) => value !== undefined)
        .flatMap(([label, value]) => [el('dt', {}, label), el('dd', {}, String(value))]),
    );
  } catch (failure) {
    $('queue-settings').replaceChildren();
    showResult($('queue-result'), String(failure), true);
  }
}

function showDeliveries(deliveries) {
  $('messages').replaceChildren(
    ...deliveries.map((d) =>
      el(
        'li',
        { class: 'message' },
        el(
          'div',
          { class: 'meta' },
          `#${d.id} · delivery ${d.deliveries} · routing key `,
          el('span', { class: 'mono' }, d.routingKey),
          d.death ? ` · dead: ${d.death.reason} from ${d.death.queue} after ${d.death.deliveries}` : '',
        ),
        el('pre', { class: 'body' }, showBytes(fromBase64(d.message))),
      ),
    ),
  );
}

/** Runs a queue action and shows its outcome, or its error code (NOPERM, ...), under the queue. */
async function queueAction(action) {
  const queue = queues.selected;
  if (queue === undefined) return;
  const result = $('queue-result');
  showResult(result, '…');
  try {
    showResult(result, await action(queue));
  } catch (failure) {
    showResult(result, String(failure), true);
  }
  poll();
}

async function fetchMessages(queue) {
  const count = Math.min(1000, Math.max(1, Number($('fetch-count').value) || 1));
  const mode = $('fetch-mode').value;
  const deliveries = await call('Broker.Fetch', { queue, count, encoding: 'base64' });
  showDeliveries(deliveries);
  if (deliveries.length === 0) return 'No message ready.';
  const ids = deliveries.map((d) => d.id);
  if (mode === 'ack') {
    const acked = await call('Broker.Ack', { queue, ids });
    return `Fetched ${deliveries.length}, acknowledged ${acked}.`;
  }
  const answers = await batch(ids.map((id) => ['Broker.Nack', { queue, id, mode: 'REQUEUE' }]));
  const failed = answers.find((answer) => answer.error !== undefined);
  if (failed !== undefined) throw failed.error;
  return `Fetched ${deliveries.length}, given back to the queue.`;
}

// ---- publish ----

async function loadRouters() {
  const select = $('publish-router');
  try {
    const routers = await call('Broker.ListRouter', {});
    const chosen = select.value;
    select.replaceChildren(...routers.map((name) => el('option', { value: name }, name)));
    if (routers.includes(chosen)) select.value = chosen;
    if (routers.length === 0) showResult($('publish-result'), 'No routers. Create one with CREATEROUTER.');
  } catch (failure) {
    showResult($('publish-result'), `Broker.ListRouter: ${failure}`, true);
  }
}

async function publish(event) {
  event.preventDefault();
  const result = $('publish-result');
  const router = $('publish-router').value;
  if (router === '') {
    showResult(result, 'Choose a router.', true);
    return;
  }
  const params = {
    router,
    routingKey: $('publish-key').value,
    message: toBase64(encoder.encode($('publish-message').value)),
    encoding: 'base64',
  };
  const delayMs = Number($('publish-delay').value);
  if (delayMs > 0) params.delayMs = delayMs;
  showResult(result, '…');
  try {
    const reached = await call('Broker.Publish', params);
    showResult(result, `Published to ${router}: reached ${reached} queue${reached === 1 ? '' : 's'}.`);
  } catch (failure) {
    showResult(result, String(failure), true);
  }
  poll();
}

// ---- keys ----

const keys = { type: 'memory', pattern: '*', cursor: '0', shown: 0, open: undefined };

async function scan(more) {
  const result = $('scan-result');
  if (!more) {
    keys.type = $('scan-type').value;
    keys.pattern = $('scan-pattern').value || '*';
    keys.cursor = '0';
    keys.shown = 0;
    $('keys').replaceChildren();
  }
  showResult(result, 'scanning…');
  const pattern = toBase64(encoder.encode(keys.pattern));
  let found = 0;
  try {
    for (let calls = 0; calls < SCAN_CALLS && found < SCAN_PAGE; calls++) {
      const page = await call('Storage.Scan', {
        type: keys.type,
        cursor: keys.cursor,
        pattern,
        count: 100,
        encoding: 'base64',
      });
      for (const key of page.keys) {
        $('keys').append(
          el(
            'li',
            {},
            el(
              'button',
              { type: 'button', class: 'link-button mono', onclick: () => openKey(keys.type, key) },
              showBytes(fromBase64(key)),
            ),
          ),
        );
      }
      found += page.keys.length;
      keys.cursor = page.cursor;
      if (keys.cursor === '0') break;
    }
  } catch (failure) {
    keys.cursor = '0';
    showResult(result, String(failure), true);
    $('scan-more').hidden = true;
    return;
  }
  keys.shown += found;
  const done = keys.cursor === '0';
  $('scan-more').hidden = done;
  showResult(
    result,
    `${formatCount(keys.shown)} key${keys.shown === 1 ? '' : 's'} matching ${keys.pattern} in ${keys.type}${done ? ', scan complete' : ', more to scan'}.`,
  );
}

/** Shows a key (base64 of its bytes): value, ttl and size, read in one batch. */
async function openKey(type, key) {
  keys.open = { type, key };
  $('key-detail').hidden = false;
  setText('key-name', showBytes(fromBase64(key)));
  setText('key-type', type);
  showResult($('key-result'), '');
  let value;
  let ttl;
  try {
    [value, ttl] = await batch([
      ['Storage.Get', { type, key, encoding: 'base64' }],
      ['Storage.Ttl', { type, key, encoding: 'base64' }],
    ]);
  } catch (failure) {
    // The request itself was refused (the server is gone, or the login was): said next to the key.
    value = { error: failure };
    ttl = { error: failure };
  }
  if (value.error !== undefined || ttl.error !== undefined) {
    showResult($('key-result'), String(value.error ?? ttl.error), true);
    setText('key-value', '');
    setText('key-ttl', '–');
    setText('key-size', '–');
    return;
  }
  if (value.result === null) {
    setText('key-value', '');
    setText('key-ttl', formatTtl(-2));
    setText('key-size', '–');
    return;
  }
  const bytes = fromBase64(value.result);
  setText('key-ttl', formatTtl(ttl.result));
  setText('key-size', formatBytes(bytes.length));
  // A huge value is cut for the page; the size above is the whole value's.
  setText('key-value', showBytes(bytes.subarray(0, 256 * 1024)) + (bytes.length > 256 * 1024 ? '\n…' : ''));
}

async function deleteKey() {
  const open = keys.open;
  if (open === undefined) return;
  const result = $('key-result');
  try {
    const removed = await call('Storage.Delete', { type: open.type, key: open.key, encoding: 'base64' });
    showResult(result, removed ? 'Deleted.' : 'It was already gone.');
    for (const item of $('keys').children) {
      if (item.textContent === showBytes(fromBase64(open.key))) item.remove();
    }
    setText('key-ttl', formatTtl(-2));
    setText('key-value', '');
    setText('key-size', '–');
  } catch (failure) {
    showResult(result, String(failure), true);
  }
}

// ---- pages and polling ----

const PAGES = ['overview', 'queues', 'keys'];
let page = 'overview';

function route() {
  const name = location.hash.replace(/^#\/?/, '');
  page = PAGES.includes(name) ? name : 'overview';
  if (loginShown) return;
  for (const p of PAGES) $(`page-${p}`).hidden = p !== page;
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', link.dataset.page === page);
  }
  document.title = `Hati · ${page}`;
  if (page === 'overview') renderOverview();
  if (page === 'queues') {
    loadRouters();
    renderQueues();
  }
}

let polling = false;
let pollAgain = false;

/**
 * One Server.Stats a second while the tab is visible and logged in; the open page redraws. An
 * action calls it at once, so its effect shows without waiting for the next second; a call while
 * one is on its way runs again after it, since that one may have been answered before the action.
 */
async function poll() {
  if (loginShown || document.hidden) return;
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  try {
    addSnapshot(await call('Server.Stats'));
  } catch (failure) {
    if (failure.code === 'NOPERM') stats.denied = String(failure);
  }
  try {
    if (!loginShown && page === 'overview') renderOverview();
    if (!loginShown && page === 'queues') await renderQueues();
  } finally {
    polling = false;
  }
  document.body.dataset.polls = String(Number(document.body.dataset.polls ?? 0) + 1);
  if (pollAgain) {
    pollAgain = false;
    poll();
  }
}

function start() {
  $('login-form').addEventListener('submit', logIn);
  $('logout').addEventListener('click', () => {
    forget();
    location.reload();
  });
  $('publish-form').addEventListener('submit', publish);
  $('fetch').addEventListener('click', () => queueAction(fetchMessages));
  confirming($('purge'), () =>
    queueAction(async (queue) => `Purged ${await call('Broker.Flush', { queue })} waiting messages.`),
  );
  $('dead-show').addEventListener('click', () =>
    queueAction(async (queue) => {
      const dead = await call('Broker.DeadLetters', { queue, count: 100, encoding: 'base64' });
      showDeliveries(dead);
      return dead.length === 0 ? 'No dead letters.' : `${dead.length} oldest dead letters.`;
    }),
  );
  confirming($('dead-replay'), () =>
    queueAction(async (queue) => `Replayed ${await call('Broker.ReplayDead', { queue })} dead letters.`),
  );
  confirming($('dead-purge'), () =>
    queueAction(async (queue) => `Deleted ${await call('Broker.PurgeDead', { queue })} dead letters.`),
  );
  $('scan-form').addEventListener('submit', (event) => {
    event.preventDefault();
    scan(false);
  });
  $('scan-more').addEventListener('click', () => scan(true));
  $('open-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('open-key').value;
    if (key !== '') openKey($('scan-type').value, toBase64(encoder.encode(key)));
  });
  $('key-refresh').addEventListener('click', () => keys.open && openKey(keys.open.type, keys.open.key));
  confirming($('key-delete'), deleteKey);
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', () => page === 'overview' && renderOverview());
  showWho();
  route();
  poll();
  setInterval(poll, POLL_MS);
}

start();
