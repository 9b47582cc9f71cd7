import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { createActivities } from '../activities';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { machineLifecycle } from '../workflows/machine-lifecycle';
import { machineWorkflowId, type LifecycleSettings, type MachineState } from '../workflows/contract';
import { createMachineStack, TEST_IMAGE, TEST_JWT_SECRET, type MachineStack } from './machine-stack';
import { connectToTestServer, quietBundlerLogger, uniqueId } from './temporal';
import { untilStatus } from './kit/workflow-status';

export interface LifecycleHarness {
  readonly server: Awaited<ReturnType<typeof connectToTestServer>>;
  readonly stack: MachineStack;
  readonly taskQueue: string;
  /** Starts (or joins, USE_EXISTING) the user's machine workflow on this harness's worker. */
  start(
    userId: string,
    settings?: Partial<LifecycleSettings>,
  ): Promise<WorkflowHandleWithFirstExecutionRunId<typeof machineLifecycle>>;
  waitForState(handle: WorkflowHandle, state: MachineState, timeoutMs?: number): ReturnType<typeof untilStatus>;
  /** The user's audit trail, oldest first: [toStatus, reason]. */
  eventsOf(userId: string): Promise<(string | null)[][]>;
}

/**
 * A real worker on the run's dev server, with its own task queue, over a machine stack (Postgres
 * database, fly-local with real processes): set up in beforeAll and torn down in afterAll of the
 * calling test file. `reconcile: true` wires reconcileFleet's activities to the test's client too.
 */
export function useLifecycleWorker(
  opts: {
    prefix?: string;
    machineEnv?: Record<string, string>;
    reconcile?: boolean;
    defaults?: Partial<LifecycleSettings>;
  } = {},
): LifecycleHarness {
  const taskQueue = uniqueId(opts.prefix ?? 'machines');
  let server: LifecycleHarness['server'] | undefined;
  let stack: MachineStack | undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const ready = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`the lifecycle harness has no ${what}: used outside a test?`);
    return v;
  };

  beforeAll(async () => {
    server = await connectToTestServer();
    stack = await createMachineStack({ machineEnv: opts.machineEnv });
    const activities = opts.reconcile
      ? createActivities({
          fly: stack.fly,
          store: stack.db.store,
          image: TEST_IMAGE,
          jwtSecret: TEST_JWT_SECRET,
          runtimeEnv: { BINANCE_WS_URL: 'ws://127.0.0.1:9', BINANCE_REST_URL: 'http://127.0.0.1:9' },
          credentialTtlSeconds: 3600,
          temporal: { client: server.client, taskQueue },
        })
      : stack.activities;
    worker = await createMachineWorker({
      connection: server.nativeConnection,
      taskQueue,
      activities,
      workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }),
    });
    running = worker.run();
  });
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await stack?.close();
    await server?.close();
  });

  return {
    get server() {
      return ready(server, 'Temporal connection');
    },
    get stack() {
      return ready(stack, 'machine stack');
    },
    taskQueue,
    start: (userId, settings = opts.defaults ?? {}) =>
      ready(server, 'Temporal connection').client.workflow.start(machineLifecycle, {
        taskQueue,
        workflowId: machineWorkflowId(userId),
        args: [{ userId, region: 'ams', cpuPriority: 'low', settings }],
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
    waitForState: (handle, state, timeoutMs = 60_000) =>
      untilStatus(handle, `the workflow to reach ${state}`, (s) => s.state === state, timeoutMs),
    eventsOf: async (userId) =>
      (await ready(stack, 'machine stack').db.store.listMachineEvents(userId))
        .reverse()
        .map((e) => [e.toStatus, e.reason]),
  };
}
