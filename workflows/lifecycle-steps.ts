import { ApplicationFailure, isCancellation, log, uuid4 } from '@temporalio/workflow';
import type { HealthReport } from '../activities/health-activities';
import { activityRunner } from './lifecycle-activities';
import { billingVerdict, provisionVerdict, repairFor, type Inbox, type StopDecision } from './lifecycle-rules';
import { createPublisher } from './lifecycle-status';
import type { CarriedState, CpuPriority, LifecycleSettings, MachineState } from './contract';

const MAX_TIMELINE = 20;

/** What one run of machineLifecycle works on: fixed for the run, and the state its steps change. */
export interface RunContext {
  readonly userId: string;
  readonly workflowId: string;
  readonly cpuPriority: CpuPriority;
  readonly settings: LifecycleSettings;
  readonly gracePeriodMs: number;
  /** The lifetime of the user token a machine gets: about two renewal intervals. */
  readonly credentialTtlSeconds: number;
  s: CarriedState;
  region: string;
  inbox: Inbox;
  /** Whether this run has read the stored billing state yet. */
  billingRead: boolean;
}

/**
 * The lifecycle's steps: each runs activities and records what it did; none decides anything a rule
 * (./lifecycle-rules.ts) could. The workflow (./machine-lifecycle.ts) calls them in order.
 */
export function lifecycleSteps(ctx: RunContext) {
  const { userId, workflowId, cpuPriority, settings, credentialTtlSeconds } = ctx;
  const run = activityRunner(settings);
  const publish = createPublisher(userId);
  const now = () => new Date(Date.now()).toISOString();

  /** Every transition: workflow state, search attributes, details, and the row + audit event. */
  async function transition(state: MachineState, reason?: string, extra: { errorMessage?: string } = {}) {
    const s = ctx.s;
    if (state !== s.state) s.since = now();
    Object.assign(s, { state, reason, recent: [...s.recent, { at: now(), state, reason }].slice(-MAX_TIMELINE) });
    publish(s, ctx.region);
    await run('store', 'recordTransition', `record ${state}${reason ? `: ${reason}` : ''}`, {
      ...{ userId, status: state, reason, workflowId, machineId: s.machineId, region: ctx.region, cpuPriority },
      ...{ errorMessage: extra.errorMessage, lastHealthyAt: s.lastHealthyAt, transitionId: uuid4() },
    });
  }

  /** The stored billing state, after applying the given signalled events (once each, by id). */
  const syncBilling = (summary: string, events = ctx.inbox.billing) =>
    run('store', 'syncBilling', summary, { userId, events, gracePeriodMs: ctx.gracePeriodMs });

  /** Re-reads billing (taking the queued nudges), keeps the verdict, records a notice if there is one. */
  async function readBilling(summary: string) {
    const events = ctx.inbox.billing;
    ctx.inbox = { ...ctx.inbox, billing: [], recheck: false };
    const verdict = billingVerdict(ctx.s.entitlement, await syncBilling(summary, events), Date.now());
    ctx.s.entitlement = verdict.entitlement;
    ctx.billingRead = true;
    if (verdict.notice) await transition(ctx.s.state, verdict.notice);
    else publish(ctx.s, ctx.region);
    return verdict;
  }

  /** Records a transition while the work it announces runs; the record lands before the next one starts. */
  async function alongside<T>(recording: Promise<void>, work: Promise<T>): Promise<T> {
    recording.catch(() => undefined); // observed in `finally`; this only keeps an early failure from being "unhandled"
    try {
      return await work;
    } finally {
      await recording;
    }
  }

  const ensureMachine = (summary: string) =>
    run('fly', 'ensureFlyMachine', summary, {
      ...{ userId, workflowId, cpuPriority, credentialTtlSeconds },
      regions: [ctx.region, ...settings.fallbackRegions.filter((r) => r !== ctx.region)],
    });

  /** Entitlement check → create (or adopt) the Fly machine → started → healthy → running. */
  async function provision() {
    const verdict = provisionVerdict(await syncBilling('entitlement check'), Date.now());
    ctx.s.entitlement = verdict.entitlement;
    ctx.billingRead = true;
    if (verdict.refuse) throw ApplicationFailure.nonRetryable(verdict.refuse, 'NotEntitled');
    const machine = await alongside(
      transition('provisioning', 'requested'),
      ensureMachine('create or adopt the Fly machine'),
    );
    ctx.s.machineId = machine.id;
    ctx.region = machine.region || ctx.region;
    await alongside(transition('starting', `fly machine ${machine.id} ${machine.state}`), startAndCheck());
    ctx.s.lastRenewedAt = now();
    await transition('running', 'healthy');
  }

  /** Fly `started`, then the runtime's own health. */
  async function startAndCheck() {
    const machineId = ctx.s.machineId!;
    const { startDeadlineSeconds, healthDeadlineSeconds } = settings;
    await run('waitStarted', 'waitForFlyState', 'wait for Fly state started', {
      ...{ machineId, state: 'started', deadlineSeconds: startDeadlineSeconds },
    });
    const health = await run('waitHealthy', 'waitForRuntimeHealthy', 'wait for runtime /health', {
      ...{ machineId, deadlineSeconds: healthDeadlineSeconds },
    });
    ctx.s.lastHealthyAt = health.checkedAt;
  }

  /** Entitlement re-check, then credential renewal and health check side by side, then self-heal. */
  async function renew(): Promise<StopDecision | undefined> {
    const billing = await readBilling('entitlement re-check');
    if (billing.stop) return billing.stop;
    const machineId = ctx.s.machineId!;
    const [, health] = await Promise.all([
      run('probe', 'renewMachineCredentials', 'renew machine credentials', {
        userId,
        machineId,
        credentialTtlSeconds,
      }).catch((err) => {
        // An unreachable runtime is the health check's business: it restarts the machine with fresh credentials.
        log.warn('credential renewal failed', { error: String(err) });
      }),
      run('probe', 'checkRuntimeHealth', 'health check', { machineId }),
    ]);
    ctx.s.lastRenewedAt = now();
    return heal(health);
  }

  /** Restart a sick machine (replace a gone one) until healthy or out of attempts. */
  async function heal(health: HealthReport): Promise<StopDecision | undefined> {
    for (let attempt = 1; ; attempt++) {
      const repair = repairFor(health, attempt, settings.maxRestarts);
      if (repair.kind === 'give up') return repair.decision;
      if (repair.kind === 'healthy') {
        ctx.s.lastHealthyAt = health.checkedAt;
        await transition('running', attempt > 1 ? 'recovered' : undefined);
        return undefined;
      }
      await transition('starting', `restart ${attempt}/${settings.maxRestarts}: ${health.reason ?? 'unhealthy'}`);
      try {
        if (repair.kind === 'replace') ctx.s.machineId = (await ensureMachine('replace the vanished Fly machine')).id;
        else
          await run('fly', 'restartFlyMachine', 'restart the sick machine', {
            ...{ userId, workflowId, machineId: ctx.s.machineId!, cpuPriority, credentialTtlSeconds },
          });
        await startAndCheck();
        health = { ok: true, checkedAt: ctx.s.lastHealthyAt! };
      } catch (err) {
        if (isCancellation(err)) throw err;
        health = { ok: false, reason: failureReason(err), checkedAt: now() };
      }
    }
  }

  /** Stops and destroys the machine (all of the user's, to be sure) and records the final state. */
  async function teardown({ reason, final }: StopDecision) {
    await alongside(
      transition('stopping', reason),
      run('cleanup', 'destroyFlyMachines', 'stop and destroy the Fly machine', { userId, machineId: ctx.s.machineId }),
    );
    ctx.s.machineId = undefined;
    await transition(final, reason, final === 'error' ? { errorMessage: reason } : {});
  }

  return { publish: () => publish(ctx.s, ctx.region), syncBilling, readBilling, provision, renew, teardown };
}

/** The innermost cause says what went wrong (an ActivityFailure wraps the ApplicationFailure). */
export function failureReason(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}
