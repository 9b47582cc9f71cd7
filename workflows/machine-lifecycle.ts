import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { machineTokenSeconds } from '../common/machine-token';
import { ms, PATCHES } from './lifecycle-activities';
import {
  earlyEnd,
  emptyInbox,
  hasNews,
  nextStep,
  onBillingEvent,
  onMachineSick,
  onMachineVanished,
  onRollImage,
  onStop,
  rollImageDecision,
  stopDuringStart,
  type StopDecision,
} from './lifecycle-rules';
import { statusOf } from './lifecycle-status';
import { failureReason, lifecycleSteps, type RunContext } from './lifecycle-steps';
import {
  billingChangedSignal,
  LEGACY_RENEWAL_INTERVAL,
  lifecycleSettings,
  machineSickSignal,
  machineVanishedSignal,
  machineWorkflowId,
  paymentFailedSignal,
  paymentRecoveredSignal,
  rollImageUpdate,
  statusQuery,
  stopSignal,
  stopUpdate,
  tierChangedSignal,
  type MachineLifecycleInput,
  type MachineStatus,
  type RollImageResult,
  type StopRequest,
} from './contract';

/**
 * One user's machine, from provisioning to its final stop (technical description §3; the state diagram and reason
 * codes are in workflows/README.md):
 *
 *   provision (entitlement check → Fly machine → started → healthy) → running
 *   loop: wait for a message or the timer → re-read billing | check health (the sweep saw it sick) | renew | continue-as-new
 *   stop (user, downgraded, payment_overdue, unhealthy, cancelled) → destroy the machine → stopped | error
 *
 * Messages only fill the inbox; what to do next is a pure rule (./lifecycle-rules.ts), carried out by
 * the steps (./lifecycle-steps.ts). Billing is never remembered: it is read from the database.
 */
export async function machineLifecycle(input: MachineLifecycleInput): Promise<MachineStatus> {
  // A run started on the old 15-minute default keeps it: its timers are in its history (replay must see the same).
  const legacy = input.settings?.renewalInterval === undefined && !patched(PATCHES.hourlyRenewalDefault);
  const settings = lifecycleSettings({
    ...input.settings,
    ...(legacy ? { renewalInterval: LEGACY_RENEWAL_INTERVAL } : {}),
  });
  const ctx: RunContext = {
    userId: input.userId,
    workflowId: workflowInfo().workflowId,
    cpuPriority: input.cpuPriority ?? 'normal',
    settings,
    gracePeriodMs: ms(settings.paymentGracePeriod),
    credentialTtlSeconds: machineTokenSeconds(ms(settings.renewalInterval)),
    s: input.carried ?? {
      state: 'provisioning',
      since: new Date(Date.now()).toISOString(),
      recent: [],
      renewals: 0,
      run: 1,
    },
    region: input.region ?? 'ams',
    inbox: emptyInbox(),
    billingRead: false,
  };
  const steps = lifecycleSteps(ctx);
  const renewalIntervalMs = ms(settings.renewalInterval);
  let renewedThisRun = 0;
  let finished = false;
  /** Set once the run stops taking work (its loop has ended): a rollImage update is then refused or skipped. */
  let ending = false;
  /** Set once the run has chosen continue-as-new: a stop update then goes to the next run (refused here). */
  let continuing = false;
  let rollSeq = 0;
  /** rollImage updates accepted and not yet answered (undefined), by request id. */
  const rollAnswers = new Map<number, RollImageResult | undefined>();
  const status = () => statusOf(ctx.s, ctx.userId, ctx.region);
  /** The run ends: updates still waiting are answered (nothing was done for them). */
  const endRolls = (detail: string) => {
    ending = true;
    for (const [id, answer] of rollAnswers)
      if (!answer) rollAnswers.set(id, { outcome: 'skipped', detail, image: ctx.s.image ?? null });
  };

  // --- messages: each only updates the inbox; the loop acts on it ------------------------------------
  setHandler(statusQuery, status);
  setHandler(stopSignal, (req) => void (ctx.inbox = onStop(ctx.inbox, req)));
  setHandler(
    stopUpdate,
    async (req) => {
      ctx.inbox = onStop(ctx.inbox, req);
      await condition(() => finished);
      return status();
    },
    {
      // Accepted now it would wait for a `finished` this run never reaches, and hold up continue-as-new.
      validator: (_req: StopRequest) => {
        if (continuing) throw new Error('the workflow is continuing as new: send stop again');
      },
    },
  );
  const billing =
    (type: 'tier.changed' | 'payment.failed' | 'payment.recovered') =>
    (e: { eventId: string; occurredAt: string; tier?: string }) =>
      void (ctx.inbox = onBillingEvent(ctx.inbox, { ...e, type }));
  setHandler(tierChangedSignal, billing('tier.changed'));
  setHandler(paymentFailedSignal, billing('payment.failed'));
  setHandler(paymentRecoveredSignal, billing('payment.recovered'));
  setHandler(billingChangedSignal, () => void (ctx.inbox = { ...ctx.inbox, recheck: true }));
  setHandler(machineVanishedSignal, (v) => void (ctx.inbox = onMachineVanished(ctx.inbox, v.machineId, ctx.s)));
  setHandler(machineSickSignal, (m) => {
    if (patched(PATCHES.machineSick)) ctx.inbox = onMachineSick(ctx.inbox, m, ctx.s);
  });
  setHandler(
    rollImageUpdate,
    async ({ image }) => {
      const now = rollImageDecision(ctx.s, image, ending);
      if (now.kind === 'skip') return { outcome: 'skipped', detail: now.detail, image: ctx.s.image ?? null };
      const id = ++rollSeq;
      rollAnswers.set(id, undefined);
      ctx.inbox = onRollImage(ctx.inbox, { id, image });
      await condition(() => rollAnswers.get(id) !== undefined);
      const answer = rollAnswers.get(id)!;
      rollAnswers.delete(id);
      return answer;
    },
    {
      validator: (req) => {
        if (typeof req?.image !== 'string' || !req.image.trim()) throw new Error('rollImage needs { image }');
        // Refused, not accepted: a sender retries and reaches the next run (after continue-as-new) or none.
        if (ending) throw new Error('the workflow is ending: send rollImage again');
      },
    },
  );

  /** A stop, or a billing nudge whose stored state calls for one, during a long start cancels the start. */
  async function provisionUnlessStopped() {
    const scope = new CancellationScope();
    let started = false;
    const watch = async () => {
      for (let checked = 0; ;) {
        await condition(() => started || !!ctx.inbox.stop || ctx.inbox.recheck || ctx.inbox.billing.length > checked);
        if (started) return;
        if (ctx.inbox.stop) return scope.cancel();
        checked = ctx.inbox.billing.length; // read, not taken: the loop reads again and records what changed
        ctx.inbox = { ...ctx.inbox, recheck: false };
        const stop = stopDuringStart(await steps.syncBilling('billing re-read during start'), Date.now());
        if (stop) ctx.inbox = onStop(ctx.inbox, stop);
      }
    };
    watch().catch(() => undefined); // rejects only when the whole workflow is cancelled, handled below
    try {
      await scope.run(steps.provision);
    } catch (err) {
      if (!(isCancellation(err) && ctx.inbox.stop && !CancellationScope.current().consideredCancelled)) throw err;
    } finally {
      started = true;
    }
  }

  async function renewalLoop(): Promise<StopDecision | 'continueAsNew'> {
    for (;;) {
      const { s } = ctx;
      const clock = {
        now: Date.now(),
        lastRenewedAt: s.lastRenewedAt ?? s.since,
        renewalIntervalMs,
        graceEndsAt: s.entitlement?.graceEndsAt ?? null,
      };
      const { continueAsNewSuggested } = workflowInfo();
      const step = nextStep(ctx.inbox, clock, {
        ...{ billingRead: ctx.billingRead, renewals: s.renewals, renewedThisRun, continueAsNewSuggested },
        continueAsNewEvery: settings.continueAsNewEvery,
      });
      if (step.kind === 'stop') return step.decision;
      if (step.kind === 'continueAsNew') return 'continueAsNew';
      if (step.kind === 'wait') {
        await condition(
          () => hasNews(ctx.inbox, workflowInfo().continueAsNewSuggested),
          Math.max(1, step.untilMs - Date.now()),
        );
      } else if (step.kind === 'rollImage') {
        const [req, ...rest] = ctx.inbox.rolls;
        ctx.inbox = { ...ctx.inbox, rolls: rest };
        const { answer, stop } = await steps.rollImage(req!.image);
        rollAnswers.set(req!.id, answer);
        if (stop) return stop;
      } else if (step.kind === 'checkHealth') {
        const sick = ctx.inbox.sick!;
        ctx.inbox = { ...ctx.inbox, sick: undefined };
        // Only a running machine: one that is stopping or mid-restart is already being handled.
        const stop = s.state === 'running' && s.machineId ? await steps.checkHealth(sick) : undefined;
        if (stop) return stop;
      } else if (step.kind === 'readBilling') {
        const verdict = await steps.readBilling(ctx.billingRead ? 'billing re-read' : `billing read (run ${s.run})`);
        if (verdict.stop) return verdict.stop;
      } else {
        ctx.inbox = { ...ctx.inbox, renewNow: false, sick: undefined }; // the renewal checks health too
        const stop = await steps.renew();
        if (stop) return stop;
        s.renewals++;
        renewedThisRun++;
      }
    }
  }

  // --- the lifecycle -------------------------------------------------------------------------------------
  steps.publish();
  let end: StopDecision | 'continueAsNew';
  try {
    if (!input.carried) await provisionUnlessStopped();
    end = await renewalLoop();
  } catch (err) {
    const cancelled = isCancellation(err);
    const type = err instanceof ApplicationFailure ? (err.type ?? undefined) : undefined;
    const decision = earlyEnd({ cancelled, type, message: failureReason(err) });
    endRolls(`the workflow is ending: ${decision.reason}`);
    (cancelled ? log.info : log.warn)('machine lifecycle ending early', { reason: decision.reason });
    // Compensation: whatever was created is destroyed, even when the workflow itself is being cancelled.
    await CancellationScope.nonCancellable(() => steps.teardown(decision));
    finished = true;
    if (cancelled) throw err;
    return status();
  }

  endRolls(end === 'continueAsNew' ? 'the workflow continued as new: send rollImage again' : `stopping: ${end.reason}`);
  if (end === 'continueAsNew') {
    continuing = true;
    await condition(allHandlersFinished);
    // Nudges not yet acted on are not lost: the next run reads the stored billing state first.
    return continueAsNew<typeof machineLifecycle>({
      ...input,
      region: ctx.region,
      carried: { ...ctx.s, run: ctx.s.run + 1 },
    });
  }
  await steps.teardown(end);
  finished = true;
  await condition(allHandlersFinished);
  return status();
}

export { machineWorkflowId };
