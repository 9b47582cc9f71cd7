import type { ChildProcess } from 'node:child_process';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { startMachineApiServer } from '../api/test-support/machine-api-server';
import { HttpProblem } from '../api/problem';
import { deriveMachineKey } from '../common/credentials';
import { createBinanceReplay, type BinanceReplay } from '../dev/binance-replay/server';
import { describeWithData, recordedDataDir } from '../test/kit/data';
import { freePort, killGroup, spawnTs } from '../test/kit/processes';
import { until, untilValue } from '../test/kit/wait';
import { createTestDatabase, type TestDatabase } from '../test/pg';
import { plainSma, readCsv } from './test-support/data';

jest.setTimeout(300_000);

/*
 * Signals exactly once across a machine restart, with real processes: one binance-replay, the API's
 * machine routes over this file's own Postgres, and two runtime processes with the same traders,
 * A left alone and B killed with SIGKILL mid-run and started again with the same environment (as
 * Fly restarts a machine). Both must end up with the same stored signals.
 */
const jwtSecret = 'restart-test-jwt-secret-of-at-least-32-characters';
const speed = 60; // one 1m candle per second
const minute = 60_000;
const stream = 'BTCUSDT|1m';
/** The filter that stays true for a run of candles (close above its SMA(20)) and one run of it. */
const runLength = 45;

const definitions = {
  // Fires when the close goes above its SMA(20), then stays quiet while it holds.
  'above sma': {
    symbols: ['BTCUSDT'],
    interval: '1m',
    fireOn: 'change',
    filter: { all: [{ left: { indicator: 'price' }, op: '>', right: { indicator: 'sma', period: 20 } }] },
  },
  // Fires on every closed candle: so some candle surely closes while B is down.
  'every close': {
    symbols: ['BTCUSDT'],
    interval: '1m',
    fireOn: 'every',
    filter: { all: [{ left: { indicator: 'volume' }, op: '>', right: 0 }] },
  },
  'green candle': {
    symbols: ['BTCUSDT'],
    interval: '1m',
    fireOn: 'every',
    filter: { all: [{ left: { indicator: 'price' }, op: '>', right: { indicator: 'price', field: 'open' } }] },
  },
};

/** The first candle from `from` on where close > SMA(20) turns true and holds for `length` candles. */
function firstRun(from: number, length: number): number {
  const candles = readCsv('BTCUSDT', '1m');
  const sma = plainSma(
    candles.map((c) => c.close),
    20,
  );
  const above = (i: number) => sma[i] != null && candles[i]!.close > sma[i]!;
  for (let i = 1; i + length < candles.length; i++) {
    if (candles[i]!.openTime < from || above(i - 1) || !above(i)) continue;
    let n = 0;
    while (above(i + n)) n++;
    if (n >= length) return candles[i]!.openTime;
  }
  throw new Error('no long enough run in the recording');
}

interface Runtime {
  name: string;
  userId: string;
  port: number;
  env: NodeJS.ProcessEnv;
  child?: ChildProcess;
  logs: string;
}

describeWithData('signals exactly once across a kill -9 and restart of the machine process', () => {
  let db: TestDatabase;
  let api: Awaited<ReturnType<typeof startMachineApiServer>>;
  let replay: BinanceReplay;
  const runtimes: Runtime[] = [];
  // What the test holds back at the API: trader reads (a restarted B waits until a browser is
  // connected) and checkpoint writes (B's watermark stays behind what it stores before the kill).
  const gates = { traders: undefined as Promise<void> | undefined, refuseCheckpoints: false };

  const edge = firstRun(Date.parse('2024-10-03T10:00:00Z'), runLength);
  const startTime = edge - 35 * minute;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startMachineApiServer({
      jwtSecret,
      userStore: (id) => db.store.asUser(id),
      beforeRoute: async (req) => {
        if (req.url.startsWith('/v1/machine/traders')) await gates.traders;
        if (gates.refuseCheckpoints && req.method === 'PUT' && req.url === '/v1/machine/checkpoint')
          throw new HttpProblem(503, 'checkpoint writes held by the test');
      },
    });
    replay = await createBinanceReplay({ dataDir: recordedDataDir, speed, startTime, symbols: ['BTCUSDT'] });
    // The runtime processes follow the replay's clock (test-support/replay-clock-main.ts).
    const clock = JSON.stringify({ wallMs: Date.now(), marketMs: replay.clock(), speed });
    for (const name of ['A', 'B']) {
      const userId = await db.createUser('elite');
      for (const [traderName, definition] of Object.entries(definitions))
        await db.store.asUser(userId).createTrader({ name: traderName, definition }, { maxTraders: 10 });
      const machineKey = deriveMachineKey(jwtSecret, userId);
      const port = await freePort();
      runtimes.push({
        name,
        userId,
        port,
        logs: '',
        env: {
          USER_ID: userId,
          USER_TOKEN: await token(userId, machineKey),
          TOKEN_VERIFY_SECRET: machineKey,
          MACHINE_API_URL: api.url,
          SUPABASE_URL: '',
          SUPABASE_ANON_KEY: '',
          BINANCE_WS_URL: replay.wsUrl,
          BINANCE_REST_URL: replay.restUrl,
          PORT: String(port),
          HOST: '127.0.0.1',
          TRADER_POLL_SECONDS: '3600',
          FLY_MACHINE_ID: `machine-${name.toLowerCase()}`,
          RUNTIME_CATCHUP_MAX: '1 hour',
          LOG_LEVEL: 'info',
          REPLAY_CLOCK: clock,
        },
      });
    }
  });

  afterAll(async () => {
    for (const r of runtimes) if (r.child) await killGroup(r.child);
    await api?.close();
    await replay?.close();
    await db?.drop();
  });

  const token = (userId: string, key: string) =>
    new SignJWT({ role: 'authenticated' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .setAudience('authenticated')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(key));

  function spawn(r: Runtime): void {
    const child = spawnTs('machine-runtime/test-support/replay-clock-main.ts', { env: r.env });
    const keep = (chunk: Buffer) => (r.logs = (r.logs + chunk.toString()).slice(-20_000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    r.child = child;
  }
  /** Ends a wait at once, with the process's last log lines, when it died unasked. */
  const alive = (r: Runtime) => () => {
    const c = r.child!;
    if (c.exitCode !== null || c.signalCode !== null)
      throw new Error(`runtime ${r.name} exited (${c.exitCode ?? c.signalCode}):\n${r.logs}`);
  };
  const healthStatus = async (r: Runtime) =>
    (await fetch(`http://127.0.0.1:${r.port}/health`).catch(() => undefined))?.status;
  const healthy = (r: Runtime) =>
    until(`runtime ${r.name} healthy`, async () => (await healthStatus(r)) === 200, {
      timeoutMs: 60_000,
      everyMs: 100,
      abortIf: alive(r),
    });
  const signals = async (userId: string) =>
    (
      await db.pool.query(
        `select t.name, s.candle_open_at from public.signals s join public.traders t on t.id = s.trader_id
          where s.user_id = $1`,
        [userId],
      )
    ).rows.map((row: { name: string; candle_open_at: Date }) => ({ name: row.name, at: row.candle_open_at.getTime() }));
  const checkpointOf = async (userId: string) =>
    (await db.pool.query('select streams from public.runtime_checkpoints where user_id = $1', [userId])).rows[0]
      ?.streams?.[stream] as number | undefined;
  const keyOf = (s: { name: string; at: number }) => `${s.name}@${new Date(s.at).toISOString()}`;
  const metric = async (r: Runtime, name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  };

  test('the same signals as an uninterrupted run, each once; the missed closes caught up; no repeat to browsers', async () => {
    const [a, b] = runtimes as [Runtime, Runtime];
    spawn(a);
    spawn(b);
    await Promise.all([healthy(a), healthy(b)]);
    // The window compared: from the first candle both evaluate live.
    const from = Math.ceil(replay.clock() / minute) * minute + minute;
    if (from > edge - 2 * minute)
      throw new Error(`the runtimes took too long to start: live from ${new Date(from).toISOString()}`);

    // B has fired on the run's first candle and holds "true" for three more closes; its checkpoint
    // is then held, so what it stores from here on lies beyond the watermark it dies with.
    await until('B fired as the filter turned true', async () =>
      (await signals(b.userId)).some((s) => s.name === 'above sma' && s.at === edge),
    );
    await until('three more closes with the filter true', () => replay.clock() >= edge + 4 * minute);
    gates.refuseCheckpoints = true;
    await until(
      'B stored a signal past its checkpoint',
      async () => {
        const at = await checkpointOf(b.userId);
        return at !== undefined && (await signals(b.userId)).some((s) => s.at > at);
      },
      { abortIf: alive(b) },
    );
    await killGroup(b.child!, 'SIGKILL');
    const killedAt = replay.clock();

    // Down for four closes, then started again, as Fly would: the same environment, the same machine.
    await until('four closes while B is down', () => replay.clock() >= killedAt + 4 * minute);
    const before = new Set((await signals(b.userId)).map(keyOf));
    const diedWith = (await checkpointOf(b.userId))!;
    gates.refuseCheckpoints = false;
    let release!: () => void;
    gates.traders = new Promise<void>((resolve) => (release = resolve));
    spawn(b);
    await until('B listening again', async () => (await healthStatus(b)) !== undefined, { abortIf: alive(b) });
    const browser: { signals: { traderName: string; candleOpenAt: string }[]; ws: WebSocket } = {
      signals: [],
      ws: new WebSocket(`ws://127.0.0.1:${b.port}/ws`, ['bearer', await token(b.userId, b.env.TOKEN_VERIFY_SECRET!)]),
    };
    const hello = new Promise<void>((resolve) =>
      browser.ws.on('message', (data) => {
        const m = JSON.parse(data.toString()) as { type: string; signals?: typeof browser.signals };
        if (m.type === 'hello') resolve();
        if (m.type === 'signals') browser.signals.push(...m.signals!);
      }),
    );
    await hello;
    const restartedAt = replay.clock();
    release(); // B loads its traders now; its warm-up (and catch-up) follows
    gates.traders = undefined;
    await healthy(b);
    if (restartedAt >= edge + (runLength - 5) * minute)
      throw new Error('B came back after the filter had turned false: the premise of this test failed');

    // Both have stored everything up to a few candles past the run's end.
    const to = edge + (runLength + 3) * minute;
    await untilValue(
      'both checkpoints past the end of the window',
      async () => Promise.all([checkpointOf(a.userId), checkpointOf(b.userId)]),
      (ats) => ats.every((at) => at !== undefined && at >= to),
      { timeoutMs: 120_000, everyMs: 250, abortIf: () => [a, b].forEach((r) => alive(r)()) },
    );

    const inWindow = async (r: Runtime) =>
      (await signals(r.userId))
        .filter((s) => s.at >= from && s.at <= to)
        .map(keyOf)
        .sort();
    const [got, expected] = [await inWindow(b), await inWindow(a)];
    expect(new Set(expected).size).toBe(expected.length);
    expect(got).toEqual(expected);
    expect(new Set(expected.map((k) => k.split('@')[0]))).toEqual(new Set(Object.keys(definitions)));

    // The change filter, true from the run's first candle through the kill and the restart, fired once.
    const run = got.filter((k) => {
      const at = Date.parse(k.split('@')[1]!);
      return k.startsWith('above sma@') && at >= edge && at < edge + runLength * minute;
    });
    expect(run).toEqual([`above sma@${new Date(edge).toISOString()}`]);

    // Candles that closed while B was down were evaluated after its restart and stored.
    const whileDown = got.filter((k) => {
      const closeTime = Date.parse(k.split('@')[1]!) + minute - 1;
      return k.startsWith('every close@') && closeTime > killedAt + 1_000 && closeTime < restartedAt;
    });
    expect(whileDown.length).toBeGreaterThanOrEqual(3);
    expect(whileDown.every((k) => !before.has(k))).toBe(true);

    // The browser got only what the store reported new: nothing the old process had stored, each once,
    // and the closes missed while down.
    const seen = browser.signals.map((s) => `${s.traderName}@${s.candleOpenAt}`);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((k) => before.has(k))).toEqual([]);
    expect(whileDown.every((k) => seen.includes(k))).toBe(true);
    // The restarted B did fire again what the old one had stored past its watermark: the store
    // dropped them and the browser never saw them.
    const repeated = [...before].filter((k) => Date.parse(k.split('@')[1]!) > diedWith);
    expect(repeated.length).toBeGreaterThan(0);
    expect(await metric(b, 'runtime_signals_repeated_total')).toBe(repeated.length);
    expect(await metric(b, 'runtime_catchup_candles_total')).toBeGreaterThan(0);
    browser.ws.close();
  });
});
