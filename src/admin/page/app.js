// postflow status page: renders GET /api/status as it arrives on the /events stream (server-sent events),
// falling back to polling when the stream cannot be opened. Plain DOM, no build step, no external assets;
// every text from the daemon goes through textContent (file names come from whoever writes the folder).
'use strict';

const $ = (id) => document.getElementById(id);

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

function duration(s) {
  if (s === null || s === undefined) return '—';
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function ago(ms, now) {
  return ms === null || ms === undefined ? '—' : `${duration((now - ms) / 1000)} ago`;
}

function el(tag, opts = {}, children = []) {
  const node = document.createElement(tag);
  if (opts.text !== undefined) node.textContent = String(opts.text);
  if (opts.cls) node.className = opts.cls;
  if (opts.title) node.title = opts.title;
  for (const [k, v] of Object.entries(opts.data || {})) node.dataset[k] = String(v);
  for (const c of children) node.append(c);
  return node;
}

function link(url, text) {
  // Only web links: a stored value is never turned into a javascript: or data: URL.
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) return document.createTextNode('—');
  const a = el('a', { text });
  a.href = url;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

function fillTable(id, rows, emptyId) {
  const body = $(id).querySelector('tbody');
  body.replaceChildren(...rows);
  $(id).hidden = rows.length === 0;
  if (emptyId) $(emptyId).hidden = rows.length !== 0;
}

function pill(node, text, kind) {
  node.textContent = text;
  node.className = `pill ${kind || ''}`;
}

const STATES = [
  ['queued', 'queued'],
  ['importing', 'importing'],
  ['done', 'done'],
  ['failed', 'failed'],
  ['discovered', 'settling'],
  ['cancelled', 'cancelled'],
];

function render(s) {
  const now = s.generatedAt;
  const d = s.daemon;
  pill($('daemon'), d.running ? `running · up ${duration(d.uptimeSeconds)}${d.paused ? ' · PAUSED' : ''}` : 'not running', d.paused ? 'warn' : d.running ? 'ok' : 'bad');
  const t = s.tunnel;
  if (t) {
    const host = t.publicUrl ? t.publicUrl.replace(/^https?:\/\//, '') : '';
    const age = t.urlAgeSeconds === null ? '' : ` · URL age ${duration(t.urlAgeSeconds)}`;
    pill($('tunnel'), `tunnel ${t.status}${host ? ` · ${host}` : ''}${age}${t.restarts ? ` · ${t.restarts} restart(s)` : ''}`, t.status === 'ready' ? 'ok' : t.status === 'down' ? 'bad' : 'warn');
    $('tunnel').title = t.lastError || '';
  }

  const c = s.queue.counts;
  const counts = { ...c, importing: c.exposing + c.importing, discovered: c.discovered + c.stable };
  $('counts').replaceChildren(...STATES.map(([k, label]) => el('div', { cls: k, data: { state: k } }, [el('b', { text: counts[k] }), el('span', { text: label })])));

  $('active-count').textContent = s.active.length ? `(${s.active.length})` : '';
  $('active').replaceChildren(
    ...s.active.map((a) => {
      const fill = el('div', { cls: 'fill' });
      fill.style.width = `${Math.min(100, a.percent)}%`;
      const rate = a.rate > 0 ? ` · ${bytes(a.rate)}/s` : '';
      const eta = a.etaSeconds !== null ? ` · ETA ${duration(a.etaSeconds)}` : '';
      const figures =
        a.state === 'exposing'
          ? 'waiting for the tunnel'
          : a.covered >= a.size
            ? `100% · ${bytes(a.size)} sent · waiting for Frame.io to confirm`
            : `${a.percent.toFixed(1)}% · ${bytes(a.covered)} of ${bytes(a.size)}${rate}${eta}`;
      return el('li', { data: { job: a.id, percent: a.percent, state: a.state } }, [
        el('div', { cls: 'top' }, [el('span', { cls: 'name', text: a.name, title: a.path }), el('span', { cls: 'figures', text: figures })]),
        el('div', { cls: 'bar', title: `attempt ${a.attempt}` }, [fill]),
      ]);
    }),
  );
  $('active-empty').hidden = s.active.length !== 0;

  $('queue-count').textContent = s.queue.length ? `(${s.queue.length}${s.queue.waitingRetry ? `, ${s.queue.waitingRetry} waiting to retry` : ''})` : '';
  fillTable(
    'queue',
    s.queue.next.map((j) =>
      el('tr', { data: { job: j.id } }, [
        el('td', { text: j.name, title: j.path }),
        el('td', { cls: 'num', text: bytes(j.size) }),
        el('td', { cls: 'num', text: j.attempts }),
        el('td', { cls: 'num', text: j.nextAttemptAt && j.nextAttemptAt > now ? `in ${duration((j.nextAttemptAt - now) / 1000)}` : 'now' }),
      ]),
    ),
    'queue-empty',
  );

  fillTable(
    'done',
    s.recentDone.map((j) =>
      el('tr', { data: { job: j.id, state: 'done' } }, [
        el('td', { text: j.name }),
        el('td', { cls: 'num', text: bytes(j.size) }),
        el('td', { cls: 'num', text: duration(j.durationSeconds) }),
        el('td', { cls: 'num', text: ago(j.finishedAt, now) }),
        el('td', {}, [link(j.viewUrl, 'open')]),
      ]),
    ),
    'done-empty',
  );

  fillTable(
    'failed',
    s.recentFailed.map((j) => {
      const retry = el('button', { text: 'Retry' });
      retry.type = 'button';
      retry.addEventListener('click', () => post(`/api/jobs/${encodeURIComponent(j.id)}/retry`, retry));
      return el('tr', { data: { job: j.id, state: 'failed' } }, [
        el('td', { text: j.name, title: j.path }),
        el('td', { cls: 'reason', text: j.reason }),
        el('td', { cls: 'num', text: ago(j.finishedAt, now) }),
        el('td', {}, [retry]),
      ]);
    }),
    'failed-empty',
  );
  $('retry-all').hidden = s.recentFailed.length === 0;

  fillTable(
    'folders',
    s.watch.map((w) =>
      el('tr', {}, [
        el('td', { text: w.path }),
        el('td', { text: w.destination }),
        el('td', { cls: 'num', text: w.lastSweep ? w.lastSweep.files : '—' }),
        el('td', { cls: w.missing ? 'num reason' : 'num', text: w.missing ? 'folder missing' : w.lastSweepAgeSeconds === null ? '—' : `${duration(w.lastSweepAgeSeconds)} ago` }),
      ]),
    ),
  );
  $('updated').textContent = `updated ${new Date(now).toLocaleTimeString()}`;
}

async function post(path, button) {
  if (button) button.disabled = true;
  try {
    const res = await fetch(path, { method: 'POST' });
    if (!res.ok) alert((await res.json().catch(() => ({}))).message || `failed (${res.status})`);
  } finally {
    if (button) button.disabled = false;
  }
  void poll();
}

$('retry-all').addEventListener('click', () => post('/api/retry-failed', $('retry-all')));

async function poll() {
  try {
    const res = await fetch('/api/status', { cache: 'no-store' });
    if (res.ok) render(await res.json());
  } catch {
    pill($('daemon'), 'daemon unreachable', 'bad');
  }
}

let pollTimer;
function startPolling() {
  pill($('live'), 'polling', 'quiet');
  pollTimer ??= setInterval(poll, 2000);
  void poll();
}

if ('EventSource' in window) {
  const es = new EventSource('/events');
  es.addEventListener('status', (e) => {
    pill($('live'), 'live', 'quiet');
    if (pollTimer) {
      clearInterval(pollTimer);
      pollTimer = undefined;
    }
    render(JSON.parse(e.data));
  });
  // EventSource reconnects by itself; poll meanwhile so the page does not freeze.
  es.addEventListener('error', () => startPolling());
} else {
  startPolling();
}
