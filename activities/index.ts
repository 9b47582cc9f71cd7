import { createMachineActivities, type MachineActivityDeps } from './machine-activities';
import { createReconcileActivities, type ReconcileDeps } from './reconcile-activities';
import { createStoreActivities } from './store-activities';
import type { ServiceStore } from '../store/types';

export type { MachineSummary, HealthReport } from './machine-activities';

/** Every activity of the machine workflow, wired to the dependencies the worker (or a test) hands in. */
export const createActivities = (
  deps: MachineActivityDeps & { store: ServiceStore; temporal?: ReconcileDeps['temporal'] },
) => ({
  ...createMachineActivities(deps),
  ...createStoreActivities(deps),
  // reconcileFleet's: without `temporal` they fail non-retryably when called (see worker/main.ts).
  ...createReconcileActivities(deps),
});

export type Activities = ReturnType<typeof createActivities>;
