import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createApiStack, TEST_WEBHOOK_SECRET, type ApiStack } from '../api/test-support/api-stack';
import { REPO_ROOT } from '../dev/fly-local/processes';
import { checkHealthz, checkOpenApi, checkToken, checkWebhook } from './smoke/checks';
import type { CheckResult } from './smoke/http';
import { checkProvision } from './smoke/provision';
import { parseSmokeArgs, runSmoke } from './smoke/run';

jest.setTimeout(180_000);

const summary = (rs: CheckResult[]) => rs.map((r) => `${r.ok ? '✓' : '✗'} ${r.check}: ${r.message}`);
const allOk = (rs: CheckResult[]) => expect(summary(rs).filter((l) => l.startsWith('✗'))).toEqual([]);

/** The smoke test's checks against the real local stack: API, worker, Temporal, Postgres, fly-local with the real runtime. */
describe('npm run smoke, against the real API stack', () => {
  let api: ApiStack;
  beforeAll(async () => {
    // The status polls of --provision would otherwise meet the per-user rate limit of 60 a minute.
    api = await createApiStack({ realRuntime: true, env: { API_RATE_LIMIT_MAX: '600' } });
  });
  afterAll(async () => {
    await api?.close();
  });

  test('a healthy deployment: every check is ✓, a machine starts, streams its hello and stops', async () => {
    const userId = await api.createUser('elite');
    const target = { api: api.url, token: await api.token(userId) };

    const health = await checkHealthz(target);
    expect(health.map((r) => r.check)).toEqual(['healthz', 'temporal', 'store']);
    allOk(health);
    allOk([await checkOpenApi(target)]);

    const token = await checkToken(target);
    allOk([token.result]);
    expect([token.userId, token.state]).toEqual([userId, undefined]);
    expect(token.result.message).toContain('has no machine yet');

    const lines: string[] = [];
    const machine = await checkProvision(target, { deadlineSeconds: 90, pollMs: 500, log: (l) => lines.push(l) });
    expect(machine.map((r) => r.check)).toEqual(['provision', 'running', 'stream', 'stop']);
    allOk(machine);
    expect(machine[2]!.message).toContain(`hello (user ${userId})`);
    expect(lines.join('\n')).toMatch(/… running \(healthy\) after \d+ s/);
    expect((await api.waitForStatus(target.token, (s) => s.state === 'stopped')).state).toBe('stopped');

    allOk([await checkWebhook(target, TEST_WEBHOOK_SECRET)]);
  });

  test('a machine that was already running is used and left running', async () => {
    const { token, userId } = await api.runningUser();
    const before = await checkToken({ api: api.url, token });
    expect(before.state).toBe('running');
    const results = await checkProvision(
      { api: api.url, token },
      { deadlineSeconds: 60, pollMs: 500, stateBefore: before.state },
    );
    allOk(results);
    expect(results.at(-1)!.message).toContain('left running');
    expect((await api.call('GET', '/v1/machines/me', { token })).json).toMatchObject({ userId, state: 'running' });
  });

  test('a token signed with another secret: the token check is ✗ and says why', async () => {
    const userId = await api.createUser('elite');
    const wrong = await api.token(userId, { secret: 'not-the-api-secret-0123456789abcdef' });
    const { result } = await checkToken({ api: api.url, token: wrong });
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(
      new RegExp(
        `^the API refused the token of user ${userId} \\(401: .+\\)\\. It is expired, signed with another secret`,
      ),
    );
    expect(result.message).toContain('SUPABASE_JWT_SECRET');

    const notJwt = await checkToken({ api: api.url, token: 'hello' });
    expect(notJwt.result).toMatchObject({ ok: false, message: expect.stringContaining('not a JWT') });
  });

  test('a free user cannot provision: ✗ names the tier', async () => {
    const userId = await api.createUser('free');
    const [result] = await checkProvision({ api: api.url, token: await api.token(userId) });
    expect(result).toMatchObject({ ok: false, check: 'provision' });
    expect(result!.message).toMatch(/^POST \/v1\/machines answered HTTP 403 .*subscription_tier to 'elite'/);
  });

  test('a wrong webhook secret, and an API without one, are ✗ with the reason', async () => {
    const wrong = await checkWebhook({ api: api.url }, 'not-the-webhook-secret-0123');
    expect(wrong).toMatchObject({ ok: false, message: expect.stringContaining("not the API's WEBHOOK_SECRET") });
    const other = await api.startApp({ WEBHOOK_SECRET: '' });
    const none = await checkWebhook({ api: other.url }, TEST_WEBHOOK_SECRET);
    expect(none).toMatchObject({ ok: false, message: expect.stringContaining('WEBHOOK_SECRET is not set') });
  });

  test('nothing listening: one ✗ that says so, and the run stops there', async () => {
    const printed: string[] = [];
    const results = await runSmoke({ api: 'http://127.0.0.1:9', token: 'x.y.z', timeoutMs: 2000 }, (l) =>
      printed.push(l),
    );
    expect(results).toHaveLength(1);
    expect(printed).toEqual([
      expect.stringMatching(/^✗ cannot reach http:\/\/127\.0\.0\.1:9\/healthz \(.+\): is the app deployed/),
    ]);
  });

  /** The CLI as an operator runs it; asynchronously, since the API under test runs in this process. */
  const cli = (args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/smoke.ts', '--api', api.url, ...args], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    }).then(
      (r) => ({ ...r, code: 0 }),
      (err: { stdout: string; stderr: string; code: number }) => err,
    );

  test('the CLI prints a ✓ line per check and exits 0 when all pass', async () => {
    const userId = await api.createUser('elite');
    const run = await cli(['--token', await api.token(userId), '--provision', '--webhook-secret', TEST_WEBHOOK_SECRET]);
    const marks = run.stdout.split('\n').filter((l) => /^[✓✗]/.test(l));
    expect(marks.map((l) => l.slice(0, 1)).join('')).toBe('✓'.repeat(10));
    expect(run.stdout).toMatch(/^✓ the API accepted the token of user .+, who has no machine yet$/m);
    expect(run.stdout).toMatch(/^✓ stopped and destroyed after \d+ s$/m);
    expect(run.stdout).toContain('all 10 checks passed');
    expect(run.code).toBe(0);
  });

  test('the CLI exits 1 on any ✗', async () => {
    const userId = await api.createUser('elite');
    const run = await cli(['--token', await api.token(userId, { secret: 'not-the-api-secret-0123456789abcdef' })]);
    expect(run.stdout).toMatch(/^✓ the API answers GET \/healthz/m);
    expect(run.stdout).toMatch(/^✗ the API refused the token/m);
    expect(run.stdout).toContain('1 of 5 checks failed');
    expect(run.code).toBe(1);
  });
});

describe('smoke arguments', () => {
  test('need an http(s) --api, and --token for --provision', () => {
    expect(
      parseSmokeArgs(['--api', 'https://x.fly.dev', '--token', 't', '--provision', '--deadline', '60']),
    ).toMatchObject({ api: 'https://x.fly.dev', token: 't', provision: true, deadlineSeconds: 60 });
    expect(() => parseSmokeArgs([])).toThrow('--api must be');
    expect(() => parseSmokeArgs(['--api', 'https://x', '--provision'])).toThrow('--provision needs --token');
    expect(() => parseSmokeArgs(['--api', 'https://x', '--deadline', 'soon'])).toThrow('--deadline');
    expect(() => parseSmokeArgs(['--api', 'https://x', '--nope'])).toThrow();
  });
});
