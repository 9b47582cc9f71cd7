import {
  ROLLOUT_DEFAULTS,
  type ImageRolloutRequest,
  type RollImageResult,
  type RolloutMachine,
  type RolloutState,
  type RolloutStatus,
} from './contract';

/*
 * What imageRollout decides, as pure functions over its state (workflows/image-rollout.ts carries them out,
 * rollout-plan.unit.test.ts checks them as inputs → outputs): which listed machines to update and in what
 * order, the next batch, what a batch's answers do to the counts, when to pause, and when it is done.
 */

/** Failures kept for the report (the counts are always whole). */
export const MAX_FAILURES_KEPT = 50;

/** Why a listed machine is left alone, or undefined when it is to be updated. */
export function skipReason(m: RolloutMachine, image: string): string | undefined {
  // A status that did not answer (null) is not a reason to skip: the machine workflow decides when asked.
  if (m.state !== null && m.state !== 'running') return `not running (${m.state})`;
  if (m.image === image) return `already on ${image}`;
  return undefined;
}

/** The rollout's start: every running machine on another image is pending, in workflow-id order; the rest skipped. */
export function planRollout(req: ImageRolloutRequest, listed: RolloutMachine[]): RolloutState {
  const batchSize = Math.max(1, Math.floor(req.batchSize ?? ROLLOUT_DEFAULTS.batchSize));
  const maxFailures = Math.max(1, Math.floor(req.maxFailures ?? ROLLOUT_DEFAULTS.maxFailures));
  const unique = [...new Map(listed.map((m) => [m.workflowId, m])).values()].sort((a, b) =>
    a.workflowId < b.workflowId ? -1 : a.workflowId > b.workflowId ? 1 : 0,
  );
  const pending = unique.filter((m) => skipReason(m, req.image) === undefined);
  return {
    image: req.image,
    batchSize,
    maxFailures,
    total: unique.length,
    updated: 0,
    rolledBack: 0,
    failed: 0,
    skipped: unique.length - pending.length,
    pending,
    failures: [],
    paused: false,
    pausedBy: null,
    failuresAtResume: 0,
  };
}

export const isDone = (st: RolloutState) => st.pending.length === 0;
const failuresOf = (st: RolloutState) => st.rolledBack + st.failed;

/** The machines to update now: none while paused or done, else the next `batchSize` pending ones. */
export function nextBatch(st: RolloutState): RolloutMachine[] {
  return st.paused ? [] : st.pending.slice(0, st.batchSize);
}

/**
 * A batch's answers (one per machine, same order): counted, failures kept, the machines no longer pending.
 * Then the pause rule: `maxFailures` failures since the start (or the last resume) pause the rollout, unless
 * nothing is left to do.
 */
export function applyResults(st: RolloutState, batch: RolloutMachine[], results: RollImageResult[]): RolloutState {
  const next: RolloutState = { ...st, failures: [...st.failures] };
  const answered = new Set<string>();
  batch.forEach((m, i) => {
    const r = results[i];
    if (!r) return; // no answer: it stays pending
    answered.add(m.workflowId);
    if (r.outcome === 'updated') next.updated++;
    else if (r.outcome === 'skipped') next.skipped++;
    else {
      if (r.outcome === 'rolled_back') next.rolledBack++;
      else next.failed++;
      next.failures.push({ workflowId: m.workflowId, machineId: m.machineId, outcome: r.outcome, detail: r.detail });
    }
  });
  next.failures = next.failures.slice(-MAX_FAILURES_KEPT);
  next.pending = st.pending.filter((m) => !answered.has(m.workflowId));
  if (!isDone(next) && failuresOf(next) - next.failuresAtResume >= next.maxFailures)
    return { ...next, paused: true, pausedBy: 'failures' };
  return next;
}

/** An operator's pause: takes effect after the batch in flight. A done rollout has nothing to pause. */
export function pause(st: RolloutState): RolloutState {
  if (isDone(st) || st.paused) return st;
  return { ...st, paused: true, pausedBy: 'operator' };
}

/** Go on; the failure budget counts again from here (else the first answer would pause it at once). */
export function resume(st: RolloutState): RolloutState {
  if (!st.paused) return st;
  return { ...st, paused: false, pausedBy: null, failuresAtResume: failuresOf(st) };
}

/** The status query's answer and the final report. */
export function rolloutStatusOf(st: RolloutState): RolloutStatus {
  return {
    image: st.image,
    total: st.total,
    updated: st.updated,
    rolledBack: st.rolledBack,
    failed: st.failed,
    skipped: st.skipped,
    pending: st.pending.length,
    paused: st.paused,
    pausedBy: st.pausedBy,
    done: isDone(st),
    failures: st.failures,
  };
}

/** One line for the Temporal UI's current details. */
export function rolloutSummary(s: RolloutStatus): string {
  const counts =
    `${s.updated}/${s.total} updated, ${s.rolledBack} rolled back, ${s.failed} failed, ` +
    `${s.skipped} skipped, ${s.pending} pending`;
  const failures = s.rolledBack + s.failed;
  const state = s.done
    ? 'done'
    : s.paused
      ? `paused ${s.pausedBy === 'failures' ? `after ${failures} failure${failures === 1 ? '' : 's'}` : 'by an operator'}: signal resumeRollout to go on`
      : 'in progress';
  const last = s.failures[s.failures.length - 1];
  return `rollout of ${s.image}: ${counts} · ${state}${last ? ` · last failure ${last.workflowId}: ${last.detail}` : ''}`;
}

/**
 * The id of one machine's rollImage update: the same on every retry of the activity that sends it (Temporal
 * deduplicates updates by id within a run), different for another rollout of the same image.
 */
export const rollUpdateId = (rolloutRunId: string, machineWorkflowId: string) =>
  `rollout-${rolloutRunId}-${machineWorkflowId}`;
