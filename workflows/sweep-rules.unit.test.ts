import { emptyInbox, hasNews, nextStep, onMachineSick, onStop, outageSince } from './lifecycle-rules';

/** What a health sweep report (the machineSick signal) does to the lifecycle, as inputs → outputs. */

const T = Date.parse('2026-12-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const H = 3_600_000;
const own = { machineId: 'm1', state: 'running' };

test('a report of a sick machine counts only about ours, only while running; the latest is kept', () => {
  const sick = onMachineSick(emptyInbox(), { machineId: 'm1', reason: 'feed disconnected', healthySince: iso(T) }, own);
  expect(sick.sick).toEqual({ reason: 'feed disconnected', healthySince: iso(T) });
  expect(onMachineSick(sick, { machineId: 'm1', reason: 'no answer' }, own).sick).toEqual({ reason: 'no answer' });
  expect(onMachineSick(emptyInbox(), { machineId: 'm2', reason: 'x' }, own).sick).toBeUndefined();
  const restarting = { ...own, state: 'starting' };
  expect(onMachineSick(emptyInbox(), { machineId: 'm1', reason: 'x' }, restarting).sick).toBeUndefined();
  expect(hasNews(sick, false)).toBe(true);
});

test('the loop checks health at once, before a continue-as-new (a report is not carried), never before a stop', () => {
  const clock = { now: T, lastRenewedAt: iso(T - 10 * 60_000), renewalIntervalMs: H, graceEndsAt: null };
  const run = { billingRead: true, renewals: 3, renewedThisRun: 1, continueAsNewEvery: 50 };
  const sick = { ...emptyInbox(), sick: { reason: 'feed disconnected' } };
  expect(nextStep(sick, clock, { ...run, continueAsNewSuggested: true })).toEqual({ kind: 'checkHealth' });
  expect(nextStep({ ...sick, ...onStop(emptyInbox(), {}) }, clock, { ...run, continueAsNewSuggested: false })).toEqual({
    kind: 'stop',
    decision: { reason: 'user_requested', final: 'stopped' },
  });
});

test('an outage the sweep found is counted from the later of the last renewal and its last healthy sighting', () => {
  expect(outageSince(iso(T - H), iso(T - 60_000))).toBe(iso(T - 60_000));
  expect(outageSince(iso(T - 30_000), iso(T - 60_000))).toBe(iso(T - 30_000));
  expect(outageSince(iso(T - H), undefined)).toBe(iso(T - H));
});
