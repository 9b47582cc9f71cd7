import type { CpuPriority } from '../workflows/contract';
import { isGone } from '../fly/machines';
import { flyCall } from './fly-failures';
import { createMachineActivities, type MachineActivityDeps, type MachineSummary } from './machine-activities';

/** States in which a machine already on the wanted image needs nothing more from an update. */
const SETTLED_OR_ON_ITS_WAY = ['started', 'starting', 'updating', 'replacing'];

/**
 * The machine workflow's image activities (its rollImage update): read the image a machine runs, and move it
 * to another one. Only the machine's own workflow calls them: nothing else may touch a user's machine.
 */
export const createMachineImageActivities = (deps: MachineActivityDeps) => {
  const { fly } = deps;
  const machines = createMachineActivities(deps);
  return {
    /** The image in the machine's Fly config (the worker's own if it names none): for a run that does not remember it. */
    async readFlyMachineImage(input: { machineId: string }): Promise<{ image: string }> {
      const m = await flyCall(() => fly.getMachine(input.machineId));
      return { image: m.config?.image ?? deps.image };
    },

    /**
     * Moves a machine to `image`: Fly's update with a fresh config (so fresh credentials, as a restart gets) on
     * that image, started if it was not. Idempotent: a machine already on the image and started (or starting)
     * is left alone, so a retry after the update took effect restarts nothing.
     */
    async updateFlyMachineImage(input: {
      userId: string;
      workflowId: string;
      machineId: string;
      cpuPriority: CpuPriority;
      credentialTtlSeconds?: number;
      image: string;
    }): Promise<MachineSummary & { previousImage: string | null; changed: boolean }> {
      const current = await flyCall(() => fly.getMachine(input.machineId));
      const previousImage = current.config?.image ?? null;
      if (previousImage === input.image && !isGone(current) && SETTLED_OR_ON_ITS_WAY.includes(current.state ?? ''))
        return {
          ...{ id: current.id ?? input.machineId, name: current.name ?? '', state: current.state ?? 'unknown' },
          ...{ region: current.region ?? '', image: input.image, previousImage, changed: false },
        };
      const updated = await machines.restartFlyMachine(input);
      return { ...updated, previousImage, changed: true };
    },
  };
};
