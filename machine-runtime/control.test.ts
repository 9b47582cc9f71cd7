import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import pino from 'pino';
import WebSocket from 'ws';
import { deriveMachineKey, mintMachineAccessToken } from '../common/credentials';
import { startMachineRuntime, type MachineRuntime } from './app';
import { MemoryUserStore } from './test-support/memory-store';

/**
 * The runtime's doors as the worker and the API gateway use them: tokens signed with the machine key
 * (TOKEN_VERIFY_SECRET = deriveMachineKey(SUPABASE_JWT_SECRET, user)), each good for one purpose.
 * No Binance is needed: the traders here never reach the feed (none is valid), so the runtime idles.
 */
const jwtSecret = 'control-test-jwt-secret-at-least-32-chars';
const userId = randomUUID();
const machineKey = deriveMachineKey(jwtSecret, userId);
const hour = 3600;
const now = () => Math.floor(Date.now() / 1000);

/** A JWT signed with `key` (default: this machine's key) with exactly these claims. */
const sign = (claims: Record<string, unknown>, key = machineKey) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(key));
const control = () => mintMachineAccessToken({ jwtSecret, userId, purpose: 'control' });
const stream = () => mintMachineAccessToken({ jwtSecret, userId, purpose: 'stream' });
/** A user token as the worker hands it in (signed with the project secret, which the machine never holds). */
const userToken = (claims: Record<string, unknown> = {}) =>
  sign(
    { sub: userId, role: 'authenticated', aud: 'authenticated', iat: now(), exp: now() + hour, ...claims },
    jwtSecret,
  );

function connect(url: string, headers: Record<string, string>) {
  return new Promise<{ ws?: WebSocket; status?: number }>((resolve) => {
    const ws = new WebSocket(url, [], { headers });
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode }));
    ws.on('error', () => resolve({ status: -1 }));
  });
}

describe('control, stream and health tokens (machine key)', () => {
  let runtime: MachineRuntime;
  let store: MemoryUserStore;
  let base: string;

  beforeAll(async () => {
    store = new MemoryUserStore(userId);
    store.addTrader('broken', { symbols: ['BTCUSDT'], interval: '5m', filter: { all: [] } });
    runtime = await startMachineRuntime({
      config: {
        userId,
        userToken: await userToken(),
        binanceWsUrl: 'ws://127.0.0.1:9',
        binanceRestUrl: 'http://127.0.0.1:9',
        tokenVerifySecret: machineKey,
        traderPollSeconds: 3600,
      },
      store,
      log: pino({ level: process.env.TEST_LOG ?? 'silent' }),
      options: { storeRetryBaseMs: 20, storeRetryMaxMs: 100 },
    });
    await runtime.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(runtime.app.server.address() as AddressInfo).port}`;
    await runtime.start();
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  const reload = (token?: string) =>
    fetch(`${base}/control/reload`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
  const credentials = (auth: string, token: string) =>
    fetch(`${base}/control/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
  const detail = async (res: Response) => ((await res.json()) as { detail?: string }).detail ?? '';

  test('/control/* takes only a short control token of this user', async () => {
    const refused: [string, string, RegExp][] = [
      ['no token', '', /missing bearer token/],
      ['a stream token', await stream(), /not a control token/],
      [
        'a user access token',
        await sign({ sub: userId, role: 'authenticated', iat: now(), exp: now() + 60 }),
        /not a control token/,
      ],
      [
        'another user',
        await sign({ purpose: 'control', sub: randomUUID(), iat: now(), exp: now() + 60 }),
        /another user/,
      ],
      [
        'another key',
        await sign({ purpose: 'control', sub: userId, iat: now(), exp: now() + 60 }, 'x'.repeat(40)),
        /signature/i,
      ],
      ['10 min lifetime', await sign({ purpose: 'control', sub: userId, iat: now(), exp: now() + 600 }), /lifetime/],
      ['no iat', await sign({ purpose: 'control', sub: userId, exp: now() + 60 }), /iat/],
      [
        'issued in a year',
        await sign({ purpose: 'control', sub: userId, iat: now() + 365 * 86_400, exp: now() + 365 * 86_400 + 60 }),
        /future/,
      ],
      ['expired', await sign({ purpose: 'control', sub: userId, iat: now() - 120, exp: now() - 60 }), /expired/i],
    ];
    for (const [name, token, reason] of refused) {
      const res = await reload(token || undefined);
      expect([name, res.status]).toEqual([name, 401]);
      expect([name, await detail(res)]).toEqual([name, expect.stringMatching(reason)]);
    }
    const ok = await reload(await control());
    expect(ok.status).toBe(200);
  });

  test('a stream token cannot install a user token (the 2100 token of the review)', async () => {
    const before = runtime.getAccessToken();
    const forever = await userToken({ exp: Date.UTC(2100, 0, 1) / 1000 });
    const res = await credentials(await stream(), forever);
    expect(res.status).toBe(401);
    expect(runtime.getAccessToken()).toBe(before);
  });

  test('/control/credentials bounds the handed token: at most 24 h ahead, this user, role authenticated', async () => {
    const auth = await control();
    const refused: [string, string, RegExp][] = [
      ['expires in 2100', await userToken({ exp: Date.UTC(2100, 0, 1) / 1000 }), /more than 24 h/],
      ['expires in 25 h', await userToken({ exp: now() + 25 * hour }), /more than 24 h/],
      ['another user', await userToken({ sub: randomUUID() }), /another user/],
      ['service role', await userToken({ role: 'service_role' }), /role/],
      ['expired', await userToken({ exp: now() - 60 }), /expired/],
      ['not a JWT', 'nope', /not a JWT/],
    ];
    for (const [name, token, reason] of refused) {
      const res = await credentials(auth, token);
      expect([name, res.status]).toEqual([name, 400]);
      expect([name, await detail(res)]).toEqual([name, expect.stringMatching(reason)]);
    }
    const renewed = await userToken({ exp: now() + 23 * hour });
    const ok = await credentials(auth, renewed);
    expect(ok.status).toBe(200);
    expect(runtime.getAccessToken()).toBe(renewed);
  });

  test('/ws takes a stream token or a user access token, never a control token', async () => {
    const url = `${base.replace(/^http/, 'ws')}/ws`;
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    expect((await connect(url, bearer(await control()))).status).toBe(401);
    const hourLong = await sign({ purpose: 'stream', sub: userId, iat: now(), exp: now() + hour });
    expect((await connect(url, bearer(hourLong))).status).toBe(401);
    for (const token of [
      await stream(),
      await sign({ sub: userId, role: 'authenticated', iat: now(), exp: now() + 60 }),
    ]) {
      const { ws, status } = await connect(url, bearer(token));
      expect(status).toBeUndefined();
      ws!.close();
    }
  });

  test('/health says only { ok } without a token; the details need a control token', async () => {
    const anonymous = await fetch(`${base}/health`);
    expect(anonymous.status).toBe(200);
    expect(await anonymous.json()).toEqual({ ok: true });

    const full = await fetch(`${base}/health`, { headers: { authorization: `Bearer ${await control()}` } });
    expect(full.status).toBe(200);
    const body = (await full.json()) as { invalidTraders: { name: string; error: string }[]; userId: string };
    expect(body.userId).toBe(userId);
    expect(body.invalidTraders).toEqual([expect.objectContaining({ name: 'broken' })]);

    // A token that is there but not good enough is refused, not silently answered with less.
    const streamed = await fetch(`${base}/health`, { headers: { authorization: `Bearer ${await stream()}` } });
    expect(streamed.status).toBe(401);

    store.failing = true;
    await reload(await control());
    const down = await fetch(`${base}/health`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ ok: false });
    const why = await fetch(`${base}/health`, { headers: { authorization: `Bearer ${await control()}` } });
    expect(((await why.json()) as { reasons: string[] }).reasons.join(' ')).toContain('trader reload failing');
    store.failing = false;
    await reload(await control());
  });
});
