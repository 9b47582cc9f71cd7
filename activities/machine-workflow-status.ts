import { log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { FlyMachineIdSearchAttribute, MachineStateSearchAttribute } from '../common/search-attributes';
import { machineWorkflowId, statusQuery } from '../workflows/contract';
import type { FleetWorkflow } from '../workflows/reconcile-plan';

/**
 * A machine workflow's status as reconcile reads it: by describe (its search attributes, consistent with the
 * workflow and, unlike a query, not a billed action) and, only where that cannot say enough, by its status query.
 */
export function machineWorkflowStatus(client: () => Client) {
  /**
   * The status by a query (a billed action: only for a workflow its row and visibility disagree about), or null
   * when no worker answers within a few seconds (then nothing is done for that user).
   */
  async function queryStatus(workflowId: string): Promise<FleetWorkflow['status']> {
    const c = client();
    try {
      const s = await c.connection.withDeadline(Date.now() + 5000, () =>
        c.workflow.getHandle(workflowId).query(statusQuery),
      );
      return { state: s.state, machineId: s.machineId, since: s.since };
    } catch (err) {
      log.warn('reconcile: status query failed', { workflowId, error: String(err) });
      return null;
    }
  }

  /** Whether a machine workflow runs for the user now (how its last run ended otherwise), its state and machine. */
  async function describeWorkflow(userId: string): Promise<{ status: string; state?: string; machineId?: string }> {
    try {
      const d = await client().workflow.getHandle(machineWorkflowId(userId)).describe();
      const [state, machineId] = [MachineStateSearchAttribute, FlyMachineIdSearchAttribute].map(
        (key) => d.typedSearchAttributes.get(key) ?? undefined,
      );
      return { status: d.status.name, state, machineId };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { status: 'NONE' };
      throw err;
    }
  }

  /** A running workflow's state and machine as its search attributes say (null: none runs, or it has no state yet). */
  const describedStatus = (d: Awaited<ReturnType<typeof describeWorkflow>>) =>
    d.status === 'RUNNING' && d.state ? { state: d.state, machineId: d.machineId ?? null } : null;

  return { queryStatus, describeWorkflow, describedStatus };
}
