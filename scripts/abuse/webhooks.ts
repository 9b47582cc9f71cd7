import { signWebhook } from '../../api/webhooks';
import { TEST_WEBHOOK_SECRET } from '../../api/test-support/api-stack';
import type { AbuseContext } from './harness';

/*
 * Billing webhooks: signatures, replays and bodies the API must refuse, and signed events that must
 * not stop a paying user or keep an unpaid one running.
 */

/** POST /v1/webhooks/billing with a raw body and its x-signature header. */
const poster = (status: AbuseContext['status']) => (rawBody: string, signature: string) =>
  status('POST', '/v1/webhooks/billing', { rawBody, headers: { 'x-signature': signature } });

/** Bad signature, stale, replayed, malformed and huge webhooks (about user B). */
export async function webhookCases(ctx: AbuseContext): Promise<void> {
  const { b, add, status } = ctx;
  const event = (id: string) =>
    JSON.stringify({ id, type: 'payment.failed', userId: b, occurredAt: new Date().toISOString() });
  const hook = poster(status);
  {
    const body = event(`evt-bad-${Date.now()}`);
    const r = await hook(body, signWebhook('whsec-someone-elses-secret', body));
    add('webhook', 'bad signature', 'payment.failed signed with another secret', '401', r.text);
  }
  {
    const body = event(`evt-stale-${Date.now()}`);
    const r = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body, Math.floor(Date.now() / 1000) - 600));
    add('webhook', 'stale', 'valid signature, t = 10 minutes ago', '401', r.text);
  }
  {
    const body = event(`evt-replay-${Date.now()}`);
    const first = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    const second = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    const s = (r: typeof first) => `${r.res.status} ${String(r.res.json?.status ?? '')}`.trim();
    add(
      'webhook',
      'replayed',
      'the same signed event id twice',
      '200 applied, then 200 duplicate',
      `${s(first)}, then ${s(second)}`,
    );
  }
  {
    const body = '{"id": "evt-malformed", "type": "payment.failed", "userId": "not-a-uuid"';
    const r = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    add('webhook', 'malformed', 'correctly signed, truncated JSON', '400', r.text);
  }
  {
    const body = JSON.stringify({
      id: 'evt-schema',
      type: 'tier.changed',
      userId: b,
      occurredAt: 'yesterday',
      tier: 'god',
    });
    const r = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    add('webhook', 'malformed (schema)', 'correctly signed, bad tier and date', '400', r.text);
  }
  {
    const body = JSON.stringify({
      id: 'evt-huge',
      type: 'payment.failed',
      userId: b,
      occurredAt: new Date().toISOString(),
      pad: 'x'.repeat(200_000),
    });
    const r = await hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
    add('webhook', 'huge body', '200 KB body, correctly signed', '413', r.text);
  }
}

/** Billing events that must not be able to stop a paying user, or keep an unpaid one running. */
export async function billingCases(ctx: AbuseContext): Promise<void> {
  const { api, a, b, tokenA, add, status } = ctx;
  const hook = poster(status);
  const signed = (e: Record<string, unknown>) => {
    const body = JSON.stringify({ id: `evt-${e.type as string}-${Math.random().toString(36).slice(2)}`, ...e });
    return hook(body, signWebhook(TEST_WEBHOOK_SECRET, body));
  };
  const outcome = (r: Awaited<ReturnType<typeof hook>>) => `${r.res.status} ${String(r.res.json?.status ?? '')}`;
  {
    const r = await signed({ type: 'tier.changed', userId: a, occurredAt: '2019-06-01T00:00:00Z', tier: 'free' });
    await new Promise((ok) => setTimeout(ok, 1000)); // the nudge has been read by then
    const after = await api.waitForStatus(tokenA, () => true);
    add(
      'billing',
      'ancient downgrade',
      'tier.changed to free, occurredAt 2019, for A (elite profile changed since)',
      '200 applied; A running',
      `${outcome(r)}; A ${after.state}`,
    );
  }
  {
    const t = Date.now();
    await signed({ type: 'payment.recovered', userId: b, occurredAt: new Date(t).toISOString() });
    // 30 minutes before the recovery, written in +02:00: sorts after it as a string.
    const earlier = new Date(t - 30 * 60_000 + 2 * 3600_000).toISOString().replace(/\.\d+Z$/, '+02:00');
    const r = await signed({ type: 'payment.failed', userId: b, occurredAt: earlier });
    add(
      'billing',
      'older event, other offset',
      `payment.failed at ${earlier}, after a later recovery`,
      '200 ignored',
      outcome(r),
    );
  }
  {
    const c = await api.createUser('elite');
    await signed({
      type: 'payment.failed',
      userId: c,
      occurredAt: new Date(Date.now() - 30 * 86_400_000).toISOString(),
    });
    const r = await status('POST', '/v1/machines', { token: await api.token(c) });
    add('billing', 'grace period over', 'POST /v1/machines by a user whose payment failed 30 days ago', '402', r.text);
  }
}
