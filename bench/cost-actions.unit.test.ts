import type { temporal } from '@temporalio/proto';
import {
  countChainActions,
  countRunActions,
  heartbeatThrottleMs,
  recordedHeartbeats,
  storageGbHours,
  totalActions,
} from './cost-actions';

/** Plain objects as the client decodes them (int64 fields as numbers here, Long there: both are read). */
const history = (events: object[]) => ({ events }) as temporal.api.history.v1.IHistory;
const HOUR = 3_600_000;
const at = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
const payload = { data: new Uint8Array([1]) };

/** A small run: start, a billing read, a renewal with two activities (one retried), a signal, an update, continue-as-new. */
const run1: object[] = [
  { eventId: 1, eventTime: at(0), workflowExecutionStartedEventAttributes: { attempt: 1 } },
  { eventId: 2, workflowTaskScheduledEventAttributes: {} },
  { eventId: 3, workflowTaskStartedEventAttributes: {} },
  { eventId: 4, workflowTaskCompletedEventAttributes: { meteringMetadata: {} } },
  {
    eventId: 5,
    upsertWorkflowSearchAttributesEventAttributes: { searchAttributes: { indexedFields: { UserId: payload } } },
  },
  { eventId: 6, markerRecordedEventAttributes: { markerName: 'core_local_activity', workflowTaskCompletedEventId: 4 } },
  { eventId: 7, markerRecordedEventAttributes: { markerName: 'core_local_activity', workflowTaskCompletedEventId: 4 } },
  { eventId: 8, markerRecordedEventAttributes: { markerName: 'core_patch', workflowTaskCompletedEventId: 4 } },
  {
    eventId: 9,
    upsertWorkflowSearchAttributesEventAttributes: {
      searchAttributes: { indexedFields: { TemporalChangeVersion: payload } },
    },
  },
  { eventId: 10, timerStartedEventAttributes: { timerId: '1' } },
  { eventId: 11, timerFiredEventAttributes: {} },
  {
    eventId: 12,
    workflowTaskCompletedEventAttributes: { meteringMetadata: { nonfirstLocalActivityExecutionAttempts: 2 } },
  },
  {
    eventId: 13,
    markerRecordedEventAttributes: { markerName: 'core_local_activity', workflowTaskCompletedEventId: 12 },
  },
  { eventId: 14, activityTaskScheduledEventAttributes: { activityId: '1' } },
  { eventId: 15, activityTaskScheduledEventAttributes: { activityId: '2' } },
  { eventId: 16, activityTaskStartedEventAttributes: { scheduledEventId: 14, attempt: 1 } },
  { eventId: 17, activityTaskStartedEventAttributes: { scheduledEventId: 15, attempt: 3 } },
  { eventId: 18, workflowExecutionSignaledEventAttributes: { signalName: 'paymentFailed' } },
  { eventId: 19, workflowExecutionUpdateAcceptedEventAttributes: {} },
  { eventId: 20, workflowExecutionUpdateCompletedEventAttributes: {} },
  { eventId: 21, eventTime: at(HOUR), workflowExecutionContinuedAsNewEventAttributes: {} },
];
const run2: object[] = [
  { eventId: 1, eventTime: at(HOUR), workflowExecutionStartedEventAttributes: { attempt: 1 } },
  { eventId: 2, workflowTaskCompletedEventAttributes: {} },
  { eventId: 3, timerStartedEventAttributes: { timerId: '1' } },
];

describe('countRunActions: billable actions from one history', () => {
  test('counts each type by its published rule', () => {
    const c = countRunActions(history(run1));
    expect(c).toMatchObject({
      'workflow started': 1,
      'timer started': 1,
      'search attribute upsert': 1, // the TemporalChangeVersion one is exempt
      signal: 1,
      'update accepted': 1,
      'activity started': 2,
      'activity retried': 2, // attempt 3 = two retries
      'local activities (per workflow task)': 2, // three markers in two workflow tasks; the patch marker is none
      'local activity retried': 2,
      'schedule start': 0,
      'child workflow': 0,
    });
    expect(totalActions(c)).toBe(13);
  });

  test("a scheduled start adds the schedule's two actions; a child start counts two", () => {
    const c = countRunActions(
      history([
        {
          workflowExecutionStartedEventAttributes: {
            searchAttributes: { indexedFields: { TemporalScheduledById: payload } },
          },
        },
        { startChildWorkflowExecutionInitiatedEventAttributes: {} },
      ]),
    );
    expect(c).toMatchObject({ 'workflow started': 1, 'schedule start': 2, 'child workflow': 2 });
  });

  test('a chain sums its runs: every continue-as-new is a new workflow start', () => {
    const { actions, runs, events, workflowTasks } = countChainActions([history(run1), history(run2)]);
    expect({ runs, events, workflowTasks }).toEqual({ runs: 2, events: 24, workflowTasks: 3 });
    expect(actions['workflow started']).toBe(2);
    expect(actions['timer started']).toBe(2);
  });
});

describe('storageGbHours', () => {
  test('a closed run is active until it closed and retained afterwards; the open one is active until the end', () => {
    const GB = 1024 ** 3;
    const closed = history([
      { eventTime: at(0) },
      { eventTime: at(HOUR), workflowExecutionCompletedEventAttributes: {} },
    ]);
    const open = history([{ eventTime: at(HOUR) }]);
    const s = storageGbHours([closed, open], () => GB, { untilMs: 3 * HOUR, retentionDays: 1 });
    // closed: first event 1 h active, last 0 h; open: 2 h active
    expect(s.activeGbHours).toBeCloseTo(3);
    expect(s.retainedGbHours).toBeCloseTo(2 * 24);
    expect(s.totalBytes).toBe(3 * GB);
  });
});

describe('recordedHeartbeats: what the SDK throttle lets through', () => {
  test('a heartbeat every 2 s for 11 s with a 5 s throttle: the first at once, then one per window', () => {
    const calls = [0, 2000, 4000, 6000, 8000, 10000];
    // sent at 0; 2 s and 4 s held → sent at 5 s; 6 s, 8 s held → sent at 10 s; 10 s held → sent at 15 s only if still running
    expect(recordedHeartbeats(calls, 11_000, 5000)).toBe(3);
    expect(recordedHeartbeats(calls, 15_000, 5000)).toBe(4);
  });
  test('none called, none sent; one call, one sent', () => {
    expect(recordedHeartbeats([], 10_000, 5000)).toBe(0);
    expect(recordedHeartbeats([3], 4, 5000)).toBe(1);
  });
  test('throttle: 80 % of the heartbeat timeout, capped by the worker; the default without a timeout', () => {
    const worker = { maxThrottleMs: 5000, defaultThrottleMs: 2000 };
    expect(heartbeatThrottleMs(15_000, worker)).toBe(5000);
    expect(heartbeatThrottleMs(5000, worker)).toBe(4000);
    expect(heartbeatThrottleMs(undefined, worker)).toBe(2000);
  });
});
