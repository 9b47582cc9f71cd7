import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Client } from '@temporalio/client';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { traceHttpRequests } from '../api/tracing';
import { startTracing, tracingClientInterceptors, type Tracing } from '../common/tracing';
import { machineLifecycle } from '../workflows/machine-lifecycle';
import { machineWorkflowId, stopUpdate } from '../workflows/contract';
import { createMachineStack, type MachineStack } from '../test/machine-stack';
import { committedHistories } from '../test/kit/histories';
import { connectToTestServer, quietBundlerLogger, uniqueId } from '../test/temporal';
import { untilValue } from '../test/kit/wait';
import { untilStatus } from '../test/kit/workflow-status';
import { createMachineWorker, workflowsPath } from './create-worker';
import { workerTracingOptions, workflowInterceptorModules } from './tracing';

jest.setTimeout(120_000);

/**
 * One trace from an HTTP request to the workflow's activities: the API's request span (api/tracing.ts), the
 * Temporal client's StartWorkflow (common/tracing.ts), the workflow's RunWorkflow and StartActivity spans (the
 * interceptor module in a prebuilt bundle, as `npm run build` makes it) and the activities' RunActivity spans.
 */
describe('OpenTelemetry tracing through the client, the workflow and its activities', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let server: Awaited<ReturnType<typeof connectToTestServer>>;
  let stack: MachineStack;
  let bundle: { code: string };

  beforeAll(async () => {
    tracing = startTracing({ service: 'test', exporter })!;
    server = await connectToTestServer();
    stack = await createMachineStack();
    bundle = await bundleWorkflowCode({ workflowsPath, workflowInterceptorModules, logger: quietBundlerLogger });
  });
  afterAll(async () => {
    await tracing?.shutdown();
    await stack?.close();
    await server?.close();
  });

  test('a provision request makes one trace: request → StartWorkflow → RunWorkflow → activities', async () => {
    const taskQueue = uniqueId('tracing');
    const client = new Client({ connection: server.connection, interceptors: tracingClientInterceptors(tracing) });
    const worker = await createMachineWorker({
      connection: server.nativeConnection,
      taskQueue,
      activities: stack.activities,
      workflowBundle: bundle,
      ...workerTracingOptions(tracing, { prebuiltBundle: true }),
    });
    const running = worker.run();
    const userId = await stack.db.createUser('elite');
    // A stand-in for the API's route: the body arrives in events, then the workflow is started.
    const http: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const { region } = JSON.parse(body) as { region: string };
        client.workflow
          .start(machineLifecycle, {
            taskQueue,
            workflowId: machineWorkflowId(userId),
            args: [{ userId, region, cpuPriority: 'low', settings: {} }],
          })
          .then(
            (h) => res.writeHead(202).end(h.workflowId),
            (err: Error) => res.writeHead(500).end(err.message),
          );
      });
    });
    traceHttpRequests(http, tracing.tracer);
    await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
    try {
      const res = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/v1/machines?x=1`, {
        method: 'POST',
        body: JSON.stringify({ region: 'ams' }),
      });
      expect(res.status).toBe(202);
      const handle = client.workflow.getHandle(machineWorkflowId(userId));
      await untilStatus(handle, 'running', (s) => s.state === 'running', 60_000);
      await handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] });

      const named = (spans: ReadableSpan[], name: string) => spans.find((s) => s.name === name);
      const spans = await untilValue(
        'the workflow’s RunWorkflow span to be exported',
        () => exporter.getFinishedSpans(),
        (all) => !!named(all, 'RunWorkflow:machineLifecycle'),
        30_000,
      );
      const request = named(spans, 'POST /v1/machines')!;
      const start = named(spans, 'StartWorkflow:machineLifecycle')!;
      const run = named(spans, 'RunWorkflow:machineLifecycle')!;
      const scheduled = named(spans, 'StartActivity:ensureFlyMachine')!;
      const activity = named(spans, 'RunActivity:ensureFlyMachine')!;
      expect([request, start, run, scheduled, activity].map((s) => s?.name)).toEqual([
        'POST /v1/machines',
        'StartWorkflow:machineLifecycle',
        'RunWorkflow:machineLifecycle',
        'StartActivity:ensureFlyMachine',
        'RunActivity:ensureFlyMachine',
      ]);
      const traceId = request.spanContext().traceId;
      const ofTrace = spans.filter((s) => s.spanContext().traceId === traceId).map((s) => s.name);
      expect(ofTrace).toEqual(expect.arrayContaining([start.name, run.name, scheduled.name, activity.name]));
      // The chain: the client's span is the request's child; the activity runs under the workflow's StartActivity.
      expect(start.parentSpanId).toBe(request.spanContext().spanId);
      expect(activity.parentSpanId).toBe(scheduled.spanContext().spanId);
      expect(request.attributes).toMatchObject({ 'url.path': '/v1/machines', 'http.response.status_code': 202 });
      expect(run.resource.attributes['service.name']).toBe(tracing.serviceName);
    } finally {
      http.close();
      worker.shutdown();
      await running;
    }
  });

  test('the committed histories replay with the tracing interceptor in the bundle', async () => {
    const histories = committedHistories();
    expect(histories.length).toBeGreaterThanOrEqual(4);
    const results = Worker.runReplayHistories(
      {
        workflowBundle: bundle,
        replayName: 'with-tracing',
        ...workerTracingOptions(undefined, { prebuiltBundle: true }),
      },
      histories,
    );
    const errors: { workflowId: string; error?: string }[] = [];
    for await (const r of results) errors.push({ workflowId: r.workflowId, error: r.error?.message });
    const byId = (a: { workflowId: string }, b: { workflowId: string }) => a.workflowId.localeCompare(b.workflowId);
    expect(errors.sort(byId)).toEqual(
      histories.map((h) => ({ workflowId: h.workflowId, error: undefined })).sort(byId),
    );
  });
});
