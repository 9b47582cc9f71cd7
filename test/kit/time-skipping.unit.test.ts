import { quietInstant } from './time-skipping';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

describe('quietInstant: a moment away from every timer', () => {
  const renewals = { grids: [{ from: 1000, every: DAY }] };

  test('a moment already quiet stays as it is', () => {
    expect(quietInstant(1000 + 2 * DAY + 6 * HOUR, renewals, HOUR)).toBe(1000 + 2 * DAY + 6 * HOUR);
  });

  test('whole days from a renewal land on one: moved to the margin past it', () => {
    expect(quietInstant(1000 + 4 * DAY + 70, renewals, HOUR)).toBe(1000 + 4 * DAY + HOUR);
    expect(quietInstant(1000 + 4 * DAY - 5 * 60_000, renewals, HOUR)).toBe(1000 + 4 * DAY + HOUR);
  });

  test('single instants (a grace end) are avoided too, and so is a renewal that moving meets', () => {
    const busy = { ...renewals, instants: [1000 + 2 * DAY + HOUR + 60_000] };
    expect(quietInstant(1000 + 2 * DAY, busy, HOUR)).toBe(1000 + 2 * DAY + 2 * HOUR + 60_000);
    // Past the grace end is within the margin of the next renewal: past that one too.
    const late = { grids: renewals.grids, instants: [1000 + 3 * DAY - 90 * 60_000] };
    expect(quietInstant(1000 + 3 * DAY - 100 * 60_000, late, HOUR)).toBe(1000 + 3 * DAY + HOUR);
  });

  test('renewals too close together for the margin are refused', () => {
    expect(() => quietInstant(0, { grids: [{ from: 0, every: HOUR }] }, HOUR)).toThrow(/margin/);
  });
});
