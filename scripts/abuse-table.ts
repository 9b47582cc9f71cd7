import WebSocket from 'ws';
import { mintMachineAccessToken, mintUserToken } from '../activities/credentials';
import { machineAddress } from '../activities/fly/client';
import { TEST_JWT_SECRET } from '../test/machine-stack';
import { signWebhook } from '../api/webhooks';
import { createApiStack, TEST_WEBHOOK_SECRET, type ApiStack } from '../api/test-support/api-stack';
import globalSetup from '../test/global-setup';
import globalTeardown from '../test/global-teardown';
import { quietTemporalLogs } from '../test/temporal';

/**
 * `npm run abuse`: what the API answers to abuse (bad tokens, bad webhooks, streams it must refuse),
 * as a markdown table. scripts/abuse-table.test.ts runs the same cases and asserts the expected answers.
 */

export interface AbuseCase {
  group: 'token' | 'webhook' | 'billing' | 'stream' | 'ops' | 'machine';
  name: string;
  request: string;
  expected: string;
  observed: string;
}

/** How a WebSocket attempt ended: an HTTP status before the upgrade, or a close code after it. */
function streamAttempt(url: string, o: { protocols?: string[]; headers?: Record<string, string> }) {
  return new Promise<string>((resolve) => {
    const ws = new WebSocket(url, o.protocols ?? [], { headers: o.headers });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('no answer in 15 s');
    }, 15_000);
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve(`HTTP ${res.statusCode}`);
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => undefined);
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve(`close ${code} ${reason.toString()}`.trim());
    });
  });
}

/**
 * Runs every case against a live stack. User A has a running machine; B is another elite user
 * without one, so "someone else's machine" is A's as B tries to reach it.
 */
export async function runAbuseCases(api: ApiStack): Promise<AbuseCase[]> {
  const a = await api.createUser('elite');
  const b = await api.createUser('elite');
  const tokenA = await api.token(a);
  const tokenB = await api.token(b);
  const provision = await api.call('POST', '/v1/machines', { token: tokenA });
  if (provision.status !== 202)
    throw new Error(`could not provision user A: HTTP ${provision.status} ${provision.text}`);
  const statusA = await api.waitForStatus(tokenA, (s) => s.state === 'running', 90_000);

  const cases: AbuseCase[] = [];
  const add = (group: AbuseCase['group'], name: string, request: string, expected: string, observed: string) =>
    cases.push({ group, name, request, expected, observed });
  const status = async (...args: Parameters<ApiStack['call']>) => {
    const res = await api.call(...args);
    const detail = typeof res.json?.detail === 'string' ? ` (${res.json.detail})` : '';
    return { res, text: `${res.status}${detail}` };
  };

  // --- tokens ---------------------------------------------------------------------------------
  {
    const r = await status('GET', '/v1/machines/me');
    add('token', 'none', 'GET /v1/machines/me, no Authorization', '401', r.text);
  }
  {
    const r = await status('GET', '/v1/machines/me', { token: await api.token(a, { ttlSeconds: -60 }) });
    add('token', 'expired', 'GET /v1/machines/me, exp 60 s ago', '401', r.text);
  }
  {
    const forged = await api.token(a, { secret: 'not-the-project-secret-but-32-chars!!' });
    const r = await status('POST', '/v1/machines/me/stop', { token: forged });
    add('token', 'forged', 'POST /v1/machines/me/stop, signed with another secret', '401', r.text);
  }
  {
    const r = await status('GET', '/v1/machines/me', { token: await api.token(a, { audience: 'anon' }) });
    add('token', 'other audience', 'GET /v1/machines/me, aud "anon"', '401', r.text);
  }
  {
    const payload = tokenA.split('.')[1];
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
    const r = await status('GET', '/v1/machines/me', { token: none });
    add('token', 'alg none', 'GET /v1/machines/me, A’s claims with alg none, no signature', '401', r.text);
  }
  for (const [name, role] of [
    ['anon key', 'anon'],
    ['service-role key', 'service_role'],
  ] as const) {
    const r = await status('GET', '/v1/machines/me', { token: await api.token(a, { claims: { role } }) });
    add('token', name, `GET /v1/machines/me, A's sub with role ${role}`, '401', r.text);
  }
  {
    const r = await status('GET', '/v1/machines/me', { token: await api.token(a, { ttlSeconds: 100 * 365 * 86_400 }) });
    add('token', '100-year lifetime', 'GET /v1/machines/me, exp 100 years after iat', '401', r.text);
  }
  {
    // The user token A's own machine holds (read from its Fly config, as a compromised machine could).
    const [machine] = await api.stack.fly.listMachines({ metadata: { user_id: a } });
    const machineToken = machine?.config?.env?.USER_TOKEN ?? '';
    const r = await status('GET', '/v1/machines/me', { token: machineToken });
    add(
      'token',
      'a machine’s user token as a login',
      'GET /v1/machines/me with the USER_TOKEN of A’s machine',
      '401',
      r.text,
    );
  }
  {
    const r = await status('GET', '/v1/machines/me', { token: tokenB });
    add('token', 'other user’s machine: read', 'GET /v1/machines/me as B (A has a machine)', '404', r.text);
  }
  {
    const r = await status('POST', '/v1/machines/me/stop', { token: tokenB });
    add('token', 'other user’s machine: stop', 'POST /v1/machines/me/stop as B', '404', r.text);
  }
  {
    const r = await status('POST', '/v1/machines', { token: tokenB, body: { userId: a } });
    add('token', 'other user’s machine: name it', 'POST /v1/machines as B with body {userId: A}', '400', r.text);
  }
  {
    const after = await api.waitForStatus(tokenA, () => true);
    add(
      'token',
      'A after all of the above',
      'GET /v1/machines/me as A',
      `running on ${statusA.machineId}`,
      `${after.state} on ${after.machineId}`,
    );
  }

  // --- webhooks -------------------------------------------------------------------------------
  const event = (id: string) =>
    JSON.stringify({ id, type: 'payment.failed', userId: b, occurredAt: new Date().toISOString() });
  const hook = (rawBody: string, signature: string) =>
    status('POST', '/v1/webhooks/billing', { rawBody, headers: { 'x-signature': signature } });
  {
    const body = event(`evt-bad-${Date.now()}`);
    const r = await hook(body, signWebhook('whsec-someone-elses-secret', body));
    add('webhook', 'bad signature', 'payment.failed signed with another secret', '401', r.text);
  }
  {
    const body = event(`evt-stale-${Date.now()}`);
    const r = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body, Math.floor(Date.now() / 1000) - 600));
    add('webhook', 'stale', 'valid signature, t = 10 minutes ago', '401', r.text);
  }
  {
    const body = event(`evt-replay-${Date.now()}`);
    const first = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    const second = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    const s = (r: typeof first) => `${r.res.status} ${String(r.res.json?.status ?? '')}`.trim();
    add(
      'webhook',
      'replayed',
      'the same signed event id twice',
      '200 applied, then 200 duplicate',
      `${s(first)}, then ${s(second)}`,
    );
  }
  {
    const body = '{"id": "evt-malformed", "type": "payment.failed", "userId": "not-a-uuid"';
    const r = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    add('webhook', 'malformed', 'correctly signed, truncated JSON', '400', r.text);
  }
  {
    const body = JSON.stringify({
      id: 'evt-schema',
      type: 'tier.changed',
      userId: b,
      occurredAt: 'yesterday',
      tier: 'god',
    });
    const r = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    add('webhook', 'malformed (schema)', 'correctly signed, bad tier and date', '400', r.text);
  }
  {
    const body = JSON.stringify({
      id: 'evt-huge',
      type: 'payment.failed',
      userId: b,
      occurredAt: new Date().toISOString(),
      pad: 'x'.repeat(200_000),
    });
    const r = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    add('webhook', 'huge body', '200 KB body, correctly signed', '413', r.text);
  }

  // --- billing: events that must not be able to stop a paying user, or keep an unpaid one running ---
  const signed = (e: Record<string, unknown>) => {
    const body = JSON.stringify({ id: `evt-${e.type as string}-${Math.random().toString(36).slice(2)}`, ...e });
    return hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
  };
  const outcome = (r: Awaited<ReturnType<typeof hook>>) => `${r.res.status} ${String(r.res.json?.status ?? '')}`;
  {
    const r = await signed({ type: 'tier.changed', userId: a, occurredAt: '2019-06-01T00:00:00Z', tier: 'free' });
    await new Promise((ok) => setTimeout(ok, 1000)); // the nudge has been read by then
    const after = await api.waitForStatus(tokenA, () => true);
    add(
      'billing',
      'ancient downgrade',
      'tier.changed to free, occurredAt 2019, for A (elite profile changed since)',
      '200 applied; A running',
      `${outcome(r)}; A ${after.state}`,
    );
  }
  {
    const t = Date.now();
    await signed({ type: 'payment.recovered', userId: b, occurredAt: new Date(t).toISOString() });
    // 30 minutes before the recovery, written in +02:00: sorts after it as a string.
    const earlier = new Date(t - 30 * 60_000 + 2 * 3600_000).toISOString().replace(/\.\d+Z$/, '+02:00');
    const r = await signed({ type: 'payment.failed', userId: b, occurredAt: earlier });
    add(
      'billing',
      'older event, other offset',
      `payment.failed at ${earlier}, after a later recovery`,
      '200 ignored',
      outcome(r),
    );
  }
  {
    const c = await api.createUser('elite');
    await signed({
      type: 'payment.failed',
      userId: c,
      occurredAt: new Date(Date.now() - 30 * 86_400_000).toISOString(),
    });
    const r = await status('POST', '/v1/machines', { token: await api.token(c) });
    add('billing', 'grace period over', 'POST /v1/machines by a user whose payment failed 30 days ago', '402', r.text);
  }

  {
    // What a compromised machine could read of itself: its own environment, as Fly holds it.
    const [machine] = await api.stack.fly.listMachines({ metadata: { user_id: a } });
    const env = machine?.config?.env ?? {};
    const secrets = [
      'GEMINI_API_KEY',
      'SUPABASE_SERVICE_KEY',
      'SUPABASE_JWT_SECRET',
      'FLY_API_TOKEN',
      'WEBHOOK_SECRET',
    ];
    const held = secrets.filter((k) => k in env);
    add(
      'machine',
      'project-wide secrets on a machine',
      'keys of A’s machine env',
      'none of them',
      held.length ? held.join(', ') : 'none of them',
    );
  }

  // --- ops: what only operators (or this host) may reach --------------------------------------
  {
    const scraped = await api.startApp({ API_METRICS_TOKEN: 'abuse-metrics-token-0123' });
    const r = await status('GET', '/metrics', { base: scraped.url });
    add('ops', 'metrics without a token', 'GET /metrics (API_METRICS_TOKEN set), no token', '401', r.text);
  }
  {
    const flyAdmin = api.stack.flyLocal.url.replace(/\/v1$/, '/admin/machines');
    const res = await fetch(flyAdmin);
    add('ops', 'fly-local admin without a token', 'GET fly-local /admin/machines, no token', '401', String(res.status));
  }
  {
    const cooled = await api.startApp({ API_PROVISION_COOLDOWN: '1 hour' });
    const c = await api.createUser('elite');
    const tokenC = await api.token(c);
    await status('POST', '/v1/machines', { base: cooled.url, token: tokenC });
    await api.waitForStatus(tokenC, (x) => x.state === 'running', 90_000);
    await status('POST', '/v1/machines/me/stop', { base: cooled.url, token: tokenC });
    await api.waitForStatus(tokenC, (x) => x.state === 'stopped', 90_000);
    const r = await status('POST', '/v1/machines', { base: cooled.url, token: tokenC });
    add('ops', 'start/stop loop', 'POST /v1/machines right after a stop (cooldown 1 hour)', '429', r.text);
  }

  // --- stream ---------------------------------------------------------------------------------
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
  // --- the machine itself (the real runtime): control tokens, trader definitions, /health ----
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
  {
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
    add(
      'stream',
      'oversized frame',
      'one 5 KB frame from a browser',
      'close 1009',
      await flood(['x'.repeat(5 * 1024)]),
    );
    add(
      'stream',
      'stream outlives its token',
      'a stream opened with a 3-second token',
      'close 4401 token expired',
      await flood([], await api.token(a, { ttlSeconds: 3 })),
    );
  }
  await api.call('POST', '/v1/machines/me/stop', { token: tokenA });
  return cases;
}

/** Whether the observed answer is the expected one (status codes compare by their code; the rest by prefix). */
export const answersAsExpected = (c: AbuseCase) =>
  /^\d{3}$/.test(c.expected) ? c.observed.split(' ')[0] === c.expected : c.observed.startsWith(c.expected);

export function abuseTable(cases: AbuseCase[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| kind | case | request | expected | observed | ok |',
    '| --- | --- | --- | --- | --- | --- |',
    ...cases.map(
      (c) =>
        `| ${c.group} | ${esc(c.name)} | ${esc(c.request)} | ${esc(c.expected)} | ${esc(c.observed)} | ${answersAsExpected(c) ? 'yes' : '**NO**'} |`,
    ),
  ].join('\n');
}

async function main() {
  // The test harness's Temporal dev server and Postgres, then the API tests' stack on them.
  quietTemporalLogs();
  await globalSetup();
  const api = await createApiStack({ realRuntime: true });
  try {
    const cases = await runAbuseCases(api);
    console.log(`\n${abuseTable(cases)}\n`);
    const bad = cases.filter((c) => !answersAsExpected(c));
    console.log(`abuse: ${cases.length} cases, ${bad.length} unexpected answers`);
    process.exitCode = bad.length ? 1 : 0;
  } finally {
    await api.close();
    await globalTeardown();
  }
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
