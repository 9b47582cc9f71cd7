import { appendFileSync } from 'node:fs';
import { useLifecycleWorker } from '../test/lifecycle-harness';
import { killGroup, spawnTs } from '../test/kit/processes';
import { until, untilValue } from '../test/kit/wait';
import { untilStatus } from '../test/kit/workflow-status';
import { liveMachinesOf, TEST_FLY_TOKEN, TEST_IMAGE } from '../test/machine-stack';
import { testAddress } from '../test/temporal';
import { machineWorkflowId } from '../workflows/contract';
import type { MachineListing } from './fleet';
import { runOps, type OpsDeps } from './run';

jest.setTimeout(180_000);

/** The CLI's commands, in-process against a real worker, fly-local (machines are processes) and Postgres. */
describe('ops CLI on the real stack', () => {
  const h = useLifecycleWorker({ prefix: 'ops', reconcile: true });
  const settings = { renewalInterval: '1 hour', startDeadlineSeconds: 30, healthDeadlineSeconds: 30 };
  let userId = '';
  let machineId = '';

  const deps = (extra: Partial<OpsDeps> = {}) => {
    const io = { stdout: '', stderr: '' };
    const d: OpsDeps = {
      temporal: h.server.client,
      taskQueue: h.taskQueue,
      store: h.stack.db.store,
      fly: h.stack.fly,
      flyApi: { url: h.stack.flyLocal.url, token: TEST_FLY_TOKEN },
      minMachineAgeSeconds: 600,
      out: (t) => void (io.stdout += t),
      err: (t) => void (io.stderr += t),
      ...extra,
    };
    return { d, io };
  };
  const ops = async (...argv: string[]) => {
    const { d, io } = deps();
    const code = await runOps(argv, d);
    return { code, ...io };
  };
  const listed = async (...filters: string[]) => {
    const r = await ops('machines', '--json', ...filters);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    return JSON.parse(r.stdout) as MachineListing[];
  };
  const runningMachine = async () => {
    const user = await h.stack.db.createUser('elite');
    const handle = await h.start(user, settings);
    const status = await untilStatus(handle, 'running', (s) => s.state === 'running');
    return { user, handle, machineId: status.machineId! };
  };

  beforeAll(async () => {
    ({ user: userId, machineId } = await runningMachine());
  });

  test('usage errors exit 2 with the usage text; help exits 0', async () => {
    expect(await ops('frobnicate')).toMatchObject({ code: 2, stderr: expect.stringContaining('Usage: npm run ops') });
    expect(await ops('show', 'not-a-user')).toMatchObject({ code: 2, stderr: expect.stringContaining('a UUID') });
    expect(await ops('--help')).toMatchObject({ code: 0, stdout: expect.stringContaining('force-stop <userId>') });
  });

  test('machines: the running workflow joined with its row, as a table and as JSON, filtered', async () => {
    // Visibility is eventually consistent: wait until it lists the workflow's search attributes.
    const [line] = await untilValue(
      'visibility to list the machine as running',
      () => listed('--state', 'running'),
      (l) => l.some((m) => m.userId === userId && m.source === 'workflow'),
    );
    expect(line).toMatchObject({
      userId,
      state: 'running',
      source: 'workflow',
      tier: 'elite',
      region: 'ams',
      flyMachineId: machineId,
      workflowId: machineWorkflowId(userId),
      note: null,
    });
    expect(line?.lastHealthyAt).toEqual(expect.any(String));
    expect(await listed('--state', 'stopped')).toEqual([]);
    expect(await listed('--region', 'fra')).toEqual([]);

    const table = await ops('machines');
    expect(table.code).toBe(0);
    const [header, row] = table.stdout.split('\n');
    expect(header).toMatch(/^USER +STATE +TIER +REGION +FLY MACHINE +SINCE +LAST HEALTHY +NOTE$/);
    expect(row).toMatch(new RegExp(`^${userId} +running +elite +ams +${machineId} +\\d{4}-`));
  });

  test('the real CLI process: `machines --json` from the environment', async () => {
    const child = spawnTs('ops/cli.ts', {
      args: ['machines', '--json'],
      env: {
        TEMPORAL_ADDRESS: testAddress(),
        TEMPORAL_TASK_QUEUE: h.taskQueue,
        DATABASE_URL: h.stack.db.url,
        FLY_API_URL: h.stack.flyLocal.url,
        FLY_API_TOKEN: TEST_FLY_TOKEN,
        FLY_APP: h.stack.fly.app,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise((done) => child.once('close', done)); // exited, and its output read to the end
    try {
      await until('the CLI to exit', () => child.exitCode !== null, 60_000);
      await closed;
    } finally {
      await killGroup(child);
    }
    expect({ code: child.exitCode, stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(stdout)).toContainEqual(
      expect.objectContaining({ userId, state: 'running', flyMachineId: machineId }),
    );
  });

  test('show: the status query, the timeline, the Fly machine and billing; an unknown user is an error', async () => {
    const text = await ops('show', userId);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(/state +running \(healthy\) since .* · the workflow's status query/);
    expect(text.stdout).toContain(`${machineId} in ams`);
    expect(text.stdout).toMatch(/entitled +yes: /);
    expect(text.stdout).toMatch(
      new RegExp(`${machineId} +started +ams +127\\.0\\.0\\.1 +${TEST_IMAGE.replace(/\./g, '\\.')}`),
    );
    expect(text.stdout).toMatch(/provisioning +starting .* fly machine/);

    const json = JSON.parse((await ops('show', userId, '--json')).stdout);
    expect(json).toMatchObject({
      source: 'workflow',
      status: { state: 'running', machineId },
      row: { status: 'running', machineId },
      flyMachines: [{ id: machineId, state: 'started', image: TEST_IMAGE, region: 'ams', privateIp: '127.0.0.1' }],
      billing: { entitlement: { entitled: true, tier: 'elite' } },
    });
    expect(json.events.map((e: { toStatus: string }) => e.toStatus)).toEqual(['provisioning', 'starting', 'running']);

    const unknown = await h.stack.db.createUser('elite');
    expect(await ops('show', unknown)).toMatchObject({
      code: 1,
      stderr: `ops show: no machine workflow for user ${unknown} (machine-${unknown}), and no cloud_machines row\n`,
    });
  });

  test('logs: the last lines of the machine log file, and --follow prints what is appended until aborted', async () => {
    const info = h.stack.flyLocal.machines().find((m) => m.id === machineId)!;
    appendFileSync(info.logFile, 'first line from the machine\n');
    const once = await ops('logs', userId, '--lines', '1');
    expect(once).toEqual({ code: 0, stdout: 'first line from the machine\n', stderr: '' });

    const abort = new AbortController();
    const { d, io } = deps({ signal: abort.signal });
    const following = runOps(['logs', userId, '--follow'], d);
    await until('the tail to be printed', () => io.stdout.includes('first line'));
    appendFileSync(info.logFile, 'a line written later\n');
    await until('the appended line to be printed', () => io.stdout.includes('a line written later\n'));
    abort.abort();
    expect(await following).toBe(0);
  });

  test('reconcile --dry-run plans without acting; reconcile acts and reports', async () => {
    const other = await h.stack.db.createUser('elite');
    const orphan = await h.stack.fly.createMachine({
      name: `orphan-${other.slice(0, 8)}`,
      region: 'ams',
      config: { image: TEST_IMAGE, metadata: { user_id: other, workflow_id: machineWorkflowId(other) } },
    });

    const young = JSON.parse((await ops('reconcile', '--dry-run', '--json')).stdout);
    expect(young).toMatchObject({ dryRun: true, minMachineAgeSeconds: 600, plan: { destroy: [] } });

    const dry = await ops('reconcile', '--dry-run', '--min-age', '0s', '--json');
    expect(dry).toMatchObject({ code: 0, stderr: '' });
    const { plan, seen } = JSON.parse(dry.stdout);
    expect(plan).toEqual({
      destroy: [{ machineId: orphan.id, userId: other, kind: 'orphan' }],
      repair: [],
      signal: [],
      nudge: [],
    });
    expect(seen).toEqual({ machines: 2, workflows: 1, rows: 1 });
    expect((await liveMachinesOf(h.stack.fly, other)).map((m) => m.id)).toEqual([orphan.id]);
    expect((await ops('reconcile', '--dry-run', '--min-age', '0s')).stdout).toMatch(
      new RegExp(
        `^dry run \\(nothing done\\).*\\nACTION .*\\ndestroy +${orphan.id} +${other} +orphan: no running workflow\\n$`,
      ),
    );

    const run = await ops('reconcile', '--min-age', '0s');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(new RegExp(`destroyed +${orphan.id} +${other} +orphan: destroyed`));
    expect(await liveMachinesOf(h.stack.fly, other)).toEqual([]);
    expect(await liveMachinesOf(h.stack.fly, userId)).toHaveLength(1);
  });

  test('stop: the stop update with requestedBy operator, waits until stopped; again: nothing to stop', async () => {
    const r = await ops('stop', userId, '--reason', 'maintenance');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain(`${machineWorkflowId(userId)}: stopped (operator: maintenance)`);
    expect(await liveMachinesOf(h.stack.fly, userId)).toEqual([]);
    expect(await h.stack.db.store.getMachine(userId)).toMatchObject({ status: 'stopped' });
    expect((await h.eventsOf(userId)).at(-1)).toEqual(['stopped', 'operator: maintenance']);

    expect(await ops('stop', userId)).toEqual({
      code: 0,
      stdout: `no machine workflow running for user ${userId} (last run completed): nothing to stop\n`,
      stderr: '',
    });
    await untilValue(
      'visibility to drop the finished workflow',
      async () => (await listed()).find((m) => m.userId === userId),
      (m) => m?.source === 'row' && m.state === 'stopped',
    );
  });

  test('force-stop: needs a reason; terminates, destroys, records; a second one has nothing to do', async () => {
    const { user, handle, machineId: id } = await runningMachine();
    expect(await ops('force-stop', user)).toMatchObject({ code: 2, stderr: expect.stringContaining('needs --reason') });

    const r = await ops('force-stop', user, '--reason', 'stuck worker');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain(`terminated ${machineWorkflowId(user)}`);
    expect(r.stdout).toContain(`Fly machine ${id}: destroyed`);
    expect((await handle.describe()).status.name).toBe('TERMINATED');
    expect(await liveMachinesOf(h.stack.fly, user)).toEqual([]);
    expect(await h.stack.db.store.getMachine(user)).toMatchObject({ status: 'stopped' });
    const events = await h.eventsOf(user);
    expect(events.at(-1)).toEqual(['stopped', 'operator: force-stop: stuck worker']);

    const again = await ops('force-stop', user, '--reason', 'stuck worker');
    expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining('nothing to force-stop') });
    expect(await h.eventsOf(user)).toEqual(events);
  });
});
