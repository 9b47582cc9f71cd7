import { Worker } from '@temporalio/worker';
import { connectToTestServer, createTimeSkippingEnv, uniqueId } from './temporal';
import { greeting, monthLongSleep } from './fixtures/smoke-workflows';

export const createSmokeActivities = (prefix: string) => ({
  async greet(name: string) {
    return `${prefix}, ${name}`;
  },
});

const workflowsPath = require.resolve('./fixtures/smoke-workflows');

describe('the test harness', () => {
  test('runs a workflow and an activity through the real Temporal dev server', async () => {
    const server = await connectToTestServer();
    try {
      const taskQueue = uniqueId('smoke');
      const worker = await Worker.create({
        connection: server.nativeConnection,
        taskQueue,
        workflowsPath,
        activities: createSmokeActivities('Hello'),
      });
      const result = await worker.runUntil(
        server.client.workflow.execute(greeting, { taskQueue, workflowId: uniqueId('greeting'), args: ['Temporal'] }),
      );
      expect(result).toBe('Hello, Temporal');
    } finally {
      await server.close();
    }
  });

  test('has the machine search attributes registered on the dev server', async () => {
    const server = await connectToTestServer();
    try {
      const { customAttributes } = await server.connection.operatorService.listSearchAttributes({
        namespace: 'default',
      });
      expect(Object.keys(customAttributes ?? {})).toEqual(
        expect.arrayContaining(['UserId', 'MachineState', 'Tier', 'Region', 'FlyMachineId']),
      );
    } finally {
      await server.close();
    }
  });

  test('sleeps 30 simulated days on the time-skipping server without waiting for them', async () => {
    const env = await createTimeSkippingEnv();
    try {
      const taskQueue = uniqueId('skip');
      const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath });
      const slept = await worker.runUntil(
        env.client.workflow.execute(monthLongSleep, { taskQueue, workflowId: uniqueId('sleep') }),
      );
      // Workflow time moved 30 days; the test's own timeout (60 s) proves the wall clock did not.
      expect(slept).toBeGreaterThanOrEqual(30 * 24 * 3600 * 1000);
    } finally {
      await env.teardown();
    }
  });
});
