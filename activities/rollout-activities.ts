import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { rollImageUpdate, type RollImageResult, type RolloutMachine } from '../workflows/contract';
import { isGone } from '../fly/machines';
import { flyCall } from './fly-failures';
import { whileHeartbeating } from './heartbeat';
import { createReconcileActivities, type ReconcileDeps } from './reconcile-activities';

/*
 * The Node side of imageRollout (workflows/image-rollout.ts): the listing (running machine workflows from
 * visibility with their status, and the image each one's Fly machine runs) and the one action, asking a
 * machine workflow to move its machine (the rollImage update). The rollout never touches a machine itself:
 * the workflow that owns it does, between its renewals.
 */

const skipped = (detail: string): RollImageResult => ({ outcome: 'skipped', detail, image: null });

export const createRolloutActivities = (deps: ReconcileDeps) => {
  const reconcile = createReconcileActivities(deps);
  const temporal = () => {
    if (!deps.temporal)
      throw ApplicationFailure.nonRetryable(
        'rollout activities need a Temporal client: the worker wires it (worker/create-worker.ts)',
        'RolloutNotWired',
      );
    return deps.temporal;
  };

  return {
    /** Running machineLifecycle workflows of this task queue, each with its state, machine and that machine's image. */
    async listRolloutMachines(): Promise<RolloutMachine[]> {
      temporal();
      const workflows = await reconcile.listMachineWorkflows();
      // Listed after the workflows: a machine made since is on the worker's image already, or is found missing.
      const images = new Map(
        (await flyCall(() => deps.fly.listMachines({})))
          .filter((m) => m.id && !isGone(m))
          .map((m) => [m.id!, m.config?.image ?? null] as const),
      );
      return workflows.map((w) => {
        const machineId = w.status?.machineId ?? w.searchAttributes.machineId;
        return {
          workflowId: w.workflowId,
          userId: w.userId,
          state: w.status?.state ?? null,
          machineId,
          image: machineId ? (images.get(machineId) ?? null) : null,
        };
      });
    },

    /**
     * Asks one machine workflow to move to `image` and waits for its answer (heartbeating). The update id is the
     * same on every retry, so Temporal runs it once per run; a workflow that has ended is skipped.
     */
    async rollMachineImage(input: { workflowId: string; image: string; updateId: string }): Promise<RollImageResult> {
      const { client } = temporal();
      const handle = client.workflow.getHandle(input.workflowId);
      try {
        return await whileHeartbeating(
          () => handle.executeUpdate(rollImageUpdate, { args: [{ image: input.image }], updateId: input.updateId }),
          { rolling: input.workflowId },
        );
      } catch (err) {
        if (err instanceof CancelledFailure) throw err;
        if (err instanceof WorkflowNotFoundError) return skipped('the machine workflow has ended');
        if (err instanceof WorkflowUpdateFailedError)
          // Refused by its validator: the run is ending (the next attempt reaches the next run, or none).
          throw ApplicationFailure.retryable(
            `rollImage refused: ${err.cause instanceof Error ? err.cause.message : err.message}`,
            'RollImageRefused',
          );
        const status = await handle.describe().then(
          (d) => d.status.name,
          () => undefined,
        );
        if (status && status !== 'RUNNING') return skipped(`the machine workflow is ${status.toLowerCase()}`);
        throw err;
      }
    },
  };
};
