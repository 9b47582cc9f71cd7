import WebSocket from 'ws';
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
  const waiters: (() => void)[] = [];
  const ended = new Promise<{ code: number; reason: string; status?: number }>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve({ code: 0, reason: '', status: res.statusCode }));
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.on('error', () => undefined);
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()) as Frame);
    for (const w of waiters.splice(0)) w();
  });
  const opened = () =>
    new Promise<void>((resolve, reject) => {
      if (ws.readyState === WebSocket.OPEN) return resolve();
      ws.once('open', () => resolve());
      void ended.then((e) => reject(new Error(`closed before open: ${JSON.stringify(e)}`)));
    });
  async function next(type: string, timeoutMs = 20_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = frames.find((f) => f.type === type);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${type} frame; got ${frames.map((f) => f.type).join(',')}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
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

  test('a browser flooding frames is closed with 1008 and a reason; an oversized frame with 1009', async () => {
    const flood = connect(streamUrl, { protocols: ['bearer', token] });
    await flood.next('hello');
    for (let i = 0; i < 200; i++) flood.ws.send(JSON.stringify({ type: 'ping', i }));
    expect(await flood.ended).toEqual({ code: 1008, reason: 'too many messages: at most 20 per second' });

    const big = connect(streamUrl, { protocols: ['bearer', token] });
    await big.next('hello');
    big.ws.send('x'.repeat(5 * 1024));
    expect((await big.ended).code).toBe(1009);
  });

  test('frames that would leave more than the bound waiting for the machine close the link (1008)', async () => {
    // A 1 KB bound: one 3 KB frame toward the machine would exceed it, as a flood toward a slow machine does.
    const tight = await api.startApp({ API_STREAM_MAX_BUFFERED_BYTES: '1024' });
    const client = connect(`${tight.wsUrl}/v1/machines/me/stream`, { protocols: ['bearer', token] });
    await client.next('hello');
    client.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(3000) }));
    expect(await client.ended).toEqual({ code: 1008, reason: 'upstream buffer full: your machine reads too slowly' });
  });

  test('a stream closes when the token it was opened with expires (4401)', async () => {
    const shortLived = await api.token(userId, { ttlSeconds: 3 });
    const client = connect(streamUrl, { protocols: ['bearer', shortLived] });
    await client.next('hello');
    expect(await client.ended).toEqual({ code: 4401, reason: 'token expired: reconnect with a fresh one' });
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
