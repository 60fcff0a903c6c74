// Holds N idle Socket.IO clients (raw WebSocket, Engine.IO v4) on a server for a while:
// the load for a heap profile of idle connections (see README, "Memory per idle
// connection"). Usage: node idle-clients.js URL N SECONDS
const WebSocket = require('ws');
const [url, n, seconds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
let connected = 0;
const sockets = [];
function open(i) {
  if (i >= n) return;
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
  ws.on('message', (m) => {
    const t = m.toString();
    if (t.startsWith('0')) ws.send('40');
    else if (t === '2') ws.send('3');
    else if (t.startsWith('40') && ++connected === n) console.log(`${n} connected`);
  });
  ws.on('error', () => {});
  sockets.push(ws);
  setImmediate(() => open(i + 1));
}
open(0);
setTimeout(() => { console.log(`${connected} were connected; closing`); sockets.forEach((s) => s.terminate()); process.exit(0); }, seconds * 1000);
