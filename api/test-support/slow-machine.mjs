// A machine command for the stream gateway's bounds (api/stream.test.ts, bench/stream-flood.ts), run
// by fly-local like any image: /health answers ok so the workflow runs it; on /ws it says hello and
// then reads nothing (its socket paused): the "machine slow to read" of the security review's flood.
// `POST /firehose` makes it send its newest stream 60 KB frames as fast as the gateway takes them
// (toward a slow browser).
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

let newest;
const pad = JSON.stringify({ type: 'pad', pad: 'x'.repeat(60_000) });

function firehose(ws) {
  ws._socket.resume(); // reading again, so the gateway cutting it off is noticed
  const pump = () => {
    // A few frames a turn: a socket the gateway cut off is only noticed between turns.
    for (let i = 0; i < 32 && ws.readyState === ws.OPEN && ws.bufferedAmount < 1 << 20; i++) ws.send(pad);
    if (ws.readyState === ws.OPEN) setTimeout(pump, 1);
  };
  pump();
}

const server = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  if (req.method === 'POST' && req.url === '/firehose') {
    if (newest) firehose(newest);
    return res.end(JSON.stringify({ firehose: !!newest }));
  }
  res.end(JSON.stringify({ ok: true }));
});
const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (ws) => {
  newest = ws;
  ws.on('error', () => undefined);
  ws.send(JSON.stringify({ type: 'hello', traders: 0 }));
  ws._socket.pause(); // read nothing more: the kernel buffers fill, then the gateway's
});
server.listen(Number(process.env.PORT), '127.0.0.1');
