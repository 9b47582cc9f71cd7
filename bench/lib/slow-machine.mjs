// A machine that accepts the gateway's WebSocket and then never reads from it (its socket paused):
// the "machine slow to read" of the security review's flood. /health answers ok so the workflow runs it.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const server = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ ok: true }));
});
const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ type: 'hello', traders: 0 }));
  ws._socket.pause(); // read nothing more: the kernel buffers fill, then the sender's do
});
server.listen(Number(process.env.PORT), '127.0.0.1');
