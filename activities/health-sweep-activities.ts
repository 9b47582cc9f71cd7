import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { mapLimit } from '../common/map-limit';
import type { MachineRow, ServiceStore } from '../store/types';
import { machineSickSignal, machineWorkflowId } from '../workflows/contract';
import type { HealthSweepInput, HealthSweepReport, SickMachine } from '../workflows/health-sweep';
import { flyCall } from './fly-failures';
import { createHealthProbe, type HealthProbeDeps } from './health-activities';
import type { ReconcileDeps } from './reconcile-activities';

/*
 * The Node side of healthSweep (workflows/health-sweep.ts): every machine whose row says running, checked at once
 * with the same probe the workflows use (Fly state, then the runtime's /health), from one Fly listing. A machine
 * sick at the first look is looked at again a few seconds later (read from Fly afresh); only one sick both times
 * is signalled, so a blip costs nothing. Signals are the only billed actions here: healthy machines cost none.
 */

const MAX_REPORTED = 50;

export type HealthSweepDeps = HealthProbeDeps & { store: ServiceStore; temporal?: ReconcileDeps['temporal'] };

export const createHealthSweepActivities = (deps: HealthSweepDeps) => {
  const probe = createHealthProbe(deps);

  /** Tells the machine's workflow; one that has ended meanwhile is only reported. */
  async function signal(row: MachineRow, reason: string, healthySince: string | undefined): Promise<string> {
    if (!deps.temporal)
      throw ApplicationFailure.nonRetryable(
        'the health sweep needs a Temporal client: the worker wires it (worker/create-worker.ts)',
        'HealthSweepNotWired',
      );
    const workflowId = row.workflowId ?? machineWorkflowId(row.userId);
    try {
      await deps.temporal.client.workflow
        .getHandle(workflowId)
        .signal(machineSickSignal, { machineId: row.machineId!, reason, ...(healthySince ? { healthySince } : {}) });
      return 'signalled';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return 'skipped: the workflow ended';
      throw err;
    }
  }

  return {
    /** One sweep of the fleet: check every running machine, confirm the sick ones, signal those still sick. */
    async sweepFleetHealth(input: HealthSweepInput = {}): Promise<HealthSweepReport> {
      const started = Date.now();
      const concurrency = input.concurrency ?? 32;
      const rows = (await deps.store.listMachines({ statuses: ['running'] })).filter((r) => r.machineId);
      // One listing for the fleet, not one Fly read per machine (Fly limits requests per app as well).
      const listed = new Map((await flyCall(() => deps.fly.listMachines({}))).map((m) => [m.id, m]));
      const first = await mapLimit(rows, concurrency, (r) => probe.ofMachine(listed.get(r.machineId!)));
      const suspects = rows.filter((_, i) => !first[i]!.ok);
      if (suspects.length > 0) await sleep((input.confirmDelaySeconds ?? 5) * 1000);
      const second = await mapLimit(suspects, concurrency, (r) => probe.byId(r.machineId!));
      // The previous sweep saw them healthy (else it would have reported them): the outage began after it.
      const healthySince = input.intervalSeconds
        ? new Date(started - input.intervalSeconds * 1000).toISOString()
        : undefined;
      const sick: SickMachine[] = [];
      let signalled = 0;
      for (const [i, row] of suspects.entries()) {
        const health = second[i]!;
        if (health.ok) continue; // a blip: healthy at the second look
        const reason = health.reason ?? 'unhealthy';
        const outcome = await signal(row, reason, healthySince);
        if (outcome === 'signalled') signalled++;
        const workflowId = row.workflowId ?? machineWorkflowId(row.userId);
        if (sick.length < MAX_REPORTED)
          sick.push({ userId: row.userId, workflowId, machineId: row.machineId!, reason, outcome });
      }
      const report = { checked: rows.length, suspected: suspects.length, sick, signalled };
      if (sick.length > 0) log.warn('health sweep: sick machines signalled', { ...report, sick: sick.length });
      return { ...report, durationMs: Date.now() - started };
    },
  };
};
