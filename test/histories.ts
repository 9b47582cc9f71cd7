import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { temporal } from '@temporalio/proto';

/** Committed histories of real runs: replaying them in CI catches a non-deterministic change. */
export const historiesDir = join(__dirname, '..', 'workflows', 'histories');

export async function saveHistoryIfRecording(name: string, history: temporal.api.history.v1.IHistory) {
  if (process.env.RECORD_HISTORIES !== '1') return;
  mkdirSync(historiesDir, { recursive: true });
  writeFileSync(join(historiesDir, `${name}.json`), JSON.stringify(history, null, 1));
}

export function committedHistories(): { workflowId: string; history: unknown }[] {
  return readdirSync(historiesDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({
      workflowId: f.replace(/\.json$/, ''),
      history: JSON.parse(readFileSync(join(historiesDir, f), 'utf8')),
    }));
}
