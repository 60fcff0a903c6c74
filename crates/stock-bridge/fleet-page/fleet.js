// The fleet page for support staff: the bridge's tills, "needs attention first", updated
// live. Plain JS, nothing from outside. The support key is asked once per tab and kept
// in sessionStorage (this tab only: no cookie, so no CSRF); it travels in a header, never
// in a URL. Every text that comes from a till (names above all) is set as text, never as
// markup.

const KEY_SLOT = 'stock-fleet-support-key';
const $ = (id) => document.getElementById(id);
const STATES = ['online', 'connecting', 'offline', 'refused', 'cut'];
const STATE_WORDS = { online: 'online', connecting: 'reconnecting', offline: 'offline', refused: 'refused', cut: 'cut as too slow' };

const view = { state: '', version: '', q: '', page: 1, perPage: 100 };
let lastPage = null;
let openKey = null;
let streamAbort = null;
let refreshTimer = null;

function key() { return sessionStorage.getItem(KEY_SLOT); }

/** A call to the bridge with the support key; a 401 asks for the key again. */
async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${key()}`, Accept: 'application/json', ...(options.headers || {}) },
  });
  if (response.status === 401) {
    askForKey('The support key was not accepted. Enter it again.');
    throw new Error('unauthorized');
  }
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) throw new Error((body && body.message) || `the bridge answered ${response.status}`);
  return body;
}

function askForKey(error = '') {
  sessionStorage.removeItem(KEY_SLOT);
  if (streamAbort) streamAbort.abort();
  $('fleet-view').hidden = true;
  $('sign-out').hidden = true;
  $('key-view').hidden = false;
  $('key-error').textContent = error;
  $('live').textContent = 'Not connected';
  $('key').focus();
}

function timeText(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleString();
}

/** "5 min ago" from an RFC 3339 time. */
function ago(iso) {
  if (!iso) return '';
  const secs = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} min ago`;
  return `${Math.floor(secs / 86400)} d ${Math.floor((secs % 86400) / 3600)} h ago`;
}

/** When the till's current state began. */
function since(t) { return t.status === 'online' ? t.connected_since : (t.offline_since || t.last_seen); }

function why(t) {
  if (t.status === 'online') {
    if (t.lagging) return `behind by ${t.behind} updates`;
    return t.report && t.report.gap_open ? 'shows "data may be incomplete"' : '';
  }
  if (t.status === 'refused') return `refused: ${t.refusal_code || 'unknown'}`;
  return t.end_text || '';
}

function tillName(t) { return (t.identity && t.identity.name) || (t.identity ? 'unnamed till' : 'unidentified client'); }

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function timeCell(iso) {
  const td = document.createElement('td');
  const time = document.createElement('time');
  time.dateTime = iso || '';
  time.dataset.ago = iso || '';
  time.textContent = ago(iso);
  time.title = timeText(iso);
  td.appendChild(time);
  return td;
}

function row(t) {
  const tr = document.createElement('tr');
  tr.dataset.key = t.key;
  const name = document.createElement('td');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'till';
  button.textContent = tillName(t);
  const small = document.createElement('small');
  small.textContent = t.key;
  button.appendChild(small);
  button.addEventListener('click', () => openDetail(t.key));
  name.appendChild(button);
  const state = document.createElement('td');
  const pill = document.createElement('span');
  pill.className = `pill ${t.shown}`;
  pill.textContent = STATE_WORDS[t.shown] || t.shown;
  state.appendChild(pill);
  if (t.old_version) {
    const flag = document.createElement('span');
    flag.className = 'flag';
    flag.textContent = 'old version';
    state.appendChild(flag);
  }
  tr.append(
    name,
    state,
    timeCell(since(t)),
    cell(why(t), 'why'),
    cell((t.identity && t.identity.version) || '—'),
    cell(t.user || '—'),
    cell(t.node || '—'),
    timeCell(t.last_seen),
  );
  return tr;
}

function renderCounts(counts) {
  $('count-total').textContent = counts.total;
  for (const s of STATES) $(`count-${s}`).textContent = counts[s];
  $('count-old').textContent = counts.old_version;
}

/** The rows drawn, by till key, with the JSON they were drawn from: an unchanged till keeps its row. */
let drawn = new Map();

function render(page) {
  lastPage = page;
  renderCounts(page.counts);
  const body = $('rows');
  const next = new Map();
  const rows = page.tills.map((t) => {
    const json = JSON.stringify(t);
    const old = drawn.get(t.key);
    const tr = old && old.json === json ? old.tr : row(t);
    next.set(t.key, { json, tr });
    return tr;
  });
  drawn = next;
  const same = rows.length === body.children.length && rows.every((tr, i) => body.children[i] === tr);
  if (!same) body.replaceChildren(...rows);
  const pages = Math.max(1, Math.ceil(page.matching / page.per_page));
  $('page-info').textContent = `Page ${page.page} of ${pages}`;
  $('matching').textContent = `${page.matching} of ${page.counts.total} tills`;
  $('prev').disabled = page.page <= 1;
  $('next').disabled = page.page >= pages;
  performance.mark('fleet-rendered');
}

async function load() {
  const params = new URLSearchParams();
  if (view.state) params.set('state', view.state);
  if (view.version) params.set('version', view.version);
  if (view.q) params.set('q', view.q);
  params.set('page', String(view.page));
  params.set('per_page', String(view.perPage));
  const page = await api(`/fleet?${params}`);
  render(page);
  document.body.dataset.loaded = 'true';
}

/** Reads the page again soon (at most twice a second while changes stream in). */
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; load().catch(showTrouble); }, 500);
}

function showTrouble(e) {
  if (e.message !== 'unauthorized') $('live').textContent = `Trouble: ${e.message}`;
}

/** A till changed: its row is redrawn at once; the order follows at the next read. */
function tillChanged(t) {
  const old = $('rows').querySelector(`tr[data-key="${CSS.escape(t.key)}"]`);
  if (old) {
    const fresh = row(t);
    fresh.classList.add('changed');
    old.replaceWith(fresh);
    drawn.set(t.key, { json: JSON.stringify(t), tr: fresh });
  }
  if (openKey === t.key) openDetail(t.key, false).catch(showTrouble);
  refreshSoon();
}

/** Follows `/fleet-events` (server-sent events over fetch, so the key goes in a header). */
async function follow() {
  let delay = 1000;
  for (;;) {
    if (!key()) return;
    streamAbort = new AbortController();
    try {
      const response = await fetch('/fleet-events', {
        headers: { Authorization: `Bearer ${key()}`, Accept: 'text/event-stream' },
        signal: streamAbort.signal,
      });
      if (response.status === 401) { askForKey('The support key was not accepted. Enter it again.'); return; }
      if (!response.ok || !response.body) throw new Error(`the live stream answered ${response.status}`);
      $('live').textContent = 'Live: changes appear as they happen';
      document.body.dataset.live = 'true';
      delay = 1000;
      await load();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (!data) continue;
          const payload = JSON.parse(data);
          if (event === 'till' && payload) tillChanged(payload);
          else if (event === 'forget') refreshSoon();
          else if (event === 'counts') renderCounts(payload.counts);
          else if (event === 'resync') refreshSoon();
        }
      }
      throw new Error('the live stream ended');
    } catch (e) {
      if (e.name === 'AbortError' || !key()) return;
      document.body.dataset.live = 'false';
      $('live').textContent = `Live updates interrupted (${e.message}); trying again…`;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }
}

function definition(list, term, value) {
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.textContent = value === undefined || value === null || value === '' ? '—' : String(value);
  list.append(dt, dd);
}

async function openDetail(tillKey, show = true) {
  const { till: t, timeline } = await api(`/fleet/${encodeURIComponent(tillKey)}`);
  openKey = tillKey;
  $('detail-title').textContent = tillName(t);
  const list = $('detail-list');
  list.replaceChildren();
  const r = t.report || {};
  definition(list, 'Till id', t.key);
  definition(list, 'Name', t.identity ? t.identity.name : 'unidentified');
  definition(list, 'App', t.identity ? `${t.identity.app} ${t.identity.version} on ${t.identity.os}` : '—');
  definition(list, 'State', `${STATE_WORDS[t.shown] || t.shown} since ${timeText(since(t))} (${ago(since(t))})`);
  definition(list, 'Why', why(t));
  definition(list, 'Last seen', `${timeText(t.last_seen)} (${ago(t.last_seen)})`);
  definition(list, 'User', t.user);
  definition(list, 'Source address', t.source);
  definition(list, 'Bridge node', t.node);
  definition(list, 'Transport', t.transport);
  definition(list, 'Delivered to it', t.deliveries);
  definition(list, 'Queued for it (bytes)', t.queued_bytes);
  definition(list, 'Behind the latest by', t.behind);
  definition(list, 'Cut as too slow', t.cuts);
  definition(list, 'Refused handshakes', t.refusals);
  definition(list, 'Connections', t.connections);
  definition(list, 'Its report', t.report_at ? `${timeText(t.report_at)} (${ago(t.report_at)})` : 'none yet');
  if (t.report) {
    definition(list, 'Its state', `${r.state} since ${timeText(r.since)}`);
    definition(list, 'Reconnects (1 h / 24 h)', `${r.reconnects_1h} / ${r.reconnects_24h}`);
    definition(list, 'Last disconnect', r.last_disconnect ? `${r.last_disconnect.reason}${r.last_disconnect.code ? ` (${r.last_disconnect.code})` : ''}, ${timeText(r.last_disconnect.at)}` : '');
    definition(list, 'Last sequence drawn', r.last_seq);
    definition(list, 'Catch-up gaps', `${r.gaps}${r.gap_open ? ', data may be incomplete now' : ''}`);
    definition(list, 'Round trip', r.rtt_ms === undefined ? '' : `${r.rtt_ms} ms`);
    definition(list, 'Clock offset', r.clock_offset_ms === undefined ? '' : `${r.clock_offset_ms} ms`);
    definition(list, 'Notifications', r.notifications ? 'on' : 'off');
    definition(list, 'Products shown', r.products);
    definition(list, 'Last error', r.last_error ? `${r.last_error.kind}: ${r.last_error.text} (${timeText(r.last_error.at)})` : '');
  }
  const ol = $('timeline');
  ol.replaceChildren(...[...timeline].reverse().map((e) => {
    const li = document.createElement('li');
    li.textContent = `${timeText(e.at)} — ${e.status}: ${e.detail}`;
    return li;
  }));
  $('ask').disabled = t.status !== 'online';
  if (show) {
    $('ask-result').textContent = '';
    $('diagnostics-text').hidden = true;
    if (!$('detail').open) $('detail').showModal();
  }
}

async function askDiagnostics() {
  const result = $('ask-result');
  const pre = $('diagnostics-text');
  result.textContent = 'Asking the till…';
  pre.hidden = true;
  $('ask').disabled = true;
  try {
    const answer = await api(`/fleet/${encodeURIComponent(openKey)}/diagnostics`, { method: 'POST' });
    result.textContent = 'The till answered:';
    pre.textContent = answer.text;
    pre.hidden = false;
  } catch (e) {
    result.textContent = e.message === 'unauthorized' ? '' : `The till did not answer: ${e.message}`;
  } finally {
    $('ask').disabled = false;
  }
}

async function forgetTill() {
  if (!openKey || !window.confirm('Forget this till? It comes back when it connects again.')) return;
  await api(`/fleet/${encodeURIComponent(openKey)}`, { method: 'DELETE' });
  $('detail').close();
  await load();
}

function setFilter(button) {
  const [kind, value] = button.dataset.filter.split(':');
  view.state = kind === 'state' ? value : '';
  view.version = kind === 'version' ? value : '';
  view.page = 1;
  for (const b of document.querySelectorAll('[data-filter]')) b.setAttribute('aria-pressed', String(b === button));
  load().catch(showTrouble);
}

function start() {
  $('key-view').hidden = true;
  $('fleet-view').hidden = false;
  $('sign-out').hidden = false;
  load().catch(showTrouble);
  follow();
}

document.addEventListener('DOMContentLoaded', () => {
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('key').value.trim();
    if (!value) { $('key-error').textContent = 'Enter the support key.'; return; }
    sessionStorage.setItem(KEY_SLOT, value);
    $('key').value = '';
    start();
  });
  $('sign-out').addEventListener('click', () => askForKey());
  for (const b of document.querySelectorAll('[data-filter]')) b.addEventListener('click', () => setFilter(b));
  let typing = null;
  $('search').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { view.q = $('search').value.trim(); view.page = 1; load().catch(showTrouble); }, 250);
  });
  $('search-form').addEventListener('submit', (e) => e.preventDefault());
  $('prev').addEventListener('click', () => { view.page = Math.max(1, view.page - 1); load().catch(showTrouble); });
  $('next').addEventListener('click', () => { view.page += 1; load().catch(showTrouble); });
  $('ask').addEventListener('click', () => askDiagnostics());
  $('forget').addEventListener('click', () => forgetTill().catch(showTrouble));
  $('close').addEventListener('click', () => $('detail').close());
  $('detail').addEventListener('close', () => { openKey = null; });
  // Times since each change, kept current.
  setInterval(() => {
    for (const t of document.querySelectorAll('time[data-ago]')) t.textContent = ago(t.dataset.ago);
  }, 15000);
  if (key()) start(); else askForKey();
});

export { ago };
