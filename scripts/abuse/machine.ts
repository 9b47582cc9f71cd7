import { mintMachineAccessToken, mintUserToken } from '../../common/credentials';
import { machineAddress } from '../../fly/machines';
import { TEST_JWT_SECRET } from '../../test/machine-stack';
import { streamAttempt, type AbuseContext } from './harness';

/*
 * A's machine itself, as a compromised machine or a caller reaching it directly would: its own
 * environment, and the real runtime's control tokens, trader definitions and /health.
 */

/** A's machine env as Fly holds it: no project-wide secret in it. */
export async function machineEnvCases(ctx: AbuseContext): Promise<void> {
  const { api, a, add } = ctx;
  // What a compromised machine could read of itself: its own environment, as Fly holds it.
  const [machine] = await api.stack.fly.listMachines({ metadata: { user_id: a } });
  const env = machine?.config?.env ?? {};
  const secrets = ['GEMINI_API_KEY', 'SUPABASE_SERVICE_KEY', 'SUPABASE_JWT_SECRET', 'FLY_API_TOKEN', 'WEBHOOK_SECRET'];
  const held = secrets.filter((k) => k in env);
  add(
    'machine',
    'project-wide secrets on a machine',
    'keys of A’s machine env',
    'none of them',
    held.length ? held.join(', ') : 'none of them',
  );
}

/** The runtime on A’s machine: control and stream tokens, trader definitions it must refuse, /health. */
export async function machineRuntimeCases(ctx: AbuseContext): Promise<void> {
  const { api, a, statusA, add } = ctx;
  const origin = machineAddress(await api.stack.fly.getMachine(statusA.machineId!), 8080).origin;
  const minted = (purpose: 'control' | 'stream', ttlSeconds?: number) =>
    mintMachineAccessToken({ jwtSecret: TEST_JWT_SECRET, userId: a, purpose, ttlSeconds });
  const onMachine = async (path: string, auth?: string, body?: unknown) => {
    const headers: Record<string, string> = auth ? { authorization: `Bearer ${auth}` } : {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const method = path === '/health' ? 'GET' : 'POST';
    const res = await fetch(`${origin}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    return { status: res.status, json, text: `${res.status}${json.detail ? ` (${String(json.detail)})` : ''}` };
  };
  {
    const until2100 = Math.floor((Date.UTC(2100, 0, 1) - Date.now()) / 1000);
    const { token: forever } = await mintUserToken({ jwtSecret: TEST_JWT_SECRET, userId: a, ttlSeconds: until2100 });
    add(
      'machine',
      'stream token on /control',
      'POST /control/credentials on A’s machine, gateway stream token',
      '401',
      (await onMachine('/control/credentials', await minted('stream'), { token: forever })).text,
    );
    add(
      'machine',
      '1-hour control token',
      'POST /control/reload, control token with exp − iat = 1 h',
      '401',
      (await onMachine('/control/reload', await minted('control', 3600))).text,
    );
    add(
      'machine',
      'user token until 2100',
      'POST /control/credentials, control token, handed exp 2100',
      '400',
      (await onMachine('/control/credentials', await minted('control'), { token: forever })).text,
    );
    add(
      'machine',
      'control token on /ws',
      'WebSocket /ws on A’s machine with a control token',
      'HTTP 401',
      await streamAttempt(`${origin.replace(/^http/, 'ws')}/ws`, {
        headers: { authorization: `Bearer ${await minted('control')}` },
      }),
    );
  }
  {
    let filter: unknown = { all: [{ left: { indicator: 'rsi' }, op: '<', right: 30 }] };
    for (let i = 1; i < 485; i++) filter = { all: [filter] };
    const insert = (name: string, definition: unknown) =>
      api.stack.db.pool
        .query('insert into public.traders (user_id, name, definition) values ($1, $2, $3)', [a, name, definition])
        .then(
          () => 'stored',
          (e: { code?: string }) => `refused (${e.code})`,
        );
    const good = {
      symbols: ['BTCUSDT'],
      interval: '1m',
      filter: { all: [{ left: { indicator: 'rsi' }, op: '<', right: 30 }] },
    };
    await insert('good', good);
    await insert('deep', { ...good, filter });
    const rsis = Array.from({ length: 6 }, (_, i) => ({
      left: { indicator: 'rsi', period: 10 + i },
      op: '<',
      right: 30,
    }));
    await insert('wide', {
      ...good,
      symbols: Array.from({ length: 200 }, (_, i) => `S${i}USDT`),
      filter: { any: rsis },
    });
    add(
      'machine',
      '2 MB trader definition',
      'insert into traders a 2 MB definition',
      'refused (23514)',
      await insert('huge', { ...good, pad: 'x'.repeat(2 * 1024 * 1024) }),
    );
    const r = await onMachine('/control/reload', await minted('control'));
    const why = (name: string) =>
      ((r.json.invalidTraders as { name: string; error: string }[]) ?? []).find((t) => t.name === name)?.error ??
      'loaded';
    add(
      'machine',
      '485 nested groups',
      'trader with 485 nested groups, then POST /control/reload',
      '200 traders 1, deep: filter: more than 32 nested groups',
      `${r.status} traders ${String(r.json.traders)}, deep: ${why('deep')}`,
    );
    add(
      'machine',
      '1,200 indicator instances',
      'trader on 200 symbols × 6 RSI periods',
      'needs 1200 more indicator instances',
      why('wide'),
    );
    if (api.replay) {
      await insert('doge', { ...good, symbols: ['DOGEUSDT'] });
      let doge = 'loaded';
      for (let i = 0; i < 50 && !/Invalid symbol/.test(doge); i++) {
        await new Promise((ok) => setTimeout(ok, 200));
        const h = await onMachine('/health', await minted('control'));
        doge =
          ((h.json.invalidTraders as { name: string; error: string }[]) ?? []).find((t) => t.name === 'doge')?.error ??
          'loaded';
      }
      add(
        'machine',
        'unknown symbol',
        'trader on DOGEUSDT (REST answers 400 -1121)',
        'symbols: DOGEUSDT: Binance does not know',
        doge,
      );
    }
  }
  {
    add(
      'machine',
      'runtime /health without a token',
      'GET /health on A’s machine, no token',
      'keys: ok',
      `keys: ${Object.keys((await onMachine('/health')).json).join(',')}`,
    );
    add(
      'machine',
      'runtime /health, stream token',
      'GET /health with a gateway stream token',
      '401',
      (await onMachine('/health', await minted('stream'))).text,
    );
    const full = await onMachine('/health', await minted('control'));
    add(
      'machine',
      'runtime /health, control token',
      'GET /health with a control token',
      'details',
      Array.isArray(full.json.reasons) ? 'details' : 'no details',
    );
  }
}
