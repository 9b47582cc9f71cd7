import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  FlyMachineIdSearchAttribute,
  MachineStateSearchAttribute,
  RegionSearchAttribute,
  TierSearchAttribute,
  UserIdSearchAttribute,
} from '../common/search-attributes';
import {
  durationMs,
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
  type CpuPriority,
  type MachineLifecycleInput,
  type MachineState,
  type MachineStatus,
  type StopRequest,
} from './contract';

const MAX_REMEMBERED_EVENT_IDS = 1000;
const MAX_TIMELINE = 20;

function ms(duration: string): number {
  const value = durationMs(duration);
  if (value === undefined) throw ApplicationFailure.nonRetryable(`bad duration "${duration}"`, 'InvalidSettings');
  return value;
}

/** `maximumAttempts` undefined: retry until it succeeds (for what must never be left undone). */
const retry = (maximumAttempts?: number): ActivityOptions['retry'] => ({
  initialInterval: '1 second', // Fly allows about 1 request/s per action per machine
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  ...(maximumAttempts ? { maximumAttempts } : {}),
  nonRetryableErrorTypes: ['InvalidSettings'],
});

/**
 * One user's machine, from provisioning to its final stop (DESIGN §3). Long-running: it renews the
 * machine on a timer, reacts to stop and billing signals, and continues-as-new to keep history small.
 */
export async function machineLifecycle(input: MachineLifecycleInput): Promise<MachineStatus> {
  const settings = lifecycleSettings(input.settings);
  const { userId } = input;
  const cpuPriority: CpuPriority = input.cpuPriority ?? 'normal';
  const { workflowId } = workflowInfo();
  const now = () => new Date(Date.now()).toISOString();

  const s: CarriedState = input.carried ?? {
    state: 'provisioning',
    since: now(),
    recent: [],
    appliedEventIds: [],
    billing: {},
    renewals: 0,
    run: 1,
  };
  let region = input.region ?? 'ams';
  let stopRequest: StopRequest | undefined;
  let finished = false;
  /** Set by reconcileFleet's machineVanished signal: renew now rather than at the next timer. */
  let renewNow = false;
  const notices: string[] = [];

  // Activities, each with a timeout and a retry policy that fits what it does. Heartbeat timeouts are
  // short so that a worker that dies mid-activity is noticed in seconds, not minutes.
  const options = {
    // Local activities: a row write or read takes milliseconds, and running it inside the workflow task
    // saves two server round trips each (bench:storm, bench:overhead). Idempotent per transition id, so a
    // re-run after a worker crash writes nothing twice.
    store: { startToCloseTimeout: '30 seconds', retry: { ...retry(), maximumInterval: '1 minute' } },
    fly: { startToCloseTimeout: '1 minute', retry: retry(6) },
    probe: { startToCloseTimeout: '30 seconds', retry: retry(3) },
    waitStarted: {
      startToCloseTimeout: `${settings.startDeadlineSeconds + 90} seconds`,
      heartbeatTimeout: `${settings.activityHeartbeatSeconds} seconds`, // it heartbeats every 2 s, also during a /wait
      retry: retry(3),
    },
    waitHealthy: {
      startToCloseTimeout: `${settings.healthDeadlineSeconds + 30} seconds`,
      heartbeatTimeout: `${settings.activityHeartbeatSeconds} seconds`,
      retry: retry(2),
    },
    // A machine must never be left behind: retry until done.
    cleanup: {
      startToCloseTimeout: '5 minutes',
      heartbeatTimeout: `${settings.activityHeartbeatSeconds + 5} seconds`,
      retry: { ...retry(), maximumInterval: '1 minute' },
    },
  } satisfies Record<string, ActivityOptions & LocalActivityOptions>;
  const acts = proxyActivities<Activities>(options.fly);
  const local = proxyLocalActivities<Activities>(options.store);
  /** Runs an activity with the options of its kind, and a summary so the UI reads like a timeline. */
  function run<K extends keyof Activities>(
    kind: keyof typeof options,
    name: K,
    summary: string,
    ...args: Parameters<Activities[K]>
  ): Promise<Awaited<ReturnType<Activities[K]>>> {
    const activity = (kind === 'store' ? local : acts)[name] as unknown as {
      executeWithOptions(o: ActivityOptions | LocalActivityOptions, a: unknown[]): Promise<unknown>;
    };
    return activity.executeWithOptions({ ...options[kind], summary }, args) as Promise<
      Awaited<ReturnType<Activities[K]>>
    >;
  }

  const status = (): MachineStatus => ({
    state: s.state,
    userId,
    machineId: s.machineId ?? null,
    region,
    since: s.since,
    lastHealthyAt: s.lastHealthyAt ?? null,
    lastRenewedAt: s.lastRenewedAt ?? null,
    reason: s.reason ?? null,
    tier: s.tier ?? null,
    paymentGraceEndsAt: s.billing.graceEndsAt ?? null,
    recent: s.recent,
  });

  /** What the search attributes say now: an upsert is a history event and a visibility write, so only on change. */
  let published = '';
  const publish = () => {
    const attributes = [
      { key: UserIdSearchAttribute, value: userId },
      { key: MachineStateSearchAttribute, value: s.state },
      { key: RegionSearchAttribute, value: region },
      ...(s.tier ? [{ key: TierSearchAttribute, value: s.tier }] : []),
      ...(s.machineId ? [{ key: FlyMachineIdSearchAttribute, value: s.machineId }] : []),
    ];
    const current = JSON.stringify(attributes.map((a) => [a.key.name, a.value]));
    if (current !== published) {
      upsertSearchAttributes(attributes);
      published = current;
    }
    const grace = s.billing.graceEndsAt ? ` · payment overdue, grace until ${s.billing.graceEndsAt}` : '';
    setCurrentDetails(
      `${s.state}${s.reason ? ` (${s.reason})` : ''} · machine ${s.machineId ?? 'none'} in ${region}` +
        `${s.lastHealthyAt ? ` · healthy at ${s.lastHealthyAt}` : ''}${grace}`,
    );
  };

  /** Every transition: workflow state, search attributes, details, and the row + audit event. */
  async function transition(
    state: MachineState,
    reason?: string,
    extra: { errorMessage?: string; lastHealthyAt?: string } = {},
  ) {
    if (state !== s.state) s.since = now();
    s.state = state;
    s.reason = reason;
    s.recent = [...s.recent, { at: now(), state, reason }].slice(-MAX_TIMELINE);
    publish();
    await run('store', 'recordTransition', `record ${state}${reason ? `: ${reason}` : ''}`, {
      userId,
      status: state,
      reason,
      workflowId,
      machineId: s.machineId,
      region,
      cpuPriority,
      errorMessage: extra.errorMessage,
      lastHealthyAt: extra.lastHealthyAt,
      transitionId: uuid4(),
    });
  }

  // --- messages -------------------------------------------------------------------------------
  const firstTime = (eventId: string) => {
    if (s.appliedEventIds.includes(eventId)) return false;
    s.appliedEventIds = [...s.appliedEventIds, eventId].slice(-MAX_REMEMBERED_EVENT_IDS);
    return true;
  };
  const requestStop = (req: StopRequest) => {
    stopRequest ??= { reason: req.reason ?? 'user_requested', requestedBy: req.requestedBy ?? 'user' };
  };

  setHandler(statusQuery, status);
  setHandler(stopSignal, requestStop);
  setHandler(stopUpdate, async (req) => {
    requestStop(req);
    await condition(() => finished);
    return status();
  });
  setHandler(tierChangedSignal, (e) => {
    if (!firstTime(e.eventId)) return;
    // Out of order: an older tier event arriving after a newer one changes nothing.
    if (s.tierEventAt && e.occurredAt < s.tierEventAt) return;
    s.tierEventAt = e.occurredAt;
    s.tier = e.tier;
    // A downgrade publishes the tier with the `stopping` transition that follows at once.
    if (e.tier !== 'elite') requestStop({ reason: 'downgraded', requestedBy: 'billing' });
    else publish();
  });
  setHandler(paymentFailedSignal, (e) => {
    if (!firstTime(e.eventId) || (s.billing.lastEventAt && e.occurredAt < s.billing.lastEventAt)) return;
    s.billing.lastEventAt = e.occurredAt;
    // A second failure does not extend the grace period the first one opened.
    s.billing.graceEndsAt ??= new Date(Date.parse(e.occurredAt) + ms(settings.paymentGracePeriod)).toISOString();
    notices.push(`payment_failed: grace until ${s.billing.graceEndsAt}`);
    publish();
  });
  setHandler(machineVanishedSignal, (v) => {
    // Only about the machine this run owns, and only while running: a restart in progress already handles it.
    if (v.machineId === s.machineId && s.state === 'running') renewNow = true;
  });
  setHandler(paymentRecoveredSignal, (e) => {
    if (!firstTime(e.eventId) || (s.billing.lastEventAt && e.occurredAt < s.billing.lastEventAt)) return;
    s.billing.lastEventAt = e.occurredAt;
    if (s.billing.graceEndsAt) notices.push('payment_recovered');
    s.billing.graceEndsAt = undefined;
    publish();
  });

  // --- lifecycle ------------------------------------------------------------------------------
  /**
   * Records a transition while the work it announces runs: the row does not gate the Fly call, and one
   * round trip less is ~15 ms off every provisioning. The record always lands before the next one starts,
   * so rows never go back in time, even when the work fails.
   */
  async function alongside<T>(recording: Promise<void>, work: Promise<T>): Promise<T> {
    recording.catch(() => undefined); // observed in `finally`; this only keeps an early failure from being "unhandled"
    try {
      return await work;
    } finally {
      await recording;
    }
  }

  const graceExpired = () => !!s.billing.graceEndsAt && Date.now() >= Date.parse(s.billing.graceEndsAt);

  async function provision() {
    const entitlement = await run('store', 'getEntitlement', 'entitlement check', { userId });
    s.tier = entitlement.tier ?? undefined;
    if (!entitlement.entitled)
      throw ApplicationFailure.nonRetryable(
        `tier ${entitlement.tier ?? 'none'} is not entitled to a machine`,
        'NotEntitled',
      );
    const machine = await alongside(
      transition('provisioning', 'requested'),
      run('fly', 'ensureFlyMachine', 'create or adopt the Fly machine', {
        userId,
        workflowId,
        regions: [region, ...settings.fallbackRegions.filter((r) => r !== region)],
        cpuPriority,
      }),
    );
    s.machineId = machine.id;
    region = machine.region || region;
    await alongside(transition('starting', `fly machine ${machine.id} ${machine.state}`), startAndCheck());
    s.lastRenewedAt = now();
    await transition('running', 'healthy', { lastHealthyAt: s.lastHealthyAt });
  }

  /** Fly `started`, then the runtime's own health. */
  async function startAndCheck() {
    const machineId = s.machineId!;
    await run('waitStarted', 'waitForFlyState', 'wait for Fly state started', {
      machineId,
      state: 'started',
      deadlineSeconds: settings.startDeadlineSeconds,
    });
    const health = await run('waitHealthy', 'waitForRuntimeHealthy', 'wait for runtime /health', {
      machineId,
      deadlineSeconds: settings.healthDeadlineSeconds,
    });
    s.lastHealthyAt = health.checkedAt;
  }

  /** Entitlement re-check, credential renewal, health check and bounded self-heal. Returns a stop reason, if any. */
  async function renew(): Promise<{ stop: string; final: 'stopped' | 'error' } | undefined> {
    const entitlement = await run('store', 'getEntitlement', 'entitlement re-check', { userId });
    s.tier = entitlement.tier ?? undefined;
    if (!entitlement.entitled) return { stop: 'downgraded', final: 'stopped' };
    const machineId = s.machineId!;
    // Independent of each other, so side by side: a renewal is one round trip shorter, which counts when
    // thousands renew at once (bench:fleet's sweep).
    const [, health] = await Promise.all([
      run('probe', 'renewMachineCredentials', 'renew machine credentials', { userId, machineId }).catch((err) => {
        // An unreachable runtime is the health check's business: it restarts the machine with fresh credentials.
        log.warn('credential renewal failed', { error: String(err) });
      }),
      run('probe', 'checkRuntimeHealth', 'health check', { machineId }),
    ]);
    s.lastRenewedAt = now();
    if (health.ok) {
      s.lastHealthyAt = health.checkedAt;
      await transition('running', undefined, { lastHealthyAt: health.checkedAt });
      return undefined;
    }
    let lastReason = health.reason ?? 'unhealthy';
    for (let attempt = 1; attempt <= settings.maxRestarts; attempt++) {
      await transition('starting', `restart ${attempt}/${settings.maxRestarts}: ${lastReason}`);
      try {
        if (lastReason === 'machine_gone') {
          // Destroyed behind our back (by hand, or by Fly): provision a replacement.
          const machine = await run('fly', 'ensureFlyMachine', 'replace the vanished Fly machine', {
            userId,
            workflowId,
            regions: [region, ...settings.fallbackRegions],
            cpuPriority,
          });
          s.machineId = machine.id;
        } else {
          await run('fly', 'restartFlyMachine', 'restart the sick machine', {
            userId,
            workflowId,
            machineId: s.machineId!,
            cpuPriority,
          });
        }
        await startAndCheck();
        await transition('running', 'recovered', { lastHealthyAt: s.lastHealthyAt });
        return undefined;
      } catch (err) {
        if (isCancellation(err)) throw err;
        lastReason = err instanceof Error ? err.message : String(err);
      }
    }
    return { stop: `unhealthy after ${settings.maxRestarts} restarts: ${lastReason}`, final: 'error' };
  }

  /** Stops and destroys the machine (all of the user's, to be sure) and records the final state. */
  async function teardown(reason: string, final: 'stopped' | 'error') {
    await alongside(
      transition('stopping', reason),
      run('cleanup', 'destroyFlyMachines', 'stop and destroy the Fly machine', { userId, machineId: s.machineId }),
    );
    s.machineId = undefined;
    await transition(final, reason, final === 'error' ? { errorMessage: reason } : {});
  }

  type LoopOutcome = { kind: 'stop'; reason: string; final: 'stopped' | 'error' } | { kind: 'continueAsNew' };

  async function renewalLoop(): Promise<LoopOutcome> {
    const interval = ms(settings.renewalInterval);
    for (;;) {
      const nextRenewal = Date.parse(s.lastRenewedAt ?? s.since) + interval;
      const wakeAt = Math.min(nextRenewal, s.billing.graceEndsAt ? Date.parse(s.billing.graceEndsAt) : Infinity);
      await condition(
        () =>
          stopRequest !== undefined ||
          notices.length > 0 ||
          renewNow ||
          graceExpired() ||
          workflowInfo().continueAsNewSuggested,
        Math.max(1, wakeAt - Date.now()),
      );
      if (stopRequest) return { kind: 'stop', reason: stopRequest.reason, final: 'stopped' };
      if (graceExpired()) return { kind: 'stop', reason: 'payment_overdue', final: 'stopped' };
      while (notices.length > 0) await transition(s.state, notices.shift());
      if (workflowInfo().continueAsNewSuggested) return { kind: 'continueAsNew' };
      if (Date.now() >= nextRenewal || renewNow) {
        renewNow = false;
        const outcome = await renew();
        if (outcome) return { kind: 'stop', reason: outcome.stop, final: outcome.final };
        s.renewals++;
        if (s.renewals % settings.continueAsNewEvery === 0) return { kind: 'continueAsNew' };
      }
    }
  }

  publish();
  let outcome: LoopOutcome;
  try {
    if (!input.carried) {
      // A stop (or downgrade) during a long start cancels the start instead of waiting it out.
      const provisioning = new CancellationScope();
      condition(() => stopRequest !== undefined).then(
        () => provisioning.cancel(),
        () => undefined, // rejects only when the whole workflow is cancelled, which the catch below handles
      );
      try {
        await provisioning.run(provision);
      } catch (err) {
        if (!(isCancellation(err) && stopRequest && !CancellationScope.current().consideredCancelled)) throw err;
      }
    }
    outcome = await renewalLoop();
  } catch (err) {
    const cancelled = isCancellation(err);
    const reason = cancelled
      ? 'cancelled'
      : err instanceof ApplicationFailure && err.type === 'NotEntitled'
        ? 'not_entitled'
        : failureReason(err);
    (cancelled ? log.info : log.warn)('machine lifecycle ending early', { reason });
    // Compensation: whatever was created is destroyed, even when the workflow itself is being cancelled.
    await CancellationScope.nonCancellable(() =>
      teardown(reason, cancelled || reason === 'not_entitled' ? 'stopped' : 'error'),
    );
    finished = true;
    if (cancelled) throw err;
    return status();
  }

  if (outcome.kind === 'continueAsNew') {
    await condition(allHandlersFinished);
    return continueAsNew<typeof machineLifecycle>({ ...input, region, carried: { ...s, run: s.run + 1 } });
  }
  await teardown(outcome.reason, outcome.final);
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
