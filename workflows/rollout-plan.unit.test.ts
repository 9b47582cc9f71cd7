import type { RollImageResult, RolloutMachine } from './contract';
import { imageRolloutWorkflowId } from './contract';
import {
  applyResults,
  isDone,
  MAX_FAILURES_KEPT,
  nextBatch,
  pause,
  planRollout,
  resume,
  rolloutStatusOf,
  rolloutSummary,
  rollUpdateId,
  skipReason,
} from './rollout-plan';

/** imageRollout's decisions as inputs → outputs (no server), the way planReconcile is tested. */

const V1 = 'registry.fly.io/runtime:v1';
const V2 = 'registry.fly.io/runtime:v2';
const m = (n: number, over: Partial<RolloutMachine> = {}): RolloutMachine => ({
  workflowId: `machine-u${n}`,
  userId: `u${n}`,
  state: 'running',
  machineId: `m${n}`,
  image: V1,
  ...over,
});
const answer = (outcome: RollImageResult['outcome'], detail: string = outcome): RollImageResult => ({
  outcome,
  detail,
  image: null,
});

describe('planRollout: which machines, in what order', () => {
  test('running machines on another image are pending, in workflow-id order; the rest are skipped', () => {
    const st = planRollout({ image: V2 }, [
      m(3),
      m(1),
      m(2, { image: V2 }),
      m(4, { state: 'starting' }),
      m(5, { state: null }), // its status did not answer: the machine workflow decides
      m(6, { image: null }), // no Fly machine in the listing: the same
      m(1), // listed twice: one machine
    ]);
    expect(st.pending.map((x) => x.workflowId)).toEqual(['machine-u1', 'machine-u3', 'machine-u5', 'machine-u6']);
    expect(rolloutStatusOf(st)).toEqual({
      image: V2,
      total: 6,
      updated: 0,
      rolledBack: 0,
      failed: 0,
      skipped: 2,
      pending: 4,
      paused: false,
      pausedBy: null,
      done: false,
      failures: [],
    });
  });

  test('why a machine is left alone', () => {
    expect(skipReason(m(1, { state: 'stopping' }), V2)).toBe('not running (stopping)');
    expect(skipReason(m(1, { image: V2 }), V2)).toBe(`already on ${V2}`);
    expect(skipReason(m(1), V2)).toBeUndefined();
  });

  test('defaults: batches of 3, pause after 1 failure; nonsense is clamped to at least 1', () => {
    expect(planRollout({ image: V2 }, [])).toMatchObject({ batchSize: 3, maxFailures: 1 });
    expect(planRollout({ image: V2, batchSize: 0, maxFailures: -2 }, [])).toMatchObject({
      batchSize: 1,
      maxFailures: 1,
    });
  });

  test('nothing to do is done at once', () => {
    const st = planRollout({ image: V2 }, [m(1, { image: V2 })]);
    expect(isDone(st)).toBe(true);
    expect(nextBatch(st)).toEqual([]);
  });
});

describe('batches, answers, the pause rule', () => {
  const five = () =>
    planRollout(
      { image: V2, batchSize: 2, maxFailures: 2 },
      [1, 2, 3, 4, 5].map((n) => m(n)),
    );

  test('batches of batchSize, one after the other, until done', () => {
    let st = five();
    const seen: string[][] = [];
    while (!isDone(st)) {
      const batch = nextBatch(st);
      seen.push(batch.map((x) => x.userId));
      st = applyResults(
        st,
        batch,
        batch.map(() => answer('updated')),
      );
    }
    expect(seen).toEqual([['u1', 'u2'], ['u3', 'u4'], ['u5']]);
    expect(rolloutStatusOf(st)).toMatchObject({ updated: 5, pending: 0, done: true, paused: false });
  });

  test('what counts as done: every pending machine answered, whatever the answer', () => {
    const st = planRollout(
      { image: V2, batchSize: 3, maxFailures: 5 },
      [1, 2, 3].map((n) => m(n)),
    );
    const after = applyResults(st, nextBatch(st), [answer('updated'), answer('skipped'), answer('rolled_back')]);
    expect(rolloutStatusOf(after)).toMatchObject({ updated: 1, skipped: 1, rolledBack: 1, pending: 0, done: true });
  });

  test('a machine without an answer stays pending', () => {
    const st = five();
    const after = applyResults(st, nextBatch(st), [answer('updated')]);
    expect(after.pending.map((x) => x.userId)).toEqual(['u2', 'u3', 'u4', 'u5']);
  });

  test('maxFailures failures (rolled back or worse) pause it, with the failures in the report', () => {
    let st = five();
    st = applyResults(st, nextBatch(st), [answer('rolled_back', 'unhealthy: feed disconnected'), answer('updated')]);
    expect(st.paused).toBe(false); // one failure of two allowed
    st = applyResults(st, nextBatch(st), [answer('updated'), answer('failed', 'rollback failed too')]);
    expect(rolloutStatusOf(st)).toMatchObject({
      updated: 2,
      rolledBack: 1,
      failed: 1,
      pending: 1,
      paused: true,
      pausedBy: 'failures',
    });
    expect(st.failures).toEqual([
      { workflowId: 'machine-u1', machineId: 'm1', outcome: 'rolled_back', detail: 'unhealthy: feed disconnected' },
      { workflowId: 'machine-u4', machineId: 'm4', outcome: 'failed', detail: 'rollback failed too' },
    ]);
    expect(nextBatch(st)).toEqual([]);
  });

  test('resume: the failure budget counts again from there (not paused again at the next answer)', () => {
    let st = planRollout(
      { image: V2, batchSize: 1, maxFailures: 1 },
      [1, 2, 3, 4].map((n) => m(n)),
    );
    st = applyResults(st, nextBatch(st), [answer('rolled_back')]);
    expect(st).toMatchObject({ paused: true, pausedBy: 'failures' });
    st = resume(st);
    expect(st).toMatchObject({ paused: false, pausedBy: null, failuresAtResume: 1 });
    st = applyResults(st, nextBatch(st), [answer('updated')]);
    expect(st.paused).toBe(false);
    st = applyResults(st, nextBatch(st), [answer('rolled_back')]);
    expect(st).toMatchObject({ paused: true, pausedBy: 'failures' });
  });

  test('failures on the last batch do not pause: nothing is left, the report says it', () => {
    const st = planRollout(
      { image: V2, batchSize: 2, maxFailures: 1 },
      [1, 2].map((n) => m(n)),
    );
    const after = applyResults(st, nextBatch(st), [answer('rolled_back'), answer('rolled_back')]);
    expect(rolloutStatusOf(after)).toMatchObject({ rolledBack: 2, done: true, paused: false });
  });

  test('an operator pause holds the next batch; pausing a done rollout or twice changes nothing', () => {
    const st = pause(five());
    expect(st).toMatchObject({ paused: true, pausedBy: 'operator' });
    expect(nextBatch(st)).toEqual([]);
    expect(pause(st)).toBe(st);
    const done = planRollout({ image: V2 }, []);
    expect(pause(done)).toBe(done);
    expect(resume(done)).toBe(done);
    expect(nextBatch(resume(st)).map((x) => x.userId)).toEqual(['u1', 'u2']);
  });

  test('answers that arrive while paused by an operator are counted; the pause holds', () => {
    let st = five();
    const batch = nextBatch(st);
    st = pause(st);
    st = applyResults(st, batch, [answer('updated'), answer('updated')]);
    expect(st).toMatchObject({ updated: 2, paused: true, pausedBy: 'operator' });
  });

  test('the failures kept are bounded; the counts are not', () => {
    const many = Array.from({ length: MAX_FAILURES_KEPT + 10 }, (_, i) => m(i));
    let st = planRollout({ image: V2, batchSize: many.length, maxFailures: 1000 }, many);
    st = applyResults(
      st,
      nextBatch(st),
      many.map(() => answer('rolled_back')),
    );
    expect(st.rolledBack).toBe(many.length);
    expect(st.failures).toHaveLength(MAX_FAILURES_KEPT);
  });
});

describe('what operators read, and the ids', () => {
  test('the one-line summary', () => {
    let st = planRollout({ image: V2, batchSize: 1 }, [m(1), m(2), m(3, { image: V2 })]);
    expect(rolloutSummary(rolloutStatusOf(st))).toBe(
      `rollout of ${V2}: 0/3 updated, 0 rolled back, 0 failed, 1 skipped, 2 pending · in progress`,
    );
    st = applyResults(st, nextBatch(st), [answer('rolled_back', 'runtime did not become healthy')]);
    expect(rolloutSummary(rolloutStatusOf(st))).toBe(
      `rollout of ${V2}: 0/3 updated, 1 rolled back, 0 failed, 1 skipped, 1 pending · paused after 1 failure: ` +
        'signal resumeRollout to go on · last failure machine-u1: runtime did not become healthy',
    );
  });

  test('one workflow id per image (sanitized); one update id per rollout run and machine', () => {
    expect(imageRolloutWorkflowId('registry.fly.io/cloud-execution-runtime:v2')).toBe(
      'image-rollout-registry.fly.io-cloud-execution-runtime-v2',
    );
    expect(imageRolloutWorkflowId(V2)).toBe(imageRolloutWorkflowId(V2));
    expect(rollUpdateId('run-1', 'machine-u1')).toBe('rollout-run-1-machine-u1');
    expect(rollUpdateId('run-2', 'machine-u1')).not.toBe(rollUpdateId('run-1', 'machine-u1'));
  });
});
