// The stock table, windowed. Every product has an entry (its latest values and
// highlights); only the rows in view are in the DOM, a small pool of <tr> refilled as the
// table scrolls, with spacers above and below standing in for the rest. `upsert` writes
// the DOM at once, in one pass, in place (the app sends at most one batch per frame);
// scrolling, the end of a highlight and a deferred re-sort redraw at the next frame. The
// DOM's size does not grow with the number of products: thousands of products cost the
// web process what a screenful does.

import { ago, exactTime, money } from './format.js';

export const FIELDS = ['product_id', 'name', 'in_stock', 'discount_price', 'peak_hour_price', 'mediboy_offer_price', 'sync_at'];
const NUMERIC = new Set(['product_id', 'in_stock', 'discount_price', 'peak_hour_price', 'mediboy_offer_price']);
const PRICES = new Set(['discount_price', 'peak_hour_price', 'mediboy_offer_price']);
export const HIGHLIGHT_MS = 1500; // how long a new row or a changed value stays highlighted
const OVERSCAN = 10; // rows drawn above and below the visible ones
const RESORT_EVERY_MS = 500; // rows do not jump around under the operator's eyes

/**
 * `onWatch(productId, watched)` is called when the operator stars or un-stars a product
 * (the table shows the change once `setWatched` is called with the saved list).
 */
export function createTable(doc = document, { onWatch = () => {} } = {}) {
  const $ = (id) => doc.getElementById(id);
  const t = {
    rows: new Map(), // product_id -> entry
    order: [], // all entries in display order
    shown: [], shownDirty: false, // the entries that match the filter, in display order
    pool: [], rowPx: 0, // the <tr> elements in the DOM; the height of one
    viewTop: 0, viewHeight: 0, // scroll position and height (read on scroll and resize only)
    sortKey: 'product_id', sortDir: 1, filter: '',
    needsOrder: false, lastOrderAt: -Infinity,
    frame: 0, // a pending redraw
    lit: new Set(), sweep: 0, // entries with a highlight on, and the timer that ends them
    named: 0, // entries with a name (the Name column is hidden while there are none)
    watched: new Set(), // product ids the operator watches
  };
  const SYNC = FIELDS.indexOf('sync_at');

  /** Writes `rows` (the latest per product) into the table, at once. */
  function upsert(rows) {
    for (const row of rows) {
      const existing = t.rows.get(row.product_id);
      if (existing) updateEntry(existing, row);
      else addEntry(row);
    }
    orderRows(false);
    render();
    $('empty-table').hidden = t.rows.size > 0;
    $('row-count').textContent = `${t.rows.size} products`;
    showNames();
  }

  // The back office's add_stock carries no name: then the column would only be empty.
  function showNames() {
    const none = t.named === 0;
    const table = $('stock-table');
    if (table.classList.contains('no-names') !== none) table.classList.toggle('no-names', none);
  }

  function addEntry(row) {
    // changed: field -> 'up' | 'down' while highlighted; version: bumped on every change,
    // so a row already showing this version is not written again.
    const entry = { values: row, changed: new Map(), isNew: true, version: 0 };
    t.rows.set(row.product_id, entry);
    if (row.name) t.named++;
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
      if (key === t.sortKey) t.needsOrder = true;
      if (key === 'name' && t.filter) t.shownDirty = true; // (the id never changes)
    }
    t.named += (row.name ? 1 : 0) - (entry.values.name ? 1 : 0);
    entry.values = row;
    highlight(entry);
  }

  // New rows go straight to their place (binary search); no re-sort needed.
  function insertSorted(entry) {
    let lo = 0;
    let hi = t.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(t.order[mid], entry) <= 0) lo = mid + 1; else hi = mid;
    }
    t.order.splice(lo, 0, entry);
    t.shownDirty = true;
  }

  // A highlight lasts HIGHLIGHT_MS and is then taken off by one timer for all rows. (Not
  // CSS animations: WebKit keeps a finished animation's objects while its class stays.)
  function highlight(entry) {
    entry.version++;
    entry.until = performance.now() + HIGHLIGHT_MS;
    t.lit.add(entry);
    if (!t.sweep) t.sweep = setTimeout(sweepHighlights, HIGHLIGHT_MS);
  }

  function sweepHighlights() {
    t.sweep = 0;
    const now = performance.now();
    let next = Infinity;
    for (const entry of t.lit) {
      if (entry.until <= now) {
        entry.changed.clear();
        entry.isNew = false;
        entry.version++;
        t.lit.delete(entry);
      } else if (entry.until < next) next = entry.until;
    }
    // Ends are swept together, at most four times a second.
    if (next !== Infinity) t.sweep = setTimeout(sweepHighlights, Math.max(next - now, 250));
    redraw();
  }

  /** Draws again at the next frame (scroll, resize, highlights ending, a deferred sort). */
  function redraw() {
    if (!t.frame) t.frame = requestAnimationFrame(() => { t.frame = 0; orderRows(false); render(); });
  }

  // Reads layout: called on scroll and resize, never while drawing (reading layout after
  // writing the DOM would force a layout in every pass).
  function measure() {
    const wrap = $('table-wrap');
    t.viewTop = wrap.scrollTop;
    t.viewHeight = wrap.clientHeight;
  }

  // Draws the rows in view from the entries: reuses the pool's rows, writes only what
  // differs from what a row shows.
  function render() {
    if (t.shownDirty) {
      t.shown = t.filter ? t.order.filter(matches) : t.order;
      t.shownDirty = false;
    }
    const rowPx = t.rowPx || 31;
    const total = t.shown.length;
    const first = Math.min(Math.max(0, Math.floor(t.viewTop / rowPx) - OVERSCAN), Math.max(0, total - 1));
    const last = Math.min(total, first + Math.ceil((t.viewHeight || 600) / rowPx) + 2 * OVERSCAN);
    $('rows-before').style.height = `${first * rowPx}px`;
    $('rows-after').style.height = `${(total - last) * rowPx}px`;
    const body = $('stock-rows');
    while (t.pool.length < last - first) {
      const tr = doc.createElement('tr');
      tr.cells_ = FIELDS.map((key) => {
        const td = doc.createElement('td');
        td.className = NUMERIC.has(key) ? 'num' : '';
        return tr.appendChild(td);
      });
      const star = doc.createElement('button');
      star.type = 'button';
      star.className = 'watch';
      tr.appendChild(doc.createElement('td')).appendChild(star);
      tr.star_ = star;
      t.pool.push(tr);
      body.appendChild(tr);
    }
    while (t.pool.length > last - first) t.pool.pop().remove();
    for (let i = first; i < last; i++) fillRow(t.pool[i - first], t.shown[i]);
    if (!t.rowPx && t.pool.length) {
      // The first rows drawn give the real row height: draw again with it.
      t.rowPx = t.pool[0].getBoundingClientRect().height || 0;
      if (t.rowPx && t.rowPx !== rowPx) render();
    }
  }

  function cellText(key, v) {
    if (v === null || v === undefined) return '';
    if (key === 'sync_at') return ago(v);
    return PRICES.has(key) ? money.format(v) : String(v);
  }

  /** Rewrites the "… ago" of the rows in view (called every second); nothing else. */
  function tick() {
    for (const tr of t.pool) {
      if (!tr.entry_) continue;
      const text = cellText('sync_at', tr.entry_.values.sync_at);
      const td = tr.cells_[SYNC];
      if (td.textContent !== text) td.textContent = text;
    }
  }

  function fillRow(tr, entry) {
    if (tr.entry_ === entry && tr.version_ === entry.version && tr.watched_ === t.watched.has(entry.values.product_id)) return;
    const watched = t.watched.has(entry.values.product_id);
    if (tr.watched_ !== watched || tr.entry_ !== entry) {
      tr.watched_ = watched;
      tr.star_.textContent = watched ? '★' : '☆';
      tr.star_.setAttribute('aria-pressed', String(watched));
      tr.star_.setAttribute('aria-label', `Watch product ${entry.values.product_id}`);
      tr.star_.title = watched ? 'Watched: a notification when it runs out or comes back' : 'Watch this product';
    }
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
      if (i === SYNC) {
        const exact = exactTime(row.sync_at);
        if (td.title !== exact) td.title = exact;
      }
      const dir = entry.changed.get(key);
      const tdCls = `${NUMERIC.has(key) ? 'num' : ''}${dir ? ` ${dir}` : ''}`;
      if (td.className !== tdCls) td.className = tdCls;
    });
  }

  function compare(a, b) {
    const k = t.sortKey;
    const x = a.values[k], y = b.values[k];
    let c;
    if (x === y) c = 0;
    else if (x === null || x === undefined) c = 1;
    else if (y === null || y === undefined) c = -1;
    else c = x < y ? -1 : 1;
    return (c || a.values.product_id - b.values.product_id) * t.sortDir;
  }

  // Re-sorts when a sorted value changed; at most every RESORT_EVERY_MS while values stream in.
  function orderRows(force) {
    if (!t.needsOrder) return;
    const now = performance.now();
    if (!force && now - t.lastOrderAt < RESORT_EVERY_MS) {
      redraw();
      return;
    }
    t.lastOrderAt = now;
    t.needsOrder = false;
    t.order.sort(compare);
    t.shownDirty = true;
  }

  function matches(entry) {
    const f = t.filter;
    return !f || String(entry.values.product_id).includes(f) || (entry.values.name || '').toLowerCase().includes(f);
  }

  /** Shows only the products whose id or name contains `text`. */
  function setFilter(text) {
    t.filter = text.trim().toLowerCase();
    t.shownDirty = true;
    render();
  }

  /** Sorts by `key`; the same key again reverses the order. Returns the direction (1 or -1). */
  function sortBy(key) {
    if (t.sortKey === key) t.sortDir = -t.sortDir;
    else { t.sortKey = key; t.sortDir = 1; }
    t.needsOrder = true;
    orderRows(true);
    render();
    return t.sortDir;
  }

  /** The products watched, as saved by the app. */
  function setWatched(ids) {
    t.watched = new Set(ids);
    render();
  }

  $('stock-rows').addEventListener('click', (e) => {
    const star = e.target.closest && e.target.closest('button.watch');
    const tr = star && star.closest('tr');
    if (!tr || !tr.entry_) return;
    const id = tr.entry_.values.product_id;
    onWatch(id, !t.watched.has(id));
  });

  /** Forgets every product (a new session, a reloaded view). */
  function reset() {
    t.rows.clear();
    t.order = [];
    t.shown = [];
    t.shownDirty = false;
    t.lit.clear();
    t.named = 0;
    showNames();
    for (const tr of t.pool) tr.remove();
    t.pool = [];
    $('rows-before').style.height = '0px';
    $('rows-after').style.height = '0px';
    $('empty-table').hidden = false;
    $('row-count').textContent = '';
  }

  return { upsert, reset, setFilter, sortBy, measure, redraw, tick, setWatched, get size() { return t.rows.size; } };
}
