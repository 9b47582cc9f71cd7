import type { Socket } from 'node:net';
import { resolve } from 'node:path';
import { decodeJwt } from 'jose';
import WebSocket from 'ws';
import { machineAddress } from '../fly/machines';
import { TEST_IMAGE } from '../test/machine-stack';
import { sleep, until, untilValue } from '../test/kit/wait';
import { RUNTIME_INTERNAL_PORT } from './stream';
import { tokenBucket } from './stream-limits';
import { createApiStack, type ApiStack } from './test-support/api-stack';

jest.setTimeout(120_000);

interface Frame {
  type: string;
  [k: string]: unknown;
}

/** A stream client that keeps every frame and how the socket ended. */
function connect(url: string, o: { protocols?: string[]; headers?: Record<string, string> }) {
  const ws = new WebSocket(url, o.protocols ?? [], { headers: o.headers });
  const frames: Frame[] = [];
  const ended = new Promise<{ code: number; reason: string; status?: number }>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve({ code: 0, reason: '', status: res.statusCode }));
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.on('error', () => undefined);
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()) as Frame);
  });
  const opened = () =>
    new Promise<void>((resolve, reject) => {
      if (ws.readyState === WebSocket.OPEN) return resolve();
      ws.once('open', () => resolve());
      void ended.then((e) => reject(new Error(`closed before open: ${JSON.stringify(e)}`)));
    });
  /** The first frame of `type`; on timeout the error lists the types that did come. */
  async function next(type: string, timeoutMs = 20_000): Promise<Frame> {
    const types = () => frames.map((f) => f.type);
    await untilValue(`a ${type} frame`, types, (seen) => seen.includes(type), { timeoutMs, everyMs: 20 });
    return frames.find((f) => f.type === type)!;
  }
  return { ws, frames, ended, opened, next };
}

describe('API: the stream gateway to the REAL machine runtime', () => {
  let api: ApiStack;
  let userId: string;
  let token: string;
  let streamUrl: string;

  beforeAll(async () => {
    api = await createApiStack({ realRuntime: true });
    streamUrl = `${api.wsUrl}/v1/machines/me/stream`;
    userId = await api.createUser('elite');
    token = await api.token(userId);
    expect((await api.call('POST', '/v1/machines', { token })).status).toBe(202);
    await api.waitForStatus(token, (s) => s.state === 'running', 90_000);
  });
  afterAll(async () => {
    await api?.close();
  });

  test('relays frames from the machine to a browser-style client (subprotocol bearer)', async () => {
    const client = connect(streamUrl, { protocols: ['bearer', token] });
    await client.opened();
    expect(client.ws.protocol).toBe('bearer'); // the token is never echoed back
    const hello = await client.next('hello');
    expect(hello.userId).toBe(userId);
    const state = await client.next('state');
    expect(state.state).toMatchObject({ ok: true, userId });
    client.ws.close(1000);
    expect(await client.ended).toMatchObject({ code: 1000 });
  });

  test('accepts Authorization for non-browser clients', async () => {
    const client = connect(streamUrl, { headers: { authorization: `Bearer ${token}` } });
    await client.opened();
    expect((await client.next('hello')).userId).toBe(userId);
    client.ws.close(1000);
    await client.ended;
  });

  test('refuses the upgrade without a valid token (401), and closes 4404 for a user with no running machine', async () => {
    expect(await connect(streamUrl, {}).ended).toMatchObject({ status: 401 });
    const forged = await api.token(userId, { secret: 'someone-elses-secret-at-least-32-chars' });
    expect(await connect(streamUrl, { protocols: ['bearer', forged] }).ended).toMatchObject({ status: 401 });
    expect(await connect(streamUrl, { protocols: ['bearer', 'garbage'] }).ended).toMatchObject({ status: 401 });

    const other = await api.createUser('elite');
    const theirs = connect(streamUrl, { protocols: ['bearer', await api.token(other)] });
    expect(await theirs.ended).toMatchObject({ code: 4404, reason: 'you have no running machine' });
    expect(theirs.frames).toEqual([]); // not one frame of anyone's machine
  });

  test('a plain GET (no WebSocket upgrade) gets 426 problem+json', async () => {
    const res = await fetch(streamUrl.replace(/^ws/, 'http'), {
      headers: { authorization: `Bearer ${await api.token(userId)}` },
    });
    expect(res.status).toBe(426);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 426, detail: expect.stringMatching(/WebSocket/) });
  });

  test('more frames per second than the rate (20/s, burst 40) close the stream with 1008 and a reason', async () => {
    const flood = connect(streamUrl, { protocols: ['bearer', token] });
    await flood.next('hello');
    for (let i = 0; i < 200; i++) flood.ws.send(JSON.stringify({ type: 'ping', i }));
    expect(await flood.ended).toEqual({ code: 1008, reason: 'too many messages: at most 20 per second' });
  });

  test('a frame over 4 KB closes the stream with 1009 and a reason; past the 64 KB ceiling, 1009 from ws', async () => {
    const big = connect(streamUrl, { protocols: ['bearer', token] });
    await big.next('hello');
    big.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(5 * 1024) }));
    expect(await big.ended).toEqual({ code: 1009, reason: 'message too big: at most 4096 bytes' });

    // `ws` refuses it on the frame's header, before buffering it; its close has no reason.
    const huge = connect(streamUrl, { protocols: ['bearer', token] });
    await huge.next('hello');
    huge.ws.send('x'.repeat(100 * 1024));
    expect(await huge.ended).toMatchObject({ code: 1009 });

    // A 4 KB frame is still relayed: the stream stays open.
    const ok = connect(streamUrl, { protocols: ['bearer', token] });
    await ok.next('hello');
    ok.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(4000) }));
    await sleep(300);
    expect(ok.ws.readyState).toBe(WebSocket.OPEN);
    ok.ws.close(1000);
    await ok.ended;
  });

  test('a stream closes with 4401 when the token it was opened with expires; a fresh token reconnects', async () => {
    const shortLived = await api.token(userId, { ttlSeconds: 3 });
    const exp = decodeJwt(shortLived).exp! * 1000;
    const client = connect(streamUrl, { protocols: ['bearer', shortLived] });
    await client.next('hello');
    expect(await client.ended).toEqual({ code: 4401, reason: 'token expired: reconnect with a fresh one' });
    expect(Date.now()).toBeGreaterThanOrEqual(exp); // not before the token's exp

    const again = connect(streamUrl, { protocols: ['bearer', await api.token(userId)] });
    expect((await again.next('hello')).userId).toBe(userId);
    again.ws.close(1000);
    await again.ended;
  });

  test('the machine stopping closes the stream cleanly', async () => {
    const client = connect(streamUrl, { protocols: ['bearer', token] });
    await client.next('hello');
    const metricsBefore = await api.call('GET', '/metrics');
    expect(metricsBefore.text).toMatch(/api_stream_connections 1/);

    expect((await api.call('POST', '/v1/machines/me/stop', { token })).status).toBe(202);
    const end = await client.ended;
    expect([1001, 4503]).toContain(end.code);
    await api.waitForStatus(token, (s) => s.state === 'stopped');
    expect((await api.call('GET', '/metrics')).text).toMatch(/api_stream_connections 0/);
    expect(await connect(streamUrl, { protocols: ['bearer', token] }).ended).toMatchObject({ code: 4404 });
  });
});

/**
 * The bounds toward a machine that reads slowly: this stack's machines run
 * test-support/slow-machine.mjs (it says hello, then reads nothing) instead of the stand-in runtime.
 * The rate limit is lifted here so that the byte bound is what a flood meets.
 */
describe('API: the stream gateway toward a machine that reads slowly', () => {
  const BOUND = 256 * 1024;
  let api: ApiStack;
  let token: string;
  let streamUrl: string;
  let machineOrigin: string;

  beforeAll(async () => {
    api = await createApiStack({
      env: {
        API_STREAM_MAX_BUFFERED_BYTES: String(BOUND),
        API_STREAM_MAX_MESSAGES_PER_SECOND: '1000000',
        API_STREAM_MESSAGE_BURST: '1000000',
      },
    });
    api.stack.flyLocal.registerImage(TEST_IMAGE, {
      command: process.execPath,
      args: [resolve(__dirname, 'test-support/slow-machine.mjs')],
      cwd: resolve(__dirname, '..'),
    });
    const running = await api.runningUser();
    token = running.token;
    streamUrl = `${api.wsUrl}/v1/machines/me/stream`;
    machineOrigin = machineAddress(
      await api.stack.fly.getMachine(running.status.machineId!),
      RUNTIME_INTERNAL_PORT,
    ).origin;
  });
  afterAll(async () => {
    await api?.close();
  });

  const outcomes = async (outcome: string) => {
    const m = new RegExp(`api_stream_connections_total\\{outcome="${outcome}"\\} (\\d+)`).exec(
      (await api.call('GET', '/metrics')).text,
    );
    return Number(m?.[1] ?? 0);
  };

  test('a browser flooding a slow machine is closed with 1008 and a reason, its bytes bounded', async () => {
    const client = connect(streamUrl, { protocols: ['bearer', token] });
    await client.next('hello');
    // 4 KB frames as fast as the gateway takes them, up to 64 MB. Without the bound the gateway takes
    // them all (the review: ~490 MB in 8 s); with it, the link closes once BOUND bytes wait in the
    // gateway, after the loopback's socket buffers (a few MB) have filled.
    const CEILING = 64 << 20;
    const frame = JSON.stringify({ type: 'ping', pad: 'x'.repeat(4000) });
    let sent = 0;
    await new Promise<void>((done) => {
      const pump = () => {
        while (client.ws.readyState === WebSocket.OPEN && client.ws.bufferedAmount < BOUND && sent < CEILING) {
          client.ws.send(frame);
          sent += frame.length;
        }
        if (client.ws.readyState === WebSocket.OPEN && sent < CEILING) setImmediate(pump);
        else done();
      };
      pump();
    });
    expect(sent).toBeLessThan(CEILING); // else the gateway took all 64 MB without closing
    expect(await client.ended).toEqual({ code: 1008, reason: 'upstream buffer full: your machine reads too slowly' });
    expect(await outcomes('dropped_slow_machine')).toBe(1);
  });

  test('a browser reading too slowly is closed with 1008 and a reason (machine → browser bound)', async () => {
    const client = connect(streamUrl, { protocols: ['bearer', token] });
    await client.next('hello');
    const socket = (client.ws as unknown as { _socket: Socket })._socket;
    socket.pause(); // the browser reads nothing more
    const before = await outcomes('dropped_slow');
    const res = await fetch(`${machineOrigin}/firehose`, { method: 'POST' });
    expect(await res.json()).toEqual({ firehose: true });
    // The gateway gives up on the browser once BOUND bytes wait for it; its close waits behind them.
    await until(
      'the gateway to close the slow browser',
      async () => (await outcomes('dropped_slow')) !== before,
      20_000,
    );
    socket.resume();
    expect(await client.ended).toEqual({
      code: 1008,
      reason: 'downstream buffer full: your connection reads too slowly',
    });
    expect(client.frames.some((f) => f.type === 'pad')).toBe(true);
  });
});

describe('tokenBucket (the stream rate limit)', () => {
  test('takes a burst at once, then the rate', () => {
    let now = 0;
    const bucket = tokenBucket(20, 40, () => now);
    for (let i = 0; i < 40; i++) expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    now += 50; // one frame's worth at 20/s
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    now += 60_000; // refills to the burst, no further
    for (let i = 0; i < 40; i++) expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
  });

  test('a steady 20 frames per second is never refused', () => {
    let now = 0;
    const bucket = tokenBucket(20, 40, () => now);
    for (let i = 0; i < 1000; i++, now += 50) expect(bucket.take()).toBe(true);
  });
});
