import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { z } from 'zod';
import {
  FlyMachineIdSearchAttribute,
  MachineStateSearchAttribute,
  RegionSearchAttribute,
  UserIdSearchAttribute,
} from '../common/search-attributes';
import { entitlement, type Entitlement } from '../common/entitlement';
import type { ServiceStore } from '../store/types';
import {
  cpuPriorities,
  MACHINE_WORKFLOW_TYPE,
  machineStates,
  machineWorkflowId,
  stopSignal,
  type LifecycleSettings,
  type MachineState,
} from '../workflows/contract';
import type { machineLifecycle } from '../workflows/machine-lifecycle';
import { machineLifecycleInputSchema, regionSchema } from '../workflows/schemas';
import { recordedStatus, type LiveWorkflow } from './machine-status';
import { HttpProblem } from './problem';

/** `POST /v1/machines`. Strict: a `userId` (or anything else) in the body is refused, the user is the token's. */
export const provisionRequestSchema = z.strictObject({
  region: regionSchema.optional().describe('Fly region code; default "ams"'),
  cpuPriority: z.enum(cpuPriorities).optional().describe('default "normal"'),
});

export const provisionResponseSchema = z.object({
  workflowId: z.string(),
  state: z.enum(machineStates),
});

const timelineEntrySchema = z.object({
  at: z.string(),
  state: z.enum(machineStates),
  reason: z.string().optional(),
});

export const machineStatusResponseSchema = z.object({
  state: z.enum(machineStates),
  userId: z.string(),
  machineId: z.string().nullable(),
  region: z.string(),
  since: z.string(),
  lastHealthyAt: z.string().nullable(),
  lastRenewedAt: z.string().nullable(),
  reason: z.string().nullable(),
  tier: z.string().nullable().describe('the effective tier: the newer of the profile and the last tier.changed'),
  entitled: z.boolean().describe('whether the user may have a machine now (tier and billing)'),
  entitlementDetail: z.string().describe('why (not): "elite, paid up", "payment overdue since …, grace ended …"'),
  paymentState: z.enum(['ok', 'overdue']),
  paymentOverdueSince: z.string().nullable().describe('occurredAt of the payment.failed that opened the grace period'),
  paymentGraceEndsAt: z.string().nullable().describe('set while a payment is overdue: when the machine stops'),
  recent: z.array(timelineEntrySchema).describe('the latest transitions, oldest first'),
  workflowId: z.string(),
  source: z
    .enum(['workflow', 'table'])
    .describe(
      '"workflow": a workflow runs (its records, written at every transition); "table": none runs, the last recorded state',
    ),
});
export type MachineStatusResponse = z.infer<typeof machineStatusResponseSchema>;

export const stopResponseSchema = z.object({ workflowId: z.string(), state: z.enum(machineStates) });

export interface MachineServiceDeps {
  temporal: Client;
  store: ServiceStore;
  taskQueue: string;
  settings: Partial<LifecycleSettings>;
  /** A new machine for a user at most this often (ms): start/stop loops spend the app-wide Fly budget. */
  provisionCooldownMs?: number;
}

const RECENT_EVENTS = 20;

/**
 * Everything the API does with a user's machine. Every function takes the authenticated user id and
 * derives the workflow id from it: no caller-supplied id ever names a workflow or a machine.
 */
export function createMachineService(deps: MachineServiceDeps) {
  const { temporal, store } = deps;

  async function describe(userId: string): Promise<WorkflowExecutionDescription | null> {
    try {
      return await temporal.workflow.getHandle(machineWorkflowId(userId)).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  const stateOf = (d: WorkflowExecutionDescription): MachineState | undefined =>
    d.typedSearchAttributes.get(MachineStateSearchAttribute) as MachineState | undefined;

  /**
   * 429 when the user's last new machine started less than the cooldown ago and none runs now (a
   * repeated POST for a running machine is the same machine, so it is never refused). From the audit
   * table, so every API instance agrees.
   */
  async function refuseDuringCooldown(userId: string) {
    const cooldown = deps.provisionCooldownMs ?? 0;
    if (cooldown <= 0 || (await describe(userId))?.status.name === 'RUNNING') return;
    const events = await store.listMachineEvents(userId, { limit: 20 });
    const last = events.find((e) => e.toStatus === 'provisioning');
    const wait = last ? last.occurredAt.getTime() + cooldown - Date.now() : 0;
    if (wait > 0)
      throw new HttpProblem(
        429,
        `you started a machine ${Math.round((Date.now() - last!.occurredAt.getTime()) / 1000)} s ago; start one again in ${Math.ceil(wait / 1000)} s`,
        { headers: { 'retry-after': String(Math.ceil(wait / 1000)) } },
      );
  }

  /** Billing as stored (the user's, whether or not a workflow runs), as the status shows it. */
  async function billingOf(userId: string) {
    const e = entitlement(await store.getBillingFacts(userId), Date.now());
    return {
      tier: e.tier,
      entitled: e.entitled,
      entitlementDetail: e.detail,
      paymentState: e.paymentState,
      paymentOverdueSince: e.overdueSince,
      paymentGraceEndsAt: e.graceEndsAt,
    };
  }

  /**
   * The status from what no Temporal action is billed for (api/machine-status.ts): the row and its events, and
   * the workflow's description while one runs. No query: an open page reads it every few seconds.
   */
  async function statusFromRecords(userId: string, live?: LiveWorkflow): Promise<MachineStatusResponse | null> {
    const [row, events] = await Promise.all([
      store.getMachine(userId),
      store.listMachineEvents(userId, { limit: RECENT_EVENTS }),
    ]);
    const s = recordedStatus({ row, events, live });
    if (!s) return null;
    const workflowId = row?.workflowId ?? machineWorkflowId(userId);
    return { ...s, userId, ...(await billingOf(userId)), workflowId };
  }

  return {
    /** Entitlement now (profile tier + billing state + now): what provisioning is allowed on. */
    async entitlement(userId: string): Promise<Entitlement> {
      return entitlement(await store.getBillingFacts(userId), Date.now());
    },

    /**
     * Starts the user's workflow, or finds the one that runs (USE_EXISTING): N concurrent calls are one
     * workflow and one machine. A finished workflow's id is reused (ALLOW_DUPLICATE): a new machine.
     */
    async provision(userId: string, body: z.infer<typeof provisionRequestSchema>, opts: { cooldown?: boolean } = {}) {
      if (opts.cooldown !== false) await refuseDuringCooldown(userId);
      const input = machineLifecycleInputSchema.parse({
        userId,
        region: body.region,
        cpuPriority: body.cpuPriority,
        ...(Object.keys(deps.settings).length ? { settings: deps.settings } : {}),
      });
      const workflowId = machineWorkflowId(userId);
      const handle = await temporal.workflow.start<typeof machineLifecycle>(MACHINE_WORKFLOW_TYPE, {
        taskQueue: deps.taskQueue,
        workflowId,
        args: [input],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        typedSearchAttributes: [
          { key: UserIdSearchAttribute, value: userId },
          { key: RegionSearchAttribute, value: input.region },
          { key: MachineStateSearchAttribute, value: 'provisioning' },
        ],
        staticSummary: `cloud machine of user ${userId}`,
      });
      // The workflow keeps MachineState current: no query (and no worker round trip) needed here.
      const description = await handle.describe();
      const state = stateOf(description) ?? 'provisioning';
      if (state === 'stopping')
        throw new HttpProblem(409, 'your machine is stopping; start it again once it has stopped');
      return { workflowId, runId: description.runId, state };
    },

    /** The status from the records, checked against the workflow's description while one runs. */
    async status(userId: string): Promise<MachineStatusResponse | null> {
      const d = await describe(userId);
      if (d?.status.name !== 'RUNNING') return statusFromRecords(userId);
      const region = d.typedSearchAttributes.get(RegionSearchAttribute) ?? undefined;
      return statusFromRecords(userId, { state: stateOf(d), region, startTime: d.startTime });
    },

    /** Signals stop to the running workflow: 404 when the user never had one, 409 when it has finished. */
    async stop(userId: string) {
      const d = await describe(userId);
      if (!d) throw new HttpProblem(404, 'you have no machine');
      if (d.status.name !== 'RUNNING') throw new HttpProblem(409, 'your machine is not running');
      try {
        await temporal.workflow
          .getHandle(machineWorkflowId(userId))
          .signal(stopSignal, { reason: 'user_requested', requestedBy: userId });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new HttpProblem(409, 'your machine is not running');
        throw err;
      }
      return { workflowId: machineWorkflowId(userId), state: stateOf(d) ?? 'stopping' };
    },

    /**
     * After a payment recovered: starts again the machine billing stopped (its last transition says
     * `payment_overdue`), in the region and CPU priority it had. A machine the user stopped, or one that
     * runs, is left alone; a user who is still not entitled gets nothing. Idempotent: a second call finds
     * the workflow running (USE_EXISTING) or the row no longer stopped for billing.
     */
    async resumeAfterRecovery(userId: string): Promise<boolean> {
      const row = await store.getMachine(userId);
      if (row?.status !== 'stopped') return false;
      const [last] = await store.listMachineEvents(userId, { limit: 1 });
      if (last?.reason !== 'payment_overdue') return false;
      if (!entitlement(await store.getBillingFacts(userId), Date.now()).entitled) return false;
      // Not the user's own start: no cooldown (billing stopped it, billing starts it).
      await this.provision(userId, { region: row.region, cpuPriority: row.cpuPriority }, { cooldown: false });
      return true;
    },

    /** The Fly machine id of the user's workflow, only while it says `running` (its search attributes: no query). */
    async runningMachineId(userId: string): Promise<string | null> {
      const d = await describe(userId);
      if (d?.status.name !== 'RUNNING' || stateOf(d) !== 'running') return null;
      if (d.typedSearchAttributes.get(UserIdSearchAttribute) !== userId) return null;
      return d.typedSearchAttributes.get(FlyMachineIdSearchAttribute) ?? null;
    },
  };
}
export type MachineService = ReturnType<typeof createMachineService>;
