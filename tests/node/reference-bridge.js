// The old Node.js bridge this product replaces, kept as a reference peer for tests and
// benchmarks: express + socket.io v4 on one HTTP server, POST /broadcast {event, data}
// relayed with io.emit. No auth, no other checks (exactly as the original).
// Our only addition: PORT=0 picks a free port, and the port is printed on stdout.
const express = require('express');
const http = require('http');
const { Server } = require('socket.io');

const app = express();
app.use(express.json());
const server = http.createServer(app);
const io = new Server(server, { cors: { origin: '*' }, transports: ['websocket', 'polling'] });

app.post('/broadcast', (req, res) => {
  const { event, data } = req.body || {};
  if (!event || typeof data !== 'object') {
    return res.status(400).json({ message: 'Invalid payload' });
  }
  io.emit(event, data);
  res.json({ message: 'Broadcast queued' });
});

server.listen(Number(process.env.PORT ?? 3001), '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
