import { entitlement } from '../common/entitlement';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createApiStack, type ApiStack } from '../api/test-support/api-stack';
import { machineWorkflowId } from '../workflows/contract';
import { runBenchmark } from './lib/infra';
import { envInt, median, percentile, report, round, type Row } from './lib/report';
import { untilValue } from '../test/kit/wait';

/** Polls the machine row; 5 ms is well under the figures measured and costs Postgres nothing. */
async function waitForRow(api: ApiStack, userId: string, status: string, timeoutMs = 60_000) {
  const rowStatus = async () =>
    (
      await api.stack.db.pool.query<{ status: string }>('select status from public.cloud_machines where user_id = $1', [
        userId,
      ])
    ).rows[0]?.status;
  await untilValue(
    `the row of ${userId} to say ${status}`,
    rowStatus,
    (now) => {
      if (now === status) return true;
      if (now === 'error') throw new Error(`machine of ${userId} went to error`);
      return false;
    },
    { timeoutMs, everyMs: 5 },
  );
}

/** The Temporal arm: what a user waits for, from POST /v1/machines to the row saying `running`. */
async function viaTemporal(api: ApiStack) {
  const userId = await api.createUser('elite');
  const token = await api.token(userId);
  const t0 = performance.now();
  const res = await api.call('POST', '/v1/machines', { token, body: { region: 'ams', cpuPriority: 'normal' } });
  if (res.status !== 202) throw new Error(`POST /v1/machines answered ${res.status}: ${res.text}`);
  const accepted = performance.now() - t0;
  await waitForRow(api, userId, 'running');
  const total = performance.now() - t0;
  // Not timed: stop it so machines do not pile up and load the next sample.
  await api.call('POST', '/v1/machines/me/stop', { token });
  await waitForRow(api, userId, 'stopped');
  return { total, accepted };
}

/** The direct arm: the same activity functions, in the workflow's order, called in-process without Temporal. */
async function direct(api: ApiStack) {
  const a = api.stack.activities;
  const userId = await api.createUser('elite');
  const workflowId = machineWorkflowId(userId);
  const base = { userId, workflowId, region: 'ams', cpuPriority: 'normal' as const };
  const steps: Record<string, number> = {};
  const step = async <T>(name: string, fn: () => Promise<T>) => {
    const t = performance.now();
    const out = await fn();
    steps[name] = performance.now() - t;
    return out;
  };
  const t0 = performance.now();
  const facts = await step('entitlement', () => a.syncBilling({ userId, gracePeriodMs: 3 * 864e5 }));
  if (!entitlement(facts, Date.now()).entitled) throw new Error('seeded user is not entitled');
  await step('record provisioning', () =>
    a.recordTransition({ ...base, status: 'provisioning', reason: 'requested', transitionId: randomUUID() }),
  );
  const m = await step('fly create', () =>
    a.ensureFlyMachine({ userId, workflowId, regions: ['ams'], cpuPriority: 'normal' }),
  );
  await step('record starting', () =>
    a.recordTransition({ ...base, status: 'starting', machineId: m.id, transitionId: randomUUID() }),
  );
  await step('fly wait started', () => a.waitForFlyState({ machineId: m.id, state: 'started', deadlineSeconds: 30 }));
  const h = await step('health poll', () => a.waitForRuntimeHealthy({ machineId: m.id, deadlineSeconds: 60 }));
  await step('record running', () =>
    a.recordTransition({
      ...base,
      status: 'running',
      reason: 'healthy',
      machineId: m.id,
      lastHealthyAt: h.checkedAt,
      transitionId: randomUUID(),
    }),
  );
  const total = performance.now() - t0;
  await a.destroyFlyMachines({ userId, machineId: m.id });
  return { total, steps };
}

export async function runOverhead(opts: { n: number; warmup?: number }) {
  const api = await createApiStack();
  try {
    // Warm both paths (bundle, connections, JIT) before anything is timed.
    for (let i = 0; i < (opts.warmup ?? 2); i++) {
      await viaTemporal(api);
      await direct(api);
    }
    const temporal: number[] = [];
    const accepted: number[] = [];
    const directs: number[] = [];
    const stepSamples: Record<string, number[]> = {};
    for (let i = 0; i < opts.n; i++) {
      // ABBA interleaving, so drift in the machine's load falls on both arms alike.
      const order = i % 2 === 0 ? ['t', 'd'] : ['d', 't'];
      for (const arm of order) {
        if (arm === 't') {
          const r = await viaTemporal(api);
          temporal.push(r.total);
          accepted.push(r.accepted);
        } else {
          const r = await direct(api);
          directs.push(r.total);
          for (const [k, v] of Object.entries(r.steps)) (stepSamples[k] ??= []).push(v);
        }
      }
    }
    const mt = median(temporal);
    const md = median(directs);
    const summary: Row[] = [
      {
        arm: 'POST /v1/machines → running (Temporal)',
        n: temporal.length,
        'p50 ms': round(mt),
        'p90 ms': round(percentile(temporal, 90)),
        'min ms': round(Math.min(...temporal)),
      },
      {
        arm: 'same activities called directly',
        n: directs.length,
        'p50 ms': round(md),
        'p90 ms': round(percentile(directs, 90)),
        'min ms': round(Math.min(...directs)),
      },
      {
        arm: 'ratio / added (medians)',
        n: '',
        'p50 ms': `${round(mt / md, 3)}× / +${round(mt - md)} ms`,
        'p90 ms': '',
        'min ms': `+${round(Math.min(...temporal) - Math.min(...directs))} ms`,
      },
    ];
    const steps: Row[] = Object.entries(stepSamples).map(([k, v]) => ({
      'direct step': k,
      'p50 ms': round(median(v)),
    }));
    steps.push({ 'direct step': 'POST /v1/machines answered 202 (Temporal arm)', 'p50 ms': round(median(accepted)) });
    return { summary, steps, ratio: mt / md, addedMs: mt - md };
  } finally {
    await api.close();
  }
}

runBenchmark(module, {}, async (startLoad) => {
  const r = await runOverhead({ n: envInt('BENCH_N', 20) });
  const ok = r.ratio <= 1.1 && r.addedMs <= 150;
  report('overhead', {
    title: 'overhead: Temporal orchestration vs the same Fly + health calls made directly',
    startLoad,
    tables: [{ rows: r.summary }, { caption: 'Where the direct arm spends its time (medians)', rows: r.steps }],
    notes: [
      `Target ≤ 1.1× and ≤ 150 ms added at the median: ${ok ? 'met' : 'MISSED'} (${round(r.ratio, 3)}×, +${round(r.addedMs)} ms).`,
      'In-process stack as in api/test-support/api-stack.ts: Temporal dev server (in-memory SQLite unless BENCH_TEMPORAL_DB=file), real Postgres, fly-local with test/fixtures/fake-runtime.mjs machines, worker and API; each provision a new user; arms interleaved ABBA.',
      'The Temporal arm ends when the cloud_machines row says running (polled every 5 ms); the direct arm when its last recordTransition returns.',
    ],
  });
});
