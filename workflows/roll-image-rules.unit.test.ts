import {
  emptyInbox,
  hasNews,
  nextStep,
  onBillingEvent,
  onRollImage,
  onStop,
  rollImageDecision,
} from './lifecycle-rules';

/** The machine workflow's rules for the rollImage update (lifecycle-rules.ts), as inputs → outputs. */

const T = Date.parse('2026-12-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const V1 = 'registry.fly.io/runtime:v1';
const V2 = 'registry.fly.io/runtime:v2';

describe('rollImageDecision: what a rollImage update means now', () => {
  const running = { state: 'running' as const, machineId: 'm1', image: V1 };

  test.each([
    ['running on another image: roll', running, V2, false, { kind: 'roll' }],
    ['already on the image: skipped', running, V1, false, { kind: 'skip', detail: `already on ${V1}` }],
    [
      'an older run that does not know its image: roll (it reads it first)',
      { ...running, image: undefined },
      V2,
      false,
      { kind: 'roll' },
    ],
    ['the run is ending: skipped', running, V2, true, { kind: 'skip', detail: 'the workflow is ending' }],
    [
      'stopping: skipped',
      { ...running, state: 'stopping' as const },
      V2,
      false,
      { kind: 'skip', detail: 'not running (stopping)' },
    ],
    ['stopped: skipped', { state: 'stopped' as const }, V2, false, { kind: 'skip', detail: 'not running (stopped)' }],
    ['error: skipped', { state: 'error' as const }, V2, false, { kind: 'skip', detail: 'not running (error)' }],
    [
      'provisioning: waits for its turn (running by then)',
      { state: 'provisioning' as const },
      V2,
      false,
      { kind: 'wait' },
    ],
    [
      'self-healing (starting): waits, never races it',
      { ...running, state: 'starting' as const },
      V2,
      false,
      { kind: 'wait' },
    ],
  ] as const)('%s', (_name, own, image, ending, expected) => {
    expect(rollImageDecision(own, image, ending)).toEqual(expected);
  });
});

describe('the loop serializes it with everything else', () => {
  const clock = { now: T, lastRenewedAt: iso(T - 60_000), renewalIntervalMs: 15 * 60_000, graceEndsAt: null };
  const run = {
    billingRead: true,
    renewals: 3,
    renewedThisRun: 1,
    continueAsNewEvery: 50,
    continueAsNewSuggested: false,
  };
  const rolling = onRollImage(emptyInbox(), { id: 1, image: V2 });

  test('a queued update is news: the loop wakes for it', () => {
    expect(hasNews(emptyInbox(), false)).toBe(false);
    expect(hasNews(rolling, false)).toBe(true);
  });

  test('requests queue in order', () => {
    const two = onRollImage(rolling, { id: 2, image: V1 });
    expect(two.rolls).toEqual([
      { id: 1, image: V2 },
      { id: 2, image: V1 },
    ]);
  });

  test.each([
    ['its turn comes when nothing else is due', rolling, clock, run, { kind: 'rollImage' }],
    [
      'before a due renewal (one at a time either way)',
      rolling,
      { ...clock, now: T + 15 * 60_000 },
      run,
      { kind: 'rollImage' },
    ],
    [
      'before continue-as-new: the run that accepted an update answers it',
      rolling,
      clock,
      { ...run, continueAsNewSuggested: true },
      { kind: 'rollImage' },
    ],
    [
      'after a billing re-read (a downgraded user is not rolled)',
      onBillingEvent(rolling, { eventId: 'e', type: 'tier.changed', tier: 'free', occurredAt: iso(T) }),
      clock,
      run,
      { kind: 'readBilling' },
    ],
    [
      'after a stop',
      onStop(rolling, { reason: 'user_requested' }),
      clock,
      run,
      { kind: 'stop', decision: { reason: 'user_requested', final: 'stopped' } },
    ],
  ] as const)('%s', (_name, inbox, c, r, expected) => {
    expect(nextStep(inbox, c, r)).toEqual(expected);
  });
});
