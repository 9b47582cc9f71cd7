import { cpuPriorities as serverCpuPriorities } from '../workflows/contract';
import { machineStates as serverStates } from '../common/machine-states';
import { cpuPriorities, machineStates } from './schemas';

// The browser library re-declares the server's vocabularies (it imports nothing of the server): the
// type check fails to compile when they drift apart, the test says which entry differs.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree: [Same<typeof machineStates, typeof serverStates>, Same<typeof cpuPriorities, typeof serverCpuPriorities>] =
  [true, true];

test('the client knows the same machine states and CPU priorities as the server, in the same order', () => {
  expect(agree).toEqual([true, true]);
  expect([...machineStates]).toEqual([...serverStates]);
  expect([...cpuPriorities]).toEqual([...serverCpuPriorities]);
});
