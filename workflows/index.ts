export { healthSweep } from './health-sweep';
export { imageRollout } from './image-rollout';
export { machineLifecycle } from './machine-lifecycle';
export { reconcileFleet } from './reconcile-fleet';
