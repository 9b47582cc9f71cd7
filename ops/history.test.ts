import { createFlyClient } from '../fly/client';
import type { MachineState } from '../common/machine-states';
import { createTestDatabase, type TestDatabase } from '../test/pg';
import { connectToTestServer } from '../test/temporal';
import { runOps, type OpsDeps } from './run';

/**
 * `ops timeline` and `ops uptime` on a real Postgres: transitions written as the workflow writes them (its
 * instants, its reason codes), billing events applied by the database's own function.
 */
describe('ops timeline and ops uptime', () => {
  let db: TestDatabase;
  let server: Awaited<ReturnType<typeof connectToTestServer>>;
  const users = { steady: '', sick: '', refused: '' };

  const record = (userId: string, at: string, status: MachineState, reason?: string, details?: object) =>
    db.store.recordMachineTransition({
      userId,
      status,
      reason,
      workflowId: `machine-${userId}`,
      occurredAt: new Date(at),
      ...(details ? { details: details as Record<string, unknown> } : {}),
    });
  const start = async (userId: string, day: string) => {
    await record(userId, `${day}T00:00:00Z`, 'provisioning', 'requested');
    await record(userId, `${day}T00:00:20Z`, 'starting', 'fly machine m1 created');
    await record(userId, `${day}T00:01:00Z`, 'running', 'healthy');
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await connectToTestServer();
    users.steady = await db.createUser('elite');
    users.sick = await db.createUser('elite');
    users.refused = await db.createUser('free');
    // steady: up all March but a weekend the user stopped it, and a payment failure settled in the grace period.
    await start(users.steady, '2026-03-01');
    await record(users.steady, '2026-03-07T00:00:00Z', 'stopping', 'user_requested');
    await record(users.steady, '2026-03-07T00:00:05Z', 'stopped', 'user_requested');
    await start(users.steady, '2026-03-09');
    for (const [id, type, at] of [
      ['evt-f', 'payment.failed', '2026-03-20T10:00:00Z'],
      ['evt-r', 'payment.recovered', '2026-03-21T10:00:00Z'],
      ['evt-old', 'payment.failed', '2026-03-20T09:00:00Z'],
    ] as const)
      await db.store.applyBillingEvent({
        id: `${id}-${users.steady}`,
        type,
        userId: users.steady,
        occurredAt: at,
        payload: { id },
        gracePeriodMs: 3 * 86_400_000,
      });
    // sick: five hours of feed idle found at 05:00, last healthy at 00:00, healed at 05:05.
    await start(users.sick, '2026-03-01');
    await record(users.sick, '2026-03-15T05:00:00Z', 'starting', 'restart 1/2: no evaluation for 900 s', {
      health: { since: '2026-03-15T00:00:00Z' },
    });
    await record(users.sick, '2026-03-15T05:05:00Z', 'running', 'recovered');
    // refused: never entitled, never had a machine.
    await record(users.refused, '2026-03-03T00:00:00Z', 'stopping', 'not_entitled');
    await record(users.refused, '2026-03-03T00:00:00Z', 'stopped', 'not_entitled');
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  const ops = async (...argv: string[]) => {
    const io = { stdout: '', stderr: '' };
    const deps: OpsDeps = {
      temporal: server.client,
      taskQueue: 'unused',
      store: db.store,
      fly: createFlyClient({ apiUrl: 'http://127.0.0.1:9/v1', token: 'unused', app: 'unused' }),
      flyApi: { url: 'http://127.0.0.1:9/v1', token: 'unused' },
      minMachineAgeSeconds: 600,
      uptime: { sloPercent: 99.5, monthlyFeeUsd: 29 },
      now: () => Date.parse('2026-04-01T00:00:00Z'),
      out: (t) => void (io.stdout += t),
      err: (t) => void (io.stderr += t),
    };
    return { code: await runOps(argv, deps), ...io };
  };

  test('timeline: newest first, a code and a sentence per entry; --json is the API’s page', async () => {
    const r = await ops('timeline', users.steady);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.split('\n');
    expect(lines[1]).toMatch(/^AT\s+KIND\s+CODE\s+WHAT$/);
    expect(lines[2]).toMatch(/^2026-03-21 10:00:00Z\s+billing\s+payment_recovered\s+Payment recovery applied/);
    expect(r.stdout).toMatch(/billing\s+billing_older\s+Payment failure ignored/);
    expect(r.stdout).toMatch(/lifecycle\s+user_requested\s+Stopped: the user stopped the machine/);

    const json = JSON.parse((await ops('timeline', users.steady, '--json', '--limit', '2')).stdout);
    expect(json.entries.map((e: { code: string }) => e.code)).toEqual(['payment_recovered', 'payment_failed']);
    expect(json.next).toEqual(expect.any(String));
  });

  test('uptime: a line per entitled user and month, worst first, with the credit owed', async () => {
    const r = await ops('uptime', '--from', '2026-03-01', '--to', '2026-03-31');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.trim().split('\n');
    // sick: 5 h 5 min ours of 31 days: 99.316 % < 99.5 → 10 % of $29.
    expect(lines[2]).toMatch(
      new RegExp(
        `^${users.sick}\\s+2026-03\\s+44640\\s+44334\\s+306\\s+0\\s+0\\s+0\\s+99\\.31\\d %\\s+10 % \\$2\\.90$`,
      ),
    );
    // steady: the start-ups only; the weekend is the user's; the payment never stopped it.
    expect(lines[3]).toMatch(
      new RegExp(`^${users.steady}\\s+2026-03\\s+44640\\s+\\d+\\s+2\\s+0\\s+2880\\s+0\\s+99\\.99\\d %\\s+-$`),
    );
    expect(r.stdout).not.toContain(users.refused);
    expect(lines.at(-1)).toBe('2 user-months; 1 below the SLO; credits owed $2.90');

    const one = JSON.parse(
      (await ops('uptime', '--from', '2026-03-15', '--to', '2026-03-15', '--user', users.sick, '--json')).stdout,
    );
    expect(one.users).toHaveLength(1);
    expect(one.users[0].report.days[0]).toEqual({
      day: '2026-03-15',
      entitledMinutes: 1440,
      healthyMinutes: 1440 - 305,
      down: { ours: 305, fly: 0, user: 0, billing: 0 },
    });
  });

  test('uptime: a range the ledger does not cover is a usage error', async () => {
    expect(await ops('uptime', '--from', '2026-03-10', '--to', '2026-03-01')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--from: `from` must not be after `to`'),
    });
    expect(await ops('uptime', '--from', '2026-01-01', '--to', '2026-06-01')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('at most 93 days'),
    });
    expect(await ops('uptime', '--from', 'March')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('YYYY-MM-DD'),
    });
  });
});
