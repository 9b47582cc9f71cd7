import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { HealthReport } from '../activities';
import { entitlement } from '../common/entitlement';
import { activityRunner, ms } from './lifecycle-activities';
import {
  billingVerdict,
  earlyEnd,
  emptyInbox,
  hasNews,
  nextStep,
  onBillingEvent,
  onMachineVanished,
  onStop,
  provisionVerdict,
  repairFor,
  type StopDecision,
} from './lifecycle-rules';
import { createPublisher, statusOf } from './lifecycle-status';
import {
  lifecycleSettings,
  machineVanishedSignal,
  machineWorkflowId,
  paymentFailedSignal,
  paymentRecoveredSignal,
  statusQuery,
  stopSignal,
  stopUpdate,
  tierChangedSignal,
  type CarriedState,
  type MachineLifecycleInput,
  type MachineState,
  type MachineStatus,
} from './contract';

const MAX_TIMELINE = 20;

/**
 * One user's machine, from provisioning to its final stop (DESIGN §3, workflows/README.md). Reads as
 * the lifecycle: provision → running → loop { wait; re-read billing | renew | continue-as-new } → stop.
 * Every decision is a pure rule in ./lifecycle-rules.ts; this file handles messages and runs steps.
 */
export async function machineLifecycle(input: MachineLifecycleInput): Promise<MachineStatus> {
  const settings = lifecycleSettings(input.settings);
  const { userId } = input;
  const cpuPriority = input.cpuPriority ?? 'normal';
  const { workflowId } = workflowInfo();
  const run = activityRunner(settings);
  const gracePeriodMs = ms(settings.paymentGracePeriod);
  const renewalIntervalMs = ms(settings.renewalInterval);
  const now = () => new Date(Date.now()).toISOString();

  const s: CarriedState = input.carried ?? { state: 'provisioning', since: now(), recent: [], renewals: 0, run: 1 };
  let region = input.region ?? 'ams';
  let inbox = emptyInbox();
  let billingRead = false;
  let renewedThisRun = 0;
  let finished = false;
  const publish = createPublisher(userId);
  const status = () => statusOf(s, userId, region);

  // --- messages: each only updates the inbox; the loop acts on it ------------------------------------
  setHandler(statusQuery, status);
  setHandler(stopSignal, (req) => void (inbox = onStop(inbox, req)));
  setHandler(stopUpdate, async (req) => {
    inbox = onStop(inbox, req);
    await condition(() => finished);
    return status();
  });
  setHandler(tierChangedSignal, (e) => void (inbox = onBillingEvent(inbox, { ...e, type: 'tier.changed' })));
  setHandler(paymentFailedSignal, (e) => void (inbox = onBillingEvent(inbox, { ...e, type: 'payment.failed' })));
  setHandler(paymentRecoveredSignal, (e) => void (inbox = onBillingEvent(inbox, { ...e, type: 'payment.recovered' })));
  setHandler(machineVanishedSignal, (v) => void (inbox = onMachineVanished(inbox, v.machineId, s)));

  // --- steps -------------------------------------------------------------------------------------------
  /** Every transition: workflow state, search attributes, details, and the row + audit event. */
  async function transition(state: MachineState, reason?: string, extra: { errorMessage?: string } = {}) {
    if (state !== s.state) s.since = now();
    Object.assign(s, { state, reason, recent: [...s.recent, { at: now(), state, reason }].slice(-MAX_TIMELINE) });
    publish(s, region);
    await run('store', 'recordTransition', `record ${state}${reason ? `: ${reason}` : ''}`, {
      ...{ userId, status: state, reason, workflowId, machineId: s.machineId, region, cpuPriority },
      ...{ errorMessage: extra.errorMessage, lastHealthyAt: s.lastHealthyAt, transitionId: uuid4() },
    });
  }

  /** The stored billing state (after applying any signalled events, once each by id). */
  const syncBilling = (summary: string, events = inbox.billing) =>
    run('store', 'syncBilling', summary, { userId, events, gracePeriodMs });

  async function readBilling(summary: string) {
    const events = inbox.billing;
    inbox = { ...inbox, billing: [] };
    const verdict = billingVerdict(s.entitlement, await syncBilling(summary, events), Date.now());
    s.entitlement = verdict.entitlement;
    billingRead = true;
    if (verdict.notice) await transition(s.state, verdict.notice);
    else publish(s, region);
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
      ...{ userId, workflowId, cpuPriority },
      regions: [region, ...settings.fallbackRegions.filter((r) => r !== region)],
    });

  async function provision() {
    const verdict = provisionVerdict(await syncBilling('entitlement check'), Date.now());
    s.entitlement = verdict.entitlement;
    billingRead = true;
    if (verdict.refuse) throw ApplicationFailure.nonRetryable(verdict.refuse, 'NotEntitled');
    const machine = await alongside(
      transition('provisioning', 'requested'),
      ensureMachine('create or adopt the Fly machine'),
    );
    s.machineId = machine.id;
    region = machine.region || region;
    await alongside(transition('starting', `fly machine ${machine.id} ${machine.state}`), startAndCheck());
    s.lastRenewedAt = now();
    await transition('running', 'healthy');
  }

  /** A stop, or a billing signal whose stored state says stop, during a long start cancels the start. */
  async function provisionUnlessStopped() {
    const scope = new CancellationScope();
    let started = false;
    const watch = async () => {
      for (let checked = 0; ;) {
        await condition(() => started || inbox.stop !== undefined || inbox.billing.length > checked);
        if (started) return;
        if (inbox.stop) return scope.cancel();
        checked = inbox.billing.length; // read, not consumed: the loop reads again and records what changed
        const e = entitlement(await syncBilling('billing re-read during start'), Date.now());
        if (!e.entitled)
          inbox = onStop(inbox, {
            reason: e.denied === 'payment_overdue' ? 'payment_overdue' : 'downgraded',
            requestedBy: 'billing',
          });
      }
    };
    watch().catch(() => undefined); // rejects only when the whole workflow is cancelled, handled below
    try {
      await scope.run(provision);
    } catch (err) {
      if (!(isCancellation(err) && inbox.stop && !CancellationScope.current().consideredCancelled)) throw err;
    } finally {
      started = true;
    }
  }

  /** Fly `started`, then the runtime's own health. */
  async function startAndCheck() {
    const machineId = s.machineId!;
    await run('waitStarted', 'waitForFlyState', 'wait for Fly state started', {
      ...{ machineId, state: 'started' },
      deadlineSeconds: settings.startDeadlineSeconds,
    });
    const health = await run('waitHealthy', 'waitForRuntimeHealthy', 'wait for runtime /health', {
      ...{ machineId, deadlineSeconds: settings.healthDeadlineSeconds },
    });
    s.lastHealthyAt = health.checkedAt;
  }

  /** Entitlement re-check, credential renewal and health check side by side, then self-heal. */
  async function renew(): Promise<StopDecision | undefined> {
    const billing = await readBilling('entitlement re-check');
    if (billing.stop) return billing.stop;
    const machineId = s.machineId!;
    const [, health] = await Promise.all([
      run('probe', 'renewMachineCredentials', 'renew machine credentials', { userId, machineId }).catch((err) => {
        // An unreachable runtime is the health check's business: it restarts the machine with fresh credentials.
        log.warn('credential renewal failed', { error: String(err) });
      }),
      run('probe', 'checkRuntimeHealth', 'health check', { machineId }),
    ]);
    s.lastRenewedAt = now();
    return heal(health);
  }

  /** Restart a sick machine (replace a gone one) until healthy or out of attempts. */
  async function heal(health: HealthReport): Promise<StopDecision | undefined> {
    for (let attempt = 1; ; attempt++) {
      const repair = repairFor(health, attempt, settings.maxRestarts);
      if (repair.kind === 'give up') return repair.decision;
      if (repair.kind === 'healthy') {
        s.lastHealthyAt = health.checkedAt;
        await transition('running', attempt > 1 ? 'recovered' : undefined);
        return undefined;
      }
      await transition('starting', `restart ${attempt}/${settings.maxRestarts}: ${health.reason ?? 'unhealthy'}`);
      try {
        if (repair.kind === 'replace') s.machineId = (await ensureMachine('replace the vanished Fly machine')).id;
        else
          await run('fly', 'restartFlyMachine', 'restart the sick machine', {
            userId,
            workflowId,
            machineId: s.machineId!,
            cpuPriority,
          });
        await startAndCheck();
        health = { ok: true, checkedAt: s.lastHealthyAt! };
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
      run('cleanup', 'destroyFlyMachines', 'stop and destroy the Fly machine', { userId, machineId: s.machineId }),
    );
    s.machineId = undefined;
    await transition(final, reason, final === 'error' ? { errorMessage: reason } : {});
  }

  async function renewalLoop(): Promise<StopDecision | 'continueAsNew'> {
    for (;;) {
      const clock = {
        now: Date.now(),
        lastRenewedAt: s.lastRenewedAt ?? s.since,
        renewalIntervalMs,
        graceEndsAt: s.entitlement?.graceEndsAt ?? null,
      };
      const { continueAsNewSuggested } = workflowInfo();
      const step = nextStep(inbox, clock, {
        ...{ renewals: s.renewals, renewedThisRun, billingRead },
        continueAsNewEvery: settings.continueAsNewEvery,
        continueAsNewSuggested,
      });
      if (step.kind === 'stop') return step.decision;
      if (step.kind === 'continueAsNew') return 'continueAsNew';
      if (step.kind === 'readBilling') {
        const verdict = await readBilling(billingRead ? 'billing re-read' : `billing read (run ${s.run})`);
        if (verdict.stop) return verdict.stop;
      } else if (step.kind === 'renew') {
        inbox = { ...inbox, renewNow: false };
        const stop = await renew();
        if (stop) return stop;
        s.renewals++;
        renewedThisRun++;
      } else {
        await condition(
          () => hasNews(inbox, workflowInfo().continueAsNewSuggested),
          Math.max(1, step.untilMs - Date.now()),
        );
      }
    }
  }

  // --- the lifecycle -------------------------------------------------------------------------------------
  publish(s, region);
  let end: StopDecision | 'continueAsNew';
  try {
    if (!input.carried) await provisionUnlessStopped();
    end = await renewalLoop();
  } catch (err) {
    const cancelled = isCancellation(err);
    const type = err instanceof ApplicationFailure ? err.type : undefined;
    const decision = earlyEnd({ cancelled, type: type ?? undefined, message: failureReason(err) });
    (cancelled ? log.info : log.warn)('machine lifecycle ending early', { reason: decision.reason });
    // Compensation: whatever was created is destroyed, even when the workflow itself is being cancelled.
    await CancellationScope.nonCancellable(() => teardown(decision));
    finished = true;
    if (cancelled) throw err;
    return status();
  }

  if (end === 'continueAsNew') {
    await condition(allHandlersFinished);
    // Signals not yet acted on are not lost: the next run reads the stored billing state first.
    return continueAsNew<typeof machineLifecycle>({ ...input, region, carried: { ...s, run: s.run + 1 } });
  }
  await teardown(end);
  finished = true;
  await condition(allHandlersFinished);
  return status();
}

function failureReason(err: unknown): string {
  // The innermost cause says what went wrong (an ActivityFailure wraps the ApplicationFailure).
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}

export { machineWorkflowId };
