import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { contractEnv } from '../../common/config';
import { repoRoot } from '../../common/tools';
import { workerEnvShape } from '../../worker/config';
import { apiEnvShape } from '../../api/config';
import { runtimeEnv } from '../../machine-runtime/config';

/**
 * No Docker engine runs here, so docker-compose.yml is checked by reading it: every service can be
 * built or pulled, long-running ones have healthchecks, start order uses conditions, and every
 * variable our own services are given is one their configuration schema knows (a typo would be
 * silently ignored at run time). Secrets come from the env file, never inline.
 */
interface Service {
  build?: { context: string; dockerfile?: string };
  image?: string;
  command?: unknown;
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test: unknown };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
  profiles?: string[];
}

const compose = parse(readFileSync(resolve(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = Object.entries(compose.services);
const ours = services.filter(([, s]) => s.build?.context === '.');

/** Variables the CLIs of the local stand-ins read (declared as `NAME: z.…` in their zod shapes). */
const cliVariables = ['dev/fly-local/cli.ts', 'dev/binance-replay/cli.ts'].flatMap((f) =>
  [...readFileSync(resolve(repoRoot, f), 'utf8').matchAll(/\b([A-Z][A-Z0-9_]+):\s*z\b/g)].map((m) => m[1]!),
);
const known = new Set([
  ...Object.keys(contractEnv),
  ...Object.keys(workerEnvShape),
  ...Object.keys(apiEnvShape),
  ...Object.keys(runtimeEnv),
  ...cliVariables,
]);

describe('docker-compose.yml', () => {
  test('has the whole stack: Temporal and its UI, Postgres, worker, API, fly-local, binance-replay, the runtime image', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining([
        'temporal',
        'temporal-ui',
        'postgres',
        'worker',
        'api',
        'fly-local',
        'binance-replay',
        'runtime',
        'migrate',
      ]),
    );
    expect(compose.services.runtime?.build?.dockerfile).toBe('machine-runtime/Dockerfile');
  });

  test.each(services)('%s can be built or pulled', (_name, s) => {
    expect(Boolean(s.build) || Boolean(s.image)).toBe(true);
    if (s.build?.dockerfile)
      expect(() => readFileSync(resolve(repoRoot, s.build!.context, s.build!.dockerfile!))).not.toThrow();
  });

  test.each(services.filter(([, s]) => s.restart !== 'no'))('%s (long-running) has a healthcheck', (_name, s) => {
    expect(s.healthcheck?.test).toBeDefined();
  });

  test.each(services.filter(([, s]) => s.depends_on))('%s waits for its dependencies with conditions', (_name, s) => {
    for (const [dep, { condition }] of Object.entries(s.depends_on!)) {
      expect(compose.services[dep]).toBeDefined();
      expect(['service_healthy', 'service_completed_successfully', 'service_started']).toContain(condition);
      if (condition === 'service_healthy') expect(compose.services[dep]?.healthcheck).toBeDefined();
    }
  });

  test.each(services.filter(([, s]) => s.ports))('%s publishes ports as host:container', (_name, s) => {
    for (const p of s.ports!) expect(p).toMatch(/^(127\.0\.0\.1:)?\d+:\d+$/);
  });

  // Temporal has no auth, its UI none either, fly-local and the replay are test doubles: this host only.
  test.each(services.filter(([name, s]) => s.ports && name !== 'api'))(
    '%s (a control plane or a stand-in) is published on 127.0.0.1 only',
    (_name, s) => {
      for (const p of s.ports!) expect(p).toMatch(/^127\.0\.0\.1:/);
    },
  );

  test.each(ours)('%s sets only variables our configuration knows', (_name, s) => {
    const unknown = Object.keys(s.environment ?? {}).filter((k) => !known.has(k));
    expect(unknown).toEqual([]);
  });

  test.each(services)('%s has no secret inline (only ${…} from the env file)', (_name, s) => {
    for (const [k, v] of Object.entries(s.environment ?? {})) {
      if (/SECRET|PASSWORD|PWD|TOKEN|_KEY$/.test(k))
        expect([k, String(v)]).toEqual([k, expect.stringMatching(/^\$\{[A-Z_]+(:[?-][^}]*)?\}$/)]);
      else if (/postgres:\/\/[^:]+:[^@$]+@/.test(String(v))) throw new Error(`${k} has an inline password`);
    }
  });
});
