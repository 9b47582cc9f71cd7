import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { deriveMachineKey, mintMachineAccessToken } from '../common/credentials';
import { createApiAnnotator } from '../machine-runtime/gemini';
import { createMachineApiUserStore } from '../store/machine-api';
import type { Firing } from '../machine-runtime/engine';
import { TEST_JWT_SECRET } from '../test/machine-stack';
import { createApiStack, type ApiStack } from './test-support/api-stack';

jest.setTimeout(120_000);

/** A stand-in for Gemini's REST API (`POST /v1beta/models/{model}:generateContent`), as @google/genai calls it. */
function startGeminiStandIn() {
  const seen: { path: string; key: string | undefined; prompt: string }[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const json = JSON.parse(body || '{}') as { contents?: { parts?: { text?: string }[] }[] };
      seen.push({
        path: req.url ?? '',
        key: req.headers['x-goog-api-key'] as string | undefined,
        prompt: json.contents?.[0]?.parts?.[0]?.text ?? '',
      });
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          candidates: [{ content: { role: 'model', parts: [{ text: ' RSI under 30: often oversold. ' }] } }],
        }),
      );
    });
  });
  return new Promise<{ url: string; seen: typeof seen; close: () => Promise<void> }>((ok) =>
    server.listen(0, '127.0.0.1', () =>
      ok({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        seen,
        close: () => new Promise((done) => server.close(() => done())),
      }),
    ),
  );
}

const firing = (): Firing => ({
  trader: { id: randomUUID(), name: 'oversold' },
  candle: {
    symbol: 'BTCUSDT',
    interval: '5m',
    openTime: Date.parse('2024-10-03T00:00:00Z'),
    closeTime: Date.parse('2024-10-03T00:04:59.999Z'),
    open: 60_000,
    high: 60_100,
    low: 59_900,
    close: 59_950,
    volume: 12.5,
  } as Firing['candle'],
  values: { rsi: 28.4, ema: null },
});

describe('the machine-facing API: AI notes made where the Gemini key lives', () => {
  let api: ApiStack;
  let gemini: Awaited<ReturnType<typeof startGeminiStandIn>>;
  beforeAll(async () => {
    gemini = await startGeminiStandIn();
    api = await createApiStack({
      env: { GEMINI_API_KEY: 'gemini-key-of-the-project', GEMINI_BASE_URL: gemini.url, API_AI_NOTES_PER_MINUTE: '3' },
    });
  });
  afterAll(async () => {
    await api?.close();
    await gemini?.close();
  });

  test('a machine signing with its own key gets a note; the key and the prompt go to Gemini, not the machine', async () => {
    const userId = await api.createUser('elite');
    const annotate = createApiAnnotator({
      apiUrl: api.url,
      userId,
      machineKey: deriveMachineKey(TEST_JWT_SECRET, userId),
    });
    expect(await annotate(firing())).toBe('RSI under 30: often oversold.');
    const call = gemini.seen.at(-1)!;
    expect(call.path).toMatch(/^\/v1beta\/models\/gemini-2\.5-flash:generateContent/);
    expect(call.key).toBe('gemini-key-of-the-project');
    expect(call.prompt).toContain('"oversold" just matched BTCUSDT on the 5m chart');
    expect(call.prompt).toContain('rsi=28.4, ema=n/a');
  });

  test('anything but a machine-api token of the caller’s own key is 401', async () => {
    const userId = await api.createUser('elite');
    const other = await api.createUser('elite');
    const note = (authorization?: string) =>
      api.call('POST', '/v1/machine/ai-note', {
        headers: authorization ? { authorization } : {},
        body: {
          traderName: 't',
          symbol: 'BTCUSDT',
          interval: '5m',
          openTime: 0,
          open: 1,
          high: 1,
          low: 1,
          close: 1,
          volume: 1,
          values: {},
        },
      });
    const cases: Record<string, string | undefined> = {
      none: undefined,
      'a user login': `Bearer ${await api.token(userId)}`,
      'a stream token': `Bearer ${await mintMachineAccessToken({ jwtSecret: TEST_JWT_SECRET, userId, purpose: 'stream' })}`,
      'a control token': `Bearer ${await mintMachineAccessToken({ jwtSecret: TEST_JWT_SECRET, userId, purpose: 'control' })}`,
    };
    // Signed with another user's machine key while claiming this user: the key does not match the sub.
    const forged = createApiAnnotator({
      apiUrl: api.url,
      userId,
      machineKey: deriveMachineKey(TEST_JWT_SECRET, other),
    });
    await expect(forged(firing())).rejects.toThrow(/HTTP 401/);
    for (const [name, authorization] of Object.entries(cases)) {
      const res = await note(authorization);
      expect([name, res.status, res.headers.get('content-type')]).toEqual([
        name,
        401,
        expect.stringMatching(/problem\+json/),
      ]);
    }
  });

  test('a machine reads its traders and writes its signals through the API, as its user only (RLS): no database credential', async () => {
    const a = await api.createUser('elite');
    const b = await api.createUser('elite');
    const insert = async (userId: string, name: string) =>
      (
        await api.stack.db.pool.query(
          `insert into public.traders (user_id, name, definition) values ($1, $2, '{}') returning id`,
          [userId, name],
        )
      ).rows[0].id as string;
    const mine = await insert(a, 'mine');
    const theirs = await insert(b, 'theirs');
    const store = createMachineApiUserStore({
      apiUrl: api.url,
      userId: a,
      machineKey: deriveMachineKey(TEST_JWT_SECRET, a),
    });
    expect((await store.listTraders()).map((t) => t.name)).toEqual(['mine']);
    const signal = {
      traderId: mine,
      symbol: 'BTCUSDT',
      interval: '5m',
      candleOpenAt: new Date('2024-10-03T00:00:00Z'),
      payload: { close: 1 },
    };
    const first = await store.insertTradeSignal(signal);
    expect(first).toMatchObject({
      inserted: true,
      signal: { userId: a, traderId: mine, candleOpenAt: signal.candleOpenAt },
    });
    expect(await store.insertTradeSignal(signal)).toEqual({ inserted: false, signal: null });
    expect(await store.listTradeSignals()).toHaveLength(1);
    // Another user's trader is not the machine's to write signals for.
    await expect(store.insertTradeSignal({ ...signal, traderId: theirs })).rejects.toThrow(
      /machine API POST \/v1\/machine\/signals: HTTP 403: that trader is not one of yours/,
    );
    const rows = await api.stack.db.pool.query('select count(*)::int as n from public.signals where trader_id = $1', [
      theirs,
    ]);
    expect(rows.rows[0].n).toBe(0);
    // A key that is not this user's: nothing at all.
    const forged = createMachineApiUserStore({
      apiUrl: api.url,
      userId: a,
      machineKey: deriveMachineKey(TEST_JWT_SECRET, b),
    });
    await expect(forged.listTraders()).rejects.toThrow(/HTTP 401/);
  });

  test('per-user rate limit (429), a bad body (400), and 503 without a key', async () => {
    const userId = await api.createUser('elite');
    const annotate = createApiAnnotator({
      apiUrl: api.url,
      userId,
      machineKey: deriveMachineKey(TEST_JWT_SECRET, userId),
    });
    for (let i = 0; i < 3; i++) await annotate(firing());
    await expect(annotate(firing())).rejects.toThrow(/HTTP 429/);
    // Another user's machine has its own budget.
    const other = await api.createUser('elite');
    await expect(
      createApiAnnotator({ apiUrl: api.url, userId: other, machineKey: deriveMachineKey(TEST_JWT_SECRET, other) })(
        firing(),
      ),
    ).resolves.toEqual(expect.any(String));

    const bare = await api.startApp({ GEMINI_API_KEY: '' });
    const third = await api.createUser('elite');
    await expect(
      createApiAnnotator({ apiUrl: bare.url, userId: third, machineKey: deriveMachineKey(TEST_JWT_SECRET, third) })(
        firing(),
      ),
    ).rejects.toThrow(/HTTP 503/);
  });
});
