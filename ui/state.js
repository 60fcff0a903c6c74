// The page's reading of a batch of updates (src-tauri/src/page.rs `PageUpdate`): what to
// draw, with nothing drawn yet. Pure: no DOM, no IPC.

/**
 * Reduces `updates` (in order) to what changed:
 * - `state`: the last connection state, if any;
 * - `rows`: stock rows, the latest per product, in order of their last update;
 * - `latest`: the last stock row (what the banner shows);
 * - `saleMode`: the last sale_mode data, if any;
 * - `gap`: undefined (no news), null (closed) or the last notice;
 * - `sessionEnded`: the message when the server refused the session;
 * - `update`: the last update view (crates/stock-client/src/update.rs `UpdateView`), if any.
 */
export function readBatch(updates) {
  const out = { state: undefined, rows: [], latest: undefined, saleMode: undefined, gap: undefined, sessionEnded: undefined, update: undefined };
  const rows = new Map();
  for (const u of updates) {
    switch (u.type) {
      case 'state': out.state = u; break;
      case 'stock': rows.delete(u.product_id); rows.set(u.product_id, u); out.latest = u; break;
      case 'sale_mode': out.saleMode = u.data; break;
      case 'gap': out.gap = u; break;
      case 'gap_closed': out.gap = null; break;
      case 'update': { const { type: _type, ...view } = u; out.update = view; break; }
      case 'unauthorized': out.sessionEnded = u.message || 'Your session was refused by the server — please sign in again'; break;
      default: console.warn('unknown update', u); break;
    }
  }
  out.rows = [...rows.values()];
  return out;
}
