import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createApiStack, type ApiStack } from '../api/test-support/api-stack';
import { TEST_JWT_SECRET } from '../test/machine-stack';
import { exited } from '../test/kit/processes';

// The two Edge Functions run in real Deno (the npm package `deno` ships the binary) against the real
// API. Deno resolves their `npm:` imports from this project's node_modules (--node-modules-dir=manual):
// no download at test time.
jest.setTimeout(120_000);

const ROOT = resolve(__dirname, '..');
const FUNCTIONS = join(ROOT, 'supabase/functions');
const DENO_FLAGS = ['--node-modules-dir=manual'];

/**
 * The deno binary itself (not the npm wrapper script, which would outlive a killed child), and its
 * version, or why there is none.
 */
function findDeno(): { bin: string; version: string } | { missing: string } {
  const platformDir = join(ROOT, 'node_modules/@deno');
  const platformBins = existsSync(platformDir) ? readdirSync(platformDir).map((d) => join(platformDir, d, 'deno')) : [];
  const candidates = [process.env.DENO_BIN, join(ROOT, 'node_modules/deno/deno'), ...platformBins, 'deno'].filter(
    (c): c is string => !!c && (c === 'deno' || existsSync(c)),
  );
  const tried: string[] = [];
  for (const bin of candidates) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return { bin, version: r.stdout.split('\n')[0] ?? '' };
    tried.push(`${bin}: ${r.error?.message ?? `exit ${r.status}`}`);
  }
  return {
    missing: `no working deno binary (${tried.join('; ') || 'none found'}); \`npm ci\` installs it from the npm package deno`,
  };
}
const deno = findDeno();
const skipped = (what: string) => {
  if (!('missing' in deno)) return false;
  console.warn(`SKIPPED: ${what}: ${deno.missing}`);
  return true;
};

interface EdgeFunction {
  url: string;
  proc: ChildProcess;
  logs: string[];
}

/** `deno run` one function on a free port (PORT=0; it prints the port it got). */
async function startFunction(bin: string, name: string, env: Record<string, string>): Promise<EdgeFunction> {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  delete childEnv.SUPABASE_URL; // HS256 with the test secret, no JWKS lookups
  const proc = spawn(
    bin,
    ['run', ...DENO_FLAGS, '--no-prompt', '--allow-net', '--allow-env', join(FUNCTIONS, name, 'index.ts')],
    {
      cwd: ROOT,
      env: { ...childEnv, PORT: '0', HOST: '127.0.0.1', NO_PROXY: '127.0.0.1,localhost', DENO_NO_UPDATE_CHECK: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: string[] = [];
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${logs.join('')}`)), 30_000);
    const onData = (chunk: Buffer) => {
      logs.push(chunk.toString());
      const m = /listening on (http:\/\/[\d.]+:\d+)\//.exec(logs.join(''));
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}: ${logs.join('')}`));
    });
  });
  return { url, proc, logs };
}

async function stopFunction(f: EdgeFunction | undefined) {
  if (!f) return;
  f.proc.kill('SIGTERM');
  await exited(f.proc);
}

/** What `supabase.functions.invoke(name, { body })` sends: a POST with the user's token. */
async function invoke(f: EdgeFunction, o: { token?: string; body?: unknown; method?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const res = await fetch(f.url, {
    method: o.method ?? 'POST',
    headers,
    body: o.body === undefined ? undefined : JSON.stringify(o.body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    json: (text ? JSON.parse(text) : undefined) as Record<string, unknown>,
  };
}

test('deno check: both functions type-check', () => {
  if (skipped('deno check of supabase/functions')) return;
  const bin = (deno as { bin: string }).bin;
  const r = spawnSync(
    bin,
    ['check', ...DENO_FLAGS, join(FUNCTIONS, 'provision-machine/index.ts'), join(FUNCTIONS, 'stop-machine/index.ts')],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } },
  );
  expect({ status: r.status, output: `${r.stdout}${r.stderr}` }).toEqual({
    status: 0,
    output: expect.not.stringMatching(/error/i),
  });
});

describe('provision-machine and stop-machine in real Deno against the real API', () => {
  let api: ApiStack;
  let provisionFn: EdgeFunction | undefined;
  let stopFn: EdgeFunction | undefined;

  beforeAll(async () => {
    if ('missing' in deno) return;
    api = await createApiStack();
    const env = { CLOUD_EXECUTION_API_URL: api.url, SUPABASE_JWT_SECRET: TEST_JWT_SECRET };
    [provisionFn, stopFn] = await Promise.all([
      startFunction(deno.bin, 'provision-machine', env),
      startFunction(deno.bin, 'stop-machine', env),
    ]);
  });
  afterAll(async () => {
    await Promise.all([stopFunction(provisionFn), stopFunction(stopFn)]);
    await api?.close();
  });

  test('CORS preflight and headers like the original functions; only POST', async () => {
    if (skipped('edge functions against the API')) return;
    for (const f of [provisionFn!, stopFn!]) {
      const pre = await fetch(f.url, { method: 'OPTIONS' });
      expect(pre.status).toBe(200);
      expect(pre.headers.get('access-control-allow-origin')).toBe('*');
      expect(pre.headers.get('access-control-allow-headers')).toContain('authorization');
      const get = await invoke(f, { method: 'GET' });
      expect(get.status).toBe(405);
      expect(get.headers.get('access-control-allow-origin')).toBe('*');
    }
  });

  test('no token, a forged token → 401 { error }', async () => {
    if (skipped('edge functions against the API')) return;
    const userId = await api.createUser('elite');
    for (const f of [provisionFn!, stopFn!]) {
      const none = await invoke(f, { body: { userId, region: 'ams', cpuPriority: 'normal' } });
      expect(none.status).toBe(401);
      expect(none.json.error).toMatch(/missing bearer token/);
      expect(none.headers.get('access-control-allow-origin')).toBe('*');
      const forged = await invoke(f, {
        token: await api.token(userId, { secret: 'not-the-project-secret-0123456789' }),
        body: { userId },
      });
      expect(forged.status).toBe(401);
      expect(forged.json.error).toMatch(/invalid access token/);
    }
    expect((await api.call('GET', '/v1/machines/me', { token: await api.token(userId) })).status).toBe(404);
  });

  test('a spoofed userId is refused with 403 and nothing happens to anyone', async () => {
    if (skipped('edge functions against the API')) return;
    const victim = await api.createUser('elite');
    const attacker = await api.createUser('elite');
    const attackerToken = await api.token(attacker);

    const provision = await invoke(provisionFn!, {
      token: attackerToken,
      body: { userId: victim, region: 'ams', cpuPriority: 'normal' },
    });
    expect(provision.status).toBe(403);
    expect(provision.json).toEqual({ error: expect.stringMatching(/userId does not match/) });
    const stop = await invoke(stopFn!, { token: attackerToken, body: { userId: victim } });
    expect(stop.status).toBe(403);

    // No machine, no workflow for either of them.
    for (const u of [victim, attacker])
      expect((await api.call('GET', '/v1/machines/me', { token: await api.token(u) })).status).toBe(404);
    expect(await api.stack.fly.listMachines()).not.toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          config: expect.objectContaining({ metadata: expect.objectContaining({ user_id: victim }) }),
        }),
      ]),
    );
  });

  test('provision and stop keep the original shapes; API problems become { error } with the same status', async () => {
    if (skipped('edge functions against the API')) return;
    const userId = await api.createUser('elite');
    const token = await api.token(userId);

    const free = await invoke(provisionFn!, { token: await api.token(await api.createUser('free')), body: {} });
    expect(free).toMatchObject({
      status: 403,
      json: { error: 'a cloud machine needs the elite tier; your tier is free' },
    });
    const badRegion = await invoke(provisionFn!, { token, body: { userId, region: 'Amsterdam' } });
    expect(badRegion.status).toBe(400);
    expect(badRegion.json.error).toMatch(/^invalid request body: region: /);
    const nothingToStop = await invoke(stopFn!, { token, body: { userId } });
    expect(nothingToStop).toMatchObject({ status: 404, json: { error: expect.stringMatching(/you have no machine/) } });

    const provisioned = await invoke(provisionFn!, { token, body: { userId, region: 'ams', cpuPriority: 'normal' } });
    expect(provisioned.status).toBe(200);
    expect(provisioned.json).toEqual({
      machineId: provisioned.json.machineId === null ? null : expect.any(String),
      websocketUrl: `${api.wsUrl}/v1/machines/me/stream`,
      status: expect.stringMatching(/^(provisioning|starting|running)$/),
      workflowId: `machine-${userId}`,
    });
    const running = await api.waitForStatus(token, (s) => s.state === 'running');

    // A machineId that is not the caller's current machine is refused, not acted on.
    const wrong = await invoke(stopFn!, { token, body: { userId, machineId: 'someone-elses-machine' } });
    expect(wrong.status).toBe(404);
    expect((await api.call('GET', '/v1/machines/me', { token })).json.state).toBe('running');

    const stopped = await invoke(stopFn!, { token, body: { userId, machineId: running.machineId } });
    expect(stopped).toMatchObject({
      status: 200,
      json: { status: 'stopping', workflowId: `machine-${userId}`, machineId: running.machineId },
    });
    await api.waitForStatus(token, (s) => s.state === 'stopped');
  });
});
