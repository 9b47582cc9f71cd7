import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { flyMachineName, type CpuPriority } from '../workflows/contract';
import { deriveMachineKey, mintMachineAccessToken, mintUserToken } from '../common/credentials';
import { MAX_MACHINE_TOKEN_SECONDS, MIN_MACHINE_TOKEN_SECONDS } from '../common/machine-token';
import { guestFor } from '../common/machine-sizes';
import { flyCall, toActivityFailure } from './fly-failures';
import { heartbeat, whileHeartbeating } from './heartbeat';
import { type FlyClient } from '../fly/client';
import { isGone, machineAddress, type Machine, type MachineConfig } from '../fly/machines';
import { isAlreadyExists, isCapacityError, isNotFound, FlyApiError } from '../fly/errors';

export interface MachineActivityDeps {
  fly: FlyClient;
  /** The machine runtime's image (FLY_MACHINE_IMAGE). */
  image: string;
  /** SUPABASE_JWT_SECRET: signs user tokens and derives machine keys. Stays in the worker. */
  jwtSecret: string;
  /** Non-secret runtime settings and the user-scoped store connection handed to every machine. */
  runtimeEnv: Record<string, string>;
  /**
   * Upper bound on a minted user token's lifetime (CREDENTIAL_TTL_SECONDS); each call asks for about
   * three renewal intervals (common/machine-token.ts), this only ever shortens it.
   */
  credentialTtlSeconds?: number;
  /** The port the runtime listens on inside the machine. */
  runtimePort?: number;
  fetch?: typeof fetch;
}

/** What activities return about a machine: no config, so no env, so no secret reaches history. */
export interface MachineSummary {
  id: string;
  name: string;
  state: string;
  region: string;
  /** The image in the machine's Fly config (no secret: the workflow remembers it). */
  image?: string;
}

/** The port the runtime listens on inside its machine. */
export const RUNTIME_PORT = 8080;

const summarize = (m: Machine): MachineSummary => ({
  id: m.id ?? '',
  name: m.name ?? '',
  state: m.state ?? 'unknown',
  region: m.region ?? '',
  ...(m.config?.image ? { image: m.config.image } : {}),
});

export const createMachineActivities = (deps: MachineActivityDeps) => {
  const { fly } = deps;
  const port = deps.runtimePort ?? RUNTIME_PORT;
  /** The lifetime a workflow asks for (three renewal intervals), within the worker's bound. */
  const ttl = (requested: number | undefined) =>
    Math.min(requested ?? MIN_MACHINE_TOKEN_SECONDS, deps.credentialTtlSeconds ?? MAX_MACHINE_TOKEN_SECONDS);
  const http = deps.fetch ?? fetch;

  const tagsOf = (userId: string, workflowId: string) => ({ user_id: userId, workflow_id: workflowId });

  /**
   * Every user machine's Fly config, in this one place (fly.runtime.toml's [[vm]] and [checks] are not
   * applied to machines created through the API): image, env, size per cpuPriority (`guestFor`),
   * restart policy, the runtime's /health check, and the metrics Fly's Prometheus scrapes.
   */
  async function machineConfig(
    userId: string,
    workflowId: string,
    cpuPriority: CpuPriority,
    credentialTtlSeconds: number | undefined,
    /** The image the workflow says its machine runs; absent (older runs), the worker's. */
    image: string | undefined,
  ): Promise<MachineConfig> {
    const ttlSeconds = ttl(credentialTtlSeconds);
    const { token } = await mintUserToken({ jwtSecret: deps.jwtSecret, userId, ttlSeconds });
    return {
      image: image ?? deps.image,
      env: {
        ...deps.runtimeEnv,
        USER_ID: userId,
        USER_TOKEN: token,
        TOKEN_VERIFY_SECRET: deriveMachineKey(deps.jwtSecret, userId),
        PORT: String(port),
      },
      guest: guestFor[cpuPriority],
      metadata: tagsOf(userId, workflowId),
      restart: { policy: 'on-failure', max_retries: 3 },
      checks: { health: { type: 'http', port, path: '/health', interval: '15s', timeout: '5s', grace_period: '60s' } },
      // Fly's managed Prometheus scrapes the runtime's own /metrics (same port, no auth) over the private network.
      metrics: { port, path: '/metrics' },
    };
  }

  const liveMachinesOf = async (userId: string) =>
    (await flyCall(() => fly.listMachines({ metadata: { user_id: userId } }))).filter((m) => !isGone(m));

  async function originOf(machineId: string) {
    const machine = await flyCall(() => fly.getMachine(machineId));
    return { machine, origin: machineAddress(machine, port).origin };
  }

  async function destroy(machineId: string) {
    try {
      await fly.stopMachine(machineId).catch((err: unknown) => {
        // A machine that is already stopped or gone needs no stop; anything else is worth a retry.
        if (!(err instanceof FlyApiError) || ![404, 409, 412].includes(err.status)) throw err;
      });
      await fly.deleteMachine(machineId, { force: true });
      // Recorded as stopped only once Fly says it is gone; a timeout here is retried by the activity.
      await whileHeartbeating(() => fly.waitMachine(machineId, { state: 'destroyed', timeoutSeconds: 60 }), {
        destroying: machineId,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  return {
    /**
     * Finds or creates the user's one machine. Keyed on the `user_id` metadata tag, listed before
     * creating; a retry after an ambiguous failure (408, 5xx, no answer) lists again and adopts what
     * the failed attempt created; a duplicate name (409 already_exists) is adopted too. Extra machines
     * for the same user (left by an old bug or a race) are destroyed so exactly one remains.
     */
    async ensureFlyMachine(input: {
      userId: string;
      workflowId: string;
      regions: string[];
      cpuPriority: CpuPriority;
      /** The user token's lifetime the workflow asks for (about three renewal intervals). */
      credentialTtlSeconds?: number;
      /** The image the workflow's machine runs (carried state); absent, the worker's FLY_MACHINE_IMAGE. */
      image?: string;
    }): Promise<MachineSummary> {
      return flyCall(async () => {
        const name = flyMachineName(input.userId);
        const existing = await liveMachinesOf(input.userId);
        if (existing.length > 0) {
          const keep = existing.find((m) => m.state === 'started') ?? existing[0]!;
          for (const extra of existing) if (extra.id !== keep.id) await destroy(extra.id!);
          log.info('adopting existing Fly machine', {
            machineId: keep.id,
            state: keep.state,
            extras: existing.length - 1,
          });
          return summarize(keep);
        }
        const config = await machineConfig(
          input.userId,
          input.workflowId,
          input.cpuPriority,
          input.credentialTtlSeconds,
          input.image,
        );
        let lastCapacityError: unknown;
        for (const region of input.regions) {
          try {
            return summarize(await fly.createMachine({ name, region, config }));
          } catch (err) {
            if (isAlreadyExists(err)) {
              const byName = (await fly.listMachines({})).find((m) => m.name === name && !isGone(m));
              if (byName) return summarize(byName);
            }
            if (!isCapacityError(err)) throw err;
            log.warn('no capacity in region, trying the next', { region });
            lastCapacityError = err;
          }
        }
        throw lastCapacityError ?? new Error('no region to create the machine in');
      });
    },

    /** Waits for a Fly state under an overall deadline; each /wait call is at most 60 s (Fly's cap). */
    async waitForFlyState(input: {
      machineId: string;
      state: 'started' | 'stopped' | 'destroyed';
      deadlineSeconds: number;
    }): Promise<MachineSummary> {
      const deadline = Date.now() + input.deadlineSeconds * 1000;
      for (;;) {
        const remaining = Math.ceil((deadline - Date.now()) / 1000);
        if (remaining <= 0) {
          throw ApplicationFailure.nonRetryable(
            `machine ${input.machineId} did not reach ${input.state} within ${input.deadlineSeconds} s`,
            'MachineStateTimeout',
          );
        }
        heartbeat({ waitingFor: input.state });
        try {
          await whileHeartbeating(
            () => fly.waitMachine(input.machineId, { state: input.state, timeoutSeconds: Math.min(60, remaining) }),
            {
              waitingFor: input.state,
            },
          );
          return summarize(await flyCall(() => fly.getMachine(input.machineId)));
        } catch (err) {
          if (err instanceof FlyApiError && err.status === 408) {
            // Not there yet. A machine that failed or vanished will never get there: stop waiting.
            const m = await flyCall(() => fly.getMachine(input.machineId));
            if (m.state === 'failed' || isGone(m)) {
              throw ApplicationFailure.nonRetryable(
                `machine ${input.machineId} is ${m.state}, not ${input.state}`,
                'MachineFailed',
              );
            }
            continue;
          }
          throw toActivityFailure(err);
        }
      }
    },

    /** Mints a fresh user token and hands it to the running machine through its control endpoint. */
    async renewMachineCredentials(input: {
      userId: string;
      machineId: string;
      credentialTtlSeconds?: number;
    }): Promise<{ expiresAt: string }> {
      const { origin } = await originOf(input.machineId);
      const { token, expiresAt } = await mintUserToken({
        jwtSecret: deps.jwtSecret,
        userId: input.userId,
        ttlSeconds: ttl(input.credentialTtlSeconds),
      });
      const control = await mintMachineAccessToken({
        jwtSecret: deps.jwtSecret,
        userId: input.userId,
        purpose: 'control',
      });
      const res = await http(`${origin}/control/credentials`, {
        method: 'POST',
        headers: { authorization: `Bearer ${control}`, 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok)
        throw ApplicationFailure.retryable(
          `runtime refused the renewed credentials: HTTP ${res.status}`,
          'CredentialRenewalFailed',
        );
      return { expiresAt: expiresAt.toISOString() };
    },

    /**
     * Restarts a sick machine with a fresh config (and so fresh credentials): Fly's update restarts it. On the
     * image the workflow says (after a rollout or a rollback), else the worker's.
     */
    async restartFlyMachine(input: {
      userId: string;
      workflowId: string;
      machineId: string;
      cpuPriority: CpuPriority;
      credentialTtlSeconds?: number;
      image?: string;
    }): Promise<MachineSummary> {
      return flyCall(async () => {
        const config = await machineConfig(
          input.userId,
          input.workflowId,
          input.cpuPriority,
          input.credentialTtlSeconds,
          input.image,
        );
        const updated = await fly.updateMachine(input.machineId, { config });
        if (['stopped', 'failed', 'created', 'suspended'].includes(updated.state ?? ''))
          await fly.startMachine(input.machineId);
        return summarize(updated);
      });
    },

    /** Stops and destroys every live machine of the user (idempotent: gone is fine). */
    async destroyFlyMachines(input: { userId: string; machineId?: string }): Promise<{ destroyed: string[] }> {
      return flyCall(async () => {
        const ids = new Set((await liveMachinesOf(input.userId)).map((m) => m.id!));
        if (input.machineId) ids.add(input.machineId);
        for (const id of ids) {
          heartbeat({ destroying: id });
          await destroy(id);
        }
        return { destroyed: [...ids] };
      });
    },
  };
};
