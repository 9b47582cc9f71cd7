import { bundleWorkflowCode } from '@temporalio/worker';
import { createMachineStack, type MachineStack } from '../test/machine-stack';
import { connectToTestServer, quietBundlerLogger, uniqueId } from '../test/temporal';
import { until } from '../test/kit/wait';
import { machineLifecycle } from '../workflows/machine-lifecycle';
import { machineWorkflowId } from '../workflows/contract';
import { createMachineWorker, workflowsPath } from './create-worker';
import { workerDeploymentOptions } from './versioning';

jest.setTimeout(120_000);

// Worker Versioning on the run's dev server: a versioned worker takes its deployment's tasks only once
// its version is current, and machine workflows run AUTO_UPGRADE (worker/README.md, "Versions").
describe('Worker Versioning: build id = commit, AUTO_UPGRADE', () => {
  let server: Awaited<ReturnType<typeof connectToTestServer>>;
  let stack: MachineStack;
  beforeAll(async () => {
    server = await connectToTestServer();
    stack = await createMachineStack();
  });
  afterAll(async () => {
    await stack?.close();
    await server?.close();
  });

  test('the options say what the worker joins; unset means unversioned', () => {
    expect(workerDeploymentOptions({})).toBeUndefined();
    expect(workerDeploymentOptions({ WORKER_DEPLOYMENT_NAME: 'ce', WORKER_BUILD_ID: 'abc123' })).toEqual({
      version: { deploymentName: 'ce', buildId: 'abc123' },
      useWorkerVersioning: true,
      defaultVersioningBehavior: 'AUTO_UPGRADE',
    });
    expect(() => workerDeploymentOptions({ WORKER_DEPLOYMENT_NAME: 'ce' })).toThrow(/WORKER_BUILD_ID/);
  });

  test('a workflow waits for its deployment’s current version, then runs on it, AUTO_UPGRADE', async () => {
    const taskQueue = uniqueId('versioned');
    const deploymentName = uniqueId('ce');
    const buildId = 'commit-1';
    const worker = await createMachineWorker({
      connection: server.nativeConnection,
      taskQueue,
      activities: stack.activities,
      workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }),
      workerDeploymentOptions: workerDeploymentOptions({
        WORKER_DEPLOYMENT_NAME: deploymentName,
        WORKER_BUILD_ID: buildId,
      }),
    });
    const running = worker.run();
    try {
      const namespace = 'default';
      const service = server.client.workflowService;
      // The version exists once the worker has polled; then an operator makes it current.
      await until('the worker’s version to be registered', async () =>
        service
          .describeWorkerDeployment({ namespace, deploymentName })
          .then((d) =>
            (d.workerDeploymentInfo?.versionSummaries ?? []).some((v) => v.deploymentVersion?.buildId === buildId),
          )
          .catch(() => false),
      );
      await service.setWorkerDeploymentCurrentVersion({ namespace, deploymentName, buildId });

      // A user who may not have a machine: the workflow ends at its entitlement check, on this version.
      const userId = await stack.db.createUser('free');
      const handle = await server.client.workflow.start(machineLifecycle, {
        taskQueue,
        workflowId: machineWorkflowId(userId),
        args: [{ userId, region: 'ams', cpuPriority: 'low' }],
      });
      await handle.result();
      const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
      expect(info?.deploymentVersion).toMatchObject({ deploymentName, buildId });
      expect(info?.behavior).toBe(2); // VERSIONING_BEHAVIOR_AUTO_UPGRADE
    } finally {
      worker.shutdown();
      await running;
    }
  });
});
