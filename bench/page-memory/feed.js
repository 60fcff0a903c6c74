// Feeds the dashboard page (ui/) through the Tauri stand-in, with no app and no IPC: the
// page alone, in the same engine as the app (WebKitGTK). Settings come from the URL's hash:
// rate (updates/s, default 200), n (updates, default 72000), products (default 500).
// Progress goes to the console ("sent N"), which bench/page-memory.sh reads.
'use strict';
(() => {
  const q = new URLSearchParams(location.hash.slice(1));
  const RATE = Number(q.get('rate') || 200);
  const N = Number(q.get('n') || 72000);
  const PRODUCTS = Number(q.get('products') || 500);
  const s = window.__standin;
  s.handlers.current_session = () => ({
    logged_in: true, user: { id: '1', name: 'Bench' },
    settings: { api_base_url: 'http://127.0.0.1:3001', socket_url: 'http://127.0.0.1:3001' },
  });
  let sent = 0;
  let start = null;
  // Like the app's outlet: one batch per ~frame with what came due since the last one.
  setInterval(() => {
    if (!s.polling || sent >= N) return;
    if (start === null) start = performance.now();
    const due = Math.min(N, Math.floor(((performance.now() - start) * RATE) / 1000) + 1);
    const batch = [];
    for (; sent < due; sent++) {
      batch.push({ type: 'stock', product_id: 5000 + (sent % PRODUCTS), name: null, in_stock: 100000 + sent,
        discount_price: 10 + (sent % 90), peak_hour_price: 12, mediboy_offer_price: 9, sync_at: new Date().toISOString(),
        seq: sent, received_at: new Date().toISOString() });
    }
    if (batch.length) s.push(batch);
    if (Math.floor(sent / 1000) !== Math.floor((sent - batch.length) / 1000) || sent === N) console.log(`sent ${sent}`);
  }, 16);
})();
