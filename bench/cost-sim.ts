import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type ActivityInterceptorsFactory } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { createMachineStack } from '../test/machine-stack';
import { historyChain } from '../test/kit/histories';
import { until } from '../test/kit/wait';
import { untilStatus } from '../test/kit/workflow-status';
import { createTimeSkippingEnv, quietBundlerLogger, uniqueId } from '../test/temporal';
import { createMachineWorker, workflowsPath } from '../worker/create-worker';
import { machineLifecycle } from '../workflows/machine-lifecycle';
import {
  lifecycleSettings,
  machineSickSignal,
  machineWorkflowId,
  paymentFailedSignal,
  paymentRecoveredSignal,
  statusQuery,
  tierChangedSignal,
  type CpuPriority,
  type LifecycleSettings,
} from '../workflows/contract';
import { heartbeatThrottleMs, recordedHeartbeats } from './cost-actions';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The worker's heartbeat throttle options (worker/create-worker.ts: max 5 s, default 2 s). */
const WORKER_THROTTLE = { maxThrottleMs: 5_000, defaultThrottleMs: 2_000 };
/** Fly calls during which the machine is not (yet, or no longer) started: billed as rootfs, not as compute. */
const NOT_STARTED_ACTIVITIES = new Set(['ensureFlyMachine', 'restartFlyMachine', 'waitForFlyState']);

export interface MonthRun {
  label: string;
  settings: LifecycleSettings;
  chain: temporal.api.history.v1.IHistory[];
  startMs: number;
  endMs: number;
  heartbeats: { calls: number; recorded: number };
  /** Real seconds the machine spent created-but-not-started or stopped (provisioning and the restart). */
  notStartedSeconds: number;
  log: string[];
  wallSeconds: number;
}

/** Counts every heartbeat() of every (non-local) activity attempt, and when each attempt ran, in real time. */
function heartbeatTally() {
  const attempts: { type: string; throttleMs: number; calls: number[]; start: number; end: number }[] = [];
  const interceptor: ActivityInterceptorsFactory = (ctx) => {
    if (ctx.info.isLocal) return {};
    const a = {
      type: ctx.info.activityType,
      throttleMs: heartbeatThrottleMs(ctx.info.heartbeatTimeoutMs, WORKER_THROTTLE),
      calls: [] as number[],
      start: Date.now(),
      end: 0,
    };
    attempts.push(a);
    const c = ctx as unknown as { heartbeatFn: (d?: unknown) => void };
    const send = c.heartbeatFn;
    c.heartbeatFn = (d?: unknown) => {
      a.calls.push(Date.now());
      send.call(ctx, d);
    };
    return {
      inbound: {
        async execute(input, next) {
          try {
            return await next(input);
          } finally {
            a.end = Date.now();
          }
        },
      },
    };
  };
  const summary = () => ({
    calls: attempts.reduce((n, a) => n + a.calls.length, 0),
    recorded: attempts.reduce((n, a) => n + recordedHeartbeats(a.calls, a.end || Date.now(), a.throttleMs), 0),
    notStartedSeconds:
      attempts.filter((a) => NOT_STARTED_ACTIVITIES.has(a.type)).reduce((s, a) => s + (a.end - a.start), 0) / 1000,
  });
  return { interceptor, summary };
}

/**
 * Moves workflow time to `target` in chunks of at most 12 hours. Each chunk is an `env.sleep` watched in real
 * time: this server sometimes never answers a long sleep (workflows/machine-lifecycle.time-skipping.test.ts skips
 * a test for it); when the clock got there anyway we go on, when it did not we stop with a clear error.
 */
async function advanceTo(env: TestWorkflowEnvironment, target: number, log: string[]) {
  const chunkTimeoutMs = Number(process.env.BENCH_COST_CHUNK_TIMEOUT_S ?? 300) * 1000;
  for (let now = await env.currentTimeMs(); now < target; now = await env.currentTimeMs()) {
    const chunk = Math.min(target - now, 12 * HOUR);
    const sleeping = env.sleep(chunk).then(() => 'slept' as const);
    sleeping.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<'stalled'>(
      (resolve) => (timer = setTimeout(() => resolve('stalled'), chunkTimeoutMs)),
    );
    const outcome = await Promise.race([sleeping, watchdog]);
    clearTimeout(timer);
    if (outcome === 'stalled') {
      const reached = await env.currentTimeMs();
      if (reached < now + chunk)
        throw new Error(
          `the time-skipping server stalled: ${chunkTimeoutMs / 1000} s for ${chunk / HOUR} h of workflow time`,
        );
      log.push(`a ${chunk / HOUR} h sleep did not return, but the clock got there: went on`);
    }
  }
}

/**
 * One user's machine workflow over `days` of workflow time on the time-skipping server, with the real activities
 * of the test harness (Postgres, fly-local running test/fixtures/fake-runtime.mjs): started as the API starts it,
 * a payment failed and recovered a day later, a tier re-check nudge, and one self-heal (the runtime reports
 * unhealthy once; the health sweep's machineSick signal, sent here as the sweep would, starts it). Returns every run's history, the heartbeats the activities sent, and what was done.
 */
export async function simulateMonth(opts: {
  label: string;
  settings: Partial<LifecycleSettings>;
  days: number;
  cpuPriority: CpuPriority;
  region: string;
}): Promise<MonthRun> {
  const wallStart = Date.now();
  const log: string[] = [];
  // This server may skip time while an activity runs: heartbeat timeouts long enough not to fire. The billed
  // heartbeats do not change: the worker caps the throttle at 5 s either way (80 % of 15 s default = 12 s).
  const input = { ...opts.settings, activityHeartbeatSeconds: 3600 };
  const settings = lifecycleSettings(input);
  const env = await createTimeSkippingEnv();
  const failDir = mkdtempSync(join(tmpdir(), 'ce-cost-health-'));
  const stack = await createMachineStack({ machineEnv: { HEALTH_FAIL_DIR: failDir } });
  try {
    const tally = heartbeatTally();
    const taskQueue = uniqueId('bench-cost');
    const worker = await createMachineWorker({
      connection: env.nativeConnection,
      taskQueue,
      activities: stack.activities,
      workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }),
      interceptors: { activity: [tally.interceptor] },
    });
    const userId = await stack.db.createUser('elite');
    const events = () => stack.db.store.listMachineEvents(userId, { limit: 50 });
    const recorded = (what: string, since: number, test: (reason: string) => boolean) =>
      until(
        `the record of ${what}`,
        async () => (await events()).find((e) => e.occurredAt.getTime() >= since && test(e.reason ?? '')),
        60_000,
      );
    const billing = async (type: 'payment.failed' | 'payment.recovered' | 'tier.changed') => {
      const e = { id: uniqueId('evt'), type, userId, occurredAt: new Date(await env.currentTimeMs()).toISOString() };
      const tier = type === 'tier.changed' ? ('elite' as const) : undefined;
      // As the webhook does: record and apply in one transaction, then nudge the running workflow.
      await stack.db.store.applyBillingEvent({ ...e, tier, payload: e, gracePeriodMs: 3 * DAY });
      log.push(`${type} at day ${((Date.parse(e.occurredAt) - startMs) / DAY).toFixed(2)}`);
      return { eventId: e.id, occurredAt: e.occurredAt };
    };
    let startMs = 0;
    const result = await worker.runUntil(async () => {
      startMs = await env.currentTimeMs();
      const at = (fraction: number) => startMs + fraction * opts.days * DAY;
      const handle = await env.client.workflow.start(machineLifecycle, {
        taskQueue,
        workflowId: machineWorkflowId(userId),
        args: [{ userId, region: opts.region, cpuPriority: opts.cpuPriority, settings: input }],
      });
      // Real activities take real time: poll without letting the server skip ahead.
      await untilStatus(handle, 'running', (s) => s.state === 'running', 60_000);

      await advanceTo(env, at(0.15), log);
      const failed = await billing('payment.failed');
      await handle.signal(paymentFailedSignal, failed);
      await recorded('the grace notice', Date.parse(failed.occurredAt), (r) => r.startsWith('payment_failed'));
      await advanceTo(env, Math.min(at(0.15) + DAY, at(0.3)), log);
      const recovered = await billing('payment.recovered');
      await handle.signal(paymentRecoveredSignal, recovered);
      await recorded('the recovery', Date.parse(recovered.occurredAt), (r) => r === 'payment_recovered');

      await advanceTo(env, at(0.4), log);
      await handle.signal(tierChangedSignal, { ...(await billing('tier.changed')), tier: 'elite' });

      // The self-heal, as production finds it: the runtime reports unhealthy, the health sweep (a fleet-wide Schedule,
      // priced as an assumption row) signals the workflow, which checks it itself and restarts it.
      await advanceTo(env, at(0.65), log);
      const sickAt = await env.currentTimeMs();
      writeFileSync(join(failDir, userId), 'no evaluation for 310 s');
      const { machineId } = await handle.query(statusQuery);
      const healthySince = new Date(sickAt - 60_000).toISOString();
      await handle.signal(machineSickSignal, {
        machineId: machineId!,
        reason: 'no evaluation for 310 s',
        healthySince,
      });
      await recorded('the restart', sickAt, (r) => /^restart 1\/\d+/.test(r));
      rmSync(join(failDir, userId)); // the restarted runtime is healthy again
      await recorded('the recovery', sickAt, (r) => r === 'recovered');
      log.push(
        `one self-heal at day ${((sickAt - startMs) / DAY).toFixed(2)} (machineSick from the sweep, restart 1/${settings.maxRestarts})`,
      );

      await advanceTo(env, at(1), log);
      const endMs = await env.currentTimeMs();
      const status = await handle.query(statusQuery);
      if (status.state !== 'running') throw new Error(`the machine is ${status.state} at the month's end`);
      const chain = await historyChain(env.client, handle.workflowId, handle.firstExecutionRunId);
      await handle.terminate('benchmark finished'); // after the histories were read: not counted
      return { chain, endMs };
    });
    const { calls, recorded: hb, notStartedSeconds } = tally.summary();
    return {
      label: opts.label,
      settings,
      chain: result.chain,
      startMs,
      endMs: result.endMs,
      heartbeats: { calls, recorded: hb },
      notStartedSeconds,
      log,
      wallSeconds: (Date.now() - wallStart) / 1000,
    };
  } finally {
    await stack.close();
    await env.teardown();
    rmSync(failDir, { recursive: true, force: true });
  }
}
