export { machineLifecycle } from './machine-lifecycle';
export { reconcileFleet } from './reconcile-fleet';
