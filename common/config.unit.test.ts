import { ConfigError, parseEnv, pickEnv } from './config';

describe('environment configuration', () => {
  test('applies the local defaults when nothing is set', () => {
    const env = parseEnv(pickEnv('TEMPORAL_ADDRESS', 'FLY_API_URL', 'PORT', 'BINANCE_DATA_DIR'), {});
    expect(env).toEqual({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      FLY_API_URL: 'https://api.machines.dev/v1',
      PORT: 3000,
      BINANCE_DATA_DIR: '../shared/data/binance',
    });
  });

  test('names every bad variable in one clear error', () => {
    const attempt = () =>
      parseEnv(pickEnv('TEMPORAL_ADDRESS', 'DATABASE_URL', 'PORT', 'SUPABASE_JWT_SECRET'), {
        TEMPORAL_ADDRESS: 'nope',
        DATABASE_URL: 'mysql://x',
        PORT: '99999',
        SUPABASE_JWT_SECRET: 'short',
      });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (err) {
      const e = err as ConfigError;
      expect(e.issues.map((i) => i.variable).sort()).toEqual([
        'DATABASE_URL',
        'PORT',
        'SUPABASE_JWT_SECRET',
        'TEMPORAL_ADDRESS',
      ]);
      expect(e.message).toContain('DATABASE_URL must be a postgres or postgresql URL');
      expect(e.message).toContain('TEMPORAL_ADDRESS must be host:port');
    }
  });

  test('treats an empty variable as unset', () => {
    expect(parseEnv(pickEnv('DATABASE_URL', 'PORT'), { DATABASE_URL: '', PORT: '' })).toEqual({
      DATABASE_URL: undefined,
      PORT: 3000,
    });
  });
});
