import { z } from 'zod';
import { ConfigError, parseEnv, pickEnv } from '../../common/config';
import { DataDirMissingError, DataIndex, resolveDataDir } from './candles';
import { createBinanceReplay, faultsSchema } from './server';

/** `npm run binance-replay`: serves recorded Binance market data on a local port until stopped. */

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const DEFAULT_PORT = 9443;
/** Default start leaves this much recorded history before the clock, for REST warm-up (1000+ 5m candles). */
const WARM_UP_MS = 4 * 24 * 3600_000;

const env = (() => {
  try {
    return parseEnv({
      ...pickEnv('BINANCE_DATA_DIR', 'BINANCE_WS_URL'),
      BINANCE_REPLAY_PORT: z.coerce.number().int().min(0).max(65535).optional(),
      BINANCE_REPLAY_HOST: z.string().min(1).default('127.0.0.1'),
      BINANCE_REPLAY_SPEED: z
        .string()
        .default('60')
        .transform((v) => (/^(max|inf|infinity)$/i.test(v) ? 0 : Number(v)))
        .refine((n) => Number.isFinite(n) && n >= 0, 'must be a number >= 0 (0 or "max" = as fast as possible)'),
      BINANCE_REPLAY_UPDATES: z.coerce.number().int().min(0).max(100).default(2),
      // When the recording ends, play it again (laps.ts), so a demo left open keeps its feed.
      BINANCE_REPLAY_LOOP: z
        .enum(['true', 'false', '1', '0'], { message: 'must be true or false' })
        .default('true')
        .transform((v) => v === 'true' || v === '1'),
      BINANCE_REPLAY_START: z
        .string()
        .optional()
        .transform((v) => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : Date.parse(v)))
        .refine((n) => n === undefined || !Number.isNaN(n), 'must be an ms epoch or an ISO date'),
      BINANCE_REPLAY_SYMBOLS: z
        .string()
        .optional()
        .transform((v) =>
          v
            ?.split(',')
            .map((s) => s.trim().toUpperCase())
            .filter(Boolean),
        ),
      BINANCE_REPLAY_FAULTS: z
        .string()
        .optional()
        .transform((v, ctx) => {
          if (v === undefined) return undefined;
          try {
            return faultsSchema.parse(JSON.parse(v));
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: `must be JSON like {"dropEvery":100}: ${(err as Error).message}` });
            return z.NEVER;
          }
        }),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
})();

/** BINANCE_REPLAY_PORT, else the port of BINANCE_WS_URL when that points here, else 9443. */
function choosePort(): number {
  if (env.BINANCE_REPLAY_PORT !== undefined) return env.BINANCE_REPLAY_PORT;
  const u = new URL(env.BINANCE_WS_URL);
  if (LOOPBACK.has(u.hostname) && u.port) return Number(u.port);
  return DEFAULT_PORT;
}

async function main(): Promise<void> {
  const dataDir = resolveDataDir(env.BINANCE_DATA_DIR);
  let startTime = env.BINANCE_REPLAY_START;
  try {
    if (startTime === undefined) {
      const first = new DataIndex(dataDir, env.BINANCE_REPLAY_SYMBOLS).firstOpenTime();
      if (first !== undefined) startTime = first + WARM_UP_MS;
    }
  } catch (err) {
    if (err instanceof DataDirMissingError) {
      console.error(`binance-replay: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const replay = await createBinanceReplay({
    dataDir,
    host: env.BINANCE_REPLAY_HOST,
    port: choosePort(),
    speed: env.BINANCE_REPLAY_SPEED,
    updatesPerCandle: env.BINANCE_REPLAY_UPDATES,
    startTime,
    symbols: env.BINANCE_REPLAY_SYMBOLS,
    faults: env.BINANCE_REPLAY_FAULTS,
    loop: env.BINANCE_REPLAY_LOOP,
  });
  const symbols = new DataIndex(dataDir, env.BINANCE_REPLAY_SYMBOLS).symbols();
  const day = (t: number) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
  const loops = env.BINANCE_REPLAY_LOOP
    ? symbols.map((s) => {
        const p = replay.laps(s);
        return p ? `${s} ${day(p.from)}..${day(p.to)}` : `${s} too short`;
      })
    : [];
  console.log(
    [
      `binance-replay: serving ${symbols.join(', ')} from ${dataDir}`,
      `  BINANCE_WS_URL=${replay.wsUrl}`,
      `  BINANCE_REST_URL=${replay.restUrl}`,
      `  clock starts at ${new Date(replay.clock()).toISOString()}, speed ${env.BINANCE_REPLAY_SPEED || 'max'}x`,
      env.BINANCE_REPLAY_LOOP
        ? `  loop: after the recording, laps of ${loops.join(', ')} (BINANCE_REPLAY_LOOP=false: stop at the end)`
        : '  loop: off, the streams go quiet when the recording ends',
      `  faults: PUT ${replay.restUrl}/admin/faults   stats: GET ${replay.restUrl}/admin/stats`,
    ].join('\n'),
  );
  const stop = () => {
    replay.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error('binance-replay failed to start:', err);
  process.exit(1);
});
