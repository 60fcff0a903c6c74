// The app as installed from the .deb (scripts/deb-test.sh): it starts under Xvfb and
// shows its login screen, driven through WebDriver like the window test.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { start, stop, children, freePort, until, byTestId: T, WebDriver } = require('./harness.js');

const APP = process.env.STOCK_DASHBOARD_BIN;

test.after(() => { for (const c of children) stop(c); });

test('the installed app starts and shows its login screen', { timeout: 120_000 }, async () => {
  assert.ok(APP && fs.existsSync(APP), `STOCK_DASHBOARD_BIN must name the installed app (got ${APP})`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'stock-dashboard-installed-'));
  const driverPort = await freePort();
  const driver = start('tauri-driver', ['--port', String(driverPort), '--native-port', String(await freePort())],
    { HOME: home, XDG_DATA_HOME: path.join(home, 'data'), XDG_CONFIG_HOME: path.join(home, 'config'), RUST_LOG: 'info' });
  const wd = new WebDriver(`http://127.0.0.1:${driverPort}`);
  try {
    await until('tauri-driver', async () => (await fetch(`${wd.url}/status`)).ok);
    await wd.open(APP);
    await until('the login form', () => wd.displayed(T('login-email')));
    // The embedded default: a local demo bridge.
    await until('the server line', async () => (await wd.text('#login-server')) === 'Server: http://127.0.0.1:3001');
  } catch (e) {
    throw new Error(`${e.message}\n--- tauri-driver/app output ---\n${driver.output.slice(-4000)}`, { cause: e });
  } finally {
    await wd.close();
    stop(driver);
  }
});
