import {
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { failureReason } from './lifecycle-steps';
import {
  applyResults,
  isDone,
  nextBatch,
  pause,
  planRollout,
  resume,
  rolloutStatusOf,
  rolloutSummary,
  rollUpdateId,
} from './rollout-plan';
import {
  pauseRolloutSignal,
  resumeRolloutSignal,
  rolloutStatusQuery,
  type ImageRolloutInput,
  type RollImageResult,
  type RolloutState,
  type RolloutStatus,
} from './contract';

const list = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});
/**
 * One machine's move: its workflow may first finish a renewal, then update, wait for started and healthy, and
 * perhaps roll back and self-heal: minutes, with a heartbeat every few seconds while it waits for the answer.
 */
const ask = proxyActivities<Activities>({
  startToCloseTimeout: '45 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['RolloutNotWired'],
  },
});

/**
 * Moves every running machine to a new runtime image, `batchSize` at a time (docs/operations.md, "Rolling out
 * an image"). The rollout never touches a machine: it asks each machine's own workflow (the rollImage update),
 * which updates it between renewals, checks it is healthy and rolls it back if not. Each batch is answered
 * before the next starts; `maxFailures` failed machines pause the rollout (signal resumeRollout to go on).
 * Id `image-rollout-<image>`: starting it twice is one rollout. Its result is the report.
 */
export async function imageRollout(input: ImageRolloutInput): Promise<RolloutStatus> {
  let st: RolloutState | undefined = input.carried;
  let pausedBeforeListing = false;
  const status = (): RolloutStatus =>
    st
      ? rolloutStatusOf(st)
      : {
          ...rolloutStatusOf(planRollout(input, [])),
          ...{ done: false, paused: pausedBeforeListing, pausedBy: pausedBeforeListing ? 'operator' : null },
        };
  const publish = () =>
    setCurrentDetails(st ? rolloutSummary(status()) : `rollout of ${input.image}: listing machines`);

  setHandler(rolloutStatusQuery, status);
  setHandler(pauseRolloutSignal, () => {
    if (st) st = pause(st);
    else pausedBeforeListing = true;
    publish();
  });
  setHandler(resumeRolloutSignal, () => {
    if (st) st = resume(st);
    else pausedBeforeListing = false;
    publish();
  });

  publish();
  if (!st) {
    st = planRollout(input, await list.listRolloutMachines());
    if (pausedBeforeListing) st = pause(st);
    log.info('rollout planned', { image: st.image, total: st.total, pending: st.pending.length, skipped: st.skipped });
  }
  // Stable across continue-as-new: a retried or repeated ask is the same update for the machine workflow.
  const rolloutRun = workflowInfo().firstExecutionRunId;

  for (;;) {
    publish();
    if (isDone(st)) break;
    if (st.paused) {
      log.warn('rollout paused', { ...status(), failures: st.failures.length });
      await condition(() => !st!.paused);
      continue;
    }
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof imageRollout>({ ...input, carried: st });
    }
    const batch = nextBatch(st);
    const image = st.image;
    const results = await Promise.all(
      batch.map((m) =>
        ask
          .rollMachineImage({ workflowId: m.workflowId, image, updateId: rollUpdateId(rolloutRun, m.workflowId) })
          .catch((err: unknown): RollImageResult => {
            if (isCancellation(err)) throw err;
            return {
              outcome: 'failed',
              detail: `could not ask the machine workflow: ${failureReason(err)}`,
              image: null,
            };
          }),
      ),
    );
    // `st` may have been paused by a signal meanwhile: the answers apply to the state as it is now.
    st = applyResults(st, batch, results);
  }
  const report = status();
  log.info('rollout done', { ...report, failures: report.failures.length });
  return report;
}
