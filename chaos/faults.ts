import type { Faults, FaultSpec } from '../dev/fly-local/faults';

/*
 * What goes wrong in a trial, drawn from the seed: each user's operation, the restarts on top of the
 * worker's SIGKILL, the moment of the kill, and the Fly faults. Every random choice of a run comes
 * from here, in a fixed order, so the same seed replays the same run.
 */

export type ChaosOp = 'provision' | 'renewal' | 'stop';
export type Disruption = 'fly-local restart' | 'temporal restart';

export interface FaultOptions {
  usersPerTrial: number;
  ops: ChaosOp[];
  /** Chance per trial of each restart on top of the worker's SIGKILL. */
  flyLocalRestartChance: number;
  temporalRestartChance: number;
  /** Fly faults during the trial: 20% 5xx (some after the effect), 10% 429, slow boots; `hangs` adds lost responses. */
  faults: boolean;
  hangs: boolean;
  /** The kill lands at a random moment within this many ms after the operations start. */
  killWindowMs: number;
}

export interface TrialPlan {
  ops: ChaosOp[];
  disruptions: Disruption[];
  killAfterMs: number;
  faults: Faults;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One trial's plan; the draws come in the order they always have (ops, restarts, kill moment, faults). */
export function planTrial(rand: () => number, options: FaultOptions): TrialPlan {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const ops = Array.from({ length: options.usersPerTrial }, () => pick(options.ops));
  const disruptions: Disruption[] = [];
  if (rand() < options.flyLocalRestartChance) disruptions.push('fly-local restart');
  if (rand() < options.temporalRestartChance) disruptions.push('temporal restart');
  const killAfterMs = Math.floor(rand() * options.killWindowMs);
  const faults = faultsFor();
  return { ops, disruptions, killAfterMs, faults };

  function faultsFor(): Faults {
    if (!options.faults) return {};
    const f: Faults = {};
    const err = (): FaultSpec =>
      rand() < 0.67 ? { status: pick([500, 502, 503] as const), probability: 0.2 } : { status: 429, probability: 0.1 };
    for (const op of ['get', 'list', 'wait', 'start', 'stop', 'delete', 'update'] as const) f[op] = err();
    // An ambiguous create (done, then answered 503) and a slow boot: where duplicates are born.
    f.create = { status: 503, probability: 0.2, afterEffect: true, bootDelayMs: 500 + Math.floor(rand() * 3000) };
    if (options.hangs) f[pick(['get', 'list', 'wait'] as const)] = { hang: true, probability: 0.05 };
    return f;
  }
}
