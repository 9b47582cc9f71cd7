import * as otel from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { z } from 'zod';
import { parseEnv } from './config';

/**
 * OpenTelemetry tracing for the API and the worker: optional and off by default. On when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: spans go over OTLP/HTTP,
 * batched. Off, nothing is registered: the OpenTelemetry API stays its no-op self and no interceptor runs.
 * A trace starts at the API's request, continues through the Temporal client's StartWorkflow into the
 * workflow's RunWorkflow and its activities (the Temporal headers carry the context).
 */

const otlpUrl = z
  .url({ message: 'must be an http(s) URL, e.g. http://collector:4318' })
  .refine((v) => /^https?:/.test(v), {
    message: 'must be an http(s) URL, e.g. http://collector:4318',
  });

/** The standard OpenTelemetry variables this project reads (the exporter also reads OTEL_EXPORTER_OTLP_HEADERS). */
export const tracingEnvShape = {
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl.optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_SDK_DISABLED: z.enum(['true', 'false'], { message: 'must be true or false' }).optional(),
};
export type TracingConfig = z.infer<z.ZodObject<typeof tracingEnvShape>>;

export function loadTracingConfig(env: Record<string, string | undefined> = process.env): TracingConfig {
  return parseEnv(tracingEnvShape, env);
}

/** Where spans go: the traces endpoint as given, else `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`; none when off. */
export function tracesUrl(config: TracingConfig): string | undefined {
  if (config.OTEL_SDK_DISABLED === 'true') return undefined;
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (config.OTEL_EXPORTER_OTLP_ENDPOINT) return `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

export interface Tracing {
  readonly serviceName: string;
  readonly tracer: otel.Tracer;
  readonly resource: Resource;
  /** Every span of the process goes through it, the workflows' too (their sink hands them over). */
  readonly spanProcessor: SpanProcessor;
  /** Flushes what is pending and stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * Registers the process's tracer provider (AsyncLocalStorage context, W3C trace-context propagation) when
 * tracing is configured; returns undefined when it is not. `exporter` replaces OTLP (tests pass OTel's
 * InMemorySpanExporter) and exports each span as it ends.
 */
export function startTracing(opts: {
  /** `api` or `worker`: the default service name is `cloud-execution-<service>`. */
  service: string;
  config?: TracingConfig;
  exporter?: SpanExporter;
}): Tracing | undefined {
  const config = opts.config ?? loadTracingConfig();
  const url = tracesUrl(config);
  if (!opts.exporter && !url) return undefined;
  const serviceName = config.OTEL_SERVICE_NAME ?? `cloud-execution-${opts.service}`;
  const resource = new Resource({ ...Resource.default().attributes, 'service.name': serviceName });
  const spanProcessor = opts.exporter
    ? new SimpleSpanProcessor(opts.exporter)
    : new BatchSpanProcessor(new OTLPTraceExporter({ url }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  return {
    serviceName,
    tracer: otel.trace.getTracer('cloud-execution'),
    resource,
    spanProcessor,
    shutdown: () => provider.shutdown(),
  };
}

/** The Temporal client's interceptors: StartWorkflow, signals, queries and updates as spans, context in headers. */
export function tracingClientInterceptors(tracing: Tracing | undefined): { workflow: WorkflowClientInterceptor[] } {
  return { workflow: tracing ? [new OpenTelemetryWorkflowClientInterceptor()] : [] };
}
