import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './processes';

/**
 * A private Postgres cluster from Debian's server binaries: initdb into a folder, start on a free
 * loopback port. Used by the tests (throwaway) and by `npm start` when PGlite is not wanted.
 * Postgres refuses to run as root, so as root the cluster belongs to the `postgres` system user.
 */
export interface PostgresCluster {
  url: string;
  port: number;
  dataDir: string;
  stop(opts?: { remove?: boolean }): void;
}

function runAs(user: string | undefined, cmd: string, args: string[]) {
  const full = user ? (['runuser', ['-u', user, '--', cmd, ...args]] as const) : ([cmd, args] as const);
  const r = spawnSync(full[0], [...full[1]], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export async function startPostgresCluster(opts: {
  bin: string;
  baseDir?: string;
  port?: number;
  fast?: boolean;
}): Promise<PostgresCluster> {
  const user = process.getuid?.() === 0 ? 'postgres' : undefined;
  const root = opts.baseDir ?? mkdtempSync(join(tmpdir(), 'ce-pg-'));
  mkdirSync(root, { recursive: true });
  if (user) spawnSync('chown', ['-R', `${user}:`, root]);
  const dataDir = join(root, 'data');
  const port = opts.port ?? (await freePort());
  const initialised = spawnSync('test', ['-f', join(dataDir, 'PG_VERSION')]).status === 0;
  if (!initialised) {
    runAs(user, join(opts.bin, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
      '--locale=C.UTF-8',
    ]);
  }
  const settings = [`-p ${port}`, `-k ${root}`, "-c listen_addresses='127.0.0.1'"];
  // A throwaway cluster need not survive a power cut; durability settings stay on for npm start.
  if (opts.fast) settings.push('-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off');
  runAs(user, join(opts.bin, 'pg_ctl'), [
    '-D',
    dataDir,
    '-l',
    join(root, 'postgres.log'),
    '-w',
    '-o',
    settings.join(' '),
    'start',
  ]);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop({ remove } = {}) {
      try {
        runAs(user, join(opts.bin, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
      } catch (err) {
        console.warn(`postgres cluster in ${dataDir} did not stop cleanly: ${(err as Error).message}`);
      }
      if (remove) rmSync(root, { recursive: true, force: true });
    },
  };
}
