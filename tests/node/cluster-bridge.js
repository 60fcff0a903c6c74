// The cluster peer for the fan-out benchmark (issue 26): the old Node.js bridge
// (reference-bridge.js: express + socket.io v4, POST /broadcast relayed with io.emit) on
// socket.io's Redis adapter (@socket.io/redis-adapter with the `redis` client), so that
// several processes share broadcasts as several stock-bridge nodes do. Our additions, as in
// reference-bridge.js: PORT=0 picks a free port, printed on stdout; REDIS_URL names the
// Redis; and POST /broadcast also takes a batch, {"events": [{event, data}, ...]}, each
// relayed with io.emit in order (the old bridge had no batches; the benchmark's batch
// cases need one).
const express = require('express');
const http = require('http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

async function main() {
  const app = express();
  app.use(express.json({ limit: '16mb' }));
  const server = http.createServer(app);
  const io = new Server(server, { cors: { origin: '*' }, transports: ['websocket', 'polling'] });
  const pub = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));

  app.post('/broadcast', (req, res) => {
    const body = req.body || {};
    const events = Array.isArray(body.events) ? body.events : [body];
    for (const { event, data } of events) {
      if (!event || typeof data !== 'object') {
        return res.status(400).json({ message: 'Invalid payload' });
      }
    }
    for (const { event, data } of events) io.emit(event, data);
    res.json({ message: 'Broadcast queued' });
  });

  server.listen(Number(process.env.PORT ?? 3001), '127.0.0.1', () => {
    console.log(`listening on ${server.address().port}`);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
