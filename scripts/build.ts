import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { build } from 'esbuild';
import { PAGE_FILES } from '../api/dashboard/assets';
import { dashboardBuildOptions, supabaseAuthBuildOptions } from '../api/dashboard/bundle';
import { workflowInterceptorModules } from '../worker/tracing';

/*
 * `npm run build`: everything the images run, in dist/ (the repository's layout, so paths relative to
 * a file hold in both): the production code compiled by tsc (tsconfig.build.json), the files it reads
 * at run time (dashboard page, migrations), the dashboard script bundled with the client library, and
 * the workflow code bundled once for WORKFLOW_BUNDLE_PATH. `node dist/api/server.js`,
 * `node dist/worker/main.js` and `node dist/machine-runtime/main.js` then need no tsx and no esbuild.
 */
const root = resolve(__dirname, '..');
const dist = join(root, 'dist');
const say = (what: string, file?: string) =>
  console.log(
    `[build] ${what}${file ? ` ${file.slice(root.length + 1)} (${(statSync(file).size / 1024).toFixed(0)} KiB)` : ''}`,
  );

async function main() {
  rmSync(dist, { recursive: true, force: true });
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  say('compiled the production code (tsconfig.build.json) into dist/');

  for (const asset of [...PAGE_FILES.map((f) => `api/dashboard/${f}`), 'supabase/migrations', 'supabase/local']) {
    cpSync(join(root, asset), join(dist, asset), { recursive: true });
  }
  say('copied the dashboard page and the migrations');

  const dashboard = join(dist, 'api/dashboard/dashboard.bundle.js');
  await build({ ...dashboardBuildOptions, outfile: dashboard });
  say('bundled', dashboard);
  const supabaseAuth = join(dist, 'api/dashboard/supabase-auth.bundle.js');
  await build({ ...supabaseAuthBuildOptions, outfile: supabaseAuth });
  say('bundled (the sign-in form, fetched only with Supabase)', supabaseAuth);

  const workflows = join(dist, 'workflow-bundle.js');
  const quiet = { info() {}, debug() {}, trace() {}, log() {}, warn: console.warn, error: console.error };
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    workflowInterceptorModules, // OpenTelemetry's, used when OTEL_EXPORTER_OTLP_ENDPOINT is set (worker/tracing.ts)
    logger: quiet,
  });
  mkdirSync(dirname(workflows), { recursive: true });
  writeFileSync(workflows, code);
  say('bundled the workflow code', workflows);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
