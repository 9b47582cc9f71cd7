import { ConfigError } from '../common/config';
import { createLogger, REDACTED, type LogLevelName } from '../common/log';
import { loadWorkerConfig } from './config';
import { coreLogLevel, pinoLevel, PinoSdkLogger, sdkLogLevel } from './sdk-logger';

const required = {
  SUPABASE_JWT_SECRET: 'x'.repeat(32),
  MACHINE_API_URL: 'http://127.0.0.1:3000',
  DATABASE_URL: 'postgres://127.0.0.1:5432/db',
  FLY_API_URL: 'http://127.0.0.1:4280/v1',
};
const levelOf = (LOG_LEVEL?: string) => loadWorkerConfig({ ...required, LOG_LEVEL }).LOG_LEVEL;

/** A worker logger whose lines are kept, parsed. */
function capture(level: LogLevelName = 'info') {
  const lines: Record<string, unknown>[] = [];
  const pino = createLogger({
    service: 'worker',
    level,
    destination: { write: (s: string) => lines.push(JSON.parse(s)) },
  });
  return { lines, logger: new PinoSdkLogger(pino) };
}

describe('LOG_LEVEL → the worker’s levels', () => {
  test('read through the validated config, any case; default info', () => {
    expect(levelOf(undefined)).toBe('info');
    expect(levelOf('warn')).toBe('warn');
    expect(levelOf('WARN')).toBe('warn');
    expect(levelOf(' Debug ')).toBe('debug');
    expect(() => levelOf('verbose')).toThrow(ConfigError);
    expect(() => levelOf('verbose')).toThrow(/LOG_LEVEL.*must be one of trace, debug, info, warn, error/);
  });

  test('each level maps to the SDK’s and back; core never chattier than WARN', () => {
    const table = (['trace', 'debug', 'info', 'warn', 'error'] as const).map((l) => [
      l,
      sdkLogLevel(l),
      pinoLevel(sdkLogLevel(l)),
      coreLogLevel(l),
    ]);
    expect(table).toEqual([
      ['trace', 'TRACE', 'trace', 'WARN'],
      ['debug', 'DEBUG', 'debug', 'WARN'],
      ['info', 'INFO', 'info', 'WARN'],
      ['warn', 'WARN', 'warn', 'WARN'],
      ['error', 'ERROR', 'error', 'ERROR'],
    ]);
  });

  test('LOG_LEVEL=warn drops info and below (it used to log at TRACE)', () => {
    const { lines, logger } = capture(levelOf('warn'));
    logger.trace('t');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    logger.log('WARN', 'w2');
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'w'],
      ['error', 'e'],
      ['warn', 'w2'],
    ]);
  });
});

describe('the SDK Logger over pino', () => {
  test('one JSON line per message with the SDK’s metadata as fields', () => {
    const { lines, logger } = capture();
    const at = Symbol.for('ts'); // like the SDK's LogTimestamp on forwarded core lines: not JSON, dropped
    logger.info('Activity completed', {
      sdkComponent: 'activity',
      workflowId: 'machine-u1',
      runId: 'r1',
      activityType: 'ensureFlyMachine',
      attempt: 1,
      durationMs: 12,
      [at]: 123n,
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'info',
      service: 'worker',
      msg: 'Activity completed',
      sdkComponent: 'activity',
      workflowId: 'machine-u1',
      runId: 'r1',
      activityType: 'ensureFlyMachine',
      attempt: 1,
    });
    expect(new Date(String(lines[0]?.time)).toISOString()).toBe(lines[0]?.time);
  });

  test('credentials in metadata are redacted, errors serialised, bigints kept as text', () => {
    const { lines, logger } = capture();
    logger.error('request failed', {
      token: 'eyJ.secret',
      request: { headers: { authorization: 'Bearer eyJ.secret' }, secret: 'shh' },
      error: new Error('boom'),
      sequence: 12345678901234567890n,
    });
    const line = lines[0];
    expect(JSON.stringify(line)).not.toContain('eyJ.secret');
    expect(JSON.stringify(line)).not.toContain('shh');
    expect(line).toMatchObject({
      token: REDACTED,
      request: { headers: { authorization: REDACTED }, secret: REDACTED },
      error: { type: 'Error', message: 'boom' },
      sequence: '12345678901234567890',
    });
  });
});
