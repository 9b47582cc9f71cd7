import { MAX_MACHINE_TOKEN_SECONDS, MIN_MACHINE_TOKEN_SECONDS, machineTokenSeconds } from './machine-token';

test('a machine token lives three renewal intervals and five minutes, within its bounds', () => {
  expect(machineTokenSeconds(3_600_000)).toBe(3 * 3600 + 300); // the default hourly renewal: 3 h 5 min, not 24 h
  expect(machineTokenSeconds(15 * 60_000)).toBe(50 * 60); // the old 15-minute default: 50 minutes
  expect(machineTokenSeconds(1000)).toBe(MIN_MACHINE_TOKEN_SECONDS);
  expect(machineTokenSeconds(30 * 86_400_000)).toBe(MAX_MACHINE_TOKEN_SECONDS);
});
