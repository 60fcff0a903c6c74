// The real desktop app window under Xvfb, driven through WebDriver (tauri-driver in
// front of WebKitWebDriver), against a real `stock-bridge demo`: log in, send an
// add_stock with `stock-bridge send`, see it; stop the bridge, see `socket offline`;
// start it again, see `socket connected`. Saves a screenshot as a test artifact.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const APP = process.env.STOCK_DASHBOARD_BIN;
const BRIDGE = process.env.STOCK_BRIDGE_BIN;
const WAIT_MS = 30_000;
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

const children = [];
function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.output = '';
  child.stdout.on('data', (d) => { child.output += d; });
  child.stderr.on('data', (d) => { child.output += d; });
  children.push(child);
  return child;
}

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

async function until(what, fn) {
  const deadline = Date.now() + WAIT_MS;
  let last;
  while (Date.now() < deadline) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

async function startBridge(port) {
  const bridge = start(BRIDGE, ['demo', '--listen', `127.0.0.1:${port}`, '--interval-ms', '0'], { RUST_LOG: 'warn' });
  await until('the bridge', () => bridge.output.includes('listening on'));
  return bridge;
}

function stopped(child) {
  return new Promise((r) => { if (child.exitCode !== null || child.signalCode) r(); else child.once('exit', r); });
}

class WebDriver {
  constructor(url) { this.url = url; }
  async cmd(method, route, body) {
    const res = await fetch(`${this.url}${route}`, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${route}: ${JSON.stringify(json.value)}`);
    return json.value;
  }
  async open(app, env) {
    const caps = { capabilities: { alwaysMatch: { 'tauri:options': { application: app, env } } } };
    const value = await this.cmd('POST', '/session', caps);
    this.session = `/session/${value.sessionId}`;
  }
  async find(testid) {
    const v = await this.cmd('POST', `${this.session}/element`, { using: 'css selector', value: `[data-testid="${testid}"]` });
    return v[ELEMENT];
  }
  async text(testid) { return this.cmd('GET', `${this.session}/element/${await this.find(testid)}/text`); }
  async displayed(testid) { return this.cmd('GET', `${this.session}/element/${await this.find(testid)}/displayed`); }
  async type(testid, text) { await this.cmd('POST', `${this.session}/element/${await this.find(testid)}/value`, { text }); }
  async click(testid) { await this.cmd('POST', `${this.session}/element/${await this.find(testid)}/click`, {}); }
  async screenshot(file) {
    const png = await this.cmd('GET', `${this.session}/screenshot`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.from(png, 'base64'));
  }
  async close() { if (this.session) await this.cmd('DELETE', this.session).catch(() => {}); }
}

test.after(() => { for (const c of children) c.kill('SIGKILL'); });

test('the real window logs in, shows a sent add_stock, and follows the bridge going away and back', { timeout: 240_000 }, async () => {
  assert.ok(APP && fs.existsSync(APP), `STOCK_DASHBOARD_BIN must name the built app (got ${APP})`);
  assert.ok(BRIDGE && fs.existsSync(BRIDGE), `STOCK_BRIDGE_BIN must name the built bridge (got ${BRIDGE})`);
  const bridgePort = await freePort();
  let bridge = await startBridge(bridgePort);
  const bridgeUrl = `http://127.0.0.1:${bridgePort}`;

  const driverPort = await freePort();
  const nativePort = await freePort();
  // A fresh home: no remembered session or settings from an earlier run.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'stock-dashboard-window-'));
  const appEnv = { HOME: home, XDG_DATA_HOME: path.join(home, 'data'), XDG_CONFIG_HOME: path.join(home, 'config'),
    MEDIBOY_API_BASE_URL: bridgeUrl, VITE_SOCKET_URL: bridgeUrl, RUST_LOG: 'info' };
  const driver = start('tauri-driver', ['--port', String(driverPort), '--native-port', String(nativePort)], appEnv);
  const wd = new WebDriver(`http://127.0.0.1:${driverPort}`);
  await until('tauri-driver', async () => (await fetch(`${wd.url}/status`)).ok);
  try {
    await wd.open(APP, appEnv);
    await until('the login form', () => wd.displayed('login-email'));
    await wd.type('login-email', 'demo@mediboy.local');
    await wd.type('login-password', 'demo1234');
    await wd.click('login-submit');
    await until('the dashboard', () => wd.displayed('stock-table'));
    await until('socket connected', async () => (await wd.text('connection-state')) === 'socket connected');

    await new Promise((resolve, reject) => execFile(BRIDGE, ['send', '--url', `${bridgeUrl}/broadcast`, '--api-key', 'demo-broadcast-key-change-me',
      '--product-id', '5486', '--in-stock', '17', '--discount-price', '120', '--peak-hour-price', '140', '--mediboy-offer-price', '90.5'],
    (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))));
    await until('the banner', async () => (await wd.text('banner-stock')) === '17');
    assert.match(await wd.text('banner-product'), /5486/);
    assert.equal(await wd.text('banner-offer-price'), '90.50');
    const row = await wd.cmd('POST', `${wd.session}/element`, { using: 'css selector', value: 'tr[data-product-id="5486"]' });
    assert.ok(row[ELEMENT], 'the table has a row for the product');
    await wd.screenshot(path.join(ROOT, 'tests', 'artifacts', 'window-dashboard.png'));
    await wd.screenshot(path.join(ROOT, 'docs', 'screenshots', 'window-dashboard.png'));

    bridge.kill('SIGKILL');
    await stopped(bridge);
    await until('socket offline', async () => (await wd.text('connection-state')) === 'socket offline');
    await wd.screenshot(path.join(ROOT, 'tests', 'artifacts', 'window-offline.png'));

    bridge = await startBridge(bridgePort);
    await until('socket connected again', async () => (await wd.text('connection-state')) === 'socket connected');
  } catch (e) {
    await wd.screenshot(path.join(ROOT, 'tests', 'artifacts', 'window-failure.png')).catch(() => {});
    e.message += `\n--- tauri-driver/app output ---\n${driver.output.slice(-4000)}`;
    throw e;
  } finally {
    await wd.close();
    driver.kill('SIGTERM');
  }
});
