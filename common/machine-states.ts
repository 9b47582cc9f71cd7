/**
 * A machine's states, one list for the workflow (its status and the `MachineState` search attribute),
 * the `machines.status` column and the API's responses. `client/schemas.ts` re-declares it (the browser
 * library imports nothing of the server); `client/schemas.test.ts` checks the two are the same.
 */
export const machineStates = ['provisioning', 'starting', 'running', 'stopping', 'stopped', 'error'] as const;
export type MachineState = (typeof machineStates)[number];
/** The states in which a machine is, or is about to be, running: a workflow owns it. */
export const activeMachineStates = [
  'provisioning',
  'starting',
  'running',
  'stopping',
] as const satisfies readonly MachineState[];
