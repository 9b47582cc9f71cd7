#!/usr/bin/env node
// Installs Temporal's multi-service server and its SQL schema tool into .tools/temporal-server/ for the
// benchmarks that compare it with the CLI's dev server (BENCH_TEMPORAL=server|both). Not part of
// `npm test` or `npm start`: the first run builds from source with the Go toolchain (~6 min, ~3.5 GB of
// Go caches under ~/go and ~/.cache/go-build); later runs find the binaries and take a second.
// Plain Node, printing each step, like scripts/setup.mjs.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const home = join(root, '.tools', 'temporal-server');
const bin = join(home, 'bin');
const started = Date.now();

// The newest server needs a newer Go than the box has; `go` downloads that toolchain through the
// module proxy. The older one builds with the installed Go and is the fallback.
const builds = [
  { version: 'v1.32.2', toolchain: 'go1.27.3' },
  { version: 'v1.29.1', toolchain: 'local' },
];
const packages = ['go.temporal.io/server/cmd/server', 'go.temporal.io/server/cmd/tools/sql'];
const binaries = ['server', 'sql']; // GOBIN names them after their package folders

const say = (msg) => console.log(`[setup-temporal-server] ${msg}`);
const goEnv = (toolchain) => ({ ...process.env, GOTOOLCHAIN: toolchain, GOBIN: bin, GOFLAGS: '-mod=mod' });

/** The go.temporal.io/server version a built binary was made from (its embedded build info), if any. */
function builtVersion(file) {
  if (!existsSync(file)) return undefined;
  try {
    const info = execFileSync('go', ['version', '-m', file], { encoding: 'utf8', env: goEnv('local') });
    return /^\s*mod\s+go\.temporal\.io\/server\s+(\S+)/m.exec(info)?.[1];
  } catch {
    return undefined;
  }
}

/** The module's source folder in the Go module cache (downloaded if missing): the schema files live there. */
function moduleDir(build) {
  const out = execFileSync('go', ['mod', 'download', '-json', `go.temporal.io/server@${build.version}`], {
    encoding: 'utf8',
    cwd: home, // outside the repo: no go.mod of ours is involved
    env: goEnv(build.toolchain),
  });
  const info = JSON.parse(out);
  if (!info.Dir) throw new Error(`go mod download gave no folder for ${build.version}: ${info.Error ?? out}`);
  return info.Dir;
}

function install(build) {
  say(
    `building ${packages.join(' and ')} @${build.version} with GOTOOLCHAIN=${build.toolchain} into ${bin} ` +
      '(the first time ~6 min and ~3.5 GB of Go caches)',
  );
  const r = spawnSync('go', ['install', ...packages.map((p) => `${p}@${build.version}`)], {
    stdio: 'inherit',
    cwd: home,
    env: goEnv(build.toolchain),
  });
  return r.status === 0;
}

function main() {
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).status !== 0)
    throw new Error('[setup-temporal-server] no `go` on PATH: install the Go toolchain (https://go.dev/doc/install)');
  mkdirSync(bin, { recursive: true });
  const wanted = process.env.TEMPORAL_SERVER_VERSION;
  const candidates = wanted ? builds.filter((b) => b.version === wanted) : builds;
  if (candidates.length === 0)
    throw new Error(`TEMPORAL_SERVER_VERSION must be one of ${builds.map((b) => b.version)}`);
  const versions = binaries.map((b) => builtVersion(join(bin, b)));
  let build = candidates.find((b) => versions.every((v) => v === b.version));
  if (build) say(`server and sql tool ${build.version} already in ${bin}: nothing to build`);
  else {
    build = candidates.find((b, i) => {
      if (install(b)) return true;
      if (candidates[i + 1]) say(`building ${b.version} failed; falling back to ${candidates[i + 1].version}`);
      return false;
    });
    if (!build) throw new Error('[setup-temporal-server] could not build the Temporal server');
    if (build !== candidates[0]) say(`NOTE: using the fallback ${build.version}, not ${candidates[0].version}`);
  }
  const dir = moduleDir(build);
  const schema = join(dir, 'schema', 'postgresql', 'v12');
  for (const part of ['temporal', 'visibility'])
    if (!existsSync(join(schema, part, 'versioned'))) throw new Error(`no schema at ${join(schema, part)}`);
  say(`schema: ${schema}`);
  const info = {
    version: build.version,
    server: join(bin, 'server'),
    sqlTool: join(bin, 'sql'),
    schemaDir: schema,
  };
  writeFileSync(join(home, 'tools.json'), JSON.stringify(info, null, 2));
  say(`wrote ${join(home, 'tools.json')}; done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
