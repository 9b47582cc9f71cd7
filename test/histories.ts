import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';

/** Committed histories of real runs: replaying them in CI catches a non-deterministic change. */
export const historiesDir = join(__dirname, '..', 'workflows', 'histories');

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
