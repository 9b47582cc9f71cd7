import type { CpuPriority } from '../workflows/contract';

/** A Fly machine's size (the `guest` of its config). */
export interface MachineGuest {
  cpu_kind: 'shared' | 'performance';
  cpus: number;
  memory_mb: number;
}

/**
 * The machine size each CPU priority gets: the worker creates machines with it
 * (activities/machine-activities.ts) and the API shows it (`GET /v1/options`). Pure data, one place.
 */
export const guestFor: Record<CpuPriority, MachineGuest> = {
  low: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 },
  normal: { cpu_kind: 'shared', cpus: 1, memory_mb: 512 },
  high: { cpu_kind: 'performance', cpus: 1, memory_mb: 2048 },
};
