import { entitlement, type BillingAccount, type BillingFacts } from '../common/entitlement';
import {
  billingVerdict,
  earlyEnd,
  emptyInbox,
  hasNews,
  nextStep,
  onBillingEvent,
  onMachineVanished,
  onStop,
  provisionVerdict,
  repairFor,
  wakeAt,
  type Clock,
} from './lifecycle-rules';

/** The lifecycle's rules as plain inputs → outputs (no server), the way planReconcile is tested. */

const T = Date.parse('2026-12-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const H = 3_600_000;

const account = (a: Partial<BillingAccount> = {}): BillingAccount => ({
  tier: null,
  tierChangedAt: null,
  paymentState: 'ok',
  overdueSince: null,
  graceEndsAt: null,
  lastPaymentEventAt: null,
  ...a,
});
const facts = (f: Partial<BillingFacts> = {}): BillingFacts => ({
  profileTier: 'elite',
  profileTierChangedAt: iso(T - 24 * H),
  account: null,
  ...f,
});
const overdue = (since: number, graceMs = 3 * 24 * H) =>
  account({ paymentState: 'overdue', overdueSince: iso(since), graceEndsAt: iso(since + graceMs) });

describe('entitlement = profile tier + billing state + now', () => {
  test.each([
    ['the profile alone', facts(), true, 'elite', 'profile'],
    ['a free profile', facts({ profileTier: 'free' }), false, 'free', 'profile'],
    ['no profile, no account', facts({ profileTier: null, profileTierChangedAt: null }), false, null, 'none'],
    [
      'a downgrade newer than the profile',
      facts({ account: account({ tier: 'free', tierChangedAt: iso(T - H) }) }),
      false,
      'free',
      'billing',
    ],
    [
      'an ancient downgrade, older than the profile',
      facts({ account: account({ tier: 'free', tierChangedAt: '2019-06-01T00:00:00Z' }) }),
      true,
      'elite',
      'profile',
    ],
    [
      'an upgrade billing reported after the app last changed the profile',
      facts({ profileTier: 'pro', account: account({ tier: 'elite', tierChangedAt: iso(T - H) }) }),
      true,
      'elite',
      'billing',
    ],
    [
      'a tie: the profile wins',
      facts({ profileTier: 'elite', account: account({ tier: 'free', tierChangedAt: iso(T - 24 * H) }) }),
      true,
      'elite',
      'profile',
    ],
    [
      'instants, not strings: +02:00 that is earlier than the profile',
      // 13:00+02:00 is 11:00Z, before the profile's 11:30Z, though it sorts after it as a string.
      facts({
        profileTierChangedAt: '2026-12-01T11:30:00Z',
        account: account({ tier: 'free', tierChangedAt: '2026-12-01T13:00:00+02:00' }),
      }),
      true,
      'elite',
      'profile',
    ],
  ])('%s', (_name, f, entitled, tier, source) => {
    expect(entitlement(f, T)).toMatchObject({ entitled, tier, tierSource: source });
  });

  test('inside the grace period: entitled and overdue; at its end: denied, with a detail a person can read', () => {
    const f = facts({ account: overdue(T - 2 * 24 * H) });
    expect(entitlement(f, T)).toMatchObject({
      entitled: true,
      paymentState: 'overdue',
      graceEndsAt: iso(T + 24 * H),
    });
    expect(entitlement(f, T + 24 * H)).toMatchObject({
      entitled: false,
      denied: 'payment_overdue',
      detail: `payment overdue since ${iso(T - 2 * 24 * H)}, grace ended ${iso(T + 24 * H)}`,
    });
  });

  test('not elite wins over overdue (a downgraded user is told about the tier)', () => {
    const f = facts({ profileTier: 'free', account: overdue(T - 10 * 24 * H) });
    expect(entitlement(f, T)).toMatchObject({ entitled: false, denied: 'not_elite' });
  });

  test('instants from Postgres (+00:00, microseconds) come out as ISO', () => {
    const f = facts({ account: overdue(T) });
    f.account!.graceEndsAt = '2026-12-04T12:00:00.000123+00:00';
    expect(entitlement(f, T).graceEndsAt).toBe('2026-12-04T12:00:00.000Z');
  });
});

describe('what a message does', () => {
  test('the first stop wins; defaults fill a bare request', () => {
    const first = onStop(emptyInbox(), {});
    expect(first.stop).toEqual({ reason: 'user_requested', requestedBy: 'user' });
    expect(onStop(first, { reason: 'downgraded', requestedBy: 'billing' }).stop).toEqual(first.stop);
  });

  test('a billing signal queues its event once per id', () => {
    const e = { eventId: 'e1', type: 'payment.failed' as const, occurredAt: iso(T) };
    const once = onBillingEvent(emptyInbox(), e);
    expect(onBillingEvent(once, e).billing).toHaveLength(1);
    expect(onBillingEvent(once, { ...e, eventId: 'e2' }).billing).toHaveLength(2);
  });

  test('a vanished machine matters only when it is ours and we are running', () => {
    expect(onMachineVanished(emptyInbox(), 'm1', { machineId: 'm1', state: 'running' }).renewNow).toBe(true);
    expect(onMachineVanished(emptyInbox(), 'm2', { machineId: 'm1', state: 'running' }).renewNow).toBe(false);
    expect(onMachineVanished(emptyInbox(), 'm1', { machineId: 'm1', state: 'starting' }).renewNow).toBe(false);
  });

  test('news: anything that must not wait for the timer', () => {
    expect(hasNews(emptyInbox(), false)).toBe(false);
    expect(hasNews(emptyInbox(), true)).toBe(true);
    expect(hasNews(onStop(emptyInbox(), {}), false)).toBe(true);
  });
});

describe('when to wake and what to do next', () => {
  const clock = (c: Partial<Clock> = {}): Clock => ({
    now: T,
    lastRenewedAt: iso(T - 10 * 60_000),
    renewalIntervalMs: 15 * 60_000,
    graceEndsAt: null,
    ...c,
  });
  const run = (r: Partial<Parameters<typeof nextStep>[2]> = {}) => ({
    billingRead: true,
    renewals: 3,
    renewedThisRun: 1,
    continueAsNewEvery: 50,
    continueAsNewSuggested: false,
    ...r,
  });

  test('wake at the next renewal, or at the grace end when that comes first', () => {
    expect(wakeAt(clock())).toBe(T + 5 * 60_000);
    expect(wakeAt(clock({ graceEndsAt: iso(T + 60_000) }))).toBe(T + 60_000);
  });

  test.each([
    ['nothing due: wait for the renewal', emptyInbox(), clock(), run(), { kind: 'wait', untilMs: T + 5 * 60_000 }],
    [
      'a new run reads the stored billing state first',
      emptyInbox(),
      clock(),
      run({ billingRead: false }),
      { kind: 'readBilling' },
    ],
    [
      'a stop beats everything',
      onBillingEvent(onStop(emptyInbox(), { reason: 'user_requested' }), {
        eventId: 'e',
        type: 'payment.failed',
        occurredAt: iso(T),
      }),
      clock({ now: T + H }),
      run({ continueAsNewSuggested: true }),
      { kind: 'stop', decision: { reason: 'user_requested', final: 'stopped' } },
    ],
    [
      'a billing signal is a reason to re-read, never to act on its payload',
      onBillingEvent(emptyInbox(), { eventId: 'e', type: 'tier.changed', tier: 'free', occurredAt: iso(T) }),
      clock(),
      run(),
      { kind: 'readBilling' },
    ],
    [
      'the grace end: re-read (a recovery stored meanwhile must win), not stop outright',
      emptyInbox(),
      clock({ graceEndsAt: iso(T) }),
      run(),
      { kind: 'readBilling' },
    ],
    ['the renewal is due', emptyInbox(), clock({ now: T + 5 * 60_000 }), run(), { kind: 'renew' }],
    ['reconcile saw the machine vanish', { ...emptyInbox(), renewNow: true }, clock(), run(), { kind: 'renew' }],
    [
      'the SDK suggests continue-as-new',
      emptyInbox(),
      clock(),
      run({ continueAsNewSuggested: true }),
      { kind: 'continueAsNew' },
    ],
    ['every N renewals', emptyInbox(), clock(), run({ renewals: 50 }), { kind: 'continueAsNew' }],
    [
      '…but not before a new run has renewed once',
      emptyInbox(),
      clock(),
      run({ renewals: 50, renewedThisRun: 0 }),
      { kind: 'wait', untilMs: T + 5 * 60_000 },
    ],
  ] as const)('%s', (_name, inbox, c, r, expected) => {
    expect(nextStep(inbox, c, r)).toEqual(expected);
  });
});

describe('what billing means for a running machine', () => {
  const paid = entitlement(facts(), T);

  test('paid up, nothing changed: no stop, no notice', () => {
    expect(billingVerdict(paid, facts(), T)).toEqual({ entitlement: paid });
  });
  test('a downgrade stops with "downgraded"', () => {
    const v = billingVerdict(paid, facts({ profileTier: 'pro', profileTierChangedAt: iso(T) }), T);
    expect(v.stop).toEqual({ reason: 'downgraded', final: 'stopped' });
  });
  test('the grace period opening is a notice, once; the same state read again is none', () => {
    const f = facts({ account: overdue(T - H) });
    const opened = billingVerdict(paid, f, T);
    expect(opened.notice).toBe(`payment_failed: grace until ${iso(T - H + 3 * 24 * H)}`);
    expect(billingVerdict(opened.entitlement, f, T + 1000)).toEqual({ entitlement: entitlement(f, T + 1000) });
  });
  test('a run that starts inside the grace period knows it at once (no previous read)', () => {
    expect(billingVerdict(undefined, facts({ account: overdue(T - H) }), T).notice).toMatch(/^payment_failed/);
  });
  test('recovery closes it', () => {
    const before = entitlement(facts({ account: overdue(T - H) }), T);
    expect(billingVerdict(before, facts({ account: account() }), T).notice).toBe('payment_recovered');
  });
  test('the grace period over: stop with "payment_overdue"', () => {
    const f = facts({ account: overdue(T - 4 * 24 * H) });
    expect(billingVerdict(paid, f, T).stop).toEqual({ reason: 'payment_overdue', final: 'stopped' });
  });
  test('at provisioning: not_entitled, or payment_overdue', () => {
    expect(provisionVerdict(facts({ profileTier: 'free' }), T).refuse).toBe('not_entitled');
    expect(provisionVerdict(facts({ account: overdue(T - 4 * 24 * H) }), T).refuse).toBe('payment_overdue');
    expect(provisionVerdict(facts({ account: overdue(T - H) }), T).refuse).toBeUndefined();
  });
});

describe('what a renewal’s health check means, and how a run ends early', () => {
  test.each([
    [{ ok: true }, 1, 2, { kind: 'healthy' }],
    [{ ok: false, reason: 'feed disconnected' }, 1, 2, { kind: 'restart' }],
    [{ ok: false, reason: 'machine_gone' }, 2, 2, { kind: 'replace' }],
    [
      { ok: false, reason: 'feed disconnected' },
      3,
      2,
      { kind: 'give up', decision: { reason: 'unhealthy after 2 restarts: feed disconnected', final: 'error' } },
    ],
    [
      { ok: false },
      1,
      0,
      { kind: 'give up', decision: { reason: 'unhealthy after 0 restarts: unhealthy', final: 'error' } },
    ],
  ] as const)('%j, attempt %i of %i restarts → %j', (health, attempt, max, expected) => {
    expect(repairFor(health, attempt, max)).toEqual(expected);
  });

  test.each([
    [
      { cancelled: true, message: 'x' },
      { reason: 'cancelled', final: 'stopped' },
    ],
    [
      { cancelled: false, type: 'NotEntitled', message: 'payment_overdue' },
      { reason: 'payment_overdue', final: 'stopped' },
    ],
    [
      { cancelled: false, type: 'FlyClientError', message: 'machine limit reached' },
      { reason: 'machine limit reached', final: 'error' },
    ],
  ])('%j → %j', (err, expected) => {
    expect(earlyEnd(err)).toEqual(expected);
  });
});
