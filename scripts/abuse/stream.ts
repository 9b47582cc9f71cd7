import WebSocket from 'ws';
import { streamAttempt, type AbuseContext } from './harness';

/*
 * The stream gateway (/v1/machines/me/stream): upgrades it must refuse, and what a browser that
 * floods it, sends too much, or outlives its token gets.
 */

/** Upgrades without a token, with a forged one, and as B (who has no machine). */
export async function streamRefusalCases(ctx: AbuseContext): Promise<void> {
  const { api, a, tokenB, add } = ctx;
  const streamUrl = `${api.wsUrl}/v1/machines/me/stream`;
  add('stream', 'no token', 'WebSocket upgrade without a token', 'HTTP 401', await streamAttempt(streamUrl, {}));
  add(
    'stream',
    'forged token',
    'Sec-WebSocket-Protocol: bearer, <forged token>',
    'HTTP 401',
    await streamAttempt(streamUrl, { protocols: ['bearer', await api.token(a, { secret: 'x'.repeat(40) })] }),
  );
  add(
    'stream',
    'someone else’s machine',
    'B’s token (only A has a machine): the gateway only ever dials the caller’s own',
    'close 4404 you have no running machine',
    await streamAttempt(streamUrl, { protocols: ['bearer', tokenB] }),
  );
}

/** Floods on A’s stream: too many frames, an oversized frame, a stream outliving its token. */
export async function streamFloodCases(ctx: AbuseContext): Promise<void> {
  const { api, a, tokenA, add } = ctx;
  const streamUrl = `${api.wsUrl}/v1/machines/me/stream`;
  // Floods from a browser: a rate, then a frame bigger than the API takes (the stream stays bounded).
  const flood = (frames: string[], token = tokenA) =>
    new Promise<string>((resolve) => {
      const ws = new WebSocket(streamUrl, ['bearer', token]);
      const timer = setTimeout(() => (ws.terminate(), resolve('no close in 15 s')), 15_000);
      ws.on('message', () => {
        for (const f of frames.splice(0)) ws.send(f);
      });
      ws.on('error', () => undefined);
      ws.on('close', (code, reason) => (clearTimeout(timer), resolve(`close ${code} ${reason.toString()}`.trim())));
    });
  add(
    'stream',
    'frame flood',
    '200 frames at once from a browser',
    'close 1008 too many messages',
    await flood(Array.from({ length: 200 }, (_, i) => `{"i":${i}}`)),
  );
  add('stream', 'oversized frame', 'one 5 KB frame from a browser', 'close 1009', await flood(['x'.repeat(5 * 1024)]));
  add(
    'stream',
    'stream outlives its token',
    'a stream opened with a 3-second token',
    'close 4401 token expired',
    await flood([], await api.token(a, { ttlSeconds: 3 })),
  );
}
