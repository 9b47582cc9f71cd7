import { healCause, metricNames } from './lifecycle-metrics';

test('a self-heal’s cause is one of a few labels, whatever the reason’s text', () => {
  const cases: [string | undefined, boolean][] = [
    ['machine_gone', false],
    ['fly state stopped', false],
    ['no answer: fetch failed', false],
    ['feed disconnected, no evaluation for 300 s', false],
    ['HTTP 503', false],
    [undefined, false],
    ['runtime did not become healthy within 180 s: feed disconnected', true],
  ];
  expect(cases.map(([reason, failed]) => healCause(reason, failed))).toEqual([
    'machine_gone',
    'fly_state',
    'no_answer',
    'runtime_unhealthy',
    'runtime_unhealthy',
    'runtime_unhealthy',
    'restart_failed',
  ]);
});

test('every metric of ours is prefixed cloud_execution_', () => {
  expect(Object.values(metricNames).filter((n) => !n.startsWith('cloud_execution_'))).toEqual([]);
});
