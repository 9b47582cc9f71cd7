import { createHealthActivities } from './health-activities';
import { createMachineActivities, RUNTIME_PORT, type MachineActivityDeps } from './machine-activities';
import { createReconcileActivities, type ReconcileDeps } from './reconcile-activities';
import { createStoreActivities } from './store-activities';
import type { ServiceStore } from '../store/types';

/** Every activity of the machine workflow, wired to the dependencies the worker (or a test) hands in. */
export const createActivities = (
  deps: MachineActivityDeps & { store: ServiceStore; temporal?: ReconcileDeps['temporal'] },
) => ({
  ...createMachineActivities(deps),
  ...createHealthActivities({ ...deps, runtimePort: deps.runtimePort ?? RUNTIME_PORT }),
  ...createStoreActivities(deps),
  // reconcileFleet's: without `temporal` they fail non-retryably when called (see worker/main.ts).
  ...createReconcileActivities(deps),
});

export type Activities = ReturnType<typeof createActivities>;
