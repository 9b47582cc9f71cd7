import { z } from 'zod';
import { ConfigError, parseEnv, pickEnv } from './config';
import { flyIssues, machineStoreIssues, refuse, storeIssues } from './config-checks';

const messageOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
};

describe('configuration errors read as sentences', () => {
  test('a required variable says what it is and where to find it', () => {
    const shape = { SUPABASE_JWT_SECRET: z.string().min(32) };
    expect(messageOf(() => parseEnv(shape, {}))).toContain(
      'SUPABASE_JWT_SECRET is required: the project’s JWT secret, from Supabase → Settings → API → JWT Settings',
    );
  });

  test('zod’s own wording never reaches the reader', () => {
    const shape = {
      PORT: z.coerce.number().int().max(65535),
      LOG_LEVEL: z.enum(['info', 'warn']),
      API_METRICS_TOKEN: z.string().min(16),
      GEMINI_BASE_URL: z.url(),
    };
    const message = messageOf(() =>
      parseEnv(shape, { PORT: 'abc', LOG_LEVEL: 'loud', API_METRICS_TOKEN: 'short', GEMINI_BASE_URL: 'nope' }),
    );
    expect(message).toContain('PORT must be a number');
    expect(message).toContain('LOG_LEVEL must be one of "info", "warn"');
    expect(message).toContain('API_METRICS_TOKEN must be at least 16 characters long');
    expect(message).toContain('GEMINI_BASE_URL is not a valid URL');
    expect(message).not.toMatch(/Invalid input|expected string|received/);
  });

  test('a schema’s own message is kept, with what the variable is', () => {
    expect(messageOf(() => parseEnv(pickEnv('TEMPORAL_ADDRESS'), { TEMPORAL_ADDRESS: 'nope' }))).toContain(
      'TEMPORAL_ADDRESS must be host:port (the Temporal frontend as host:port',
    );
  });
});

describe('combinations that cannot work are refused at start-up', () => {
  test('Supabase half configured for the control plane', () => {
    expect(storeIssues({ SUPABASE_URL: 'https://x.supabase.co' })[0]?.variable).toBe('SUPABASE_SERVICE_KEY');
    expect(storeIssues({ SUPABASE_SERVICE_KEY: 'k' })[0]?.variable).toBe('SUPABASE_URL');
    expect(storeIssues({})[0]?.variable).toBe('DATABASE_URL');
    expect(storeIssues({ DATABASE_URL: 'postgres://h/db' })).toEqual([]);
    expect(storeIssues({ SUPABASE_URL: 'https://x.supabase.co', SUPABASE_SERVICE_KEY: 'k' })).toEqual([]);
  });

  test('SUPABASE_URL without SUPABASE_ANON_KEY would leave machines without a store', () => {
    const [issue] = machineStoreIssues({ SUPABASE_URL: 'https://x.supabase.co', MACHINE_API_URL: 'http://api' });
    expect(issue?.variable).toBe('SUPABASE_ANON_KEY');
    expect(issue?.message).toContain('never become healthy');
    expect(machineStoreIssues({})[0]?.variable).toBe('MACHINE_API_URL');
    expect(machineStoreIssues({ MACHINE_API_URL: 'http://api:3000' })).toEqual([]);
  });

  test('the real Fly API without a real token is found at start-up, not at the first provision', () => {
    expect(flyIssues({}, 'dev')[0]?.message).toContain('is required for the Fly API at api.machines.dev');
    expect(flyIssues({ FLY_API_TOKEN: 'dev' }, 'dev')[0]?.variable).toBe('FLY_API_TOKEN');
    expect(flyIssues({ FLY_API_TOKEN: 'real' }, 'dev')).toEqual([]);
    expect(flyIssues({ FLY_API_URL: 'http://127.0.0.1:4280/v1' }, 'dev')).toEqual([]);
    expect(flyIssues({ FLY_API_URL: 'http://fly-local:4280/v1' }, 'dev')).toEqual([]);
  });

  test('refuse() throws one error naming every problem', () => {
    expect(() => refuse([...storeIssues({}), ...flyIssues({}, 'dev')])).toThrow(
      /DATABASE_URL is required[\s\S]*FLY_API_TOKEN is required/,
    );
  });
});
