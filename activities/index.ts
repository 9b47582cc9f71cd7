import { createHealthActivities } from './health-activities';
import { createHealthSweepActivities } from './health-sweep-activities';
import { createMachineImageActivities } from './machine-image-activities';
import { createMachineActivities, RUNTIME_PORT, type MachineActivityDeps } from './machine-activities';
import { createReconcileActivities, type ReconcileDeps } from './reconcile-activities';
import { createRolloutActivities } from './rollout-activities';
import { createStoreActivities } from './store-activities';
import type { ServiceStore } from '../store/types';

/** Every activity of the machine workflow, wired to the dependencies the worker (or a test) hands in. */
export const createActivities = (
  deps: MachineActivityDeps & { store: ServiceStore; temporal?: ReconcileDeps['temporal'] },
) => ({
  ...createMachineActivities(deps),
  ...createMachineImageActivities(deps),
  ...createHealthActivities({ ...deps, runtimePort: deps.runtimePort ?? RUNTIME_PORT }),
  ...createStoreActivities(deps),
  // healthSweep's: checks the fleet and signals sick machines' workflows (the same Temporal client as reconcile's).
  ...createHealthSweepActivities({ ...deps, runtimePort: deps.runtimePort ?? RUNTIME_PORT }),
  // reconcileFleet's: without `temporal` they fail non-retryably when called (see worker/main.ts).
  ...createReconcileActivities(deps),
  // imageRollout's: the same (they list machine workflows and send them rollImage updates).
  ...createRolloutActivities(deps),
});

export type Activities = ReturnType<typeof createActivities>;
