import { WorkflowNotFoundError, type Client, type Connection } from '@temporalio/client';
import type { MachineRow, ServiceStore } from '../store/types';
import { machineWorkflowId, statusQuery, type MachineStatus } from '../workflows/contract';
import type { RestartableFlyLocal } from './processes';

/*
 * What must hold for every user once a trial settles, and how a user is looked at: their workflow
 * (running, with its status, or closed), their live Fly machines and their `cloud_machines` row.
 * Running workflow ↔ exactly one `started` machine, the one its status names, and a `running` row
 * on it; ended workflow ↔ a `stopped`/`error` row; never two live machines; no orphans.
 */

export interface UserView {
  workflow: 'running' | 'closed';
  status: MachineStatus | null;
  closedAs?: string;
  live: { id: string; state: string }[];
  row: MachineRow | null;
}

export interface Observed {
  client: Client;
  connection: Connection;
  flyLocal: RestartableFlyLocal;
  database: { store: ServiceStore };
}

const LIVE = (state: string) => state !== 'destroyed' && state !== 'destroying';
const userOfName = (name: string) => (name.startsWith('ce-') ? name.slice(3) : null);

/** One user as Temporal, fly-local and the store see them now (a describe that fails otherwise counts as running). */
export async function observeUser(world: Observed, userId: string): Promise<UserView> {
  const { client, connection, flyLocal } = world;
  const handle = client.workflow.getHandle(machineWorkflowId(userId));
  let workflow: UserView['workflow'] = 'closed';
  let status: MachineStatus | null = null;
  let closedAs: string | undefined;
  try {
    const d = await connection.withDeadline(Date.now() + 3000, () => handle.describe());
    if (d.status.name === 'RUNNING') {
      workflow = 'running';
      status = await connection.withDeadline(Date.now() + 3000, () => handle.query(statusQuery)).catch(() => null);
    } else {
      closedAs = d.status.name;
    }
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) return { workflow: 'running', status: null, live: [], row: null };
    closedAs = 'NONE';
  }
  const live = flyLocal
    .current()
    .machines()
    .filter((m) => userOfName(m.name) === userId && LIVE(m.state))
    .map((m) => ({ id: m.id, state: m.state }));
  return { workflow, status, closedAs, live, row: await world.database.store.getMachine(userId) };
}

export const settled = (v: UserView) => v.workflow === 'closed' || v.status?.state === 'running';

/** Violations of the invariants for a settled user; orphans (a closed workflow's live machine) are counted apart. */
export function violations(userId: string, v: UserView, withOrphans: boolean): string[] {
  const out: string[] = [];
  const u = userId.slice(0, 8);
  if (v.live.length > 1) out.push(`${u}: ${v.live.length} live machines`);
  if (v.workflow === 'running' && v.status) {
    const [m] = v.live;
    if (v.live.length !== 1 || m!.id !== v.status.machineId || m!.state !== 'started')
      out.push(`${u}: workflow running on ${v.status.machineId}, Fly has ${JSON.stringify(v.live)}`);
    if (v.row?.status !== 'running' || v.row.machineId !== v.status.machineId)
      out.push(`${u}: workflow running on ${v.status.machineId}, row ${v.row?.status}/${v.row?.machineId}`);
  } else if (v.workflow === 'closed') {
    if (v.row && v.row.status !== 'stopped' && v.row.status !== 'error')
      out.push(`${u}: no workflow runs (${v.closedAs}), row says ${v.row.status}`);
    if (withOrphans && v.live.length > 0) out.push(`${u}: orphan machine(s) ${v.live.map((m) => m.id).join(',')}`);
  }
  return out;
}

/** Live machines anywhere in fly-local that no running workflow names as its machine. */
export async function countOrphans(world: Observed): Promise<number> {
  let n = 0;
  for (const m of world.flyLocal.current().machines()) {
    if (!LIVE(m.state)) continue;
    const userId = userOfName(m.name);
    const v = userId ? await observeUser(world, userId) : undefined;
    if (!v || v.workflow !== 'running' || v.status?.machineId !== m.id) n++;
  }
  return n;
}

/** Samples fly-local every 200 ms for machine names with more than one live machine, until stopped. */
export function sampleDuplicates(flyLocal: RestartableFlyLocal): { names: Set<string>; stop(): void } {
  const names = new Set<string>();
  const sampler = setInterval(() => {
    const byUser = new Map<string, number>();
    for (const m of flyLocal.current().machines()) if (LIVE(m.state)) byUser.set(m.name, (byUser.get(m.name) ?? 0) + 1);
    for (const [name, n] of byUser) if (n > 1) names.add(name);
  }, 200);
  return { names, stop: () => clearInterval(sampler) };
}
