import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

/** Committed histories of real runs: replaying them in CI catches a non-deterministic change. */
export const historiesDir = join(__dirname, '..', '..', 'workflows', 'histories');

/** Saves a history as protobuf JSON (enum names, 64-bit numbers as strings, payloads in base64). */
export async function saveHistoryIfRecording(name: string, history: temporal.api.history.v1.IHistory) {
  if (process.env.RECORD_HISTORIES !== '1') return;
  mkdirSync(historiesDir, { recursive: true });
  const message = temporal.api.history.v1.History.fromObject(history);
  writeFileSync(join(historiesDir, `${name}.json`), JSON.stringify(message.toJSON(), null, 1));
}

export function committedHistories() {
  return readdirSync(historiesDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({
      workflowId: f.replace(/\.json$/, ''),
      history: temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(join(historiesDir, f), 'utf8'))),
    }));
}

/**
 * Every run's history of a workflow, from its first run along its continue-as-new chain (the last
 * one may still be open). Used to check that histories stay bounded and to count what a month costs.
 */
export async function historyChain(
  client: Client,
  workflowId: string,
  firstRunId: string,
): Promise<temporal.api.history.v1.IHistory[]> {
  const chain: temporal.api.history.v1.IHistory[] = [];
  let runId: string | null | undefined = firstRunId;
  while (runId) {
    const history: temporal.api.history.v1.IHistory = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    chain.push(history);
    const events = history.events ?? [];
    runId = events[events.length - 1]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
  }
  return chain;
}
