import { healthOf, metricsUrl } from './health-server';

test('/healthz is 200 only while the worker runs', () => {
  const states = [
    'STARTING',
    'INITIALIZED',
    'RUNNING',
    'STOPPING',
    'DRAINING',
    'DRAINED',
    'STOPPED',
    'FAILED',
  ] as const;
  expect(states.map((s) => [s, healthOf(s, 'machines').status])).toEqual([
    ['STARTING', 503],
    ['INITIALIZED', 503],
    ['RUNNING', 200],
    ['STOPPING', 503],
    ['DRAINING', 503],
    ['DRAINED', 503],
    ['STOPPED', 503],
    ['FAILED', 503],
  ]);
  expect(healthOf('RUNNING', 'machines').body).toEqual({
    ok: true,
    taskQueue: 'machines',
    temporal: 'connected',
    state: 'RUNNING',
  });
  expect(healthOf('STOPPING', 'machines').body).toEqual({ ok: false, taskQueue: 'machines', state: 'STOPPING' });
});

test('the metrics address is fetched on loopback when it is a wildcard', () => {
  expect(metricsUrl('0.0.0.0:9464')).toBe('http://127.0.0.1:9464/metrics');
  expect(metricsUrl('[::]:9464')).toBe('http://[::1]:9464/metrics');
  expect(metricsUrl('10.0.0.7:9000')).toBe('http://10.0.0.7:9000/metrics');
});
