import { loadWorkerConfig, runtimeEnvFor } from './config';

const base = {
  SUPABASE_JWT_SECRET: 'a-test-jwt-secret-of-at-least-32-characters',
  FLY_API_TOKEN: 'fly-token',
  FLY_APP: 'cloud-execution-machines',
  FLY_MACHINE_IMAGE: 'registry.fly.io/cloud-execution-runtime:test',
};

describe('what a machine is given (worker/config.ts runtimeEnvFor)', () => {
  test('no project-wide secret: not the Gemini key, not the service key, not the JWT secret', () => {
    const config = loadWorkerConfig({
      ...base,
      GEMINI_API_KEY: 'project-gemini-key',
      SUPABASE_URL: 'https://abcd.supabase.co',
      SUPABASE_SERVICE_KEY: 'service-role-key',
      SUPABASE_ANON_KEY: 'anon-key',
      MACHINE_API_URL: 'https://api.example.com',
    } as Record<string, string>);
    const env = runtimeEnvFor(config);
    const values = Object.values(env).join('\n');
    for (const secret of ['project-gemini-key', 'service-role-key', base.SUPABASE_JWT_SECRET, 'fly-token'])
      expect(values).not.toContain(secret);
    expect(env).toMatchObject({ SUPABASE_ANON_KEY: 'anon-key', MACHINE_API_URL: 'https://api.example.com' });
  });

  test('never a database URL, even one on this host; without a store route, start-up names MACHINE_API_URL', () => {
    const local = loadWorkerConfig({
      ...base,
      DATABASE_URL: 'postgres://owner:pw@127.0.0.1:5432/db',
      MACHINE_API_URL: 'http://127.0.0.1:3000',
    });
    expect(runtimeEnvFor(local)).toEqual({
      BINANCE_WS_URL: expect.any(String),
      BINANCE_REST_URL: expect.any(String),
      MACHINE_API_URL: 'http://127.0.0.1:3000',
    });
    expect(() => loadWorkerConfig({ ...base, DATABASE_URL: 'postgres://owner:pw@127.0.0.1:5432/db' })).toThrow(
      /MACHINE_API_URL is required without Supabase/,
    );
  });
});

describe('the health sweep Schedule (HEALTH_SWEEP_*)', () => {
  const store = { DATABASE_URL: 'postgres://owner:pw@127.0.0.1:5432/db', MACHINE_API_URL: 'http://127.0.0.1:3000' };
  test('on by default, every minute; off and another period when set; a bad period names the variable', () => {
    expect(loadWorkerConfig({ ...base, ...store })).toMatchObject({
      HEALTH_SWEEP_ENABLED: true,
      HEALTH_SWEEP_INTERVAL: '1 minute',
    });
    const set = { HEALTH_SWEEP_ENABLED: 'false', HEALTH_SWEEP_INTERVAL: '2 minutes' };
    expect(loadWorkerConfig({ ...base, ...store, ...set })).toMatchObject({
      HEALTH_SWEEP_ENABLED: false,
      HEALTH_SWEEP_INTERVAL: '2 minutes',
    });
    expect(() => loadWorkerConfig({ ...base, ...store, HEALTH_SWEEP_INTERVAL: 'often' })).toThrow(
      /HEALTH_SWEEP_INTERVAL/,
    );
  });
});

describe('RUNTIME_CATCHUP_MAX: given to every machine as the runtime reads it', () => {
  const store = { DATABASE_URL: 'postgres://owner:pw@127.0.0.1:5432/db', MACHINE_API_URL: 'http://127.0.0.1:3000' };
  test('unset: not passed (the runtime’s 1-hour default); set: passed as written; 0 turns catch-up off', () => {
    expect(runtimeEnvFor(loadWorkerConfig({ ...base, ...store }))).not.toHaveProperty('RUNTIME_CATCHUP_MAX');
    for (const value of ['30 minutes', '0', '2h'])
      expect(runtimeEnvFor(loadWorkerConfig({ ...base, ...store, RUNTIME_CATCHUP_MAX: value }))).toMatchObject({
        RUNTIME_CATCHUP_MAX: value,
      });
  });
  test('a value a machine would refuse stops the worker, naming the variable', () => {
    for (const bad of ['2 days', '25 hours', 'soon', '1.5 hours'])
      expect(() => loadWorkerConfig({ ...base, ...store, RUNTIME_CATCHUP_MAX: bad })).toThrow(
        /RUNTIME_CATCHUP_MAX.*duration up to 24 hours/,
      );
  });
});
