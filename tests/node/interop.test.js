// Interop: the official socket.io v4 client (npm, pinned by package-lock.json) against
// our Rust bridge, over WebSocket and over long-polling, plus the HTTP answers it gives.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const { io } = require('socket.io-client');
const { until } = require('./harness');

const KEY = 'interop-key-0123456789';
const JWT_SECRET = 'interop-jwt-secret-0123456789';
const WAIT_MS = 10_000;
const target = process.env.CARGO_TARGET_DIR || path.join(__dirname, '..', '..', 'target');
const BRIDGE = process.env.STOCK_BRIDGE_BIN || path.join(target, 'debug', 'stock-bridge');

function withTimeout(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), WAIT_MS); }),
  ]).finally(() => clearTimeout(timer));
}

async function startBridge(env = {}) {
  const child = spawn(BRIDGE, ['serve', '--listen', '127.0.0.1:0'], {
    env: { ...process.env, STOCK_BRIDGE_API_KEY: KEY, RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await withTimeout(new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on (https?:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`bridge exited with ${code}`)));
  }), 'bridge start');
  return { url, child, stop: () => child.kill('SIGTERM') };
}

function post(url, body, headers = { authorization: `Bearer ${KEY}` }) {
  return fetch(`${url}/broadcast`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
}

/** Resolves once `socket` is connected; rejects on connect_error or after WAIT_MS. */
function connected(socket) {
  return withTimeout(new Promise((resolve, reject) => {
    socket.on('connect', resolve);
    socket.on('connect_error', reject);
  }), 'connect');
}

const DATA = {
  product_id: 5486, in_stock: 10, discount_price: 120.5, peak_hour_price: 140,
  mediboy_offer_price: 90, sync_at: '2024-01-01T00:00:00.000Z', batch: { lot: 'A1' },
};

for (const transport of ['websocket', 'polling']) {
  test(`socket.io-client over ${transport} receives a broadcast unchanged`, async () => {
    const bridge = await startBridge();
    const socket = io(bridge.url, { transports: [transport], reconnection: false });
    try {
      await connected(socket);
      const received = withTimeout(new Promise((resolve) => {
        socket.on('add_stock', (data, meta) => resolve({ data, meta }));
      }), 'add_stock');
      const answer = await post(bridge.url, { event: 'add_stock', data: DATA });
      assert.equal(answer.status, 200);
      assert.equal(answer.body.message, 'Broadcast queued');
      const { data, meta } = await received;
      assert.equal(JSON.stringify(data), JSON.stringify(DATA), 'same fields, same values, same order');
      assert.equal(meta.seq, answer.body.seq);
      assert.equal(socket.io.engine.transport.name, transport);
    } finally {
      socket.close();
      bridge.stop();
    }
  });
}

for (const transport of ['websocket', 'polling']) {
  test(`socket.io-client over ${transport} receives a batch's events as ordinary events, in order`, async () => {
    const bridge = await startBridge();
    const socket = io(bridge.url, { transports: [transport], reconnection: false });
    try {
      await connected(socket);
      const seen = [];
      const all = withTimeout(new Promise((resolve) => {
        socket.on('add_stock', (data, meta) => { seen.push(['add_stock', data.product_id, meta.seq]); if (seen.length === 51) resolve(); });
        socket.on('sale_mode', (data) => { seen.push(['sale_mode', data.mode]); if (seen.length === 51) resolve(); });
      }), 'the batch');
      const events = [];
      for (let i = 1; i <= 50; i++) events.push({ event: 'add_stock', data: { ...DATA, product_id: i } });
      events.splice(25, 0, { event: 'sale_mode', data: { mode: 'peak' } });
      const answer = await post(bridge.url, { events });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual(answer.body, { message: 'Batch queued', queued: 51, deliveries: 51, first_seq: 1, last_seq: 50 });
      await all;
      const want = [];
      for (let i = 1; i <= 50; i++) want.push(['add_stock', i, i]);
      want.splice(25, 0, ['sale_mode', 'peak']);
      assert.deepEqual(seen, want);
    } finally {
      socket.close();
      bridge.stop();
    }
  });
}

test('HTTP answers: 401 without a valid key, 400 with readable errors', async () => {
  const bridge = await startBridge();
  try {
    let r = await post(bridge.url, { event: 'add_stock', data: DATA }, {});
    assert.equal(r.status, 401);
    assert.match(r.body.message, /^Unauthorized/);
    r = await post(bridge.url, { event: 'add_stock', data: DATA }, { 'x-api-key': 'wrong' });
    assert.equal(r.status, 401);
    r = await post(bridge.url, { event: 'connect', data: [] });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, {
      message: 'Invalid payload',
      errors: ['event "connect" is reserved by Socket.IO', 'data must be an object, got an array'],
    });
    r = await post(bridge.url, '{"event":');
    assert.equal(r.status, 400);
    assert.equal(r.body.message, 'Invalid payload');
  } finally {
    bridge.stop();
  }
});

function jwt(claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const sig = crypto.createHmac('sha256', JWT_SECRET).update(head).digest('base64url');
  return `${head}.${sig}`;
}

test('with client auth, a bad token gets connect_error and a good one joins its user room', async () => {
  const bridge = await startBridge({ STOCK_BRIDGE_CLIENT_AUTH: 'jwt', STOCK_BRIDGE_JWT_SECRET: JWT_SECRET });
  const now = Math.floor(Date.now() / 1000);
  const bad = io(bridge.url, { transports: ['websocket'], reconnection: false, auth: { token: 'nope' } });
  const expired = io(bridge.url, { transports: ['websocket'], reconnection: false, auth: { token: jwt({ sub: 42, exp: now - 600 }) } });
  const good = io(bridge.url, { transports: ['websocket'], reconnection: false, auth: { token: jwt({ sub: 42, exp: now + 3600 }) } });
  // Listen before either can happen: the good one may connect before the bad one is refused.
  const refused = withTimeout(new Promise((resolve) => bad.on('connect_error', resolve)), 'connect_error');
  const refusedExpired = withTimeout(new Promise((resolve) => expired.on('connect_error', resolve)), 'connect_error (expired)');
  const joined = withTimeout(new Promise((resolve) => good.on('connect', resolve)), 'connect');
  try {
    // The refusal's code is err.data.code (the JavaScript server's shape); the message keeps its prefix.
    const err = await refused;
    assert.match(err.message, /^unauthorized: /);
    assert.equal(err.data.code, 'unauthorized');
    const errExpired = await refusedExpired;
    assert.equal(errExpired.message, 'unauthorized: the token has expired');
    assert.deepEqual(errExpired.data, { code: 'token_expired', message: 'unauthorized: the token has expired' });
    await joined;
    const got = withTimeout(new Promise((resolve) => good.on('sale_mode', resolve)), 'private sale_mode');
    const r = await post(bridge.url, { event: 'sale_mode', data: { mode: 'peak_hour' }, to: 'user:42' });
    assert.equal(r.status, 200);
    assert.deepEqual(await got, { mode: 'peak_hour' });
  } finally {
    bad.close();
    expired.close();
    good.close();
    bridge.stop();
  }
});

test('a refusal the client should retry reaches the official client as err.data.code auth_unavailable', async () => {
  // The user service is down (nothing listens on port 9): the bridge cannot check tokens now.
  const bridge = await startBridge({ STOCK_BRIDGE_CLIENT_AUTH: 'introspect', STOCK_BRIDGE_INTROSPECT_URL: 'http://127.0.0.1:9/user' });
  const client = io(bridge.url, { transports: ['websocket'], reconnection: false, auth: { token: 'some-token' } });
  try {
    const err = await withTimeout(new Promise((resolve) => client.on('connect_error', resolve)), 'connect_error');
    assert.match(err.message, /^auth unavailable: /);
    assert.equal(err.data.code, 'auth_unavailable');
    assert.equal(err.data.message, err.message);
  } finally {
    client.close();
    bridge.stop();
  }
});

// ---- TLS: the bridge serving HTTPS/WSS itself, with a private CA made here by openssl ----
const https = require('node:https');
const tls = require('node:tls');
const { makePki } = require('./pki.js');

function httpsJson(method, url, ca, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

/** The serial number a new TLS handshake sees. */
function servedSerial(url, ca) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on('error', reject);
  });
}

test('over wss with its ca option the official client connects; a SIGHUP reload keeps 50 clients and serves the new certificate', async () => {
  const pki = makePki();
  pki.issue(1);
  // Files checked only hourly: here only the SIGHUP can bring the new certificate in.
  const bridge = await startBridge({ STOCK_BRIDGE_TLS_CERT: pki.cert, STOCK_BRIDGE_TLS_KEY: pki.key, STOCK_BRIDGE_TLS_RELOAD_CHECK_SECS: '3600' });
  const clients = [];
  try {
    assert.match(bridge.url, /^https:\/\//);
    // Without the CA, the official client is refused by its own TLS check.
    const untrusting = io(bridge.url, { transports: ['websocket'], reconnection: false });
    clients.push(untrusting);
    const refused = await withTimeout(new Promise((resolve) => untrusting.on('connect_error', resolve)), 'connect_error without the CA');
    assert.ok(refused, 'refused');

    for (let i = 0; i < 50; i++) clients.push(io(bridge.url, { transports: ['websocket'], reconnection: false, ca: pki.ca }));
    const trusting = clients.slice(1);
    await withTimeout(Promise.all(trusting.map((c) => new Promise((resolve) => c.on('connect', resolve)))), '50 clients over wss');
    let dropped = 0;
    for (const c of trusting) c.on('disconnect', () => { dropped += 1; });
    assert.equal(await servedSerial(bridge.url, pki.ca), '01');

    const health = JSON.parse((await httpsJson('GET', `${bridge.url}/healthz`, pki.ca)).text);
    assert.equal(health.tls.enabled, true);
    assert.ok(health.tls.days_left >= 29 && health.tls.days_left <= 30, JSON.stringify(health));
    const metrics = (await httpsJson('GET', `${bridge.url}/metrics`, pki.ca)).text;
    assert.match(metrics, /stock_bridge_tls_cert_not_after_seconds\{listener="public"\} \d+/);

    // Renewed on disk: nothing changes until SIGHUP (a barrier: one more handshake after
    // the files are written still sees serial 1); then new handshakes get serial 2 and
    // connected clients stay.
    pki.issue(2);
    assert.equal(await servedSerial(bridge.url, pki.ca), '01');
    bridge.child.kill('SIGHUP');
    await until('the new certificate served after SIGHUP', async () => (await servedSerial(bridge.url, pki.ca)) === '02', WAIT_MS);
    const got = trusting.map((c) => new Promise((resolve) => c.once('add_stock', resolve)));
    const r = await httpsJson('POST', `${bridge.url}/broadcast`, pki.ca, { event: 'add_stock', data: DATA });
    assert.equal(r.status, 200, r.text);
    await withTimeout(Promise.all(got), 'all 50 receive after the reload');
    assert.equal(dropped, 0, 'no client was dropped by the reload');
  } finally {
    for (const c of clients) c.close();
    bridge.stop();
    pki.remove();
  }
});

test('a certificate renewed on disk is served without a signal (the files are watched)', async () => {
  const pki = makePki();
  pki.issue(7);
  const bridge = await startBridge({ STOCK_BRIDGE_TLS_CERT: pki.cert, STOCK_BRIDGE_TLS_KEY: pki.key, STOCK_BRIDGE_TLS_RELOAD_CHECK_SECS: '1' });
  try {
    assert.equal(await servedSerial(bridge.url, pki.ca), '07');
    pki.issue(8);
    await until('the renewed certificate picked up', async () => (await servedSerial(bridge.url, pki.ca)) === '08', WAIT_MS);
  } finally {
    bridge.stop();
    pki.remove();
  }
});

// The Rust client core (rust_socketio) opens on long-polling, upgrades to WebSocket and only
// then sends its Socket.IO CONNECT; socket.io-client CONNECTs first. The bridge once metered
// such a socket against the polling request's connection and cut it as "too slow" after
// every 4 MiB it read (issue 22, F3). Here engine.io-client (socket.io-client's own
// transport, pinned by the lockfile) does it in that order.
test('a client that upgrades before its CONNECT, as the Rust client does, reads 30,000 events and is not cut', async () => {
  const { Socket: EngineSocket } = require('engine.io-client');
  const bridge = await startBridge({ STOCK_BRIDGE_RATE_LIMIT: '100000' });
  const eio = new EngineSocket(bridge.url, { path: '/socket.io/', transports: ['polling', 'websocket'], upgrade: true });
  try {
    await withTimeout(new Promise((resolve, reject) => {
      eio.on('upgrade', resolve);
      eio.on('error', reject);
    }), 'upgrade to WebSocket');
    assert.equal(eio.transport.name, 'websocket', 'upgraded before any Socket.IO packet');
    let connectAnswer = null;
    let received = 0;
    let ended = null;
    eio.on('message', (m) => {
      const text = String(m);
      if (text.startsWith('2["add_stock"')) received += 1;
      else if (text.startsWith('0')) connectAnswer = text;
      else if (text.startsWith('1')) ended = 'DISCONNECT from the bridge';
    });
    eio.on('close', (reason) => { ended = ended || `closed: ${reason}`; });
    eio.send('0'); // Socket.IO CONNECT to "/", over the WebSocket
    await until('the CONNECT answer', () => connectAnswer || ended, WAIT_MS);
    assert.match(connectAnswer || String(ended), /^0\{"sid":/);
    const BATCHES = 30;
    for (let b = 0; b < BATCHES; b += 1) {
      const events = Array.from({ length: 1000 }, (_, i) => ({ event: 'add_stock', data: { ...DATA, product_id: b * 1000 + i } }));
      const r = await post(bridge.url, { events });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    await until(`all ${BATCHES * 1000} events `, () => received === BATCHES * 1000 || ended, 6 * WAIT_MS);
    assert.equal(ended, null, `${received} of ${BATCHES * 1000} read`);
    assert.equal(received, BATCHES * 1000);
  } finally {
    eio.close();
    bridge.stop();
  }
});
