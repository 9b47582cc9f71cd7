import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import pg from 'pg';
import { machineSearchAttributes } from '../../common/search-attributes';
import { readToolPaths, repoRoot } from '../../common/tools';
import { startPostgresCluster, type PostgresCluster } from '../../test/kit/postgres-cluster';
import { exited, freePort } from '../../test/kit/processes';
import { sleep, until } from '../../test/kit/wait';
import { dynamicConfigYaml, serverConfigYaml, type ServerPorts } from './temporal-server-config';

/** What scripts/setup-temporal-server.mjs installed. */
interface ServerTools {
  version: string;
  server: string;
  sqlTool: string;
  schemaDir: string;
}

export interface TemporalServer {
  address: string;
  version: string;
  shards: number;
  /** The server's process per service (one `all` entry when every service runs in one process), and its Postgres. */
  pids: { server: Record<string, number>; postgres: number };
  metricsUrls: string[];
  logFile: string;
  stop(): Promise<void>;
}

const SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
const NAMESPACE = 'default';

function readServerTools(): ServerTools {
  const file = resolve(repoRoot, '.tools', 'temporal-server', 'tools.json');
  if (!existsSync(file))
    throw new Error(`${file} is missing: run \`npm run setup:temporal-server\` first (builds the server, ~6 min)`);
  return JSON.parse(readFileSync(file, 'utf8')) as ServerTools;
}

/**
 * Temporal's own Postgres: the test kit's throwaway cluster (fsync and synchronous_commit off: a
 * benchmark's cluster need not survive a power cut), restarted once with room for the server's
 * connection pools and fewer checkpoints.
 */
async function startServerPostgres(bin: string): Promise<PostgresCluster> {
  // A folder of its own (the kit's default): Postgres runs as another user and cannot enter ours.
  const first = await startPostgresCluster({ bin, fast: true });
  const admin = new pg.Client({ connectionString: first.url });
  await admin.connect();
  try {
    for (const setting of ["max_connections = '400'", "shared_buffers = '256MB'", "max_wal_size = '4GB'"])
      await admin.query(`alter system set ${setting}`);
  } finally {
    await admin.end();
  }
  first.stop();
  return startPostgresCluster({ bin, baseDir: dirname(first.dataDir), port: first.port, fast: true });
}

/** `temporal-sql-tool`: create each database, then apply the versioned schema from the module's source. */
function applySchema(tools: ServerTools, port: number) {
  const base = ['--ep', '127.0.0.1', '-p', String(port), '-u', 'postgres', '--pl', 'postgres12'];
  const run = (db: string, args: string[]) => {
    const r = spawnSync(tools.sqlTool, [...base, '--db', db, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`sql ${args[0]} on ${db} failed (exit ${r.status}): ${r.stderr || r.stdout}`);
  };
  for (const [db, part] of [
    ['temporal', 'temporal'],
    ['temporal_visibility', 'visibility'],
  ] as const) {
    run(db, ['create-database']);
    run(db, ['setup-schema', '-v', '0.0']);
    run(db, ['update-schema', '-d', join(tools.schemaDir, part, 'versioned')]);
  }
}

async function pickPorts(): Promise<ServerPorts> {
  const names: (keyof ServerPorts)[] = [
    'frontend',
    'frontendHttp',
    'frontendMembership',
    'history',
    'historyMembership',
    'matching',
    'matchingMembership',
    'worker',
    'workerMembership',
    'metrics',
  ];
  const ports = {} as ServerPorts;
  for (const n of names) ports[n] = n.endsWith('Membership') ? await lowFreePort() : await freePort();
  return ports;
}

/** The cluster_membership table keeps a membership port as a smallint: below 32768, unlike the kernel's ephemeral ports. */
async function lowFreePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const want = 20000 + Math.floor(Math.random() * 12000);
    if ((await freePort(want)) === want) return want;
  }
  throw new Error('no free port below 32768');
}

/** Answers once the frontend serves requests (it listens a little before its namespace registry is ready). */
async function waitForFrontend(address: string, procs: ChildProcess[], logFile: string) {
  await until(
    `the Temporal server's frontend at ${address}`,
    async () => {
      try {
        const c = await Connection.connect({ address, connectTimeout: 1000 });
        try {
          await c.workflowService.getSystemInfo({});
          return true;
        } finally {
          await c.close();
        }
      } catch {
        return false;
      }
    },
    {
      timeoutMs: 90_000,
      everyMs: 250,
      abortIf: () => {
        const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
        if (dead) throw new Error(`the Temporal server exited (${dead.exitCode ?? dead.signalCode}); see ${logFile}`);
      },
    },
  );
}

/**
 * The `default` namespace and the machine search attributes (Keyword), as the dev server gets them from
 * its flags; with `register` false it only waits until the server shows them.
 */
async function registerNamespace(address: string, register: boolean) {
  const c = await Connection.connect({ address });
  try {
    if (register)
      try {
        await c.workflowService.registerNamespace({
          namespace: NAMESPACE,
          workflowExecutionRetentionPeriod: msToTs('1 day'),
        });
      } catch (err) {
        if (!/already exists/i.test((err as Error).message)) throw err;
      }
    await until('the default namespace', () =>
      c.workflowService.describeNamespace({ namespace: NAMESPACE }).then(
        () => true,
        () => false,
      ),
    );
    if (register)
      await c.operatorService.addSearchAttributes({
        namespace: NAMESPACE,
        searchAttributes: Object.fromEntries(machineSearchAttributes.map((k) => [k.name, 2 /* KEYWORD */])),
      });
    await until('the machine search attributes', async () => {
      const { customAttributes } = await c.operatorService.listSearchAttributes({ namespace: NAMESPACE });
      return machineSearchAttributes.every((k) => customAttributes?.[k.name]);
    });
  } finally {
    await c.close();
  }
}

async function stopProcesses(procs: ChildProcess[]) {
  await Promise.all(
    procs.map(async (p) => {
      const done = exited(p);
      p.kill('SIGTERM');
      const late = setTimeout(() => p.kill('SIGKILL'), 15_000);
      await done;
      clearTimeout(late);
    }),
  );
}

/**
 * A production-shaped Temporal cluster on this box: the multi-service server (frontend, history,
 * matching, worker; one process, or one per service with `split`) on its own Postgres, with the
 * `default` namespace and the machine search attributes. Registration happens on a first boot; the
 * server is then restarted so every service loads them at start, as a long-lived cluster has them,
 * without the dev server's refresh-on-every-read.
 */
export async function startTemporalServer(
  opts: {
    shards?: number;
    split?: boolean;
    maxConns?: number;
    partitions?: number;
    metrics?: boolean;
    pprofPort?: number;
    gogc?: number;
    log?: (m: string) => void;
  } = {},
): Promise<TemporalServer> {
  const log = opts.log ?? (() => undefined);
  const tools = readServerTools();
  const postgresBin = readToolPaths().postgresBin;
  if (!postgresBin) throw new Error('no Postgres binaries: run `npm run setup -- --test` first');
  const shards = opts.shards ?? 4;
  const dir = mkdtempSync(join(tmpdir(), 'ce-bench-tsrv-'));
  const logFile = join(dir, 'server.log');
  const cluster = await startServerPostgres(postgresBin);
  const procs: ChildProcess[] = [];
  const out = openSync(logFile, 'a'); // the server's stdout and stderr (its log, JSON lines)
  const cleanUp = async () => {
    await stopProcesses(procs.splice(0));
    closeSync(out);
    cluster.stop({ remove: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const t0 = Date.now();
    applySchema(tools, cluster.port);
    log(`temporal server: schema applied in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const ports = await pickPorts();
    const address = `127.0.0.1:${ports.frontend}`;
    const dynamicConfigPath = join(dir, 'dynamicconfig.yaml');
    const groups = opts.split ? SERVICES.map((s) => [s]) : [[...SERVICES]];
    const metricsPorts = [ports.metrics, ...(await Promise.all(groups.slice(1).map(() => freePort())))];
    const configs = groups.map((_, i) => {
      const file = join(dir, `config-${i}.yaml`);
      const settings = {
        postgresPort: cluster.port,
        shards,
        maxConns: opts.maxConns ?? 20,
        dynamicConfigPath,
        metrics: opts.metrics !== false,
        // One process only: each would bind it.
        pprofPort: i === 0 ? opts.pprofPort : undefined,
      };
      writeFileSync(file, serverConfigYaml({ ...settings, ports: { ...ports, metrics: metricsPorts[i]! } }));
      return file;
    });
    const names: string[] = [];
    const boot = async (first: boolean) => {
      // The first boot also writes the cluster's metadata, which separate processes would race to
      // insert: it runs every service in one process, whatever `split` says.
      writeFileSync(
        dynamicConfigPath,
        dynamicConfigYaml({ partitions: opts.partitions, forceSearchAttributesRefresh: first }),
      );
      names.length = 0;
      (first ? [[...SERVICES]] : groups).forEach((services, i) => {
        const args = ['--config-file', configs[i]!, '--allow-no-auth', 'start'];
        for (const s of services) args.push('--service', s);
        // GOGC: Go's collector took ~14% of the server's CPU in a storm profile at the default 100.
        const env = { ...process.env, ...(opts.gogc ? { GOGC: String(opts.gogc) } : {}) };
        procs.push(spawn(tools.server, args, { stdio: ['ignore', out, out], env }));
        names.push(services.length === 1 ? services[0]! : 'all');
      });
      await waitForFrontend(address, procs, logFile);
    };
    await boot(true);
    await registerNamespace(address, true);
    await stopProcesses(procs.splice(0));
    await boot(false);
    // The history and matching services join the ring a moment after the frontend answers.
    await registerNamespace(address, false);
    await sleep(1000);
    log(
      `temporal server ${tools.version} at ${address} (${shards} shards) ready after ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    const postgresPid = Number(readFileSync(join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return {
      address,
      version: tools.version,
      shards,
      pids: { server: Object.fromEntries(procs.map((p, i) => [names[i]!, p.pid!])), postgres: postgresPid },
      metricsUrls:
        opts.metrics === false ? [] : metricsPorts.slice(0, groups.length).map((p) => `http://127.0.0.1:${p}/metrics`),
      logFile,
      stop: cleanUp,
    };
  } catch (err) {
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '';
    await cleanUp();
    throw new Error(`${(err as Error).message}${tail ? `\n--- server log (tail) ---\n${tail}` : ''}`);
  }
}
