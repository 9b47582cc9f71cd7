import * as z from 'zod/mini';
import { CloudExecutionError } from './errors';
import {
  machineStatusSchema,
  optionsSchema,
  problemSchema,
  provisionResponseSchema,
  stopResponseSchema,
  timelinePageSchema,
  traderListSchema,
  traderSchema,
  uptimeSchema,
  type CreateTraderRequest,
  type MachineStatus,
  type Options,
  type ProvisionRequest,
  type ProvisionResponse,
  type StopResponse,
  type Trader,
  type TimelinePage,
  type TimelineQuery,
  type TraderList,
  type UpdateTraderRequest,
  type Uptime,
  type UptimeQuery,
} from './schemas';
import { createCloudStreamClient, type CloudStreamClient, type CloudStreamOptions } from './stream';
import {
  klinesSchema,
  previewSchema,
  signalListSchema,
  validationSchema,
  type Klines,
  type Preview,
  type PreviewRequest,
  type SignalList,
  type SignalQuery,
  type Validation,
} from './market-schemas';
import { EVENTS_PATH, watchMachine, type MachineWatch, type MachineWatchHandlers } from './machine-events';

/** The Supabase access token of the signed-in user; called before every request, so it may refresh. */
export type AccessTokenProvider = () => string | null | undefined | Promise<string | null | undefined>;

export interface CloudExecutionClientOptions {
  /** Origin of the API, e.g. `https://api.example.com` (in the dashboard: `location.origin`). */
  baseUrl: string;
  getAccessToken: AccessTokenProvider;
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

export const STREAM_PATH = '/v1/machines/me/stream';

export interface CloudExecutionClient {
  /** `POST /v1/machines`: starts the user's machine, or returns the one that runs (idempotent). */
  provision(body?: ProvisionRequest): Promise<ProvisionResponse>;
  /** `GET /v1/machines/me`; `null` when the user never had a machine (the API's 404). */
  status(): Promise<MachineStatus | null>;
  /** `POST /v1/machines/me/stop`: asks the machine to stop; poll `status()` until `stopped`. */
  stop(): Promise<StopResponse>;
  /** `GET /v1/options` (public): the regions and CPU priorities a start form offers, and the defaults. */
  options(): Promise<Options>;
  /** `GET /v1/traders`: the user's traders and how many one user may have. */
  listTraders(): Promise<TraderList>;
  /** `POST /v1/traders`; a 400's `errors` name the fields (`name`, `definition.symbols.0`, …). */
  createTrader(body: CreateTraderRequest): Promise<Trader>;
  /** `PATCH /v1/traders/:id` (enable/disable: `{ enabled }`). */
  updateTrader(id: string, body: UpdateTraderRequest): Promise<Trader>;
  /** `DELETE /v1/traders/:id`. */
  deleteTrader(id: string): Promise<void>;
  /** `POST /v1/traders/preview`: what a definition would have fired over the last candles (not saved). */
  previewTrader(body: PreviewRequest): Promise<Preview>;
  /** `POST /v1/traders/validate`: the errors a create would answer (at their fields), without saving. */
  validateTrader(body: CreateTraderRequest): Promise<Validation>;
  /** `GET /v1/signals`: my signals, newest first; `next` pages back. */
  signals(query?: SignalQuery): Promise<SignalList>;
  /** `GET /v1/market/klines`: recent closed candles of one stream (the chart's backfill). */
  klines(query: { symbol: string; interval: string; limit?: number }): Promise<Klines>;
  /** `GET /v1/machines/me/timeline`: my machine's and my billing's history, newest first; `next` pages back. */
  timeline(query?: TimelineQuery): Promise<TimelinePage>;
  /** `GET /v1/machines/me/uptime`: minutes per day by cause, and each month against the SLO. */
  uptime(query?: UptimeQuery): Promise<Uptime>;
  /** `GET /v1/machines/me/events`: the machine's status now and on every change, until `close()`. */
  watchMachine(handlers: MachineWatchHandlers): MachineWatch;
  /** `ws(s)://<api>/v1/machines/me/stream`. */
  readonly streamUrl: string;
  /** A stream client for this API and token; `connect()` it. */
  stream(options?: Omit<CloudStreamOptions, 'url' | 'getAccessToken'>): CloudStreamClient;
}

export function createCloudExecutionClient(options: CloudExecutionClientOptions): CloudExecutionClient {
  const base = new URL(options.baseUrl);
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
  const streamUrl = new URL(STREAM_PATH, base);
  streamUrl.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';

  async function call<S extends z.ZodMiniType>(method: string, path: string, schema: S, body?: unknown) {
    const token = await options.getAccessToken();
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await doFetch(new URL(path, base), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new CloudExecutionError({
        status: 0,
        title: 'Network error',
        detail: `could not reach the cloud execution API at ${base.origin}: ${err instanceof Error ? err.message : String(err)}`,
        cause: err,
      });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) throw errorFrom(res, json);
    const parsed = schema.safeParse(json);
    if (!parsed.success)
      throw new CloudExecutionError({
        status: res.status,
        title: 'Unexpected response',
        detail: `the API answered ${method} ${path} with a body this client does not understand: ${parsed.error.message}`,
        cause: parsed.error,
      });
    return { status: res.status, data: parsed.data as z.infer<S> };
  }

  const client: CloudExecutionClient = {
    streamUrl: streamUrl.toString(),
    async provision(body = {}) {
      return (await call('POST', '/v1/machines', provisionResponseSchema, body)).data;
    },
    async status() {
      try {
        return (await call('GET', '/v1/machines/me', machineStatusSchema)).data;
      } catch (err) {
        if (err instanceof CloudExecutionError && err.status === 404) return null;
        throw err;
      }
    },
    async stop() {
      return (await call('POST', '/v1/machines/me/stop', stopResponseSchema)).data;
    },
    async options() {
      return (await call('GET', '/v1/options', optionsSchema)).data;
    },
    async listTraders() {
      return (await call('GET', '/v1/traders', traderListSchema)).data;
    },
    async createTrader(body) {
      return (await call('POST', '/v1/traders', traderSchema, body)).data;
    },
    async updateTrader(id, body) {
      return (await call('PATCH', `/v1/traders/${encodeURIComponent(id)}`, traderSchema, body)).data;
    },
    async deleteTrader(id) {
      await call('DELETE', `/v1/traders/${encodeURIComponent(id)}`, z.optional(z.unknown()));
    },
    async previewTrader(body) {
      return (await call('POST', '/v1/traders/preview', previewSchema, body)).data;
    },
    async validateTrader(body) {
      return (await call('POST', '/v1/traders/validate', validationSchema, body)).data;
    },
    async signals(query = {}) {
      return (await call('GET', `/v1/signals${queryString(query)}`, signalListSchema)).data;
    },
    async klines(query) {
      return (await call('GET', `/v1/market/klines${queryString(query)}`, klinesSchema)).data;
    },
    async timeline(query = {}) {
      return (await call('GET', `/v1/machines/me/timeline${queryString(query)}`, timelinePageSchema)).data;
    },
    async uptime(query = {}) {
      return (await call('GET', `/v1/machines/me/uptime${queryString(query)}`, uptimeSchema)).data;
    },
    watchMachine(handlers) {
      const url = new URL(EVENTS_PATH, base).toString();
      return watchMachine({ url, getAccessToken: options.getAccessToken, fetch: options.fetch }, handlers);
    },
    stream(streamOptions = {}) {
      return createCloudStreamClient({
        ...streamOptions,
        url: streamUrl.toString(),
        getAccessToken: options.getAccessToken,
        // A handshake refused by the API looks like any network failure in a browser (close 1006, no
        // status): the status route, with the same token, tells a refused token from a missing machine.
        probe:
          streamOptions.probe ??
          (async () => {
            try {
              const s = await client.status();
              return s?.state === 'running' ? 'ok' : 'no_machine';
            } catch (err) {
              if (err instanceof CloudExecutionError && (err.status === 401 || err.status === 403))
                return 'unauthorized';
              return 'ok';
            }
          }),
      });
    },
  };
  return client;
}

function queryString(q: object): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

function errorFrom(res: Response, json: unknown): CloudExecutionError {
  const problem = problemSchema.safeParse(json);
  const p = problem.success ? problem.data : {};
  return new CloudExecutionError({
    status: res.status,
    title: p.title ?? (res.statusText || `HTTP ${res.status}`),
    detail: p.detail ?? `${res.status} ${res.statusText}`.trim(),
    type: p.type,
    requestId: p.requestId ?? res.headers.get('x-request-id') ?? undefined,
    errors: p.errors,
  });
}
