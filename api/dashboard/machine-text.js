// What the machine panel says in words: the current step of a start or a stop (from the status's
// `state`, `reason` and `recent` transitions), and the billing banner (payment overdue, grace period).

const fmtDateTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

/** A stop's or an error's reason code, as a sentence fragment. */
const reasonWords = {
  user_requested: 'you asked to stop it',
  payment_overdue: 'the payment is overdue and its grace period ended',
  downgraded: 'your plan is no longer elite',
  not_entitled: 'your plan does not include a cloud machine',
  cancelled: 'its workflow was cancelled',
  machine_gone: 'the cloud machine disappeared',
  done: 'its run ended',
  requested: 'you asked for it',
  healthy: 'it reported healthy',
};
export const describeReason = (reason) => (reason ? reasonWords[reason] || reason : '');

const ago = (iso, now) => {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
};

/**
 * The step a start (or a stop) is at, in words; '' when nothing is in progress.
 * provisioning → starting → running is three steps; a restart is `starting` with "restart n/m: …".
 */
export function stepText(s, now = Date.now()) {
  if (!s) return '';
  const since = `for ${ago(s.since, now)}`;
  const reason = s.reason || '';
  switch (s.state) {
    case 'provisioning':
      return `Step 1 of 3: asking Fly for a machine in ${s.region} (${since}).`;
    case 'starting': {
      const restart = /^restart (\d+)\/(\d+): (.*)$/.exec(reason);
      if (restart)
        return `Restarting (attempt ${restart[1]} of ${restart[2]}) because ${restart[3]}: waiting for it to report healthy (${since}).`;
      if (reason.startsWith('image_rollout'))
        return `Updating the machine (${reason.replace(/^image_rollout: /, '')}) (${since}).`;
      const machine = s.machineId ? `machine ${s.machineId} created` : 'machine created';
      return `Step 2 of 3: ${machine}; waiting for it to start and report healthy (${since}).`;
    }
    case 'stopping':
      return `Stopping${reason ? ` because ${describeReason(reason)}` : ''} (${since}).`;
    case 'error':
      return `The machine failed: ${describeReason(reason) || 'no reason given'}. Start it again to retry.`;
    case 'stopped':
      return reason ? `Stopped because ${describeReason(reason)}.` : 'Stopped.';
    default:
      return '';
  }
}

/** The billing banner's sentence; '' when the payment is fine. */
export function billingText(s, now = Date.now()) {
  if (!s || s.paymentState !== 'overdue') return '';
  const since = s.paymentOverdueSince ? ` since ${fmtDateTime(s.paymentOverdueSince)}` : '';
  if (s.paymentGraceEndsAt && Date.parse(s.paymentGraceEndsAt) > now)
    return `Payment overdue${since}: your machine keeps running until the grace period ends at ${fmtDateTime(s.paymentGraceEndsAt)}. Update your payment method to keep it.`;
  const ended = s.paymentGraceEndsAt ? ` ended ${fmtDateTime(s.paymentGraceEndsAt)}` : ' has ended';
  const detail = s.entitled ? '' : ` ${s.entitlementDetail}`;
  return `Payment overdue${since}: the grace period${ended}, so the machine cannot run.${detail} Once the payment goes through, a machine stopped for it starts again by itself.`;
}
