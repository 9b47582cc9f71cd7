import { MAX_MACHINE_TOKEN_SECONDS, MIN_MACHINE_TOKEN_SECONDS, machineTokenSeconds } from './machine-token';

test('a machine token lives two renewal intervals and five minutes, within its bounds', () => {
  expect(machineTokenSeconds(15 * 60_000)).toBe(35 * 60); // the default 15-minute renewal: 35 minutes, not 24 h
  expect(machineTokenSeconds(1000)).toBe(MIN_MACHINE_TOKEN_SECONDS);
  expect(machineTokenSeconds(30 * 86_400_000)).toBe(MAX_MACHINE_TOKEN_SECONDS);
});
