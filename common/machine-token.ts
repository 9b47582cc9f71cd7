/**
 * How a user token minted for a machine is marked (common/credentials.ts mints it, api/auth.ts
 * refuses it as a login). PostgREST and RLS ignore both the issuer and the claim, so the machine's
 * store calls work as the user's; the API does not take it for the user.
 */
export const MACHINE_TOKEN_ISSUER = 'cloud-execution/worker';
export const MACHINE_TOKEN_CLAIM = 'ce_machine';

/**
 * Bounds of a machine's user-token lifetime: about three renewal intervals, never under 10 minutes or
 * over one day (the runtime refuses a handed token that lives longer: machine-runtime/auth.ts).
 */
export const MIN_MACHINE_TOKEN_SECONDS = 600;
export const MAX_MACHINE_TOKEN_SECONDS = 86_400;

/**
 * The lifetime of a machine's user token for a renewal interval: three intervals and five minutes, so two
 * missed renewals in a row (a worker outage, a credential push that failed once) still leave the machine a valid
 * token, and a leaked token is worth at most that long (hourly renewals: 3 h 5 min).
 */
export function machineTokenSeconds(renewalIntervalMs: number): number {
  const wanted = Math.ceil((3 * renewalIntervalMs) / 1000) + 300;
  return Math.min(MAX_MACHINE_TOKEN_SECONDS, Math.max(MIN_MACHINE_TOKEN_SECONDS, wanted));
}
