import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { mintAccessToken } from '../../api/auth';
import { parseEnv, pickEnv } from '../../common/config';
import { devSignInIssues } from '../../common/config-checks';
import { repoRoot } from '../../common/tools';
import { ensureDatabase, migrateDatabase } from './database';
import { isListening, isLoopback, startProcess, waitFor, type ManagedProcess } from './processes';
import { ELITE_USER_ID, FREE_USER_ID, seedDevUsers } from './seed';
import { ensureTemporal } from './temporal';

/**
 * The whole product on one machine (docs/technical-description.md §7), as `npm start` runs it: database, Temporal dev server,
 * fly-local, binance-replay, worker and API. It honours the contract's variables: a service whose
 * address points at this machine where nothing listens yet is started here; one that answers is used.
 */
export interface LocalStack {
  dashboardUrl: string;
  apiUrl: string;
  temporalAddress: string;
  temporalUiUrl?: string;
  databaseUrl: string;
  flyApiUrl: string;
  binanceWsUrl: string;
  tokens: { elite: string; free: string };
  users: { elite: string; free: string };
  stop(): Promise<void>;
}

const RUNTIME_IMAGE_DEFAULT = 'registry.fly.io/cloud-execution-runtime:latest';
const tsx = (file: string) => [process.execPath, ['--import', 'tsx', resolve(repoRoot, file)]] as const;

/** Local secrets, made once and kept in the data folder so tokens and machine keys survive restarts. */
function localSecrets(dataDir: string) {
  const file = resolve(dataDir, 'local-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as { jwtSecret: string; webhookSecret: string };
  const secrets = {
    jwtSecret: randomBytes(32).toString('base64url'),
    webhookSecret: randomBytes(24).toString('base64url'),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

const hostPort = (url: string) => {
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port || (u.protocol === 'https:' || u.protocol === 'wss:' ? 443 : 80)),
  };
};

export async function startLocalStack(
  opts: { env?: NodeJS.ProcessEnv; log?: (msg: string) => void; quiet?: boolean } = {},
): Promise<LocalStack> {
  const env = { ...process.env, ...opts.env };
  const log = opts.log ?? (() => undefined);
  const dataDir = resolve(env.LOCAL_DATA_DIR ?? resolve(repoRoot, '.data'));
  mkdirSync(dataDir, { recursive: true });
  const started: ManagedProcess[] = [];
  const stopAll = async () => {
    for (const p of [...started].reverse()) await p.stop();
  };

  try {
    const config = parseEnv(
      {
        ...pickEnv(
          'TEMPORAL_ADDRESS',
          'TEMPORAL_NAMESPACE',
          'DATABASE_URL',
          'PORT',
          'FLY_API_TOKEN',
          'FLY_APP',
          'SUPABASE_JWT_SECRET',
          'WEBHOOK_SECRET',
          'BINANCE_DATA_DIR',
        ),
        // Local mode's own defaults: fly-local and binance-replay on this machine.
        FLY_API_URL: pickEnv('FLY_API_URL').FLY_API_URL.default('http://127.0.0.1:4280/v1'),
        BINANCE_WS_URL: pickEnv('BINANCE_WS_URL').BINANCE_WS_URL.default('ws://127.0.0.1:9443'),
        FLY_MACHINE_IMAGE: pickEnv('FLY_MACHINE_IMAGE').FLY_MACHINE_IMAGE.default(RUNTIME_IMAGE_DEFAULT),
      },
      env,
    );
    const secrets = localSecrets(dataDir);
    const jwtSecret = config.SUPABASE_JWT_SECRET ?? secrets.jwtSecret;
    const webhookSecret = config.WEBHOOK_SECRET ?? secrets.webhookSecret;

    // A busy API port is the one thing we must not share: say which it is.
    if (await isListening('127.0.0.1', config.PORT))
      throw new Error(`PORT ${config.PORT} is busy: another process listens there (set PORT to a free port)`);

    log(config.DATABASE_URL ? 'database: DATABASE_URL' : `database: embedded PGlite in ${resolve(dataDir, 'pglite')}`);
    const db = await ensureDatabase({
      databaseUrl: config.DATABASE_URL,
      quiet: opts.quiet,
      dataDir,
      port: env.LOCAL_DB_PORT ? Number(env.LOCAL_DB_PORT) : undefined,
    });
    if (db.process) started.push(db.process);
    const migrated = await migrateDatabase(db.url, (m) => log(`migrations: ${m}`));
    log(`migrations: ${migrated.applied.length} applied, ${migrated.skipped.length} already there`);
    await seedDevUsers(db.url);
    log('seeded an elite and a free user with sample traders');

    log(`Temporal: ${config.TEMPORAL_ADDRESS}`);
    const temporal = await ensureTemporal(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE, {
      dataDir,
      quiet: opts.quiet,
    });
    if (temporal.process) started.push(temporal.process);

    // fly-local: machines are local processes running the machine runtime.
    const fly = hostPort(config.FLY_API_URL);
    if (isLoopback(fly.host) && !(await isListening(fly.host, fly.port))) {
      log(`fly-local: starting at ${config.FLY_API_URL}`);
      const [cmd, args] = tsx('dev/fly-local/cli.ts');
      const [rcmd, rargs] = tsx('machine-runtime/main.ts');
      const p = startProcess('fly-local', cmd, [...args], {
        quiet: opts.quiet,
        env: {
          ...env,
          FLY_API_URL: config.FLY_API_URL,
          FLY_API_TOKEN: config.FLY_API_TOKEN,
          FLY_LOCAL_DATA_DIR: resolve(dataDir, 'fly-local'),
          FLY_LOCAL_IMAGES: JSON.stringify({
            [config.FLY_MACHINE_IMAGE]: { command: rcmd, args: [...rargs], cwd: repoRoot },
          }),
          FLY_LOCAL_KILL_ON_EXIT: '1', // Ctrl-C leaves nothing running; the next start restarts what should run
          LOG_LEVEL: 'warn',
        },
      });
      started.push(p);
      await waitFor(`fly-local at ${config.FLY_API_URL}`, () => isListening(fly.host, fly.port), { proc: p });
    } else {
      log(`Fly: using ${config.FLY_API_URL}`);
    }

    // binance-replay: recorded market data, unless BINANCE_WS_URL points elsewhere or the data is absent.
    let binanceWsUrl = config.BINANCE_WS_URL;
    // Unset, it follows the stream: the replay serves both; live Binance has its own REST host.
    let binanceRestUrl = env.BINANCE_REST_URL || undefined;
    const bn = hostPort(binanceWsUrl);
    const dataPath = resolve(repoRoot, config.BINANCE_DATA_DIR);
    if (isLoopback(bn.host) && !(await isListening(bn.host, bn.port))) {
      if (existsSync(dataPath)) {
        log(`binance-replay: recorded data from ${dataPath} at ${binanceWsUrl}`);
        const [cmd, args] = tsx('dev/binance-replay/cli.ts');
        const p = startProcess('binance-replay', cmd, [...args], {
          quiet: opts.quiet,
          env: {
            ...env,
            BINANCE_WS_URL: binanceWsUrl,
            BINANCE_DATA_DIR: dataPath,
            BINANCE_REPLAY_SPEED: env.BINANCE_REPLAY_SPEED ?? '5',
          },
        });
        started.push(p);
        await waitFor(`binance-replay at ${binanceWsUrl}`, () => isListening(bn.host, bn.port), { proc: p });
        binanceRestUrl ??= `http://${bn.host}:${bn.port}`;
      } else {
        log(`recorded Binance data not found at ${dataPath}: machines use live Binance`);
        binanceWsUrl = 'wss://stream.binance.com:9443';
        binanceRestUrl = 'https://api.binance.com';
      }
    }
    binanceRestUrl ??= isLoopback(bn.host) ? `http://${bn.host}:${bn.port}` : 'https://api.binance.com';

    const shared = {
      ...env,
      TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS,
      TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE,
      DATABASE_URL: db.url,
      FLY_API_URL: config.FLY_API_URL,
      FLY_API_TOKEN: config.FLY_API_TOKEN,
      FLY_APP: config.FLY_APP,
      FLY_MACHINE_IMAGE: config.FLY_MACHINE_IMAGE,
      SUPABASE_JWT_SECRET: jwtSecret,
      WEBHOOK_SECRET: webhookSecret,
      BINANCE_WS_URL: binanceWsUrl,
      BINANCE_REST_URL: binanceRestUrl,
    };

    log('worker: starting');
    const [wcmd, wargs] = tsx('worker/main.ts');
    const worker = startProcess('worker', wcmd, [...wargs], {
      // Machines ask the API for AI notes (it holds GEMINI_API_KEY, they never do).
      env: { ...shared, MACHINE_API_URL: `http://127.0.0.1:${config.PORT}`, LOG_LEVEL: env.LOG_LEVEL ?? 'WARN' },
      quiet: opts.quiet,
    });
    started.push(worker);

    // The page's "Dev sign-in" as a seeded user: on whenever this stack is local (the API refuses it
    // otherwise, e.g. with FLY_API_URL at the real Fly), unless API_DEV_SIGN_IN says otherwise.
    const devSignIn =
      env.API_DEV_SIGN_IN || (devSignInIssues({ ...shared, API_DEV_SIGN_IN: 'true' }).length ? 'false' : 'true');
    log(`API: starting on port ${config.PORT}${['true', '1'].includes(devSignIn) ? ' (dev sign-in on)' : ''}`);
    const [acmd, aargs] = tsx('api/server.ts');
    const api = startProcess('api', acmd, [...aargs], {
      env: {
        ...shared,
        PORT: String(config.PORT),
        API_HOST: env.API_HOST ?? '127.0.0.1',
        API_DEV_SIGN_IN: devSignIn,
        LOG_LEVEL: env.API_LOG_LEVEL ?? 'warn',
      },
      quiet: opts.quiet,
    });
    started.push(api);
    const apiUrl = `http://127.0.0.1:${config.PORT}`;
    await waitFor(`the API on port ${config.PORT}`, () => isListening('127.0.0.1', config.PORT), {
      proc: api,
      timeoutMs: 90_000,
    });

    const ttlSeconds = 24 * 3600; // the longest lifetime the API accepts by default (API_MAX_TOKEN_LIFETIME)
    return {
      dashboardUrl: `${apiUrl}/`,
      apiUrl,
      temporalAddress: config.TEMPORAL_ADDRESS,
      temporalUiUrl: temporal.uiUrl,
      databaseUrl: db.url,
      flyApiUrl: config.FLY_API_URL,
      binanceWsUrl,
      users: { elite: ELITE_USER_ID, free: FREE_USER_ID },
      tokens: {
        elite: await mintAccessToken({ jwtSecret, userId: ELITE_USER_ID, ttlSeconds }),
        free: await mintAccessToken({ jwtSecret, userId: FREE_USER_ID, ttlSeconds }),
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
