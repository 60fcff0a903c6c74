// What the browser suites share: the page (ui/) served over HTTP under the window's CSP,
// headless Chromium (Debian's /usr/bin/chromium through playwright-core), and the page
// samples the app's Rust types wrote (page-samples.json, checked by src-tauri/src/page.rs).
//   /              ui/index.html, the whole page
//   /fixture.html  the same document without its script: for testing one module at a time
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const UI = path.join(__dirname, '..', '..', 'ui');
const SAMPLES = JSON.parse(fs.readFileSync(path.join(__dirname, 'page-samples.json'), 'utf8'));
const STANDIN = fs.readFileSync(path.join(__dirname, 'tauri-standin.js'), 'utf8');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
// The same policy as tauri.conf.json: the page must work under it.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'";
const WAIT = { timeout: 10_000 };

/** Headless Chromium (Debian's), started with the flags this machine needs. */
function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** Starts the server and the browser; `close()` ends both. */
async function startBrowser() {
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    if (pathname === '/fixture.html') {
      const html = fs.readFileSync(path.join(UI, 'index.html'), 'utf8').replace(/<script[^>]*><\/script>/g, '');
      res.writeHead(200, { 'content-type': 'text/html', 'content-security-policy': CSP });
      return res.end(html);
    }
    const file = path.join(UI, path.normalize(pathname === '/' ? 'index.html' : pathname));
    if (!file.startsWith(UI) || !fs.existsSync(file)) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'content-security-policy': CSP });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}/`;
  const browser = await launchChromium();
  return {
    base,
    browser,
    async close() { await browser.close(); server.close(); },
  };
}

/**
 * A new page with the samples and the Tauri stand-in installed, errors and warnings
 * recorded; `context` may set e.g. `timezoneId` and `locale`.
 */
async function newPage(browser, url, setup, context = {}) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 }, ...context });
  page.errors = [];
  page.warnings = [];
  page.on('pageerror', (e) => page.errors.push(e));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(new Error(m.text()));
    if (m.type() === 'warning') page.warnings.push(m.text());
  });
  await page.addInitScript((samples) => { window.__pageSamples = samples; }, SAMPLES);
  await page.addInitScript(STANDIN);
  if (setup) await page.addInitScript(setup);
  await page.goto(url);
  return page;
}

/** A stock update shaped like the app's sample, with `overrides`; refuses fields the app does not send. */
function stock(id, inStock, price = 100, overrides = {}) {
  const sample = SAMPLES.batch.updates.find((u) => u.type === 'stock');
  const fields = { product_id: id, name: `Product ${id}`, in_stock: inStock, discount_price: price,
    peak_hour_price: price * 1.2, mediboy_offer_price: price * 0.9, sync_at: new Date().toISOString(), seq: id,
    received_at: new Date().toISOString(), ...overrides };
  for (const key of Object.keys(fields)) {
    if (!(key in sample)) throw new Error(`the app sends no "${key}" in a stock update (page-samples.json)`);
  }
  return { ...sample, ...fields };
}

/** A state update shaped like the app's sample. */
function state(words, reason = null) {
  const sample = SAMPLES.batch.updates.find((u) => u.type === 'state');
  return { ...sample, state: words, reason, since: new Date().toISOString(), attempt: 0 };
}

/** Runs axe-core on the page as it is; the serious and critical violations, described. */
async function accessibilityProblems(page) {
  // Evaluated through the DevTools protocol, so the page's CSP (no inline scripts) allows it.
  await page.evaluate(fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations);
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

module.exports = { SAMPLES, WAIT, startBrowser, launchChromium, newPage, stock, state, accessibilityProblems };

/** An update of `type` shaped like the app's sample, with `overrides` (only fields the app sends). */
function update(type, overrides = {}) {
  const sample = SAMPLES.batch.updates.find((u) => u.type === type);
  if (!sample) throw new Error(`the app sends no "${type}" update (page-samples.json)`);
  for (const key of Object.keys(overrides)) {
    if (!(key in sample)) throw new Error(`the app sends no "${key}" in a ${type} update (page-samples.json)`);
  }
  return { ...sample, ...overrides };
}

module.exports.update = update;
