import { z } from 'zod';
import { ConfigError, parseEnv, pickEnv } from '../../common/config';
import { faultsSchema, type Faults } from './faults';
import { createFlyLocal } from './fly-local';
import { parseImageRegistry, type ImageRegistry } from './processes';

/** `npm run fly-local`: the local Machines API on the port of FLY_API_URL (a loopback URL), default 4280. */

const DEFAULT_URL = 'http://127.0.0.1:4280/v1';
const loopback = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function parseJsonVar<T>(variable: string, raw: string | undefined, parse: (json: string) => T): T | undefined {
  if (raw === undefined) return undefined;
  try {
    return parse(raw);
  } catch (err) {
    throw new ConfigError([
      { variable, message: `must be JSON as described in dev/fly-local/README.md: ${String(err)}` },
    ]);
  }
}

async function main(): Promise<void> {
  const env = parseEnv({
    ...pickEnv('FLY_API_TOKEN'),
    FLY_API_URL: z.url().default(DEFAULT_URL),
    FLY_LOCAL_DATA_DIR: z.string().min(1).optional(),
    FLY_LOCAL_IMAGES: z.string().min(1).optional(),
    FLY_LOCAL_FAULTS: z.string().min(1).optional(),
    FLY_LOCAL_RATE_LIMIT: z.enum(['0', '1', 'true', 'false']).default('0'),
    /** Containers (docker compose): listen on all interfaces and hand out this address as private_ip. */
    FLY_LOCAL_LISTEN_HOST: z.string().min(1).optional(),
    FLY_LOCAL_PRIVATE_IP: z.string().min(1).optional(),
    FLY_LOCAL_KILL_ON_EXIT: z.enum(['0', '1', 'true', 'false']).default('0'),
    /** fsync every state journal line (survives an OS crash, not only a fly-local crash); slower. */
    FLY_LOCAL_FSYNC: z.enum(['0', '1', 'true', 'false']).default('0'),
  });
  const url = new URL(env.FLY_API_URL);
  if (url.protocol !== 'http:' || !loopback.has(url.hostname)) {
    throw new ConfigError([
      {
        variable: 'FLY_API_URL',
        message: `fly-local serves only a loopback http URL (e.g. ${DEFAULT_URL}); got ${url.origin}`,
      },
    ]);
  }
  const imageRegistry = parseJsonVar<ImageRegistry>('FLY_LOCAL_IMAGES', env.FLY_LOCAL_IMAGES, parseImageRegistry);
  const faults = parseJsonVar<Faults>('FLY_LOCAL_FAULTS', env.FLY_LOCAL_FAULTS, (json) =>
    faultsSchema.parse(JSON.parse(json)),
  );
  const killOnExit = env.FLY_LOCAL_KILL_ON_EXIT === '1' || env.FLY_LOCAL_KILL_ON_EXIT === 'true';

  const flyLocal = await createFlyLocal({
    port: Number(url.port || 80),
    host: env.FLY_LOCAL_LISTEN_HOST ?? url.hostname.replace(/^\[|\]$/g, ''),
    privateIp: env.FLY_LOCAL_PRIVATE_IP,
    token: env.FLY_API_TOKEN,
    dataDir: env.FLY_LOCAL_DATA_DIR,
    imageRegistry,
    faults,
    rateLimit: env.FLY_LOCAL_RATE_LIMIT === '1' || env.FLY_LOCAL_RATE_LIMIT === 'true',
    // Machines outlive fly-local (as Fly's outlive a control-plane restart); the next start re-adopts them.
    killMachinesOnClose: killOnExit,
    fsync: env.FLY_LOCAL_FSYNC === '1' || env.FLY_LOCAL_FSYNC === 'true',
    logger: { level: process.env.LOG_LEVEL ?? 'info' },
  });
  console.log(`fly-local: Machines API at ${flyLocal.url} (state in ${flyLocal.dataDir})`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`fly-local: ${signal}, closing${killOnExit ? ' and killing machines' : '; machines keep running'}`);
    await flyLocal.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
