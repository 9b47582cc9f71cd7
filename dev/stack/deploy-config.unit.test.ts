import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'smol-toml';
import type { z } from 'zod';
import { createMachineActivities } from '../../activities/machine-activities';
import { apiEnvShape, loadApiConfig } from '../../api/config';
import { createApiMetrics } from '../../api/metrics';
import { registerOpsRoutes } from '../../api/ops-routes';
import { HttpProblem } from '../../api/problem';
import { machineSearchAttributes } from '../../common/search-attributes';
import { repoRoot } from '../../common/tools';
import type { FlyClient } from '../../fly/client';
import type { MachineConfig } from '../../fly/machines';
import { workerEnvShape } from '../../worker/config';

/**
 * Fly and Supabase cannot be reached from here: the deploy kit is checked by parsing it. The control
 * plane's fly.toml must match the code (processes, ports, routes, graceful shutdown), every variable the
 * guide sets must be one a config schema knows, every required one must be set, images are never :latest.
 */
type Toml = Record<string, unknown>;
const read = (f: string) => readFileSync(resolve(repoRoot, f), 'utf8');
const toml = (f: string) => parse(read(f)) as Toml;
const control = toml('fly.control-plane.toml') as {
  kill_signal: string;
  kill_timeout: number | string;
  processes: Record<string, string>;
  deploy: { strategy: string };
  env: Record<string, string>;
  http_service: { processes: string[]; internal_port: number; checks: { path: string }[] };
  checks: Record<string, { processes: string[]; port: number; path: string; type: string }>;
  metrics: { processes: string[]; port: number; path: string }[];
  vm: { processes: string[] }[];
};
const runtime = toml('fly.runtime.toml') as {
  build: { dockerfile: string };
  vm: { size: string; memory: string }[];
  checks: { health: Record<string, unknown> };
};
const guide = read('docs/deploy.md');

const defaultOf = (schema: z.ZodType) => schema.parse(undefined) as unknown;
const seconds = (v: number | string) => (typeof v === 'number' ? v : Number(/^(\d+)s$/.exec(v)?.[1]));
const known = new Set([...Object.keys(apiEnvShape), ...Object.keys(workerEnvShape)]);
const shapes = { api: apiEnvShape, worker: workerEnvShape } as Record<string, Record<string, z.ZodType>>;

/** The shell blocks of the guide, with `\` continuations joined and comments dropped. */
const shellCommands = [...guide.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].flatMap((m) =>
  m[1]!
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter(Boolean),
);
const tomlBlocks = [...guide.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!) as Toml);
const namesSetBy = (command: RegExp) =>
  shellCommands
    .filter((c) => command.test(c))
    .flatMap((c) => [...c.matchAll(/(?:^|\s)([A-Z][A-Z0-9_]*)=/g)].map((m) => m[1]!));
const flySecrets = new Set(namesSetBy(/^fly secrets set\b/));
/** Secrets that only fill files ([[files]] secret_name in the guide's toml), never read as variables. */
const fileSecrets = new Set(
  tomlBlocks.flatMap((t) => ((t.files as { secret_name?: string }[] | undefined) ?? []).map((f) => f.secret_name!)),
);

type Handler = (req: unknown, reply: unknown) => Promise<unknown>;
/** The API's ops routes as registered (path → handler), called without a server. */
function opsRoutes(env: Record<string, string> = {}) {
  const routes = new Map<string, Handler>();
  registerOpsRoutes({ get: (path: string, handler: Handler) => routes.set(path, handler) } as never, {
    config: loadApiConfig({ SUPABASE_JWT_SECRET: 'x'.repeat(32), ...env }),
    temporal: {
      withDeadline: (_: number, fn: () => Promise<unknown>) => fn(),
      workflowService: { getSystemInfo: async () => ({}) },
    } as never,
    store: { getSubscriptionTier: async () => null } as never,
    metrics: createApiMetrics(),
  });
  return routes;
}
/** A request from `remoteAddress` with these headers; the handler's answer, or the problem it throws. */
async function callRoute(handler: Handler, remoteAddress: string, headers: Record<string, string> = {}) {
  const req = { socket: { remoteAddress }, headers, log: { warn: () => undefined } };
  const reply = { type: () => reply, send: (body: unknown) => body };
  try {
    return { status: 200, body: await handler(req, reply) };
  } catch (err) {
    if (err instanceof HttpProblem) return { status: err.statusCode, body: err.detail };
    throw err;
  }
}

describe('fly.control-plane.toml', () => {
  test('one image, two process groups: the Dockerfile default is the api, the worker its own command', () => {
    expect(control.processes).toEqual({ api: 'node dist/api/server.js', worker: 'node dist/worker/main.js' });
    expect(read('Dockerfile')).toContain('CMD ["node", "dist/api/server.js"]');
    expect((toml('fly.control-plane.toml').build as { dockerfile: string }).dockerfile).toBe('Dockerfile');
  });

  test('the http_service is the api, on the port the API listens on by default', () => {
    expect(control.http_service.processes).toEqual(['api']);
    expect(control.http_service.internal_port).toBe(defaultOf(apiEnvShape.PORT));
    expect(Number(control.env.PORT)).toBe(control.http_service.internal_port);
    expect(read('Dockerfile')).toContain(`EXPOSE ${control.http_service.internal_port}`);
  });

  test("the api's checks are routes the API serves, answering 200 while Temporal and the store answer", async () => {
    const routes = opsRoutes();
    for (const { path } of control.http_service.checks) {
      expect(routes.has(path)).toBe(true);
      expect(await callRoute(routes.get(path)!, 'fdaa:0:1:a7b:1::3')).toEqual({
        status: 200,
        body: { ok: true, temporal: { ok: true }, store: { ok: true } },
      });
    }
  });

  test("the worker's check is its health server: WORKER_HEALTH_PORT's default, GET /healthz", () => {
    const checks = Object.values(control.checks).filter((c) => c.processes.includes('worker'));
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({
      type: 'http',
      port: defaultOf(workerEnvShape.WORKER_HEALTH_PORT),
      path: '/healthz',
    });
    expect(read('worker/health-server.ts')).toMatch(/['"`]\/healthz['"`]/);
    expect(read('worker/main.ts')).toContain('port: config.WORKER_HEALTH_PORT');
  });

  test("Fly's Prometheus scrapes the worker at WORKER_METRICS_ADDRESS and the api on its private metrics port, not the public /metrics, which refuses it", async () => {
    const port = Number(String(defaultOf(workerEnvShape.WORKER_METRICS_ADDRESS)).split(':').at(-1));
    expect(control.metrics).toEqual([
      { processes: ['worker'], port, path: '/metrics' },
      { processes: ['api'], port: Number(control.env.API_METRICS_PORT), path: '/metrics' },
    ]);
    expect(control.http_service.internal_port).not.toBe(Number(control.env.API_METRICS_PORT));
    // Fly's scraper comes over the private network (not loopback) and sends no Authorization header.
    const fly = 'fdaa:0:1:a7b:1::3';
    expect((await callRoute(opsRoutes().get('/metrics')!, fly)).status).toBe(403);
    const token = 'a-metrics-token-0123';
    const withToken = opsRoutes({ API_METRICS_TOKEN: token }).get('/metrics')!;
    expect((await callRoute(withToken, fly)).status).toBe(401);
    expect((await callRoute(withToken, fly, { authorization: `Bearer ${token}` })).status).toBe(200);
  });

  test('rolling deploys, SIGTERM, and a kill_timeout longer than either process takes to drain', () => {
    expect(control.deploy.strategy).toBe('rolling');
    expect(control.kill_signal).toBe('SIGTERM');
    const grace = Number(/shutdownGraceTime: '(\d+) seconds'/.exec(read('worker/create-worker.ts'))?.[1]);
    const apiForce = Number(/setTimeout\(\(\) => process\.exit\(1\), (\d+)_000\)/.exec(read('api/server.ts'))?.[1]);
    expect(grace).toBe(10);
    expect(apiForce).toBe(10);
    expect(seconds(control.kill_timeout)).toBeGreaterThan(Math.max(grace, apiForce));
    expect(seconds(control.kill_timeout)).toBeLessThanOrEqual(300); // Fly's maximum
  });

  test('a VM size per process group; every [env] variable is one the schemas know', () => {
    expect(control.vm.map((v) => v.processes).sort()).toEqual([['api'], ['worker']]);
    expect(Object.keys(control.env).filter((k) => !known.has(k))).toEqual([]);
  });
});

describe('fly.runtime.toml mirrors the one place user machines are configured', () => {
  async function configFor(cpuPriority: 'low' | 'normal' | 'high'): Promise<MachineConfig> {
    let config: MachineConfig | undefined;
    const fly = {
      listMachines: async () => [],
      createMachine: async (body: { config: MachineConfig }) => {
        config = body.config;
        return { id: 'm1', name: 'ce-u', state: 'created', region: 'ams', config: body.config };
      },
    } as unknown as FlyClient;
    const activities = createMachineActivities({ fly, image: 'img:sha', jwtSecret: 'x'.repeat(32), runtimeEnv: {} });
    await activities.ensureFlyMachine({
      userId: '00000000-0000-4000-8000-000000000001',
      workflowId: 'machine-u',
      regions: ['ams'],
      cpuPriority,
    });
    return config!;
  }

  test("machineConfig's check, size (low) and Fly metrics; the runtime image's Dockerfile", async () => {
    const low = await configFor('low');
    expect(low.checks).toEqual({ health: runtime.checks.health });
    expect(runtime.vm).toEqual([{ size: 'shared-cpu-1x', memory: '256mb' }]);
    expect(low.guest).toEqual({ cpu_kind: 'shared', cpus: 1, memory_mb: 256 });
    expect(low.metrics).toEqual({ port: 8080, path: '/metrics' });
    expect(low.restart).toEqual({ policy: 'on-failure', max_retries: 3 });
    expect((await configFor('normal')).guest).toEqual({ cpu_kind: 'shared', cpus: 1, memory_mb: 512 });
    expect((await configFor('high')).guest).toEqual({ cpu_kind: 'performance', cpus: 1, memory_mb: 2048 });
    expect(runtime.build.dockerfile).toBe('machine-runtime/Dockerfile');
    expect(existsSync(resolve(repoRoot, 'fly.toml'))).toBe(false); // a bare `fly deploy` finds nothing
  });
});

describe('docs/deploy.md', () => {
  test('every `fly secrets set` variable is one a config schema knows (or fills a [[files]] entry)', () => {
    expect(flySecrets.size).toBeGreaterThan(5);
    expect([...flySecrets].filter((k) => !known.has(k) && !fileSecrets.has(k))).toEqual([]);
    const snippetEnv = tomlBlocks.flatMap((t) => Object.keys((t.env as Record<string, string> | undefined) ?? {}));
    expect(snippetEnv.filter((k) => !known.has(k))).toEqual([]);
  });

  test('every required variable, and every one whose local default is wrong in production, is set', () => {
    const set = new Set([...flySecrets, ...Object.keys(control.env)]);
    const required = Object.entries(shapes).flatMap(([, shape]) =>
      Object.entries(shape)
        .filter(([, s]) => !s.safeParse(undefined).success)
        .map(([k]) => k),
    );
    expect(required).toContain('SUPABASE_JWT_SECRET');
    const production = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'FLY_API_TOKEN', 'FLY_APP', 'FLY_MACHINE_IMAGE'];
    const supabase = ['SUPABASE_URL', 'SUPABASE_SERVICE_KEY', 'SUPABASE_ANON_KEY', 'WEBHOOK_SECRET', 'MACHINE_API_URL'];
    expect([...required, ...production, ...supabase].filter((k) => !set.has(k))).toEqual([]);
  });

  test('images are tagged with the commit, never :latest (guide, script, fly files)', () => {
    for (const f of ['docs/deploy.md', 'scripts/deploy-images.sh', 'fly.control-plane.toml', 'fly.runtime.toml']) {
      const tags = [...read(f).matchAll(/registry\.fly\.io\/[\w$.{}<>-]+:([^\s`"')]+)/g)].map((m) => m[1]);
      expect([f, tags.filter((t) => !/sha|SHA|<commit>/.test(t!))]).toEqual([f, []]);
      expect(read(f)).not.toMatch(/--image-label\s+["']?latest/);
    }
    expect(shellCommands.filter((c) => /fly deploy .*--build-only/.test(c) && !/--image-label/.test(c))).toEqual([]);
  });

  test('the five search attributes, for Temporal Cloud (tcld) and self-hosted (temporal operator)', () => {
    for (const command of ['tcld namespace search-attributes add', 'temporal operator search-attribute create'])
      expect(shellCommands.some((c) => c.includes(command))).toBe(true);
    for (const { name } of machineSearchAttributes) {
      expect(shellCommands.some((c) => c.includes('tcld') && c.includes(`${name}=Keyword`))).toBe(true);
      expect(shellCommands.some((c) => c.startsWith('for a in') && new RegExp(`\\b${name}\\b`).test(c))).toBe(true);
    }
  });

  test('the Edge Functions: deployed, and every variable forward.ts needs set as a Supabase secret', () => {
    const config = toml('supabase/config.toml') as {
      project_id: string;
      functions: Record<string, { verify_jwt: boolean }>;
    };
    expect(Object.keys(config.functions).sort()).toEqual(['provision-machine', 'stop-machine']);
    for (const [name, f] of Object.entries(config.functions)) {
      expect(existsSync(resolve(repoRoot, 'supabase/functions', name, 'index.ts'))).toBe(true);
      expect(f.verify_jwt).toBe(true);
    }
    expect(shellCommands).toContain('supabase functions deploy provision-machine stop-machine');
    const read_ = [...read('supabase/functions/_shared/forward.ts').matchAll(/Deno\.env\.get\('(\w+)'\)/g)].map(
      (m) => m[1]!,
    );
    const supabaseSets = new Set(namesSetBy(/^supabase secrets set\b/));
    // SUPABASE_* are Supabase's own (and reserved: a secret may not be named so).
    // PORT and HOST are read only outside the Edge Runtime (deno run, tests).
    const needed = read_.filter((k) => !k.startsWith('SUPABASE_') && !['PORT', 'HOST'].includes(k));
    expect(needed).toContain('CLOUD_EXECUTION_API_URL');
    expect(needed.filter((k) => !supabaseSets.has(k))).toEqual([]);
    expect([...supabaseSets].filter((k) => k.startsWith('SUPABASE_'))).toEqual([]);
  });
});

describe('scripts/deploy-images.sh', () => {
  test('builds both images with the commit as label and build arg, stages FLY_MACHINE_IMAGE, deploys that image', () => {
    const bin = mkdtempSync(join(tmpdir(), 'fly-stub-'));
    const log = join(bin, 'calls');
    writeFileSync(join(bin, 'fly'), `#!/bin/sh\necho "fly $*" >> "${log}"\n`);
    chmodSync(join(bin, 'fly'), 0o755);
    const sha = 'abc1234def5678abc1234def5678abc1234def56';
    execFileSync('bash', ['scripts/deploy-images.sh', '--deploy'], {
      cwd: repoRoot,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, GIT_SHA: sha },
      stdio: 'pipe',
    });
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      `fly deploy --config fly.runtime.toml --app cloud-execution-runtime --build-only --push --image-label ${sha} --build-arg GIT_SHA=${sha}`,
      `fly deploy --config fly.control-plane.toml --app cloud-execution --build-only --push --image-label ${sha} --build-arg GIT_SHA=${sha}`,
      `fly secrets set --stage --app cloud-execution FLY_MACHINE_IMAGE=registry.fly.io/cloud-execution-runtime:${sha}`,
      `fly deploy --config fly.control-plane.toml --app cloud-execution --image registry.fly.io/cloud-execution:${sha}`,
    ]);
    for (const f of ['Dockerfile', 'machine-runtime/Dockerfile'])
      expect(read(f)).toMatch(/ARG GIT_SHA=unknown\nLABEL org\.opencontainers\.image\.revision=\$GIT_SHA\n/);
  });
});
