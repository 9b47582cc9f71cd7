import pino, { type Logger } from 'pino';

/**
 * The one log format of the API, the worker and the machine runtime: one JSON object per line (pino),
 * `service` naming the process, `time` in ISO 8601, credentials redacted wherever they are put.
 * Imported by the machine runtime too: nothing here may pull in a control-plane package.
 */

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevelName = (typeof logLevels)[number];

/** What replaces a redacted value. */
export const REDACTED = '[redacted]';

const secretKeys = [
  'authorization',
  'token',
  'accessToken',
  'userToken',
  'controlToken',
  'secret',
  'jwtSecret',
  'apiKey',
  'password',
  'serviceKey',
];

/**
 * Paths pino redacts (at the top level, one level down, and in request headers): a credential logged by
 * mistake (`log.info({ token })`, an SDK error's `{ headers: { authorization } }`) never reaches a line.
 */
export const redactPaths = [
  ...secretKeys,
  ...secretKeys.map((k) => `*.${k}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'req.headers["x-signature"]',
  '*.headers.authorization',
];

export interface LoggerOptions {
  /** `api`, `worker`, `machine-runtime`: the `service` field of every line. */
  service: string;
  /** pino's level names; `silent` for none (tests). */
  level?: LogLevelName | 'fatal' | 'silent';
  /** Fields on every line besides `service` (the runtime adds its `userId`). */
  base?: Record<string, unknown>;
  /** Where the lines go (default stdout); tests pass a stream to read them back. */
  destination?: pino.DestinationStream;
}

/** A pino logger in the shared JSON shape. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: opts.service, pid: process.pid, ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names, not numbers: `"level":"warn"` reads the same in every service and every log tool.
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
      redact: { paths: redactPaths, censor: REDACTED },
    },
    opts.destination,
  );
}
