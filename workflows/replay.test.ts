import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../worker/create-worker';
import { committedHistories } from '../test/kit/histories';

/**
 * Histories of real runs (recorded by `npm run histories:record`) must replay on today's workflow
 * code: a change that is not deterministic for workflows already running fails here, not in production.
 */
describe('replay of committed machineLifecycle histories', () => {
  test('every committed history replays without a non-determinism error', async () => {
    const histories = committedHistories();
    expect(histories.length).toBeGreaterThanOrEqual(4);
    const results = Worker.runReplayHistories({ workflowsPath, replayName: 'committed-histories' }, histories);
    let replayed = 0;
    for await (const result of results) {
      expect({ workflowId: result.workflowId, error: result.error?.message }).toEqual({
        workflowId: result.workflowId,
        error: undefined,
      });
      replayed++;
    }
    expect(replayed).toBe(histories.length);
  });
});
