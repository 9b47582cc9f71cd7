import type { Client } from '@temporalio/client';
import { machineWorkflowId } from '../workflows/contract';
import { median, round, type Row } from './lib/report';

/** Milliseconds since the epoch of a history event's protobuf timestamp (0 when absent). */
const ms = (t: unknown) => {
  const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number } | null | undefined;
  const sec = typeof ts?.seconds === 'number' ? ts.seconds : (ts?.seconds?.toNumber() ?? 0);
  return sec * 1000 + (ts?.nanos ?? 0) / 1e6;
};

/**
 * Where a stop's time goes, from the histories of a sample of the storm's workflows (medians, ms):
 * waiting in the task queue for a worker slot vs running, for workflow tasks and activities alike.
 */
export async function profile(client: Client, users: string[]): Promise<Row> {
  const sample = users.filter((_, i) => i % Math.max(1, Math.floor(users.length / 15)) === 0).slice(0, 15);
  const queued: number[] = [];
  const wftQueued: number[] = [];
  const ran: Record<string, number[]> = {};
  const signalToClosed: number[] = [];
  const eventsAfter: number[] = [];
  const localAfter: number[] = [];
  let wftTimeouts = 0;
  for (const userId of sample) {
    const history = await client.workflow.getHandle(machineWorkflowId(userId)).fetchHistory();
    const events = history.events ?? [];
    const byId = new Map(events.map((e) => [Number(e.eventId), e]));
    const signal = events.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'tierChanged');
    if (!signal) continue;
    const t0 = ms(signal.eventTime);
    signalToClosed.push(ms(events[events.length - 1]!.eventTime) - t0);
    const after = events.filter((e) => Number(e.eventId) > Number(signal.eventId));
    eventsAfter.push(after.length);
    // Row writes are local activities: they run inside a workflow task and leave only a marker.
    localAfter.push(after.filter((e) => e.markerRecordedEventAttributes).length);
    // A workflow task left on the worker's sticky queue past its schedule-to-start timeout goes back to the
    // normal queue, and the worker then gets (and the server reads) the whole history: overload feeding itself.
    wftTimeouts += events.filter(
      (e) => Number(e.eventId) > Number(signal.eventId) && e.workflowTaskTimedOutEventAttributes,
    ).length;
    for (const e of events) {
      if (ms(e.eventTime) < t0) continue;
      const started = e.activityTaskStartedEventAttributes;
      if (started) {
        const sched = byId.get(Number(started.scheduledEventId));
        queued.push(ms(e.eventTime) - ms(sched?.eventTime));
      }
      const done = e.activityTaskCompletedEventAttributes;
      if (done) {
        const sched = byId.get(Number(done.scheduledEventId));
        const name = sched?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
        (ran[name] ??= []).push(ms(e.eventTime) - ms(byId.get(Number(done.startedEventId))?.eventTime));
      }
      const wft = e.workflowTaskStartedEventAttributes;
      if (wft) wftQueued.push(ms(e.eventTime) - ms(byId.get(Number(e.eventId) - 1)?.eventTime));
    }
  }
  return {
    'p50 signal→closed (ms)': round(median(signalToClosed), 0),
    'p50 history events after the signal': round(median(eventsAfter), 0),
    'workflow task timeouts in the sample': wftTimeouts,
    'p50 activity queued (ms)': round(median(queued), 0),
    'p50 workflow task queued (ms)': round(median(wftQueued), 0),
    'p50 destroyFlyMachines ran (ms)': round(median(ran.destroyFlyMachines ?? []), 0),
    'p50 local activities (row writes) after the signal': round(median(localAfter), 0),
  };
}
