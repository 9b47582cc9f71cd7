import { z } from 'zod';
import { DEFAULT_UPTIME_POLICY, type UptimePolicy } from './uptime-slo';

/**
 * The uptime SLO's two variables (common/uptime-slo.ts has the credit table), shared by the API
 * (`GET /v1/machines/me/uptime`) and the operator CLI (`ops uptime`), so both count credits alike.
 */
export const uptimeEnv = {
  UPTIME_SLO_PERCENT: z.coerce
    .number()
    .gt(0, 'must be a percentage above 0')
    .max(100, 'must be a percentage of at most 100')
    .default(DEFAULT_UPTIME_POLICY.sloPercent),
  UPTIME_MONTHLY_FEE_USD: z.coerce.number().min(0, 'must be 0 or more').default(DEFAULT_UPTIME_POLICY.monthlyFeeUsd),
};

export const uptimePolicyFrom = (c: { UPTIME_SLO_PERCENT: number; UPTIME_MONTHLY_FEE_USD: number }): UptimePolicy => ({
  sloPercent: c.UPTIME_SLO_PERCENT,
  monthlyFeeUsd: c.UPTIME_MONTHLY_FEE_USD,
});
