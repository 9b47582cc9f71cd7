import { randomUUID } from 'node:crypto';
import { ConfigError } from '../common/config';
import { durationMs, loadConfig } from './config';

const good = {
  USER_ID: randomUUID(),
  USER_TOKEN: 'a.b.c',
  TOKEN_VERIFY_SECRET: 'x'.repeat(32),
  MACHINE_API_URL: 'http://127.0.0.1:3000',
};

describe('RUNTIME_CATCHUP_MAX and FLY_MACHINE_ID', () => {
  test('a duration in words or units, plain seconds, or 0; one hour by default', () => {
    expect(loadConfig(good)).toMatchObject({ RUNTIME_CATCHUP_MAX: 3_600_000, FLY_MACHINE_ID: undefined });
    expect(loadConfig({ ...good, RUNTIME_CATCHUP_MAX: '30 minutes', FLY_MACHINE_ID: 'e784079b449483' })).toMatchObject({
      RUNTIME_CATCHUP_MAX: 1_800_000,
      FLY_MACHINE_ID: 'e784079b449483',
    });
    expect([durationMs('90s'), durationMs('2h'), durationMs('1 Hour'), durationMs('0'), durationMs('45')]).toEqual([
      90_000, 7_200_000, 3_600_000, 0, 45_000,
    ]);
    expect([durationMs('soon'), durationMs('1 day'), durationMs('-5m')]).toEqual([undefined, undefined, undefined]);
  });

  test('anything else, or more than a day, is a ConfigError naming the variable', () => {
    for (const bad of ['a week', '25 hours', '1.5h']) {
      try {
        loadConfig({ ...good, RUNTIME_CATCHUP_MAX: bad });
        throw new Error(`expected a ConfigError for ${bad}`);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).issues).toEqual([
          { variable: 'RUNTIME_CATCHUP_MAX', message: expect.stringMatching(/duration up to 24 hours/) },
        ]);
      }
    }
  });
});
