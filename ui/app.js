// The dashboard page: plain JavaScript, no bundler. Talks to the app only through
// window.__TAURI__.core.invoke; tests replace that object with a stand-in.
'use strict';

(() => {
  const tauri = window.__TAURI__ && window.__TAURI__.core;
  const $ = (id) => document.getElementById(id);
  const STATE_CLASS = { 'socket connected': 'connected', 'socket connecting': 'connecting', 'socket offline': 'offline' };
  const ERROR_TEXT = {
    wrong_credentials: 'Wrong email or password.',
    unreachable: 'The server could not be reached. Check the connection or the server address in Settings.',
    server_error: null, // the message says which status
    unexpected_answer: 'The server gave an answer this app does not understand.',
    invalid_url: 'The server address is not valid. Fix it in Settings.',
    missing_input: null,
    invalid_settings: null,
    not_logged_in: 'Please sign in.',
    storage: null,
    superseded: null, // a newer page took over: never shown
  };
  const FIELDS = ['product_id', 'name', 'in_stock', 'discount_price', 'peak_hour_price', 'mediboy_offer_price', 'sync_at'];
  const NUMERIC = new Set(['product_id', 'in_stock', 'discount_price', 'peak_hour_price', 'mediboy_offer_price']);
  const FRAME_MS = 16;
  const HIGHLIGHT_MS = 1500; // how long a new row or a changed value stays highlighted
  const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  const model = {
    state: null, latest: null, saleMode: null, gap: null, history: [], user: null, settings: null,
    rows: new Map(), // product_id -> entry (see addEntry)
    order: [], // all entries in display order
    shown: [], shownDirty: false, // the entries that match the filter, in display order
    pool: [], rowPx: 0, // the <tr> elements in the DOM; the height of one
    viewTop: 0, viewHeight: 0, // the table's scroll position and height (read on scroll and resize only)
    pending: new Map(), // product_id -> row values, written at most once per frame (scheduleFlush)
    newest: null, // the last row queued: what the banner shows after the flush
    sortKey: 'product_id', sortDir: 1, filter: '', frame: 0, needsOrder: false, lastOrderAt: -Infinity,
    lastFlushAt: -Infinity,
    lit: new Set(), // entries with a highlight on (sweepHighlights)
    sweep: 0,
  };

  // ---- IPC -----------------------------------------------------------------------------
  function invoke(cmd, args) {
    if (!tauri) return Promise.reject({ kind: 'no_backend', message: 'This page must run inside the Stock Dashboard app.' });
    return tauri.invoke(cmd, args);
  }

  // The app queues updates for this page from `subscribe` on; the page pulls them, one
  // batch at a time (the app answers at once when something is queued, at most once per
  // frame, and with an empty batch after a quiet while). Pulling costs the web process far
  // less memory than a message pushed on a Channel (see src-tauri/src/outlet.rs).
  async function subscribe() {
    const generation = await invoke('subscribe');
    pull(generation);
  }

  async function pull(generation) {
    for (;;) {
      let batch;
      try {
        batch = await invoke('next_updates', { generation });
      } catch (err) {
        if (err && err.kind === 'superseded') return; // a newer page took over
        console.warn('could not fetch updates; reloading the view', err);
        await new Promise((r) => setTimeout(r, 1000));
        await loadDashboard().catch(() => {});
        continue;
      }
      if (batch.resync) await loadDashboard().catch(() => {});
      for (const u of batch.updates) {
        try { onUpdate(u); } catch (err) { console.warn('could not show an update', u, err); }
      }
      scheduleFlush();
    }
  }

  function onUpdate(u) {
    switch (u.type) {
      case 'state': setState(u); break;
      case 'stock': queueRow(u); break;
      case 'sale_mode': setSaleMode(u.data); break;
      case 'gap': setGap(u); break;
      case 'gap_closed': setGap(null); break;
      case 'unauthorized': showLogin(u.message || 'Your session was refused by the server — please sign in again'); break;
      default: break;
    }
  }

  // ---- banner ----------------------------------------------------------------------------
  function setState(s) {
    model.state = s;
    model.history.push(s);
    if (model.history.length > 50) model.history.shift();
    const el = $('connection-state');
    el.textContent = s.state;
    el.className = `state ${STATE_CLASS[s.state] || 'offline'}`;
    el.title = describeState(s);
    renderStateDetail();
    if (!$('diagnostics').hidden) renderDiagnostics();
  }

  function describeState(s) {
    const why = s.reason ? ` — ${s.reason}` : '';
    return `${s.state}${why} (since ${new Date(s.since).toLocaleTimeString()})`;
  }

  function renderStateDetail() {
    const s = model.state;
    if (!s) return;
    const parts = [];
    if (s.reason) parts.push(s.reason);
    parts.push(`since ${new Date(s.since).toLocaleTimeString()}`);
    if (s.state !== 'socket connected' && s.attempt) parts.push(`attempt ${s.attempt}`);
    $('state-detail').textContent = parts.join(' · ');
  }

  function setLatest(row) {
    model.latest = row;
    $('banner-product').textContent = row.name ? `${row.name} (#${row.product_id})` : `#${row.product_id}`;
    $('banner-stock').textContent = String(row.in_stock);
    $('banner-discount-price').textContent = money.format(row.discount_price);
    $('banner-peak-hour-price').textContent = money.format(row.peak_hour_price);
    $('banner-offer-price').textContent = money.format(row.mediboy_offer_price);
    $('banner-stock').classList.toggle('error', row.in_stock <= 0);
    renderSyncAge();
  }

  function ago(iso) {
    const secs = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (!Number.isFinite(secs)) return iso;
    if (secs < 60) return `${secs} s ago`;
    if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
    if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
    return new Date(iso).toLocaleString();
  }

  function renderSyncAge() {
    if (!model.latest) return;
    const el = $('banner-sync-at');
    el.textContent = ago(model.latest.sync_at);
    el.title = model.latest.sync_at;
  }

  function setSaleMode(data) {
    model.saleMode = data;
    const el = $('sale-mode');
    const mode = data && (data.mode || data.sale_mode || data.name);
    el.textContent = `Sale mode: ${mode ? String(mode).replace(/_/g, ' ') : JSON.stringify(data)}`;
    el.hidden = false;
  }

  function setGap(gap) {
    model.gap = gap;
    const el = $('gap-notice');
    if (!gap) { el.hidden = true; return; }
    el.textContent = `Data may be incomplete since ${new Date(gap.since).toLocaleTimeString()} (${gap.reason}).`;
    el.hidden = false;
  }

  // ---- table -------------------------------------------------------------------------------
  // Every product has an entry (its latest values and highlights); only the rows in view
  // are in the DOM, a small pool of <tr> refilled as the table scrolls, with spacers above
  // and below standing in for the rest. The DOM is written at most once per frame
  // (scheduleFlush), in place, and its size does not grow with the number of products:
  // thousands of products cost the web process what a screenful does.
  const OVERSCAN = 10; // rows drawn above and below the visible ones

  function queueRow(row) {
    model.pending.set(row.product_id, row);
    model.newest = row;
  }

  // Queued rows are written at once when nothing was written within the last frame (they
  // are painted in the next frame instead of one frame later); otherwise at the next
  // animation frame, together with all that arrives until then. The app already answers
  // at most once per frame, so a live feed is drawn as it comes and a burst still costs
  // one DOM pass per frame.
  function scheduleFlush() {
    if (model.frame || model.pending.size === 0) return;
    if (performance.now() - model.lastFlushAt >= FRAME_MS) flush();
    else model.frame = requestAnimationFrame(flush);
  }

  function flush() {
    model.frame = 0;
    // Only a flush that writes queued rows counts: a redraw (scroll, highlights ending) must
    // not make the next update wait for a frame.
    if (model.pending.size) model.lastFlushAt = performance.now();
    const newest = model.newest;
    model.newest = null;
    for (const row of model.pending.values()) {
      const existing = model.rows.get(row.product_id);
      if (existing) updateEntry(existing, row);
      else addEntry(row);
    }
    model.pending.clear();
    if (newest) setLatest(newest);
    orderRows(false);
    render();
    $('empty-table').hidden = model.rows.size > 0;
    $('row-count').textContent = `${model.rows.size} products`;
  }

  // Read here, not while drawing: reading layout after writing the DOM would force a layout
  // in every flush.
  function measureView() {
    const wrap = $('table-wrap');
    model.viewTop = wrap.scrollTop;
    model.viewHeight = wrap.clientHeight;
  }

  function redraw() {
    if (!model.frame) model.frame = requestAnimationFrame(flush);
  }

  function cellText(key, v) {
    if (v === null || v === undefined) return '';
    if (key === 'discount_price' || key === 'peak_hour_price' || key === 'mediboy_offer_price') return money.format(v);
    return String(v);
  }

  function addEntry(row) {
    // changed: field -> 'up' | 'down' while highlighted; version: bumped on every change,
    // so a row already showing this version is not written again.
    const entry = { values: row, changed: new Map(), isNew: true, version: 0 };
    model.rows.set(row.product_id, entry);
    highlight(entry);
    insertSorted(entry);
  }

  function updateEntry(entry, row) {
    for (const key of FIELDS) {
      const before = entry.values[key];
      const after = row[key];
      if (before === after) continue;
      if (NUMERIC.has(key) && typeof before === 'number' && typeof after === 'number') {
        entry.changed.set(key, after > before ? 'up' : 'down');
      }
      if (key === model.sortKey) model.needsOrder = true;
      if (key === 'name' && model.filter) model.shownDirty = true; // (the id never changes)
    }
    entry.values = row;
    highlight(entry);
  }

  // New rows go straight to their place (binary search); no re-sort needed.
  function insertSorted(entry) {
    let lo = 0;
    let hi = model.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(model.order[mid], entry) <= 0) lo = mid + 1; else hi = mid;
    }
    model.order.splice(lo, 0, entry);
    model.shownDirty = true;
  }

  // A highlight lasts HIGHLIGHT_MS and is then taken off by one timer for all rows. (Not
  // CSS animations: WebKit keeps a finished animation's objects while its class stays.)
  function highlight(entry) {
    entry.version++;
    entry.until = performance.now() + HIGHLIGHT_MS;
    model.lit.add(entry);
    if (!model.sweep) model.sweep = setTimeout(sweepHighlights, HIGHLIGHT_MS);
  }

  function sweepHighlights() {
    model.sweep = 0;
    const now = performance.now();
    let next = Infinity;
    for (const entry of model.lit) {
      if (entry.until <= now) {
        entry.changed.clear();
        entry.isNew = false;
        entry.version++;
        model.lit.delete(entry);
      } else if (entry.until < next) next = entry.until;
    }
    // Ends are swept together, at most four times a second.
    if (next !== Infinity) model.sweep = setTimeout(sweepHighlights, Math.max(next - now, 250));
    redraw();
  }

  // Draws the rows in view from the entries: reuses the pool's rows, writes only what
  // differs from what a row shows.
  function render() {
    if (model.shownDirty) {
      model.shown = model.filter ? model.order.filter(matches) : model.order;
      model.shownDirty = false;
    }
    const rowPx = model.rowPx || 31;
    const total = model.shown.length;
    const first = Math.min(Math.max(0, Math.floor(model.viewTop / rowPx) - OVERSCAN), Math.max(0, total - 1));
    const last = Math.min(total, first + Math.ceil((model.viewHeight || 600) / rowPx) + 2 * OVERSCAN);
    $('rows-before').style.height = `${first * rowPx}px`;
    $('rows-after').style.height = `${(total - last) * rowPx}px`;
    const body = $('stock-rows');
    while (model.pool.length < last - first) {
      const tr = document.createElement('tr');
      tr.cells_ = FIELDS.map((key) => {
        const td = document.createElement('td');
        td.className = NUMERIC.has(key) ? 'num' : '';
        return tr.appendChild(td);
      });
      model.pool.push(tr);
      body.appendChild(tr);
    }
    while (model.pool.length > last - first) model.pool.pop().remove();
    for (let i = first; i < last; i++) fillRow(model.pool[i - first], model.shown[i]);
    if (!model.rowPx && model.pool.length) {
      // The first rows drawn give the real row height: draw again with it.
      model.rowPx = model.pool[0].getBoundingClientRect().height || 0;
      if (model.rowPx && model.rowPx !== rowPx) render();
    }
  }

  function fillRow(tr, entry) {
    if (tr.entry_ === entry && tr.version_ === entry.version) return;
    tr.entry_ = entry;
    tr.version_ = entry.version;
    const row = entry.values;
    const id = String(row.product_id);
    if (tr.dataset.productId !== id) tr.dataset.productId = id;
    const cls = `${row.in_stock <= 0 ? 'out-of-stock' : ''}${entry.isNew ? ' new' : ''}`;
    if (tr.className !== cls) tr.className = cls;
    FIELDS.forEach((key, i) => {
      const td = tr.cells_[i];
      const text = cellText(key, row[key]);
      if (td.textContent !== text) td.textContent = text;
      const dir = entry.changed.get(key);
      const tdCls = `${NUMERIC.has(key) ? 'num' : ''}${dir ? ` ${dir}` : ''}`;
      if (td.className !== tdCls) td.className = tdCls;
    });
  }

  function compare(a, b) {
    const k = model.sortKey;
    const x = a.values[k], y = b.values[k];
    let c;
    if (x === y) c = 0;
    else if (x === null || x === undefined) c = 1;
    else if (y === null || y === undefined) c = -1;
    else c = x < y ? -1 : 1;
    return (c || a.values.product_id - b.values.product_id) * model.sortDir;
  }

  // Re-sorts when a sorted value changed; at most twice a second while values stream in,
  // so rows do not jump around under the operator's eyes.
  function orderRows(force) {
    if (!model.needsOrder) return;
    const now = performance.now();
    if (!force && now - model.lastOrderAt < 500) {
      redraw();
      return;
    }
    model.lastOrderAt = now;
    model.needsOrder = false;
    model.order.sort(compare);
    model.shownDirty = true;
  }

  function matches(entry) {
    if (!model.filter) return true;
    const f = model.filter;
    return String(entry.values.product_id).includes(f) || (entry.values.name || '').toLowerCase().includes(f);
  }

  function applyFilter() {
    model.filter = $('stock-filter').value.trim().toLowerCase();
    model.shownDirty = true;
    render();
  }

  function sortBy(key) {
    if (model.sortKey === key) model.sortDir = -model.sortDir;
    else { model.sortKey = key; model.sortDir = 1; }
    for (const th of document.querySelectorAll('th[data-sort]')) {
      th.setAttribute('aria-sort', th.dataset.sort === key ? (model.sortDir > 0 ? 'ascending' : 'descending') : 'none');
    }
    model.needsOrder = true;
    orderRows(true);
    render();
  }

  function resetTable() {
    model.rows.clear();
    model.order = [];
    model.shown = [];
    model.shownDirty = false;
    model.pending.clear();
    model.lit.clear();
    for (const tr of model.pool) tr.remove();
    model.pool = [];
    $('rows-before').style.height = '0px';
    $('rows-after').style.height = '0px';
    $('empty-table').hidden = false;
    $('row-count').textContent = '';
  }

  // ---- views -------------------------------------------------------------------------------
  function showLogin(message) {
    $('login-view').hidden = false;
    $('dashboard-view').hidden = true;
    $('logout').hidden = true;
    $('toggle-diagnostics').hidden = true;
    $('diagnostics').hidden = true;
    $('login-server').textContent = model.settings ? `Server: ${model.settings.api_base_url}` : '';
    showLoginError(message || '');
    $('login-email').focus();
  }

  function showDashboard() {
    $('login-view').hidden = true;
    $('dashboard-view').hidden = false;
    $('logout').hidden = false;
    $('toggle-diagnostics').hidden = false;
    measureView();
    redraw();
  }

  function showLoginError(text) {
    const el = $('login-error');
    el.textContent = text;
    el.hidden = !text;
  }

  async function loadDashboard() {
    const view = await invoke('dashboard');
    resetTable();
    model.history = [];
    for (const s of view.history.slice(0, -1)) model.history.push(s);
    setState(view.state);
    for (const row of view.products) queueRow(row);
    if (view.latest) queueRow(view.latest); // the banner shows it
    scheduleFlush();
    if (view.sale_mode) setSaleMode(view.sale_mode);
    setGap(view.gap);
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const email = $('login-email').value.trim();
    const password = $('login-password').value;
    if (!email) return showLoginError('Enter your email address.');
    if (!password) return showLoginError('Enter your password.');
    const button = $('login-submit');
    button.disabled = true;
    button.classList.add('busy');
    button.textContent = 'Signing in';
    showLoginError('');
    try {
      const session = await invoke('login', { email, password, remember: $('login-remember').checked });
      model.user = session.user;
      $('login-password').value = '';
      showDashboard();
      await loadDashboard();
    } catch (err) {
      const text = (err && ERROR_TEXT[err.kind]) || (err && err.message) || String(err);
      showLoginError(text);
    } finally {
      button.disabled = false;
      button.classList.remove('busy');
      button.textContent = 'Sign in';
    }
  }

  async function onLogout() {
    await invoke('logout').catch(() => {});
    resetTable();
    showLogin('');
  }

  // ---- settings ----------------------------------------------------------------------------
  async function openSettings() {
    const s = await invoke('get_settings').catch(() => model.settings);
    if (s) { $('settings-api').value = s.api_base_url; $('settings-socket').value = s.socket_url; }
    $('settings-error').hidden = true;
    $('settings-dialog').showModal();
  }

  async function saveSettings(ev) {
    ev.preventDefault();
    try {
      model.settings = await invoke('save_settings', {
        settings: { api_base_url: $('settings-api').value, socket_url: $('settings-socket').value },
      });
      $('settings-dialog').close();
      if (!$('login-view').hidden) $('login-server').textContent = `Server: ${model.settings.api_base_url}`;
    } catch (err) {
      $('settings-error').textContent = (err && err.message) || String(err);
      $('settings-error').hidden = false;
    }
  }

  // ---- diagnostics -------------------------------------------------------------------------
  let lastDiagnostics = null;
  async function renderDiagnostics() {
    const d = await invoke('diagnostics').catch(() => null);
    if (!d) return;
    lastDiagnostics = d;
    const c = d.counters || {};
    const items = [
      ['App version', d.app_version], ['API', d.api_base_url], ['Socket', d.socket_url],
      ['User', d.user ? `${d.user.name || ''} (#${d.user.id})` : '—'],
      ['State', d.state.state], ['Reason', d.state.reason || '—'], ['Since', new Date(d.state.since).toLocaleString()],
      ['Reconnect attempts', c.attempts ?? 0], ['Events received', c.events_received ?? 0],
      ['Events dropped', c.events_dropped ?? 0], ['Malformed events', c.malformed ?? 0],
      ['Last event', d.last_event_at ? `${d.last_event_age_secs} s ago` : 'none yet'],
      ['Data complete', d.gap ? `no, since ${new Date(d.gap.since).toLocaleTimeString()}` : 'yes'],
    ];
    const dl = $('diag-list');
    dl.textContent = '';
    for (const [k, v] of items) {
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = String(v);
      dl.append(dt, dd);
    }
    const ol = $('diag-history');
    ol.textContent = '';
    for (const s of [...d.history].reverse()) {
      const li = document.createElement('li');
      li.textContent = `${new Date(s.since).toLocaleTimeString()} ${s.state}${s.reason ? ` — ${s.reason}` : ''}`;
      ol.appendChild(li);
    }
  }

  async function copyDiagnostics() {
    await renderDiagnostics();
    const text = JSON.stringify(lastDiagnostics, null, 2);
    try {
      await navigator.clipboard.writeText(text);
      $('copy-result').textContent = 'Copied.';
    } catch {
      $('copy-result').textContent = 'Copy failed; select the text below.';
      const pre = document.createElement('pre'); pre.textContent = text; $('diagnostics').appendChild(pre);
    }
  }

  // ---- start -------------------------------------------------------------------------------
  async function start() {
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    $('stock-filter').addEventListener('input', applyFilter);
    $('table-wrap').addEventListener('scroll', () => { measureView(); redraw(); }, { passive: true });
    window.addEventListener('resize', () => { measureView(); redraw(); });
    for (const th of document.querySelectorAll('th[data-sort]')) th.addEventListener('click', () => sortBy(th.dataset.sort));
    $('open-settings').addEventListener('click', openSettings);
    $('settings-cancel').addEventListener('click', () => $('settings-dialog').close());
    $('settings-form').addEventListener('submit', saveSettings);
    $('toggle-diagnostics').addEventListener('click', () => {
      const el = $('diagnostics');
      el.hidden = !el.hidden;
      if (!el.hidden) renderDiagnostics();
    });
    $('copy-diagnostics').addEventListener('click', copyDiagnostics);
    setInterval(() => { renderSyncAge(); if (!$('diagnostics').hidden) renderDiagnostics(); }, 1000);
    try {
      await subscribe(); // first, so nothing sent from now on is missed
      const session = await invoke('current_session');
      model.settings = session.settings;
      model.user = session.user;
      await loadDashboard(); // then the current state: nothing sent before we listened is lost
      if (session.logged_in) showDashboard();
      else showLogin('');
    } catch (err) {
      showLogin((err && err.message) || String(err));
    }
  }

  document.addEventListener('DOMContentLoaded', start);
})();
