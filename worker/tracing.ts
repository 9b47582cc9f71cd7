import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { WorkerOptions } from '@temporalio/worker';
import type { Tracing } from '../common/tracing';

/**
 * The worker's side of tracing (common/tracing.ts): workflow spans (RunWorkflow, StartActivity, …) made in
 * the workflow sandbox and handed out through the `exporter` sink, activity spans (RunActivity) continuing the
 * workflow's context from the activity's headers, and trace ids on activity log lines.
 */

/**
 * The workflow interceptor module. It must be in the workflow bundle: the worker bundles it at start-up
 * when tracing is on; `npm run build` (scripts/build.ts) always puts it in dist/workflow-bundle.js.
 * (`…/lib/workflow` holds the classes; this module exports the `interceptors` factory the SDK looks for.)
 */
export const workflowInterceptorModules = [
  require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors'),
];

/**
 * Interceptors and sinks for `Worker.create`. Off, none: except that a prebuilt bundle carries the workflow
 * interceptors anyway, whose spans then need a sink: one that drops them unread.
 */
export function workerTracingOptions(
  tracing: Tracing | undefined,
  opts: { prebuiltBundle: boolean },
): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  if (!tracing) return opts.prebuiltBundle ? { sinks: { exporter: { export: { fn: () => undefined } } } } : {};
  return {
    interceptors: {
      workflowModules: workflowInterceptorModules,
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) },
  };
}
