import createClient from 'openapi-fetch';
import type { components, operations, paths } from './fly-api';
import { FlyApiError, FlyConnectionError, parseFlyErrorBody, parseRetryAfter } from './errors';
import {
  FLY_LOCAL_PORT_METADATA_KEY,
  isFlyLocalUrl,
  type CreateMachineRequest,
  type Lease,
  type Machine,
  type UpdateMachineRequest,
} from './machines';

/*
 * A typed client for the subset of the Fly Machines API the workflow uses. Types come from Fly's official
 * OpenAPI spec (`npm run generate:fly` regenerates fly-api.d.ts); every failure becomes a FlyApiError or a
 * FlyConnectionError (errors.ts). No retries here: Temporal retry policies own them (docs/technical-description.md §3).
 */

type Schemas = components['schemas'];
export type StopSignal = NonNullable<Schemas['StopRequest']['signal']>;
export type WaitState = NonNullable<NonNullable<operations['Machines_wait']['parameters']['query']>['state']>;

/** Real Fly answers `/start` with this (fly-go `MachineStartResponse`); the spec documents no body. */
export interface StartMachineResponse {
  message?: string;
  status?: string;
  previous_state?: string;
}

export interface FlyClientOptions {
  /** Default `https://api.machines.dev/v1`. */
  apiUrl?: string;
  token: string;
  app: string;
  fetch?: (input: Request) => Promise<Response>;
  /** Per-request deadline for everything but `/wait` (which gets its own timeout plus a margin). Default 30 s. */
  requestTimeoutMs?: number;
}

/** Sent as `fly-machine-lease-nonce` by mutating calls when the caller holds the machine's lease. */
export interface LeaseOption {
  nonce?: string;
}

export interface ListMachinesFilter {
  /** `metadata.<key>=<value>` filters (Fly's documented list filter; absent from the spec). */
  metadata?: Record<string, string>;
  region?: string;
  includeDeleted?: boolean;
  state?: string[];
  summary?: boolean;
}

export interface WaitOptions {
  /** Default `started`. Several states: any of them. */
  state?: WaitState | WaitState[];
  /** Seconds; Fly caps one call at 60 s, so it is clamped to 1–60 like fly-go does. Default 60. */
  timeoutSeconds?: number;
  version?: string;
  fromEventId?: string;
}

export const DEFAULT_FLY_API_URL = 'https://api.machines.dev/v1';
const WAIT_MAX_SECONDS = 60;

export function createFlyClient(options: FlyClientOptions) {
  const { token, app } = options;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const api = createClient<paths>({
    baseUrl: (options.apiUrl ?? DEFAULT_FLY_API_URL).replace(/\/+$/, ''),
    headers: { Authorization: `Bearer ${token}` },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const machinePath = (id: string) => ({ path: { app_name: app, machine_id: id } });
  const nonceHeader = (o?: LeaseOption): Record<string, string> =>
    o?.nonce ? { 'fly-machine-lease-nonce': o.nonce } : {};
  const deadline = (ms = requestTimeoutMs) => AbortSignal.timeout(ms);
  // fly-local's port metadata redirects where the API and worker connect: honoured only when the
  // Machines API is fly-local (on this host, or a single-label name such as compose's `fly-local`),
  // never from a real Fly app's metadata (api.machines.dev, _api.internal).
  const local = isFlyLocalUrl(options.apiUrl ?? DEFAULT_FLY_API_URL);
  const trusted = (m: Machine): Machine => {
    if (local || m.config?.metadata?.[FLY_LOCAL_PORT_METADATA_KEY] === undefined) return m;
    const { [FLY_LOCAL_PORT_METADATA_KEY]: _ignored, ...metadata } = m.config.metadata;
    return { ...m, config: { ...m.config, metadata } };
  };

  /** Runs one request and turns every failure into a typed error. */
  async function call<T>(
    operation: string,
    request: () => Promise<{ data?: T; error?: unknown; response: Response }>,
  ): Promise<T> {
    let result: { data?: T; error?: unknown; response: Response };
    try {
      result = await request();
    } catch (err) {
      // No HTTP status: refused, reset, timed out, or a body that is not JSON (a proxy's page).
      throw new FlyConnectionError(operation, err);
    }
    const { response } = result;
    if (!response.ok) {
      throw new FlyApiError(
        operation,
        response.status,
        parseFlyErrorBody(result.error, response.status),
        response.headers.get('fly-request-id') ?? undefined,
        parseRetryAfter(response.headers.get('retry-after')),
      );
    }
    return result.data as T;
  }

  return {
    app,

    createMachine: (body: CreateMachineRequest) =>
      call('createMachine', () =>
        api.POST('/apps/{app_name}/machines', { params: { path: { app_name: app } }, body, signal: deadline() }),
      ),

    getMachine: async (id: string) =>
      trusted(
        await call('getMachine', () =>
          api.GET('/apps/{app_name}/machines/{machine_id}', { params: machinePath(id), signal: deadline() }),
        ),
      ),

    listMachines: async (filter: ListMachinesFilter = {}): Promise<Machine[]> => {
      type ListQuery = NonNullable<operations['Machines_list']['parameters']['query']>;
      const query: ListQuery & Record<string, string | boolean> = {};
      if (filter.region) query.region = filter.region;
      if (filter.includeDeleted) query.include_deleted = true;
      if (filter.state?.length) query.state = filter.state.join(',');
      if (filter.summary) query.summary = true;
      for (const [key, value] of Object.entries(filter.metadata ?? {})) query[`metadata.${key}`] = value;
      const machines = await call('listMachines', () =>
        api.GET('/apps/{app_name}/machines', { params: { path: { app_name: app }, query }, signal: deadline() }),
      );
      return (machines ?? []).map(trusted);
    },

    /** One long poll (≤ 60 s). A 408 (FlyTimeout, retryable) means the state was not reached in time. */
    waitMachine: (id: string, options: WaitOptions = {}) => {
      const timeout = Math.min(WAIT_MAX_SECONDS, Math.max(1, Math.ceil(options.timeoutSeconds ?? WAIT_MAX_SECONDS)));
      const states = options.state === undefined ? [] : [options.state].flat();
      return call('waitMachine', () =>
        api.GET('/apps/{app_name}/machines/{machine_id}/wait', {
          params: {
            ...machinePath(id),
            query: {
              timeout,
              // The spec types one state, but documents "repeated or comma-separated values".
              ...(states.length ? { state: states.join(',') as WaitState } : {}),
              ...(options.version ? { version: options.version } : {}),
              ...(options.fromEventId ? { from_event_id: options.fromEventId } : {}),
            },
          },
          signal: deadline(timeout * 1000 + 15_000),
        }),
      );
    },

    startMachine: (id: string, options?: LeaseOption) =>
      call('startMachine', () =>
        api.POST('/apps/{app_name}/machines/{machine_id}/start', {
          params: machinePath(id),
          headers: nonceHeader(options),
          signal: deadline(),
        }),
      ) as Promise<StartMachineResponse | undefined>,

    stopMachine: async (id: string, options: LeaseOption & { signal?: StopSignal; timeout?: string } = {}) => {
      const body = {
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.timeout ? { timeout: options.timeout } : {}),
      };
      await call('stopMachine', () =>
        api.POST('/apps/{app_name}/machines/{machine_id}/stop', {
          params: machinePath(id),
          body,
          headers: nonceHeader(options),
          signal: deadline(),
        }),
      );
    },

    suspendMachine: async (id: string, options?: LeaseOption) => {
      await call('suspendMachine', () =>
        api.POST('/apps/{app_name}/machines/{machine_id}/suspend', {
          params: machinePath(id),
          headers: nonceHeader(options),
          signal: deadline(),
        }),
      );
    },

    /** `force` kills a running machine; without it Fly refuses to destroy a started machine. */
    deleteMachine: async (id: string, options: LeaseOption & { force?: boolean } = {}) => {
      await call('deleteMachine', () =>
        api.DELETE('/apps/{app_name}/machines/{machine_id}', {
          params: { ...machinePath(id), query: options.force ? { force: true } : {} },
          headers: nonceHeader(options),
          signal: deadline(),
        }),
      );
    },

    updateMachine: (id: string, body: UpdateMachineRequest, options?: LeaseOption) =>
      call('updateMachine', () =>
        api.POST('/apps/{app_name}/machines/{machine_id}', {
          params: machinePath(id),
          body,
          headers: nonceHeader(options),
          signal: deadline(),
        }),
      ),

    /** 409 (FlyConflict) while someone else holds the lease. */
    acquireLease: async (id: string, options: { ttlSeconds?: number; description?: string } = {}) =>
      unwrapLease(
        await call('acquireLease', () =>
          api.POST('/apps/{app_name}/machines/{machine_id}/lease', {
            params: machinePath(id),
            body: { ttl: options.ttlSeconds, description: options.description },
            signal: deadline(),
          }),
        ),
      ),

    refreshLease: async (id: string, nonce: string, options: { ttlSeconds?: number } = {}) =>
      unwrapLease(
        await call('refreshLease', () =>
          api.POST('/apps/{app_name}/machines/{machine_id}/lease', {
            params: { ...machinePath(id), header: { 'fly-machine-lease-nonce': nonce } },
            body: { ttl: options.ttlSeconds },
            signal: deadline(),
          }),
        ),
      ),

    /** 404 (FlyNotFound) when the machine holds no lease. */
    getLease: async (id: string) =>
      unwrapLease(
        await call('getLease', () =>
          api.GET('/apps/{app_name}/machines/{machine_id}/lease', { params: machinePath(id), signal: deadline() }),
        ),
      ),

    releaseLease: async (id: string, nonce: string) => {
      await call('releaseLease', () =>
        api.DELETE('/apps/{app_name}/machines/{machine_id}/lease', {
          params: { ...machinePath(id), header: { 'fly-machine-lease-nonce': nonce } },
          signal: deadline(),
        }),
      );
    },

    getMetadata: async (id: string): Promise<Record<string, string>> =>
      (await call('getMetadata', () =>
        api.GET('/apps/{app_name}/machines/{machine_id}/metadata', { params: machinePath(id), signal: deadline() }),
      )) ?? {},

    /** 404 (FlyNotFound) when the key is not set. */
    getMetadataKey: async (id: string, key: string): Promise<string | undefined> =>
      (
        await call('getMetadataKey', () =>
          api.GET('/apps/{app_name}/machines/{machine_id}/metadata/{key}', {
            params: { path: { app_name: app, machine_id: id, key } },
            signal: deadline(),
          }),
        )
      )?.value,

    setMetadata: async (id: string, key: string, value: string, options?: LeaseOption) => {
      await call('setMetadata', () =>
        api.POST('/apps/{app_name}/machines/{machine_id}/metadata/{key}', {
          params: { path: { app_name: app, machine_id: id, key } },
          body: { value },
          headers: nonceHeader(options),
          signal: deadline(),
        }),
      );
    },

    deleteMetadata: async (id: string, key: string, options?: LeaseOption) => {
      await call('deleteMetadata', () =>
        api.DELETE('/apps/{app_name}/machines/{machine_id}/metadata/{key}', {
          params: { path: { app_name: app, machine_id: id, key } },
          headers: nonceHeader(options),
          signal: deadline(),
        }),
      );
    },

    /** Sets (or, with an empty string, removes) several keys; 412 (FlyPreconditionFailed) if `machineVersion` is stale. */
    updateMetadata: async (
      id: string,
      metadata: Record<string, string>,
      options: LeaseOption & { machineVersion?: string } = {},
    ) => {
      await call('updateMetadata', () =>
        api.PUT('/apps/{app_name}/machines/{machine_id}/metadata', {
          params: machinePath(id),
          body: { metadata, ...(options.machineVersion ? { machine_version: options.machineVersion } : {}) },
          headers: nonceHeader(options),
          signal: deadline(),
        }),
      );
    },
  };
}

export type FlyClient = ReturnType<typeof createFlyClient>;

/** Real Fly wraps leases as `{status: "success", data: {...}}`; the spec's `Lease` is flat. Accept both. */
export function unwrapLease(body: unknown): Lease {
  if (body && typeof body === 'object' && 'data' in body) {
    const data = (body as { data: unknown }).data;
    if (data && typeof data === 'object') return data as Lease;
  }
  return (body ?? {}) as Lease;
}
