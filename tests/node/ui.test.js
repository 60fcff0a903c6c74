// The whole page (ui/) in headless Chromium, with Tauri's IPC replaced by
// tauri-standin.js answering with the app's own samples (see browser.js).
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { WAIT, startBrowser, newPage, stock, state, update, accessibilityProblems } = require('./browser');

// Test runs write their pictures under the ignored tests/artifacts; scripts/screenshots.sh
// points SCREENSHOT_DIR at docs/screenshots to refresh the README's.
const SHOTS = process.env.SCREENSHOT_DIR || path.join(__dirname, '..', 'artifacts');

let env;
test.before(async () => { env = await startBrowser(); });
test.after(async () => { await env?.close(); });

async function openPage(setup, context) {
  const page = await newPage(env.browser, env.base, setup, context);
  await page.waitForFunction(() => window.__standin && window.__standin.polling, null, WAIT);
  return page;
}

const byId = (id) => `[data-testid="${id}"]`;

function loggedInSetup() {
  const s = window.__standin;
  s.handlers.current_session = () => JSON.parse(JSON.stringify(s.samples.session));
}

test("before the page's script handles the form, it cannot be sent (the password would end up in the address)", async () => {
  // A busy till can show the form before main.js and its modules have loaded.
  const page = await newPage(env.browser, env.base, null, { javaScriptEnabled: false });
  try {
    await page.waitForSelector(`${byId('login-email')}:visible`, WAIT);
    assert.equal(await page.isDisabled(byId('login-submit')), true, 'Sign in waits for the script');
    await page.fill(byId('login-email'), 'ann@pharmacy.test');
    await page.fill(byId('login-password'), 'secret');
    await page.press(byId('login-password'), 'Enter');
    assert.doesNotMatch(page.url(), /secret|password/, 'Enter in the form did not send it');
  } finally {
    await page.close();
  }
  const page2 = await openPage();
  await page2.waitForSelector(`${byId('login-submit')}:enabled`, WAIT);
  await page2.close();
});

test('login errors are shown clearly, with a busy indicator while waiting', async () => {
  const page = await openPage();
  await page.waitForSelector(`${byId('login-email')}:visible`, WAIT);
  assert.equal(await page.textContent(byId('connection-state')), 'socket offline');
  await page.screenshot({ path: path.join(SHOTS, 'login.png') });

  const cases = [
    [{ kind: 'wrong_credentials', message: 'wrong email or password' }, 'Wrong email or password.'],
    [{ kind: 'unreachable', message: 'the server could not be reached: connection refused' }, /could not be reached/],
    [{ kind: 'server_error', message: 'the server answered 500' }, 'the server answered 500'],
  ];
  for (const [error, expected] of cases) {
    await page.evaluate((error) => {
      window.__standin.handlers.login = () => new Promise((_, reject) => { window.__rejectLogin = () => reject(error); });
    }, error);
    await page.fill(byId('login-email'), 'ann@pharmacy.test');
    await page.fill(byId('login-password'), 'secret');
    await page.click(byId('login-submit'));
    assert.equal(await page.isDisabled(byId('login-submit')), true, 'busy while logging in');
    await page.evaluate(() => window.__rejectLogin());
    await page.waitForSelector(`${byId('login-error')}:visible`, WAIT);
    const text = await page.textContent(byId('login-error'));
    if (expected instanceof RegExp) assert.match(text, expected); else assert.equal(text, expected);
    assert.equal(await page.isDisabled(byId('login-submit')), false);
  }
  // Empty fields never reach the backend.
  await page.fill(byId('login-email'), '');
  const calls = await page.evaluate(() => window.__standin.calls.length);
  await page.click(byId('login-submit'));
  assert.equal(await page.textContent(byId('login-error')), 'Enter your email address.');
  assert.equal(await page.evaluate(() => window.__standin.calls.length), calls);
  const login = await page.evaluate(() => window.__standin.calls.filter((c) => c.cmd === 'login').at(-1).args);
  assert.deepEqual(login, { email: 'ann@pharmacy.test', password: 'secret', remember: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('without a credential store, "remember me" is off and says why', async () => {
  const page = await openPage(() => {
    const s = window.__standin;
    const session = s.handlers.current_session();
    s.handlers.current_session = () => ({ ...session, remember: { available: false, reason: "this computer's credential store is not available (no Secret Service)" } });
    s.handlers.login = () => s.samples.session;
  });
  await page.waitForSelector(`${byId('login-remember-note')}:visible`, WAIT);
  assert.equal(await page.isDisabled('#login-remember'), true);
  assert.equal(await page.isChecked('#login-remember'), false);
  assert.match(await page.textContent(byId('login-remember-note')), /^Remember me is off: .*credential store is not available/);
  await page.fill(byId('login-email'), 'ann@pharmacy.test');
  await page.fill(byId('login-password'), 'secret');
  await page.click(byId('login-submit'));
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  const login = await page.evaluate(() => window.__standin.calls.filter((c) => c.cmd === 'login').at(-1).args);
  assert.equal(login.remember, false, 'never asks to remember where it cannot');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a slow start does not pull the caret away from someone already typing', async () => {
  const page = await openPage(() => {
    const s = window.__standin;
    const session = s.handlers.current_session();
    // The app answers late (it waits for the credential store).
    s.handlers.current_session = () => new Promise((resolve) => { window.__answerSession = () => resolve(session); });
  });
  await page.click(byId('login-password'));
  await page.keyboard.type('demo');
  await page.evaluate(() => window.__answerSession());
  // Barrier: the login view has been shown (it names the server) — where the caret used to jump.
  await page.waitForFunction(() => document.getElementById('login-server').textContent.startsWith('Server:'), null, WAIT);
  await page.keyboard.type('1234');
  assert.equal(await page.inputValue(byId('login-password')), 'demo1234');
  assert.equal(await page.inputValue(byId('login-email')), '');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a successful login shows the dashboard; state words and colours follow the feed', async () => {
  const page = await openPage();
  await page.evaluate(() => { window.__standin.handlers.login = () => window.__standin.samples.session; });
  await page.fill(byId('login-email'), 'demo@mediboy.local');
  await page.fill(byId('login-password'), 'demo1234');
  await page.click(byId('login-submit'));
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  const colours = {};
  for (const words of ['socket connecting', 'socket connected', 'socket offline']) {
    await page.evaluate((u) => window.__standin.push(u), state(words, words === 'socket offline' ? 'server closed the connection' : null));
    assert.equal(await page.textContent(byId('connection-state')), words);
    colours[words] = await page.$eval(byId('connection-state'), (el) => getComputedStyle(el).color);
  }
  assert.equal(new Set(Object.values(colours)).size, 3, `three distinct colours: ${JSON.stringify(colours)}`);
  assert.match(await page.textContent('#state-detail'), /server closed the connection/);
  assert.match(await page.getAttribute(byId('connection-state'), 'title'), /server closed the connection/);
  await page.click(byId('logout'));
  await page.waitForSelector(`${byId('login-email')}:visible`, WAIT);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('banner and table follow add_stock, sale_mode and gaps', async () => {
  const page = await openPage(loggedInSetup);
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  await page.evaluate((rows) => rows.forEach((r) => window.__standin.push(r)), [stock(5486, 10, 120), stock(12, 3, 50)]);
  await page.waitForSelector('tr[data-product-id="12"]', WAIT);
  assert.equal(await page.textContent(byId('banner-product')), 'Product 12 (#12)');
  assert.equal(await page.textContent(byId('banner-stock')), '3');
  assert.equal(await page.textContent(byId('banner-discount-price')), '50.00');
  assert.equal(await page.textContent(byId('banner-peak-hour-price')), '60.00');
  assert.equal(await page.textContent(byId('banner-offer-price')), '45.00');
  assert.match(await page.textContent(byId('banner-sync-at')), /s ago$/);
  // Sorted by product id.
  assert.deepEqual(await page.$$eval(`${byId('stock-table')} tr[data-product-id]`, (trs) => trs.map((t) => t.dataset.productId)), ['12', '5486']);

  // A change is highlighted with its direction; out of stock stands out.
  await page.evaluate((r) => window.__standin.push(r), stock(5486, 0, 130));
  await page.waitForFunction(() => document.querySelector('tr[data-product-id="5486"]').classList.contains('out-of-stock'), null, WAIT);
  const classes = await page.$eval('tr[data-product-id="5486"]', (tr) => [...tr.children].map((td) => td.className));
  assert.match(classes[2], /\bdown\b/);
  assert.match(classes[3], /\bup\b/);
  // ... briefly: the highlight is taken off again (it does not stay on the element).
  await page.waitForFunction(() => !document.querySelector('tr[data-product-id="5486"] td.up, tr[data-product-id="5486"] td.down, tr.new'), null, WAIT);

  await page.evaluate((u) => window.__standin.push(u), update('sale_mode', { data: { mode: 'peak_hour' } }));
  assert.equal(await page.textContent(byId('sale-mode')), 'Sale mode: peak hour');
  await page.evaluate((u) => window.__standin.push(u), update('gap', { since: new Date().toISOString() }));
  assert.match(await page.textContent('#gap-notice'), /^Data may be incomplete since/);
  await page.evaluate((u) => window.__standin.push(u), update('gap_closed'));
  assert.equal(await page.isHidden('#gap-notice'), true);

  // Filter and sort.
  await page.fill(byId('stock-filter'), '548');
  assert.equal(await page.isHidden('tr[data-product-id="12"]'), true);
  await page.fill(byId('stock-filter'), '');
  await page.click('th[data-sort="in_stock"]');
  assert.deepEqual(await page.$$eval('tr[data-product-id]', (trs) => trs.map((t) => t.dataset.productId)), ['5486', '12']);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the banner shows the last update even when several arrive in one frame', async () => {
  const page = await openPage(loggedInSetup);
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  // Product 1 first, then 2, then 1 again, all before the next frame.
  await page.evaluate((rows) => rows.forEach((r) => window.__standin.push(r)), [stock(1, 10), stock(2, 20), stock(1, 11)]);
  await page.waitForSelector('tr[data-product-id="2"]', WAIT);
  assert.equal(await page.textContent(byId('banner-product')), 'Product 1 (#1)');
  assert.equal(await page.textContent(byId('banner-stock')), '11');
  // A batch (the app sends arrays) is taken in order too.
  await page.evaluate((batch) => window.__standin.push(batch), [stock(3, 30), stock(2, 21)]);
  await page.waitForFunction(() => document.querySelector('[data-testid="banner-stock"]').textContent === '21', null, WAIT);
  assert.equal(await page.textContent(byId('banner-product')), 'Product 2 (#2)');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a batch is drawn as soon as the page takes it, in one pass over the DOM', async () => {
  const page = await openPage(loggedInSetup);
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  await page.evaluate((row) => window.__standin.push([row]), stock(7, 70));
  await page.waitForFunction(() => document.querySelector('[data-testid="banner-stock"]').textContent === '70', null, WAIT);
  // A batch of several updates to one product: in the DOM when push resolves (the page has
  // taken the batch and asked for the next: same task, no frame waited for), and the
  // banner was written once, with the last value (the app sends at most one batch per
  // frame; the page draws each batch once).
  const seen = await page.evaluate(async (rows) => {
    const banner = document.querySelector('[data-testid="banner-stock"]');
    let writes = 0;
    const watcher = new MutationObserver((records) => { writes += records.length; });
    watcher.observe(banner, { childList: true, characterData: true, subtree: true });
    await window.__standin.push(rows);
    watcher.takeRecords().forEach(() => writes++);
    watcher.disconnect();
    return [banner.textContent, document.querySelector('tr[data-product-id="7"] td:nth-child(3)').textContent, writes];
  }, [stock(7, 71), stock(7, 72), stock(7, 73)]);
  assert.deepEqual(seen, ['73', '73', 1]);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a page told its updates were dropped reloads the whole view; a superseded page stops asking', async () => {
  const page = await openPage(loggedInSetup);
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  await page.evaluate((row) => window.__standin.push(row), stock(1, 10));
  await page.waitForSelector('tr[data-product-id="1"]', WAIT);
  // The app's queue overflowed: what the page has may be stale; the view has product 2 too.
  await page.evaluate((rows) => {
    const view = window.__standin.handlers.dashboard();
    window.__standin.handlers.dashboard = () => ({ ...view, products: rows, latest: rows[1] });
    return window.__standin.resync();
  }, [stock(1, 11), stock(2, 20)]);
  await page.waitForSelector('tr[data-product-id="2"]', WAIT);
  assert.equal(await page.textContent('tr[data-product-id="1"] td:nth-child(3)'), '11');
  assert.equal(await page.textContent(byId('banner-stock')), '20');
  // A newer page subscribed (e.g. a reload): this one's next call is refused and it stops.
  const before = await page.evaluate(() => window.__standin.calls.length);
  const polls = await page.evaluate(async () => {
    let polls = 0;
    const pull = window.__standin.handlers.next_updates;
    window.__standin.handlers.next_updates = (args) => { polls++; return pull(args); };
    window.__standin.handlers.subscribe();
    // Wakes the waiting call; push resolves when the page asks again, and that call is refused.
    await window.__standin.push([]);
    // Barrier: a task after the refusal has been handled. A page that retried at once would
    // have called again before it; one that retries later logs a warning first (checked below).
    await new Promise((r) => setTimeout(r, 0));
    return polls;
  });
  assert.equal(polls, 1, 'one refused call, then no more');
  assert.deepEqual(page.warnings, [], 'a refusal is expected, not a failure to retry');
  assert.equal(await page.evaluate(() => window.__standin.calls.length), before, 'and no other calls (no reload loop)');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('5,000 updates in a burst do not stall the page', async () => {
  const page = await openPage(loggedInSetup);
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  // A stock import: 5,000 updates to 2,500 products, as batches of 500 (a burst the app
  // coalesces per frame). Each batch is drawn in one pass.
  const rows = [];
  for (let i = 0; i < 5000; i++) rows.push(stock(1000 + (i % 2500), i % 7, i, { name: null }));
  await page.evaluate(async (rows) => {
    for (let i = 0; i < rows.length; i += 500) await window.__standin.push(rows.slice(i, i + 500));
  }, rows);
  await page.waitForFunction(() => document.getElementById('row-count').textContent === '2500 products', null, WAIT);
  // Only about a screenful of rows is in the DOM, whatever the number of products ...
  const inDom = await page.$$eval('tr[data-product-id]', (trs) => trs.length);
  assert.ok(inDom > 10 && inDom < 100, `${inDom} rows in the DOM for 2,500 products`);
  // ... and scrolling to the end shows the last products, with the last value of each.
  await page.$eval('#table-wrap', (el) => { el.scrollTop = el.scrollHeight; });
  await page.waitForSelector('tr[data-product-id="3499"]', WAIT);
  assert.equal(await page.textContent('tr[data-product-id="3499"] td:nth-child(4)'), (4999).toLocaleString(undefined, { minimumFractionDigits: 2 }));
  assert.equal(await page.textContent('tr[data-product-id="3499"] td:nth-child(3)'), String(4999 % 7));
  await page.waitForFunction(() => {
    const wrap = document.getElementById('table-wrap').getBoundingClientRect();
    const r = document.querySelector('tr[data-product-id="3499"]').getBoundingClientRect();
    return r.top >= wrap.top && r.bottom <= wrap.bottom + r.height / 2; // (borders overlap by a pixel or two)
  }, null, WAIT); // the last product is on screen in the scrolled view
  // The page still answers (a stalled main thread would time this out).
  const answered = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(true))));
  assert.equal(answered, true);
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-burst.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('diagnostics show the state and copy without secrets', async () => {
  const page = await openPage(() => {
    // A session the page holds secrets of: none may reach the copied text.
    window.__standin.handlers.current_session = () => ({ logged_in: true, token: 'SECRET-TOKEN-123', user: { id: '1', name: 'Demo' },
      settings: { api_base_url: 'http://127.0.0.1:3001', socket_url: 'http://127.0.0.1:3001' } });
  });
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.base });
  await page.waitForSelector(`${byId('logout')}:visible`, WAIT);
  await page.click('#toggle-diagnostics');
  await page.waitForSelector(`${byId('diagnostics')}:visible`, WAIT);
  await page.waitForFunction(() => document.querySelector('#diag-list').textContent.includes('Reconnect attempts'), null, WAIT);
  const text = await page.textContent(byId('diagnostics'));
  assert.match(text, /Socket/);
  assert.doesNotMatch(text, /token|password/i);
  // Copy for real and read what the app put on the clipboard.
  await page.click('#copy-diagnostics');
  await page.waitForFunction(() => document.querySelector('#copy-result').textContent === 'Copied.', null, WAIT);
  const copied = JSON.parse(await page.evaluate(() => navigator.clipboard.readText()));
  assert.equal(copied.state.state, 'socket connected');
  assert.equal(copied.user.name, 'Demo Operator');
  assert.equal(copied.till_id, '5f0c0ffee5f0c0ffee5f0c0ffee5f0c0', 'the Copy text names the till');
  assert.doesNotMatch(JSON.stringify(copied), /SECRET-TOKEN-123|token|password/i);
  await page.evaluate((rows) => rows.forEach((r) => window.__standin.push(r)), [stock(5486, 10, 120), stock(5490, 0, 80), stock(5501, 25, 45.5)]);
  await page.evaluate((u) => window.__standin.push(u), state('socket connected'));
  await page.evaluate((u) => window.__standin.push(u), update('sale_mode', { data: { mode: 'discount' } }));
  await page.waitForSelector('tr[data-product-id="5501"]', WAIT);
  await page.screenshot({ path: path.join(SHOTS, 'dashboard.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('accessibility: no serious or critical axe-core violation on the login, dashboard and settings screens', async () => {
  const page = await openPage();
  await page.waitForSelector(`${byId('login-email')}:visible`, WAIT);
  const problems = { login: await accessibilityProblems(page) };
  await page.evaluate(() => { window.__standin.handlers.login = () => window.__standin.samples.session; });
  await page.fill(byId('login-email'), 'demo@mediboy.local');
  await page.fill(byId('login-password'), 'demo1234');
  await page.click(byId('login-submit'));
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  await page.evaluate((rows) => rows.forEach((r) => window.__standin.push(r)), [stock(5486, 10, 120), stock(12, 0, 50)]);
  await page.waitForSelector('tr[data-product-id="12"]', WAIT);
  problems.dashboard = await accessibilityProblems(page);
  await page.click('#open-settings');
  await page.waitForSelector(`${byId('settings-api')}:visible`, WAIT);
  problems.settings = await accessibilityProblems(page);
  assert.deepEqual(problems, { login: [], dashboard: [], settings: [] });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('accessibility: a change of connection state is announced; sorting works from the keyboard', async () => {
  const page = await openPage(loggedInSetup);
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  assert.equal(await page.getAttribute('#state-announcer', 'role'), 'status');
  await page.evaluate((u) => window.__standin.push(u), state('socket connected'));
  await page.waitForFunction(() => document.getElementById('state-announcer').textContent === 'Connection: socket connected', null, WAIT);
  await page.evaluate((u) => window.__standin.push(u), state('socket offline', 'server closed the connection'));
  await page.waitForFunction(() => document.getElementById('state-announcer').textContent === 'Connection: socket offline, server closed the connection', null, WAIT);
  // The latest prices are not a live region: 20 updates a second would drown the reader.
  assert.equal(await page.$eval('#latest', (el) => el.getAttribute('aria-live')), null);

  await page.evaluate((rows) => rows.forEach((r) => window.__standin.push(r)), [stock(1, 30), stock(2, 10)]);
  await page.waitForSelector('tr[data-product-id="2"]', WAIT);
  await page.focus('#stock-filter');
  // Tab from the filter into the table's header: the first sort button, then the next ones.
  for (const expected of ['product_id', 'name', 'in_stock']) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement.closest('th')?.dataset.sort ?? null);
    if (focused === 'name' && expected === 'name') continue;
    if (focused !== expected) {
      // The Name column is hidden when no product has a name: it takes no focus.
      assert.equal(expected, 'name', `focus on ${focused}`);
    }
    if (focused === 'in_stock') break;
  }
  assert.equal(await page.evaluate(() => document.activeElement.closest('th')?.dataset.sort), 'in_stock');
  await page.keyboard.press('Enter');
  assert.deepEqual(await page.$$eval('tr[data-product-id]', (trs) => trs.map((t) => t.dataset.productId)), ['2', '1']);
  assert.equal(await page.getAttribute('th[data-sort="in_stock"]', 'aria-sort'), 'ascending');
  await page.keyboard.press('Space');
  assert.deepEqual(await page.$$eval('tr[data-product-id]', (trs) => trs.map((t) => t.dataset.productId)), ['1', '2']);
  assert.deepEqual(page.errors, []);
  await page.close();
});

for (const [zone, hour] of [['Asia/Dhaka', '16:00:00'], ['America/New_York', '05:00:00']]) {
  test(`times are the operator's local time (${zone}), relative with the exact time on hover`, async () => {
    const page = await openPage(loggedInSetup, { timezoneId: zone, locale: 'en-GB' });
    await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
    const recent = new Date(Date.now() - 12_000).toISOString();
    await page.evaluate((rows) => rows.forEach((r) => window.__standin.push(r)),
      [stock(1, 5, 10, { sync_at: '2026-01-15T10:00:00.000Z' }), stock(2, 5, 10, { sync_at: recent })]);
    await page.waitForSelector('tr[data-product-id="2"]', WAIT);
    const cell = (id) => page.$eval(`tr[data-product-id="${id}"] td:nth-child(7)`, (td) => [td.textContent, td.title]);
    const [oldText, oldTitle] = await cell(1);
    assert.ok(oldTitle.includes(hour) && oldText.includes(hour), `${zone}: ${oldText} / ${oldTitle}`);
    assert.ok(!oldText.includes('T10:00'), 'never the raw UTC string');
    const [newText, newTitle] = await cell(2);
    assert.match(newText, /^1\d s ago$/);
    assert.ok(newTitle.includes(new Date(recent).toLocaleTimeString('en-GB', { timeZone: zone })), `${newTitle}`);
    // The banner (the latest product) likewise.
    assert.match(await page.textContent(byId('banner-sync-at')), /^1\d s ago$/);
    assert.equal(await page.getAttribute(byId('banner-sync-at'), 'title'), newTitle);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}

test('the Name column is shown only when some product has a name', async () => {
  const page = await openPage(loggedInSetup);
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  const nameShown = () => page.isVisible('th[data-sort="name"]');
  await page.evaluate((r) => window.__standin.push(r), stock(1, 5, 10, { name: null }));
  await page.waitForSelector('tr[data-product-id="1"]', WAIT);
  assert.equal(await nameShown(), false, "the back office's add_stock has no name");
  await page.evaluate((r) => window.__standin.push(r), stock(2, 5, 10, { name: 'Napa 500' }));
  await page.waitForSelector('tr[data-product-id="2"]', WAIT);
  assert.equal(await nameShown(), true);
  await page.evaluate((r) => window.__standin.push(r), stock(2, 6, 10, { name: null }));
  await page.waitForFunction(() => document.getElementById('stock-table').classList.contains('no-names'), null, WAIT);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a product is starred to be watched, through the app, and the star says so', async () => {
  const page = await openPage(loggedInSetup);
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  await page.evaluate((rows) => rows.forEach((r) => window.__standin.push(r)), [stock(5486, 10), stock(12, 3)]);
  await page.waitForSelector('tr[data-product-id="12"]', WAIT);
  // The session says which products are watched already.
  assert.equal(await page.getAttribute('tr[data-product-id="5486"] button.watch', 'aria-pressed'), 'true');
  const star = 'tr[data-product-id="12"] button.watch';
  assert.equal(await page.getAttribute(star, 'aria-pressed'), 'false');
  assert.equal(await page.getAttribute(star, 'aria-label'), 'Watch product 12');
  await page.click(star);
  await page.waitForFunction((s) => document.querySelector(s).getAttribute('aria-pressed') === 'true', star, WAIT);
  assert.equal(await page.textContent(star), '★');
  const call = await page.evaluate(() => window.__standin.calls.filter((c) => c.cmd === 'set_watched').at(-1).args);
  assert.deepEqual(call, { productId: 12, watched: true });
  // Still starred after an update redraws the row.
  await page.evaluate((r) => window.__standin.push(r), stock(12, 0));
  await page.waitForFunction(() => document.querySelector('tr[data-product-id="12"]').classList.contains('out-of-stock'), null, WAIT);
  assert.equal(await page.getAttribute(star, 'aria-pressed'), 'true');
  await page.click(star);
  await page.waitForFunction((s) => document.querySelector(s).getAttribute('aria-pressed') === 'false', star, WAIT);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('values restored from disk are marked "last known at HH:MM — not live" until the catch-up completes', async () => {
  const page = await openPage(() => {
    const s = window.__standin;
    s.handlers.current_session = () => JSON.parse(JSON.stringify(s.samples.session));
    const view = s.handlers.dashboard();
    s.handlers.dashboard = () => ({ ...view, last_known: '2026-01-15T10:00:00.000Z',
      products: [{ ...s.samples.batch.updates.find((u) => u.type === 'stock'), product_id: 77 }] });
  }, { timezoneId: 'Asia/Dhaka', locale: 'en-GB' });
  await page.waitForSelector(`${byId('last-known')}:visible`, WAIT);
  assert.equal(await page.textContent(byId('last-known')), 'Last known at 16:00 — not live');
  assert.equal(await page.$eval(byId('stock-table'), (t) => t.classList.contains('stale')), true);
  await page.waitForSelector('tr[data-product-id="77"]', WAIT);
  // A gap notice is not the end of it; the catch-up closing the gap is.
  await page.evaluate((u) => window.__standin.push(u), update('gap', { since: new Date().toISOString() }));
  assert.equal(await page.isVisible(byId('last-known')), true);
  await page.evaluate((u) => window.__standin.push(u), update('gap_closed'));
  await page.waitForSelector(byId('last-known'), { ...WAIT, state: 'hidden' });
  assert.equal(await page.$eval(byId('stock-table'), (t) => t.classList.contains('stale')), false);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('an update shows its download, then "Update 0.1.1 ready" with Install and restart / Later; a refusal only in Diagnostics', async () => {
  const page = await openPage(loggedInSetup);
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  await page.waitForSelector(`${byId('stock-table')}:visible`, WAIT);
  const offer = byId('update-offer');
  assert.equal(await page.isVisible(offer), false, 'nothing while updates are off');
  const views = await page.evaluate(() => window.__standin.samples.update_views);
  assert.ok(
    await page.evaluate(() => window.__standin.samples.batch.updates.some((u) => u.type === 'update')),
    'the app sends "update" updates (page-samples.json)',
  );
  const push = (view) => page.evaluate((u) => window.__standin.push(u), { type: 'update', ...view });
  const actions = () => page.evaluate(() => window.__standin.calls.filter((c) => c.cmd === 'update_action').map((c) => c.args.action));

  await push(views.checking);
  assert.equal(await page.isVisible(offer), false, 'a check is not the operator\'s business');
  await push(views.downloading);
  await page.waitForSelector(`${offer}:visible`, WAIT);
  assert.equal(await page.textContent(byId('update-text')), 'Downloading update 0.1.1… 50 %');
  assert.equal(await page.evaluate(() => document.getElementById('update-progress').value), 500);
  assert.equal(await page.isVisible(byId('update-install')), false);
  await push(views.downloading_unknown_size);
  assert.equal(await page.textContent(byId('update-text')), 'Downloading update 0.1.1… 2.5 MB');
  assert.equal(await page.isVisible(byId('update-progress')), false);

  await push(views.ready);
  assert.equal(await page.textContent(byId('update-text')), 'Update 0.1.1 ready');
  assert.equal(await page.getAttribute(offer, 'title'), 'Faster start', 'the release notes on hover');
  await page.click(byId('update-later'));
  await page.click(byId('update-install'));
  await page.waitForFunction(() => window.__standin.calls.filter((c) => c.cmd === 'update_action').length === 2, null, WAIT);
  assert.deepEqual(await actions(), ['later', 'install']);
  const all = await page.evaluate(() => window.__standin.samples.update_actions);
  for (const action of await actions()) assert.ok(all.includes(action), `the app takes "${action}"`);
  await push(views.installing);
  assert.equal(await page.textContent(byId('update-text')), 'Installing update 0.1.1…');
  assert.equal(await page.isVisible(byId('update-install')), false);
  await push(views.deferred);
  assert.equal(await page.isVisible(offer), false, 'put off: out of the way until the next start');

  // A bundle whose signature does not match: no dialog, no offer; Diagnostics says so.
  await push(views.refused);
  assert.equal(await page.isVisible(offer), false);
  await page.click('#toggle-diagnostics');
  await page.waitForFunction(() => document.querySelector('#diag-list').textContent.includes('Last update problem'), null, WAIT);
  const text = await page.textContent('#diag-list');
  assert.match(text, /0\.1\.0: up to date, checked/);
  assert.match(text, /signature does not match this app's release key/);
  await page.click(byId('check-updates'));
  await page.waitForFunction(() => window.__standin.calls.some((c) => c.cmd === 'update_action' && c.args.action === 'check_now'), null, WAIT);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(page.errors, []);
  await page.close();
});
