import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  billingCode,
  causeOf,
  healthCode,
  kindOf,
  meaningOf,
  reasonCodes,
  stopCode,
  transitionCode,
} from './reason-codes';

describe('the reason-code vocabulary', () => {
  test('every code has a kind and a one-line meaning', () => {
    for (const c of reasonCodes) {
      expect(kindOf(c)).toMatch(/^(lifecycle|billing|health|rollout|operator)$/);
      expect(meaningOf(c).length).toBeGreaterThan(10);
      expect(meaningOf(c)).not.toMatch(/\n/);
      // The migration's check constraint accepts exactly this shape.
      expect(c).toMatch(/^[a-z_]+(:[a-z_]+)?$/);
    }
  });

  test('downtime causes: Fly for a gone or failed machine and its API, ours for the runtime, user and billing stops', () => {
    expect(causeOf('machine_gone')).toBe('fly');
    expect(causeOf('fly_api_outage')).toBe('fly');
    expect(causeOf('unhealthy:feed_idle')).toBe('ours');
    expect(causeOf('user_requested')).toBe('user');
    expect(causeOf('payment_overdue')).toBe('billing');
    expect(causeOf('downgraded')).toBe('billing');
    expect(causeOf('payment_failed')).toBeNull(); // the machine runs on through the grace period
  });
});

describe('every reason the workflow, reconcile and the ops CLI write has its code', () => {
  // [state, reason as written] → code. Keep in step with workflows/lifecycle-steps.ts and activities/.
  const written: [string, string | undefined, string][] = [
    ['provisioning', 'requested', 'start_requested'],
    ['starting', 'fly machine 3d8d9 created', 'machine_created'],
    ['running', 'healthy', 'healthy'],
    ['running', undefined, 'healthy'],
    ['running', 'payment_failed: grace until 2026-12-05T00:00:00.000Z', 'payment_failed'],
    ['running', 'payment_recovered', 'payment_recovered'],
    ['starting', 'restart 1/2: no evaluation for 310 s', 'unhealthy:feed_idle'],
    [
      'starting',
      'restart 1/2: feed disconnected (0/1 connections), warming up 2 streams',
      'unhealthy:feed_disconnected',
    ],
    ['starting', 'restart 1/2: machine_gone', 'machine_gone'],
    ['starting', 'restart 1/2: fly state stopped', 'unhealthy:process_exited'],
    ['starting', 'restart 1/2: fly state failed', 'fly_host_failure'],
    ['starting', 'restart 1/2: no answer: fetch failed', 'unhealthy:no_answer'],
    [
      'starting',
      'restart 2/2: runtime did not become healthy within 180 s: feed disconnected',
      'unhealthy:start_timeout',
    ],
    ['starting', 'restart 2/2: Fly startMachine failed: HTTP 503: unavailable', 'fly_api_outage'],
    ['starting', 'restart 1/2: HTTP 500', 'unhealthy:other'],
    ['running', 'recovered', 'recovered'],
    ['stopping', 'user_requested', 'user_requested'],
    ['stopped', 'downgraded', 'downgraded'],
    ['stopped', 'payment_overdue', 'payment_overdue'],
    ['stopped', 'not_entitled', 'not_entitled'],
    ['stopped', 'cancelled', 'operator_cancel'],
    ['stopped', 'operator: noisy neighbour', 'operator_stop'],
    ['stopped', 'operator', 'operator_stop'],
    ['stopped', 'operator: force-stop: stuck worker', 'operator_stop'],
    ['error', 'unhealthy after 2 restarts: no evaluation for 900 s', 'unhealthy:feed_idle'],
    ['error', 'unhealthy after 2 restarts: machine_gone', 'machine_gone'],
    ['error', 'Fly createMachine failed: HTTP 422: bad image', 'step_failed'],
    ['error', 'Fly createMachine failed: no answer from the Machines API: ECONNREFUSED', 'fly_api_outage'],
    ['stopped', 'test finished', 'other'],
    ['starting', 'image_rollout: updating to img:2', 'image_rollout'],
    ['running', 'image_rollout: img:2', 'image_rollout'],
    ['starting', 'image_rollout: img:2 failed (did not start); rolling back to img:1', 'rollout_rollback'],
    ['running', 'image_rollout: rolled back to img:1 (img:2 failed)', 'rollout_rollback'],
    ['starting', 'restart 1/2: rollback to img:1 failed: boom', 'rollout_rollback'],
    ['error', 'reconcile: destroyed orphan machine m1 (no running workflow)', 'reconcile_orphan'],
    ['running', 'reconcile: destroyed duplicate machine m2 (the workflow owns m1)', 'reconcile_duplicate'],
    ['error', 'reconcile: row said running but no workflow runs (no workflow exists)', 'reconcile_stale_row'],
    ['running', 'reconcile: row said starting, the workflow says running on m1', 'reconcile_row_repaired'],
    ['running', 'reconcile: machine m1 vanished; signalled machine-u to renew now', 'machine_gone'],
    ['running', 'reconcile: billing says stop (tier free); signalled machine-u to re-read', 'reconcile_billing'],
  ];
  test.each(written)('%s "%s" → %s', (state, reason, code) => {
    expect(transitionCode(state, reason)).toBe(code);
  });

  test('health and stop reasons on their own', () => {
    expect(healthCode(undefined)).toBe('unhealthy:other');
    expect(healthCode('user token expired')).toBe('unhealthy:token_expired');
    expect(stopCode('unhealthy after 1 restarts: store unreachable: 503')).toBe('unhealthy:store_unreachable');
  });
});

describe('billing events', () => {
  test.each([
    [{ type: 'tier.changed', outcome: 'applied', tier: 'free' }, 'downgraded'],
    [{ type: 'tier.changed', outcome: 'applied', tier: 'elite' }, 'upgraded'],
    [{ type: 'payment.failed', outcome: 'applied' }, 'payment_failed'],
    [{ type: 'payment.recovered', outcome: 'applied' }, 'payment_recovered'],
    [
      { type: 'payment.failed', outcome: 'ignored', detail: 'older than the payment event already applied' },
      'billing_older',
    ],
    [{ type: 'tier.changed', outcome: 'ignored', detail: 'no such user' }, 'billing_unknown_user'],
    [{ type: 'tier.changed', outcome: 'duplicate' }, 'billing_duplicate'],
  ])('%j → %s', (event, code) => {
    expect(billingCode(event)).toBe(code);
  });
});

describe('the documentation', () => {
  test('docs/technical-description.md lists every code with its meaning', () => {
    const doc = readFileSync(join(__dirname, '..', 'docs', 'technical-description.md'), 'utf8');
    const cells = (line: string) => line.split('|').map((x) => x.trim());
    const rows = new Map(
      doc
        .split('\n')
        .filter((l) => l.startsWith('| `'))
        .map((l) => [cells(l)[1], cells(l)]),
    );
    for (const c of reasonCodes)
      expect(rows.get(`\`${c}\``)).toEqual(['', `\`${c}\``, kindOf(c), causeOf(c) ?? '—', meaningOf(c), '']);
  });
});
