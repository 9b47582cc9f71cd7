import type { MachineGuest } from '../common/machine-sizes';

/**
 * List prices (USD) the cost benchmark uses, where each comes from, and the product assumptions for what no
 * history shows. Every figure can be overridden by an environment variable (named next to it).
 */

export const SOURCES = {
  temporalActions: 'https://docs.temporal.io/cloud/actions',
  temporalPricing: 'https://docs.temporal.io/cloud/pricing',
  flyPricing: 'https://fly.io/docs/about/pricing/',
};

/** A non-negative number from the environment, or the fallback. */
export function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
}

const DAY_S = 86_400;
/** Fly's monthly prices are per 30 days of runtime (its pricing page says so). */
const FLY_MONTH_S = 30 * DAY_S;

/**
 * Fly's per-region markup over Ashburn (`iad`), as fly.io/docs/about/pricing's region selector applies it
 * (superfly/docs snippets/RegionPricingSelector.jsx: "Price relative to Ashburn (iad), as billed").
 */
export const FLY_REGION_MARKUP: Record<string, number> = {
  iad: 1,
  ewr: 1,
  ams: 1.038461538,
  arn: 1.038461538,
  yyz: 1.115384615,
  lhr: 1.134615385,
  cdg: 1.134615385,
  fra: 1.153846154,
  sjc: 1.192307692,
  lax: 1.199519231,
  ord: 1.25,
  dfw: 1.25,
  sin: 1.269230769,
  syd: 1.269230769,
  nrt: 1.307692308,
  gru: 1.615384615,
};

export function loadPrices() {
  return {
    /** Essentials (and every plan's first 5M) list price: "$50 per million Actions" (docs.temporal.io/cloud/pricing). */
    actionUsdPerMillion: envNumber('COST_ACTION_USD_PER_MILLION', 50),
    /** Pay-as-you-go storage, per GB-hour: active $0.042, retained $0.00105 (docs.temporal.io/cloud/pricing). */
    activeUsdPerGbHour: envNumber('COST_ACTIVE_STORAGE_USD_PER_GBH', 0.042),
    retainedUsdPerGbHour: envNumber('COST_RETAINED_STORAGE_USD_PER_GBH', 0.00105),
    /** Namespace retention of closed histories (docs/deploy.md creates the namespace with 30 days). */
    retentionDays: envNumber('COST_RETENTION_DAYS', 30),
    /** Essentials plan: the greater of $100/month or 5 % of usage, per account (docs.temporal.io/cloud/pricing). */
    planUsdPerMonth: envNumber('COST_TEMPORAL_PLAN_USD_PER_MONTH', 100),
    /**
     * Fly, Ashburn: started shared-cpu-1x 256 MB $2.19 per 30 days, performance-1x 2 GB $33.00, RAM beyond the
     * preset's $6.00/GB per 30 days (fly.io/docs/about/pricing, "Everything we bill for"); billed per second.
     */
    flySharedCpuUsdPer30Days: envNumber('COST_FLY_SHARED_CPU_USD_PER_30D', 2.19),
    flyPerformanceCpuUsdPer30Days: envNumber('COST_FLY_PERFORMANCE_CPU_USD_PER_30D', 33),
    flyRamUsdPerGb30Days: envNumber('COST_FLY_RAM_USD_PER_GB_30D', 6),
    /** A stopped (or suspended) machine: $0.15/GB of rootfs per 30 days (same page). */
    flyRootfsUsdPerGb30Days: envNumber('COST_FLY_ROOTFS_USD_PER_GB_30D', 0.15),
    /** The runtime image's root file system (node:20-slim + one bundled file, machine-runtime/Dockerfile). */
    rootfsGb: envNumber('COST_FLY_ROOTFS_GB', 0.25),
  };
}
export type Prices = ReturnType<typeof loadPrices>;

/** A started Fly machine's price per second: CPU preset (with its included RAM) + extra RAM, × the region's markup. */
export function flyUsdPerSecond(p: Prices, guest: MachineGuest, region: string): number {
  const markup = FLY_REGION_MARKUP[region];
  if (markup === undefined) throw new Error(`no Fly price markup known for region "${region}"`);
  const shared = guest.cpu_kind === 'shared';
  const cpu = (shared ? p.flySharedCpuUsdPer30Days : p.flyPerformanceCpuUsdPer30Days) * guest.cpus;
  const includedGb = guest.cpus * (shared ? 0.25 : 2);
  const extraGb = Math.max(0, guest.memory_mb / 1024 - includedGb);
  return ((cpu + extraGb * p.flyRamUsdPerGb30Days) / FLY_MONTH_S) * markup;
}

export const flyName = (g: MachineGuest) =>
  `${g.cpu_kind === 'shared' ? 'shared-cpu' : 'performance'}-${g.cpus}x ${g.memory_mb} MB`;

/**
 * What no history shows, from the product's behaviour, per user per month. Each row: what, how many, and why.
 * `reconcileIntervalS` is the worker's RECONCILE_INTERVAL, `sweepIntervalS` its HEALTH_SWEEP_INTERVAL, in seconds.
 */
export function productAssumptions(o: {
  days: number;
  reconcileIntervalS: number;
  sweepIntervalS: number;
  fleetUsers: number;
}) {
  const pageHours = envNumber('BENCH_COST_PAGE_HOURS', 30);
  const pageSessions = envNumber('BENCH_COST_PAGE_SESSIONS', 60);
  const deploys = envNumber('BENCH_COST_DEPLOYS_PER_MONTH', 2);
  const reconcileRuns = (o.days * DAY_S) / o.reconcileIntervalS;
  const sweepRuns = (o.days * DAY_S) / o.sweepIntervalS;
  // reconcileFleet per run (workflows/reconcile-fleet.ts): 3 listing activities, ~1 recorded heartbeat (the
  // listing heartbeats per 100 listed, throttled to one per 5 s), plus 3 for the Schedule execution.
  const reconcilePerRun = 3 + 3 + 1;
  // healthSweep per run (workflows/health-sweep.ts): 3 for the Schedule execution + 1 activity (no heartbeats).
  // Its signals (only to sick machines) are in the simulated month's history: it has one.
  const sweepPerRun = 3 + 1;
  return [
    {
      type: 'query',
      source: 'assumption',
      rule: `status while a page is open: api/machine-events.ts reads it every 5 s (1 s while changing) → 720 reads per open hour × ${pageHours} h (${720 * pageHours}), each a describe + the row and its events (api/machine-status.ts): no query, and neither DescribeWorkflowExecution nor the database is an action`,
      count: 0,
    },
    {
      type: 'query',
      source: 'assumption',
      rule: `page sessions × ${pageSessions}: GET /v1/machines/me (as above) and the stream gateway's runningMachineId (describe: the MachineState and FlyMachineId search attributes): no query`,
      count: 0,
    },
    {
      type: 'query',
      source: 'assumption',
      rule: `reconcileFleet (${reconcileRuns} runs, every ${o.reconcileIntervalS} s) reads each workflow's state from visibility and its row (activities/reconcile-activities.ts listMachineWorkflows), re-checks by describe: a query only for a workflow its row disagrees with (a repair), none in steady state`,
      count: 0,
    },
    {
      type: 'update + rollout',
      source: 'assumption',
      rule: `image rollouts × ${deploys}/month: per user ≈ 1 status query + 1 rollImage update + rollMachineImage (1 activity, ~4 heartbeats) + updateFlyMachineImage, waitForFlyState, waitForRuntimeHealthy (3, ~2 heartbeats) + 2 local-activity tasks + 2 upserts ≈ 17 (estimated from code, not simulated)`,
      count: 17 * deploys,
    },
    {
      type: 'schedule (fleet)',
      source: 'assumption',
      rule: `reconcile schedule, per fleet: ${reconcileRuns} runs × ${reconcilePerRun} (3 schedule + 3 activities + ~1 heartbeat), amortised over ${o.fleetUsers} users (BENCH_COST_FLEET_USERS)`,
      count: (reconcileRuns * reconcilePerRun) / o.fleetUsers,
    },
    {
      type: 'schedule (fleet)',
      source: 'assumption',
      rule: `health sweep schedule, per fleet: ${sweepRuns} runs (every ${o.sweepIntervalS} s) × ${sweepPerRun} (3 schedule + 1 activity checking every machine), amortised over ${o.fleetUsers} users`,
      count: (sweepRuns * sweepPerRun) / o.fleetUsers,
    },
  ];
}
