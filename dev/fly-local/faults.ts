import { z } from 'zod';

/** The operations faults and rate limits apply to (the route families of the Machines API). */
export const faultOps = [
  'create',
  'get',
  'list',
  'wait',
  'start',
  'stop',
  'suspend',
  'delete',
  'update',
  'lease',
  'metadata',
] as const;
export type FaultOp = (typeof faultOps)[number];

export const faultSpecSchema = z
  .object({
    /** Answer with this HTTP status (with Fly's `{error}` body). */
    status: z.number().int().min(400).max(599).optional(),
    message: z.string().optional(),
    /** The spec's ErrorResponse `status`, e.g. `insufficient_capacity` for a region without room. */
    flyStatus: z.enum(['unknown', 'insufficient_capacity']).optional(),
    /** Chance of each request getting the fault (latency, hang or status). Default 1. */
    probability: z.number().min(0).max(1).default(1),
    /** Inject only this many times, then the fault clears itself. */
    times: z.number().int().positive().optional(),
    /** Only for requests naming this region (create). */
    region: z.string().optional(),
    latencyMs: z.number().int().min(0).optional(),
    /** Never answer (until fly-local closes): a lost response. */
    hang: z.boolean().optional(),
    /** Do the operation, then answer with `status`: the ambiguous failure (a 408/5xx hiding a success). */
    afterEffect: z.boolean().optional(),
    /** create/start/update: delay between `starting` and `started` (a slow boot). Applies whatever `probability`. */
    bootDelayMs: z.number().int().min(0).optional(),
  })
  .strict();
export type FaultSpec = z.input<typeof faultSpecSchema>;

export const faultsSchema = z.partialRecord(z.enum(faultOps), faultSpecSchema);
export type Faults = z.input<typeof faultsSchema>;
type ParsedFaults = z.output<typeof faultsSchema>;

export interface FaultDecision {
  latencyMs: number;
  hang: boolean;
  error?: { status: number; message: string; flyStatus?: string };
  afterEffect: boolean;
}

export class FaultInjector {
  private faults: ParsedFaults = {};

  constructor(
    faults: Faults = {},
    private readonly random: () => number = Math.random,
  ) {
    this.set(faults);
  }

  set(faults: Faults): void {
    this.faults = faultsSchema.parse(faults);
  }

  get(): ParsedFaults {
    return this.faults;
  }

  bootDelayMs(op: FaultOp): number {
    return this.faults[op]?.bootDelayMs ?? 0;
  }

  decide(op: FaultOp, region?: string): FaultDecision {
    const none: FaultDecision = { latencyMs: 0, hang: false, afterEffect: false };
    const spec = this.faults[op];
    if (!spec) return none;
    if (spec.region && spec.region !== region) return none;
    const injects = spec.latencyMs !== undefined || spec.hang || spec.status !== undefined;
    if (!injects || this.random() >= spec.probability) return none;
    if (spec.times !== undefined) {
      spec.times -= 1;
      // Keep a slow-boot setting when the counted part is used up.
      if (spec.times <= 0)
        this.faults[op] = spec.bootDelayMs ? { probability: 1, bootDelayMs: spec.bootDelayMs } : undefined;
    }
    return {
      latencyMs: spec.latencyMs ?? 0,
      hang: spec.hang ?? false,
      afterEffect: spec.afterEffect ?? false,
      ...(spec.status !== undefined
        ? {
            error: {
              status: spec.status,
              message: spec.message ?? `fly-local injected fault: HTTP ${spec.status} on ${op}`,
              ...(spec.flyStatus ? { flyStatus: spec.flyStatus } : {}),
            },
          }
        : {}),
    };
  }
}

/** Fly's documented limits: per action and per machine (or app) 1 req/s with bursts of 3; get 5/s, bursts of 10. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  take(op: FaultOp, subject: string): boolean {
    const [rate, burst] = op === 'get' ? [5, 10] : [1, 3];
    const key = `${op}:${subject}`;
    const t = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: burst, at: t };
    bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.at) / 1000) * rate);
    bucket.at = t;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
