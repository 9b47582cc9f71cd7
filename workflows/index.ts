export { machineLifecycle } from './machine-lifecycle';
