import * as z from 'zod/mini';

// Re-declared from api/machines.ts and the runtime's /ws messages rather than imported: the client is
// bundled for browsers and must not pull in server code (client/api.test.ts checks the two agree).
// zod/mini because it tree-shakes: the dashboard's bundle stays small.

export const machineStates = ['provisioning', 'starting', 'running', 'stopping', 'stopped', 'error'] as const;
export type MachineState = (typeof machineStates)[number];
export const cpuPriorities = ['low', 'normal', 'high'] as const;
export type CpuPriority = (typeof cpuPriorities)[number];

/** Body of `POST /v1/machines`. There is no `userId`: the user is the token's. */
export interface ProvisionRequest {
  /** Fly region code, e.g. "ams" (the API's default). */
  region?: string;
  cpuPriority?: CpuPriority;
}

export const provisionResponseSchema = z.object({
  workflowId: z.string(),
  state: z.enum(machineStates),
});
export type ProvisionResponse = z.infer<typeof provisionResponseSchema>;

export const stopResponseSchema = provisionResponseSchema;
export type StopResponse = z.infer<typeof stopResponseSchema>;

export const machineStatusSchema = z.object({
  state: z.enum(machineStates),
  userId: z.string(),
  machineId: z.nullable(z.string()),
  region: z.string(),
  since: z.string(),
  lastHealthyAt: z.nullable(z.string()),
  lastRenewedAt: z.nullable(z.string()),
  reason: z.nullable(z.string()),
  tier: z.nullable(z.string()),
  entitled: z.boolean(),
  entitlementDetail: z.string(),
  paymentState: z.enum(['ok', 'overdue']),
  paymentOverdueSince: z.nullable(z.string()),
  paymentGraceEndsAt: z.nullable(z.string()),
  recent: z.array(z.object({ at: z.string(), state: z.enum(machineStates), reason: z.optional(z.string()) })),
  workflowId: z.string(),
  source: z.enum(['workflow', 'table']),
});
export type MachineStatus = z.infer<typeof machineStatusSchema>;

/** RFC 9457 problem document, the API's one error shape. */
export const problemSchema = z.looseObject({
  type: z.optional(z.string()),
  title: z.optional(z.string()),
  status: z.optional(z.number().check(z.int())),
  detail: z.optional(z.string()),
  instance: z.optional(z.string()),
  requestId: z.optional(z.string()),
  errors: z.optional(z.array(z.object({ path: z.string(), message: z.string() }))),
});

// --- stream messages (machine-runtime/app.ts `/ws`, relayed by the API) ------------------------------
// Loose objects: the fields the client relies on are checked, anything the runtime adds passes through.

export const helloMessageSchema = z.looseObject({
  type: z.literal('hello'),
  userId: z.string(),
  serverTime: z.string(),
  traders: z.number(),
  streams: z.array(z.string()),
});

export const runtimeHealthSchema = z.looseObject({
  ok: z.boolean(),
  reasons: z.array(z.string()),
  idle: z.boolean(),
  uptimeSeconds: z.number(),
  traders: z.number(),
  streams: z.number(),
  lastEvaluationAt: z.nullable(z.string()),
  candlesProcessed: z.number(),
  signalsFired: z.number(),
});
export const stateMessageSchema = z.looseObject({ type: z.literal('state'), state: runtimeHealthSchema });

export const metricsMessageSchema = z.looseObject({
  type: z.literal('metrics'),
  at: z.string(),
  feedMessages: z.number(),
  malformed: z.number(),
  reconnects: z.number(),
  candlesProcessed: z.number(),
  evaluations: z.number(),
  signalsFired: z.number(),
  signalQueue: z.number(),
  heapUsedBytes: z.number(),
});

const signalSchema = z.looseObject({
  traderId: z.string(),
  traderName: z.string(),
  symbol: z.string(),
  interval: z.string(),
  candleOpenAt: z.string(),
  firedAt: z.string(),
  payload: z.record(z.string(), z.unknown()),
});

const candleSchema = z.looseObject({
  symbol: z.string(),
  interval: z.string(),
  openTime: z.number(),
  closeTime: z.number(),
  open: z.number(),
  high: z.number(),
  low: z.number(),
  close: z.number(),
  volume: z.number(),
});

/**
 * What the runtime sends: candles and signals batched, all those of one event-loop turn per frame (a
 * boundary's burst of closes is a few frames, not one per candle per browser).
 */
export const candlesMessageSchema = z.looseObject({ type: z.literal('candles'), candles: z.array(candleSchema) });
export const signalsMessageSchema = z.looseObject({ type: z.literal('signals'), signals: z.array(signalSchema) });

/**
 * One signal / one candle. The client hands each item of a batch to `on('signal')` / `on('candle')`
 * in this shape; runtimes from before batching sent them as frames of their own.
 */
export const signalMessageSchema = z.looseObject({ type: z.literal('signal'), signal: signalSchema });
export const candleMessageSchema = z.looseObject({ type: z.literal('candle'), candle: candleSchema });

export const streamMessageSchema = z.discriminatedUnion('type', [
  helloMessageSchema,
  stateMessageSchema,
  metricsMessageSchema,
  signalMessageSchema,
  candleMessageSchema,
  signalsMessageSchema,
  candlesMessageSchema,
]);
export type StreamMessage = z.infer<typeof streamMessageSchema>;
export type StreamMessageType = StreamMessage['type'];
export type StreamMessageOf<T extends StreamMessageType> = Extract<StreamMessage, { type: T }>;
export type HelloMessage = StreamMessageOf<'hello'>;
export type StateMessage = StreamMessageOf<'state'>;
export type MetricsMessage = StreamMessageOf<'metrics'>;
export type SignalMessage = StreamMessageOf<'signal'>;
export type CandleMessage = StreamMessageOf<'candle'>;
export type SignalsMessage = StreamMessageOf<'signals'>;
export type CandlesMessage = StreamMessageOf<'candles'>;

// --- start-form options and traders (api/options.ts, api/traders-schema.ts) ---------------------------

export const optionsSchema = z.object({
  regions: z.array(z.object({ code: z.string(), name: z.string() })),
  cpuPriorities: z.array(
    z.object({
      value: z.enum(cpuPriorities),
      label: z.string(),
      guest: z.object({ cpu_kind: z.enum(['shared', 'performance']), cpus: z.number(), memory_mb: z.number() }),
    }),
  ),
  defaults: z.object({ region: z.string(), cpuPriority: z.enum(cpuPriorities) }),
  /** How a page signs in: Supabase Auth (its URL and public anon key) and/or local mode's dev sign-in. */
  auth: z.optional(
    z.object({ supabase: z.nullable(z.object({ url: z.string(), anonKey: z.string() })), devSignIn: z.boolean() }),
  ), // optional: an API from before sign-in options lacks it
});
export type Options = z.infer<typeof optionsSchema>;

/** A stored trader; its definition as the API filled it in (the fields the client relies on checked). */
export const traderSchema = z.object({
  id: z.string(),
  name: z.string(),
  definition: z.looseObject({ symbols: z.array(z.string()), interval: z.string() }),
  enabled: z.boolean(),
  updatedAt: z.string(),
});
export type Trader = z.infer<typeof traderSchema>;
export const traderListSchema = z.object({ traders: z.array(traderSchema), max: z.number() });
export type TraderList = z.infer<typeof traderListSchema>;

/** Body of `POST /v1/traders` (the definition is checked by the API: symbols, interval, filter, fireOn). */
export interface CreateTraderRequest {
  name: string;
  definition: Record<string, unknown>;
  enabled?: boolean;
}
/** Body of `PATCH /v1/traders/:id`: at least one member. */
export type UpdateTraderRequest = Partial<CreateTraderRequest>;

// --- my timeline and my uptime (api/timeline.ts) -------------------------------------------------------

export const timelineKinds = ['lifecycle', 'billing', 'health', 'rollout', 'operator'] as const;
/** One timeline entry; `code` is a reason code (the API's docs list them; new ones may appear). */
export const timelineEntrySchema = z.object({
  at: z.string(),
  kind: z.enum(timelineKinds),
  code: z.string(),
  text: z.string(),
  details: z.record(z.string(), z.unknown()),
});
export type TimelineEntry = z.infer<typeof timelineEntrySchema>;
/** Newest first; pass `next` as `before` for the older page (null: the last one). */
export const timelinePageSchema = z.object({ entries: z.array(timelineEntrySchema), next: z.nullable(z.string()) });
export type TimelinePage = z.infer<typeof timelinePageSchema>;
export interface TimelineQuery {
  /** 1–200, default 50. */
  limit?: number;
  before?: string;
}

const downSchema = z.object({ ours: z.number(), fly: z.number(), user: z.number(), billing: z.number() });
const minutesShape = { entitledMinutes: z.number(), healthyMinutes: z.number(), down: downSchema };
const availability = z.nullable(z.number());
/** Minutes per UTC day by cause (ours, Fly, the user's own stop, billing), and each month against the SLO. */
export const uptimeSchema = z.object({
  from: z.string(),
  to: z.string(),
  days: z.array(z.object({ day: z.string(), ...minutesShape })),
  totals: z.object({ ...minutesShape, availabilityPercent: availability }),
  months: z.array(
    z.object({
      month: z.string(),
      days: z.number(),
      partial: z.boolean(),
      ...minutesShape,
      availabilityPercent: availability,
      sloPercent: z.number(),
      sloMet: z.boolean(),
      creditPercent: z.number(),
      creditUsd: z.number(),
    }),
  ),
  policy: z.object({
    sloPercent: z.number(),
    monthlyFeeUsd: z.number(),
    creditTable: z.array(z.object({ belowPercent: z.number(), creditPercent: z.number() })),
  }),
});
export type Uptime = z.infer<typeof uptimeSchema>;
/** UTC dates (`YYYY-MM-DD`), both included, at most 93 days; default this month so far. */
export interface UptimeQuery {
  from?: string;
  to?: string;
}
