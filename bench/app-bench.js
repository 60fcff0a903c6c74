// The desktop app's speed and weight, measured (never asserted):
//  - cold start: process start → the page's first call (the app logs "page ready after N ms");
//  - latency: POST /broadcast sent → the new value drawn in the banner (in-page
//    MutationObserver + requestAnimationFrame), p50/p99 at 20 updates/s;
//  - memory: PSS of the app and its WebKit processes, after login and after an
//    hour-equivalent of updates (72,000 = 20/s × 3,600 s), against an empty Tauri 2 window.
// Run through bench/app-run.sh (release builds, under Xvfb).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const APP = process.env.STOCK_DASHBOARD_BIN;
const EMPTY = process.env.EMPTY_WINDOW_BIN;
const BRIDGE = process.env.STOCK_BRIDGE_BIN;
const KEY = 'demo-broadcast-key-change-me';
const { start, stop, freePort, until, WebDriver } = require('../tests/node/harness.js');
const UPDATES = Number(process.env.UPDATES || 400);
const HOUR = Number(process.env.HOUR_UPDATES || 72000);
const HOUR_RATE = Number(process.env.HOUR_RATE || 200);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

function freshHome() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'app-bench-'));
  return { HOME: home, XDG_DATA_HOME: path.join(home, 'd'), XDG_CONFIG_HOME: path.join(home, 'c'), XDG_CACHE_HOME: path.join(home, 'k') };
}
function descendants(pid) {
  const parents = new Map();
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!parents.has(ppid)) parents.set(ppid, []);
      parents.get(ppid).push(Number(p));
    } catch { /* gone */ }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(parents.get(out[i]) || []));
  return out;
}
function pssKiB(pid) {
  let total = 0;
  for (const p of descendants(pid)) {
    try {
      const m = fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m);
      if (m) total += Number(m[1]);
    } catch { /* gone */ }
  }
  return total;
}
// PSS per process name (the app, WebKitWebProcess, WebKitNetworkProcess…), in KiB.
function pssByProcess(pid) {
  const out = {};
  for (const p of descendants(pid)) {
    try {
      const name = fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      const m = fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m);
      if (m) out[name] = (out[name] || 0) + Number(m[1]);
    } catch { /* gone */ }
  }
  return out;
}
const breakdown = (pid) => Object.entries(pssByProcess(pid)).map(([n, k]) => `${n} ${mib(k)}`).join(', ');
function pidOf(exe) {
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try { if (fs.readlinkSync(`/proc/${p}/exe`) === exe) return Number(p); } catch { /* not ours */ }
  }
  return null;
}
const mib = (kib) => (kib / 1024).toFixed(1);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.round((sorted.length - 1) * p))];

async function settledPss(pid) {
  // WebKit keeps starting helpers for a moment: read until two readings 1 s apart agree within 1 %.
  let last = 0;
  for (let i = 0; i < 20; i++) {
    await sleep(1000);
    const v = pssKiB(pid);
    if (last && Math.abs(v - last) / last < 0.01) return v;
    last = v;
  }
  return last;
}

async function coldStarts(runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const app = start(APP, [], { ...freshHome(), RUST_LOG: 'info', MEDIBOY_API_BASE_URL: 'http://127.0.0.1:9', VITE_SOCKET_URL: 'http://127.0.0.1:9' });
    const ms = await until('page ready', () => { const m = app.output.match(/page ready after (\d+) ms/); return m && Number(m[1]); });
    times.push(ms);
    stop(app);
    await sleep(300);
  }
  return times.sort((a, b) => a - b);
}

async function emptyWindowPss(env = {}) {
  const win = start(EMPTY, [], { ...freshHome(), ...env });
  await until('empty window helpers', () => descendants(win.pid).length > 1);
  const pss = await settledPss(win.pid);
  console.error(`empty window ${JSON.stringify(env)}: ${breakdown(win.pid)} MiB`);
  stop(win);
  return pss;
}

async function post(url, i) {
  const body = JSON.stringify({ event: 'add_stock', data: { product_id: 5000 + (i % 500), in_stock: 100000 + i, discount_price: 10 + (i % 90),
    peak_hour_price: 12, mediboy_offer_price: 9, sync_at: new Date().toISOString() } });
  for (;;) {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body });
    if (r.status === 429) { await sleep(200); continue; }
    if (!r.ok) throw new Error(`POST answered ${r.status}`);
    return;
  }
}

async function main() {
  for (const [name, v] of [['STOCK_DASHBOARD_BIN', APP], ['EMPTY_WINDOW_BIN', EMPTY], ['STOCK_BRIDGE_BIN', BRIDGE]]) {
    if (!v || !fs.existsSync(v)) throw new Error(`${name} must name a built binary (got ${v})`);
  }
  const starts = await coldStarts(5);
  const emptyPss = await emptyWindowPss();
  // The dashboard renders without accelerated compositing (src-tauri/src/webview.rs); an
  // empty window rendering the same way is the stricter baseline.
  const emptySoftPss = await emptyWindowPss({ WEBKIT_DISABLE_COMPOSITING_MODE: '1' });

  const port = await freePort();
  const bridge = start(BRIDGE, ['demo', '--listen', `127.0.0.1:${port}`, '--interval-ms', '0'], { RUST_LOG: 'warn' });
  await until('bridge', () => bridge.output.includes('listening on'));
  const base = `http://127.0.0.1:${port}`;
  const driverPort = await freePort();
  const env = { ...freshHome(), MEDIBOY_API_BASE_URL: base, VITE_SOCKET_URL: base };
  const driver = start('tauri-driver', ['--port', String(driverPort), '--native-port', String(await freePort())], env);
  const wd = new WebDriver(`http://127.0.0.1:${driverPort}`);
  await until('tauri-driver', async () => (await fetch(`${wd.url}/status`)).ok);
  await wd.open(APP);
  try {
    await until('login form', () => wd.find('[data-testid="login-email"]'));
    await wd.type('[data-testid="login-email"]', 'demo@mediboy.local');
    await wd.type('[data-testid="login-password"]', 'demo1234');
    await wd.click('[data-testid="login-submit"]');
    await until('connected', async () => (await wd.text('[data-testid="connection-state"]')) === 'socket connected');
    const appPid = pidOf(fs.realpathSync(APP));
    const pssLogin = await settledPss(appPid);
    console.error(`after login: ${breakdown(appPid)} MiB`);

    await wd.exec(`
      window.__drawn = [];
      const el = document.querySelector('[data-testid="banner-stock"]');
      window.__drawnObserver = new MutationObserver(() => {
        const v = Number(el.textContent);
        requestAnimationFrame(() => window.__drawn.push([v, performance.timeOrigin + performance.now()]));
      });
      window.__drawnObserver.observe(el, { childList: true, characterData: true, subtree: true });`);
    const sent = new Map();
    const t0 = now();
    for (let i = 0; i < UPDATES; i++) {
      const due = t0 + i * 50; // 20 per second
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      sent.set(100000 + i, now());
      post(`${base}/broadcast`, i).catch((e) => console.error(e.message));
    }
    await until('last update drawn', async () => (await wd.text('[data-testid="banner-stock"]')) === String(100000 + UPDATES - 1));
    const drawn = await wd.exec('return window.__drawn;');
    // The measurement's own observer and records must not weigh on the memory figures.
    await wd.exec('window.__drawnObserver.disconnect(); window.__drawn = null;');
    const lat = drawn.filter(([v]) => sent.has(v)).map(([v, t]) => t - sent.get(v)).sort((a, b) => a - b);

    // An hour-equivalent of updates (72,000), sent ten times faster than the 20/s of the
    // latency phase (open loop, on schedule), so it takes six minutes instead of an hour.
    // (The web process grew about as much per update at 20/s as at 200/s: HOUR_RATE=20
    // runs the real hour.)
    const hourStart = now();
    for (let i = UPDATES; i < UPDATES + HOUR; i++) {
      if ((i - UPDATES) % 12000 === 0) console.error(`after ${i - UPDATES} of the hour: ${breakdown(appPid)} MiB`);
      const wait = hourStart + ((i - UPDATES) * 1000) / HOUR_RATE - now();
      if (wait > 0) await sleep(wait);
      post(`${base}/broadcast`, i).catch((e) => console.error(e.message));
    }
    // Posts may land in any order: one last, alone, marks the end.
    await sleep(1000);
    await post(`${base}/broadcast`, UPDATES + HOUR);
    await until('hour drawn', async () => (await wd.text('[data-testid="banner-stock"]')) === String(100000 + UPDATES + HOUR), 120_000);
    const pssHour = await settledPss(appPid);
    console.error(`after the hour: ${breakdown(appPid)} MiB`);

    console.log(`machine: ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; release builds under Xvfb`);
    console.log('');
    console.log('| figure | measured | target |');
    console.log('|---|---|---|');
    console.log(`| cold start to usable page (median of 5; min–max) | ${pct(starts, 0.5)} ms (${starts[0]}–${starts.at(-1)}) | < 1000 ms |`);
    console.log(`| POST → drawn in the banner at 20/s, p50 / p99 / max (${lat.length} of ${UPDATES} seen) | ${pct(lat, 0.5).toFixed(1)} / ${pct(lat, 0.99).toFixed(1)} / ${lat.at(-1).toFixed(1)} ms | p99 ≤ 50 ms |`);
    const vs = (v) => `${((v / emptyPss - 1) * 100).toFixed(1)} % vs empty; ${((v / emptySoftPss - 1) * 100).toFixed(1)} % vs empty without compositing`;
    console.log(`| PSS, empty Tauri 2 window (defaults) | ${mib(emptyPss)} MiB | baseline |`);
    console.log(`| PSS, empty Tauri 2 window without accelerated compositing | ${mib(emptySoftPss)} MiB | stricter baseline |`);
    console.log(`| PSS, dashboard after login | ${mib(pssLogin)} MiB (${vs(pssLogin)}) | |`);
    console.log(`| PSS, dashboard after ${HOUR} updates (${(HOUR / 20 / 60).toFixed(0)} min at 20/s, sent at ${HOUR_RATE}/s) | ${mib(pssHour)} MiB (${vs(pssHour)}) | ≤ 15 % above empty |`);
  } finally {
    await wd.close();
    stop(driver);
    stop(bridge);
  }
}

main().then(() => process.exit(0), (e) => { console.error(`app-bench: ${e.message}`); process.exit(1); });
