import { ConfigError } from './config';
import { loadTracingConfig, startTracing, tracesUrl } from './tracing';

test('tracing is off unless an OTLP endpoint is set', () => {
  const url = (env: Record<string, string>) => tracesUrl(loadTracingConfig(env));
  expect(url({})).toBeUndefined();
  expect(url({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe('http://collector:4318/v1/traces');
  expect(url({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toBe('http://collector:4318/v1/traces');
  expect(url({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otel.example/v1/traces' })).toBe(
    'https://otel.example/v1/traces',
  );
  expect(url({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
  expect(() => loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(ConfigError);
  // Off: nothing is registered, no tracer, no interceptor.
  expect(startTracing({ service: 'api', config: loadTracingConfig({}) })).toBeUndefined();
});
