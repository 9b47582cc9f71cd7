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
