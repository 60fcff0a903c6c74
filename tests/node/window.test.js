// The real desktop app window under Xvfb, driven through WebDriver (tauri-driver in
// front of WebKitWebDriver), against a real `stock-bridge demo`: log in, send an
// add_stock with `stock-bridge send`, see it; stop the bridge, see `socket offline`;
// start it again, see `socket connected`. Saves a screenshot as a test artifact.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const APP = process.env.STOCK_DASHBOARD_BIN;
const BRIDGE = process.env.STOCK_BRIDGE_BIN;
const { start, stop, children, freePort, until, byTestId: T, WebDriver } = require('./harness.js');

async function startBridge(port, extra = []) {
  const bridge = start(BRIDGE, ['demo', '--listen', `127.0.0.1:${port}`, '--interval-ms', '0', ...extra], { RUST_LOG: 'warn' });
  await until('the bridge', () => bridge.output.includes('listening on'));
  return bridge;
}

function stopped(child) {
  return new Promise((r) => { if (child.exitCode !== null || child.signalCode) r(); else child.once('exit', r); });
}

function save(png, file) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, png);
}

test.after(() => { for (const c of children) stop(c); });

/** A fresh home (no remembered session or settings), tauri-driver, and a WebDriver session on the app. */
async function openApp(bridgeUrl) {
  const driverPort = await freePort();
  const nativePort = await freePort();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'stock-dashboard-window-'));
  const appEnv = { HOME: home, XDG_DATA_HOME: path.join(home, 'data'), XDG_CONFIG_HOME: path.join(home, 'config'),
    MEDIBOY_API_BASE_URL: bridgeUrl, VITE_SOCKET_URL: bridgeUrl, RUST_LOG: 'info' };
  const driver = start('tauri-driver', ['--port', String(driverPort), '--native-port', String(nativePort)], appEnv);
  const wd = new WebDriver(`http://127.0.0.1:${driverPort}`);
  await until('tauri-driver', async () => (await fetch(`${wd.url}/status`)).ok);
  await wd.open(APP);
  return { wd, driver };
}

async function logIn(wd) {
  await until('the login form', () => wd.displayed(T('login-email')));
  await wd.type(T('login-email'), 'demo@mediboy.local');
  await wd.type(T('login-password'), 'demo1234');
  await wd.click(T('login-submit'));
  await until('the dashboard', () => wd.displayed(T('stock-table')));
  await until('socket connected', async () => (await wd.text(T('connection-state'))) === 'socket connected');
}

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
    await wd.open(APP);
    await until('the login form', () => wd.displayed(T('login-email')));
    await wd.type(T('login-email'), 'demo@mediboy.local');
    await wd.type(T('login-password'), 'demo1234');
    await wd.click(T('login-submit'));
    await until('the dashboard', () => wd.displayed(T('stock-table')));
    await until('socket connected', async () => (await wd.text(T('connection-state'))) === 'socket connected');

    await new Promise((resolve, reject) => execFile(BRIDGE, ['send', '--url', `${bridgeUrl}/broadcast`, '--api-key', 'demo-broadcast-key-change-me',
      '--product-id', '5486', '--in-stock', '17', '--discount-price', '120', '--peak-hour-price', '140', '--mediboy-offer-price', '90.5'],
    (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))));
    await until('the banner', async () => (await wd.text(T('banner-stock'))) === '17');
    assert.match(await wd.text(T('banner-product')), /5486/);
    assert.equal(await wd.text(T('banner-offer-price')), '90.50');
    assert.ok(await wd.find('tr[data-product-id="5486"]'), 'the table has a row for the product');
    save(await wd.screenshot(), path.join(ROOT, 'tests', 'artifacts', 'window-dashboard.png'));
    if (process.env.SCREENSHOT_DIR) save(await wd.screenshot(), path.join(process.env.SCREENSHOT_DIR, 'window-dashboard.png'));

    stop(bridge);
    await stopped(bridge);
    await until('socket offline', async () => (await wd.text(T('connection-state'))) === 'socket offline');
    save(await wd.screenshot(), path.join(ROOT, 'tests', 'artifacts', 'window-offline.png'));

    bridge = await startBridge(bridgePort);
    await until('socket connected again', async () => (await wd.text(T('connection-state'))) === 'socket connected');
  } catch (e) {
    await wd.screenshot().then((png) => save(png, path.join(ROOT, 'tests', 'artifacts', 'window-failure.png'))).catch(() => {});
    e.message += `\n--- tauri-driver/app output ---\n${driver.output.slice(-4000)}`;
    throw e;
  } finally {
    await wd.close();
    stop(driver);
  }
});

test('when the bridge refuses the session as expired, the window asks to sign in again and says why', { timeout: 240_000 }, async () => {
  const TTL_SECS = 3;
  const bridgePort = await freePort();
  let bridge = await startBridge(bridgePort, ['--token-ttl-secs', String(TTL_SECS)]);
  const { wd, driver } = await openApp(`http://127.0.0.1:${bridgePort}`);
  try {
    const loggedInAt = Date.now();
    await logIn(wd);
    // The token is checked at the handshake: reconnecting after it expired is refused as
    // token_expired. Take the bridge away, and bring it back once the token's exp has passed.
    stop(bridge);
    await stopped(bridge);
    await until('socket offline', async () => (await wd.text(T('connection-state'))) === 'socket offline');
    await until('the token to expire', () => Date.now() > loggedInAt + (TTL_SECS + 1) * 1000, (TTL_SECS + 5) * 1000);
    bridge = await startBridge(bridgePort, ['--token-ttl-secs', String(TTL_SECS)]);
    await until('the login screen', () => wd.displayed(T('login-email')));
    assert.equal(await wd.text(T('login-error')), 'Your session has expired — please sign in again');
    assert.equal(await wd.text(T('connection-state')), 'socket offline');
    save(await wd.screenshot(), path.join(ROOT, 'tests', 'artifacts', 'window-expired.png'));
  } catch (e) {
    await wd.screenshot().then((png) => save(png, path.join(ROOT, 'tests', 'artifacts', 'window-failure-expired.png'))).catch(() => {});
    e.message += `\n--- tauri-driver/app output ---\n${driver.output.slice(-4000)}`;
    throw e;
  } finally {
    await wd.close();
    stop(driver);
  }
});
