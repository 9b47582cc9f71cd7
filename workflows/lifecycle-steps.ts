import { ApplicationFailure, isCancellation, log, patched, uuid4 } from '@temporalio/workflow';
import type { HealthReport } from '../activities/health-activities';
import { activityRunner, PATCHES } from './lifecycle-activities';
import {
  billingVerdict,
  outageSince,
  provisionVerdict,
  repairFor,
  rollImageDecision,
  type Inbox,
  type StopDecision,
} from './lifecycle-rules';
import { transitionCode } from '../common/reason-codes';
import { healCause, lifecycleMetrics } from './lifecycle-metrics';
import { createPublisher } from './lifecycle-status';
import type { CarriedState, CpuPriority, LifecycleSettings, MachineState, RollImageResult } from './contract';

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
  async function transition(
    state: MachineState,
    reason?: string,
    extra: { errorMessage?: string; details?: Record<string, unknown> } = {},
  ) {
    const s = ctx.s;
    const at = now();
    if (state !== s.state || s.recent.length === 0) lifecycleMetrics.entered(state);
    if (state !== s.state) s.since = at;
    Object.assign(s, { state, reason, recent: [...s.recent, { at, state, reason }].slice(-MAX_TIMELINE) });
    publish(s, ctx.region);
    // The code (common/reason-codes.ts) and the workflow's instant go with every record: the timeline and
    // the uptime ledger are built from them (a retried write keeps the instant it happened at).
    await run('store', 'recordTransition', `record ${state}${reason ? `: ${reason}` : ''}`, {
      ...{ userId, status: state, reason, workflowId, machineId: s.machineId, region: ctx.region, cpuPriority },
      ...{ errorMessage: extra.errorMessage, lastHealthyAt: s.lastHealthyAt, transitionId: uuid4() },
      ...{ code: transitionCode(state, reason), occurredAt: at },
      ...(extra.details ? { details: extra.details } : {}),
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

  /** The image this workflow's machine runs (kept across continue-as-new); absent, the worker's own. */
  const carriedImage = () => (ctx.s.image ? { image: ctx.s.image } : {});

  const ensureMachine = async (summary: string) => {
    const machine = await run('fly', 'ensureFlyMachine', summary, {
      ...{ userId, workflowId, cpuPriority, credentialTtlSeconds, ...carriedImage() },
      regions: [ctx.region, ...settings.fallbackRegions.filter((r) => r !== ctx.region)],
    });
    ctx.s.image = machine.image ?? ctx.s.image;
    return machine;
  };

  /** Entitlement check → create (or adopt) the Fly machine → started → healthy → running. */
  async function provision() {
    const verdict = provisionVerdict(await syncBilling('entitlement check'), Date.now());
    ctx.s.entitlement = verdict.entitlement;
    ctx.billingRead = true;
    if (verdict.refuse) throw ApplicationFailure.nonRetryable(verdict.refuse, 'NotEntitled');
    const provisioningSince = Date.now();
    const machine = await alongside(
      transition('provisioning', 'requested'),
      ensureMachine('create or adopt the Fly machine'),
    );
    ctx.s.machineId = machine.id;
    ctx.region = machine.region || ctx.region;
    await alongside(transition('starting', `fly machine ${machine.id} ${machine.state}`), startAndCheck());
    ctx.s.lastRenewedAt = now();
    await transition('running', 'healthy');
    lifecycleMetrics.provisioned((Date.now() - provisioningSince) / 1000);
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
    if (billing.stop) {
      lifecycleMetrics.renewed('stopped');
      return billing.stop;
    }
    const machineId = ctx.s.machineId!;
    // Local since the patch: billing read, these two and the record are then one workflow task (one action, not three).
    const probe = patched(PATCHES.renewalLocal) ? 'localProbe' : 'probe';
    const [, health] = await Promise.all([
      run(probe, 'renewMachineCredentials', 'renew machine credentials', {
        userId,
        machineId,
        credentialTtlSeconds,
      }).catch((err) => {
        // An unreachable runtime is the health check's business: it restarts the machine with fresh credentials.
        log.warn('credential renewal failed', { error: String(err) });
      }),
      run(probe, 'checkRuntimeHealth', 'health check', { machineId }),
    ]);
    // The previous renewal found the machine healthy: an outage found now is counted from there (uptime ledger).
    const lastHealthyCheck = ctx.s.lastRenewedAt ?? ctx.s.since;
    ctx.s.lastRenewedAt = now();
    const stop = await heal(health, lastHealthyCheck);
    lifecycleMetrics.renewed(stop ? 'stopped' : 'ok');
    return stop;
  }

  /** The health sweep saw the machine sick: the workflow's own check decides (a flap restarts nothing), then self-heal. */
  async function checkHealth(sick: NonNullable<Inbox['sick']>): Promise<StopDecision | undefined> {
    const health = await run('localProbe', 'checkRuntimeHealth', `health check (sweep: ${sick.reason})`, {
      machineId: ctx.s.machineId!,
    });
    if (!health.ok) return heal(health, outageSince(ctx.s.lastRenewedAt ?? ctx.s.since, sick.healthySince));
    ctx.s.lastHealthyAt = health.checkedAt;
    log.info('health sweep report not confirmed: healthy', { reported: sick.reason });
    return undefined;
  }

  /** Restart a sick machine (replace a gone one) until healthy or out of attempts. */
  async function heal(health: HealthReport, lastHealthyCheck?: string): Promise<StopDecision | undefined> {
    for (let attempt = 1, failed = false; ; attempt++) {
      const repair = repairFor(health, attempt, settings.maxRestarts);
      if (repair.kind === 'give up') return repair.decision;
      if (repair.kind === 'healthy') {
        ctx.s.lastHealthyAt = health.checkedAt;
        await transition('running', attempt > 1 ? 'recovered' : undefined);
        return undefined;
      }
      lifecycleMetrics.healing(healCause(health.reason, failed), repair.kind);
      await transition('starting', `restart ${attempt}/${settings.maxRestarts}: ${health.reason ?? 'unhealthy'}`, {
        ...(attempt === 1 && lastHealthyCheck ? { details: { health: { since: lastHealthyCheck } } } : {}),
      });
      failed = false;
      try {
        if (repair.kind === 'replace') ctx.s.machineId = (await ensureMachine('replace the vanished Fly machine')).id;
        else
          ctx.s.image =
            (
              await run('fly', 'restartFlyMachine', 'restart the sick machine', {
                ...{ userId, workflowId, machineId: ctx.s.machineId!, cpuPriority, credentialTtlSeconds },
                ...carriedImage(),
              })
            ).image ?? ctx.s.image;
        await startAndCheck();
        health = { ok: true, checkedAt: ctx.s.lastHealthyAt! };
      } catch (err) {
        if (isCancellation(err)) throw err;
        failed = true;
        health = { ok: false, reason: failureReason(err), checkedAt: now() };
      }
    }
  }

  /**
   * The rollImage update's work, at its turn in the loop: the machine moves to `image` (Fly update with a fresh
   * config), must reach `started` and a healthy /health; else it goes back to the image it ran, and if even that
   * does not come back, self-heal takes over (which may end the run: the decision is returned).
   */
  async function rollImage(image: string): Promise<{ answer: RollImageResult; stop?: StopDecision }> {
    const skipped = (detail: string) => ({
      answer: { outcome: 'skipped' as const, detail, image: ctx.s.image ?? null },
    });
    const machineId = ctx.s.machineId!;
    if (!ctx.s.image) {
      // A run from before rollouts does not know its image: Fly does (read, not guessed, so a rollback is true).
      try {
        ctx.s.image = (await run('probe', 'readFlyMachineImage', 'read the machine image', { machineId })).image;
      } catch (err) {
        if (isCancellation(err)) throw err;
        return skipped(`could not read the machine's image: ${failureReason(err)}`);
      }
    }
    const decision = rollImageDecision(ctx.s, image, false);
    if (decision.kind !== 'roll')
      return skipped(decision.kind === 'skip' ? decision.detail : `not running (${ctx.s.state})`);
    const from = ctx.s.image!;
    const details = { image_rollout: { image, from } };
    const move = (to: string, summary: string) =>
      run('fly', 'updateFlyMachineImage', summary, {
        ...{ userId, workflowId, machineId, cpuPriority, credentialTtlSeconds, image: to },
      });
    let why: string;
    try {
      await alongside(
        transition('starting', `image_rollout: updating to ${image}`, { details }),
        move(image, `update the machine to ${image}`),
      );
      await startAndCheck();
      ctx.s.image = image;
      await transition('running', `image_rollout: ${image}`, { details });
      return { answer: { outcome: 'updated', detail: `${from} → ${image}`, image } };
    } catch (err) {
      if (isCancellation(err)) throw err;
      why = failureReason(err);
    }
    try {
      await alongside(
        transition('starting', `image_rollout: ${image} failed (${why}); rolling back to ${from}`, { details }),
        move(from, `roll the machine back to ${from}`),
      );
      await startAndCheck();
      await transition('running', `image_rollout: rolled back to ${from} (${image} failed)`, { details });
      return { answer: { outcome: 'rolled_back', detail: why, image: from } };
    } catch (err) {
      if (isCancellation(err)) throw err;
      const reason = `rollback to ${from} failed: ${failureReason(err)}`;
      const stop = await heal({ ok: false, reason, checkedAt: now() });
      const after = stop ? `; ${stop.reason}` : '; recovered by self-heal';
      return { answer: { outcome: 'failed', detail: `${why}; ${reason}${after}`, image: from }, stop };
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

  return {
    publish: () => publish(ctx.s, ctx.region),
    ...{ syncBilling, readBilling, provision, renew, checkHealth, rollImage, teardown },
  };
}

/** The innermost cause says what went wrong (an ActivityFailure wraps the ApplicationFailure). */
export function failureReason(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}
