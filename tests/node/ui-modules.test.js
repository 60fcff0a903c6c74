// Each of the page's modules (ui/*.js) on its own, in headless Chromium: the document of
// the page without its script (/fixture.html), the module imported by the test.
const test = require('node:test');
const assert = require('node:assert/strict');
const { SAMPLES, WAIT, startBrowser, newPage, stock, state, update } = require('./browser');

let env;
test.before(async () => { env = await startBrowser(); });
test.after(async () => { await env?.close(); });

async function fixture() {
  const page = await newPage(env.browser, `${env.base}fixture.html`);
  await page.waitForFunction(() => document.readyState === 'complete', null, WAIT);
  return page;
}

test('errors.js names exactly the error kinds the app sends', async () => {
  const page = await fixture();
  const kinds = await page.evaluate(async () => Object.keys((await import('/errors.js')).ERROR_TEXT));
  assert.deepEqual([...kinds].sort(), [...SAMPLES.error_kinds].sort(), 'ui/errors.js ERROR_TEXT and the app\'s ErrorKind differ');
  const text = await page.evaluate(async (e) => (await import('/errors.js')).errorText(e), SAMPLES.command_error);
  assert.equal(text, 'Wrong email or password.');
  const fallback = await page.evaluate(async () => (await import('/errors.js')).errorText({ kind: 'server_error', message: 'the server answered 502' }));
  assert.equal(fallback, 'the server answered 502');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('format.js writes ages as people read them', async () => {
  const page = await fixture();
  const out = await page.evaluate(async () => {
    const { ago } = await import('/format.js');
    const now = Date.parse('2026-01-01T12:00:00Z');
    return [ago('2026-01-01T11:59:48Z', now), ago('2026-01-01T11:57:00Z', now), ago('2026-01-01T09:00:00Z', now), ago('garbage', now)];
  });
  assert.deepEqual(out, ['12 s ago', '3 min ago', '3 h ago', 'garbage']);
  await page.close();
});

test('state.js reads every kind of update the app sends, keeping the latest per product in order', async () => {
  const page = await fixture();
  const read = await page.evaluate(async (updates) => (await import('/state.js')).readBatch(updates), SAMPLES.batch.updates);
  assert.equal(read.state.state, 'socket offline');
  assert.equal(read.latest.product_id, 5486);
  assert.deepEqual(read.saleMode, { mode: 'peak_hour' });
  assert.equal(read.gap, null, 'gap then gap_closed: closed');
  assert.match(read.sessionEnded, /expired/);
  const rows = await page.evaluate(async (updates) => (await import('/state.js')).readBatch(updates).rows.map((r) => [r.product_id, r.in_stock]),
    [stock(1, 10), stock(2, 20), stock(1, 11)]);
  assert.deepEqual(rows, [[2, 20], [1, 11]]);
  assert.deepEqual(page.warnings, [], 'no update kind the page does not know');
  await page.close();
});

test('banner.js shows the state words, colour and reason, the latest values, sale mode and gaps', async () => {
  const page = await fixture();
  const shown = await page.evaluate(async ([offline, row, gap]) => {
    const banner = (await import('/banner.js')).createBanner();
    const $ = (id) => document.getElementById(id);
    banner.showState(offline);
    const state = [$('connection-state').textContent, $('connection-state').className, $('state-detail').textContent];
    banner.showLatest(row);
    const latest = [$('banner-product').textContent, $('banner-stock').textContent, $('banner-discount-price').textContent];
    banner.showSaleMode({ mode: 'peak_hour' });
    banner.showGap(gap);
    const gapShown = !$('gap-notice').hidden;
    banner.showGap(null);
    return { state, latest, sale: $('sale-mode').textContent, gapShown, gapHidden: $('gap-notice').hidden };
  }, [state('socket offline', 'server closed the connection'), stock(12, 0, 50, { name: 'Napa' }), update('gap')]);
  assert.equal(shown.state[0], 'socket offline');
  assert.equal(shown.state[1], 'state offline');
  assert.match(shown.state[2], /^server closed the connection · since /);
  assert.deepEqual(shown.latest, ['Napa (#12)', '0', '50.00']);
  assert.equal(shown.sale, 'Sale mode: peak hour');
  assert.deepEqual([shown.gapShown, shown.gapHidden], [true, true]);
  await page.close();
});

test('table.js draws a batch at once, windowed, sorted and filtered; reset empties it', async () => {
  const page = await fixture();
  await page.evaluate(() => { document.getElementById('dashboard-view').hidden = false; });
  const out = await page.evaluate(async (rows) => {
    const table = (await import('/table.js')).createTable();
    table.measure();
    table.upsert(rows);
    const ids = () => [...document.querySelectorAll('#stock-rows tr')].map((tr) => Number(tr.dataset.productId));
    const drawn = ids();
    const firstDrawn = drawn.slice(0, 3);
    table.sortBy('in_stock');
    table.sortBy('in_stock'); // again: descending
    const byStockDesc = ids().slice(0, 3);
    table.setFilter('77');
    const filtered = ids();
    table.setFilter('');
    const size = table.size;
    table.reset();
    return { inDom: drawn.length, firstDrawn, byStockDesc, filtered, size, after: ids().length,
      count: document.getElementById('row-count').textContent };
  }, Array.from({ length: 1000 }, (_, i) => stock(i + 1, i % 100, 10)));
  assert.ok(out.inDom > 10 && out.inDom < 100, `${out.inDom} rows in the DOM for 1,000 products`);
  assert.deepEqual(out.firstDrawn, [1, 2, 3]);
  assert.deepEqual(out.byStockDesc, [1000, 900, 800], 'in_stock 99 first; the whole order reversed (ties too)');
  assert.deepEqual([...out.filtered].sort((a, b) => a - b), [77, 177, 277, 377, 477, 577, 677, 770, 771, 772, 773, 774, 775, 776, 777, 778, 779, 877, 977]);
  assert.equal(out.size, 1000);
  assert.deepEqual([out.after, out.count], [0, '']);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('diagnostics.js lists what the app reports and its state history', async () => {
  const page = await fixture();
  const out = await page.evaluate(async (report) => {
    const diag = (await import('/diagnostics.js')).createDiagnostics(async (cmd) => (cmd === 'diagnostics' ? report : null));
    await diag.render();
    return { list: document.getElementById('diag-list').textContent, history: [...document.querySelectorAll('#diag-history li')].map((li) => li.textContent) };
  }, SAMPLES.diagnostics);
  assert.match(out.list, /Demo Operator \(#1\)/);
  assert.match(out.list, /TillDhanmondi, counter 2/, 'the till name, to read out on the phone');
  assert.match(out.list, /Till id5f0c0ffee5f0c0ffee5f0c0ffee5f0c0/);
  assert.match(out.list, /Reconnect attempts3/);
  assert.match(out.list, /Data completeno, since/);
  assert.equal(out.history.length, 2);
  assert.match(out.history[0], /socket connected$/, 'newest first');
  assert.match(out.history[1], /socket offline — server closed the connection$/);
  await page.close();
});

test('ipc.js hands each batch on as it comes, reloads on resync, and stops when superseded', async () => {
  const page = await fixture();
  const out = await page.evaluate(async (rows) => {
    const { follow } = await import('/ipc.js');
    const s = window.__standin;
    const batches = [];
    let resyncs = 0;
    await follow({ onBatch: (u) => batches.push(u.map((x) => x.product_id)), onResync: async () => { resyncs++; } });
    await s.push(rows.slice(0, 2));
    await s.push(rows.slice(2));
    await s.resync();
    s.handlers.subscribe(); // a newer page
    let polls = 0;
    const pull = s.handlers.next_updates;
    s.handlers.next_updates = (args) => { polls++; return pull(args); };
    await s.push([]);
    await new Promise((r) => setTimeout(r, 0)); // a task after the refusal was handled
    return { batches, resyncs, polls };
  }, [stock(1, 1), stock(2, 2), stock(3, 3)]);
  assert.deepEqual(out.batches, [[1, 2], [3]]);
  assert.equal(out.resyncs, 1);
  assert.equal(out.polls, 1, 'one refused call, then no more');
  assert.deepEqual(page.warnings, []);
  await page.close();
});
