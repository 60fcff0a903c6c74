// The fast Node.js peer for bench/: socket.io v4 on uWebSockets.js (`io.attachApp`), what a
// Node team that cares about speed would run. POST /broadcast is served by uWS itself and
// relayed with io.emit; WebSocket transport only. It accepts the body of one event
// ({event, data}) and a batch ({events: [...]}) so it can run the same cases as our bridge.
// No auth and no checks beyond the shape (as the old bridge). `@trufflesuite/uws-js-unofficial`
// because the official package is not on the npm registry; pinned by package-lock.json.
// PORT=0 picks a free port; the port is printed on stdout.
const uWS = require('@trufflesuite/uws-js-unofficial');
const { Server } = require('socket.io');

const app = uWS.App();
const io = new Server({ transports: ['websocket'], serveClient: false });
io.attachApp(app);

function answer(res, status, body) {
  res.cork(() => res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify(body)));
}

app.post('/broadcast', (res) => {
  const chunks = [];
  let aborted = false;
  res.onAborted(() => { aborted = true; });
  res.onData((chunk, isLast) => {
    // uWS reuses the chunk's memory after this callback: copy it.
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast || aborted) return;
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return answer(res, '400 Bad Request', { message: 'Invalid payload' });
    }
    const events = Array.isArray(body && body.events) ? body.events : [body];
    if (!events.every((e) => e && e.event && typeof e.data === 'object')) {
      return answer(res, '400 Bad Request', { message: 'Invalid payload' });
    }
    for (const e of events) io.emit(e.event, e.data);
    answer(res, '200 OK', { message: 'Broadcast queued', queued: events.length });
  });
});

app.listen('127.0.0.1', Number(process.env.PORT ?? 3001), (listenSocket) => {
  if (!listenSocket) {
    console.error('cannot listen');
    process.exit(1);
  }
  console.log(`listening on ${uWS.us_socket_local_port(listenSocket)}`);
});
process.on('SIGTERM', () => process.exit(0));
