// Signed automatic updates, end to end (scripts/update-test.sh builds 0.1.0 and 0.1.1 as
// .debs signed with a throwaway key, installs 0.1.0, then runs this): the installed app
// finds 0.1.1 in a latest.json served from loopback.
//  1. A tampered 0.1.1 (one byte changed, the real signature) is refused: Diagnostics says
//     so, nothing is offered, no dialog, and dpkg still has 0.1.0.
//  2. The real 0.1.1: the banner offers it, "Install and restart" installs it (dpkg -i via
//     sudo), dpkg reports 0.1.1, and the app comes back by itself signed in and connected:
//     the bridge's fleet view shows this till online as 0.1.1.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { start, stop, children, freePort, until, byTestId: T, WebDriver } = require('./harness.js');

const DIR = process.env.UPDATE_TEST_DIR;
const BRIDGE = process.env.STOCK_BRIDGE_BIN;
const APP = '/usr/bin/stock-dashboard';
const SUPPORT = 'demo-support-key-change-me';
const TILL = 'Update test till';
const ARTIFACTS = path.join(__dirname, '..', 'artifacts');

test.after(() => { for (const c of children) stop(c); });

const installed = () => execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'stock-dashboard']).toString();

/** Serves `latest.json` and the bundle it names; `bundle` is what is served as the .deb. */
async function serveRelease(version, bundle, signature) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const latest = {
    version,
    notes: `Stock Dashboard ${version}`,
    pub_date: new Date().toISOString(),
    platforms: { 'linux-x86_64-deb': { url: `${base}/stock-dashboard_${version}_amd64.deb`, signature } },
  };
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url);
    if (req.url === '/latest.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(latest));
    } else if (req.url === `/stock-dashboard_${version}_amd64.deb`) {
      res.writeHead(200, { 'content-type': 'application/vnd.debian.binary-package', 'content-length': bundle.length });
      res.end(bundle);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `${base}/latest.json`, requests, close: () => new Promise((r) => server.close(r)) };
}

function release(version) {
  const dir = path.join(DIR, version);
  const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb'));
  return { bundle: fs.readFileSync(path.join(dir, deb)), signature: fs.readFileSync(path.join(dir, `${deb}.sig`), 'utf8') };
}

async function startBridge() {
  const port = await freePort();
  const bridge = start(BRIDGE, ['demo', '--listen', `127.0.0.1:${port}`, '--interval-ms', '500'], { RUST_LOG: 'warn' });
  await until('the bridge', () => bridge.output.includes('listening on'));
  return { bridge, url: `http://127.0.0.1:${port}` };
}

async function fleetTill(bridgeUrl) {
  const r = await fetch(`${bridgeUrl}/fleet?q=${encodeURIComponent(TILL)}`, { headers: { authorization: `Bearer ${SUPPORT}`, accept: 'application/json' } });
  const body = await r.json();
  return body.tills && body.tills.find((t) => t.identity && t.identity.name === TILL);
}

/** The installed app under tauri-driver, in `home`, asking `updateUrl` for releases. */
async function openApp(home, bridgeUrl, updateUrl) {
  const driverPort = await freePort();
  const env = { HOME: home, XDG_DATA_HOME: path.join(home, 'data'), XDG_CONFIG_HOME: path.join(home, 'config'),
    MEDIBOY_API_BASE_URL: bridgeUrl, VITE_SOCKET_URL: bridgeUrl, STOCK_DASHBOARD_TILL_NAME: TILL,
    STOCK_DASHBOARD_UPDATE_URL: updateUrl, RUST_LOG: 'info' };
  const driver = start('tauri-driver', ['--port', String(driverPort), '--native-port', String(await freePort())], env);
  const wd = new WebDriver(`http://127.0.0.1:${driverPort}`);
  await until('tauri-driver', async () => (await fetch(`${wd.url}/status`)).ok);
  await wd.open(APP);
  return { wd, driver };
}

async function withApp(home, bridgeUrl, updateUrl, body) {
  const { wd, driver } = await openApp(home, bridgeUrl, updateUrl);
  try {
    await body(wd, driver);
  } catch (e) {
    // What the window showed, for whoever reads the failure.
    const page = await wd.exec('return document.body.innerText').catch((err) => `(no page text: ${err.message})`);
    await wd.screenshot().then((png) => {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      fs.writeFileSync(path.join(ARTIFACTS, 'update-failure.png'), png);
    }).catch(() => {});
    throw new Error(`${e.message}\n--- the window's text ---\n${page}\n--- tauri-driver/app output ---\n${driver.output.slice(-5000)}`, { cause: e });
  } finally {
    await wd.close();
    stop(driver);
  }
}

test('a tampered update is refused; the signed one installs through "Install and restart" and the app comes back signed in as 0.1.1', { timeout: 480_000 }, async () => {
  assert.ok(DIR && fs.existsSync(DIR), 'UPDATE_TEST_DIR must hold the signed builds (scripts/update-test.sh)');
  assert.equal(installed(), '0.1.0');
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'stock-dashboard-update-'));
  const { bridge, url: bridgeUrl } = await startBridge();
  const real = release('0.1.1');
  try {
    // 1. Tampered: one byte changed in the middle, the real signature.
    const tampered = Buffer.from(real.bundle);
    tampered[tampered.length >> 1] ^= 0xff;
    const bad = await serveRelease('0.1.1', tampered, real.signature);
    try {
      await withApp(home, bridgeUrl, bad.url, async (wd) => {
        await until('the login form, handled by the page', async () => (await wd.displayed(T('login-email'))) && wd.enabled(T('login-submit')));
        await wd.type(T('login-email'), 'demo@mediboy.local');
        await wd.type(T('login-password'), 'demo1234');
        await wd.click(T('login-submit')); // "remember me" is on: the restarted app signs in by itself
        await until('socket connected', async () => (await wd.text(T('connection-state'))) === 'socket connected');
        await wd.click('#toggle-diagnostics');
        await until('the refusal in Diagnostics', async () => /signature does not match/.test(await wd.text('#diag-list')), 60_000);
        assert.ok(bad.requests.some((u) => u.endsWith('.deb')), 'the bundle was downloaded');
        assert.equal(await wd.displayed(T('update-offer')), false, 'nothing is offered');
        assert.equal(await wd.text(T('connection-state')), 'socket connected', 'the operator was not interrupted');
      });
    } finally {
      await bad.close();
    }
    assert.equal(installed(), '0.1.0', 'nothing was installed');

    // 2. The real one: offered, installed on request, and the app comes back as 0.1.1.
    const good = await serveRelease('0.1.1', real.bundle, real.signature);
    try {
      await withApp(home, bridgeUrl, good.url, async (wd, driver) => {
        await until('the remembered session', async () => (await wd.text(T('connection-state'))) === 'socket connected');
        await until('the offer', async () => (await wd.text(T('update-text'))) === 'Update 0.1.1 ready', 120_000);
        assert.equal(installed(), '0.1.0', 'nothing installs before the operator asks');
        const before = await fleetTill(bridgeUrl);
        assert.equal(before.identity.version, '0.1.0');
        await wd.click(T('update-install'));
        await until('dpkg to have 0.1.1', () => installed() === '0.1.1', 120_000);
        const back = await until('the app back online as 0.1.1 in the fleet', async () => {
          const t = await fleetTill(bridgeUrl);
          return t && t.status === 'online' && t.identity.version === '0.1.1' ? t : null;
        }, 120_000);
        assert.equal(back.key, before.key, 'the same till (its id is kept)');
        assert.match(driver.output, /update 0\.1\.1 installed: restarting/);
      });
    } finally {
      await good.close();
    }
  } finally {
    stop(bridge);
    try { execFileSync('pkill', ['-f', `^${APP}( |$)`]); } catch { /* none left */ }
  }
});
