import { effectiveTier, entitlement } from '../common/entitlement';
import { machineWorkflowId } from '../workflows/contract';
import type { CommandOf } from './args';
import { filterMachines, joinMachines } from './fleet';
import { flyMachineView, renderMachines, renderShow, type ShowView } from './render';
import { OpsError, describeError, type OpsDeps } from './context';
import { describeWorkflow, flyMachinesOf, listRunningWorkflows, queryStatus } from './sources';
import { toJson } from './table';

/** The read-only commands: `machines` and `show`. */

/** `machines`: running workflows (visibility) joined with the rows; the tier from billing where no workflow says. */
export async function machines(c: CommandOf<'machines'>, deps: OpsDeps): Promise<void> {
  const rows = await deps.store.listMachines();
  const workflows = await listRunningWorkflows(deps.temporal, deps.taskQueue);
  const users = [...new Set([...rows.map((r) => r.userId), ...workflows.map((w) => w.userId)])];
  const billing = users.length ? await deps.store.listBillingFacts(users) : new Map();
  const tiers = new Map([...billing].map(([userId, facts]) => [userId, effectiveTier(facts).tier]));
  const list = filterMachines(joinMachines(rows, workflows, tiers), c);
  deps.out(c.json ? toJson(list) : renderMachines(list, deps.now?.() ?? Date.now()));
}

/** `show`: the workflow's status (or the row), the recent events, the Fly machines, billing. */
export async function show(c: CommandOf<'show'>, deps: OpsDeps): Promise<void> {
  const now = deps.now?.() ?? Date.now();
  const workflowId = machineWorkflowId(c.userId);
  const workflow = await describeWorkflow(deps.temporal, workflowId);
  const answer = workflow?.status === 'RUNNING' ? await queryStatus(deps.temporal, workflowId) : null;
  const row = await deps.store.getMachine(c.userId);
  if (!workflow && !row)
    throw new OpsError(`no machine workflow for user ${c.userId} (${workflowId}), and no cloud_machines row`);
  const events = (await deps.store.listMachineEvents(c.userId, { limit: 20 })).reverse();
  let flyError: string | null = null;
  const flyMachines = await flyMachinesOf(deps.fly, c.userId, answer?.status?.machineId ?? row?.machineId).catch(
    (err: unknown) => {
      flyError = describeError(err);
      return [];
    },
  );
  const facts = await deps.store.getBillingFacts(c.userId);
  const view: ShowView = {
    userId: c.userId,
    workflow,
    source: answer?.status ? 'workflow' : 'row',
    status: answer?.status ?? null,
    statusError: answer?.error ?? null,
    row,
    events,
    flyMachines: flyMachines.map(flyMachineView),
    flyError,
    billing: { facts, entitlement: entitlement(facts, now) },
  };
  deps.out(c.json ? toJson(view) : `${renderShow(view, now)}\n`);
}
