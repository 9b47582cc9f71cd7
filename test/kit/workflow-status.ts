import type { WorkflowHandle } from '@temporalio/client';
import { statusQuery, type MachineStatus } from '../../workflows/contract';
import { untilValue, type UntilOptions } from './wait';

/** Polls a machine workflow's status query until `ok` holds; on timeout the error shows the last status. */
export const untilStatus = (
  handle: WorkflowHandle,
  what: string,
  ok: (status: MachineStatus) => boolean,
  opts?: UntilOptions | number,
) => untilValue(what, () => handle.query(statusQuery), ok, opts);

/**
 * What a workflow is doing, in one line for a timeout's error: its execution status, its pending
 * activities (with attempt and last failure) and its status query's state and latest timeline entry.
 */
export async function explainWorkflow(handle: WorkflowHandle): Promise<string> {
  const d = await handle.describe();
  const pending = (d.raw.pendingActivities ?? []).map(
    (a) => `${a.activityType?.name} attempt ${a.attempt}${a.lastFailure ? ` (${a.lastFailure.message})` : ''}`,
  );
  const status = await handle.query(statusQuery).then(
    (s) => `${s.state}${s.reason ? ` (${s.reason})` : ''}, last: ${s.recent.at(-1)?.reason ?? 'nothing'}`,
    (e: unknown) => `query failed: ${String(e)}`,
  );
  return `workflow ${d.status.name}, status ${status}, pending activities: ${pending.join(', ') || 'none'}`;
}
