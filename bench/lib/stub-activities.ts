import type { Activities } from '../../activities';
import type { HealthReport } from '../../activities/health-activities';
import type { MachineSummary } from '../../activities/machine-activities';
import type { BillingFacts } from '../../common/entitlement';

/**
 * The machine workflow's activities with no Fly and no database behind them: every call answers at
 * once as if all were well. For benchmarks that measure Temporal and the workflow (history size,
 * cached workflows at rest), where real machines would only measure fly-local's process spawning.
 * Counts renewals (health checks) and rows recorded (a renewal's last step), so a benchmark can tell when a
 * sweep is done.
 */
export function stubActivities() {
  const counts = { renewals: 0, transitions: 0 };
  const machine = (userId: string): MachineSummary => ({
    id: `m-${userId.slice(0, 8)}`,
    name: `ce-${userId}`,
    state: 'started',
    region: 'ams',
  });
  const healthy = (): HealthReport => ({ ok: true, checkedAt: new Date().toISOString() });
  const stubs = {
    async syncBilling(): Promise<BillingFacts> {
      return { profileTier: 'elite', profileTierChangedAt: '2026-01-01T00:00:00.000Z', account: null };
    },
    async recordTransition() {
      counts.transitions++;
    },
    async ensureFlyMachine(input: { userId: string }) {
      return machine(input.userId);
    },
    async waitForFlyState(input: { machineId: string }) {
      return { id: input.machineId, name: '', state: 'started', region: 'ams' };
    },
    async waitForRuntimeHealthy() {
      return healthy();
    },
    async checkRuntimeHealth() {
      counts.renewals++;
      return healthy();
    },
    async renewMachineCredentials() {
      return { expiresAt: new Date(Date.now() + 3600_000).toISOString() };
    },
    async restartFlyMachine(input: { userId: string }) {
      return machine(input.userId);
    },
    async destroyFlyMachines() {
      return { destroyed: [] };
    },
  };
  // The worker only needs the names the workflow calls; reconcileFleet's activities are not exercised.
  return { activities: stubs as unknown as Activities, counts };
}
