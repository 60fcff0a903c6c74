// The fleet page (/fleet, served by the bridge) in headless Chromium, against the real
// bridge with tills connected by the official socket.io client (each says who it is in
// its handshake): the support key asked once per tab, the table and counts, a till that
// arrives shown live, search, the detail with its timeline, a till named like markup
// shown as text, the keyboard, and axe-core.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { io } = require('socket.io-client');
const { until } = require('./harness');
const { WAIT, launchChromium, accessibilityProblems } = require('./browser');

const KEY = 'fleet-page-api-key-0123456789';
const SUPPORT = 'fleet-page-support-key-0123456789';
const XSS = '<img src=x onerror=alert(1)>';
const target = process.env.CARGO_TARGET_DIR || path.join(__dirname, '..', '..', 'target');
const BRIDGE = process.env.STOCK_BRIDGE_BIN || path.join(target, 'debug', 'stock-bridge');
const SHOTS = path.join(__dirname, '..', 'artifacts');

let bridge;
let browser;
const tills = [];

function startBridge() {
  const { spawn } = require('node:child_process');
  const child = spawn(BRIDGE, ['serve', '--listen', '127.0.0.1:0'], {
    env: { ...process.env, STOCK_BRIDGE_API_KEY: KEY, STOCK_BRIDGE_SUPPORT_KEY: SUPPORT, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('the bridge did not start')), 10_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve({ url: m[1], child }); }
    });
    child.on('exit', (code) => reject(new Error(`the bridge exited with ${code}`)));
  });
}

/** A till: socket.io-client with `auth.till`; resolves once connected. */
function till(id, name, version = '0.1.0') {
  const socket = io(bridge.url, {
    transports: ['websocket'],
    reconnection: false,
    auth: { till: { till_id: id, name, app: 'desktop', version, os: 'windows' } },
  });
  tills.push(socket);
  return new Promise((resolve, reject) => {
    socket.on('connect', () => resolve(socket));
    socket.on('connect_error', reject);
  });
}

async function fleetJson(query = '') {
  const r = await fetch(`${bridge.url}/fleet${query}`, { headers: { authorization: `Bearer ${SUPPORT}`, accept: 'application/json' } });
  return r.json();
}

test.before(async () => {
  bridge = await startBridge();
  browser = await launchChromium();
  await till('till-1', 'Dhanmondi, counter 1');
  await till('till-2', 'Dhanmondi, counter 2');
  await till('till-old', 'Uttara, counter 1', '0.0.9');
  await till('till-xss', XSS);
  const gone = await till('till-gone', 'Banani, counter 3');
  gone.close();
  await until('five tills known, one offline', async () => (await fleetJson()).counts.offline + (await fleetJson()).counts.connecting === 1, WAIT.timeout);
});

test.after(async () => {
  for (const t of tills) t.close();
  if (browser) await browser.close();
  if (bridge) bridge.child.kill('SIGTERM');
});

/** Waits until the page has read the fleet; when it does not, says what the page shows
 * (its live line, the key form, the errors it saw) instead of only "timeout". */
async function loaded(page) {
  try {
    await page.waitForSelector('body[data-loaded=true]', WAIT);
  } catch (e) {
    const shown = await page.evaluate(() => ({
      live: document.getElementById('live').textContent,
      streaming: document.body.dataset.live,
      askingForKey: !document.getElementById('key-view').hidden,
      keyError: document.getElementById('key-error').textContent,
    })).catch((why) => `unreadable: ${why.message}`);
    const errors = page.errors.map((err) => err.message);
    throw new Error(`${e.message}\nthe page shows ${JSON.stringify(shown)}; its errors: ${JSON.stringify(errors)}`);
  }
}

async function openFleet() {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.errors = [];
  page.dialogs = [];
  page.on('pageerror', (e) => page.errors.push(e));
  page.on('dialog', async (d) => { page.dialogs.push(d.message()); await d.dismiss(); });
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(new Error(m.text())); });
  await page.goto(`${bridge.url}/fleet`);
  return page;
}

test('the key is asked once per tab, then the fleet is listed with its counts, needs attention first', async () => {
  const page = await openFleet();
  await page.waitForSelector('#key:visible', WAIT);
  await page.fill('#key', 'a wrong key');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.getElementById('key-error').textContent.includes('not accepted'), null, WAIT);
  await page.fill('#key', SUPPORT);
  await page.click('button[type=submit]');
  await loaded(page);
  assert.equal(await page.textContent('#count-total'), '5');
  assert.equal(await page.textContent('#count-online'), '4');
  assert.equal(await page.textContent('#count-old'), '1');
  const first = await page.$eval('#rows tr', (tr) => tr.dataset.key);
  assert.equal(first, 'till-gone', 'the till that is not online comes first');
  // The key stays in this tab (a reload does not ask again), never in a URL or a cookie.
  await page.reload();
  await loaded(page);
  assert.equal(await page.isVisible('#key'), false);
  assert.deepEqual(await page.context().cookies(), []);
  assert.ok(!page.url().includes(SUPPORT));
  // The wrong key's refusals are the only errors the browser saw.
  assert.deepEqual(page.errors.filter((e) => !/status of 401/.test(e.message)), []);
  await page.close();
});

async function signedIn() {
  const page = await openFleet();
  await page.waitForSelector('#key:visible', WAIT);
  await page.fill('#key', SUPPORT);
  await page.press('#key', 'Enter');
  await page.waitForSelector('body[data-live=true]', WAIT);
  await loaded(page);
  return page;
}

test('a till named like markup is shown as text, everywhere', async () => {
  const page = await signedIn();
  const name = await page.$eval('tr[data-key="till-xss"] .till', (b) => b.firstChild.textContent);
  assert.equal(name, XSS);
  assert.equal(await page.$$eval('#rows img', (imgs) => imgs.length), 0, 'no element made from a name');
  await page.click('tr[data-key="till-xss"] .till');
  await page.waitForSelector('#detail[open]', WAIT);
  assert.equal(await page.textContent('#detail-title'), XSS);
  assert.equal(await page.$$eval('#detail img', (imgs) => imgs.length), 0);
  assert.deepEqual(page.dialogs, [], 'no script ran');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a till that arrives is shown live; one that leaves turns offline; search narrows the table', async () => {
  const page = await signedIn();
  const started = Date.now();
  const newcomer = await till('till-new', 'Mirpur, counter 7');
  await page.waitForSelector('tr[data-key="till-new"]', WAIT);
  const shownAfter = Date.now() - started;
  console.log(`a new till was on the page ${shownAfter} ms after it connected`);
  newcomer.close();
  await page.waitForSelector('tr[data-key="till-new"] .pill.connecting, tr[data-key="till-new"] .pill.offline', WAIT);
  await page.fill('#search', 'dhanmondi');
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 2, null, WAIT);
  assert.match(await page.textContent('#matching'), /^2 of 6 tills/);
  await page.fill('#search', '');
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 6, null, WAIT);
  await page.click('[data-filter="version:old"]');
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1, null, WAIT);
  assert.equal(await page.$eval('#rows tr', (tr) => tr.dataset.key), 'till-old');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the detail shows the timeline; the keyboard reaches everything; axe-core finds nothing serious', async () => {
  const page = await signedIn();
  const problems = { table: await accessibilityProblems(page) };
  // From the search field, Tab moves on to the tills: the first one opens with Enter.
  await page.focus('#search');
  for (let i = 0; i < 12; i += 1) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(() => document.activeElement.classList.contains('till'))) break;
  }
  assert.equal(await page.evaluate(() => document.activeElement.classList.contains('till')), true, 'a till is reachable by Tab');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#detail[open]', WAIT);
  const timeline = await page.$$eval('#timeline li', (lis) => lis.map((li) => li.textContent));
  assert.ok(timeline.length >= 1 && /online|offline/.test(timeline.join(' ')), timeline.join('\n'));
  assert.match(await page.textContent('#detail-list'), /Bridge node/);
  problems.detail = await accessibilityProblems(page);
  await page.screenshot({ path: path.join(SHOTS, 'fleet-detail.png') });
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('detail').open, null, WAIT);
  await page.screenshot({ path: path.join(SHOTS, 'fleet.png') });
  assert.deepEqual(problems, { table: [], detail: [] });
  assert.deepEqual(page.errors, []);
  await page.close();
});
