import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import { type FlyClient } from '../fly/client';
import { isGone, machineAddress, type Machine } from '../fly/machines';
import { mintMachineAccessToken } from '../common/credentials';
import { flyCall } from './fly-failures';
import { cancellationSignal, heartbeat } from './heartbeat';

export interface HealthReport {
  ok: boolean;
  reason?: string;
  checkedAt: string;
}

export interface HealthProbeDeps {
  fly: FlyClient;
  jwtSecret: string;
  runtimePort: number;
  fetch?: typeof fetch;
}

/**
 * One health check of a machine, as the workflow and the health sweep both see it: Fly's state, then the runtime's
 * own `/health` (its reasons need a short-lived control token signed with the user's machine key). `ofMachine`
 * takes a machine already listed (the sweep lists the fleet once), `byId` reads it from Fly first.
 */
export function createHealthProbe(deps: HealthProbeDeps) {
  const { fly } = deps;
  const port = deps.runtimePort;
  const http = deps.fetch ?? fetch;
  const checkedAt = () => new Date().toISOString();

  async function ofMachine(machine: Machine | undefined): Promise<HealthReport> {
    // Fly (and fly-local) still answer GET for a destroyed machine: that is gone too, not a restartable one.
    if (!machine || isGone(machine)) return { ok: false, reason: 'machine_gone', checkedAt: checkedAt() };
    if (machine.state !== 'started')
      return { ok: false, reason: `fly state ${machine.state ?? 'unknown'}`, checkedAt: checkedAt() };
    try {
      // Without a control token the runtime answers only `{ ok }`; the reasons need one (short-lived,
      // signed with this user's machine key; the user is the machine's own `user_id` tag).
      const userId = machine.config?.metadata?.user_id;
      const control = userId
        ? await mintMachineAccessToken({ jwtSecret: deps.jwtSecret, userId, purpose: 'control' })
        : undefined;
      const headers: Record<string, string> = control ? { authorization: `Bearer ${control}` } : {};
      const res = await http(`${machineAddress(machine, port).origin}/health`, {
        headers,
        signal: AbortSignal.timeout(3000),
      });
      if (res.ok) return { ok: true, checkedAt: checkedAt() };
      const body = (await res.json().catch(() => ({}))) as { reasons?: string[]; reason?: string };
      return {
        ok: false,
        reason: body.reasons?.join(', ') ?? body.reason ?? `HTTP ${res.status}`,
        checkedAt: checkedAt(),
      };
    } catch (err) {
      return { ok: false, reason: `no answer: ${(err as Error).message}`, checkedAt: checkedAt() };
    }
  }

  async function byId(machineId: string): Promise<HealthReport> {
    try {
      return await ofMachine(await flyCall(() => fly.getMachine(machineId)));
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === 'FlyNotFound')
        return { ok: false, reason: 'machine_gone', checkedAt: checkedAt() };
      throw err;
    }
  }

  return { ofMachine, byId };
}

/** The machine's health as the workflow sees it (createHealthProbe): one check, or a wait until healthy. */
export const createHealthActivities = (deps: HealthProbeDeps) => {
  const probe = createHealthProbe(deps).byId;

  return {
    /** Polls the runtime's /health until it answers ok (feed connected, traders loaded, evaluating). */
    async waitForRuntimeHealthy(input: { machineId: string; deadlineSeconds: number }): Promise<HealthReport> {
      const deadline = Date.now() + input.deadlineSeconds * 1000;
      let last = 'not checked yet';
      // A new runtime is usually healthy within a second: poll fast first, then back off to 1 s.
      for (let pause = 100; Date.now() < deadline; pause = Math.min(1000, pause * 2)) {
        const report = await probe(input.machineId);
        if (report.ok) return report;
        last = report.reason ?? 'unhealthy';
        heartbeat({ lastReason: last });
        await sleep(pause, undefined, { signal: cancellationSignal() });
      }
      throw ApplicationFailure.nonRetryable(
        `runtime did not become healthy within ${input.deadlineSeconds} s: ${last}`,
        'MachineUnhealthy',
      );
    },

    /** One health check for a renewal: Fly state and the runtime's own /health. */
    async checkRuntimeHealth(input: { machineId: string }): Promise<HealthReport> {
      return probe(input.machineId);
    },
  };
};
