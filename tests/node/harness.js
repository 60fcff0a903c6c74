// Shared by the window test and the app benchmark: child processes that are killed on
// exit, free ports, bounded waits, and a minimal W3C WebDriver client (for tauri-driver).
'use strict';
const { spawn } = require('node:child_process');
const net = require('node:net');

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const children = [];

/**
 * Ends a child and everything it started (tauri-driver starts WebKitWebDriver, which
 * starts the app; a survivor would keep the output pipes, and so this process, alive).
 */
function stop(child, signal = 'SIGKILL') {
  try { process.kill(-child.pid, signal); } catch { /* already gone */ }
}
process.on('exit', () => children.forEach((c) => stop(c)));

/** Starts a program in its own process group, collecting its output in `child.output`. */
function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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

/** Polls `fn` until it returns something truthy, for at most `ms`. */
async function until(what, fn, ms = 30_000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

const byTestId = (id) => `[data-testid="${id}"]`;

class WebDriver {
  constructor(url) { this.url = url; }
  async cmd(method, route, body) {
    // Bounded: a WebDriver call that does not answer fails the test instead of hanging it.
    const res = await fetch(`${this.url}${route}`, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body),
      signal: AbortSignal.timeout(30_000) });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${route}: ${JSON.stringify(json.value)}`);
    return json.value;
  }
  async open(app) {
    const value = await this.cmd('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application: app } } } });
    this.session = `/session/${value.sessionId}`;
  }
  async find(css) { return (await this.cmd('POST', `${this.session}/element`, { using: 'css selector', value: css }))[ELEMENT]; }
  async text(css) { return this.cmd('GET', `${this.session}/element/${await this.find(css)}/text`); }
  async displayed(css) { return this.cmd('GET', `${this.session}/element/${await this.find(css)}/displayed`); }
  async enabled(css) { return this.cmd('GET', `${this.session}/element/${await this.find(css)}/enabled`); }
  async type(css, text) { await this.cmd('POST', `${this.session}/element/${await this.find(css)}/value`, { text }); }
  async clear(css) { await this.cmd('POST', `${this.session}/element/${await this.find(css)}/clear`, {}); }
  async retype(css, text) { await this.clear(css); if (text) await this.type(css, text); }
  async click(css) { await this.cmd('POST', `${this.session}/element/${await this.find(css)}/click`, {}); }
  async exec(script, args = []) { return this.cmd('POST', `${this.session}/execute/sync`, { script, args }); }
  async screenshot() { return Buffer.from(await this.cmd('GET', `${this.session}/screenshot`), 'base64'); }
  async close() { if (this.session) await this.cmd('DELETE', this.session).catch(() => {}); }
}

module.exports = { start, stop, children, freePort, until, byTestId, WebDriver };
