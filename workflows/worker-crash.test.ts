import type { ChildProcess } from 'node:child_process';
import { machineLifecycle } from './machine-lifecycle';
import { machineWorkflowId, stopUpdate } from './contract';
import {
  createMachineStack,
  liveMachinesOf,
  TEST_FLY_TOKEN,
  TEST_IMAGE,
  TEST_JWT_SECRET,
  type MachineStack,
} from '../test/machine-stack';
import { connectToTestServer, testAddress, uniqueId } from '../test/temporal';
import { until } from '../test/kit/wait';
import { untilStatus } from '../test/kit/workflow-status';
import { killGroup, spawnWorker } from '../test/kit/processes';

jest.setTimeout(180_000);

/** The real worker process (`npm run worker`), pointed at this test's Temporal, fly-local and database. */
const startWorkerProcess = (stack: MachineStack, taskQueue: string): ChildProcess =>
  spawnWorker(
    {
      TEMPORAL_ADDRESS: testAddress(),
      TEMPORAL_TASK_QUEUE: taskQueue,
      FLY_API_URL: stack.flyLocal.url,
      FLY_API_TOKEN: TEST_FLY_TOKEN,
      FLY_APP: 'ce-test',
      FLY_MACHINE_IMAGE: TEST_IMAGE,
      DATABASE_URL: stack.db.url,
      MACHINE_API_URL: 'http://127.0.0.1:9', // the stand-in runtime needs no store
      SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'WARN',
    },
    ['ignore', 'ignore', 'inherit'],
  );

describe('the worker process killed (SIGKILL) mid-provisioning', () => {
  let server: Awaited<ReturnType<typeof connectToTestServer>>;
  let stack: MachineStack;
  const workers: ChildProcess[] = [];

  beforeAll(async () => {
    server = await connectToTestServer();
    stack = await createMachineStack();
  });
  afterAll(async () => {
    for (const w of workers) await killGroup(w, 'SIGKILL');
    await stack?.close();
    await server?.close();
  });

  test('a restarted worker finishes the job: exactly one machine, running', async () => {
    const taskQueue = uniqueId('crash');
    const userId = await stack.db.createUser('elite');
    stack.flyLocal.setFaults({ create: { bootDelayMs: 4000 } }); // a slow boot keeps it mid-provisioning
    const first = startWorkerProcess(stack, taskQueue);
    workers.push(first);
    const handle = await server.client.workflow.start(machineLifecycle, {
      taskQueue,
      workflowId: machineWorkflowId(userId),
      args: [
        {
          userId,
          region: 'ams',
          cpuPriority: 'low',
          settings: { startDeadlineSeconds: 60, healthDeadlineSeconds: 30 },
        },
      ],
    });
    // The machine exists at Fly and the worker is waiting for it to boot: kill the worker now.
    await until('the machine to be created', async () =>
      (await stack.db.store.getMachine(userId))?.status === 'starting' ? true : undefined,
    );
    await killGroup(first, 'SIGKILL');
    expect(await liveMachinesOf(stack.fly, userId)).toHaveLength(1);

    const second = startWorkerProcess(stack, taskQueue);
    workers.push(second);
    const status = await untilStatus(handle, 'running after the restart', (s) => s.state === 'running', 90_000);
    const machines = await liveMachinesOf(stack.fly, userId);
    expect(machines.map((m) => m.id)).toEqual([status.machineId]);
    // The query shows the new state as the workflow records it; the row follows a moment later.
    const row = await until('the row to say running', async () => {
      const r = await stack.db.store.getMachine(userId);
      return r?.status === 'running' ? r : undefined;
    });
    expect(row).toMatchObject({ status: 'running', machineId: status.machineId });
    stack.flyLocal.setFaults({});
    await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });
    expect(await liveMachinesOf(stack.fly, userId)).toEqual([]);
  });
});
