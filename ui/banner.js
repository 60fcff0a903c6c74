// The header: connection state (words, colour, why and since when), the latest product's
// values, the sale mode, the data-may-be-incomplete notice, and an update on offer.

import { ago, clockTime, exactTime, money } from './format.js';

const STATE_CLASS = { 'socket connected': 'connected', 'socket connecting': 'connecting', 'socket offline': 'offline' };

export function createBanner(doc = document) {
  const $ = (id) => doc.getElementById(id);
  let latest = null;
  let announced = null; // the state words last announced to screen readers

  function describe(s) {
    const why = s.reason ? ` — ${s.reason}` : '';
    return `${s.state}${why} (since ${new Date(s.since).toLocaleTimeString()})`;
  }

  function showState(s) {
    const el = $('connection-state');
    el.textContent = s.state;
    el.className = `state ${STATE_CLASS[s.state] || 'offline'}`;
    el.title = describe(s);
    const parts = [];
    if (s.reason) parts.push(s.reason);
    parts.push(`since ${new Date(s.since).toLocaleTimeString()}`);
    if (s.state !== 'socket connected' && s.attempt) parts.push(`attempt ${s.attempt}`);
    $('state-detail').textContent = parts.join(' · ');
    // Screen readers hear a change of state (a live region), not every retry's details.
    if (s.state !== announced) {
      announced = s.state;
      $('state-announcer').textContent = s.reason ? `Connection: ${s.state}, ${s.reason}` : `Connection: ${s.state}`;
    }
  }

  function showLatest(row) {
    latest = row;
    $('banner-product').textContent = row.name ? `${row.name} (#${row.product_id})` : `#${row.product_id}`;
    $('banner-stock').textContent = String(row.in_stock);
    $('banner-discount-price').textContent = money.format(row.discount_price);
    $('banner-peak-hour-price').textContent = money.format(row.peak_hour_price);
    $('banner-offer-price').textContent = money.format(row.mediboy_offer_price);
    $('banner-stock').classList.toggle('error', row.in_stock <= 0);
    tick();
  }

  /** Rewrites the "synced … ago" text (called every second). */
  function tick() {
    if (!latest) return;
    const el = $('banner-sync-at');
    el.textContent = ago(latest.sync_at);
    el.title = exactTime(latest.sync_at);
  }

  function showSaleMode(data) {
    const el = $('sale-mode');
    const mode = data && (data.mode || data.sale_mode || data.name);
    el.textContent = `Sale mode: ${mode ? String(mode).replace(/_/g, ' ') : JSON.stringify(data)}`;
    el.hidden = false;
  }

  function showGap(gap) {
    const el = $('gap-notice');
    if (!gap) { el.hidden = true; return; }
    el.textContent = `Data may be incomplete since ${new Date(gap.since).toLocaleTimeString()} (${gap.reason}).`;
    el.hidden = false;
  }

  /**
   * Values restored from disk (`iso`: when they were last known) are not live until the
   * first catch-up completes: say so, and grey the table. `null` ends it.
   */
  function showLastKnown(iso) {
    const el = $('last-known');
    $('stock-table').classList.toggle('stale', Boolean(iso));
    if (!iso) { el.hidden = true; return; }
    el.textContent = `Last known at ${clockTime(iso)} — not live`;
    el.title = `These values were last known to be current at ${exactTime(iso)}; they update once the connection has caught up.`;
    el.hidden = false;
  }

  /**
   * An update (the app's `UpdateView`): its download's progress, then "Update 0.1.1 ready"
   * with Install and restart / Later, then "Installing". Nothing otherwise: a check, its
   * failure or a put-off update are for the Diagnostics panel, never in the operator's way.
   */
  function showUpdate(view) {
    const s = (view && view.status) || { state: 'off' };
    const box = $('update-offer');
    const bar = $('update-progress');
    let text = '';
    let offer = false;
    bar.hidden = true;
    if (s.state === 'downloading') {
      if (s.total) {
        const perMille = Math.min(1000, Math.floor((s.received * 1000) / s.total));
        bar.value = perMille;
        bar.hidden = false;
        text = `Downloading update ${s.version}… ${Math.floor(perMille / 10)} %`;
      } else {
        text = `Downloading update ${s.version}… ${(s.received / 1e6).toFixed(1)} MB`;
      }
    } else if (s.state === 'ready') {
      text = `Update ${s.version} ready`;
      offer = true;
    } else if (s.state === 'installing') {
      text = `Installing update ${s.version}…`;
    }
    $('update-text').textContent = text;
    box.title = s.state === 'ready' && s.notes ? s.notes : '';
    $('update-install').hidden = !offer;
    $('update-later').hidden = !offer;
    box.hidden = !text;
  }

  return { showState, showLatest, showSaleMode, showGap, showLastKnown, showUpdate, tick };
}
