import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { machineLifecycle } from '../workflows/machine-lifecycle';
import { machineWorkflowId, stopUpdate } from '../workflows/contract';
import {
  createMachineStack,
  TEST_FLY_TOKEN,
  TEST_IMAGE,
  TEST_JWT_SECRET,
  type MachineStack,
} from '../test/machine-stack';
import { connectToTestServer, testAddress, uniqueId } from '../test/temporal';
import { until, untilValue, within } from '../test/kit/wait';
import { explainWorkflow, untilStatus } from '../test/kit/workflow-status';
import { exited, freePort, killGroup, spawnWorker } from '../test/kit/processes';

// The waits below are each bounded and named, and add up to less than this.
jest.setTimeout(240_000);

/** The status of GET url, or undefined when nothing answers. */
const statusOf = (url: string) =>
  fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    (r) => r.status,
    () => undefined,
  );
const text = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();

/** A sample's value in Prometheus text: `name{…label="value"…} n`, summed over the other labels. */
function sample(metrics: string, name: string, label?: [string, string]): number | undefined {
  let total: number | undefined;
  for (const line of metrics.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (label && !(m[2] ?? '').includes(`${label[0]}="${label[1]}"`)) continue;
    total = (total ?? 0) + Number(m[3]);
  }
  return total;
}

/** What an OTLP/HTTP collector receives (JSON): span names by service name. */
type OtlpExport = {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: { spans?: { name: string; traceId: string }[] }[];
  }[];
};
const spansOf = (exports: OtlpExport[]) =>
  exports.flatMap((e) =>
    (e.resourceSpans ?? []).flatMap((r) => {
      const service = r.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue;
      return (r.scopeSpans ?? []).flatMap((s) => (s.spans ?? []).map((span) => ({ service, ...span })));
    }),
  );

describe('the worker process: /healthz, one Prometheus endpoint, JSON logs, OTLP traces', () => {
  let server: Awaited<ReturnType<typeof connectToTestServer>>;
  let stack: MachineStack;
  let worker: ChildProcess | undefined;
  const stdout: string[] = [];
  // A stand-in OpenTelemetry collector: OTLP/HTTP with JSON bodies at /v1/traces.
  const exported: OtlpExport[] = [];
  let collector: Server;

  beforeAll(async () => {
    server = await connectToTestServer();
    stack = await createMachineStack();
    collector = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (req.url === '/v1/traces') exported.push(JSON.parse(body) as OtlpExport);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((done) => collector.listen(0, '127.0.0.1', done));
  });
  afterEach(async () => {
    if (worker) await killGroup(worker, 'SIGKILL'); // a failed attempt leaves no worker behind
    worker = undefined;
    stdout.length = 0;
    exported.length = 0;
  });
  afterAll(async () => {
    collector?.close();
    await stack?.close();
    await server?.close();
  });

  test('healthy while running; SDK and our metrics after a provision; JSON lines; SIGTERM ends /healthz 200', async () => {
    const taskQueue = uniqueId('telemetry');
    const [metricsPort, healthPort] = [await freePort(), await freePort()];
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    const healthz = `http://127.0.0.1:${healthPort}/healthz`;
    worker = spawnWorker(
      {
        TEMPORAL_ADDRESS: testAddress(),
        TEMPORAL_TASK_QUEUE: taskQueue,
        FLY_API_URL: stack.flyLocal.url,
        FLY_API_TOKEN: TEST_FLY_TOKEN,
        FLY_APP: 'ce-test',
        FLY_MACHINE_IMAGE: TEST_IMAGE,
        DATABASE_URL: stack.db.url,
        MACHINE_API_URL: 'http://127.0.0.1:9', // the stand-in runtime needs no store
        SUPABASE_JWT_SECRET: TEST_JWT_SECRET,
        RECONCILE_ENABLED: 'false',
        HEALTH_SWEEP_ENABLED: 'false', // no fleet-wide Schedule from a test's worker
        LOG_LEVEL: 'debug', // the SDK's activity and workflow lines are debug
        WORKER_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
        WORKER_HEALTH_PORT: String(healthPort),
        WORKER_MACHINES_GAUGE_SECONDS: '1',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as { port: number }).port}`,
      },
      ['ignore', 'pipe', 'inherit'],
    );
    let partial = '';
    worker.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      stdout.push(...lines.filter((l) => l.trim() !== ''));
    });
    const proc = worker;
    const alive = () => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error('the worker exited');
    };

    await until('the worker’s /healthz to answer 200', async () => (await statusOf(healthz)) === 200, {
      timeoutMs: 60_000,
      everyMs: 250,
      abortIf: alive,
    });
    expect(await (await fetch(healthz)).json()).toEqual({
      ok: true,
      taskQueue,
      temporal: 'connected',
      state: 'RUNNING',
    });

    const userId = await stack.db.createUser('elite');
    stack.flyLocal.setFaults({ create: { status: 503, times: 1 } }); // one failed Fly call, retried
    const handle = await server.client.workflow.start(machineLifecycle, {
      taskQueue,
      workflowId: machineWorkflowId(userId),
      args: [{ userId, region: 'ams', cpuPriority: 'low', settings: { renewalInterval: '1 second' } }],
    });
    await untilStatus(handle, 'running', (s) => s.state === 'running', 45_000);

    // Ours land next to the SDK's on the one endpoint: renewals (1 s interval), the fleet gauge, provisioning time.
    const metrics = await untilValue(
      'renewals, the running gauge and the provisioning histogram on the metrics endpoint',
      () => text(metricsUrl),
      (m) =>
        (sample(m, 'cloud_execution_renewals_total', ['outcome', 'ok']) ?? 0) >= 1 &&
        sample(m, 'cloud_execution_machines', ['state', 'running']) === 1,
      { timeoutMs: 30_000, everyMs: 500 },
    );
    expect(metrics).toMatch(/^temporal_\w+/m);
    expect(metrics).toMatch(/^temporal_workflow_completed|^temporal_activity_execution_latency/m);
    expect(sample(metrics, 'cloud_execution_machines', ['state', 'stopped'])).toBe(0);
    expect(sample(metrics, 'cloud_execution_machine_transitions_total', ['state', 'provisioning'])).toBe(1);
    expect(sample(metrics, 'cloud_execution_machine_transitions_total', ['state', 'running'])).toBe(1);
    expect(sample(metrics, 'cloud_execution_provisioning_seconds_count')).toBe(1);
    expect(metrics).toMatch(
      /^cloud_execution_fly_call_failures_total\{[^}]*activityType="ensureFlyMachine"[^}]*operation="createMachine"[^}]*status="503"[^}]*\} 1$/m,
    );
    expect(sample(metrics, 'cloud_execution_provisioning_seconds_sum')).toBeGreaterThan(0);
    expect(metrics).toMatch(/^cloud_execution_provisioning_seconds_bucket\{[^}]*le="600"[^}]*\} 1$/m);
    // The health port serves the same text at /metrics.
    expect(await text(`http://127.0.0.1:${healthPort}/metrics`)).toContain('cloud_execution_renewals_total');

    await within(
      'the stop update to be answered',
      handle.executeUpdate(stopUpdate, { args: [{ reason: 'done', requestedBy: 'test' }] }),
      30_000,
      () => explainWorkflow(handle),
    );

    // Every stdout line is one JSON object of the `worker` service; the SDK's lines carry its metadata.
    const lines = stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.filter((l) => l.service !== 'worker')).toEqual([]);
    expect(lines.find((l) => l.msg === 'worker started')).toMatchObject({ level: 'info', taskQueue });
    const ofRun = lines.filter((l) => l.workflowId === handle.workflowId);
    expect(ofRun.find((l) => l.msg === 'Workflow started')).toMatchObject({
      sdkComponent: 'worker',
      workflowType: 'machineLifecycle',
      runId: handle.firstExecutionRunId,
      level: 'debug',
    });
    expect(ofRun.find((l) => l.activityType === 'ensureFlyMachine')).toMatchObject({
      workflowRunId: handle.firstExecutionRunId,
      attempt: 1,
    });
    expect(JSON.stringify(lines)).not.toContain(TEST_JWT_SECRET);

    // SIGTERM: the worker drains and exits; /healthz stops answering 200 (503 while draining, then nothing).
    process.kill(-worker.pid!, 'SIGTERM');
    await until('/healthz to stop answering 200', async () => (await statusOf(healthz)) !== 200, 20_000);
    const closed = new Promise<void>((done) => proc.once('close', () => done()));
    const lastLines = () => `its last lines: ${stdout.slice(-5).join('\n')}`;
    await within('the worker to exit after SIGTERM', exited(worker), 30_000, lastLines);
    await within('the worker’s stdout to close', closed, 5_000); // every line written before the exit has been read
    expect(await statusOf(healthz)).toBeUndefined();
    // The worker flushed its spans on the way out: the workflow's and its activities', in one trace per run.
    const spans = spansOf(exported);
    const run = spans.find((s) => s.name === 'RunWorkflow:machineLifecycle');
    expect(run).toMatchObject({ service: 'cloud-execution-worker' });
    expect(spans.filter((s) => s.traceId === run?.traceId).map((s) => s.name)).toEqual(
      expect.arrayContaining(['StartActivity:ensureFlyMachine', 'RunActivity:ensureFlyMachine']),
    );
    expect(
      stdout.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'worker stopped'),
    ).toMatchObject({
      service: 'worker',
    });
  });
});
