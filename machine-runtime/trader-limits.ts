import { streamKey } from './candles';
import { familyKey } from './indicators';
import {
  MAX_COMPILED_CONDITIONS,
  MAX_INDICATOR_INSTANCES,
  conditionCount,
  type Operand,
  type TraderDefinition,
} from './trader-schema';

/**
 * What one machine holds for all of its user's traders together (trader-schema.ts bounds each
 * definition on its own). Without it, many distinct indicator settings (a 257 KB definition of
 * distinct `stdDev` values) grew the heap past 536 MB on a 256 MB machine.
 */
export interface MachineBudget {
  /** Distinct symbol × interval × indicator settings (price/volume: once per stream). */
  maxIndicatorInstances: number;
  /** A trader's conditions × its symbols, summed: the closures evaluated per closed candle. */
  maxCompiledConditions: number;
}

export const defaultBudget: MachineBudget = {
  maxIndicatorInstances: MAX_INDICATOR_INSTANCES,
  maxCompiledConditions: MAX_COMPILED_CONDITIONS,
};

export interface BudgetCandidate {
  def: TraderDefinition;
  operands: Operand[];
  /** Already running unchanged: it keeps its place, a newcomer never evicts it. */
  running: boolean;
}

/**
 * Fits traders into the budget: the running ones first, then the others in the order given (the
 * store's). A trader that would exceed a bound is refused with the reason; the ones after it still
 * get their chance (a smaller one may fit). Instances two traders share are counted once.
 */
export function fitToBudget<T extends BudgetCandidate>(candidates: T[], budget: MachineBudget): Map<T, string> {
  const refused = new Map<T, string>();
  const instances = new Set<string>();
  let compiled = 0;
  const ordered = [...candidates.filter((c) => c.running), ...candidates.filter((c) => !c.running)];
  for (const c of ordered) {
    const symbols = new Set(c.def.symbols);
    const families = new Set(c.operands.map(familyKey));
    const fresh = new Set<string>();
    for (const symbol of symbols) {
      const stream = streamKey(symbol, c.def.interval);
      for (const f of families) {
        const key = `${stream}#${f}`;
        if (!instances.has(key)) fresh.add(key);
      }
    }
    const conditions = conditionCount(c.def.filter) * symbols.size;
    if (instances.size + fresh.size > budget.maxIndicatorInstances) {
      refused.set(
        c,
        `needs ${fresh.size} more indicator instances (symbol × interval × indicator settings); ` +
          `this machine holds at most ${budget.maxIndicatorInstances}; other traders use ${instances.size}`,
      );
    } else if (compiled + conditions > budget.maxCompiledConditions) {
      refused.set(
        c,
        `needs ${conditions} conditions × symbols compiled; ` +
          `this machine holds at most ${budget.maxCompiledConditions}; other traders use ${compiled}`,
      );
    } else {
      for (const key of fresh) instances.add(key);
      compiled += conditions;
    }
  }
  return refused;
}
